"""The escalation state machine allows exactly the documented moves."""

from __future__ import annotations

import itertools

import pytest

from handoff import states as s


def test_the_happy_path_and_the_alternatives_are_allowed() -> None:
    path = [s.WAITING, s.CLAIMED, s.ACTIVE, s.CLOSED]
    for a, b in itertools.pairwise(path):
        s.check_move(a, b)
    for start in (s.WAITING, s.CLAIMED, s.ACTIVE):
        s.check_move(start, s.RETURNED)
        s.check_move(start, s.ABANDONED)
    s.check_move(s.CLAIMED, s.WAITING)  # transfer
    s.check_move(s.ACTIVE, s.WAITING)  # transfer


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (s.WAITING, s.ACTIVE),  # nobody claimed it
        (s.WAITING, s.CLOSED),  # an outcome needs a counselor
        (s.CLOSED, s.WAITING),
        (s.RETURNED, s.CLAIMED),
        (s.ABANDONED, s.ACTIVE),
        (s.ACTIVE, s.CLAIMED),
        (s.WAITING, "nonsense"),
        ("nonsense", s.WAITING),
    ],
)
def test_other_moves_are_refused(current: str, wanted: str) -> None:
    assert not s.can_move(current, wanted)
    with pytest.raises(s.InvalidTransition):
        s.check_move(current, wanted)


def test_final_states_have_no_way_out() -> None:
    for state in s.FINAL_STATES:
        assert all(not s.can_move(state, other) for other in s.STATES)
    assert set(s.TRANSITIONS) == set(s.STATES)
