"""The run state machine: one table of allowed transitions, and what each one stamps.

Every status change of a run goes through `check_transition`; a forbidden one is an
error the API reports as 400 (never 409, which the SDK would retry). The table depends on
nothing, so storage (crud/runs.py) and the run engine (runs/) both build on it.
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = "queued"
IN_PROGRESS: Final = "in_progress"
REQUIRES_ACTION: Final = "requires_action"
CANCELLING: Final = "cancelling"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"
COMPLETED: Final = "completed"
INCOMPLETE: Final = "incomplete"
EXPIRED: Final = "expired"

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    QUEUED: frozenset({IN_PROGRESS, CANCELLING, FAILED, EXPIRED}),
    IN_PROGRESS: frozenset({REQUIRES_ACTION, COMPLETED, INCOMPLETE, FAILED, CANCELLING, EXPIRED}),
    # submit_tool_outputs puts the run back in the queue, as the hosted API did.
    REQUIRES_ACTION: frozenset({QUEUED, CANCELLING, FAILED, EXPIRED}),
    # A cancel request can lose the race against the run finishing or failing.
    CANCELLING: frozenset({CANCELLED, COMPLETED, FAILED, INCOMPLETE}),
    CANCELLED: frozenset(),
    FAILED: frozenset(),
    COMPLETED: frozenset(),
    INCOMPLETE: frozenset(),
    EXPIRED: frozenset(),
}

TERMINAL: Final = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
ACTIVE: Final = frozenset(TRANSITIONS) - TERMINAL
# Where a client's cancel can start from (a run already cancelling is not cancelled twice).
CANCELLABLE: Final = frozenset({QUEUED, IN_PROGRESS, REQUIRES_ACTION})

# The run timestamp each status stamps when entered.
STAMPS: Final[dict[str, str]] = {
    IN_PROGRESS: "started_at",
    CANCELLED: "cancelled_at",
    FAILED: "failed_at",
    COMPLETED: "completed_at",
}

# How the in-flight message and step end when the run ends this way.
MESSAGE_INCOMPLETE_REASON: Final[dict[str, str]] = {
    CANCELLED: "run_cancelled",
    EXPIRED: "run_expired",
    FAILED: "run_failed",
}
STEP_END_STATUS: Final[dict[str, str]] = {
    CANCELLED: "cancelled",
    EXPIRED: "expired",
    FAILED: "failed",
    INCOMPLETE: "cancelled",
    COMPLETED: "completed",
}
STEP_STAMPS: Final[dict[str, str]] = {
    "cancelled": "cancelled_at",
    "expired": "expired_at",
    "failed": "failed_at",
    "completed": "completed_at",
}


class TransitionError(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Cannot move a run from '{current}' to '{target}'.")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise TransitionError(current, target)
