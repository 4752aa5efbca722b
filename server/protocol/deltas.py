"""Stream deltas: the payloads of `thread.message.delta` and `thread.run.step.delta`
events, typed like the SDK's `MessageDeltaEvent` and `RunStepDeltaEvent`.

A delta says only what changed, so most keys are optional, and a key given as None is
sent as null (a function call's first fragment carries `"output": null`). The types are
TypedDicts: a delta is built once and serialised once, so it costs a dict, and mypy
checks every key and value where one is built. The builders at the bottom are the only
way the run engine makes these payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NotRequired

from typing_extensions import TypedDict

from server.protocol.messages import FileCitationAnnotation, FilePathAnnotation
from server.protocol.runs import CodeOutput, FileSearchRanking, ImageRef

# --- message deltas --------------------------------------------------------------------


class FileCitationDelta(FileCitationAnnotation):
    index: int


class FilePathDelta(FilePathAnnotation):
    index: int


AnnotationDelta = FileCitationDelta | FilePathDelta


class TextDelta(TypedDict):
    value: NotRequired[str]
    annotations: NotRequired[list[AnnotationDelta]]


class TextDeltaBlock(TypedDict):
    index: int
    type: Literal["text"]
    text: TextDelta


class ImageFileDelta(TypedDict):
    file_id: str


class ImageFileDeltaBlock(TypedDict):
    index: int
    type: Literal["image_file"]
    image_file: ImageFileDelta


class MessageDelta(TypedDict):
    content: list[TextDeltaBlock | ImageFileDeltaBlock]


class MessageDeltaEvent(TypedDict):
    id: str
    object: Literal["thread.message.delta"]
    delta: MessageDelta


# --- run step deltas -------------------------------------------------------------------


class FunctionDelta(TypedDict):
    name: NotRequired[str]
    arguments: NotRequired[str]
    output: NotRequired[str | None]


class FunctionToolCallDelta(TypedDict):
    index: int
    type: Literal["function"]
    id: NotRequired[str]
    function: FunctionDelta


class CodeLogsDelta(TypedDict):
    index: int
    type: Literal["logs"]
    logs: str


class CodeImageDelta(TypedDict):
    index: int
    type: Literal["image"]
    image: ImageRef


CodeOutputDelta = CodeLogsDelta | CodeImageDelta


class CodeInterpreterDelta(TypedDict):
    input: NotRequired[str]
    outputs: NotRequired[list[CodeOutputDelta]]


class CodeInterpreterToolCallDelta(TypedDict):
    index: int
    type: Literal["code_interpreter"]
    id: NotRequired[str]
    code_interpreter: CodeInterpreterDelta


class FileSearchResultDelta(TypedDict):
    file_id: str
    file_name: str
    score: float


class FileSearchDelta(TypedDict, total=False):
    ranking_options: FileSearchRanking
    results: list[FileSearchResultDelta]


class FileSearchToolCallDelta(TypedDict):
    index: int
    type: Literal["file_search"]
    id: NotRequired[str]
    file_search: FileSearchDelta


ToolCallDelta = FunctionToolCallDelta | CodeInterpreterToolCallDelta | FileSearchToolCallDelta


class ToolCallsDelta(TypedDict):
    type: Literal["tool_calls"]
    tool_calls: list[ToolCallDelta]


class RunStepDelta(TypedDict):
    step_details: ToolCallsDelta


class RunStepDeltaEvent(TypedDict):
    id: str
    object: Literal["thread.run.step.delta"]
    delta: RunStepDelta


# --- builders --------------------------------------------------------------------------


def message_text(message_id: str, index: int, text: str) -> MessageDeltaEvent:
    """More text of the content part at `index`."""
    block = TextDeltaBlock(index=index, type="text", text={"value": text, "annotations": []})
    return _message_delta(message_id, [block])


def message_images(message_id: str, file_ids: list[str]) -> MessageDeltaEvent:
    """Image parts that lead a message (figures the sandbox made before it)."""
    blocks: list[TextDeltaBlock | ImageFileDeltaBlock] = [
        ImageFileDeltaBlock(index=i, type="image_file", image_file={"file_id": file_id})
        for i, file_id in enumerate(file_ids)
    ]
    return _message_delta(message_id, blocks)


def message_annotations(
    message_id: str,
    index: int,
    annotations: Sequence[FileCitationAnnotation | FilePathAnnotation],
    appended: str,
) -> MessageDeltaEvent:
    """Annotations of the text part at `index` (numbered within this delta), with the
    text appended to carry them."""
    numbered: list[AnnotationDelta] = []
    for i, annotation in enumerate(annotations):
        if annotation["type"] == "file_citation":
            numbered.append(FileCitationDelta(index=i, **annotation))
        else:
            numbered.append(FilePathDelta(index=i, **annotation))
    text = TextDelta(annotations=numbered)
    if appended:
        text["value"] = appended
    return _message_delta(message_id, [TextDeltaBlock(index=index, type="text", text=text)])


def _message_delta(
    message_id: str, blocks: list[TextDeltaBlock | ImageFileDeltaBlock]
) -> MessageDeltaEvent:
    return MessageDeltaEvent(
        id=message_id, object="thread.message.delta", delta={"content": blocks}
    )


def step_tool_call(step_id: str, fragment: ToolCallDelta) -> RunStepDeltaEvent:
    """One tool call's fragment of a tool_calls step."""
    details = ToolCallsDelta(type="tool_calls", tool_calls=[fragment])
    return RunStepDeltaEvent(
        id=step_id, object="thread.run.step.delta", delta={"step_details": details}
    )


def code_outputs(outputs: list[CodeOutput]) -> list[CodeOutputDelta]:
    """A call's outputs as a delta lists them: each with its index."""
    out: list[CodeOutputDelta] = []
    for n, item in enumerate(outputs):
        if item["type"] == "logs":
            out.append(CodeLogsDelta(index=n, type="logs", logs=item["logs"]))
        else:
            out.append(CodeImageDelta(index=n, type="image", image=item["image"]))
    return out
