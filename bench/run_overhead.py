"""What a run costs on top of the model it calls.

Two scripted OpenAI-compatible models run as their own processes (tests/support/
scripted_model.py): one answers after a fixed 200 ms, the other after 1 s. assistd
(`python -m server serve`, fresh temp data dir) routes `m200` and `m1000` to them through
MODELS_CONFIG, so litellm really calls them over HTTP.

1. Sequential, interleaved: a streamed run (`runs.create(stream=True)`, clock from the
   request to `thread.run.completed`, and to the first `thread.message.delta`) against a
   direct streamed chat call to the same model with the very messages the run sent (read
   back from the model's request log), clock to the last chunk and to the first content
   chunk. Both through the official `openai` SDK.
2. Burst: 200 streamed runs at once (AsyncOpenAI, one thread each) on the 1 s model;
   wall time from the first request to the last `thread.run.completed`, and errors.

Prints numbers, ratios and PASS/MISS against the issue's targets; it asserts nothing.

    .venv/bin/python bench/run_overhead.py            # ~1 min
    .venv/bin/python bench/run_overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI, OpenAI

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import cpu_seconds  # noqa: E402
from tests.support.server_process import ServerProcess, free_port  # noqa: E402

TARGET_TOTAL_RATIO = 1.10
TARGET_OVERHEAD_MS = 15.0
TARGET_FIRST_DELTA_MS = 5.0
TARGET_BURST_S = 1.3
PROMPT = "Summarise the plot of Hamlet in one sentence."


class ScriptedModelProcess:
    """tests/support/scripted_model.py in its own process, with a fixed latency."""

    def __init__(self, latency_ms: float, log: Path) -> None:
        self.port = free_port()
        self.latency_ms = latency_ms
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedModelProcess:
        cmd = [sys.executable, "-m", "tests.support.scripted_model", "--port", str(self.port)]
        cmd += ["--latency-ms", str(self.latency_ms), "--chunks", "8"]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base_url}/models", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"scripted model did not start:\n{self.log_path.read_text()}")

    def last_request(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/_scripted/requests").json()["requests"][-1]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def models_config(path: Path, fast: ScriptedModelProcess, slow: ScriptedModelProcess) -> Path:
    entries = [
        {"model_name": name, "litellm_params": {"model": "openai/scripted-model",
                                                 "api_base": model.base_url, "api_key": "k"}}
        for name, model in (("m200", fast), ("m1000", slow))
    ]  # fmt: skip
    path.write_text(json.dumps({"model_list": entries}))  # JSON is YAML
    return path


def streamed_run(client: OpenAI, assistant_id: str) -> tuple[float, float]:
    """(seconds to thread.run.completed, seconds to the first message delta)."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": PROMPT}])
    t0 = time.perf_counter()
    first = total = float("nan")
    stream = client.beta.threads.runs.create(thread.id, assistant_id=assistant_id, stream=True)
    for event in stream:
        if event.event == "thread.message.delta" and first != first:
            first = time.perf_counter() - t0
        elif event.event == "thread.run.completed":
            total = time.perf_counter() - t0
        elif event.event in ("thread.run.failed", "error"):
            raise RuntimeError(f"run failed: {event.data}")
    return total, first


def direct_chat(client: OpenAI, request: dict[str, Any]) -> tuple[float, float]:
    """(seconds to the last chunk, seconds to the first content chunk)."""
    t0 = time.perf_counter()
    first = float("nan")
    stream = client.chat.completions.create(
        model=request["model"], messages=request["messages"], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first != first:
            first = time.perf_counter() - t0
    return time.perf_counter() - t0, first


async def litellm_direct(
    config: Path, request: dict[str, Any], rounds: int
) -> tuple[list[tuple[float, float]], float]:
    """The same call through litellm in this process, exactly as assistd makes it
    (`litellm.acompletion` with the route's params, as `direct_routes` picks for a name
    with one deployment and no fallbacks): the share of the overhead that is litellm's
    own. Also returns litellm's CPU milliseconds per call in this process."""
    import litellm

    from server.runs.model_client import direct_routes, load_models_config

    litellm.disable_streaming_logging = True
    model_list, fallbacks = load_models_config(config)
    params = direct_routes(model_list, fallbacks)["m200"]
    out: list[tuple[float, float]] = []
    cpu0 = 0.0
    for i in range(rounds + 1):
        if i == 1:
            cpu0 = time.process_time()
        t0 = time.perf_counter()
        first = float("nan")
        stream = await litellm.acompletion(
            **params,
            messages=request["messages"],
            stream=True,
            stream_options={"include_usage": True},
            num_retries=0,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first != first:
                first = time.perf_counter() - t0
        out.append((time.perf_counter() - t0, first))
    cpu_ms = (time.process_time() - cpu0) * 1000 / rounds
    return out[1:], cpu_ms  # the first call warms litellm up


async def burst(base_url: str, assistant_id: str, n: int) -> tuple[float, int, int]:
    """n streamed runs at once; (wall seconds, completed, errors)."""
    # The SDK's own pool allows 1,000 connections: every run gets its own.
    client = AsyncOpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=60)
    threads = await asyncio.gather(*(client.beta.threads.create() for _ in range(n)))
    await asyncio.gather(
        *(client.beta.threads.messages.create(t.id, role="user", content=PROMPT) for t in threads)
    )

    async def one(thread_id: str) -> bool:
        stream = await client.beta.threads.runs.create(
            thread_id, assistant_id=assistant_id, stream=True
        )
        ok = False
        async for event in stream:
            ok = ok or event.event == "thread.run.completed"
        return ok

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(t.id) for t in threads), return_exceptions=True)
    wall = time.perf_counter() - t0
    await client.close()
    completed = sum(r is True for r in results)
    return wall, completed, n - completed


def p50(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller burst")
    parser.add_argument("--rounds", type=int, help="sequential rounds (30; quick: 8)")
    parser.add_argument("--concurrency", type=int, help="runs in the burst (200; quick: 50)")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm loads
    rounds = args.rounds or (8 if args.quick else 30)
    burst_n = args.concurrency or (50 if args.quick else 200)

    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        tmpdir = Path(tmp)
        fast = ScriptedModelProcess(200, tmpdir / "model200.log").start()
        slow = ScriptedModelProcess(1000, tmpdir / "model1000.log").start()
        config = models_config(tmpdir / "models.yaml", fast, slow)
        server = ServerProcess(tmpdir / "server", env={"MODELS_CONFIG": str(config)}).start()
        try:
            client = OpenAI(base_url=f"{server.base_url}/v1", api_key="local", max_retries=0)
            direct = OpenAI(base_url=fast.base_url, api_key="k", max_retries=0)
            fast_asst = client.beta.assistants.create(model="m200", instructions="Be brief.")
            slow_asst = client.beta.assistants.create(model="m1000", instructions="Be brief.")

            streamed_run(client, fast_asst.id)  # warm up: imports, pools, connections
            request = fast.last_request()
            direct_chat(direct, request)
            runs: list[tuple[float, float]] = []
            chats: list[tuple[float, float]] = []
            for _ in range(rounds):
                runs.append(streamed_run(client, fast_asst.id))
                chats.append(direct_chat(direct, request))
            litellm_times, litellm_cpu_ms = asyncio.run(litellm_direct(config, request, rounds))
            print(f"measuring a burst of {burst_n} streamed runs ...", flush=True)
            assert server.proc is not None
            cpu0 = cpu_seconds(server.proc.pid)
            wall, completed, errors = asyncio.run(
                burst(f"{server.base_url}/v1", slow_asst.id, burst_n)
            )
            burst_cpu_ms = (cpu_seconds(server.proc.pid) - cpu0) * 1000 / burst_n
        finally:
            server.stop()
            fast.stop()
            slow.stop()

    run_total = p50([r[0] for r in runs]) * 1000
    run_first = p50([r[1] for r in runs]) * 1000
    chat_total = p50([c[0] for c in chats]) * 1000
    chat_first = p50([c[1] for c in chats]) * 1000
    overhead = p50([(r[0] - c[0]) * 1000 for r, c in zip(runs, chats, strict=True)])
    first_extra = p50([(r[1] - c[1]) * 1000 for r, c in zip(runs, chats, strict=True)])

    print(f"\n{rounds} interleaved rounds, model latency 200 ms, p50 in ms:")
    print(f"  {'':<28} {'total':>8} {'first delta':>12}")
    print(f"  {'streamed run (assistd)':<28} {run_total:8.1f} {run_first:12.1f}")
    print(f"  {'direct chat stream':<28} {chat_total:8.1f} {chat_first:12.1f}")
    lite_total = p50([r[0] for r in litellm_times]) * 1000
    lite_first = p50([r[1] for r in litellm_times]) * 1000
    print(f"  {'litellm, in-process':<28} {lite_total:8.1f} {lite_first:12.1f}")
    print(f"  {'run - direct (paired p50)':<28} {overhead:8.1f} {first_extra:12.1f}")
    print(f"  ratio total x{run_total / chat_total:.3f}")
    print(
        f"  litellm alone: +{lite_total - chat_total:.1f} ms total, "
        f"+{lite_first - chat_first:.1f} ms first delta, {litellm_cpu_ms:.1f} ms CPU per call"
    )
    print(f"\nburst: {burst_n} streamed runs at once, model latency 1 s:")
    print(f"  wall {wall:.2f} s, completed {completed}, errors {errors}")
    print(f"  server CPU per run {burst_cpu_ms:.1f} ms ({os.cpu_count()} cores shared with the")
    print("  load generator and both model processes)")

    checks = [
        (f"total x{run_total / chat_total:.3f} <= x{TARGET_TOTAL_RATIO}",
         run_total / chat_total <= TARGET_TOTAL_RATIO),
        (f"overhead p50 {overhead:.1f} ms <= {TARGET_OVERHEAD_MS:g} ms",
         overhead <= TARGET_OVERHEAD_MS),
        (f"first delta +{first_extra:.1f} ms <= +{TARGET_FIRST_DELTA_MS:g} ms",
         first_extra <= TARGET_FIRST_DELTA_MS),
        (f"burst of {burst_n}: {wall:.2f} s <= {TARGET_BURST_S} s, no errors",
         wall <= TARGET_BURST_S and errors == 0),
    ]  # fmt: skip
    print("\ntargets:")
    for label, ok in checks:
        print(f"  {label:<48} {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
