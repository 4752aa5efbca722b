"""One thread against an installed offline bundle, run inside the test's network namespace.

    python -m tests.support.offline_round_trip PREFIX WORKDIR

The scripted model runs in this process on the namespace's loopback; the server is the
bundle's own `PREFIX/bin/assistd serve` (its venv, not this checkout). The run calls
code_interpreter (which must import a package the bundle's sandbox image added) and
file_search over an uploaded file. Prints one JSON line of what happened, for
tests/test_offline_bundle.py to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from tests.support.scripted_model import ScriptedModelServer
from tests.support.server_process import free_port

KEY = "sk-offline-0123456789"
CODE = "import sklearn\nprint('sklearn', sklearn.__version__)"
FACT = "The reactor's coolant is replaced every 41 days by the night shift.\n"


def main(prefix: Path, work: Path) -> dict[str, Any]:
    model_server = ScriptedModelServer().start()
    model = model_server.model
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTD_", "MODEL"))}
    env.pop("DATABASE_URL", None)
    env.update(
        MODEL_BASE_URL=model_server.base_url,
        ASSISTD_API_KEYS=KEY,
        ASSISTD_WORKER_POLL_SECONDS="0.1",
        ASSISTD_SANDBOX_TIMEOUT="30",
    )
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(prefix / "bin" / "assistd"), "serve", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        result = one_thread(OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0), model, work)
    finally:
        server.terminate()
        server.wait(timeout=30)
        model_server.stop()
    result["log"] = [
        line for line in log_path.read_text().splitlines() if "code_interpreter:" in line
    ]
    return result


def one_thread(client: OpenAI, model: Any, work: Path) -> dict[str, Any]:
    doc = work / "procedures.md"
    doc.write_text("# Maintenance\n\n" + FACT)
    with doc.open("rb") as handle:
        uploaded = client.files.create(file=handle, purpose="assistants")
    store = client.vector_stores.create(name="Procedures", file_ids=[uploaded.id])
    deadline = time.monotonic() + 120
    while client.vector_stores.retrieve(store.id).file_counts.completed < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the file was not ingested in time")
        time.sleep(0.2)
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}, {"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    model.tool_calls([{"name": "code_interpreter", "arguments": json.dumps({"code": CODE})}])
    model.tool_calls([{"name": "file_search", "arguments": json.dumps({"queries": ["coolant"]})}])
    model.text("Every 41 days 【0:0†procedures.md】.")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "How often is the coolant replaced?"}]
    )
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    calls = [
        call.model_dump()
        for step in steps.data
        if step.step_details.type == "tool_calls"
        for call in step.step_details.tool_calls
    ]
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    offered = {t["function"]["name"]: t for t in model.requests[0].get("tools", [])}
    tool_messages = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    return {
        "run_status": run.status,
        "last_error": run.last_error.model_dump() if run.last_error else None,
        "thread_id": thread.id,
        "calls": calls,
        "reply": messages[-1].content[0].text.model_dump() if messages else None,
        "code_interpreter_description": offered.get("code_interpreter", {})
        .get("function", {})
        .get("description"),
        "tool_results": tool_messages,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
