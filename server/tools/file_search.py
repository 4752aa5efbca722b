"""The file_search tool inside runs: what the model is offered, how its call is answered,
and how the reply's source markers become `file_citation` annotations.

The model gets a `file_search` function taking several queries. Its results come back
as numbered sources, each introduced by the marker the hosted API used,
`【{call}:{result}†{filename}】`; markers the reply repeats become annotations. Sources
are read back from the run's own steps, so a run taken over by another worker after a
crash still cites correctly. `FileSearch` is the tool behind the run engine's ServerTool
seam (server/tools/base.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlmodel import Session, col, select

from retrieval.embedding import EmbeddingModelUnavailable, UnknownEmbeddingModel
from retrieval.records import Candidate, SearchTrace
from server.config import Settings
from server.crud import vector_stores
from server.db import Database
from server.ids import now
from server.models import Assistant, RetrievalTrace, Run, RunStep, Thread, VectorStoreFile
from server.protocol.deltas import FileSearchDelta, FileSearchToolCallDelta, ToolCallDelta
from server.protocol.messages import FileCitationAnnotation
from server.protocol.runs import (
    FileSearchDetails,
    FileSearchRanking,
    FileSearchResult,
    FileSearchToolCall,
)
from server.tools.base import (
    ChatTool,
    ServerTool,
    StepCall,
    TextNotes,
    ToolCall,
    ToolFailed,
    ToolUse,
    TurnHost,
)
from server.tools.search_budget import ContextWindows, fit

if TYPE_CHECKING:  # the service loads Chroma: not needed to read this module's logic
    from server.tools.search_service import SearchService

log = logging.getLogger("assistd.runner")
TOOL_NAME: Final = "file_search"
DEFAULT_RANKER: Final = "default_2024_08_21"
DEFAULT_RANKING = FileSearchRanking(ranker=DEFAULT_RANKER, score_threshold=0.0)
MARKER = re.compile(r"【(\d+)(?::(\d+))?†([^】]*)】")
QUOTE_CHARS = 400


def chat_tool() -> ChatTool:
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": (
                "Search the files the user has provided for passages relevant to the "
                "question. Use it whenever the answer may be in those files. Results come "
                "back as sources, each introduced by a marker like 【0:1†name】; cite a "
                "source by writing its marker right after the sentence it supports."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "queries": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "One to five search queries: the question itself, "
                        "and rephrasings or sub-questions of it.",
                    }
                },
                "required": ["queries"],
            },
        },
    }


def queries_from_arguments(arguments: str) -> list[str]:
    """Small models also send {"query": "..."} or a bare string: take what they meant."""
    try:
        parsed: Any = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        parsed = arguments
    raw = parsed.get("queries", parsed.get("query", [])) if isinstance(parsed, dict) else parsed
    if isinstance(raw, str):
        raw = [raw]
    queries = [str(q).strip() for q in raw if str(q).strip()] if isinstance(raw, list) else []
    return queries[:5]


@dataclass
class SearchSettings:
    max_num_results: int
    ranker: Literal["auto", "default_2024_08_21"]
    score_threshold: float

    @property
    def ranking_options(self) -> FileSearchRanking:
        ranker = DEFAULT_RANKER if self.ranker == "auto" else self.ranker
        return {"ranker": ranker, "score_threshold": self.score_threshold}


def settings_for(
    run: Run, max_num_results: int | None = None, score_threshold: float = 0.0
) -> SearchSettings:
    """The run's file_search tool settings; where the tool does not say, the server's
    defaults (ASSISTD_FILE_SEARCH_MAX_RESULTS, ASSISTD_FILE_SEARCH_SCORE_THRESHOLD), else
    the spec's (20 results, 5 for gpt-3.5-turbo; no threshold)."""
    tool = next((t for t in run.tools if t.get("type") == TOOL_NAME), {})
    options = tool.get("file_search") or {}
    ranking = options.get("ranking_options") or {}
    default = max_num_results or (5 if run.model.startswith("gpt-3.5") else 20)
    threshold = ranking.get("score_threshold")
    return SearchSettings(
        max_num_results=options.get("max_num_results") or default,
        ranker=ranking.get("ranker") or "auto",
        score_threshold=float(threshold if threshold is not None else score_threshold),
    )


def store_refs(session: Session, run: Run) -> list[tuple[str, str]]:
    """(store id, embedding model) of the assistant's and the thread's stores that can
    be searched now (expired ones cannot); marks them active."""
    ids: list[str] = []
    assistant = session.exec(select(Assistant).where(Assistant.id == run.assistant_id)).first()
    thread = session.exec(select(Thread).where(Thread.id == run.thread_id)).first()
    for resources in (
        assistant.tool_resources if assistant else None,
        thread.tool_resources if thread else None,
    ):
        ids += ((resources or {}).get(TOOL_NAME) or {}).get("vector_store_ids") or []
    stores = vector_stores.searchable(session, run.project, ids)
    if stores:
        vector_stores.touch(session, [s.id for s in stores])
    return [(s.id, s.embedding_model) for s in stores]


def step_results(results: list[Candidate]) -> list[FileSearchResult]:
    """The step's `results` (content kept; the API drops it unless include[] asks)."""
    return [
        {
            "file_id": c.file_id,
            "file_name": c.filename,
            "score": round(c.score, 6),
            "content": [{"type": "text", "text": c.text}],
        }
        for c in results
    ]


def output_text(call_number: int, results: list[FileSearchResult]) -> str:
    """What the model reads back: numbered sources with the marker to cite each by."""
    if not results:
        return "No relevant passages were found in the files."
    parts = [
        "Sources found in the user's files. After a sentence that uses a source, write "
        f"its marker exactly as shown (for example 【{call_number}:0†source】).\n"
    ]
    for i, result in enumerate(results):
        text = "".join(c["text"] for c in result.get("content") or [])
        parts.append(f"【{call_number}:{i}†{result['file_name']}】\n{text.strip()}\n")
    return "\n".join(parts)


def run_sources(session: Session, run: Run) -> list[list[FileSearchResult]]:
    """Every file_search call's results in this run, numbered in call order."""
    steps = session.exec(
        select(RunStep)
        .where(RunStep.run_id == run.id, RunStep.type == "tool_calls")
        .order_by(col(RunStep.seq))
    ).all()
    return [
        call["file_search"].get("results") or []
        for step in steps
        for call in step.step_details.get("tool_calls", [])
        if call.get("type") == TOOL_NAME
    ]


def _citation(marker: str, start: int, result: FileSearchResult) -> FileCitationAnnotation:
    text = "".join(c["text"] for c in result.get("content") or [])
    return {
        "type": "file_citation",
        "text": marker,
        "start_index": start,
        "end_index": start + len(marker),
        # `quote` is the cited passage (our extension; the v1 API had the field).
        "file_citation": {"file_id": result["file_id"], "quote": text[:QUOTE_CHARS]},
    }


def cite(
    text: str, sources: list[list[FileSearchResult]]
) -> tuple[str, list[FileCitationAnnotation]]:
    """Annotations for the markers in `text`; returns the text to append as well.

    A marker with one number refers to the last search. When the reply cites nothing
    although sources were given (small models often don't), the answer is attributed
    to the top sources of the last search: their markers are appended, so the user
    still sees where the answer came from.
    """
    if not any(sources):
        return "", []
    annotations: list[FileCitationAnnotation] = []
    for match in MARKER.finditer(text):
        first, second = int(match.group(1)), match.group(2)
        call, index = (first, int(second)) if second is not None else (len(sources) - 1, first)
        if 0 <= call < len(sources) and 0 <= index < len(sources[call]):
            annotations.append(_citation(match.group(0), match.start(), sources[call][index]))
    if annotations:
        return "", annotations
    call = max(i for i, results in enumerate(sources) if results)
    appended, seen = "", set[str]()
    for index, result in enumerate(sources[call]):
        if result["file_id"] in seen or len(seen) == 3:
            continue
        seen.add(result["file_id"])
        marker = f"【{call}:{index}†{result['file_name']}】"
        start = len(text) + len(appended) + (0 if appended or not text else 1)
        appended += ("" if appended or not text else " ") + marker
        annotations.append(_citation(marker, start, result))
    return appended, annotations


def ingesting(session: Session, store_ids: list[str]) -> bool:
    """Whether any file of these stores is still being ingested."""
    return (
        session.exec(
            select(VectorStoreFile.seq).where(
                col(VectorStoreFile.vector_store_id).in_(store_ids),
                VectorStoreFile.status == "in_progress",
            )
        ).first()
        is not None
    )


def save_trace(
    session: Session,
    run: Run,
    step_id: str | None,
    call_id: str,
    refs: list[tuple[str, str]],
    search: FileSearchDetails,
    trace: SearchTrace | None,
) -> None:
    """Keep what the call did: its queries, every candidate with its vector, keyword
    and fused scores, and which went into the prompt (our inspectability extension)."""
    session.add(
        RetrievalTrace(
            id=call_id,
            project=run.project,
            run_id=run.id,
            step_id=step_id or "",
            created_at=now(),
            trace={
                "vector_store_ids": [store_id for store_id, _ in refs],
                "queries": search.get("queries", []),
                "ranking_options": search["ranking_options"],
                "candidates": [c.to_dict() for c in trace.candidates] if trace else [],
            },
        )
    )
    session.commit()


# --- the tool ------------------------------------------------------------------------


class FileSearch(ServerTool):
    """Searches the run's vector stores (the assistant's and the thread's)."""

    name = TOOL_NAME

    def __init__(self, search: SearchService, settings: Settings) -> None:
        self.search = search
        self.settings = settings
        self.ingest_wait_seconds = settings.ingest_wait_seconds
        self.contexts = ContextWindows(settings)

    def use(self, run: Run, db: Database) -> ToolUse:
        return FileSearchUse(self, run, db)

    def replay(self, call: StepCall, ordinal: int) -> tuple[str, str]:
        if call["type"] != TOOL_NAME:
            raise ValueError(f"not a {TOOL_NAME} call: {call['type']}")
        body = call["file_search"]
        arguments = json.dumps({"queries": body.get("queries") or []})
        return arguments, output_text(ordinal, body.get("results") or [])


class FileSearchUse(ToolUse):
    def __init__(self, tool: FileSearch, run: Run, db: Database) -> None:
        self.tool = tool
        self.run = run
        self.db = db
        self.results: dict[str, FileSearchDetails] = {}  # call id -> what it found

    async def offer(self) -> ChatTool:
        return chat_tool()

    def begin(self, call: ToolCall) -> ToolCallDelta:
        return FileSearchToolCallDelta(index=call.index, type=TOOL_NAME, id=call.id, file_search={})

    async def execute(self, calls: list[ToolCall], turn: TurnHost) -> None:
        """Answer the calls from the run's stores, after waiting for their files to
        finish ingesting (as the hosted API did), and keep a trace of each."""
        try:
            await self._execute(calls, turn)
        except (UnknownEmbeddingModel, EmbeddingModelUnavailable) as exc:
            # A store's model is gone or broken: the operator's problem, said as such,
            # rather than a crash report.
            log.warning("run %s: file_search failed: %s", self.run.id, exc)
            raise ToolFailed("server_error", str(exc)) from exc

    async def _execute(self, calls: list[ToolCall], turn: TurnHost) -> None:
        server = self.tool.settings
        run = self.run
        settings = settings_for(
            run, server.file_search_max_results, server.file_search_score_threshold
        )
        budget = int(self.tool.contexts.lookup(run.model) * server.file_search_context_share)
        refs = await self.db.run(store_refs, run)
        await self._wait_for_ingestion([store_id for store_id, _ in refs])
        ranking = settings.ranking_options
        for call in calls:
            started = time.perf_counter()
            queries = queries_from_arguments(call.arguments)
            trace = None
            if refs and queries:
                trace = await asyncio.to_thread(
                    self.tool.search.search,
                    refs,
                    queries,
                    max_num_results=settings.max_num_results,
                    score_threshold=settings.score_threshold,
                    ranker=settings.ranker,
                )
                trace.results = await asyncio.to_thread(fit, trace.results, budget, run.model)
                given = {id(c) for c in trace.results}
                for candidate in trace.candidates:
                    candidate.selected = id(candidate) in given
            results = step_results(trace.results) if trace else []
            found = self.results[call.id] = FileSearchDetails(
                ranking_options=ranking, results=results, queries=queries
            )
            await self.db.run(save_trace, run, turn.tool_step_id, call.id, refs, found, trace)
            body = FileSearchDelta(
                ranking_options=ranking,
                results=[
                    {"file_id": r["file_id"], "file_name": r["file_name"], "score": r["score"]}
                    for r in results
                ],
            )
            turn.step_delta(
                FileSearchToolCallDelta(index=call.index, type=TOOL_NAME, file_search=body)
            )
            log.info(
                "run %s: file_search call %s: %d results in %.1f ms",
                run.id,
                call.id,
                len(results),
                (time.perf_counter() - started) * 1000,
            )

    async def _wait_for_ingestion(self, store_ids: list[str]) -> None:
        deadline = time.monotonic() + self.tool.ingest_wait_seconds
        while store_ids and time.monotonic() < deadline:
            if not await self.db.run(ingesting, store_ids):
                return
            await asyncio.sleep(0.2)

    def details(self, call: ToolCall) -> StepCall:
        found = self.results.get(call.id)
        return FileSearchToolCall(
            id=call.id,
            type=TOOL_NAME,
            file_search={
                "ranking_options": found["ranking_options"] if found else DEFAULT_RANKING,
                "results": found["results"] if found else [],
                # Extension: the queries the model searched with.
                "queries": found.get("queries", []) if found else [],
            },
        )

    async def annotate(self, text: str, complete: bool) -> TextNotes:
        """file_citation annotations for the reply's source markers (appending markers
        when the model cited nothing), streamed as one last delta before completion."""
        if not complete:
            return TextNotes()
        sources = await self.db.run(run_sources, self.run)
        appended, citations = cite(text, sources)
        if not citations:
            return TextNotes()
        return TextNotes(appended=appended, annotations=citations, streamed=True)
