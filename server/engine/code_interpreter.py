"""The code_interpreter tool: what the model sees, and how a call becomes sandbox work,
step outputs, files and annotations.

The sandbox package runs code, moves files and applies the sandbox's limits; this module
knows about runs, files and threads. All functions here block (database, Docker); the
runner calls them in a worker thread.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from sandbox.config import Input, fmt_bytes
from sandbox.limits import fetch_failed, plan_outputs
from sandbox.sessions import WORK_DIR, ExecResult, SandboxManager
from sandbox.transfer import TransferError
from server.config import Settings
from server.crud import files as file_crud
from server.models import ApiKey, Assistant, Message, Run, StoredFile, Thread
from server.storage import BlobStore, TooLarge

TOOL_NAME = "code_interpreter"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def chat_tool(inputs: list[InputFile], sandbox: SandboxManager | None = None) -> dict[str, Any]:
    """code_interpreter as a function the chat model can call."""
    description = (
        "Execute Python code in a stateful Jupyter-like sandbox (no internet). Variables "
        f"persist between calls. Work in {WORK_DIR}: files saved there are returned to the "
        f"user; link them as sandbox:{WORK_DIR}/<name>. numpy, pandas, matplotlib and scipy "
        "are installed; figures are shown to the user automatically."
    )
    limit = sandbox.config.max_input_bytes if sandbox is not None else None
    usable = [f.name for f in inputs if limit is None or f.size <= limit]
    refused = [f.name for f in inputs if f.name not in usable]
    if usable:
        description += " Files available: " + ", ".join(usable) + "."
    if refused and limit is not None:
        description += (
            f" Not available (larger than the sandbox's {fmt_bytes(limit)} limit per input "
            "file): " + ", ".join(refused) + "."
        )
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python code to run"}},
                "required": ["code"],
            },
        },
    }


def code_from_arguments(arguments: str) -> str:
    """The code of a finished call: `{"code": ...}`, or the raw text when a small model
    wrote plain code instead of JSON."""
    try:
        data = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return str(data["code"])
    return arguments if not isinstance(data, str) else data


def partial_code(arguments: str) -> str:
    """The code decoded so far from a still-streaming `{"code": "...` argument string, so
    input fragments can stream as step deltas. Never returns more than is certain."""
    match = re.search(r'"code"\s*:\s*"', arguments)
    if match is None:
        return ""
    raw = arguments[match.end() :]
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            break
        if ch == "\\":
            if i + 1 >= len(raw):
                break
            if raw[i + 1] == "u":
                if i + 6 > len(raw):
                    break
                out.append(json.loads(f'"{raw[i : i + 6]}"'))
                i += 6
                continue
            out.append(json.loads(f'"{raw[i : i + 2]}"'))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class InputFile:
    file_id: str
    name: str  # path under /mnt/data
    sha256: str
    size: int = 0


@dataclass
class RunOutputs:
    """What the sandbox produced during one run: images for the next message, and files
    the reply may link to (`sandbox:/mnt/data/x.csv` -> file_path annotation)."""

    images: list[str] = field(default_factory=list)  # file ids not yet shown in a message
    files: dict[str, str] = field(default_factory=dict)  # /mnt/data/path -> file id


def input_files(session: Session, run: Run) -> list[InputFile]:
    """code_interpreter files of the assistant, the thread and message attachments."""
    ids: list[str] = []
    assistant = session.exec(select(Assistant).where(Assistant.id == run.assistant_id)).first()
    thread = session.exec(select(Thread).where(Thread.id == run.thread_id)).first()
    for resources in (
        assistant.tool_resources if assistant else None,
        thread.tool_resources if thread else None,
    ):
        ids += ((resources or {}).get("code_interpreter") or {}).get("file_ids") or []
    messages = session.exec(
        select(Message.attachments).where(Message.thread_id == run.thread_id)
    ).all()
    for attachments in messages:
        for attachment in attachments or []:
            if any(t.get("type") == TOOL_NAME for t in attachment.get("tools", [])):
                ids.append(attachment["file_id"])
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    rows = session.exec(
        select(StoredFile).where(
            StoredFile.project == run.project,
            StoredFile.id.in_(wanted),  # type: ignore[attr-defined]
        )
    ).all()
    by_id = {row.id: row for row in rows}
    out: list[InputFile] = []
    taken: set[str] = set()
    for file_id in wanted:
        row = by_id.get(file_id)
        if row is None:
            continue
        name = _SAFE_NAME.sub("_", posixpath.basename(row.filename)) or file_id
        if name in taken or name.startswith("."):
            name = f"{file_id}-{name}"
        taken.add(name)
        out.append(InputFile(file_id, f"{WORK_DIR}/{name}", row.sha256, row.bytes))
    return out


def execute(
    sandbox: SandboxManager, blobs: BlobStore, key: str, files: list[InputFile], code: str
) -> ExecResult:
    """Stream in the input files the session lacks (refusing those past the cap, with a
    note), then run the code."""
    inputs = [
        Input(f.file_id, f.name.removeprefix(WORK_DIR + "/"), blobs.path(f.sha256), f.size)
        for f in files
    ]
    return sandbox.run(key, code, inputs)


def store_outputs(
    session: Session,
    sandbox: SandboxManager,
    blobs: BlobStore,
    run: Run,
    key: str,
    result: ExecResult,
    outputs: RunOutputs,
    skip: set[str],
) -> list[dict[str, Any]]:
    """Turn an execution's results into step outputs, streaming figures and written files
    from the sandbox into File objects (purpose assistants_output) within the sandbox's
    caps. Whatever is not returned is named, with the reason, in the logs output."""
    plan = plan_outputs(result, sandbox.config, skip)
    notes = [*result.notes, *plan.notes]
    live = sandbox.current(key)
    images: list[dict[str, Any]] = []
    budget = sandbox.config.max_output_bytes  # checked again on the bytes that arrive
    for kind, items, cap in (
        ("image", plan.figures, sandbox.config.max_image_bytes),
        ("file", plan.files, sandbox.config.max_file_bytes),
    ):
        for n, item in enumerate(items):
            limit = min(cap, budget)
            name = posixpath.basename(item.path)
            if kind == "image":
                name = f"image-{run.id[-8:]}-{len(images)}.png"
            try:
                if live is None:
                    raise TransferError("the sandbox session ended")
                with live.fetch(item.path, limit) as stream:
                    row = _save(session, blobs, run.project, stream, name, limit)
            except TooLarge:
                notes.append(fetch_failed(item.path, f"it grew past {fmt_bytes(limit)}"))
                continue
            except TransferError as exc:
                label = item.path if kind == "file" else f"Image {n + 1}"
                notes.append(fetch_failed(label, str(exc)))
                continue
            budget -= row.bytes
            if kind == "image":
                outputs.images.append(row.id)
                images.append({"type": "image", "image": {"file_id": row.id}})
            else:
                outputs.files[item.path] = row.id
    logs = result.logs
    for extra in [result.error, *notes]:
        if extra:
            logs = f"{logs}{'' if not logs or logs.endswith(chr(10)) else chr(10)}{extra}"
    return ([{"type": "logs", "logs": logs}] if logs else []) + images


def _save(
    session: Session, blobs: BlobStore, project: str, stream: BinaryIO, name: str, limit: int
) -> StoredFile:
    sha, size = blobs.put(stream, limit)
    return file_crud.create(
        session, project, filename=name, size=size, purpose="assistants_output", sha256=sha
    )


def ended_keys(engine: Engine, settings: Settings, keys: list[str]) -> Iterable[str]:
    """Which sessions' threads are gone: deleted, or in a project no key can reach any
    more (every database key of it revoked, and no ASSISTD_API_KEYS entry for it)."""
    with Session(engine) as session:
        rows = session.exec(select(Thread.id, Thread.project).where(col(Thread.id).in_(keys)))
        projects = dict(rows.all())
        keyed = session.exec(select(ApiKey.project, ApiKey.revoked_at)).all()
    ended = {k for k in keys if k not in projects}
    env_keys = settings.api_keys
    if env_keys or keyed:  # auth is on: a project needs a usable key
        usable = set(env_keys.values()) | {p for p, revoked in keyed if revoked is None}
        ended |= {k for k, project in projects.items() if project not in usable}
    return ended


def annotate(text: str, files: dict[str, str]) -> list[dict[str, Any]]:
    """file_path annotations for every `sandbox:/mnt/data/...` link to a produced file."""
    annotations: list[dict[str, Any]] = []
    for match in re.finditer(r"sandbox:(/mnt/data/[^\s)\]\"'>]+)", text):
        file_id = files.get(match.group(1).rstrip(".,;:"))
        if file_id is None:
            continue
        link = "sandbox:" + match.group(1).rstrip(".,;:")
        annotations.append(
            {
                "type": "file_path",
                "text": link,
                "start_index": match.start(),
                "end_index": match.start() + len(link),
                "file_path": {"file_id": file_id},
            }
        )
    return annotations


def output_text(call_outputs: list[dict[str, Any]]) -> str:
    """What the model reads back as the tool result."""
    parts = []
    for item in call_outputs:
        if item["type"] == "logs":
            parts.append(item["logs"])
        elif item["type"] == "image":
            parts.append(f"[image shown to the user: {item['image']['file_id']}]")
    return "\n".join(parts) or "(no output)"
