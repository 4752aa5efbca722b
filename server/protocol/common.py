"""Pieces shared by several resources: metadata, tools, tool resources, lists."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, NotRequired, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_LEN = 64
MAX_METADATA_VALUE_LEN = 512


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata can have at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_LEN:
            raise ValueError(f"metadata keys can be at most {MAX_METADATA_KEY_LEN} characters")
        if len(item) > MAX_METADATA_VALUE_LEN:
            raise ValueError(f"metadata values can be at most {MAX_METADATA_VALUE_LEN} characters")
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]


class Request(BaseModel):
    """Request bodies ignore unknown fields, as the hosted API did."""

    model_config = ConfigDict(extra="ignore")


# --- tools --------------------------------------------------------------------------


class CodeInterpreterTool(Request):
    type: Literal["code_interpreter"]


class RankingOptions(Request):
    ranker: Literal["auto", "default_2024_08_21"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class FileSearchSettings(Request):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class FileSearchTool(Request):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


class FunctionDefinition(Request):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(Request):
    type: Literal["function"]
    function: FunctionDefinition


Tool = Annotated[CodeInterpreterTool | FileSearchTool | FunctionTool, Field(discriminator="type")]
Tools = Annotated[list[Tool], Field(max_length=128)]


def dump_tools(tools: list[Any] | None) -> list[dict[str, Any]]:
    return [t.model_dump(exclude_none=True) for t in tools or []]


# --- tool resources -------------------------------------------------------------------


class CodeInterpreterResources(Request):
    file_ids: Annotated[list[str], Field(max_length=20)] = []


class FileSearchResources(Request):
    vector_store_ids: Annotated[list[str], Field(max_length=1)] | None = None
    vector_stores: Annotated[list[dict[str, Any]], Field(max_length=1)] | None = None


class ToolResources(Request):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


# --- response format ------------------------------------------------------------------


class JsonSchemaFormat(Request):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(Request):
    type: Literal["text"]


class ResponseFormatJsonObject(Request):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(Request):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = (
    Literal["auto"]
    | Annotated[
        ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
        Field(discriminator="type"),
    ]
)


def dump_response_format(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return value.model_dump(exclude_none=True, by_alias=True)


# --- responses ------------------------------------------------------------------------
#
# Nested parts of response objects are TypedDicts shaped like the SDK's models: pydantic
# checks them when a response is built, they serialise with exactly the keys stored (an
# optional key absent stays absent), and they cost a dict, not a model instance, on the
# hottest reads (a page of messages).


class CodeInterpreterToolSpec(TypedDict):
    type: Literal["code_interpreter"]


class RankingOptionsSpec(TypedDict):
    ranker: Literal["auto", "default_2024_08_21"]
    score_threshold: float


class FileSearchSpec(TypedDict, total=False):
    max_num_results: int
    ranking_options: RankingOptionsSpec


class FileSearchToolSpec(TypedDict):
    type: Literal["file_search"]
    file_search: NotRequired[FileSearchSpec]


class FunctionSpec(TypedDict):
    name: str
    description: NotRequired[str]
    parameters: NotRequired[dict[str, Any]]
    strict: NotRequired[bool]


class FunctionToolSpec(TypedDict):
    type: Literal["function"]
    function: FunctionSpec


ToolSpec = Annotated[
    CodeInterpreterToolSpec | FileSearchToolSpec | FunctionToolSpec, Field(discriminator="type")
]


class CodeInterpreterResourcesSpec(TypedDict):
    file_ids: list[str]


class FileSearchResourcesSpec(TypedDict):
    vector_store_ids: list[str]


class ToolResourcesSpec(TypedDict, total=False):
    code_interpreter: CodeInterpreterResourcesSpec
    file_search: FileSearchResourcesSpec


class TextFormatSpec(TypedDict):
    type: Literal["text"]


class JsonObjectFormatSpec(TypedDict):
    type: Literal["json_object"]


class JsonSchemaSpec(TypedDict):
    name: str
    description: NotRequired[str]
    schema: NotRequired[dict[str, Any]]
    strict: NotRequired[bool]


class JsonSchemaFormatSpec(TypedDict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormatSpec = (
    Literal["auto"]
    | Annotated[
        TextFormatSpec | JsonObjectFormatSpec | JsonSchemaFormatSpec, Field(discriminator="type")
    ]
)


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


T = TypeVar("T")


class ListPage(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True
