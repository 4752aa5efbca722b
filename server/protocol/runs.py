"""Run and run-step request and response models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from server.protocol.assistants import Instructions, ReasoningEffort, Temperature, TopP
from server.protocol.common import Metadata, Request, ResponseFormat, Tool
from server.protocol.limits import MAX_INT32, MAX_RUN_TOOLS, Integral
from server.protocol.messages import MessageCreate
from server.protocol.threads import ThreadCreate


class Truncation(Request):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[int, Field(ge=1, le=MAX_INT32), Integral] | None = None

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
TokenLimit = Annotated[int, Field(ge=256, le=MAX_INT32), Integral]


class RunOptions(Request):
    """The fields a run takes, whether created on a thread or with a new one."""

    assistant_id: str = Field(min_length=1)
    model: str | None = None
    instructions: Instructions | None = None
    tools: Annotated[list[Tool], Field(max_length=MAX_RUN_TOOLS)] | None = None
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
    additional_instructions: Instructions | None = None
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


class RunObject(BaseModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    thread_id: str
    assistant_id: str
    status: str
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    expires_at: int | None
    started_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    incomplete_details: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    metadata: dict[str, str]
    usage: dict[str, int] | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any]
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any


class RunStepObject(BaseModel):
    id: str
    object: Literal["thread.run.step"] = "thread.run.step"
    created_at: int
    assistant_id: str
    thread_id: str
    run_id: str
    type: str
    status: str
    step_details: dict[str, Any]
    last_error: dict[str, Any] | None
    expired_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    metadata: dict[str, str]
    usage: dict[str, int] | None
