"""Run rows and every status change of a run.

Status changes are compare-and-set UPDATEs (`WHERE status = <expected>`), so a worker
finishing a run and a client cancelling it at the same moment cannot overwrite each
other: exactly one of them wins and the other sees what happened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, delete, func, select

from retrieval.embedding import EmbeddingModels
from server import run_states as states
from server.crud import files, messages, steps, vector_stores
from server.errors import bad_request, not_found
from server.ids import new_id, now
from server.models import Assistant, Message, Run, RunStep, Thread, table_of
from server.protocol.common import dump_response_format, dump_tools
from server.protocol.messages import MessageCreate
from server.protocol.runs import RunObject, RunOptions

DEFAULT_TRUNCATION = {"type": "auto", "last_messages": None}


class RunGone(Exception):
    """The run's rows are gone: its thread was deleted while the run was executing."""


def to_api(row: Run) -> RunObject:
    return RunObject(
        id=row.id,
        created_at=row.created_at,
        thread_id=row.thread_id,
        assistant_id=row.assistant_id,
        status=row.status,
        required_action=row.required_action,
        last_error=row.last_error,
        expires_at=row.expires_at,
        started_at=row.started_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        incomplete_details=row.incomplete_details,
        model=row.model,
        instructions=row.instructions or "",
        tools=row.tools or [],
        metadata=row.meta or {},
        usage=row.usage,
        temperature=row.temperature,
        top_p=row.top_p,
        max_prompt_tokens=row.max_prompt_tokens,
        max_completion_tokens=row.max_completion_tokens,
        truncation_strategy=row.truncation_strategy or DEFAULT_TRUNCATION,
        tool_choice=row.tool_choice or "auto",
        parallel_tool_calls=row.parallel_tool_calls,
        response_format=row.response_format or "auto",
    )


def get(session: Session, project: str, thread_id: str, run_id: str) -> Run:
    row = session.exec(
        select(Run).where(Run.project == project, Run.thread_id == thread_id, Run.id == run_id)
    ).first()
    if row is None:
        raise not_found("run", run_id)
    return row


def load(session: Session, run_id: str) -> Run:
    """The run as stored now; RunGone when its thread was deleted meanwhile."""
    row = session.exec(select(Run).where(Run.id == run_id)).first()
    if row is None:
        raise RunGone(run_id)
    session.refresh(row)
    return row


def exists(session: Session, run_id: str) -> bool:
    return session.exec(select(Run.seq).where(Run.id == run_id)).first() is not None


def _lock_idle_thread(session: Session, thread_id: str, run_id: str | None) -> str | None:
    """Set the thread's `active_run_id` to `run_id` unless a run is active there; returns
    None on success, else the active run's id.

    The check is the conditional UPDATE itself, so the database decides, not a read made
    earlier: the matched row stays locked until the session commits (PostgreSQL's row
    lock; SQLite's write lock), and a racing claim waits for that commit and then sees
    the new value. `run_id=None` only takes the lock: a message create holds it until
    its insert commits, so no run can start between its check and its write.
    """
    active: str | None = None
    # A message create (run_id None) has loaded no Thread instance to keep in step with
    # the UPDATE; skipping the ORM's synchronisation was a fifth of its CPU.
    sync = {"synchronize_session": "auto" if run_id else False}
    for _ in range(3):
        taken = session.exec(
            update(Thread)
            .where(col(Thread.id) == thread_id, col(Thread.active_run_id).is_(None))
            .values(active_run_id=run_id),
            execution_options=sync,
        ).rowcount
        if taken:
            return None
        active = session.exec(select(Thread.active_run_id).where(Thread.id == thread_id)).one()
        if active is None:
            continue  # the run ended in between: try again
        status = session.exec(select(Run.status).where(Run.id == active)).first()
        if status is not None and status not in states.TERMINAL:
            return active
        # A stale pointer (e.g. the run was deleted with a crash in between): take over.
        taken = session.exec(
            update(Thread)
            .where(col(Thread.id) == thread_id, col(Thread.active_run_id) == active)
            .values(active_run_id=run_id),
            execution_options=sync,
        ).rowcount
        if taken:
            return None
    session.rollback()  # refused: release the lock now, not when the request ends
    return active


def _claim_thread(session: Session, thread: Thread, run_id: str) -> None:
    """Make `run_id` the thread's one active run, or refuse with 400 (never 409)."""
    active = _lock_idle_thread(session, thread.id, run_id)
    if active is not None:
        raise bad_request(
            f"Thread {thread.id} already has an active run {active}.", code="thread_locked"
        )


_threads = table_of(Thread)
_TAKE_IDLE_THREAD = (
    update(_threads)
    .where(
        _threads.c.project == bindparam("in_project"),
        _threads.c.id == bindparam("thread_id"),
        _threads.c.active_run_id.is_(None),
    )
    .values(active_run_id=None)
)


def take_idle_thread(session: Session, project: str, thread_id: str) -> bool:
    """The common case of a message create in one prebuilt Core statement: lock the
    thread's row if it exists in this project with no active run. False says neither
    why nor whether anything is locked: callers then check each on its own."""
    params = {"in_project": project, "thread_id": thread_id}
    return bool(session.connection().execute(_TAKE_IDLE_THREAD, params).rowcount)


def require_no_active_run(session: Session, thread_id: str) -> None:
    """Refuse (400) a message while a run is active on the thread. Otherwise the thread's
    row stays locked until this session commits: make the write, then commit."""
    active = _lock_idle_thread(session, thread_id, None)
    if active is not None:
        raise bad_request(f"Can't add messages to {thread_id} while a run {active} is active.")


def create(
    session: Session,
    project: str,
    thread: Thread,
    assistant: Assistant,
    body: RunOptions,
    *,
    additional_instructions: str | None = None,
    additional_messages: list[MessageCreate] | None = None,
    models: EmbeddingModels,
    requires_action_timeout: int,
    run_id: str | None = None,
    lease: tuple[str, float] | None = None,
) -> Run:
    """Create a queued run; `lease` (owner, deadline) pre-claims it for a streaming request
    so that only the process holding the client's connection executes it."""
    refs = [
        ref
        for i, m in enumerate(additional_messages or [])
        for ref in messages.file_refs(m, f"additional_messages[{i}].")
    ]
    files.require_files(session, project, refs)
    created = now()
    run_id = run_id or new_id("run")
    _claim_thread(session, thread, run_id)
    for message in additional_messages or []:
        session.add(messages.build(project, thread.id, message, created))
    session.flush()
    context_seq = session.exec(
        select(func.max(Message.seq)).where(Message.thread_id == thread.id)
    ).one()
    fields = body.model_fields_set
    tools = dump_tools(body.tools) if body.tools is not None else list(assistant.tools or [])
    run = Run(
        id=run_id,
        project=project,
        thread_id=thread.id,
        assistant_id=assistant.id,
        created_at=created,
        status=states.QUEUED,
        expires_at=created + requires_action_timeout,
        model=body.model or assistant.model,
        instructions=body.instructions
        if "instructions" in fields and body.instructions is not None
        else assistant.instructions,
        additional_instructions=additional_instructions,
        tools=tools,
        meta=body.metadata or {},
        temperature=body.temperature if body.temperature is not None else assistant.temperature,
        top_p=body.top_p if body.top_p is not None else assistant.top_p,
        max_prompt_tokens=body.max_prompt_tokens,
        max_completion_tokens=body.max_completion_tokens,
        truncation_strategy=body.truncation_strategy.model_dump()
        if body.truncation_strategy
        else None,
        tool_choice=_dump_tool_choice(body.tool_choice),
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        response_format=dump_response_format(body.response_format)
        if body.response_format is not None
        else assistant.response_format,
        reasoning_effort=body.reasoning_effort or assistant.reasoning_effort,
        context_seq=context_seq or 0,
        lease_owner=lease[0] if lease else None,
        lease_expires_at=lease[1] if lease else None,
    )
    _check_tool_choice(run)
    session.add(run)
    # Their file_search attachments join the thread's vector store as a message's do,
    # in this transaction: the run can only start once they are queued for ingestion
    # (and it waits for them before it searches).
    file_ids = messages.file_search_ids(additional_messages or [])
    vector_stores.add_attachments(session, project, thread, file_ids, models, commit=False)
    session.commit()
    return run


def _dump_tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    return choice.model_dump(exclude_none=True)


def _check_tool_choice(run: Run) -> None:
    choice = run.tool_choice
    if not isinstance(choice, dict):
        return
    if choice["type"] == "function":
        names = {t["function"]["name"] for t in run.tools if t["type"] == "function"}
        if choice["function"]["name"] not in names:
            raise bad_request(
                f"tool_choice names function '{choice['function']['name']}', "
                "which is not among the run's tools.",
                param="tool_choice",
            )
    elif choice["type"] not in {t["type"] for t in run.tools}:
        raise bad_request(
            f"tool_choice names '{choice['type']}', which is not among the run's tools.",
            param="tool_choice",
        )


def set_fields(session: Session, run: Run, **values: Any) -> None:
    """Plain field updates that are not status changes (usage, lease, metadata)."""
    session.exec(update(Run).where(col(Run.id) == run.id).values(**values))
    session.commit()
    for key, value in values.items():
        setattr(run, key, value)


def transition(session: Session, run: Run, target: str, **values: Any) -> bool:
    """Move `run` from its current status to `target` if nobody else moved it first.

    Stamps the matching timestamp; when the run ends, ends its in-flight step and
    message, frees the thread for the next run and drops the lease. Returns False (and
    refreshes `run`) when the row's status was no longer what `run` said.
    """
    current = run.status
    states.check_transition(current, target)
    ts = now()
    values = {"status": target, **values}
    if target in states.STAMPS:
        values.setdefault(states.STAMPS[target], ts)
    if target in states.TERMINAL:
        values.update(expires_at=None, lease_owner=None, lease_expires_at=None)
        values.setdefault("required_action", None)
    changed = session.exec(
        update(Run).where(col(Run.id) == run.id, col(Run.status) == current).values(**values)
    ).rowcount
    if not changed:
        session.rollback()
        # `run` usually comes from another session (the request's, the runner's last
        # one), so it cannot be refreshed here: copy the row's current values onto it.
        fresh = session.exec(select(Run).where(Run.id == run.id)).first()
        if fresh is None:
            raise RunGone(run.id)
        run.__dict__.update({key: getattr(fresh, key) for key in Run.model_fields})
        return False
    if target in states.TERMINAL:
        _end_in_flight(session, run, target, ts, values.get("last_error"))
        session.exec(
            update(Thread)
            .where(col(Thread.id) == run.thread_id, col(Thread.active_run_id) == run.id)
            .values(active_run_id=None)
        )
    session.commit()
    for key, value in values.items():
        setattr(run, key, value)
    return True


def _end_in_flight(
    session: Session, run: Run, target: str, ts: int, last_error: dict[str, Any] | None
) -> None:
    step_status = states.STEP_END_STATUS[target]
    for step in steps.in_flight(session, run.id):
        step.status = step_status
        setattr(step, states.STEP_STAMPS[step_status], ts)
        if step_status == "failed" and last_error:
            code = last_error["code"] if last_error["code"] != "invalid_prompt" else "server_error"
            step.last_error = {"code": code, "message": last_error["message"]}
        session.add(step)
    reason = states.MESSAGE_INCOMPLETE_REASON.get(target)
    if target == states.INCOMPLETE:
        reason = "max_tokens"
    for message in session.exec(
        select(Message).where(Message.run_id == run.id, Message.status == "in_progress")
    ):
        if reason:
            message.status = "incomplete"
            message.incomplete_at = ts
            message.incomplete_details = {"reason": reason}
        else:
            message.status = "completed"
            message.completed_at = ts
        session.add(message)


def delete_for_thread(session: Session, thread_id: str) -> None:
    session.exec(delete(RunStep).where(col(RunStep.thread_id) == thread_id))
    session.exec(delete(Run).where(col(Run.thread_id) == thread_id))


def submit_tool_outputs(
    session: Session, run: Run, outputs: dict[str, str], lease: tuple[str, float] | None
) -> RunStep | None:
    """requires_action -> queued with every requested output recorded on the step."""
    if run.status != states.REQUIRES_ACTION or not run.required_action:
        raise bad_request(
            f'Runs in status "{run.status}" do not accept tool outputs.', code="invalid_run_status"
        )
    wanted = [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]]
    unknown = sorted(set(outputs) - set(wanted))
    if unknown:
        raise bad_request(f"No tool call found with id '{unknown[0]}'.", param="tool_outputs")
    missing = [i for i in wanted if i not in outputs]
    if missing:
        raise bad_request(
            f"Expected tool outputs for call_ids {wanted}, got {sorted(outputs)}.",
            param="tool_outputs",
        )
    step = session.exec(
        select(RunStep)
        .where(
            RunStep.run_id == run.id, RunStep.type == "tool_calls", RunStep.status == "in_progress"
        )
        .order_by(col(RunStep.seq).desc())
    ).first()
    values: dict[str, Any] = {"required_action": None, "expires_at": None}
    if lease:
        values.update(lease_owner=lease[0], lease_expires_at=lease[1])
    if not transition(session, run, states.QUEUED, **values):
        raise bad_request(
            f'Runs in status "{run.status}" do not accept tool outputs.', code="invalid_run_status"
        )
    if step is not None:
        calls = []
        for call in step.step_details["tool_calls"]:
            if call["type"] == "function" and call["id"] in outputs:
                call = {**call, "function": {**call["function"], "output": outputs[call["id"]]}}
            calls.append(call)
        step.step_details = {"type": "tool_calls", "tool_calls": calls}
        step.status, step.completed_at = "completed", now()
        session.add(step)
        session.commit()
    return step
