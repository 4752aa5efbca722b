"""Thread request and response models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from server.protocol.common import Metadata, Request, ToolResources, ToolResourcesSpec
from server.protocol.messages import MessageCreate


class ThreadCreate(Request):
    messages: list[MessageCreate] = []
    tool_resources: ToolResources | None = None
    metadata: Metadata = None


class ThreadUpdate(Request):
    tool_resources: ToolResources | None = None
    metadata: Metadata = None


class ThreadObject(BaseModel):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    tool_resources: ToolResourcesSpec | None
    metadata: dict[str, str]
