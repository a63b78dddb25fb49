"""Dialogue state: the memory-only map of people who chose no records."""

from __future__ import annotations

from bot.dialogue.state import OPEN, DialogueState, VolatileStates


def test_volatile_states_expire_and_stay_bounded() -> None:
    states = VolatileStates(max_entries=3, ttl_seconds=100)
    s = DialogueState(phase=OPEN, consent="declined")
    states.put("a", s, now=0)
    states.put("b", s, now=50)
    assert states.get("a", now=99) == (s, 0)
    states.put("c", s, now=120)  # a is past its time: dropped without being asked for
    assert len(states) == 2 and states.get("a", now=120) is None
    assert states.get("b", now=120) == (s, 50)
    states.put("b", s, now=130)  # touched again: lives on
    states.put("d", s, now=140)
    states.put("e", s, now=145)  # over the cap: the least recently put (c) goes
    assert len(states) == 3 and states.get("c", now=145) is None
    states.put("f", s, now=300)
    assert len(states) == 1  # everything else has expired
    states.drop("f")
    assert len(states) == 0
