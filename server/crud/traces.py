"""What the inspector reads about runs: a run's model calls and timeline, and a thread's
file_search traces, code executions and citations resolved to chunks."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select

from server.crud import run_records
from server.crud.run_records import MODEL_CALL, STATUS, TOOLS
from server.models import Message, RetrievalTrace, Run, RunRecord, RunStep
from server.protocol.inspect import (
    CitationLink,
    CitedTrace,
    CodeExecution,
    ModelCallObject,
    RunTimeline,
    ThreadTraces,
    TimelineEvent,
)

# The marker file_search answers cite with (server/tools/file_search.py).
MARKER = re.compile(r"【(\d+)(?::(\d+))?†([^】]*)】")


def model_call_to_api(row: RunRecord) -> ModelCallObject:
    return ModelCallObject(
        id=row.id, run_id=row.run_id, thread_id=row.thread_id, created_at=row.created_at, **row.data
    )


def timeline(session: Session, run: Run) -> RunTimeline:
    """The run's life in time order: its creation, every status change the run engine
    made, each model call and tool execution (with durations), and each step."""
    events = [TimelineEvent(at=float(run.created_at), type="created", detail={"status": "queued"})]
    for row in run_records.for_run(session, run.project, run.id):
        data = row.data
        if row.kind == STATUS:
            events.append(TimelineEvent(at=row.at, type="status", detail=data))
        elif row.kind == TOOLS:
            events.append(
                TimelineEvent(at=row.at, type="tools", duration=data.get("seconds"), detail=data)
            )
        elif row.kind == MODEL_CALL:
            summary = {
                k: data.get(k) for k in ("number", "model", "usage", "cost", "error", "cancelled")
            }
            summary["finish_reason"] = (data.get("response") or {}).get("finish_reason")
            events.append(
                TimelineEvent(
                    at=row.at,
                    type="model_call",
                    duration=data.get("latency"),
                    id=row.id,
                    detail=summary,
                )
            )
    steps = session.exec(
        select(RunStep).where(RunStep.run_id == run.id).order_by(col(RunStep.seq))
    ).all()
    for step in steps:
        ended = step.completed_at or step.failed_at or step.cancelled_at or step.expired_at
        events.append(
            TimelineEvent(
                at=float(step.created_at),
                type="step",
                id=step.id,
                duration=float(ended - step.created_at) if ended else None,
                detail={"type": step.type, "status": step.status},
            )
        )
    # Steps (and the run's creation) carry whole seconds, so a step can sort up to a
    # second before the model call that opened it; the page shows those to the second.
    events.sort(key=lambda e: e.at)
    return RunTimeline(run_id=run.id, thread_id=run.thread_id, status=run.status, events=events)


def thread_traces(session: Session, project: str, thread_id: str) -> ThreadTraces:
    runs = session.exec(
        select(Run.id)
        .where(Run.project == project, Run.thread_id == thread_id)
        .order_by(col(Run.seq))
    ).all()
    rows = (
        session.exec(
            select(RetrievalTrace)
            .where(RetrievalTrace.project == project, col(RetrievalTrace.run_id).in_(runs))
            .order_by(col(RetrievalTrace.seq))
        ).all()
        if runs
        else []
    )
    traces = {(r.step_id, r.id): r for r in rows}
    cited: dict[tuple[str, str], set[str]] = {}  # trace key -> cited chunk ids
    citations = _citations(session, project, thread_id, traces, cited)
    file_search = []
    for r in rows:
        chosen = cited.get((r.step_id, r.id), set())
        body = dict(r.trace)
        body["candidates"] = [
            {**c, "cited": c.get("chunk_id") in chosen} for c in body.get("candidates") or []
        ]
        file_search.append(
            CitedTrace(id=r.id, run_id=r.run_id, step_id=r.step_id, created_at=r.created_at, **body)
        )
    code = [
        CodeExecution(
            call_id=call.get("id", ""),
            run_id=record.run_id,
            at=record.at,
            seconds=record.data.get("seconds") or 0.0,
            session=call.get("session"),
            files=call.get("files") or {},
            error=call.get("error"),
            timed_out=bool(call.get("timed_out")),
        )
        for record in run_records.for_thread(session, project, thread_id, TOOLS)
        if record.data.get("tool") == "code_interpreter"
        for call in record.data.get("calls") or []
    ]
    return ThreadTraces(
        thread_id=thread_id, file_search=file_search, code_interpreter=code, citations=citations
    )


def _search_calls(session: Session, thread_id: str) -> dict[str, list[tuple[str, str]]]:
    """Per run, its file_search calls in the order they were numbered for citing:
    (step id, call id)."""
    steps = session.exec(
        select(RunStep)
        .where(RunStep.thread_id == thread_id, RunStep.type == "tool_calls")
        .order_by(col(RunStep.seq))
    ).all()
    calls: dict[str, list[tuple[str, str]]] = {}
    for step in steps:
        for call in step.step_details.get("tool_calls", []):
            if call.get("type") == "file_search":
                calls.setdefault(step.run_id, []).append((step.id, call["id"]))
    return calls


def _citations(
    session: Session,
    project: str,
    thread_id: str,
    traces: dict[tuple[str, str], RetrievalTrace],
    cited: dict[tuple[str, str], set[str]],
) -> list[CitationLink]:
    """Each file_citation of the thread's assistant messages, resolved to its chunk: the
    marker 【call:result†name】 names the run's call-th search and its result-th source,
    and the sources of a call are its trace's selected candidates, in order. A marker
    with one number names the run's last search."""
    calls = _search_calls(session, thread_id)
    messages = session.exec(
        select(Message)
        .where(Message.project == project, Message.thread_id == thread_id)
        .where(Message.role == "assistant")
        .order_by(col(Message.seq))
    ).all()
    links: list[CitationLink] = []
    for message in messages:
        run_calls = calls.get(message.run_id or "", [])
        for annotation in _file_citations(message.content):
            link = CitationLink(
                message_id=message.id,
                run_id=message.run_id or "",
                text=annotation["text"],
                start_index=annotation["start_index"],
                end_index=annotation["end_index"],
                file_id=annotation["file_citation"]["file_id"],
                trace_id=None,
                step_id=None,
                vector_store_id=None,
                chunk_id=None,
            )
            match = MARKER.fullmatch(annotation["text"])
            if match and run_calls:
                first, second = int(match.group(1)), match.group(2)
                number, index = (
                    (first, int(second)) if second is not None else (len(run_calls) - 1, first)
                )
                key = run_calls[number] if 0 <= number < len(run_calls) else None
                trace = traces.get(key) if key else None
                chunk = _selected(trace.trace, index) if trace else None
                if key and chunk and chunk.get("file_id") == link.file_id:
                    link.step_id, link.trace_id = key
                    link.vector_store_id, link.chunk_id = chunk["store_id"], chunk["chunk_id"]
                    cited.setdefault(key, set()).add(chunk["chunk_id"])
            links.append(link)
    return links


def _file_citations(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        annotation
        for part in content
        if part.get("type") == "text"
        for annotation in (part.get("text") or {}).get("annotations") or []
        if annotation.get("type") == "file_citation"
    ]


def _selected(trace: dict[str, Any], index: int) -> dict[str, Any] | None:
    chosen = [c for c in trace.get("candidates") or [] if c.get("selected")]
    return chosen[index] if 0 <= index < len(chosen) else None
