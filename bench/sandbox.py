"""Code-interpreter latency against raw Docker, in the same run.

1. Warm execution of `print(1)`: a persistent session (sandbox.SandboxManager, the
   library path) against a raw `docker exec python3 -c 'print(1)'` (SDK exec_run) in the
   same container.
2. The whole server path: streamed runs in which the scripted model calls
   code_interpreter, with the thread's session warm. Two clocks: the server's own log
   line (call complete -> outputs emitted) and the SSE arrival gap from the delta that
   carries the code input to the one that carries its outputs (one stream, so the
   client's distance cancels out, but the end of the model's stream is inside it).
3. A new thread's first execution: from the warm pool, without a pool (container start
   and kernel start), and a raw `docker run --rm` of the same snippet.
4. Moving files (issue 12): a run that reads a 100 MB attachment and writes a 100 MB
   file, through the server. The server's RSS is sampled every 10 ms; its peak growth is
   set against the file size (files stream through Docker's archive API, so it should
   stay a small fraction of it), with the time each way.

Needs Docker and the image (`assistd sandbox build`). Prints numbers; asserts nothing.

    .venv/bin/python bench/sandbox.py           # ~1.5 min
    .venv/bin/python bench/sandbox.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import docker  # noqa: E402
from openai import AssistantEventHandler, OpenAI  # noqa: E402

from sandbox.sessions import SandboxConfig, SandboxManager  # noqa: E402
from tests.support.scripted_model import start_scripted_model  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

TARGET_SERVER_P50_MS = 10.0
TARGET_FIRST_MS = 50.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def warm_exec(manager: SandboxManager, n: int) -> tuple[list[float], list[float]]:
    session, _ = manager.session("bench-warm")
    session.execute("print(1)", 10)
    ours = timed(lambda: session.execute("print(1)", 10), n)
    raw = timed(lambda: session.container.exec_run(["python3", "-c", "print(1)"]), max(5, n // 10))
    return ours, raw


def first_exec(config: SandboxConfig, n: int) -> dict[str, list[float]]:
    client = docker.from_env()
    results: dict[str, list[float]] = {"pool": [], "no pool": [], "docker run": []}
    pooled = SandboxManager(config)
    try:
        for i in range(n):
            pooled.fill_pool()  # the upkeep thread's job, done here between samples
            t0 = time.perf_counter()
            pooled.execute(f"pool-{i}", "print(1)")
            results["pool"].append((time.perf_counter() - t0) * 1000)
            pooled.drop(f"pool-{i}")
    finally:
        pooled.close()
    cold = SandboxManager(SandboxConfig(image=config.image, pool_size=0))
    try:
        for i in range(n):
            t0 = time.perf_counter()
            cold.execute(f"cold-{i}", "print(1)")
            results["no pool"].append((time.perf_counter() - t0) * 1000)
            cold.drop(f"cold-{i}")
    finally:
        cold.close()
    for _ in range(n):
        t0 = time.perf_counter()
        client.containers.run(config.image, ["python3", "-c", "print(1)"], remove=True)
        results["docker run"].append((time.perf_counter() - t0) * 1000)
    return results


class Clock(AssistantEventHandler):
    """Arrival times of the code-input deltas and of the outputs delta."""

    def __init__(self) -> None:
        super().__init__()
        self.last_input = 0.0
        self.outputs = 0.0

    def on_tool_call_delta(self, delta, snapshot) -> None:  # type: ignore[no-untyped-def]
        if delta.type != "code_interpreter":
            return
        if delta.code_interpreter.input:
            self.last_input = time.perf_counter()
        if delta.code_interpreter.outputs and not self.outputs:
            self.outputs = time.perf_counter()


def server_path(n: int) -> tuple[list[float], list[float]]:
    """(SSE: last input delta -> outputs delta, server log: call complete -> outputs)."""
    model, model_url, stop = start_scripted_model()
    env = {
        "MODEL_BASE_URL": model_url,
        "ASSISTD_SANDBOX_POOL": "1",
        "ASSISTD_WORKER_POLL_SECONDS": "0.1",
    }
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        server = ServerProcess(Path(tmp), env=env).start()
        try:
            client = OpenAI(base_url=f"{server.base_url}/v1", api_key="local", max_retries=0)
            coder = client.beta.assistants.create(
                model="gpt-4o", tools=[{"type": "code_interpreter"}]
            )
            thread = client.beta.threads.create()
            call = {"name": "code_interpreter", "arguments": json.dumps({"code": "print(1)"})}
            samples: list[float] = []
            for i in range(n + 2):
                model.tool_calls([call], chunks=1).text("ok")
                clock = Clock()
                with client.beta.threads.runs.stream(
                    thread_id=thread.id, assistant_id=coder.id, event_handler=clock
                ) as stream:
                    stream.until_done()
                if i >= 2:  # the first runs start the session and warm the path
                    samples.append((clock.outputs - clock.last_input) * 1000)
            logged = [
                float(m)
                for m in re.findall(
                    r"code_interpreter call \S+ answered in ([\d.]+) ms", server.log()
                )
            ][2:]
            return samples, logged
        finally:
            server.stop()
            stop()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def transfer(size_mb: int) -> dict[str, float]:
    """Peak server RSS growth and wall time for a run moving `size_mb` MB in and out."""
    model, model_url, stop = start_scripted_model()
    env = {"MODEL_BASE_URL": model_url, "ASSISTD_SANDBOX_POOL": "1"}
    tool = {"type": "code_interpreter"}
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        server = ServerProcess(Path(tmp), env=env).start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            client = OpenAI(base_url=f"{server.base_url}/v1", api_key="local", max_retries=0)
            coder = client.beta.assistants.create(model="gpt-4o", tools=[tool])
            data = Path(tmp) / "input.bin"
            with data.open("wb") as fh:
                for _ in range(size_mb):
                    fh.write(os.urandom(1_000_000))
            upload = client.files.create(file=data.open("rb"), purpose="assistants")

            def run_code(thread_id: str, code: str, reply: str) -> Any:
                call = {"name": "code_interpreter", "arguments": json.dumps({"code": code})}
                model.tool_calls([call]).text(reply)
                return client.beta.threads.runs.create_and_poll(
                    thread_id=thread_id, assistant_id=coder.id, poll_interval_ms=50
                )

            # Warm the code paths on another thread; the pool then holds a fresh session.
            run_code(client.beta.threads.create().id, "1", "ok")
            time.sleep(2)
            attachment = {"file_id": upload.id, "tools": [tool]}
            thread = client.beta.threads.create(
                messages=[{"role": "user", "content": "copy", "attachments": [attachment]}]
            )
            base = peak = rss_mb(pid)
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_mb(pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t0 = time.perf_counter()
            code = "import shutil\nshutil.copy('input.bin', 'output.bin')"
            run = run_code(thread.id, code, "[out](sandbox:/mnt/data/output.bin)")
            seconds = time.perf_counter() - t0
            done.set()
            sampler.join()
            message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id)
            annotations = message.data[0].content[-1].text.annotations
            stored = client.files.retrieve(annotations[0].file_path.file_id).bytes
            assert run.status == "completed" and stored == size_mb * 1_000_000, (run, stored)
            return {"base": base, "peak": peak, "seconds": seconds}
        finally:
            server.stop()
            stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transfer-only", action="store_true")
    parser.add_argument("--size-mb", type=int, help="file size for part 4 (default 100)")
    args = parser.parse_args()
    size_mb = args.size_mb or (20 if args.quick else 100)
    moved = transfer(size_mb)
    growth = moved["peak"] - moved["base"]
    print(f"\nmoving a {size_mb} MB file in and a {size_mb} MB file out in one run:")
    print(f"  server RSS {moved['base']:.0f} MB before, peak {moved['peak']:.0f} MB during")
    print(f"  peak growth {growth:.1f} MB = x{growth / size_mb:.2f} of the file size")
    print(f"  run wall time {moved['seconds']:.2f} s (copy in, shutil.copy, stream out, store)")
    if args.transfer_only:
        return
    n_warm, n_first, n_server = (200, 5, 10) if args.quick else (1000, 15, 40)

    config = SandboxConfig(pool_size=1)
    manager = SandboxManager(config)
    usable, detail = manager.status()
    if not usable:
        sys.exit(f"sandbox unavailable: {detail}")
    try:
        ours, raw = warm_exec(manager, n_warm)
    finally:
        manager.close()
    first = first_exec(config, n_first)
    through_sse, through_server = server_path(n_server)

    print(f"\nwarm `print(1)`, {n_warm} runs (ms):")
    print(f"  {'':<34} {'p50':>8} {'p99':>8}")
    print(f"  {'persistent session (library)':<34} {pct(ours, 0.5):8.2f} {pct(ours, 0.99):8.2f}")
    print(f"  {'docker exec, same container':<34} {pct(raw, 0.5):8.2f} {pct(raw, 0.99):8.2f}")
    print(f"  ratio p50 x{pct(raw, 0.5) / pct(ours, 0.5):.0f} faster than docker exec")
    print(f"\nwhole server path, tool call to output, {n_server} runs (ms):")
    srv_p50 = pct(through_server, 0.5)
    print(f"  call complete -> outputs emitted (server log)  p50 {srv_p50:6.2f}", end="")
    print(f"  p99 {pct(through_server, 0.99):6.2f}")
    sse_p50, sse_p99 = pct(through_sse, 0.5), pct(through_sse, 0.99)
    print(f"  last input delta -> outputs delta (SSE)        p50 {sse_p50:6.2f}", end="")
    print(f"  p99 {sse_p99:6.2f}")
    print("  (the SSE figure also holds the end of the model's stream: finish and usage chunks)")
    print(f"\nfirst execution in a new thread, {n_first} each (ms):")
    for label, values in first.items():
        print(f"  {label:<12} p50 {statistics.median(values):8.1f}  max {max(values):8.1f}")
    pool_p50 = statistics.median(first["pool"])
    print("\ntargets:")
    ok = srv_p50 <= TARGET_SERVER_P50_MS
    print(f"  server path p50 {srv_p50:.2f} ms <= {TARGET_SERVER_P50_MS:g} ms".ljust(50), end="")
    print("PASS" if ok else "MISS")
    ok = pool_p50 <= TARGET_FIRST_MS
    print(f"  first execution (pool) {pool_p50:.1f} ms <= {TARGET_FIRST_MS:g} ms".ljust(50), end="")
    print("PASS" if ok else "MISS")


if __name__ == "__main__":
    main()
