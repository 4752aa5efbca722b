"""What the inspector's run records cost a run: two servers side by side, one recording
(ASSISTD_MODEL_CALL_LOG=on, the default) and one not (off), the same scripted model
behind both, streamed runs interleaved between them.

Each round runs one streamed run on each server (a plain answer: one model call, two
record writes) and one run with a function call answered by the client (two model calls,
a requires_action round trip). Prints the paired p50 of the run times, the difference,
and each server's CPU per run; it asserts nothing.

    .venv/bin/python bench/run_records.py             # ~1 min
    .venv/bin/python bench/run_records.py --rounds 10  # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from openai import OpenAI

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import cpu_seconds  # noqa: E402
from bench.run_overhead import ScriptedModelProcess, models_config  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def plain_run(client: OpenAI, assistant_id: str) -> float:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hi."}])
    t0 = time.perf_counter()
    for event in client.beta.threads.runs.create(thread.id, assistant_id=assistant_id, stream=True):
        if event.event in ("thread.run.failed", "error"):
            raise RuntimeError(f"run failed: {event.data}")
    return time.perf_counter() - t0


def tool_run(client: OpenAI, model: ScriptedModelProcess, assistant_id: str) -> float:
    """A function call, its output, then the answer: two model calls."""
    reply = {"kind": "tool_calls", "tool_calls": [{"name": "lookup", "arguments": "{}"}]}
    httpx.post(f"http://127.0.0.1:{model.port}/_scripted/replies", json=reply).raise_for_status()
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Look it up."}])
    t0 = time.perf_counter()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=5
    )
    assert run.status == "requires_action", run.status
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "42"}],
        poll_interval_ms=5,
    )
    assert run.status == "completed", run.status
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        tmpdir = Path(tmp)
        model = ScriptedModelProcess(50, tmpdir / "model.log").start()
        config = models_config(tmpdir / "models.yaml", model, model)
        servers = {
            log: ServerProcess(
                tmpdir / f"server-{log}",
                env={"MODELS_CONFIG": str(config), "ASSISTD_MODEL_CALL_LOG": log},
            ).start(timeout=300)
            for log in ("on", "off")
        }
        try:
            clients = {
                log: OpenAI(base_url=f"{s.base_url}/v1", api_key="local", max_retries=0)
                for log, s in servers.items()
            }
            assistants = {
                log: c.beta.assistants.create(model="m200", tools=[TOOL]).id
                for log, c in clients.items()
            }
            for log in servers:  # warm up
                plain_run(clients[log], assistants[log])
                tool_run(clients[log], model, assistants[log])
            times: dict[str, dict[str, list[float]]] = {
                log: {"plain": [], "tool": []} for log in servers
            }
            cpu: dict[str, float] = {}
            for log, s in servers.items():
                assert s.proc is not None
                cpu[log] = cpu_seconds(s.proc.pid)
            for _ in range(args.rounds):
                for log in ("on", "off"):
                    times[log]["plain"].append(plain_run(clients[log], assistants[log]))
                    times[log]["tool"].append(tool_run(clients[log], model, assistants[log]))
            for log, s in servers.items():
                assert s.proc is not None
                cpu[log] = (cpu_seconds(s.proc.pid) - cpu[log]) * 1000 / (2 * args.rounds)
        finally:
            for s in servers.values():
                s.stop()
            model.stop()

    print(f"load average at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{args.rounds} interleaved rounds, model latency 50 ms, p50 in ms")
    print(f"  {'':<34} {'records on':>11} {'off':>8} {'on - off (paired)':>18}")
    for kind, label in (
        ("plain", "plain run (1 model call)"),
        ("tool", "function-call run (2 calls)"),
    ):
        on, off = times["on"][kind], times["off"][kind]
        paired = statistics.median(a - b for a, b in zip(on, off, strict=True)) * 1000
        print(
            f"  {label:<34} {statistics.median(on) * 1000:11.1f} "
            f"{statistics.median(off) * 1000:8.1f} {paired:18.1f}"
        )
    print(
        f"  server CPU per run (both kinds)    {cpu['on']:11.1f} {cpu['off']:8.1f} "
        f"{cpu['on'] - cpu['off']:18.1f}   ratio x{cpu['on'] / cpu['off']:.3f}"
    )


if __name__ == "__main__":
    main()
