"""Vector store, vector store file, file batch and search request/response models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from typing_extensions import TypedDict

from server.protocol.common import Metadata, Request
from server.protocol.limits import (
    MAX_BATCH_FILES,
    MAX_INT64,
    MAX_SEARCH_QUERIES,
    MAX_SEARCH_QUERY,
    MAX_STORE_FILE_IDS,
    MIN_INT64,
    Integral,
)
from server.protocol.runs import FileSearchRanking

MAX_ATTRIBUTES = 16


def _check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"attributes can have at most {MAX_ATTRIBUTES} keys")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError("attribute keys can be at most 64 characters")
        if isinstance(item, str) and len(item) > 512:
            raise ValueError("string attribute values can be at most 512 characters")
    return value


def _check_int64(value: Any) -> Any:
    """Chroma keeps attribute numbers as 64-bit integers or doubles; a larger integer
    would otherwise slip into the float branch, rounded."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not MIN_INT64 <= value <= MAX_INT64:
        raise ValueError("integers must fit in 64 bits")
    return value


# A request's attribute value; responses use AttributeValue (below), already checked.
AttributeInput = Annotated[str | bool | int | float, BeforeValidator(_check_int64)]
Attributes = Annotated[dict[str, AttributeInput] | None, AfterValidator(_check_attributes)]
# Chunking strategies are checked by retrieval.chunking (which also knows our
# markdown/code extensions), so the request keeps them as plain objects.
ChunkingStrategy = dict[str, Any]


class ExpiresAfter(Request):
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(ge=1, le=365), Integral]


class VectorStoreCreate(Request):
    file_ids: Annotated[list[str], Field(max_length=MAX_STORE_FILE_IDS)] = []
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None
    # Extension: the embedding model for this store (sent through the SDK's extra_body).
    embedding_model: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class VectorStoreUpdate(Request):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata = None


class VectorStoreFileCreate(Request):
    file_id: str = Field(min_length=1)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class VectorStoreFileUpdate(Request):
    attributes: Attributes


class FileBatchCreate(Request):
    file_ids: Annotated[list[str], Field(min_length=1, max_length=MAX_BATCH_FILES)] | None = None
    files: (
        Annotated[list[VectorStoreFileCreate], Field(min_length=1, max_length=MAX_BATCH_FILES)]
        | None
    ) = None
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


# The spec's rankers (all hybrid here) plus our single-signal ones, for comparisons.
Ranker = Literal["auto", "none", "default-2024-11-15", "default_2024_08_21", "vector", "keyword"]


class SearchRankingOptions(Request):
    ranker: Ranker = "auto"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


Query = Annotated[str, Field(max_length=MAX_SEARCH_QUERY)]


class SearchRequest(Request):
    query: Query | Annotated[list[Query], Field(min_length=1, max_length=MAX_SEARCH_QUERIES)]
    rewrite_query: bool = False
    max_num_results: Annotated[int, Field(ge=1, le=50), Integral] = 10
    filters: dict[str, Any] | None = None
    ranking_options: SearchRankingOptions | None = None


AttributeValue = str | bool | int | float  # in this order: a bool or int stays as it is


class ExpiresAfterSpec(TypedDict):
    anchor: Literal["last_active_at"]
    days: int


class FileLastError(TypedDict):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


class StaticChunkingSpec(TypedDict):
    max_chunk_size_tokens: int
    chunk_overlap_tokens: int


class StaticStrategySpec(TypedDict):
    type: Literal["static"]
    static: StaticChunkingSpec


class OtherStrategySpec(TypedDict):
    type: Literal["other"]


ChunkingStrategySpec = Annotated[
    StaticStrategySpec | OtherStrategySpec, Field(discriminator="type")
]


class FileCounts(BaseModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStoreObject(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    expires_after: ExpiresAfterSpec | None
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str]
    embedding_model: str

    @model_serializer(mode="wrap")
    def _omit_unset_expiry(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """`expires_after` is optional but not nullable in the spec: leave it out."""
        data: dict[str, Any] = handler(self)
        if data.get("expires_after") is None:
            data.pop("expires_after", None)
        return data


class FileProgress(BaseModel):
    """Extension: how far the ingestion of a file in progress is. `fraction` is how far
    through the file the parser has read (bytes of a text file, pages of a PDF; Office
    and HTML files jump from 0 to 1), `chunks_done` the chunks embedded and indexed so far
    (`usage_bytes` grows with them)."""

    fraction: float
    chunks_done: int


class VectorStoreFileObject(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    last_error: FileLastError | None
    chunking_strategy: ChunkingStrategySpec
    attributes: dict[str, AttributeValue]
    # Extension, present while the file is in progress (FileProgress).
    progress: FileProgress | None = None

    @model_serializer(mode="wrap")
    def _omit_progress_when_done(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("progress") is None:
            data.pop("progress", None)
        return data


class FileBatchObject(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    file_counts: FileCounts


class TextContent(BaseModel):
    type: Literal["text"] = "text"
    text: str


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, AttributeValue]
    content: list[TextContent]


class SearchResultsPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None


class FileContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[TextContent]
    has_more: bool = False
    next_page: str | None = None


class ChunkObject(BaseModel):
    """Extension: one indexed chunk, as GET .../files/{file_id}/chunks lists them."""

    id: str
    object: Literal["vector_store.file.chunk"] = "vector_store.file.chunk"
    vector_store_id: str
    file_id: str
    index: int
    text: str
    tokens: int
    start_index: int
    end_index: int
    page: int | None
    embedding_model: str
    windows: int


class TraceCandidate(TypedDict):
    """retrieval.records.Candidate, as the trace keeps it."""

    chunk_id: str
    store_id: str
    file_id: str
    filename: str
    text: str
    start: int
    end: int
    page: int | None
    attributes: dict[str, AttributeValue]
    vector_score: float
    keyword_score: float
    score: float
    vector_rank: int | None
    keyword_rank: int | None
    selected: bool


class TraceObject(BaseModel):
    """Extension: what one file_search call retrieved and why."""

    id: str
    object: Literal["file_search.trace"] = "file_search.trace"
    run_id: str
    step_id: str
    created_at: int
    vector_store_ids: list[str]
    queries: list[str]
    ranking_options: FileSearchRanking
    # A Sequence so that the inspector's CitedTrace can narrow the candidates' type.
    candidates: Sequence[TraceCandidate]
