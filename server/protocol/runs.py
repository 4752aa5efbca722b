"""Run and run-step request and response models."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, Field, model_validator
from typing_extensions import TypedDict

from server.protocol.assistants import ReasoningEffort, Temperature, TopP
from server.protocol.common import (
    Metadata,
    Request,
    ResponseFormat,
    ResponseFormatSpec,
    Tool,
    ToolSpec,
    Usage,
)
from server.protocol.messages import MessageCreate
from server.protocol.threads import ThreadCreate


class Truncation(Request):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _needs_count(self) -> Truncation:
        if self.type == "last_messages" and self.last_messages is None:
            raise ValueError("last_messages is required when type is 'last_messages'")
        return self


class NamedFunction(Request):
    name: str


class NamedToolChoice(Request):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedFunction | None = None

    @model_validator(mode="after")
    def _function_named(self) -> NamedToolChoice:
        if self.type == "function" and self.function is None:
            raise ValueError("function.name is required when type is 'function'")
        return self


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice
TokenLimit = Annotated[int, Field(ge=256)]


class RunOptions(Request):
    """The fields a run takes, whether created on a thread or with a new one."""

    assistant_id: str = Field(min_length=1)
    model: str | None = None
    instructions: str | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    metadata: Metadata = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: bool | None = None
    max_prompt_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None
    truncation_strategy: Truncation | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    # Extension: end the run when the streaming client disconnects (OpenAI kept going).
    cancel_on_disconnect: bool = False


class RunCreate(RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[MessageCreate] | None = None


class ThreadAndRunCreate(RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: dict[str, Any] | None = None


class ToolOutput(Request):
    tool_call_id: str = Field(min_length=1)
    output: str = ""


class SubmitToolOutputs(Request):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class RunUpdate(Request):
    metadata: Metadata = None


# --- responses (TypedDict parts: see server/protocol/common.py) -------------------------

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]


class LastError(TypedDict):
    code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
    message: str


class IncompleteDetails(TypedDict):
    reason: Literal["max_completion_tokens", "max_prompt_tokens"]


class FunctionCall(TypedDict):
    name: str
    arguments: str


class RequiredToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class SubmitToolOutputsAction(TypedDict):
    tool_calls: list[RequiredToolCall]


class RequiredAction(TypedDict):
    type: Literal["submit_tool_outputs"]
    submit_tool_outputs: SubmitToolOutputsAction


class TruncationSpec(TypedDict):
    type: Literal["auto", "last_messages"]
    last_messages: int | None


class NamedFunctionSpec(TypedDict):
    name: str


class ToolChoiceSpec(TypedDict):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NotRequired[NamedFunctionSpec]


ToolChoiceOption = Literal["none", "auto", "required"] | ToolChoiceSpec


class RunObject(BaseModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    status: RunStatus
    required_action: RequiredAction | None
    last_error: LastError | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: IncompleteDetails | None
    model: str
    instructions: str
    tools: list[ToolSpec]
    metadata: dict[str, str]
    usage: Usage | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: TruncationSpec
    tool_choice: ToolChoiceOption
    parallel_tool_calls: bool
    response_format: ResponseFormatSpec


# --- run steps -------------------------------------------------------------------------


class MessageCreation(TypedDict):
    message_id: str


class MessageCreationDetails(TypedDict):
    type: Literal["message_creation"]
    message_creation: MessageCreation


class FunctionCallDetails(TypedDict):
    name: str
    arguments: str
    output: str | None


class FunctionToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCallDetails


class CodeLogs(TypedDict):
    type: Literal["logs"]
    logs: str


class ImageRef(TypedDict):
    file_id: str


class CodeImage(TypedDict):
    type: Literal["image"]
    image: ImageRef


CodeOutput = Annotated[CodeLogs | CodeImage, Field(discriminator="type")]


class CodeInterpreterDetails(TypedDict):
    input: str
    outputs: list[CodeOutput]


class CodeInterpreterToolCall(TypedDict):
    id: str
    type: Literal["code_interpreter"]
    code_interpreter: CodeInterpreterDetails


class ResultText(TypedDict):
    type: Literal["text"]
    text: str


class FileSearchResult(TypedDict):
    file_id: str
    file_name: str
    score: float
    content: NotRequired[list[ResultText]]  # only with include[]


class FileSearchRanking(TypedDict):
    ranker: Literal["auto", "default_2024_08_21"]
    score_threshold: float


class FileSearchDetails(TypedDict):
    ranking_options: FileSearchRanking
    results: list[FileSearchResult]
    queries: NotRequired[list[str]]  # extension: what the model searched for


class FileSearchToolCall(TypedDict):
    id: str
    type: Literal["file_search"]
    file_search: FileSearchDetails


StepToolCall = Annotated[
    FunctionToolCall | CodeInterpreterToolCall | FileSearchToolCall, Field(discriminator="type")
]


class ToolCallsDetails(TypedDict):
    type: Literal["tool_calls"]
    tool_calls: list[StepToolCall]


StepDetails = Annotated[MessageCreationDetails | ToolCallsDetails, Field(discriminator="type")]
StepStatus = Literal["in_progress", "cancelled", "failed", "completed", "expired"]


class StepLastError(TypedDict):
    code: Literal["server_error", "rate_limit_exceeded"]
    message: str


class RunStepObject(BaseModel):
    id: str
    object: Literal["thread.run.step"] = "thread.run.step"
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: Literal["message_creation", "tool_calls"]
    status: StepStatus
    step_details: StepDetails
    last_error: StepLastError | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str]
    usage: Usage | None
