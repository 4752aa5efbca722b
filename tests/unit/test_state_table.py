"""The run state table (server/run_states.py), in process."""

from __future__ import annotations

import pytest

from server import run_states as states


def test_cancellable_are_the_active_states_not_yet_cancelling() -> None:
    assert states.ACTIVE - {states.CANCELLING} == states.CANCELLABLE
    for status in states.CANCELLABLE:
        states.check_transition(status, states.CANCELLING)


def test_every_state_is_terminal_or_active_and_targets_are_states() -> None:
    assert set(states.TRANSITIONS) == states.TERMINAL | states.ACTIVE
    assert not states.TERMINAL & states.ACTIVE
    for targets in states.TRANSITIONS.values():
        assert targets <= set(states.TRANSITIONS)


def test_a_cancel_can_lose_the_race_to_any_ending_but_expiry() -> None:
    assert states.TRANSITIONS[states.CANCELLING] == {
        states.CANCELLED,
        states.COMPLETED,
        states.FAILED,
        states.INCOMPLETE,
    }


def test_what_an_ending_stamps_on_the_run_its_step_and_its_message() -> None:
    assert set(states.STAMPS) <= set(states.TRANSITIONS)
    assert set(states.STEP_END_STATUS) == states.TERMINAL
    assert set(states.STEP_STAMPS) == set(states.STEP_END_STATUS.values())
    assert set(states.MESSAGE_INCOMPLETE_REASON) < states.TERMINAL


def test_a_forbidden_move_names_both_states() -> None:
    with pytest.raises(states.TransitionError, match="'completed' to 'queued'"):
        states.check_transition(states.COMPLETED, states.QUEUED)
