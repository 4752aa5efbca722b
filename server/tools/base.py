"""The seam between the run engine and the tools it runs itself (server-side tools).

A server-side tool is offered to the model as a function of the tool's name; a call to
it is not handed to the client but executed here, and recorded in the run step as the
tool's own kind of call (`code_interpreter`, `file_search`). Everything specific to a
tool sits behind two small interfaces:

* `ServerTool`, one per process: its name, whether this server can run it, and how a
  recorded call is replayed to the model in a later prompt.
* `ToolUse`, the tool within one run (made by `ServerTool.use`): what the model sees
  each turn, the step deltas as a call's arguments stream, executing finished calls, the
  step details of a call, and what the tool adds to the assistant's next message.

The run engine holds no per-tool branches: adding a tool is one module implementing
both, listed in `server/tools/registry.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from server.db import Database
from server.models import Run
from server.protocol.deltas import ToolCallDelta
from server.protocol.messages import FileCitationAnnotation, FilePathAnnotation
from server.protocol.runs import StepToolCall

ChatTool = dict[str, Any]  # a chat-completions tool definition (what the model sees)
StepCall = StepToolCall  # one entry of a tool_calls step's `tool_calls`
Annotation = FileCitationAnnotation | FilePathAnnotation


@dataclass
class ToolCall:
    """One call the model made in a turn, as it streams in. What a server-side tool
    makes of it (results, input already streamed) the tool keeps itself."""

    index: int  # the model's index of the call within the turn
    id: str
    name: str = ""
    arguments: str = ""
    use: ToolUse | None = None  # None: a function call, answered by the client


@dataclass
class TextNotes:
    """What a tool adds to the assistant's reply when it is closed."""

    appended: str = ""  # text added at the end (streamed with the annotations)
    annotations: Sequence[Annotation] = ()
    streamed: bool = False  # sent as a last message delta before completion


class ToolFailed(Exception):
    """The tool cannot work for this run (the operator's problem, not the model's): the
    run fails with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TurnHost(Protocol):
    """What a tool sees of the model call (turn) whose tool calls it executes."""

    @property
    def run(self) -> Run: ...

    @property
    def tool_step_id(self) -> str | None: ...

    def step_delta(self, fragment: ToolCallDelta) -> None:
        """Stream one call's fragment of the turn's tool_calls step."""


class ToolUse(ABC):
    """A server-side tool within one run."""

    @abstractmethod
    async def offer(self) -> ChatTool:
        """The function the model is offered this turn."""

    @abstractmethod
    def begin(self, call: ToolCall) -> ToolCallDelta:
        """The step delta announcing a new call."""

    def more(self, call: ToolCall) -> ToolCallDelta | None:
        """A step delta for arguments that just streamed in (`call.arguments` holds all
        so far), or None when nothing is shown yet."""
        return None

    @abstractmethod
    async def execute(self, calls: list[ToolCall], turn: TurnHost) -> None:
        """Run this turn's finished calls of this tool, keeping and streaming their
        results; raises ToolFailed when the run cannot go on."""

    @abstractmethod
    def details(self, call: ToolCall) -> StepCall:
        """The call as recorded in the run step (with its results once it ran)."""

    def leading_images(self) -> list[str]:
        """File ids of images the next assistant message starts with (taken once)."""
        return []

    async def annotate(self, text: str, complete: bool) -> TextNotes:
        """Annotations for the finished reply `text`; `complete` is False when the reply
        was cut short (max_tokens)."""
        return TextNotes()


class ServerTool(ABC):
    """A kind of server-side tool, one per process."""

    name: ClassVar[str]  # the tool's type in the API and the function the model calls

    def problem(self) -> str | None:
        """Why runs cannot use this tool on this server (None when they can)."""
        return None

    @abstractmethod
    def use(self, run: Run, db: Database) -> ToolUse:
        """The tool for one run (which lists it among its tools)."""

    @abstractmethod
    def replay(self, call: StepCall, ordinal: int) -> tuple[str, str]:
        """A recorded call as the model made it: (arguments JSON, the output it read).
        `ordinal` counts this tool's earlier calls in the run."""

    def chat_tool_choice(self) -> dict[str, Any]:
        """`tool_choice` forcing this tool: exactly its function."""
        return {"type": "function", "function": {"name": self.name}}
