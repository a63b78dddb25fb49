"""The escalation state machine: which state may follow which, checked on every change."""

from __future__ import annotations

WAITING = "waiting"  # in an office's queue
CLAIMED = "claimed"  # a counselor took it and sees the case; has not written yet
ACTIVE = "active"  # the counselor and the person are talking
CLOSED = "closed"  # the counselor finished, with an outcome
RETURNED = "returned"  # handed back to the bot (by the counselor, or the person left)
ABANDONED = "abandoned"  # nobody came back in time (never for a crisis automatically)

STATES = (WAITING, CLAIMED, ACTIVE, CLOSED, RETURNED, ABANDONED)
OPEN_STATES = frozenset({WAITING, CLAIMED, ACTIVE})
FINAL_STATES = frozenset({CLOSED, RETURNED, ABANDONED})

# A transfer puts a claimed or active case back to WAITING in another office's queue.
TRANSITIONS: dict[str, frozenset[str]] = {
    WAITING: frozenset({CLAIMED, RETURNED, ABANDONED}),
    CLAIMED: frozenset({ACTIVE, WAITING, CLOSED, RETURNED, ABANDONED}),
    ACTIVE: frozenset({WAITING, CLOSED, RETURNED, ABANDONED}),
    CLOSED: frozenset(),
    RETURNED: frozenset(),
    ABANDONED: frozenset(),
}


class InvalidTransition(ValueError):
    """A state change the machine does not allow (e.g. claiming a closed case)."""

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"cannot go from {current!r} to {wanted!r}")
        self.current = current
        self.wanted = wanted


def can_move(current: str, wanted: str) -> bool:
    """Whether ``current`` → ``wanted`` is allowed."""
    return wanted in TRANSITIONS.get(current, frozenset())


def check_move(current: str, wanted: str) -> None:
    """Raise :class:`InvalidTransition` unless ``current`` → ``wanted`` is allowed.

    Raises:
        InvalidTransition: the change is not allowed or a state is unknown.
    """
    if not can_move(current, wanted):
        raise InvalidTransition(current, wanted)
