"""Extensions behind the inspector (/inspector/): a run's model calls and timeline, a
thread's traces, and a vector store search with its split scores. The page uses these
and nothing else private, so scripts and notebooks get the same data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from server.protocol.vector_stores import SearchResult, TraceCandidate, TraceObject


class ModelAnswer(BaseModel):
    text: str
    tool_calls: list[dict[str, Any]]  # {id, name, arguments}, as the model streamed them
    finish_reason: str | None


class ModelCallError(BaseModel):
    code: str
    message: str


class ModelCallObject(BaseModel):
    """One model call of a run: the request exactly as sent (after truncation) and the
    raw answer, cut with a marker where the record exceeded its cap (`truncated`)."""

    id: str
    object: Literal["thread.run.model_call"] = "thread.run.model_call"
    run_id: str
    thread_id: str
    created_at: int
    number: int  # 1, 2, ... within one execution of the run
    model: str
    route: str  # how the model name was routed (MODELS_CONFIG, provider, MODEL_BASE_URL)
    request: dict[str, Any]  # model, messages, tools, tool_choice, response_format, ...
    response: ModelAnswer
    usage: dict[str, int] | None
    cost: float  # USD from litellm's local cost map; 0 for models it does not price
    started_at: float
    first_token_at: float | None
    ended_at: float | None
    latency: float | None  # seconds from the request to the end of the stream
    error: ModelCallError | None
    cancelled: bool
    truncated: bool


class TimelineEvent(BaseModel):
    """`type`: created (the run was queued), status (a change the run engine made),
    model_call, tools (server-side tool executions), step (a run step)."""

    at: float
    type: Literal["created", "status", "model_call", "tools", "step"]
    duration: float | None = None  # seconds, when the event spans time
    id: str | None = None  # the model call's or step's id
    detail: dict[str, Any] = {}


class RunTimeline(BaseModel):
    object: Literal["thread.run.timeline"] = "thread.run.timeline"
    run_id: str
    thread_id: str
    status: str
    events: list[TimelineEvent]


class CodeExecution(BaseModel):
    """One code_interpreter call as executed: the session it ran in (`new`: no earlier
    variables; `reused`: the thread's live session; `reset`: the session died during the
    call, so its variables are gone), files it wrote (path -> file id), its error."""

    call_id: str
    run_id: str
    at: float
    seconds: float  # of the batch of calls it ran in
    session: str | None
    files: dict[str, str]
    error: str | None
    timed_out: bool


class CitationLink(BaseModel):
    """A file_citation annotation of an assistant message, resolved to the chunk it
    cites through the run's file_search trace."""

    message_id: str
    run_id: str
    text: str  # the marker, 【call:result†filename】
    start_index: int
    end_index: int
    file_id: str
    trace_id: str | None
    step_id: str | None
    vector_store_id: str | None
    chunk_id: str | None


class CitedCandidate(TraceCandidate):
    cited: bool  # whether an answer in the thread cited this chunk


class CitedTrace(TraceObject):
    """A file_search trace whose candidates say whether an answer cited them."""

    candidates: list[CitedCandidate]


class ThreadTraces(BaseModel):
    """Everything retrieval and code execution recorded for a thread's runs. Each
    file_search candidate carries `cited`: whether an answer cited it."""

    object: Literal["thread.traces"] = "thread.traces"
    thread_id: str
    file_search: list[CitedTrace]
    code_interpreter: list[CodeExecution]
    citations: list[CitationLink]


class ScoredResult(SearchResult):
    chunk_id: str
    vector_score: float
    keyword_score: float
    vector_rank: int | None
    keyword_rank: int | None


class SearchTraceObject(BaseModel):
    """A vector store search with its split scores: the selected results and every
    candidate considered (vector and keyword score, ranks, fused score, selected)."""

    object: Literal["vector_store.search_trace"] = "vector_store.search_trace"
    search_query: list[str]
    ranking_options: dict[str, Any]
    data: list[ScoredResult]
    candidates: list[dict[str, Any]]
