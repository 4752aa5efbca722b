"""One model call of a run (a turn): the streamed answer becomes an assistant message or
a tool_calls step, with the same events the hosted API streamed.

A turn opens the message (and its step) on the first text, and the tool_calls step on
the first tool-call delta; text before the tool calls is its own, finished message.
Calls to a server-side tool stream through that tool (`ToolUse.begin` / `more`); other
calls are function calls, streamed as their arguments arrive. What the turn has
produced so far is kept, so a cancel can save the partial text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from server.crud import messages as message_crud
from server.crud import steps as step_crud
from server.db import Database
from server.ids import new_id
from server.models import Run, RunStep
from server.protocol import deltas
from server.protocol.runs import FunctionToolCall
from server.runs import writes
from server.runs.model_client import (
    Finish,
    StreamEvent,
    TextDelta,
)
from server.runs.model_client import ToolCallDelta as ModelToolCall
from server.runs.text_tool_calls import could_be_text_tool_call, parse_text_tool_calls
from server.tools.base import Annotation, StepCall, ToolCall, ToolUse

Emit = Callable[[str, Any], None]


class Turn:
    def __init__(self, run: Run, db: Database, emit: Emit, tools: dict[str, ToolUse]) -> None:
        self._run = run
        self.db = db
        self.emit = emit
        self.tools = tools
        self.message_id: str | None = None
        self.message_step_id: str | None = None
        self.text = ""  # of the open message
        self.held = ""  # text held back while it may still be a JSON tool call
        self.images: list[str] = []  # image_file parts leading the open message
        self._tool_step_id: str | None = None
        self.calls: dict[int, ToolCall] = {}  # by the model's index

    # -- what a tool sees (TurnHost) -------------------------------------------------

    @property
    def run(self) -> Run:
        return self._run

    @property
    def tool_step_id(self) -> str | None:
        return self._tool_step_id

    def step_delta(self, fragment: deltas.ToolCallDelta) -> None:
        assert self._tool_step_id is not None
        self.emit("thread.run.step.delta", deltas.step_tool_call(self._tool_step_id, fragment))

    # -- streaming -------------------------------------------------------------------

    async def stream(self, events: AsyncIterator[StreamEvent], function_names: set[str]) -> Finish:
        """Consume the model's stream (`ModelClient.stream`, maybe wrapped by an observer)."""
        finish = Finish(None)
        hold = bool(function_names)  # tool calls written as text must not leak as text
        async for event in events:
            if isinstance(event, TextDelta):
                if hold:
                    self.held += event.text
                    if could_be_text_tool_call(self.held):
                        continue
                    hold, text, self.held = False, self.held, ""
                    await self._text(text)
                else:
                    await self._text(event.text)
            elif isinstance(event, ModelToolCall):
                await self._tool_delta(event)
            else:
                finish = event
        if self.held:
            parsed = None if self.calls else parse_text_tool_calls(self.held, function_names)
            if parsed:
                for index, (name, arguments) in enumerate(parsed):
                    await self._tool_delta(ModelToolCall(index, None, name, arguments))
            else:
                await self._text(self.held)
            self.held = ""
        return finish

    async def _ensure_message(self) -> None:
        """Open the assistant message (and its step) on first output; images the tools
        produced since the last message lead its content, as in the hosted API."""
        if self.message_id is not None:
            return
        images = [file_id for use in self.tools.values() for file_id in use.leading_images()]
        step, message = await self.db.run(writes.open_message, self._run, images)
        self.message_id, self.message_step_id, self.images = message.id, step.id, images
        step_api = step_crud.to_api(step)
        self.emit("thread.run.step.created", step_api)
        self.emit("thread.run.step.in_progress", step_api)
        message_api = message_crud.to_api(message)
        self.emit("thread.message.created", message_api)
        self.emit("thread.message.in_progress", message_api)
        if images:
            self.emit("thread.message.delta", deltas.message_images(message.id, images))

    async def _text(self, text: str) -> None:
        if not text:
            return
        await self._ensure_message()
        assert self.message_id is not None
        self.text += text
        delta = deltas.message_text(self.message_id, len(self.images), text)
        self.emit("thread.message.delta", delta)

    async def _tool_delta(self, delta: ModelToolCall) -> None:
        if self._tool_step_id is None:
            if self.message_id is not None:
                # Text before the tool calls is its own, finished message.
                await self.close_message(Finish(None), None)
            step = await self.db.run(writes.open_tool_step, self._run)
            self._tool_step_id = step.id
            step_api = step_crud.to_api(step)
            self.emit("thread.run.step.created", step_api)
            self.emit("thread.run.step.in_progress", step_api)
        call = self.calls.get(delta.index)
        created = call is None
        if call is None:
            use = self.tools.get(delta.name or "")
            call = ToolCall(index=delta.index, id=delta.id or new_id("call"), use=use)
            self.calls[delta.index] = call
        if delta.name:
            call.name += delta.name
        call.arguments += delta.arguments
        if call.use is not None:
            if created:
                self.step_delta(call.use.begin(call))
            fragment = call.use.more(call)
            if fragment is not None:
                self.step_delta(fragment)
            return
        function = deltas.FunctionDelta(arguments=delta.arguments)
        if created:
            function["output"] = None
        if delta.name:
            function["name"] = delta.name
        if created:
            self.step_delta(
                deltas.FunctionToolCallDelta(
                    index=delta.index, type="function", id=call.id, function=function
                )
            )
        else:
            self.step_delta(
                deltas.FunctionToolCallDelta(index=delta.index, type="function", function=function)
            )

    # -- ending ----------------------------------------------------------------------

    async def close_message(self, finish: Finish, incomplete_reason: str | None) -> None:
        # The model may have said nothing at all: still leave an (empty) assistant message.
        await self._ensure_message()
        assert self.message_id is not None
        usage = None if self.calls else (finish.usage or None)
        annotations: list[Annotation] = []
        for use in self.tools.values():
            notes = await use.annotate(self.text, complete=not incomplete_reason)
            annotations += notes.annotations
            if notes.streamed and notes.annotations:
                self.text += notes.appended
                self.emit(
                    "thread.message.delta",
                    deltas.message_annotations(
                        self.message_id, len(self.images), notes.annotations, notes.appended
                    ),
                )
        content = writes.text_content(self.text, self.images, annotations)
        step, message = await self.db.run(
            writes.close_message,
            self.message_id,
            self.message_step_id,
            content,
            usage,
            incomplete_reason,
        )
        event = "thread.message.incomplete" if incomplete_reason else "thread.message.completed"
        self.emit(event, message_crud.to_api(message))
        self.emit("thread.run.step.completed", step_crud.to_api(step))
        self.message_id = self.message_step_id = None
        self.text = ""
        self.images = []

    def step_calls(self) -> list[StepCall]:
        """The tool_calls step's details, in the model's order."""
        return [_details(call) for _, call in sorted(self.calls.items())]

    def function_calls(self) -> list[ToolCall]:
        return [c for _, c in sorted(self.calls.items()) if c.use is None]

    def server_calls(self) -> list[tuple[ToolUse, list[ToolCall]]]:
        """This turn's calls of each server-side tool, tool by tool."""
        by_tool = [
            (use, [c for _, c in sorted(self.calls.items()) if c.use is use])
            for use in self.tools.values()
        ]
        return [(use, calls) for use, calls in by_tool if calls]

    async def save_tool_step(self, usage: dict[str, int] | None, done: bool = False) -> RunStep:
        return await self.db.run(
            writes.save_tool_step, self._tool_step_id, self.step_calls(), usage, done
        )

    async def save_partial_text(self) -> None:
        """On cancel or failure: what the model had written so far (no annotations)."""
        if self.message_id and self.text:
            content = writes.text_content(self.text, self.images)
            await self.db.run(writes.save_partial_text, self.message_id, content)


def _details(call: ToolCall) -> StepCall:
    if call.use is not None:
        return call.use.details(call)
    return FunctionToolCall(
        id=call.id,
        type="function",
        function={"name": call.name, "arguments": call.arguments, "output": None},
    )
