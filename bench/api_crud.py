"""CRUD latency/throughput of assistd against a bare FastAPI + SQLite baseline.

Measures, for our real server (`python -m server serve`, fresh temp data dir, no API keys,
access log off) and for a baseline app defined below (FastAPI + sqlite3, WAL,
synchronous=NORMAL, one INSERT / one SELECT per request, same uvicorn settings):

* POST /v1/threads/{id}/messages            (message create)
* GET  /v1/threads/{id}/messages?limit=20   (message list, thread holding ~50 messages)

For each: p50/p99 latency of sequential keep-alive requests (sync httpx.Client), and
requests/s under concurrency (N threads, each with its own keep-alive httpx.Client). Both
servers run side by side and are measured in alternating rounds, so that a noisy spell of
a shared VM lands on both; the throughput ratio is the median of the rounds' ratios.
Prints a table, ours/baseline ratios and PASS/MISS against the targets; it asserts
nothing. Client and server share the machine's cores, so the client's CPU is printed too.
The baseline keeps FastAPI's defaults (40 threads for sync routes); assistd sizes its
request pool to the CPUs (ASSISTD_REQUEST_THREADS, see server/config.py).

    .venv/bin/python bench/api_crud.py            # full run, ~1.5 min
    .venv/bin/python bench/api_crud.py --quick    # smoke run, < 30 s

`--observability all|metrics|traces` measures the cost of operations instead: our server
with Prometheus metrics and/or OpenTelemetry traces on (spans exported over OTLP/HTTP to a
receiver in this process) against our server with both off, in the same alternating
rounds, and prints the server's CPU per request for each.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import cpu_seconds  # noqa: E402
from server.config import Settings  # noqa: E402
from tests.support.otlp_receiver import OTLPReceiver  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

TARGET_P50_MS = 3.0
TARGET_THROUGHPUT_RATIO = 0.5
BODY = {"role": "user", "content": "Hello, how are you today?"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, created_at INT);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY, id TEXT UNIQUE, thread_id TEXT, created_at INT, role TEXT,
    content JSON);
CREATE INDEX IF NOT EXISTS ix_messages_thread_seq ON messages (thread_id, seq);
"""


def baseline_app(db_path: Path) -> Any:
    """The floor: FastAPI + sqlite3, one statement per request, sync routes (thread pool)."""
    import json

    from fastapi import FastAPI

    local = threading.local()

    def db() -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(db_path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    db().executescript(SCHEMA)
    app = FastAPI()

    def message(
        id: str, thread_id: str, created_at: int, role: str, content: Any
    ) -> dict[str, Any]:
        return {
            "id": id,
            "object": "thread.message",
            "created_at": created_at,
            "thread_id": thread_id,
            "status": "completed",
            "incomplete_details": None,
            "completed_at": created_at,
            "incomplete_at": None,
            "role": role,
            "content": content,
            "assistant_id": None,
            "run_id": None,
            "attachments": [],
            "metadata": {},
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/threads")
    def create_thread() -> dict[str, Any]:
        row = ("thread_" + secrets.token_hex(12), int(time.time()))
        with db() as conn:
            conn.execute("INSERT INTO threads (id, created_at) VALUES (?, ?)", row)
        return {"id": row[0], "object": "thread", "created_at": row[1], "metadata": {}}

    @app.post("/v1/threads/{thread_id}/messages")
    def create_message(thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
        content = [{"type": "text", "text": {"value": body["content"], "annotations": []}}]
        row = ("msg_" + secrets.token_hex(12), thread_id, int(time.time()), body["role"])
        with db() as conn:
            conn.execute(
                "INSERT INTO messages (id, thread_id, created_at, role, content)"
                " VALUES (?, ?, ?, ?, ?)",
                (*row, json.dumps(content)),
            )
        return message(*row, content)

    @app.get("/v1/threads/{thread_id}/messages")
    def list_messages(thread_id: str, limit: int = 20) -> dict[str, Any]:
        rows = (
            db()
            .execute(
                "SELECT id, thread_id, created_at, role, content FROM messages"
                " WHERE thread_id = ? ORDER BY seq DESC LIMIT ?",
                (thread_id, limit + 1),
            )
            .fetchall()
        )
        data = [message(*r[:4], json.loads(r[4])) for r in rows[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > limit,
        }

    return app


def serve_baseline(port: int, data_dir: Path) -> None:
    import uvicorn

    app = baseline_app(data_dir / "baseline.db")  # same settings as server/cli.py's _serve
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="info",
        access_log=False,
        timeout_keep_alive=Settings.keep_alive_seconds,  # as server/cli.py's _serve
    )


class BaselineProcess(ServerProcess):
    """ServerProcess, but re-invoking this script in --baseline-server mode."""

    def start(self, timeout: float = 60.0) -> BaselineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--baseline-server", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"baseline did not become healthy:\n{self.log()}")


@dataclass
class Result:
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    server_cpu: float  # CPU-seconds per wall-second during the throughput window
    client_cpu: float
    cpu_ms: float  # server CPU per request during the throughput windows


def sequential(client: httpx.Client, method: str, path: str, n: int) -> list[float]:
    body = BODY if method == "POST" else None
    samples: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.request(method, path, json=body).raise_for_status()
        samples.append((time.perf_counter() - t0) * 1000)
    return sorted(samples)


def concurrent(
    base: str, method: str, path: str, secs: float, workers: int
) -> tuple[int, int, float]:
    """`workers` threads, each with its own keep-alive httpx.Client, for `secs` seconds.
    (Sync httpx in threads costs the client about a third of the CPU per request that
    httpx.AsyncClient does, so more of the shared cores go to the server.)"""
    body = BODY if method == "POST" else None
    barrier = threading.Barrier(workers + 1)
    counts = [[0, 0] for _ in range(workers)]  # [requests, errors] per worker
    deadline = [0.0]  # a list so the worker closures see the update

    def worker(tally: list[int]) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            client.request(method, path, json=body)  # open the connection before the clock
            barrier.wait()
            while time.perf_counter() < deadline[0]:
                resp = client.request(method, path, json=body)
                tally[0] += 1
                tally[1] += resp.status_code >= 400

    threads = [threading.Thread(target=worker, args=(tally,)) for tally in counts]
    for thread in threads:
        thread.start()
    deadline[0] = float("inf")  # workers run until the real deadline is set below
    barrier.wait()
    t0 = time.perf_counter()
    deadline[0] = t0 + secs
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - t0
    return sum(c[0] for c in counts), sum(c[1] for c in counts), wall


@dataclass
class Case:
    method: str
    path: str


def setup(proc: ServerProcess, args: argparse.Namespace) -> dict[str, Case]:
    """A thread holding `args.messages` messages to list, and an empty one to add to."""
    with httpx.Client(base_url=proc.base_url, timeout=30) as client:
        list_thread = client.post("/v1/threads", json={}).json()["id"]
        create_thread = client.post("/v1/threads", json={}).json()["id"]
        for _ in range(args.messages):
            client.post(f"/v1/threads/{list_thread}/messages", json=BODY).raise_for_status()
    return {
        "message create": Case("POST", f"/v1/threads/{create_thread}/messages"),
        "message list": Case("GET", f"/v1/threads/{list_thread}/messages?limit=20"),
    }


def measure(
    procs: dict[str, ServerProcess], args: argparse.Namespace
) -> tuple[dict[str, dict[str, Result]], dict[str, list[float]]]:
    """Both servers measured in alternating rounds, so that a slower spell of this shared
    VM falls on both alike: latency in `args.rounds` blocks of sequential requests each,
    throughput in `args.rounds` windows each. Returns results per server and case, and
    the ours/baseline throughput ratio of each round per case."""
    subject, reference = list(procs)
    cases = {label: setup(proc, args) for label, proc in procs.items()}
    results: dict[str, dict[str, Result]] = {label: {} for label in procs}
    ratios: dict[str, list[float]] = {}
    for name in cases[subject]:
        clients = {
            label: httpx.Client(base_url=proc.base_url, timeout=30) for label, proc in procs.items()
        }
        samples: dict[str, list[float]] = {label: [] for label in procs}
        tallies: dict[str, list[tuple[int, int, float, float, float]]] = {
            label: [] for label in procs
        }
        try:
            for label, client in clients.items():
                case = cases[label][name]
                sequential(client, case.method, case.path, args.warmup)
            for _ in range(args.rounds):
                for label, client in clients.items():
                    case = cases[label][name]
                    block = sequential(client, case.method, case.path, args.requests // args.rounds)
                    samples[label] += block
                for label, proc in procs.items():
                    case = cases[label][name]
                    assert proc.proc is not None
                    srv0, cli0 = cpu_seconds(proc.proc.pid), time.process_time()
                    count, errors, wall = concurrent(
                        proc.base_url, case.method, case.path, args.seconds, args.concurrency
                    )
                    srv, cli = cpu_seconds(proc.proc.pid) - srv0, time.process_time() - cli0
                    tallies[label].append((count, errors, wall, srv, cli))
        finally:
            for client in clients.values():
                client.close()
        for label in procs:
            lat = sorted(samples[label])
            count, errors, wall, srv, cli = (sum(t[i] for t in tallies[label]) for i in range(5))
            results[label][name] = Result(
                p50_ms=lat[len(lat) // 2],
                p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                rps=count / wall,
                errors=int(errors),
                server_cpu=srv / wall,
                client_cpu=cli / wall,
                cpu_ms=srv / max(count, 1) * 1000,
            )
        ratios[name] = [
            (o[0] / o[2]) / (b[0] / b[2])
            for o, b in zip(tallies[subject], tallies[reference], strict=True)
        ]
    return results, ratios


def report(
    results: dict[str, dict[str, Result]],
    ratios: dict[str, list[float]],
    args: argparse.Namespace,
) -> None:
    subject, reference = list(results)
    ours, base = results[subject], results[reference]
    print(f"\n{os.cpu_count()} CPU cores, shared by load generator and server (one at a time).")
    print(
        f"latency: {args.requests} sequential keep-alive requests after {args.warmup} warm-up;"
        f" throughput: {args.seconds:g} s with {args.concurrency} client threads (sync httpx);"
        f" each in {args.rounds} rounds alternating between the servers."
    )
    print("CPU columns: CPU-seconds per wall-second during the throughput window;")
    print("CPU ms/req: the server's CPU per request in those windows.\n")
    head = f"{'endpoint':<15} {'server':<9} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>8}"
    print(head + f" {'errors':>6} {'srv CPU':>7} {'cli CPU':>7} {'CPU ms/req':>10}")
    for name in ours:
        for label, r in ((subject, ours[name]), (reference, base[name])):
            print(
                f"{name:<15} {label:<9} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {r.rps:8.0f}"
                f" {r.errors:6d} {r.server_cpu:7.2f} {r.client_cpu:7.2f} {r.cpu_ms:10.3f}"
            )
    print(f"\n{subject} / {reference} (throughput: the median of the rounds' ratios, then each):")
    for name in ours:
        o, b = ours[name], base[name]
        rounds = " ".join(f"{r:.2f}" for r in ratios[name])
        print(
            f"  {name:<15} p50 x{o.p50_ms / b.p50_ms:.2f}  p99 x{o.p99_ms / b.p99_ms:.2f}"
            f"  throughput x{statistics.median(ratios[name]):.2f}  ({rounds})"
            f"  CPU/req {o.cpu_ms - b.cpu_ms:+.3f} ms (x{o.cpu_ms / b.cpu_ms:.2f})"
        )
    if args.observability:
        return
    print("\ntargets:")
    for name in ours:
        o, b = ours[name], base[name]
        ok = o.p50_ms <= TARGET_P50_MS
        print(f"  {name:<15} p50 {o.p50_ms:.2f} ms <= {TARGET_P50_MS:g} ms".ljust(50), end="")
        print("PASS" if ok else "MISS")
        ratio = statistics.median(ratios[name])
        ok = ratio >= TARGET_THROUGHPUT_RATIO
        line = f"  {name:<15} throughput x{ratio:.2f} >= x{TARGET_THROUGHPUT_RATIO:g} baseline"
        print(line.ljust(50) + ("PASS" if ok else "MISS"))


def observability_servers(tmp: Path, mode: str, endpoint: str) -> list[tuple[str, ServerProcess]]:
    """Ours with `mode` on, and ours with metrics and traces off."""
    on: dict[str, str] = {"ASSISTD_METRICS": "on" if mode in ("all", "metrics") else "off"}
    if mode in ("all", "traces"):
        on |= {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    off = {"ASSISTD_METRICS": "off"}
    return [(mode, ServerProcess(tmp / mode, env=on)), ("off", ServerProcess(tmp / "off", env=off))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (< 30 s)")
    parser.add_argument("--requests", type=int, help="sequential requests per case (2000)")
    parser.add_argument("--warmup", type=int, help="warm-up requests per case (300)")
    parser.add_argument("--seconds", type=float, help="throughput window per round (2)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per case (5)")
    parser.add_argument("--concurrency", type=int, default=16, help="in-flight requests")
    parser.add_argument("--messages", type=int, default=50, help="messages in the list thread")
    parser.add_argument(
        "--observability",
        choices=("all", "metrics", "traces"),
        help="compare ours with metrics and/or traces on against ours with both off",
    )
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        serve_baseline(args.port, args.data_dir)
        return
    quick = args.quick
    args.requests = args.requests or (300 if quick else 2000)
    args.warmup = args.warmup or (50 if quick else 300)
    args.seconds = args.seconds or (1.0 if quick else 2.0)
    args.rounds = args.rounds or (2 if quick else 5)
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp:
        procs: dict[str, ServerProcess] = {}
        receiver = OTLPReceiver().start() if args.observability else None
        try:
            if receiver is not None:
                servers = observability_servers(Path(tmp), args.observability, receiver.endpoint)
            else:
                servers = [
                    ("ours", ServerProcess(Path(tmp) / "ours")),
                    ("baseline", BaselineProcess(Path(tmp) / "baseline")),
                ]
            for label, proc in servers:
                procs[label] = proc.start()
                print(f"{label} at {proc.base_url}", flush=True)
            results, ratios = measure(procs, args)
        finally:
            for proc in procs.values():
                proc.stop()
            if receiver is not None:
                receiver.stop()
                print(f"\nspans received over OTLP: {len(receiver.spans)}")
    report(results, ratios, args)


if __name__ == "__main__":
    main()
