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


def test_slots_to_dict_is_asdict_and_round_trips() -> None:
    from dataclasses import asdict

    from bot.dialogue.state import Slots
    from intents.types import Area

    for slots in (
        Slots(),
        Slots(topics=("theft", "drugs"), audience="family", age_group="minor", in_scope=False),
        Slots(topics=("housing",), area=Area("東京都", "13", "新宿区", "131041")),
        Slots(area=Area(prefecture="大阪府")),
    ):
        expected = asdict(slots)
        expected["topics"] = list(slots.topics)
        assert slots.to_dict() == expected
        assert Slots.from_dict(slots.to_dict()) == slots
        state = DialogueState(slots=slots, pending=slots, offered=(("はい", "yes"),))
        assert DialogueState.from_dict(state.to_dict()) == state
