"""The run state machine: the transition table itself, and the states a real server
moves through on expiry, cancel from each state, and a restart with a run in flight."""

from __future__ import annotations

import itertools
import os
import signal
import time

import openai
import pytest

from server import run_states as states
from tests.conftest import KEY_ALPHA, WEATHER_TOOL, make_client, server_env
from tests.support.server_process import ServerProcess

ALLOWED = {
    ("queued", "in_progress"),
    ("queued", "cancelling"),
    ("queued", "failed"),
    ("queued", "expired"),
    ("in_progress", "requires_action"),
    ("in_progress", "completed"),
    ("in_progress", "incomplete"),
    ("in_progress", "failed"),
    ("in_progress", "cancelling"),
    ("in_progress", "expired"),
    ("requires_action", "queued"),
    ("requires_action", "cancelling"),
    ("requires_action", "failed"),
    ("requires_action", "expired"),
    ("cancelling", "cancelled"),
    ("cancelling", "completed"),
    ("cancelling", "failed"),
    ("cancelling", "incomplete"),
}
ALL = list(states.TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transition(current: str, target: str) -> None:
    states.check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"), [p for p in itertools.product(ALL, ALL) if p not in ALLOWED]
)
def test_forbidden_transition(current: str, target: str) -> None:
    with pytest.raises(states.TransitionError):
        states.check_transition(current, target)


def test_terminal_states_have_no_exit() -> None:
    assert {"cancelled", "failed", "completed", "incomplete", "expired"} == states.TERMINAL
    assert all(not states.TRANSITIONS[s] for s in states.TERMINAL)


def _client(proc: ServerProcess):  # type: ignore[no-untyped-def]
    return make_client(proc.base_url, KEY_ALPHA)


def _setup(c):  # type: ignore[no-untyped-def]
    a = c.beta.assistants.create(model="m", tools=[WEATHER_TOOL])
    t = c.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    return a, t


def _wait(predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_requires_action_expires(tmp_path, scripted, model) -> None:
    proc = ServerProcess(
        tmp_path, env=server_env(scripted[1], ASSISTD_REQUIRES_ACTION_TIMEOUT="1")
    ).start()
    try:
        c = _client(proc)
        a, t = _setup(c)
        model.tool_calls([{"name": "get_weather", "arguments": {"city": "Riga"}}])
        run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
        assert run.status == "requires_action" and run.expires_at <= time.time() + 2
        expired = _wait(
            lambda: (
                (r := c.beta.threads.runs.retrieve(run.id, thread_id=t.id)).status == "expired"
                and r
            )
        )
        assert expired.required_action is None and expired.expires_at is None
        step = c.beta.threads.runs.steps.list(run_id=run.id, thread_id=t.id).data[0]
        assert step.status == "expired" and step.expired_at
        with pytest.raises(openai.BadRequestError):
            c.beta.threads.runs.submit_tool_outputs(
                run_id=run.id,
                thread_id=t.id,
                tool_outputs=[
                    {
                        "tool_call_id": run.required_action.submit_tool_outputs.tool_calls[0].id,
                        "output": "late",
                    }
                ],
            )
        c.beta.threads.messages.create(thread_id=t.id, role="user", content="thread is free again")
    finally:
        proc.stop()


def test_cancel_a_queued_run(tmp_path, scripted, model) -> None:
    """With no worker claiming runs, a run stays queued until cancelled."""
    proc = ServerProcess(tmp_path, env=server_env(scripted[1]), args=["--no-worker"]).start()
    try:
        c = _client(proc)
        a, t = _setup(c)
        run = c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
        time.sleep(0.3)
        assert c.beta.threads.runs.retrieve(run.id, thread_id=t.id).status == "queued"
        assert c.beta.threads.runs.cancel(run.id, thread_id=t.id).status in (
            "cancelling",
            "cancelled",
        )
        final = c.beta.threads.runs.poll(run.id, thread_id=t.id)
        assert final.status == "cancelled" and final.started_at is None and final.cancelled_at
        assert model.call_count == 0
    finally:
        proc.stop()


def test_no_worker_still_executes_streamed_runs(tmp_path, scripted, model) -> None:
    proc = ServerProcess(tmp_path, env=server_env(scripted[1]), args=["--no-worker"]).start()
    try:
        c = _client(proc)
        a, t = _setup(c)
        model.text("streamed here")
        with c.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
            stream.until_done()
        assert stream.current_run.status == "completed"
    finally:
        proc.stop()


@pytest.mark.parametrize("how", ["kill", "term"])
def test_restart_with_a_run_in_flight_ends_it(tmp_path, scripted, model, how: str) -> None:
    # No shutdown grace: SIGTERM hands the run back at once, like a crash.
    env = server_env(scripted[1], ASSISTD_LEASE_SECONDS="1", ASSISTD_SHUTDOWN_GRACE_SECONDS="0")
    proc = ServerProcess(tmp_path, env=env).start()
    c = _client(proc)
    a, t = _setup(c)
    model.text("never finished " * 10, chunks=10, chunk_delay=1.0)
    run = c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    _wait(lambda: c.beta.threads.messages.list(thread_id=t.id, run_id=run.id).data)
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGKILL if how == "kill" else signal.SIGTERM)
    proc.proc.wait(timeout=15)
    restarted = ServerProcess(tmp_path, env=env)
    restarted.start()
    try:
        c2 = _client(restarted)
        final = _wait(
            lambda: (
                (r := c2.beta.threads.runs.retrieve(run.id, thread_id=t.id)).status
                in states.TERMINAL
                and r
            )
        )
        assert final.status == "failed" and final.last_error.code == "server_error"
        message = c2.beta.threads.messages.list(thread_id=t.id, run_id=run.id).data[0]
        assert message.status == "incomplete" and message.incomplete_details.reason == "run_failed"
        assert (
            c2.beta.threads.messages.list(thread_id=t.id, order="asc").data[0].content[0].text.value
            == "hi"
        )
        model.text("after restart")
        again = c2.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
        assert again.status == "completed"
    finally:
        restarted.stop()


def test_sigterm_lets_a_run_in_flight_finish_within_the_grace_period(
    tmp_path, scripted, model
) -> None:
    env = server_env(scripted[1], ASSISTD_SHUTDOWN_GRACE_SECONDS="20")
    proc = ServerProcess(tmp_path, env=env).start()
    c = _client(proc)
    a, t = _setup(c)
    model.text("finishing politely " * 4, chunks=4, chunk_delay=0.5)
    run = c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    _wait(lambda: c.beta.threads.messages.list(thread_id=t.id, run_id=run.id).data)
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGTERM)
    # uvicorn shuts down cleanly, then re-raises the signal it caught: -SIGTERM, not 0.
    assert proc.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    restarted = ServerProcess(tmp_path, env=env).start()
    try:
        final = _client(restarted).beta.threads.runs.retrieve(run.id, thread_id=t.id)
        assert final.status == "completed"
    finally:
        restarted.stop()
