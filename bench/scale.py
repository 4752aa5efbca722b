"""Runs per second and CPU per run: one `assistd serve` process against three sharing
one PostgreSQL, measured in the same invocation.

A scripted OpenAI-compatible model (tests/support/scripted_model.py, its own process)
answers every call after 50 ms. For each layout the script creates a fresh PostgreSQL
database, starts the servers on it (`python -m server serve`, no keys, sandbox off),
warms them up, then submits N runs with `threads.create_and_run` (one request per run,
round-robin over the servers, 32 in flight) and reads the runs table until all N are
terminal. The workers execute them: a run created on one process may be claimed by any.

Reported per layout: runs/s (N over the time from the first request to the last run
ending), server CPU seconds per run (utime + stime of every server process), the CPU per
run of PostgreSQL (the bench database's backends), of the model process and of this
load generator, and how busy the cores were (all of the machine, and these processes).
Then the ratio of the two layouts and the bottleneck: when the cores are near 100% busy
the layout is CPU-bound, and the CPU per run predicts what more cores would give.
Prints numbers; asserts nothing.

    .venv/bin/python bench/scale.py               # ~2 min
    .venv/bin/python bench/scale.py --quick       # smoke run
    .venv/bin/python bench/scale.py --admin-url postgresql+psycopg://postgres:pw@host/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from openai import AsyncOpenAI
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import cpu_seconds  # noqa: E402
from bench.run_overhead import ScriptedModelProcess  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres:assistd@127.0.0.1:5432/postgres"
MODEL_LATENCY_MS = 50
IN_FLIGHT = 32
WARMUP_PER_SERVER = 10
TERMINAL = ("completed", "failed", "cancelled", "expired", "incomplete")


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty database for one layout; dropped afterwards."""
    name = f"assistd_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def backend_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving this database (other databases on
    the same cluster, and the cluster's background processes, are not counted)."""
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        out: dict[int, float] = {}
        for pid in pids:
            try:
                out[pid] = cpu_seconds(pid)
            except OSError:  # a backend that ended in between
                continue
        return out


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def terminal_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, COUNT(*) FROM runs GROUP BY status"))
        return {status: count for status, count in rows if status in TERMINAL}


def wait_terminal(engine: Engine, total: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = terminal_counts(engine)
        if sum(counts.values()) >= total:
            return counts
        time.sleep(0.05)
    raise RuntimeError(f"runs did not finish in {timeout:.0f} s: {terminal_counts(engine)}")


async def submit(base_urls: list[str], assistant_id: str, n: int, tag: str) -> int:
    """n create_and_run requests, round-robin over the servers, IN_FLIGHT at a time;
    returns how many were refused."""
    clients = [AsyncOpenAI(base_url=u, api_key="local", max_retries=0) for u in base_urls]
    gate = asyncio.Semaphore(IN_FLIGHT)
    targets = itertools.cycle(clients)

    async def one(i: int, client: AsyncOpenAI) -> bool:
        async with gate:
            try:
                await client.beta.threads.create_and_run(
                    assistant_id=assistant_id,
                    thread={"messages": [{"role": "user", "content": f"{tag} job {i}"}]},
                )
                return True
            except Exception as exc:  # reported as a count, with the first reason
                print(f"  request {i} failed: {exc!r}", flush=True)
                return False

    results = await asyncio.gather(*(one(i, next(targets)) for i in range(n)))
    for client in clients:
        await client.close()
    return results.count(False)


@dataclass
class Result:
    processes: int
    runs: int
    wall: float
    completed: int
    refused: int
    model_calls: int
    server_cpu: float
    postgres_cpu: float
    model_cpu: float
    client_cpu: float
    busy: float  # share of all cores' time the machine was busy

    @property
    def own_busy(self) -> float:
        """Share of all cores' time this measurement's processes used."""
        used = self.server_cpu + self.postgres_cpu + self.model_cpu + self.client_cpu
        return used / (self.wall * (os.cpu_count() or 1))

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.wall

    def per_run_ms(self, cpu: float) -> float:
        return cpu * 1000 / self.runs


def measure(processes: int, runs: int, admin_url: str, model: ScriptedModelProcess) -> Result:
    with fresh_database(admin_url) as url, tempfile.TemporaryDirectory() as tmp:
        env = {
            "DATABASE_URL": url,
            "MODEL_BASE_URL": model.base_url,
            "ASSISTD_SANDBOX": "off",
        }
        servers = [
            ServerProcess(Path(tmp) / f"server-{i}", env=env).start() for i in range(processes)
        ]
        engine = create_engine(url)
        try:
            urls = [f"{s.base_url}/v1" for s in servers]
            assistant = httpx.post(
                f"{urls[0]}/assistants",
                json={"model": "gpt-4o", "instructions": "Be brief."},
                headers={"OpenAI-Beta": "assistants=v2"},
            ).json()["id"]
            warm = WARMUP_PER_SERVER * processes
            asyncio.run(submit(urls, assistant, warm, "warm-up"))
            before = wait_terminal(engine, warm, timeout=120)
            httpx.post(f"{model.base_url.removesuffix('/v1')}/_scripted/reset")

            pids = [s.proc.pid for s in servers if s.proc is not None]
            assert model.proc is not None
            cpu0 = [cpu_seconds(p) for p in pids]
            pg0, model0, client0 = (
                backend_cpu(engine),
                cpu_seconds(model.proc.pid),
                time.process_time(),
            )
            busy0, total0 = machine_jiffies()
            t0 = time.perf_counter()
            refused = asyncio.run(submit(urls, assistant, runs, f"p{processes}"))
            counts = wait_terminal(engine, warm + runs - refused, timeout=600)
            wall = time.perf_counter() - t0
            busy1, total1 = machine_jiffies()
            server_cpu = sum(cpu_seconds(p) for p in pids) - sum(cpu0)
            postgres_cpu = sum(t - pg0.get(pid, 0.0) for pid, t in backend_cpu(engine).items())
            model_cpu = cpu_seconds(model.proc.pid) - model0
            client_cpu = time.process_time() - client0
            calls = httpx.get(f"{model.base_url.removesuffix('/v1')}/_scripted/requests")
            with engine.connect() as conn:
                errors = conn.execute(
                    text(
                        "SELECT status, CAST(last_error AS TEXT) AS e, COUNT(*) FROM runs "
                        "WHERE status != 'completed' GROUP BY status, e"
                    )
                ).all()
            for status, error, count in errors:
                print(f"  {count} runs {status}: {error}", flush=True)
        finally:
            engine.dispose()
            for server in servers:
                server.stop()
    return Result(
        processes=processes,
        runs=runs,
        wall=wall,
        completed=counts.get("completed", 0) - before.get("completed", 0),
        refused=refused,
        model_calls=len(calls.json()["requests"]),
        server_cpu=server_cpu,
        postgres_cpu=postgres_cpu,
        model_cpu=model_cpu,
        client_cpu=client_cpu,
        busy=(busy1 - busy0) / max(1, total1 - total0),
    )


def report(r: Result) -> None:
    label = "process" if r.processes == 1 else "processes"
    print(f"\n{r.processes} {label} on one PostgreSQL, {r.runs} runs:")
    print(f"  runs/s                  {r.runs_per_s:8.1f}   (wall {r.wall:.2f} s)")
    print(f"  completed / refused     {r.completed:8d} / {r.refused}, model calls {r.model_calls}")
    print(f"  server CPU per run      {r.per_run_ms(r.server_cpu):8.1f} ms")
    print(f"  PostgreSQL CPU per run  {r.per_run_ms(r.postgres_cpu):8.1f} ms")
    print(f"  model CPU per run       {r.per_run_ms(r.model_cpu):8.1f} ms")
    print(f"  load-gen CPU per run    {r.per_run_ms(r.client_cpu):8.1f} ms")
    print(f"  CPU of these processes  {r.own_busy * 100:8.0f} %  of {os.cpu_count()} cores")
    print(f"  machine busy            {r.busy * 100:8.0f} %  (anything else running shows here)")
    cores_used = r.server_cpu / r.wall
    print(f"  server cores used       {cores_used:8.2f}    ({r.processes} process(es))")
    print(f"  bottleneck: {bottleneck(r)}")


def bottleneck(r: Result) -> str:
    """Which resource ran out: one process's core, the machine's cores, or neither."""
    cores = os.cpu_count() or 1
    per_process = r.server_cpu / r.wall / r.processes  # cores each server process used
    parts = {
        "the assistd servers": r.server_cpu,
        "PostgreSQL": r.postgres_cpu,
        "the scripted model": r.model_cpu,
        "the load generator": r.client_cpu,
    }
    top = max(parts, key=lambda k: parts[k])
    share = parts[top] / max(1e-9, sum(parts.values()))
    if r.busy >= 0.85:
        return (
            f"the machine's CPU: its {cores} cores were {r.busy:.0%} busy "
            f"({r.own_busy:.0%} this benchmark), {top} taking {share:.0%} of the benchmark's CPU"
        )
    if per_process >= 0.85:
        return (
            f"one core per process: each server process used {per_process:.2f} of a core "
            "(one event loop, and Python runs one thread at a time) while the machine had "
            f"{1 - r.busy:.0%} of its cores idle"
        )
    return (
        f"not CPU (machine {r.busy:.0%} busy, {per_process:.2f} core per server process): "
        "waiting on the model and on the workers' polling and claiming"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, help="runs per layout (400; quick: 80)")
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("ASSISTD_TEST_POSTGRES") or DEFAULT_ADMIN_URL,
        help="a PostgreSQL URL allowed to CREATE and DROP DATABASE",
    )
    args = parser.parse_args()
    runs = args.runs or (80 if args.quick else 400)

    with tempfile.TemporaryDirectory(prefix="assistd-scale-") as tmp:
        model = ScriptedModelProcess(MODEL_LATENCY_MS, Path(tmp) / "model.log").start()
        try:
            print(f"model latency {MODEL_LATENCY_MS} ms, {runs} runs per layout", flush=True)
            one = measure(1, runs, args.admin_url, model)
            report(one)
            three = measure(3, runs, args.admin_url, model)
            report(three)
        finally:
            model.stop()

    print(f"\nratio 3 processes / 1 process: runs/s x{three.runs_per_s / one.runs_per_s:.2f}")
    print(
        f"  server CPU per run x{three.server_cpu / max(1e-9, one.server_cpu):.2f} "
        f"({one.per_run_ms(one.server_cpu):.1f} -> {three.per_run_ms(three.server_cpu):.1f} ms)"
    )
    print(
        f"server CPU per run ({three.per_run_ms(three.server_cpu):.1f} ms with 3 processes) "
        "is the figure that predicts a larger deployment: runs/s per core is about 1000 over it"
    )


if __name__ == "__main__":
    main()
