"""code_interpreter end to end: the scripted model calls the tool, the server runs the
code in a real Docker sandbox, and the SDK sees steps, outputs, images and files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AssistantEventHandler, OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.docker_check import require_sandbox, sandboxed_server
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import ServerProcess

CI_TOOL = {"type": "code_interpreter"}


@pytest.fixture(scope="module")
def sandbox_server(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> Iterator[ServerProcess]:
    with sandboxed_server(
        tmp_path_factory.mktemp("sandbox-server"),
        scripted[1],
        # Generous: a cold matplotlib import on a loaded 2-core CI machine takes seconds.
        ASSISTD_SANDBOX_TIMEOUT="8",
        ASSISTD_SANDBOX_DISK="16m",
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def ci_client(sandbox_server: ServerProcess) -> OpenAI:
    return make_client(sandbox_server.base_url, KEY_ALPHA)


@pytest.fixture
def coder(ci_client: OpenAI):  # type: ignore[no-untyped-def]
    return ci_client.beta.assistants.create(
        model="gpt-4o", instructions="Use Python.", tools=[CI_TOOL]
    )


def code_call(code: str) -> dict[str, Any]:
    return {"name": "code_interpreter", "arguments": json.dumps({"code": code})}


def run_code(
    client: OpenAI,
    model: ScriptedModel,
    assistant_id: str,
    thread_id: str,
    code: str,
    reply: str = "Done.",
) -> tuple[Any, list[dict[str, Any]]]:
    """One run in which the model runs `code` once, then answers `reply`.
    Returns the finished run and the code call's outputs (as plain dicts)."""
    model.tool_calls([code_call(code)]).text(reply)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=50
    )
    steps = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id, order="asc")
    calls = [
        call
        for step in steps.data
        if step.step_details.type == "tool_calls"
        for call in step.step_details.tool_calls
    ]
    assert [c.type for c in calls] == ["code_interpreter"]
    assert calls[0].code_interpreter.input == code
    return run, [o.model_dump() for o in calls[0].code_interpreter.outputs]


def logs_of(outputs: list[dict[str, Any]]) -> str:
    return "".join(o["logs"] for o in outputs if o["type"] == "logs")


def assert_healthy(server: ServerProcess, client: OpenAI, model: ScriptedModel, coder) -> None:  # type: ignore[no-untyped-def]
    """The server answers and another thread's session still runs code."""
    assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
    thread = client.beta.threads.create()
    run, outputs = run_code(client, model, coder.id, thread.id, "print('still fine')")
    assert run.status == "completed"
    assert logs_of(outputs) == "still fine\n"


def test_logs_reach_the_step_and_the_model_and_variables_persist(
    ci_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    thread = ci_client.beta.threads.create(messages=[{"role": "user", "content": "6 times 7?"}])
    run, outputs = run_code(ci_client, model, coder.id, thread.id, "x = 6 * 7\nprint(x)", "42.")
    assert run.status == "completed"
    assert [o["type"] for o in outputs] == ["logs"]
    assert logs_of(outputs) == "42\n"
    second = model.requests[-1]
    assert any(m["role"] == "tool" and m["content"].strip() == "42" for m in second["messages"])
    assert any(t["function"]["name"] == "code_interpreter" for t in second["tools"])
    messages = ci_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id)
    assert messages.data[0].content[0].text.value == "42."

    # The next run on the thread still sees x: the hosted API lost it, we keep it.
    run2, outputs2 = run_code(ci_client, model, coder.id, thread.id, "x + 1")
    assert run2.status == "completed"
    assert logs_of(outputs2) == "43\n"


def test_tool_choice_code_interpreter_forces_exactly_that_tool(
    ci_client: OpenAI, model: ScriptedModel
) -> None:
    """With a function tool beside it, "required" would let the model call the function
    (and the run stop in requires_action): the model is told to call code_interpreter."""
    assistant = ci_client.beta.assistants.create(
        model="gpt-4o", tools=[CI_TOOL, {"type": "function", "function": {"name": "lookup"}}]
    )
    thread = ci_client.beta.threads.create(messages=[{"role": "user", "content": "2+2?"}])
    model.tool_calls([code_call("print(2 + 2)")]).text("4.")
    run = ci_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        tool_choice={"type": "code_interpreter"},
        poll_interval_ms=50,
    )
    assert run.status == "completed", run.last_error
    forced = {"type": "function", "function": {"name": "code_interpreter"}}
    assert model.requests[0]["tool_choice"] == forced


def test_errors_in_user_code_are_outputs_not_failures(
    ci_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    thread = ci_client.beta.threads.create()
    run, outputs = run_code(ci_client, model, coder.id, thread.id, "print('before')\n1 / 0")
    assert run.status == "completed"
    logs = logs_of(outputs)
    assert logs.startswith("before\n")
    assert "ZeroDivisionError: division by zero" in logs
    assert "kernel" not in logs and "_run" not in logs  # no sandbox internals


def test_images_become_image_files_and_written_files_get_file_path_annotations(
    ci_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import matplotlib.pyplot as plt\n"
        "primes = [n for n in range(2, 1000) if all(n % d for d in range(2, int(n**0.5) + 1))]\n"
        "plt.plot(primes)\n"
        "with open('/mnt/data/primes.csv', 'w') as fh:\n"
        "    fh.write('prime\\n' + '\\n'.join(map(str, primes)) + '\\n')\n"
        "print(len(primes))"
    )
    reply = "There are 168. Download [primes.csv](sandbox:/mnt/data/primes.csv)."
    thread = ci_client.beta.threads.create()
    run, outputs = run_code(ci_client, model, coder.id, thread.id, code, reply)
    assert run.status == "completed"
    assert logs_of(outputs) == "168\n"
    images = [o for o in outputs if o["type"] == "image"]
    assert len(images) == 1
    image_id = images[0]["image"]["file_id"]
    assert ci_client.files.content(image_id).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert ci_client.files.retrieve(image_id).purpose == "assistants_output"

    message = ci_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    assert [part.type for part in message.content] == ["image_file", "text"]
    assert message.content[0].image_file.file_id == image_id
    text = message.content[1].text
    assert text.value == reply
    (annotation,) = text.annotations
    assert annotation.type == "file_path"
    assert annotation.text == "sandbox:/mnt/data/primes.csv"
    assert reply[annotation.start_index : annotation.end_index] == annotation.text
    csv = ci_client.files.content(annotation.file_path.file_id).content.decode()
    assert csv.startswith("prime\n2\n3\n5\n") and csv.endswith("997\n")
    assert ci_client.files.retrieve(annotation.file_path.file_id).filename == "primes.csv"


def test_attachments_and_tool_resources_appear_under_mnt_data(
    ci_client: OpenAI, model: ScriptedModel, coder, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "sales.csv"
    data.write_text("region,amount\nnorth,10\nsouth,32\n")
    upload = ci_client.files.create(file=data.open("rb"), purpose="assistants")
    notes = tmp_path / "notes.txt"
    notes.write_text("thread-level file\n")
    thread_file = ci_client.files.create(file=notes.open("rb"), purpose="assistants")
    thread = ci_client.beta.threads.create(
        tool_resources={"code_interpreter": {"file_ids": [thread_file.id]}},
        messages=[
            {
                "role": "user",
                "content": "Total the amounts.",
                "attachments": [{"file_id": upload.id, "tools": [CI_TOOL]}],
            }
        ],
    )
    code = (
        "import pandas as pd\n"
        "print(pd.read_csv('/mnt/data/sales.csv')['amount'].sum())\n"
        "print(open('/mnt/data/notes.txt').read().strip())"
    )
    run, outputs = run_code(ci_client, model, coder.id, thread.id, code)
    assert run.status == "completed"
    assert logs_of(outputs) == "42\nthread-level file\n"
    tool = next(
        t for t in model.requests[0]["tools"] if t["function"]["name"] == "code_interpreter"
    )
    assert "/mnt/data/sales.csv" in tool["function"]["description"]


class CodeRecorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.inputs = ""
        self.logs = ""

    def on_tool_call_created(self, tool_call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"created:{tool_call.type}")

    def on_tool_call_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def]
        if delta.type == "code_interpreter":
            if delta.code_interpreter.input:
                self.inputs += delta.code_interpreter.input
                self.calls.append("input")
            for output in delta.code_interpreter.outputs or []:
                if output.type == "logs":
                    self.logs += output.logs
                    self.calls.append("logs")

    def on_tool_call_done(self, tool_call) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"done:{tool_call.type}")


def test_streamed_code_input_then_outputs_reach_the_event_handler(
    ci_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    code = 'for i in range(3):\n    print("line", i)'
    model.tool_calls([code_call(code)], chunks=5).text("Printed three lines.")
    thread = ci_client.beta.threads.create()
    handler = CodeRecorder()
    with ci_client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=coder.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed"
    assert handler.inputs == code
    assert handler.logs == "line 0\nline 1\nline 2\n"
    squeezed = [c for i, c in enumerate(handler.calls) if i == 0 or handler.calls[i - 1] != c]
    assert squeezed == ["created:code_interpreter", "input", "logs", "done:code_interpreter"]


def test_an_execution_past_the_time_limit_is_interrupted_and_the_session_survives(
    ci_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    thread = ci_client.beta.threads.create()
    run_code(ci_client, model, coder.id, thread.id, "kept = 'yes'")
    t0 = time.monotonic()
    run, outputs = run_code(ci_client, model, coder.id, thread.id, "while True:\n    pass")
    assert run.status == "completed"
    assert "timed out after 8 seconds" in logs_of(outputs)
    assert time.monotonic() - t0 < 20
    _, after = run_code(ci_client, model, coder.id, thread.id, "print(kept)")
    assert logs_of(after) == "yes\n"


def test_cancelling_a_run_interrupts_the_running_code(
    ci_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    thread = ci_client.beta.threads.create()
    model.tool_calls([code_call("import time\ntime.sleep(2.5)\nprint('finished')")])
    run = ci_client.beta.threads.runs.create(thread_id=thread.id, assistant_id=coder.id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        steps = ci_client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
        if any(s.type == "tool_calls" for s in steps.data):
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the code is running now
    t0 = time.monotonic()
    ci_client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
    run = ci_client.beta.threads.runs.poll(thread_id=thread.id, run_id=run.id, poll_interval_ms=50)
    assert run.status == "cancelled"
    assert time.monotonic() - t0 < 2.0  # well before the sleep would have ended
    steps = ci_client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    assert [s.status for s in steps.data if s.type == "tool_calls"] == ["cancelled"]


@pytest.mark.parametrize(
    ("name", "code", "expect"),
    [
        (
            "fork bomb",
            "import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            import time; time.sleep(30); os._exit(0)\n        n += 1\n"
            "except OSError as e:\n    print('stopped', type(e).__name__)",
            "stopped",
        ),
        ("4 GB allocation", "block = bytearray(4 * 1024**3)\nprint('allocated')", None),
        (
            "network",
            "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n"
            "    print('connected')\nexcept OSError as e:\n"
            "    print('no network:', type(e).__name__)",
            "no network:",
        ),
        (
            "filling the disk",
            "try:\n    with open('/mnt/data/big', 'wb') as fh:\n"
            "        for _ in range(64):\n            fh.write(b'x' * 1024 * 1024)\n"
            "    print('wrote it all')\nexcept OSError as e:\n    print('disk full:', e.errno)",
            "disk full: 28",
        ),
        (
            "filling /dev/shm",
            "try:\n    with open('/dev/shm/big', 'wb') as fh:\n"
            "        for _ in range(32):\n            fh.write(b'x' * 1024 * 1024)\n"
            "    print('wrote it all')\nexcept OSError as e:\n    print('shm full:', e.errno)",
            "shm full: 28",
        ),
        (
            "writing outside the work area",
            "for p in ['/etc/evil', '/usr/evil', '/evil']:\n    try:\n"
            "        open(p, 'w').write('x'); print('wrote', p)\n"
            "    except OSError as e:\n        print('refused', p, e.errno)",
            "refused /etc/evil 30\nrefused /usr/evil 30\nrefused /evil 30",
        ),
        (
            "reading host files",
            "import os\nprint(os.path.exists('/work'), os.path.exists('/root/.ssh'),"
            " os.path.exists('/tmp/assistd-docker'), os.listdir('/mnt/data'))",
            "False False False []",
        ),
    ],
)
def test_containment(
    sandbox_server: ServerProcess,
    ci_client: OpenAI,
    model: ScriptedModel,
    coder,
    name: str,
    code: str,
    expect: str | None,
) -> None:  # type: ignore[no-untyped-def]
    thread = ci_client.beta.threads.create()
    run, outputs = run_code(ci_client, model, coder.id, thread.id, code)
    assert run.status == "completed", name
    logs = logs_of(outputs)
    if expect is not None:
        assert expect in logs, (name, logs)
    else:  # killed for memory: the model is told, and the session restarts
        assert "allocated" not in logs
        assert "memory" in logs.lower() or "MemoryError" in logs, logs
    assert "connected" not in logs and "wrote /" not in logs
    assert_healthy(sandbox_server, ci_client, model, coder)


def test_runs_asking_for_code_interpreter_fail_clearly_without_a_sandbox(
    client: OpenAI, model: ScriptedModel
) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[CI_TOOL])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50
    )
    assert run.status == "failed"
    assert run.last_error.code == "server_error"
    assert "code_interpreter is not available" in run.last_error.message
    assert model.requests == []


def test_ready_reports_the_sandbox(sandbox_server: ServerProcess, server: ServerProcess) -> None:
    on = httpx.get(f"{sandbox_server.base_url}/ready").json()
    off = httpx.get(f"{server.base_url}/ready").json()
    assert on["features"]["code_interpreter"] == "ok"
    assert off["features"]["code_interpreter"].startswith("turned off")


def test_idle_sessions_expire_after_the_ttl(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> None:
    require_sandbox()
    env = server_env(
        scripted[1], ASSISTD_SANDBOX="auto", ASSISTD_SANDBOX_TTL="1", ASSISTD_SANDBOX_POOL="0"
    )
    proc = ServerProcess(tmp_path_factory.mktemp("ttl-server"), env=env).start()
    try:
        client = make_client(proc.base_url, KEY_ALPHA)
        model = scripted[0]
        model.reset()
        coder = client.beta.assistants.create(model="gpt-4o", tools=[CI_TOOL])
        thread = client.beta.threads.create()
        run_code(client, model, coder.id, thread.id, "remembered = 1")
        _, still = run_code(client, model, coder.id, thread.id, "print(remembered)")
        assert logs_of(still) == "1\n"
        time.sleep(3.5)  # idle past the 1 s TTL and a reaper pass
        _, gone = run_code(client, model, coder.id, thread.id, "print(remembered)")
        assert "NameError" in logs_of(gone)
        # The same, as /metrics tells an operator (prometheus-client's own parser).
        text = httpx.get(f"{proc.base_url}/metrics").text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("assistd_sandbox_sessions_started", ())] == 2
        assert samples[("assistd_sandbox_sessions_evicted", ())] == 1
        assert samples[("assistd_sandbox_sessions_live", ())] == 1
        ok = (("kind", "code_interpreter"), ("outcome", "ok"))
        assert samples[("assistd_tool_executions_total", ok)] == 3
    finally:
        proc.stop()


def test_containers_of_a_killed_server_are_removed_at_the_next_start(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> None:
    require_sandbox()
    import docker

    daemon = docker.from_env()
    env = server_env(scripted[1], ASSISTD_SANDBOX="auto", ASSISTD_SANDBOX_POOL="1")
    first = ServerProcess(tmp_path_factory.mktemp("doomed"), env=env).start()
    assert first.proc is not None
    mine = f":{first.proc.pid}:"

    def containers() -> list[Any]:
        # sparse: labels from the list itself, since inspecting each one races the
        # successor removing it (NotFound) on a loaded machine
        found = daemon.containers.list(all=True, filters={"label": "assistd.sandbox"}, sparse=True)
        return [c for c in found if mine in c.attrs["Labels"]["assistd.sandbox"]]

    deadline = time.monotonic() + 30
    while not containers() and time.monotonic() < deadline:
        time.sleep(0.2)  # the warm pool starts in the background
    assert containers(), "the first server never started its pool container"
    first.proc.kill()  # no shutdown: nothing removes its containers
    first.proc.wait()
    assert containers()
    second = ServerProcess(tmp_path_factory.mktemp("successor"), env=env).start()
    try:
        deadline = time.monotonic() + 15
        while containers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert containers() == []
    finally:
        second.stop()


def test_sessions_run_under_gvisor_when_configured(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> None:
    require_sandbox(runtime="runsc")
    env = server_env(
        scripted[1],
        ASSISTD_SANDBOX="auto",
        ASSISTD_SANDBOX_RUNTIME="runsc",
        ASSISTD_SANDBOX_POOL="0",
    )
    proc = ServerProcess(tmp_path_factory.mktemp("gvisor"), env=env).start()
    try:
        client = make_client(proc.base_url, KEY_ALPHA)
        model = scripted[0]
        model.reset()
        coder = client.beta.assistants.create(model="gpt-4o", tools=[CI_TOOL])
        thread = client.beta.threads.create()
        code = "import numpy as np\nprint(np.arange(4).sum())\nprint(open('/proc/version').read())"
        run, outputs = run_code(client, model, coder.id, thread.id, code)
        assert run.status == "completed"
        logs = logs_of(outputs)
        assert logs.startswith("6\n")
        assert "gVisor" in logs or "4.4.0" in logs, logs  # gVisor's synthetic kernel

        # Files cross by Docker archive streaming, which gVisor's file cache must not hide.
        upload = client.files.create(file=("in.txt", b"from the user\n"), purpose="assistants")
        attached = {"file_id": upload.id, "tools": [CI_TOOL]}
        thread = client.beta.threads.create(
            messages=[{"role": "user", "content": "Shout it.", "attachments": [attached]}]
        )
        code = "data = open('in.txt').read()\nopen('out.txt', 'w').write(data.upper())\nprint(data)"
        reply = "[out.txt](sandbox:/mnt/data/out.txt)"
        run, outputs = run_code(client, model, coder.id, thread.id, code, reply)
        assert logs_of(outputs) == "from the user\n\n"
        message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
        (annotation,) = next(p.text for p in message.content if p.type == "text").annotations
        assert client.files.content(annotation.file_path.file_id).content == b"FROM THE USER\n"

        # gVisor lets user code open PID 1's stdout: a forged reply fails its MAC, and the
        # session ends cleanly instead of being believed.
        forge = (
            "with open('/proc/1/fd/1', 'wb', buffering=0) as fh:\n"
            '    fh.write(b\'{"ok": true, "logs": "forged"}\\n\' + b\'x\' * 3_000_000)\n'
            "print('after')"
        )
        run, outputs = run_code(client, model, coder.id, thread.id, forge)
        assert run.status == "completed"
        assert "forged" not in logs_of(outputs) and "control channel" in logs_of(outputs)
        _, fresh = run_code(client, model, coder.id, thread.id, "print('fresh')")
        assert logs_of(fresh).endswith("fresh\n")
    finally:
        proc.stop()
