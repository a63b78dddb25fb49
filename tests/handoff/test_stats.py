"""Statistics: exact numbers from a seeded set of conversations, suppression, the tracker."""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlite_utils

from handoff.stats import (
    COMPLEMENT,
    JST,
    MAX_OPEN,
    SUPPRESSED,
    ConversationSummary,
    ConversationTracker,
    Statistics,
    percentile,
    share,
    show_count,
    suppress_counts,
)
from knowledge.db import connect, schema_version

START, END = date(2025, 11, 3), date(2025, 11, 16)


def seed_summaries() -> list[ConversationSummary]:
    """28 conversations in two offices (the expected numbers are worked out in the tests)."""
    out: list[ConversationSummary] = []
    out += [
        ConversationSummary(
            day=date(2025, 11, 3),
            channel="web",
            topic="theft",
            audience="family",
            age_group="elderly",
            office="office_a",
            bot_kinds=("community_care_center", "probation_office"),
        )
    ] * 12
    out += [
        ConversationSummary(
            day=date(2025, 11, 4),
            channel="line",
            topic="drugs",
            audience="self",
            age_group="adult",
            office="office_a",
            bot_kinds=("mental_health_center", "self_help_group"),
        )
    ] * 6
    for pickup in (60, 120, 180):
        out.append(
            ConversationSummary(
                day=date(2025, 11, 10),
                channel="line",
                topic="drugs",
                audience="self",
                age_group="adult",
                crisis="concern",
                office="office_b",
                handoff=True,
                handoff_outcome="closed",
                pickup_seconds=pickup,
                counselor_kinds=("mental_health_center", "municipal_welfare"),
            )
        )
    out += [
        ConversationSummary(
            day=date(2025, 11, 11),
            channel="web",
            topic="juvenile",
            audience="family",
            age_group="minor",
            crisis="urgent",
            office="office_b",
            handoff=True,
            handoff_outcome="abandoned",
        )
    ] * 2
    for pickup in (30, 40, 50, 600, 900):
        out.append(
            ConversationSummary(
                day=date(2025, 11, 12),
                channel="web",
                topic="gambling",
                audience="family",
                age_group="adult",
                office="office_a",
                handoff=True,
                handoff_outcome="returned",
                pickup_seconds=pickup,
                bot_kinds=("family_group",),
            )
        )
    return out


def seed(stats: Statistics) -> None:
    """Record the seeded conversations."""
    for s in seed_summaries():
        stats.record_conversation(s)


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite_utils.Database]:
    database = connect(db_path)
    yield database
    database.close()


@pytest.fixture
def stats(db: sqlite_utils.Database) -> Statistics:
    service = Statistics.open(db)
    seed(service)
    return service


def texts(table) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r.key: r.cell.text for r in table.rows}


# -- suppression ------------------------------------------------------------------------------


def test_show_count_hides_one_to_four_keeps_zero() -> None:
    assert [show_count(n).text for n in (0, 1, 4, 5, 1234)] == [
        "0",
        SUPPRESSED,
        SUPPRESSED,
        "5",
        "1,234",
    ]
    assert show_count(3).value is None


@pytest.mark.parametrize(
    ("counts", "total", "expected", "total_text"),
    [
        ([12, 3, 2], 17, ["12", SUPPRESSED, SUPPRESSED], "17"),
        ([12, 9, 2, 5], 28, ["12", "9", SUPPRESSED, COMPLEMENT], "28"),
        ([0, 3, 7], 10, ["0", SUPPRESSED, COMPLEMENT], "10"),
        # Two hidden ones adding up to 2 would both be 1: a third cell is hidden too.
        ([1, 1, 5, 9], 16, [SUPPRESSED, SUPPRESSED, COMPLEMENT, "9"], "16"),
        # Nothing left to hide: the total goes.
        ([1, 1, 1, 1, 1], 5, [SUPPRESSED] * 5, COMPLEMENT),
        ([1, 1], 2, [SUPPRESSED] * 2, SUPPRESSED),
        ([6, 0, 7], 13, ["6", "0", "7"], "13"),
    ],
)
def test_suppress_counts_no_hidden_value_can_be_computed_back(
    counts: list[int], total: int, expected: list[str], total_text: str
) -> None:
    cells, total_cell = suppress_counts(counts, total)
    assert [c.text for c in cells] == expected
    assert total_cell.text == total_text
    assert all(c.value is None for c in cells if c.suppressed)


def test_overlapping_rows_get_primary_suppression_only() -> None:
    cells, total_cell = suppress_counts([3, 12])
    assert [c.text for c in cells] == [SUPPRESSED, "12"]
    assert total_cell.text == ""


def test_share_is_hidden_when_a_part_is_hidden() -> None:
    assert share(show_count(10), show_count(28)).text == "35.7%"
    assert share(show_count(3), show_count(28)).suppressed
    assert share(show_count(10), show_count(4)).suppressed
    assert share(show_count(0), show_count(0)).text == "—"


def test_percentile_nearest_rank() -> None:
    assert percentile([30, 40, 50, 60, 120, 180, 600, 900], 90) == 900
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([5], 90) == 5


# -- recording --------------------------------------------------------------------------------


def test_migrations_and_only_counts_are_stored(db: sqlite_utils.Database) -> None:
    stats = Statistics.open(db)
    assert schema_version(db, "stats") == 1
    stats.record_conversation(
        ConversationSummary(day=date(2025, 11, 3), channel="web", topic="theft")
    )
    columns = {c.name for c in db["stats_conversations"].columns}
    assert columns == {
        "id",
        "day",
        "channel",
        "office",
        "topic",
        "audience",
        "age_group",
        "crisis",
        "handoff",
        "handoff_outcome",
        "pickup_seconds",
        "local_window",
    }
    Statistics.open(db)  # migrating twice is a no-op
    assert stats.store.count_rows() == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"crisis": "panic"},
        {"handoff_outcome": "done"},
        {"channel": "山田さんの電話"},
        {"office": "090-1234-5678 の人"},
        {"bot_kinds": ("山田病院",)},
    ],
)
def test_text_never_gets_in(db: sqlite_utils.Database, bad: dict[str, object]) -> None:
    stats = Statistics.open(db)
    summary = ConversationSummary(day=date(2025, 11, 3), channel="web")
    fields = {**{"day": summary.day, "channel": "web"}, **bad}
    with pytest.raises(ValueError):
        stats.record_conversation(ConversationSummary(**fields))  # type: ignore[arg-type]
    assert stats.store.count_rows() == 0


def test_unknown_topic_and_audience_become_other_unknown(db: sqlite_utils.Database) -> None:
    stats = Statistics.open(db)
    stats.record_conversation(
        ConversationSummary(
            day=date(2025, 11, 3), channel="web", topic="小田さんの件", audience="母"
        )
    )
    row = db.execute("SELECT topic, audience FROM stats_conversations").fetchone()
    assert row == ("other", "unknown")


# -- the report, exact numbers ------------------------------------------------------------------


def test_report_exact_numbers(stats: Statistics) -> None:
    r = stats.report(START, END)
    overview = texts(r.table("overview"))
    assert overview == {
        "total": "28",
        "crisis": "非表示",  # concern 3 + urgent 2: both hidden, so is their sum
        "handoffs": "10",
        "handoff_rate": "35.7%",
        "pickup_median": "1分30秒",  # (60 + 120) / 2
        "pickup_p90": "15分0秒",  # nearest rank 8 of 8
        "abandoned": SUPPRESSED,
        "referred": "26",
        "local": "15",  # 12 地域包括 (bot) + 3 市区町村窓口 (counselor)
        "local_share": "53.6%",
    }
    per_day = texts(r.table("per_day"))
    assert len(per_day) == 14
    assert per_day["2025-11-03"] == "12"
    assert per_day["2025-11-04"] == "6"
    assert per_day["2025-11-10"] == SUPPRESSED
    assert per_day["2025-11-11"] == SUPPRESSED
    assert per_day["2025-11-12"] == "5"
    assert per_day["2025-11-05"] == "0"
    assert r.table("per_day").total.text == "28"  # type: ignore[union-attr]
    assert texts(r.table("per_week")) == {"2025-11-03": "18", "2025-11-10": "10"}
    assert texts(r.table("per_month")) == {"2025-11": "28"}
    topic = texts(r.table("topic"))
    assert (topic["theft"], topic["drugs"], topic["juvenile"]) == ("12", "9", SUPPRESSED)
    assert topic["gambling"] == COMPLEMENT  # else 28 − 12 − 9 − 5 would give juvenile away
    assert topic["housing"] == "0"
    audience = texts(r.table("audience"))
    assert (audience["family"], audience["self"], audience["supporter"]) == ("19", "9", "0")
    age = texts(r.table("age_group"))
    assert (age["adult"], age["minor"], age["elderly"]) == ("14", SUPPRESSED, COMPLEMENT)
    assert texts(r.table("channel")) == {"line": "9", "web": "19", "terminal": "0"}
    crisis = texts(r.table("crisis"))
    assert crisis == {"none": "23", "concern": SUPPRESSED, "urgent": SUPPRESSED}
    outcome = texts(r.table("handoff_outcome"))
    assert outcome == {"closed": SUPPRESSED, "returned": "5", "abandoned": SUPPRESSED}
    bot = texts(r.table("referrals_bot"))
    assert (bot["community_care_center"], bot["probation_office"]) == ("12", "12")
    assert (bot["mental_health_center"], bot["self_help_group"]) == ("6", "6")
    assert (bot["family_group"], bot["legal_support"]) == ("5", "0")
    counselor = texts(r.table("referrals_counselor"))
    assert counselor["mental_health_center"] == SUPPRESSED
    assert counselor["municipal_welfare"] == SUPPRESSED
    assert counselor["community_care_center"] == "0"


def test_report_office_filter_and_range(stats: Statistics) -> None:
    a = stats.report(START, END, "office_a")
    assert texts(a.table("overview"))["total"] == "23"
    assert texts(a.table("overview"))["handoffs"] == "5"
    assert texts(a.table("overview"))["pickup_median"] == "50秒"
    b = stats.report(START, END, "office_b")
    ov = texts(b.table("overview"))
    assert ov["total"] == "5"
    assert ov["handoff_rate"] == "100.0%"
    assert ov["pickup_median"] == "非表示"  # only 3 picked up
    assert texts(b.table("crisis"))["concern"] == SUPPRESSED
    one_day = stats.report(date(2025, 11, 4), date(2025, 11, 4))
    assert texts(one_day.table("overview"))["total"] == "6"
    assert (
        stats.report(date(2025, 12, 1), date(2025, 12, 31)).table("overview").rows[0].cell.text
        == "0"
    )
    assert stats.offices() == ["office_a", "office_b"]


def test_report_cells_never_hold_hidden_numbers(stats: Statistics) -> None:
    for table in stats.report(START, END).tables:
        for row in table.rows:
            if row.cell.suppressed:
                assert row.cell.value is None, (table.id, row.key)


def test_report_rejects_reversed_range(stats: Statistics) -> None:
    with pytest.raises(ValueError):
        stats.report(END, START)


# -- the tracker --------------------------------------------------------------------------------


def _ts(day: int, hour: int = 10, minute: int = 0) -> float:
    return datetime(2025, 11, day, hour, minute, tzinfo=JST).timestamp()


@pytest.fixture
def tracker(db: sqlite_utils.Database) -> ConversationTracker:
    return ConversationTracker(
        Statistics.open(db), idle_seconds=1800, office_for=lambda area, topics: "office_a"
    )


def test_tracker_counts_once_after_idle(tracker: ConversationTracker) -> None:
    t = _ts(3)
    tracker.observe("u1", channel="web", now=t, topics=("theft",), audience="family")
    tracker.observe(
        "u1",
        channel="web",
        now=t + 60,
        topics=("theft",),
        age_group="elderly",
        referred_kinds=("community_care_center",),
    )
    assert tracker.sweep(t + 60 + 1700) == 0
    assert tracker.sweep(t + 60 + 1801) == 1
    assert tracker.sweep(t + 99999) == 0
    r = tracker.stats.report(date(2025, 11, 3), date(2025, 11, 3))
    assert tracker.stats.store.count_rows() == 1
    assert r.table("per_day").total.text == SUPPRESSED  # type: ignore[union-attr]
    row = tracker.stats.store.db.execute(
        "SELECT day, channel, office, topic, audience, age_group, local_window "
        "FROM stats_conversations"
    ).fetchone()
    assert row == ("2025-11-03", "web", "office_a", "theft", "family", "elderly", 1)


def test_tracker_message_after_idle_starts_a_new_conversation(
    tracker: ConversationTracker,
) -> None:
    t = _ts(3, 23, 50)
    tracker.observe("u1", channel="line", now=t, topics=("drugs",))
    tracker.observe("u1", channel="line", now=t + 3600, topics=("alcohol",))
    assert tracker.stats.store.count_rows() == 1
    assert tracker.flush() == 1
    days = tracker.stats.store.db.execute(
        "SELECT day, topic FROM stats_conversations ORDER BY id"
    ).fetchall()
    assert days == [("2025-11-03", "drugs"), ("2025-11-04", "alcohol")]


def test_tracker_greeting_alone_is_not_a_consultation(tracker: ConversationTracker) -> None:
    tracker.observe("u1", channel="web", now=_ts(3), spoke=False)
    assert len(tracker) == 0
    assert tracker.flush() == 0


def test_tracker_delete_counts_at_once_and_only_once(tracker: ConversationTracker) -> None:
    tracker.observe("u1", channel="web", now=_ts(3), topics=("theft",), crisis="concern")
    assert tracker.end("u1")
    assert not tracker.end("u1")
    assert tracker.sweep(_ts(5)) == 0
    row = tracker.stats.store.db.execute("SELECT crisis FROM stats_conversations").fetchone()
    assert row == ("concern",)


def test_tracker_handoff_is_counted_by_its_end(tracker: ConversationTracker) -> None:
    t = _ts(10)
    tracker.observe(
        "u1", channel="line", now=t, topics=("drugs",), referred_kinds=("mental_health_center",)
    )
    tracker.handoff_started("u1")
    assert tracker.sweep(t + 7200) == 0  # waiting for a counselor is not idle
    assert not tracker.end("u1")
    assert tracker.flush() == 0
    tracker.handoff_ended(
        "u1",
        office="office_b",
        outcome="closed",
        channel="line",
        started=t + 30,
        pickup_seconds=95.4,
        counselor_kinds=("municipal_welfare",),
        crisis="concern",
        now=t + 9000,
    )
    # Back with the bot: one more message is the same conversation; counted after idle.
    tracker.observe("u1", channel="line", now=t + 9100, topics=("drugs",))
    assert tracker.sweep(t + 9100 + 1000) == 0
    assert tracker.sweep(t + 9100 + 1801) == 1
    assert len(tracker) == 0
    db = tracker.stats.store.db
    row = db.execute(
        "SELECT office, topic, crisis, handoff, handoff_outcome, pickup_seconds, local_window "
        "FROM stats_conversations"
    ).fetchone()
    assert row == ("office_b", "drugs", "concern", 1, "closed", 95, 1)
    kinds = db.execute("SELECT source, kind FROM stats_referrals ORDER BY source").fetchall()
    assert kinds == [("bot", "mental_health_center"), ("counselor", "municipal_welfare")]


def test_tracker_handoff_end_after_restart_uses_the_case_summary(
    tracker: ConversationTracker,
) -> None:
    tracker.handoff_ended(
        None,
        office="office_b",
        outcome="abandoned",
        channel="web",
        started=_ts(11),
        topics=("juvenile",),
        audience="family",
        age_group="minor",
        crisis="urgent",
    )
    row = tracker.stats.store.db.execute(
        "SELECT day, topic, audience, age_group, crisis, handoff_outcome, pickup_seconds "
        "FROM stats_conversations"
    ).fetchone()
    assert row == ("2025-11-11", "juvenile", "family", "minor", "urgent", "abandoned", None)


def test_tracker_survives_a_failing_store(tracker: ConversationTracker) -> None:
    tracker.stats.store.db.execute("DROP TABLE stats_referrals")
    tracker.observe("u1", channel="web", now=_ts(3), referred_kinds=("emergency",))
    assert tracker.end("u1") is False  # logged, never raised into the conversation


def test_tracker_counts_a_final_case(tracker: ConversationTracker) -> None:
    # Shaped like handoff.models.Escalation (only the fields the tracker reads).
    t = _ts(12, 20)
    case = SimpleNamespace(
        user_key=None,
        channel="web",
        office_id="office_a",
        state="closed",
        summary=SimpleNamespace(
            topics=("gambling",), audience="family", age_group="adult", crisis="none"
        ),
        created_at=t,
        due_at=t + 45000,  # left out of hours: the wait counts from the opening
        claimed_at=t + 45120,
        closed_at=t + 50000,
        outcome=SimpleNamespace(referred_kinds=("family_group", "not_a_kind")),
    )
    tracker.case_ended(case)
    tracker.case_ended(SimpleNamespace(state="active"))  # not final: nothing
    row = tracker.stats.store.db.execute(
        "SELECT day, office, topic, handoff_outcome, pickup_seconds FROM stats_conversations"
    ).fetchone()
    assert row == ("2025-11-12", "office_a", "gambling", "closed", 120)
    kinds = tracker.stats.store.db.execute("SELECT source, kind FROM stats_referrals").fetchall()
    assert kinds == [("counselor", "family_group")]


def test_at_the_cap_the_least_recently_active_conversation_is_counted(
    db: sqlite_utils.Database,
) -> None:
    tracker = ConversationTracker(
        Statistics.open(db), idle_seconds=1800, max_open=2, office_for=lambda a, t: "office_a"
    )
    t = _ts(3)
    tracker.observe("a", channel="web", now=t, topics=("theft",))
    tracker.observe("b", channel="web", now=t + 1, topics=("drugs",))
    tracker.observe("a", channel="web", now=t + 2, topics=("theft",))  # a is active again
    tracker.observe("c", channel="web", now=t + 3, topics=("alcohol",))
    # b was idle longest, so b is the one counted to make room; a and c stay open.
    assert len(tracker) == 2
    rows = tracker.stats.store.db.execute("SELECT topic FROM stats_conversations").fetchall()
    assert rows == [("drugs",)]


def test_at_the_cap_a_handoff_is_never_counted_early_and_the_count_is_logged(
    db: sqlite_utils.Database, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = ConversationTracker(
        Statistics.open(db), idle_seconds=1800, max_open=2, office_for=lambda a, t: "office_a"
    )
    t = _ts(3)
    tracker.observe("with-counselor", channel="web", now=t, topics=("drugs",))
    tracker.handoff_started("with-counselor")
    for i, key in enumerate(("b", "c", "d", "e")):
        tracker.observe(key, channel="web", now=t + 1 + i, topics=("theft",))
    # b and c were counted to make room; the conversation with a counselor was not.
    assert len(tracker) == 3 and tracker.counted_at_cap == 2
    rows = tracker.stats.store.db.execute("SELECT topic FROM stats_conversations").fetchall()
    assert rows == [("theft",), ("theft",)]
    with caplog.at_level(logging.WARNING, logger="handoff.stats"):
        tracker.sweep(t + 10)
        tracker.sweep(t + 20)  # nothing new: no second line
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "statistics: 2 conversations counted before their idle timeout so far "
        "(more than 2 open at once)"
    ]


def test_sweep_takes_the_idle_from_the_front_past_a_handoff(tracker: ConversationTracker) -> None:
    t = _ts(4)
    tracker.observe("a", channel="web", now=t, topics=("theft",))
    tracker.observe("held", channel="line", now=t + 1, topics=("drugs",))
    tracker.handoff_started("held")
    tracker.observe("c", channel="web", now=t + 2, topics=("alcohol",))
    tracker.observe("a", channel="web", now=t + 3)  # a is active again: c is now oldest
    tracker.observe("held", channel="line", now=t + 4)  # a message to the counselor
    assert tracker.sweep(t + 2 + 1800) == 0
    assert tracker.sweep(t + 2 + 1801) == 1  # c
    assert tracker.sweep(t + 3 + 1801) == 1  # a
    assert len(tracker) == 1 and tracker.sweep(t + 4 + 7 * 86400) == 0
    assert tracker.sweep(t + 4 + 7 * 86400 + 1) == 1  # a handoff that never reported its end
    topics = tracker.stats.store.db.execute(
        "SELECT topic FROM stats_conversations ORDER BY id"
    ).fetchall()
    assert topics == [("alcohol",), ("theft",), ("drugs",)]


def test_days_are_japan_time_at_the_stroke_of_midnight(tracker: ConversationTracker) -> None:
    midnight = datetime(2025, 11, 5, 0, 0, tzinfo=JST).timestamp()
    tracker.observe("late", channel="web", now=midnight - 0.5, topics=("theft",))
    tracker.observe("early", channel="web", now=midnight, topics=("drugs",))
    assert tracker.flush() == 2
    days = tracker.stats.store.db.execute(
        "SELECT day, topic FROM stats_conversations ORDER BY id"
    ).fetchall()
    assert days == [("2025-11-04", "theft"), ("2025-11-05", "drugs")]


def test_open_conversations_share_their_category_strings(tracker: ConversationTracker) -> None:
    # States loaded from JSON bring fresh copies of the same ids on every turn.
    t = _ts(6)
    for i in range(3):
        fresh = json.loads('["drugs", "family", "adult", "concern", "mental_health_center"]')
        topic, audience, age, crisis, kind = fresh
        tracker.observe(
            f"u{i}",
            channel="".join(["w", "eb"]),
            now=t + i,
            topics=(topic,),
            audience=audience,
            age_group=age,
            crisis=crisis,
            referred_kinds=(kind,),
        )
    first, *others = tracker._open.values()
    for ep in others:
        for name in ("channel", "topic", "audience", "age_group", "crisis", "office", "day"):
            assert getattr(ep, name) is getattr(first, name), name
        assert ep.bot_kinds[0] is first.bot_kinds[0]


def test_a_tracker_at_its_cap_takes_a_few_mib(db: sqlite_utils.Database) -> None:
    tracker = ConversationTracker(
        Statistics.open(db), idle_seconds=1800, office_for=lambda a, t: "office_a"
    )
    t = _ts(7)
    tracemalloc.start()
    try:
        for i in range(MAX_OPEN):
            topic, audience = json.loads('["theft", "family"]')
            tracker.observe(
                f"web:{i:032x}",
                channel="web",
                now=t + i * 0.01,
                topics=(topic,),
                audience=audience,
                referred_kinds=("community_care_center", "police_consultation"),
            )
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(tracker) == MAX_OPEN
    # ~0.3 KiB per conversation (the key alone is 85 bytes): at most 2 MiB at the cap.
    assert held / MAX_OPEN < 400 and held < 2 * 1024 * 1024
