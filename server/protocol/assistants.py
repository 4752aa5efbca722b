"""Assistant request and response models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from server.protocol.common import (
    Metadata,
    Request,
    ResponseFormat,
    ResponseFormatSpec,
    ToolResources,
    ToolResourcesSpec,
    Tools,
    ToolSpec,
)

Temperature = Annotated[float, Field(ge=0, le=2)]
TopP = Annotated[float, Field(ge=0, le=1)]
ReasoningEffort = Literal["minimal", "low", "medium", "high"]


class AssistantCreate(Request):
    model: str = Field(min_length=1)
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=512)] | None = None
    instructions: Annotated[str, Field(max_length=256_000)] | None = None
    tools: Tools = []
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None


class AssistantUpdate(Request):
    """Every field optional; only the fields present in the body change."""

    model: Annotated[str, Field(min_length=1)] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=512)] | None = None
    instructions: Annotated[str, Field(max_length=256_000)] | None = None
    tools: Tools | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None


class AssistantObject(BaseModel):
    id: str
    object: Literal["assistant"] = "assistant"
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[ToolSpec]
    tool_resources: ToolResourcesSpec | None
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    response_format: ResponseFormatSpec
