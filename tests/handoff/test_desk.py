"""The desk: queue order, consent scoping, office scoping, audit, persistence, out of hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from handoff.bus import MemoryBus
from handoff.desk import Conflict, Desk, Forbidden
from handoff.models import CaseSummary, Outcome
from handoff.offices import load_directory
from handoff.states import InvalidTransition
from intents.types import Area
from knowledge.base import KnowledgeBase
from knowledge.db import connect
from knowledge.hours import JST
from knowledge.models import User

OFFICES = """
offices:
  - id: east
    name: 東の窓口
    areas: ["999999"]
    hours: [{days: 月火水木金土日祝, opens: "00:00", closes: "24:00"}]
  - id: west
    name: 西の窓口
    areas: ["99"]
    default: true
    hours: [{days: 月火水木金, opens: "09:00", closes: "17:00"}]
"""
EAST = Area(prefecture_code="99", municipality_code="999999", municipality="サンプル市")
WEST = Area(prefecture_code="99", prefecture="サンプル県")
MONDAY_NOON = datetime(2030, 1, 14, 12, 0, tzinfo=JST).timestamp()
FRIDAY_EVENING = datetime(2030, 1, 11, 18, 0, tzinfo=JST).timestamp()
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_NOON)


@pytest.fixture
def kb(db_path: Path) -> KnowledgeBase:
    kb = KnowledgeBase.open(connect(db_path), load_defaults=False)
    kb.add_user("east1", "counselor", PASSWORD, office_id="east")
    kb.add_user("east2", "counselor", PASSWORD, office_id="east")
    kb.add_user("west1", "counselor", PASSWORD, office_id="west")
    kb.add_user("boss", "admin", PASSWORD)
    kb.add_user("editor", "staff", PASSWORD)
    return kb


def make_desk(
    db_path: Path, kb: KnowledgeBase, clock: Clock, bus: MemoryBus | None = None
) -> Desk:
    return Desk.open(
        connect(db_path),
        offices=load_directory(OFFICES, holidays=()),
        bus=bus,
        users=kb.list_users,
        clock=clock,
    )


@pytest.fixture
def desk(db_path: Path, kb: KnowledgeBase, clock: Clock, sudachi: None) -> Iterator[Desk]:
    d = make_desk(db_path, kb, clock)
    yield d
    d.store.db.close()


def user(kb: KnowledgeBase, name: str) -> User:
    found = kb.get_user(name)
    assert found is not None
    return found


def summary(crisis: str = "none", topics: tuple[str, ...] = ("theft",)) -> CaseSummary:
    return CaseSummary(
        topics=topics,
        audience="family",
        age_group="adult",
        area_name="サンプル市",
        area_code="999999",
        crisis=crisis,
        recommended=("sample_pref.probation_office",),
    )


def escalate(desk: Desk, key: str, *, crisis: str = "none", consent: str = "full", area=EAST):
    esc, info = desk.escalate(
        user_key=key,
        channel="web",
        consent=consent,
        reason="crisis" if crisis != "none" else "requested",
        summary=summary(crisis),
        area=area,
    )
    return esc, info


def test_queue_is_crisis_first_then_oldest(desk: Desk, clock: Clock, kb: KnowledgeBase) -> None:
    ids = {}
    for key, crisis in [("a", "none"), ("b", "concern"), ("c", "none"), ("d", "urgent")]:
        ids[key] = escalate(desk, f"web:{key}", crisis=crisis)[0].id
        clock.now += 60
    order = [e.id for e in desk.store.queue("east")]
    assert order == [ids["d"], ids["b"], ids["a"], ids["c"]]
    # Two counselors share the queue: the 4th waits two handling times.
    info = desk.queue_info(desk.store.get(ids["c"]))
    assert info.position == 4 and info.open_now
    assert info.expected_wait_seconds == 2 * desk.handling_seconds
    # A crisis in a later message moves the case up (ahead of the younger urgent one).
    desk.person_message("web:c", "もう死にたい", crisis="urgent")
    assert [e.id for e in desk.store.queue("east")][:2] == [ids["c"], ids["d"]]


def test_one_open_case_per_person(desk: Desk) -> None:
    first, _ = escalate(desk, "web:a")
    again, info = escalate(desk, "web:a")
    assert again.id == first.id and info.position == 1


def test_claim_reply_close_with_outcome(desk: Desk, kb: KnowledgeBase, clock: Clock) -> None:
    esc, _ = escalate(desk, "web:a")
    east1, east2 = user(kb, "east1"), user(kb, "east2")
    claimed = desk.claim(east1, esc.id)
    assert claimed.state == "claimed" and claimed.counselor == "east1"
    with pytest.raises(Conflict):
        desk.claim(east2, esc.id)  # the race is lost, not doubled
    with pytest.raises(Conflict):
        desk.reply(east2, esc.id, "こんにちは")  # not theirs
    clock.now += 300
    msg = desk.reply(east1, esc.id, "相談員の佐藤です。090-1111-2222 にどうぞ")
    assert "090" not in msg.text  # masked before it is kept
    assert desk.store.get(esc.id).state == "active"
    desk.person_message("web:a", "ありがとうございます")
    closed = desk.close(
        east1,
        esc.id,
        Outcome(referred_kinds=("probation_office", "self_help_group"), referred_to="りすたぽ"),
    )
    assert closed.state == "closed" and closed.outcome is not None
    assert closed.outcome.referred_kinds == ("probation_office", "self_help_group")
    assert desk.store.outcome_counts() == {"probation_office": 1, "self_help_group": 1}
    assert desk.open_case("web:a") is None  # back with the bot
    with pytest.raises(InvalidTransition):
        desk.return_to_bot(east1, esc.id)
    actions = [h.action for h in desk.store.history(esc.id)]
    assert actions == ["created", "claimed", "active", "closed"]
    assert desk.store.mean_handling_seconds("east") == 300


def test_consent_scopes_what_the_counselor_sees(desk: Desk, kb: KnowledgeBase) -> None:
    conv = desk.conversations
    for key in ("web:full", "web:anon"):
        cid = conv.save(key, "web", {}, "granted")
        conv.add_message(cid, "in", "息子が万引きをしました。山田太郎です。")
        conv.add_message(cid, "out", "相談できる窓口をご案内します。")
    full, _ = escalate(desk, "web:full", consent="full")
    anon, _ = escalate(desk, "web:anon", consent="anonymous")
    east1 = user(kb, "east1")
    view = desk.open_for_counselor(east1, full.id)
    assert view.transcript_shared
    assert [line.sender for line in view.transcript] == ["person", "bot"]
    assert "山田" not in view.transcript[0].text and "万引き" in view.transcript[0].text
    view = desk.open_for_counselor(east1, anon.id)
    assert not view.transcript_shared and view.transcript == ()
    s = view.escalation.summary
    assert (s.topic, s.audience, s.age_group, s.area_name, s.crisis) == (
        "theft",
        "family",
        "adult",
        "サンプル市",
        "none",
    )
    # The live chat is the counselor's own conversation: shown in both cases.
    desk.claim(east1, anon.id)
    desk.person_message("web:anon", "よろしくお願いします")
    assert [m.sender for m in desk.open_for_counselor(east1, anon.id).live] == ["person"]


def test_offices_scope_access_and_every_opening_is_audited(
    desk: Desk, kb: KnowledgeBase, clock: Clock
) -> None:
    esc, _ = escalate(desk, "web:a")
    west1, east1, boss, editor = (user(kb, n) for n in ("west1", "east1", "boss", "editor"))
    for intruder in (west1, editor):
        with pytest.raises(Forbidden):
            desk.open_for_counselor(intruder, esc.id)
        with pytest.raises(Forbidden):
            desk.claim(intruder, esc.id)
    assert desk.queue_for(west1) == [] and desk.queue_for(editor) == []
    assert [e.id for e in desk.queue_for(east1)] == [esc.id]
    assert [e.id for e in desk.queue_for(boss)] == [esc.id]  # an admin sees every office
    clock.now += 10
    desk.open_for_counselor(east1, esc.id)
    desk.open_for_counselor(boss, esc.id)
    log = desk.audit_log(escalation_id=esc.id)
    assert [(e.actor, e.action) for e in log] == [
        ("boss", "open_transcript"),
        ("east1", "open_transcript"),
        ("editor", "denied"),
        ("editor", "denied"),
        ("west1", "denied"),
        ("west1", "denied"),
    ]
    assert log[1].at == clock.now and log[1].conversation_id == esc.conversation_id
    assert [e.escalation_id for e in desk.audit_log(actor="east1")] == [esc.id]


def test_transfer_moves_the_case_and_the_access(desk: Desk, kb: KnowledgeBase) -> None:
    esc, _ = escalate(desk, "web:a")
    east1, west1 = user(kb, "east1"), user(kb, "west1")
    desk.claim(east1, esc.id)
    desk.add_note(east1, esc.id, "県の窓口の方が合う。本人は田中花子さん")
    moved = desk.transfer(east1, esc.id, "west")
    assert (moved.state, moved.office_id, moved.counselor) == ("waiting", "west", None)
    with pytest.raises(Forbidden):
        desk.open_for_counselor(east1, esc.id)
    view = desk.open_for_counselor(west1, esc.id)
    (note,) = view.notes
    assert note.author == "east1" and "田中" not in note.text  # notes are masked too
    with pytest.raises(ValueError):
        desk.transfer(west1, esc.id, "west")
    with pytest.raises(ValueError):
        desk.transfer(west1, esc.id, "nowhere")


def test_persistence_across_reopening_the_file(
    db_path: Path, kb: KnowledgeBase, clock: Clock, sudachi: None
) -> None:
    desk = make_desk(db_path, kb, clock)
    esc, _ = escalate(desk, "web:a", crisis="concern")
    desk.claim(user(kb, "east1"), esc.id)
    desk.reply(user(kb, "east1"), esc.id, "お話を聞かせてください")
    desk.add_note(user(kb, "east1"), esc.id, "急ぎ")
    desk.store.db.close()
    again = make_desk(db_path, kb, clock)  # a restart: new connection, migrations re-run
    found = again.open_case("web:a")
    assert found is not None
    assert (found.id, found.state, found.counselor, found.summary) == (
        esc.id,
        "active",
        "east1",
        esc.summary,
    )
    view = again.open_for_counselor(user(kb, "east1"), esc.id)
    assert [m.text for m in view.live] == ["お話を聞かせてください"]
    assert [n.text for n in view.notes] == ["急ぎ"]
    again.store.db.close()


def test_deleting_the_conversation_unlinks_the_case(desk: Desk, kb: KnowledgeBase) -> None:
    cid = desk.conversations.save("web:a", "web", {}, "granted")
    desk.conversations.add_message(cid, "in", "相談です")
    esc, _ = desk.escalate(
        user_key="web:a",
        channel="web",
        consent="full",
        reason="requested",
        summary=summary(),
        area=EAST,
        conversation_id=cid,
    )
    desk.claim(user(kb, "east1"), esc.id)
    desk.person_message("web:a", "やっぱり消したい")
    desk.conversations.delete_conversation("web:a")  # 履歴を消して (the trigger does the rest)
    gone = desk.store.get(esc.id)
    assert (gone.user_key, gone.state, gone.close_reason) == (None, "abandoned", "deleted")
    assert desk.store.messages(esc.id) == []
    assert gone.summary.topic == "theft"  # the categories stay for the statistics


def test_out_of_hours_waits_for_the_next_opening(desk: Desk, clock: Clock) -> None:
    clock.now = FRIDAY_EVENING
    esc, info = escalate(desk, "web:late", area=WEST)
    assert esc.office_id == "west" and not info.open_now
    monday_nine = datetime(2030, 1, 14, 9, 0, tzinfo=JST).timestamp()
    assert info.next_opening == monday_nine
    assert info.expected_wait_seconds >= monday_nine - clock.now
    assert esc.due_at == monday_nine
    # A message left for the next opening is not abandoned over the weekend ...
    desk.person_message("web:late", "月曜に連絡をください")
    clock.now = monday_nine + 30 * 60
    assert desk.expire() == []
    # ... but is abandoned when nobody (not even the person) is heard from long after.
    clock.now = monday_nine + desk.abandon_seconds + 60
    assert [e.id for e in desk.expire()] == [esc.id]
    assert desk.store.get(esc.id).state == "abandoned"


def test_crisis_cases_are_never_abandoned_automatically(desk: Desk, clock: Clock) -> None:
    esc, _ = escalate(desk, "web:c", crisis="urgent")
    clock.now += 7 * 86400
    assert desk.expire() == []
    assert desk.store.get(esc.id).state == "waiting"


async def test_events_reach_the_office_the_case_and_the_person(
    db_path: Path, kb: KnowledgeBase, clock: Clock, sudachi: None
) -> None:
    bus = MemoryBus()
    desk = make_desk(db_path, kb, clock, bus)
    office = bus.subscribe("office:east")
    person = bus.subscribe("person:web:a")
    line = bus.subscribe("deliver:web")
    first, _ = escalate(desk, "web:a")
    assert (await office.get(1))["change"] == "created"
    case = bus.subscribe(f"case:{first.id}")
    escalate(desk, "web:b")
    await office.get(1)
    desk.claim(user(kb, "east1"), first.id)
    assert (await person.get(1))["notice"] == "claimed"
    assert (await line.get(1))["user_key"] == "web:a"
    desk.reply(user(kb, "east1"), first.id, "こんにちは")
    assert (await person.get(1))["text"] == "こんにちは"
    desk.person_message("web:a", "はい")
    events = [await case.get(1) for _ in range(3)]
    assert [e["type"] for e in events] == ["state", "message", "message"]
    assert events[2]["message"]["sender"] == "person"
    desk.store.db.close()


async def test_a_person_is_told_when_the_wait_grows(
    db_path: Path, kb: KnowledgeBase, clock: Clock, sudachi: None
) -> None:
    bus = MemoryBus()
    desk = make_desk(db_path, kb, clock, bus)
    _, info = escalate(desk, "web:a")
    assert info.position == 1
    heard = bus.subscribe("person:web:a")
    urgent, _ = escalate(desk, "web:urgent", crisis="urgent")  # jumps ahead: told at once
    event = await heard.get(1)
    assert event["notice"] == "wait_grew" and event["position"] == 2
    assert desk.notify_wait_growth("east") == 0  # told once
    assert await heard.get(0.05) is None
    # The urgent case is claimed: the wait shrinks, which is not announced.
    desk.claim(user(kb, "east1"), urgent.id)
    assert desk.queue_info(desk.store.get(desk.store.queue("east")[0].id)).position == 1
    assert await heard.get(0.05) is None
    desk.store.db.close()
