"""The code_interpreter tool: what the model sees, and how a call becomes sandbox work,
step outputs, files and annotations.

The sandbox package runs code; this module knows about runs, files and threads. The
functions block (database, Docker) and run in worker threads; `CodeInterpreter` is the
tool behind the run engine's ServerTool seam (server/tools/base.py).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import posixpath
import re
import time
from dataclasses import dataclass, field
from typing import Final

import jiter
from sqlmodel import Session, col, select

from sandbox.sessions import WORK_DIR, ExecResult, SandboxManager, SandboxUnavailable
from server.crud import files as file_crud
from server.db import Database
from server.models import Assistant, Message, Run, StoredFile, Thread
from server.protocol.deltas import CodeInterpreterToolCallDelta, ToolCallDelta, code_outputs
from server.protocol.messages import FilePathAnnotation
from server.protocol.runs import CodeInterpreterToolCall, CodeOutput
from server.storage import BlobStore
from server.tools.base import ChatTool, ServerTool, StepCall, TextNotes, ToolCall, ToolUse, TurnHost

log = logging.getLogger("assistd.runner")
TOOL_NAME: Final = "code_interpreter"
MAX_OUTPUT_BYTES = 512 * 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def chat_tool(input_files: list[str]) -> ChatTool:
    """code_interpreter as a function the chat model can call."""
    description = (
        "Execute Python code in a stateful Jupyter-like sandbox (no internet). Variables "
        f"persist between calls. Work in {WORK_DIR}: files saved there are returned to the "
        f"user; link them as sandbox:{WORK_DIR}/<name>. numpy, pandas, matplotlib and scipy "
        "are installed; figures are shown to the user automatically."
    )
    if input_files:
        description += " Files available: " + ", ".join(input_files) + "."
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
    input fragments can stream as step deltas. Never returns more than is certain: jiter's
    partial mode drops an escape sequence cut in half (a surrogate pair included)."""
    try:
        data = jiter.from_json(arguments.encode(), partial_mode="trailing-strings")
    except ValueError:
        return ""  # not JSON (plain code): it is sent whole once the call is complete
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else ""


@dataclass
class InputFile:
    file_id: str
    name: str  # path under /mnt/data
    sha256: str


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
            col(StoredFile.id).in_(wanted),
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
        out.append(InputFile(file_id, f"{WORK_DIR}/{name}", row.sha256))
    return out


def execute(
    sandbox: SandboxManager, blobs: BlobStore, key: str, files: list[InputFile], code: str
) -> ExecResult:
    """Copy input files the session lacks, then run the code."""
    session, _ = sandbox.session(key)
    for item in files:
        if session.files.get(item.file_id) == item.name:
            continue
        data = blobs.path(item.sha256).read_bytes()
        name = item.name.removeprefix(WORK_DIR + "/")
        session.request({"op": "put", "name": name, "data": base64.b64encode(data).decode()})
        session.files[item.file_id] = item.name
    result = session.execute(code, sandbox.config.exec_timeout)
    if result.restarted:
        sandbox.drop(key)
    return result


def store_outputs(
    session: Session,
    sandbox: SandboxManager,
    blobs: BlobStore,
    run: Run,
    key: str,
    result: ExecResult,
    outputs: RunOutputs,
    skip: set[str],
) -> list[CodeOutput]:
    """Turn an execution's results into step outputs, saving images and written files
    as File objects (purpose assistants_output)."""
    items: list[CodeOutput] = []
    logs = result.logs
    if result.error:
        logs = f"{logs}{'' if not logs or logs.endswith(chr(10)) else chr(10)}{result.error}"
    if logs:
        items.append({"type": "logs", "logs": logs})
    for n, png in enumerate(result.images):
        row = _save(session, blobs, run.project, png, f"image-{run.id[-8:]}-{n}.png")
        outputs.images.append(row.id)
        items.append({"type": "image", "image": {"file_id": row.id}})
    if result.files and not result.restarted:
        live, _ = sandbox.session(key)
        for path in result.files:
            if path in skip:
                continue
            try:
                reply = live.request({"op": "get", "name": path.removeprefix(WORK_DIR + "/")})
            except (RuntimeError, TimeoutError):
                continue
            data = base64.b64decode(reply["data"])
            if len(data) > MAX_OUTPUT_BYTES:
                continue
            row = _save(session, blobs, run.project, data, posixpath.basename(path))
            outputs.files[path] = row.id
    return items


def _save(session: Session, blobs: BlobStore, project: str, data: bytes, name: str) -> StoredFile:
    sha, size = blobs.put(io.BytesIO(data), MAX_OUTPUT_BYTES)
    return file_crud.create(
        session, project, filename=name, size=size, purpose="assistants_output", sha256=sha
    )


def annotate(text: str, files: dict[str, str]) -> list[FilePathAnnotation]:
    """file_path annotations for every `sandbox:/mnt/data/...` link to a produced file."""
    annotations: list[FilePathAnnotation] = []
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


def output_text(call_outputs: list[CodeOutput]) -> str:
    """What the model reads back as the tool result."""
    parts = []
    for item in call_outputs:
        if item["type"] == "logs":
            parts.append(item["logs"])
        else:
            parts.append(f"[image shown to the user: {item['image']['file_id']}]")
    return "\n".join(parts) or "(no output)"


# --- the tool ------------------------------------------------------------------------


class CodeInterpreter(ServerTool):
    """Runs the model's code in the thread's sandbox session (sandbox/)."""

    name = TOOL_NAME

    def __init__(
        self, sandbox: SandboxManager | None, blobs: BlobStore, problem: str | None = None
    ) -> None:
        self.sandbox = sandbox
        self.blobs = blobs
        self._problem = problem or (None if sandbox else "the sandbox is turned off")

    def problem(self) -> str | None:
        return self._problem

    def use(self, run: Run, db: Database) -> ToolUse:
        if self.sandbox is None:
            raise RuntimeError(f"code_interpreter is unavailable: {self._problem}")
        return CodeInterpreterUse(self.sandbox, self.blobs, run, db)

    def replay(self, call: StepCall, ordinal: int) -> tuple[str, str]:
        if call["type"] != TOOL_NAME:
            raise ValueError(f"not a {TOOL_NAME} call: {call['type']}")
        body = call["code_interpreter"]
        return json.dumps({"code": body["input"]}), output_text(body.get("outputs") or [])


class CodeInterpreterUse(ToolUse):
    def __init__(self, sandbox: SandboxManager, blobs: BlobStore, run: Run, db: Database) -> None:
        self.sandbox = sandbox
        self.blobs = blobs
        self.run = run
        self.db = db
        self.inputs: list[InputFile] = []  # this turn's input files
        self.outputs = RunOutputs()  # kept across the run's turns
        self.sent: dict[str, str] = {}  # call id -> input already streamed
        self.results: dict[str, list[CodeOutput]] = {}  # call id -> its outputs

    async def offer(self) -> ChatTool:
        self.inputs = await self.db.run(input_files, self.run)
        return chat_tool([f.name for f in self.inputs])

    def begin(self, call: ToolCall) -> ToolCallDelta:
        return CodeInterpreterToolCallDelta(
            index=call.index,
            type=TOOL_NAME,
            id=call.id,
            code_interpreter={"input": "", "outputs": []},
        )

    def more(self, call: ToolCall) -> ToolCallDelta | None:
        code = partial_code(call.arguments)
        return self._input(call, code) if len(code) > len(self.sent.get(call.id, "")) else None

    def _input(self, call: ToolCall, code: str) -> ToolCallDelta:
        more = code[len(self.sent.get(call.id, "")) :]
        self.sent[call.id] = code
        return CodeInterpreterToolCallDelta(
            index=call.index, type=TOOL_NAME, code_interpreter={"input": more}
        )

    async def execute(self, calls: list[ToolCall], turn: TurnHost) -> None:
        """Each call in the thread's sandbox session, its outputs streamed as a step
        delta. Errors in the code are outputs, not failures."""
        key, skip = self.run.thread_id, {f.name for f in self.inputs}
        for call in calls:
            started = time.perf_counter()
            code, sent = code_from_arguments(call.arguments), self.sent.get(call.id, "")
            if code.startswith(sent) and len(code) > len(sent):
                turn.step_delta(self._input(call, code))  # the rest (all of plain code)
            try:
                result = await asyncio.to_thread(
                    execute, self.sandbox, self.blobs, key, self.inputs, code
                )
            except asyncio.CancelledError:
                self.sandbox.interrupt(key)
                raise
            except (SandboxUnavailable, OSError, RuntimeError, TimeoutError) as exc:
                result = ExecResult(logs="", error=f"The sandbox failed: {exc}")
            outputs = self.results[call.id] = await self.db.run(
                store_outputs, self.sandbox, self.blobs, self.run, key, result, self.outputs, skip
            )
            turn.step_delta(
                CodeInterpreterToolCallDelta(
                    index=call.index,
                    type=TOOL_NAME,
                    code_interpreter={"outputs": code_outputs(outputs)},
                )
            )
            log.info(
                "run %s: code_interpreter call %s answered in %.1f ms",
                self.run.id,
                call.id,
                (time.perf_counter() - started) * 1000,
            )

    def details(self, call: ToolCall) -> StepCall:
        return CodeInterpreterToolCall(
            id=call.id,
            type=TOOL_NAME,
            code_interpreter={
                "input": code_from_arguments(call.arguments),
                "outputs": self.results.get(call.id, []),
            },
        )

    def leading_images(self) -> list[str]:
        images = list(self.outputs.images)
        self.outputs.images.clear()
        return images

    async def annotate(self, text: str, complete: bool) -> TextNotes:
        files = self.outputs.files
        return TextNotes(annotations=annotate(text, files)) if files else TextNotes()
