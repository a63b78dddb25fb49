"""Dialogue state: the memory-only map of people who chose no records."""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc
from pathlib import Path

import pytest

from bot.channels.base import IncomingMessage
from bot.config import load_config
from bot.dialogue import state as state_module
from bot.dialogue.engine import Engine
from bot.dialogue.replies import ChoicesReply, Reply
from bot.dialogue.state import MAX_VOLATILE, OPEN, DialogueState, Slots, VolatileStates
from handoff.store import ConversationStore
from intents.types import Area
from knowledge.base import KnowledgeBase
from knowledge.db import connect


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


# -- no-record states: small, shared, bounded ---------------------------------------------------


def _fresh_state(prefecture: str = "東京都") -> DialogueState:
    """A state as the engine builds it: every part a new object, equal to the others'."""
    topics = tuple(json.loads('["theft"]'))
    area = Area(*json.loads(json.dumps([prefecture, "13", None, None])))
    slots = Slots(topics=topics, audience="".join(["fam", "ily"]), area=area)
    return DialogueState(
        phase="".join(["ask"]),
        consent="".join(["decl", "ined"]),
        slots=slots,
        asking="age_group",
        asked=tuple(json.loads('["age_group"]')),
        offered=tuple((a, b) for a, b in json.loads('[["10代", "age_group:minor"]]')),
    )


def test_equal_parts_of_no_record_states_are_held_once() -> None:
    states = VolatileStates()
    states.put("web:a", _fresh_state(), now=0)
    states.put("web:b", _fresh_state(), now=1)
    states.put("web:c", _fresh_state("大阪府"), now=2)
    a, b, c = (states.get(k, now=3)[0] for k in ("web:a", "web:b", "web:c"))  # type: ignore[index]
    assert a == b == _fresh_state() and c == _fresh_state("大阪府")  # the values are unchanged
    for name in ("slots", "asked", "offered", "phase", "consent"):
        assert getattr(a, name) is getattr(b, name), name
    assert c.slots is not a.slots and c.slots.topics is a.slots.topics  # other area, same topics
    assert c.slots.area != a.slots.area


def test_the_shared_table_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "_SHARED_MAX", 4)
    states = VolatileStates()
    prefectures = ("北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県")
    for i, prefecture in enumerate(prefectures):
        states.put(f"web:{i}", _fresh_state(prefecture), now=i)
        assert len(states._shared) <= 4
    for i, prefecture in enumerate(prefectures):
        assert states.get(f"web:{i}", now=10)[0] == _fresh_state(prefecture)  # type: ignore[index]


def test_a_state_from_broken_json_is_kept_as_it_is() -> None:
    broken = DialogueState.from_dict({"phase": "ask", "asked": [["x"]], "asking": 3})
    states = VolatileStates()
    states.put("web:a", broken, now=0)  # unhashable parts: not shared, nothing raised
    assert states.get("web:a", now=1) == (broken, 0)


def test_the_cap_drops_the_least_recently_active_and_says_how_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    states = VolatileStates(max_entries=2, ttl_seconds=3600)
    s = DialogueState(phase=OPEN, consent="declined")
    with caplog.at_level(logging.WARNING, logger="bot.dialogue.state"):
        for i, key in enumerate(("web:a", "web:b", "web:c", "web:d")):
            states.put(key, s, now=i)
        states.put("web:e", s, now=70)  # a minute later: the count so far, once more
    assert states.dropped_at_cap == 3 and len(states) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "no-record states at the cap of 2 people: 1 dropped before their time so far",
        "no-record states at the cap of 2 people: 3 dropped before their time so far",
    ]
    assert "web:" not in caplog.text


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def _engine(db_path: Path, clock: Clock) -> Engine:
    db = connect(db_path)
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=db_path)
    return Engine(KnowledgeBase.open(db), ConversationStore.open(db), config, clock=clock)


async def _no_record_person(engine: Engine, key: str) -> list[Reply]:
    await engine.greet(key, "web")
    await engine.handle(IncomingMessage("web", key, postback="consent:declined"))
    return await engine.handle(IncomingMessage("web", key, text="息子が万引きで捕まりました"))


async def test_no_record_people_through_the_real_engine_share_their_parts(
    db_path: Path, sudachi: None
) -> None:
    clock = Clock()
    engine = _engine(db_path, clock)
    asked = []
    for i in range(20):
        replies = await _no_record_person(engine, f"web:{i}")
        asked.append([c.postback for r in replies if isinstance(r, ChoicesReply) for c in r.items])
        clock.now += 1
    assert all(a == asked[0] and a for a in asked)  # everyone was asked the same question
    held = [engine.volatile.get(f"web:{i}", clock.now)[0] for i in range(20)]  # type: ignore[index]
    assert all(s.slots is held[0].slots and s.offered is held[0].offered for s in held)
    # The conversation goes on from the compacted state as from the original one.
    choice = asked[0][0]
    replies = await engine.handle(IncomingMessage("web", "web:7", postback=choice))
    assert engine.volatile.get("web:7", clock.now)[0].slots.age_group != "unknown"  # type: ignore[index]
    assert replies and engine.store.messages("web:7") == []


async def test_a_no_record_person_dropped_at_the_cap_is_not_asked_again(
    db_path: Path, sudachi: None
) -> None:
    clock = Clock()
    engine = _engine(db_path, clock)
    engine.volatile = VolatileStates(max_entries=3, ttl_seconds=4 * 3600)
    await _no_record_person(engine, "web:first")
    for i in range(3):
        clock.now += 60
        await _no_record_person(engine, f"web:{i}")
    assert engine.volatile.get("web:first", clock.now) is None
    clock.now += 60
    back = await engine.handle(IncomingMessage("web", "web:first", text="覚醒剤をやめたいです"))
    texts = " ".join(r.text for r in back if hasattr(r, "text"))
    assert "記録" not in texts  # no second question about records: the choice was kept
    held = engine.volatile.get("web:first", clock.now)
    assert held is not None and held[0].consent == "declined" and "drugs" in held[0].slots.topics


def test_no_record_states_at_the_cap_take_under_one_mib() -> None:
    states = VolatileStates()
    tracemalloc.start()
    try:
        for i in range(MAX_VOLATILE):
            states.put(f"web:{i:032x}", _fresh_state(), now=float(i))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(states) == MAX_VOLATILE
    assert held / MAX_VOLATILE < 450 and held < 1024 * 1024
