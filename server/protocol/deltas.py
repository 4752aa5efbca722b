"""Stream deltas: the payloads of `thread.message.delta` and `thread.run.step.delta`
events, shaped like the SDK's `MessageDeltaEvent` and `RunStepDeltaEvent`.

A delta says what changed, so a field goes out only when it was given: a model here
serialises the fields set on it (plus `object`, which is always sent), and a field given
as None is sent as null (a function call's first fragment carries `"output": null`).
The builders at the bottom are the only way the run engine makes these payloads.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer


class Sparse(BaseModel):
    """Serialises only the fields it was given, and those with a non-None default."""

    _always: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._always = frozenset(
            name for name, f in cls.model_fields.items() if f.default is not None
        )

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        given = self.model_fields_set | self._always
        return {k: v for k, v in data.items() if k in given}


# --- message deltas --------------------------------------------------------------------


class FileCitation(Sparse):
    file_id: str | None = None
    quote: str | None = None  # our extension of the v2 shape (the v1 API had it)


class FileCitationDelta(Sparse):
    index: int
    type: Literal["file_citation"] = "file_citation"
    text: str | None = None
    start_index: int | None = None
    end_index: int | None = None
    file_citation: FileCitation | None = None


class FilePath(Sparse):
    file_id: str | None = None


class FilePathDelta(Sparse):
    index: int
    type: Literal["file_path"] = "file_path"
    text: str | None = None
    start_index: int | None = None
    end_index: int | None = None
    file_path: FilePath | None = None


AnnotationDelta = Annotated[FileCitationDelta | FilePathDelta, Field(discriminator="type")]


class TextDelta(Sparse):
    value: str | None = None
    annotations: list[AnnotationDelta] | None = None


class TextDeltaBlock(Sparse):
    index: int
    type: Literal["text"] = "text"
    text: TextDelta | None = None


class ImageFileDelta(Sparse):
    file_id: str | None = None


class ImageFileDeltaBlock(Sparse):
    index: int
    type: Literal["image_file"] = "image_file"
    image_file: ImageFileDelta | None = None


MessageContentDelta = Annotated[TextDeltaBlock | ImageFileDeltaBlock, Field(discriminator="type")]


class MessageDelta(Sparse):
    content: list[MessageContentDelta] | None = None


class MessageDeltaEvent(Sparse):
    id: str
    object: Literal["thread.message.delta"] = "thread.message.delta"
    delta: MessageDelta


# --- run step deltas -------------------------------------------------------------------


class FunctionDelta(Sparse):
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


class FunctionToolCallDelta(Sparse):
    index: int
    type: Literal["function"] = "function"
    id: str | None = None
    function: FunctionDelta | None = None


class CodeLogs(Sparse):
    index: int
    type: Literal["logs"] = "logs"
    logs: str | None = None


class ImageRef(Sparse):
    file_id: str | None = None


class CodeImage(Sparse):
    index: int
    type: Literal["image"] = "image"
    image: ImageRef | None = None


CodeOutputDelta = Annotated[CodeLogs | CodeImage, Field(discriminator="type")]


class CodeInterpreterDelta(Sparse):
    input: str | None = None
    outputs: list[CodeOutputDelta] | None = None


class CodeInterpreterToolCallDelta(Sparse):
    index: int
    type: Literal["code_interpreter"] = "code_interpreter"
    id: str | None = None
    code_interpreter: CodeInterpreterDelta | None = None


class RankingOptions(Sparse):
    ranker: str
    score_threshold: float


class FileSearchResultDelta(Sparse):
    file_id: str
    file_name: str
    score: float


class FileSearchDelta(Sparse):
    ranking_options: RankingOptions | None = None
    results: list[FileSearchResultDelta] | None = None


class FileSearchToolCallDelta(Sparse):
    index: int
    type: Literal["file_search"] = "file_search"
    id: str | None = None
    file_search: FileSearchDelta


ToolCallDelta = Annotated[
    FunctionToolCallDelta | CodeInterpreterToolCallDelta | FileSearchToolCallDelta,
    Field(discriminator="type"),
]


class ToolCallsDelta(Sparse):
    type: Literal["tool_calls"] = "tool_calls"
    tool_calls: list[ToolCallDelta] | None = None


class RunStepDelta(Sparse):
    step_details: ToolCallsDelta | None = None


class RunStepDeltaEvent(Sparse):
    id: str
    object: Literal["thread.run.step.delta"] = "thread.run.step.delta"
    delta: RunStepDelta


# --- builders --------------------------------------------------------------------------


def message_text(message_id: str, index: int, text: str) -> MessageDeltaEvent:
    """More text of the content part at `index`."""
    block = TextDeltaBlock(index=index, text=TextDelta(value=text, annotations=[]))
    return MessageDeltaEvent(id=message_id, delta=MessageDelta(content=[block]))


def message_images(message_id: str, file_ids: list[str]) -> MessageDeltaEvent:
    """Image parts that lead a message (figures the sandbox made before it)."""
    blocks: list[TextDeltaBlock | ImageFileDeltaBlock] = [
        ImageFileDeltaBlock(index=i, image_file=ImageFileDelta(file_id=file_id))
        for i, file_id in enumerate(file_ids)
    ]
    return MessageDeltaEvent(id=message_id, delta=MessageDelta(content=blocks))


def message_annotations(
    message_id: str,
    index: int,
    annotations: list[FileCitationDelta | FilePathDelta],
    appended: str,
) -> MessageDeltaEvent:
    """Annotations of the text part at `index`, with the text appended to carry them."""
    text = (
        TextDelta(value=appended, annotations=annotations)
        if appended
        else TextDelta(annotations=annotations)
    )
    block = TextDeltaBlock(index=index, text=text)
    return MessageDeltaEvent(id=message_id, delta=MessageDelta(content=[block]))


def step_tool_call(step_id: str, fragment: ToolCallDelta) -> RunStepDeltaEvent:
    """One tool call's fragment of a tool_calls step."""
    details = ToolCallsDelta(tool_calls=[fragment])
    return RunStepDeltaEvent(id=step_id, delta=RunStepDelta(step_details=details))
