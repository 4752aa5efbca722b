"""Message request and response models."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from server.protocol.common import CodeInterpreterTool, Metadata, Request


class ImageFile(Request):
    file_id: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImageUrl(Request):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(Request):
    type: Literal["text"]
    text: str


class ImageFilePart(Request):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageUrlPart(Request):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImageFilePart | ImageUrlPart, Field(discriminator="type")]


class FileSearchTypeOnly(Request):
    type: Literal["file_search"]


AttachmentTool = Annotated[CodeInterpreterTool | FileSearchTypeOnly, Field(discriminator="type")]


class Attachment(Request):
    file_id: str = Field(min_length=1)
    tools: list[AttachmentTool] = []


class MessageCreate(Request):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)]
    attachments: list[Attachment] | None = None
    metadata: Metadata = None


class MessageUpdate(Request):
    metadata: Metadata = None


# --- responses (TypedDict parts: see server/protocol/common.py) -------------------------

Detail = Literal["auto", "low", "high"]


class FileCitation(TypedDict):
    file_id: str
    quote: NotRequired[str]  # the cited passage: our extension (the v1 API had it)


class FileCitationAnnotation(TypedDict):
    type: Literal["file_citation"]
    text: str
    start_index: int
    end_index: int
    file_citation: FileCitation


class FilePath(TypedDict):
    file_id: str


class FilePathAnnotation(TypedDict):
    type: Literal["file_path"]
    text: str
    start_index: int
    end_index: int
    file_path: FilePath


Annotation = Annotated[FileCitationAnnotation | FilePathAnnotation, Field(discriminator="type")]


class Text(TypedDict):
    value: str
    annotations: list[Annotation]


class TextBlock(TypedDict):
    type: Literal["text"]
    text: Text


class ImageFileRef(TypedDict):
    file_id: str
    detail: NotRequired[Detail]  # absent on images the sandbox made


class ImageFileBlock(TypedDict):
    type: Literal["image_file"]
    image_file: ImageFileRef


class ImageUrlRef(TypedDict):
    url: str
    detail: NotRequired[Detail]


class ImageUrlBlock(TypedDict):
    type: Literal["image_url"]
    image_url: ImageUrlRef


MessageContent = Annotated[TextBlock | ImageFileBlock | ImageUrlBlock, Field(discriminator="type")]


class AttachmentToolSpec(TypedDict):
    type: Literal["code_interpreter", "file_search"]


class AttachmentSpec(TypedDict):
    file_id: str
    tools: list[AttachmentToolSpec]


class MessageIncompleteDetails(TypedDict):
    reason: Literal["content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed"]


class MessageObject(BaseModel):
    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    status: Literal["in_progress", "incomplete", "completed"]
    incomplete_details: MessageIncompleteDetails | None
    completed_at: int | None
    incomplete_at: int | None
    role: Literal["user", "assistant"]
    content: list[MessageContent]
    assistant_id: str | None
    run_id: str | None
    attachments: list[AttachmentSpec] | None
    metadata: dict[str, str]


def content_to_api(content: str | list[Any]) -> list[MessageContent]:
    """Request content (string or parts) -> the stored/returned content-part array."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts: list[MessageContent] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif isinstance(part, ImageFilePart):
            image = part.image_file
            parts.append(
                {
                    "type": "image_file",
                    "image_file": {"file_id": image.file_id, "detail": image.detail or "auto"},
                }
            )
        else:
            image_url = part.image_url
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": image_url.url, "detail": image_url.detail or "auto"},
                }
            )
    return parts
