"""schemathesis against a real server's own /openapi.json, seeded with real ids.

Used by tests/test_schemathesis.py (a bounded run in the suite) and by scripts/fuzz (a
long one). Every check schemathesis has runs, except `positive_data_acceptance`: it
expects any schema-valid body to succeed, but some valid shapes are refused by rules a
schema cannot state (a referenced id must exist in the project, an embedding model must
be one the operator offers, tool_choice `function` needs a name), each a 400 that says
so. Everything else must hold: no 5xx, every status, content type, header and body as
documented, invalid input refused, 405 with a correct Allow, auth never ignored.

Two passes against one server. The seeded pass fixes every path id to a real object
and leaves out DELETE, so those objects live through it. The linked pass fixes nothing:
the stateful phase follows the document's links from each create (a fixed id would
override the linked one, and point at whatever the pass had deleted).

    python -m tests.support.fuzzing --max-examples 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.support.server_process import ServerProcess, drop_test_databases

KEY = "sk-fuzz-0123456789abcdef"
EXCLUDED_CHECKS = "positive_data_acceptance"


def server_env() -> dict[str, str]:
    """A server of its own: runs fail at once (nothing listens on the model's port, so no
    model call is ever scripted), no sandbox, small uploads."""
    return {
        "ASSISTD_API_KEYS": f"{KEY}:fuzz",
        "ASSISTD_MAX_FILE_BYTES": str(1024 * 1024),
        "MODEL_BASE_URL": "http://127.0.0.1:9/v1",
        "ASSISTD_SANDBOX": "off",
        "ASSISTD_WORKER_POLL_SECONDS": "0.1",
    }


def seed(base_url: str) -> dict[str, str]:
    """One real object of each kind, so generated requests reach the code past the 404:
    the ids path parameters take (in GET and POST operations; DELETEs get their own)."""
    with httpx.Client(
        base_url=f"{base_url}/v1", headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    ) as http:

        def post(path: str, **kwargs: Any) -> dict[str, Any]:
            r = http.post(path, **kwargs)
            r.raise_for_status()
            body: dict[str, Any] = r.json()
            return body

        assistant = post("/assistants", json={"model": "m", "name": "fuzz"})
        thread = post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})
        message = http.get(f"/threads/{thread['id']}/messages").json()["data"][0]
        run = post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]})
        upload = post(
            "/files",
            data={"purpose": "assistants"},
            files={"file": ("notes.txt", b"Kettles carry a three-year warranty.\n")},
        )
        store = post("/vector_stores", json={"name": "fuzz", "file_ids": [upload["id"]]})
        batch = post(
            f"/vector_stores/{store['id']}/file_batches", json={"file_ids": [upload["id"]]}
        )
        # The first search loads the query encoder (seconds): not what a case should time.
        post(f"/vector_stores/{store['id']}/search", json={"query": "warranty"})
    return {
        "assistant_id": assistant["id"],
        "thread_id": thread["id"],
        "message_id": message["id"],
        "run_id": run["id"],
        "file_id": upload["id"],
        "vector_store_id": store["id"],
        "batch_id": batch["id"],
    }


def write_config(path: Path, ids: dict[str, str] | None, stateful_examples: int) -> Path:
    """schemathesis.toml: how many scenarios the stateful phase plays (each a chain of
    calls along the links), and the seeded ids, if any, for every path parameter."""
    text = f"[phases.stateful.generation]\nmax-examples = {stateful_examples}\n"
    if ids:
        text += "\n[parameters]\n"
        text += "".join(f'"path.{k}" = {json.dumps(v)}\n' for k, v in ids.items())
    path.write_text(text)
    return path


def command(
    base_url: str,
    config: Path,
    *,
    max_examples: int,
    phases: str,
    seed_value: int | None,
    exclude_method: str | None = None,
    report_dir: Path | None = None,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {KEY}",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--mode",
        "all",  # positive and negative cases
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        # A slow answer is a finding too, with room for a loaded CI machine.
        "--max-response-time",
        "30",
        "--no-color",
    ]
    if seed_value is not None:
        cmd += ["--seed", str(seed_value)]
    if exclude_method is not None:
        cmd += ["--exclude-method", exclude_method]
    if report_dir is not None:
        cmd += ["--report", "junit", "--report-dir", str(report_dir)]
    return cmd


def run(
    data_dir: Path,
    *,
    max_examples: int,
    stateful_examples: int,
    seeded_phases: str,
    linked_phases: str,
    seed_value: int | None,
    timeout: float,
    report_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Start a server on `data_dir`, seed it, run both passes; the first that fails is
    returned, with the server's log appended."""
    server = ServerProcess(data_dir, env=server_env()).start()
    try:
        ids = seed(server.base_url)
        passes = [
            ("seeded", seeded_phases, ids, "DELETE"),
            ("linked", linked_phases, None, None),
        ]
        done = subprocess.CompletedProcess[str]([], 0, "", "")
        for name, phases, fixed, exclude in passes:
            config = write_config(data_dir / f"{name}.toml", fixed, stateful_examples)
            cmd = command(
                server.base_url,
                config,
                max_examples=max_examples,
                phases=phases,
                seed_value=seed_value,
                exclude_method=exclude,
                report_dir=report_dir.resolve() / name if report_dir else None,
            )
            done = subprocess.run(  # in data_dir: schemathesis keeps a cache where it runs
                cmd, capture_output=True, text=True, timeout=timeout, cwd=data_dir
            )
            done.stdout = f"=== {name} pass ({phases})\n{done.stdout}"
            if done.returncode != 0:
                done.stdout += "\n--- server log (tail) ---\n" + server.log()[-20_000:]
                return done
        return done
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--stateful-examples", type=int, default=500)
    parser.add_argument("--seeded-phases", default="examples,coverage,fuzzing")
    parser.add_argument("--linked-phases", default="coverage,fuzzing,stateful")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument("--report-dir", type=Path, default=None, help="write a JUnit report")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assistd-fuzz-") as tmp:
        try:
            done = run(
                Path(tmp),
                max_examples=args.max_examples,
                stateful_examples=args.stateful_examples,
                seeded_phases=args.seeded_phases,
                linked_phases=args.linked_phases,
                seed_value=args.seed,
                timeout=args.timeout,
                report_dir=args.report_dir,
            )
        finally:
            drop_test_databases()  # on PostgreSQL (ASSISTD_TEST_DATABASE_URL)
    print(done.stdout)
    print(done.stderr, file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
