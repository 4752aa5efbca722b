"""`assistd ingest`: put a folder into a vector store of any assistd, over the official SDK.

Each local file is identified in the store by two attributes set on its vector store
file: `path` (the file's path under the folder given, starting with the folder's name) and
`sha256` (of its bytes, computed here). A file whose path is in the store with the same
hash, completed or still in progress, is skipped; a changed one is uploaded and attached
anew and then its old version is detached and deleted; with `--sync`, files the store
holds under that folder but the folder no longer does are detached and deleted. Only
files this command attached (those with both attributes) are ever removed. Uploads run in
parallel; a progress bar follows the ingestion (the server's `progress` extension gives
the fraction of each file in progress), and a summary ends the run: exit status 1 when
any file failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.parsing import SUPPORTED_EXTENSIONS

POLL_SECONDS = 0.5
MAX_ATTRIBUTE_CHARS = 512


@dataclass
class Local:
    path: Path
    key: str  # the `path` attribute
    sha256: str


@dataclass
class Outcome:
    completed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def add_parser(sub: Any, parents: list[argparse.ArgumentParser] | None = None) -> None:
    """`assistd ingest`; `parents` give it the CLI's shared options (--log-level, ...)."""
    parser = sub.add_parser(
        "ingest",
        help="upload files or folders into a vector store of any assistd (a client command)",
        description=__doc__,
        parents=parents or [],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--vector-store", metavar="ID", help="an existing vector store")
    target.add_argument("--name", help="the vector store of this name (made if missing)")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1",
        help="the server's API root (default: $OPENAI_BASE_URL or http://127.0.0.1:8000/v1)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("OPENAI_API_KEY") or "none",
        help="a key of the project (default: $OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--sync", action="store_true", help="remove files the folders no longer hold"
    )
    parser.add_argument("--jobs", type=int, default=4, help="parallel uploads (default 4)")
    parser.add_argument(
        "--chunking", type=json.loads, default=None, metavar="JSON", help="a chunking_strategy"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for ingestion")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from openai import OpenAI

    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    outcome = Outcome()
    local = list(scan(args.paths, outcome))
    store_id = args.vector_store or store_named(client, args.name)
    present = store_files(client, store_id)
    todo = []
    for item in local:
        held = present.get(item.key)
        if held and held["sha256"] == item.sha256 and held["status"] != "failed":
            outcome.unchanged.append(item.key)
        else:
            todo.append(item)
    roots = {path_key(p.resolve(), p.resolve().parent) for p in args.paths if p.is_dir()}
    gone = [
        key
        for key in present
        if args.sync
        and any(key.startswith(root + "/") for root in roots)
        and key not in {item.key for item in local}
    ]
    with progress_bar() as bar:
        uploads = bar.add_task("uploading", total=len(todo))
        attached: dict[str, Local] = {}

        def send(item: Local) -> None:
            try:
                attached[upload(client, store_id, item, args.chunking)] = item
            except Exception as exc:  # noqa: BLE001 - reported in the summary
                outcome.failed.append((item.key, f"upload failed: {exc}"))
            bar.advance(uploads)

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            list(pool.map(send, todo))
        follow(client, store_id, attached, outcome, bar, args.timeout)
    for item in attached.values():  # the versions they replace go once they are in
        old = present.get(item.key)
        if old and item.key in outcome.completed:
            remove(client, store_id, old["file_id"])
    for key in gone:
        remove(client, store_id, present[key]["file_id"])
        outcome.removed.append(key)
    report(outcome, store_id)
    return 1 if outcome.failed else 0


def scan(paths: Iterable[Path], outcome: Outcome) -> Iterator[Local]:
    """Every file under `paths` (hidden ones left out), with its key and hash; files of a
    type the server cannot read are reported as skipped."""
    for root in paths:
        root = root.resolve()
        if not root.exists():
            outcome.skipped.append((str(root), "no such file or folder"))
            continue
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(root.parent)
            if any(part.startswith(".") for part in rel.parts):
                continue
            key = path_key(path, root.parent)
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                outcome.skipped.append((key, f"type '{path.suffix or 'none'}' is not supported"))
            elif len(key) > MAX_ATTRIBUTE_CHARS:
                outcome.skipped.append((key[:80] + "...", "path longer than 512 characters"))
            else:
                yield Local(path, key, sha256_of(path))


def path_key(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def walk(page: Any) -> list[Any]:
    return list(page.auto_paging_iter() if hasattr(page, "auto_paging_iter") else page)


def store_named(client: Any, name: str) -> str:
    for store in walk(client.vector_stores.list(limit=100)):
        if store.name == name:
            return str(store.id)
    return str(client.vector_stores.create(name=name).id)


def store_files(client: Any, store_id: str) -> dict[str, dict[str, Any]]:
    """The files this command attached to the store, by `path` attribute."""
    held: dict[str, dict[str, Any]] = {}
    for f in walk(client.vector_stores.files.list(store_id, limit=100)):
        attributes = f.attributes or {}
        if isinstance(attributes.get("path"), str) and isinstance(attributes.get("sha256"), str):
            held[attributes["path"]] = {
                "file_id": f.id,
                "sha256": attributes["sha256"],
                "status": f.status,
            }
    return held


def upload(client: Any, store_id: str, item: Local, chunking: Any) -> str:
    with item.path.open("rb") as fh:
        uploaded = client.files.create(file=(item.path.name, fh), purpose="assistants")
    extra: dict[str, Any] = {"chunking_strategy": chunking} if chunking else {}
    client.vector_stores.files.create(
        vector_store_id=store_id,
        file_id=uploaded.id,
        attributes={"path": item.key, "sha256": item.sha256},
        **extra,
    )
    return str(uploaded.id)


def follow(
    client: Any,
    store_id: str,
    attached: dict[str, Local],
    outcome: Outcome,
    bar: Any,
    timeout: float,
) -> None:
    """Poll until every attached file has ended (or `timeout`): the store's files still in
    progress in one list, then each file that left it once."""
    task = bar.add_task("ingesting", total=len(attached))
    waiting = dict(attached)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        running = {
            f.id: f for f in walk(client.vector_stores.files.list(store_id, filter="in_progress"))
        }
        fraction = 0.0
        for file_id, item in list(waiting.items()):
            f = running.get(file_id)
            if f is None:
                f = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
            if f.status == "completed":
                outcome.completed.append(item.key)
            elif f.status in ("failed", "cancelled"):
                reason = (f.last_error.message if f.last_error else None) or f.status
                outcome.failed.append((item.key, reason))
            else:
                fraction += float(((f.model_extra or {}).get("progress") or {}).get("fraction", 0))
                continue
            del waiting[file_id]
        bar.update(task, completed=len(attached) - len(waiting) + fraction)
        if waiting:
            time.sleep(POLL_SECONDS)
    for item in waiting.values():
        outcome.failed.append((item.key, f"still in progress after {timeout:g} s"))


def remove(client: Any, store_id: str, file_id: str) -> None:
    """Detach a file this command attached and delete it (it was uploaded for this)."""
    import openai

    try:
        client.vector_stores.files.delete(file_id, vector_store_id=store_id)
        client.files.delete(file_id)
    except openai.NotFoundError:
        pass


def progress_bar() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        disable=not sys.stderr.isatty(),
        transient=False,
    )


def report(outcome: Outcome, store_id: str) -> None:
    print(
        f"vector store {store_id}: {len(outcome.completed)} completed, "
        f"{len(outcome.unchanged)} unchanged, {len(outcome.failed)} failed, "
        f"{len(outcome.removed)} removed, {len(outcome.skipped)} skipped"
    )
    for key, reason in outcome.failed:
        print(f"  failed   {key}: {reason}")
    for key, reason in outcome.skipped:
        print(f"  skipped  {key}: {reason}")
    for key in outcome.removed:
        print(f"  removed  {key}")
