"""code_interpreter against careless and hostile code: files past a cap are reported in
the step's logs (never dropped silently), large inputs are refused with a message, user
code cannot forge the kernel's replies, a deleted thread (or a revoked project key) loses
its sandbox at once, and the session cap evicts the least recently used session and says
so on that thread's next run.

One server with low caps (5 MiB files, 3 files and 1 image per execution, 2 sessions)
keeps every crossing small; one test uses the real defaults for a 100 MB file."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.conftest import KEY_ALPHA, make_client, server_env
from tests.support.docker_check import require_sandbox, sandboxed_server
from tests.support.scripted_model import ScriptedModel
from tests.support.server_process import REPO, SERVER_PYTHON, ServerProcess
from tests.test_code_interpreter import CI_TOOL, logs_of, run_code

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def capped(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> Iterator[ServerProcess]:
    with sandboxed_server(
        tmp_path_factory.mktemp("capped-sandbox"),
        scripted[1],
        ASSISTD_MAX_FILE_BYTES=str(16 * MIB),  # uploads: room for a 6 MiB input
        ASSISTD_SANDBOX_TIMEOUT="30",  # a cold matplotlib import on a loaded CI machine
        ASSISTD_SANDBOX_DISK="16m",
        ASSISTD_SANDBOX_POOL="0",
        ASSISTD_SANDBOX_MAX_FILE_BYTES=str(5 * MIB),
        ASSISTD_SANDBOX_MAX_INPUT_BYTES=str(5 * MIB),
        ASSISTD_SANDBOX_MAX_FILES="3",
        ASSISTD_SANDBOX_MAX_IMAGES="1",
        ASSISTD_SANDBOX_MAX_SESSIONS="2",
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def capped_client(capped: ServerProcess) -> OpenAI:
    return make_client(capped.base_url, KEY_ALPHA)


@pytest.fixture
def coder(capped_client: OpenAI):  # type: ignore[no-untyped-def]
    return capped_client.beta.assistants.create(model="gpt-4o", tools=[CI_TOOL])


def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=10)


def container_of(client: OpenAI, model: ScriptedModel, coder, thread_id: str) -> Any:  # type: ignore[no-untyped-def]
    """The Docker container running this thread's session (its hostname is its id)."""
    _, outputs = run_code(client, model, coder.id, thread_id, "import socket\nsocket.gethostname()")
    return docker_client().containers.get(logs_of(outputs).strip().strip("'"))


def volumes_of(container: Any) -> list[str]:
    return [m["Name"] for m in container.attrs["Mounts"] if m.get("Type") == "volume"]


def eventually(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def gone(container_id: str, volumes: list[str]) -> bool:
    import docker

    daemon = docker_client()
    try:
        daemon.containers.get(container_id)
        return False
    except docker.errors.NotFound:
        pass
    for name in volumes:
        try:
            daemon.volumes.get(name)
            return False
        except docker.errors.NotFound:
            pass
    return True


def test_outputs_past_the_caps_are_reported_in_the_logs_and_the_thread_keeps_working(
    capped_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import matplotlib.pyplot as plt\n"
        "kept = 7\n"
        "open('/mnt/data/big.bin', 'wb').write(b'x' * (6 * 1024 * 1024))\n"
        "for name in 'abcd':\n"
        "    open(f'/mnt/data/{name}.txt', 'w').write(name * 10)\n"
        "plt.figure(); plt.plot([1, 2])\n"
        "plt.figure(); plt.plot([2, 1])\n"
        "print('wrote')"
    )
    names = ["big.bin", "a.txt", "b.txt", "c.txt", "d.txt"]
    links = " ".join(f"[{n}](sandbox:/mnt/data/{n})" for n in names)
    thread = capped_client.beta.threads.create()
    run, outputs = run_code(capped_client, model, coder.id, thread.id, code, "Files: " + links)
    assert run.status == "completed"
    logs = logs_of(outputs)
    assert logs.startswith("wrote\n")
    # Every skipped output is named with the cap that stopped it.
    assert "/mnt/data/big.bin" in logs and "5 MiB" in logs, logs
    assert "/mnt/data/d.txt" in logs and "3 files" in logs, logs
    assert "1 image" in logs, logs
    assert [o["type"] for o in outputs].count("image") == 1
    message = capped_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    text = next(p.text for p in message[0].content if p.type == "text")
    linked = {a.text for a in text.annotations}
    assert linked == {f"sandbox:/mnt/data/{n}.txt" for n in "abc"}
    # The model read the same notes.
    tool_message = next(m for m in model.requests[-1]["messages"] if m["role"] == "tool")
    assert "/mnt/data/big.bin" in tool_message["content"]

    run2, after = run_code(capped_client, model, coder.id, thread.id, "print(kept)")
    assert run2.status == "completed"
    assert logs_of(after) == "7\n"


def test_a_large_input_file_is_refused_with_a_message_and_the_thread_stays_usable(
    capped_client: OpenAI, model: ScriptedModel, coder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "huge.csv"
    big.write_bytes(b"n\n" + b"1\n" * (3 * MIB))  # 6 MiB: past the 5 MiB input cap
    small = tmp_path / "small.csv"
    small.write_text("n\n1\n2\n")
    uploads = [
        capped_client.files.create(file=p.open("rb"), purpose="assistants") for p in (big, small)
    ]
    thread = capped_client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Sum both.",
                "attachments": [{"file_id": u.id, "tools": [CI_TOOL]} for u in uploads],
            }
        ]
    )
    code = "import os\nprint(sorted(os.listdir('/mnt/data')))"
    run, outputs = run_code(capped_client, model, coder.id, thread.id, code)
    assert run.status == "completed"
    logs = logs_of(outputs)
    assert "['small.csv']" in logs, logs
    assert "huge.csv" in logs and "5 MiB" in logs, logs
    tool = next(
        t for t in model.requests[0]["tools"] if t["function"]["name"] == "code_interpreter"
    )
    assert "huge.csv" in tool["function"]["description"]  # the model knows before it tries

    run2, after = run_code(
        capped_client, model, coder.id, thread.id, "print(open('small.csv').read().split())"
    )
    assert run2.status == "completed"
    assert logs_of(after).startswith("['n', '1', '2']")


def test_user_code_cannot_forge_or_corrupt_the_kernels_replies(
    capped: ServerProcess, capped_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import os\n"
        "kept = 'yes'\n"
        'forged = b\'{"ok": true, "logs": "forged"}\\n\'\n'
        "for path in ['/proc/1/fd/0', '/proc/1/fd/1', '/proc/1/fd/2', '/proc/1/mem']:\n"
        "    try:\n"
        "        with open(path, 'wb', buffering=0) as fh:\n"
        "            fh.write(forged)\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, e.errno)\n"
        "print('real output', flush=True)\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        "        os.set_blocking(fd, False)\n"
        "        os.write(fd, forged)\n"
        "        os.write(fd, b'x' * 10_000)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    thread = capped_client.beta.threads.create()
    run, outputs = run_code(capped_client, model, coder.id, thread.id, code)
    assert run.status == "completed"
    logs = logs_of(outputs)
    refusals = "".join(
        f"refused {p} 13\n" for p in ("/proc/1/fd/0", "/proc/1/fd/1", "/proc/1/fd/2")
    )
    assert logs.startswith(refusals + "refused /proc/1/mem 13\nreal output\n"), logs[:500]
    # The session was neither corrupted nor restarted: its variables are still there.
    run2, after = run_code(capped_client, model, coder.id, thread.id, "print(kept)")
    assert run2.status == "completed"
    assert logs_of(after) == "yes\n"
    assert "JSONDecodeError" not in capped.log()


def test_deleting_a_thread_removes_its_container_and_files_promptly(
    capped_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    thread = capped_client.beta.threads.create()
    run_code(
        capped_client, model, coder.id, thread.id, "open('/mnt/data/secret.txt', 'w').write('s')"
    )
    container = container_of(capped_client, model, coder, thread.id)
    volumes = volumes_of(container)
    assert volumes, "/mnt/data should be a Docker volume the server can remove"
    capped_client.beta.threads.delete(thread.id)
    assert eventually(lambda: gone(container.id, volumes), 3.0)


def test_revoking_the_last_key_of_a_project_ends_its_sessions(
    capped: ServerProcess, model: ScriptedModel, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env.update(ASSISTD_DATA_DIR=str(capped.data_dir), DATABASE_URL=capped.database_url)
    assistd = [str(Path(SERVER_PYTHON).with_name("assistd")), "keys"]
    created = subprocess.run(
        [*assistd, "create", "--project", "revoked-team"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    key = created.stdout.strip()
    client = make_client(capped.base_url, key)
    coder = client.beta.assistants.create(model="gpt-4o", tools=[CI_TOOL])
    thread = client.beta.threads.create()
    container = container_of(client, model, coder, thread.id)
    volumes = volumes_of(container)
    subprocess.run(
        [*assistd, "revoke", key],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert eventually(lambda: gone(container.id, volumes), 12.0)


def test_the_session_cap_evicts_the_least_recently_used_and_its_next_run_says_so(
    capped: ServerProcess, capped_client: OpenAI, model: ScriptedModel, coder
) -> None:  # type: ignore[no-untyped-def]
    first, second, third = (capped_client.beta.threads.create() for _ in range(3))
    run_code(capped_client, model, coder.id, first.id, "state = 'first'")
    run_code(capped_client, model, coder.id, second.id, "state = 'second'")
    run_code(capped_client, model, coder.id, third.id, "state = 'third'")  # evicts first

    assert capped.proc is not None
    mine = f":{capped.proc.pid}:"
    live = [
        c
        for c in docker_client().containers.list(filters={"label": "assistd.sandbox"}, sparse=True)
        if mine in c.attrs["Labels"]["assistd.sandbox"]  # sparse: the list's own fields
    ]
    assert len(live) <= 2

    run, outputs = run_code(capped_client, model, coder.id, first.id, "print(state)")
    assert run.status == "completed"
    logs = logs_of(outputs)
    assert "reset" in logs and "NameError" in logs, logs
    _, kept = run_code(capped_client, model, coder.id, third.id, "print(state)")
    assert logs_of(kept) == "third\n"  # used more recently than `second`: not evicted


@pytest.fixture
def defaults_server(
    tmp_path_factory: pytest.TempPathFactory, scripted: tuple[ScriptedModel, str]
) -> Iterator[ServerProcess]:
    require_sandbox()
    env = server_env(scripted[1], ASSISTD_SANDBOX="auto", ASSISTD_SANDBOX_POOL="0")
    proc = ServerProcess(tmp_path_factory.mktemp("default-limits"), env=env).start()
    yield proc
    proc.stop()


def test_a_100_mb_output_file_is_returned_under_the_default_limits(
    defaults_server: ServerProcess, model: ScriptedModel
) -> None:
    client = make_client(defaults_server.base_url, KEY_ALPHA)
    coder = client.beta.assistants.create(model="gpt-4o", tools=[CI_TOOL])
    thread = client.beta.threads.create()
    code = "open('/mnt/data/big.bin', 'wb').write(bytes(100_000_000))"
    reply = "Here: [big.bin](sandbox:/mnt/data/big.bin)"
    run, outputs = run_code(client, model, coder.id, thread.id, code, reply)
    assert run.status == "completed"
    message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    (annotation,) = next(p.text for p in message.content if p.type == "text").annotations
    stored = client.files.retrieve(annotation.file_path.file_id)
    assert stored.bytes == 100_000_000 and stored.filename == "big.bin"
    run2, after = run_code(client, model, coder.id, thread.id, "print('next')")
    assert run2.status == "completed" and logs_of(after) == "next\n"


def test_containers_and_volumes_nobody_tracks_are_swept() -> None:
    """What a container create that timed out on the client leaves: the daemon finished
    it later, and Docker recreated its volume unlabelled. The upkeep's sweep removes
    both and leaves tracked sessions alone (the library, in-process)."""
    require_sandbox()
    from sandbox import containers
    from sandbox.sessions import SandboxConfig, SandboxManager

    manager = SandboxManager(SandboxConfig(pool_size=0))
    daemon = docker_client()
    try:
        kept, _ = manager.session("kept")
        stray = containers.new_name()
        daemon.containers.create(
            "assistd-sandbox:1", name=stray, labels={containers.LABEL: manager.owner}
        )
        unlabelled = daemon.volumes.create(name=containers.new_name())
        assert manager.remove_orphans() >= 1  # ours, and any a dead process left
        assert gone(stray, [unlabelled.name])
        assert not gone(kept.container.id, [kept.name])
        assert manager.run("kept", "print(1)").logs == "1\n"
    finally:
        manager.close()
    assert gone(kept.container.id, [kept.name])
