"""Statistics for staff: count a conversation once when it ends, report with small counts hidden.

Privacy rules (DESIGN.md): statistics keep only counts, and any count below 5 is suppressed in
reports. Here that means:

* :func:`record_conversation` stores count dimensions only (taxonomy ids, channel, office id,
  Japan-time day, seconds to pick-up); every value is checked against the taxonomy so no text
  can slip in. No user key, conversation id or time of day is stored.
* Open conversations are followed by :class:`ConversationTracker` in memory only (keyed by the
  pseudonymous user key, never written); a row is written once, when the conversation ends.
* Reports never carry a suppressed number: a :class:`Cell` for a count of 1–4 has
  ``value=None`` and the text 「5未満」, so templates, charts and CSV cannot leak it. A zero
  stays 0 — it says nobody is in a category, which singles out no one.
* Complementary suppression: in a table whose cells add up to a shown total, one hidden cell
  could be computed back (total minus the others), so further cells are hidden (「秘匿」)
  until that is impossible. Shares and sums derived from a hidden count are hidden too, and
  the median/90th percentile of pick-up times need at least 5 values.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from handoff.stats_store import Filter, StatsRow, StatsStore, kinds_tuple
from knowledge.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

JST = timezone(timedelta(hours=9))
SUPPRESS_BELOW = 5
SUPPRESSED = "5未満"
COMPLEMENT = "秘匿"  # hidden so that a 5未満 cell cannot be computed from the total
HIDDEN_SHARE = "非表示"
CRISIS_LEVELS = ("none", "concern", "urgent")
HANDOFF_OUTCOMES = ("closed", "returned", "abandoned")
# "A nearby local window" in the Tokyo desk's reports: the municipality's own counters.
LOCAL_WINDOW_KINDS = frozenset({"community_care_center", "municipal_welfare"})
CHANNEL_LABELS = {"line": "LINE", "web": "Webチャット", "terminal": "端末"}
OUTCOME_LABELS = {
    "closed": "相談員が対応して終了",
    "returned": "ボットに戻した",
    "abandoned": "応答前に終了",
}
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{0,64}$")


# -- recording ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """What is counted of one ended conversation: ids and numbers, nothing about a person."""

    day: date  # Japan-time day the conversation started
    channel: str  # line | web | terminal
    topic: str = "other"  # the main topic
    audience: str = "unknown"
    age_group: str = "unknown"
    crisis: str = "none"  # highest level seen
    office: str = ""  # the office that took it over, or whose area it came from
    handoff: bool = False
    handoff_outcome: str | None = None  # closed | returned | abandoned
    pickup_seconds: float | None = None  # until a counselor claimed it
    bot_kinds: tuple[str, ...] = ()  # resource kinds in the bot's answers
    counselor_kinds: tuple[str, ...] = ()  # resource kinds of the counselor's outcome

    @property
    def local_window(self) -> bool:
        """Whether a local (municipal) window was among the referrals."""
        return any(k in LOCAL_WINDOW_KINDS for k in (*self.bot_kinds, *self.counselor_kinds))


def jst_day(timestamp: float) -> date:
    """The Japan-time calendar day of a timestamp."""
    return datetime.fromtimestamp(timestamp, JST).date()


def _checked(summary: ConversationSummary) -> StatsRow:
    """Validate a summary against the taxonomy (so no free text is ever stored)."""
    tax = load_taxonomy()
    if summary.crisis not in CRISIS_LEVELS:
        raise ValueError(f"unknown crisis level {summary.crisis!r}")
    if summary.handoff_outcome is not None and summary.handoff_outcome not in HANDOFF_OUTCOMES:
        raise ValueError(f"unknown handoff outcome {summary.handoff_outcome!r}")
    for value, what in ((summary.channel, "channel"), (summary.office, "office")):
        if not _ID_RE.match(value):
            raise ValueError(f"{what} is not an id")
    if not summary.channel:
        raise ValueError("channel missing")
    kinds = (*summary.bot_kinds, *summary.counselor_kinds)
    unknown = [k for k in kinds if k not in tax.resource_kinds]
    if unknown:
        raise ValueError(f"unknown resource kinds {unknown!r}")
    pickup = summary.pickup_seconds
    return StatsRow(
        day=summary.day,
        channel=summary.channel,
        office=summary.office,
        topic=summary.topic if summary.topic in tax.topics else "other",
        audience=summary.audience if summary.audience in tax.audiences else "unknown",
        age_group=summary.age_group if summary.age_group in tax.age_groups else "unknown",
        crisis=summary.crisis,
        handoff=summary.handoff or summary.handoff_outcome is not None,
        handoff_outcome=summary.handoff_outcome,
        pickup_seconds=None if pickup is None else max(0, round(pickup)),
        local_window=summary.local_window,
        bot_kinds=kinds_tuple(summary.bot_kinds),
        counselor_kinds=kinds_tuple(summary.counselor_kinds),
    )


# -- suppression ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """A number as shown; ``value`` is None whenever the number is hidden."""

    value: float | None
    text: str
    suppressed: bool = False

    @classmethod
    def hidden(cls, text: str = SUPPRESSED) -> Cell:
        """A hidden number."""
        return cls(None, text, True)


def show_count(n: int) -> Cell:
    """One count on its own: 1–4 → 「5未満」, 0 and 5+ as they are."""
    if 0 < n < SUPPRESS_BELOW:
        return Cell.hidden()
    return Cell(n, f"{n:,}")


def suppress_counts(counts: Sequence[int], total: int | None = None) -> tuple[list[Cell], Cell]:
    """Hide small counts in a table, and enough others that none can be computed back.

    When the cells add up to a shown ``total``, the hidden cells add up to a known number;
    more cells (the smallest visible non-zero ones, 「秘匿」) are hidden while that would
    pin a value: a single hidden cell, or hidden cells that must all be 1. If nothing is
    left to hide, the total is hidden as well.

    Args:
        counts: the exact counts of the table's rows.
        total: their sum when the table shows it (a partition); None for overlapping rows.

    Returns:
        (cells, total cell); the total cell is empty text when ``total`` is None.
    """
    hidden = {i for i, n in enumerate(counts) if 0 < n < SUPPRESS_BELOW}
    complements: set[int] = set()
    total_cell = Cell(None, "") if total is None else show_count(total)
    if total is not None and not total_cell.suppressed and hidden:

        def pinned() -> bool:
            both = hidden | complements
            return len(both) == 1 or sum(counts[i] for i in both) == len(both)

        while pinned():
            rest = [i for i, n in enumerate(counts) if n > 0 and i not in hidden | complements]
            if not rest:
                total_cell = Cell.hidden(COMPLEMENT)
                break
            complements.add(min(rest, key=lambda i: (counts[i], i)))
    cells = []
    for i, n in enumerate(counts):
        if i in hidden:
            cells.append(Cell.hidden())
        elif i in complements:
            cells.append(Cell.hidden(COMPLEMENT))
        else:
            cells.append(Cell(n, f"{n:,}"))
    return cells, total_cell


def share(part: Cell, whole: Cell) -> Cell:
    """A percentage; hidden when either number is hidden (it would give the hidden one away)."""
    if part.suppressed or whole.suppressed or part.value is None or whole.value is None:
        return Cell.hidden(HIDDEN_SHARE)
    if not whole.value:
        return Cell(None, "—")
    pct = 100.0 * part.value / whole.value
    return Cell(round(pct, 1), f"{pct:.1f}%")


def sum_cells(cells: Sequence[Cell]) -> Cell:
    """The sum of shown cells; hidden if any part is hidden (or the sum is 1–4)."""
    if any(c.suppressed or c.value is None for c in cells):
        return Cell.hidden(HIDDEN_SHARE)
    return show_count(int(sum(c.value or 0 for c in cells)))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0–100) of sorted-or-not values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def format_duration(seconds: float) -> str:
    """Seconds as 「1時間2分」「3分4秒」「15秒」."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}時間{m}分"
    if m:
        return f"{m}分{sec}秒"
    return f"{sec}秒"


# -- reports --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a table."""

    key: str
    label: str
    cell: Cell


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the report (also drawn as a chart and exported as CSV)."""

    id: str
    title: str
    rows: tuple[Row, ...]
    total: Cell | None = None
    chart: str = "bar"  # bar | line | none
    header: tuple[str, str] = ("区分", "件数")
    note: str = ""

    def row(self, key: str) -> Row:
        """The row with ``key``.

        Raises:
            KeyError: no such row.
        """
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Report:
    """All statistics of a day range (and office): only suppressed-safe cells."""

    start: date
    end: date
    office: str | None
    tables: tuple[Table, ...] = field(default_factory=tuple)

    def table(self, table_id: str) -> Table:
        """The table with ``table_id``.

        Raises:
            KeyError: no such table.
        """
        for t in self.tables:
            if t.id == table_id:
                return t
        raise KeyError(table_id)


def short_label(label: str) -> str:
    """A taxonomy label without its parenthesised explanation (for tables and charts)."""
    return label.split("（", 1)[0].strip() or label


def _partition(
    table_id: str,
    title: str,
    keyed: Sequence[tuple[str, str, int]],
    total: int,
    chart: str = "bar",
    note: str = "",
) -> Table:
    cells, total_cell = suppress_counts([n for _, _, n in keyed], total)
    rows = tuple(Row(k, label, c) for (k, label, _), c in zip(keyed, cells, strict=True))
    return Table(table_id, title, rows, total_cell, chart, note=note)


def _days(start: date, end: date) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


MAX_DAYS = 3 * 366  # a longer range is cut (a day series beyond that is unreadable anyway)


def build_report(store: StatsStore, start: date, end: date, office: str | None = None) -> Report:
    """Compute every table of the statistics page for a day range and office.

    Args:
        store: the statistics store.
        start: first day (inclusive, Japan time).
        end: last day (inclusive).
        office: an office id, or None for all offices.

    Returns:
        The report; every count of 1–4 appears only as 「5未満」.

    Raises:
        ValueError: ``end`` is before ``start``.
    """
    if end < start:
        raise ValueError("end before start")
    if (end - start).days >= MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)
    tax = load_taxonomy()
    f = Filter(start, end, office or None)
    total = store.total(f)
    tables: list[Table] = []

    per_day = store.count_by("day", f)
    days = list(_days(start, end))
    tables.append(
        _partition(
            "per_day",
            "日別の相談件数",
            [(d.isoformat(), f"{d.month}/{d.day}", per_day.get(d.isoformat(), 0)) for d in days],
            total,
            chart="line",
        )
    )
    weeks: dict[date, int] = {}
    months: dict[str, int] = {}
    for d in days:
        n = per_day.get(d.isoformat(), 0)
        monday = d - timedelta(days=d.weekday())
        weeks[monday] = weeks.get(monday, 0) + n
        months[f"{d.year}-{d.month:02d}"] = months.get(f"{d.year}-{d.month:02d}", 0) + n
    tables.append(
        _partition(
            "per_week",
            "週別の相談件数（月曜始まり）",
            [(m.isoformat(), f"{m.month}/{m.day}〜", n) for m, n in weeks.items()],
            total,
        )
    )
    tables.append(
        _partition(
            "per_month",
            "月別の相談件数",
            [(k, f"{int(k[:4])}年{int(k[5:])}月", n) for k, n in months.items()],
            total,
        )
    )

    def by(dimension: str, ids: Mapping[str, str], title: str) -> Table:
        found = store.count_by(dimension, f)
        keys = list(ids) + [k for k in found if k not in ids]
        keyed = [(k, short_label(ids.get(k, k)), found.get(k, 0)) for k in keys]
        return _partition(dimension, title, keyed, total)

    tables.append(by("topic", tax.topics, "相談内容（主な話題）"))
    tables.append(by("audience", tax.audiences, "相談者"))
    tables.append(by("age_group", tax.age_groups, "対象者の年代"))
    tables.append(by("channel", CHANNEL_LABELS, "相談の経路"))
    tables.append(by("crisis", {k: short_label(v) for k, v in tax.crisis_levels.items()}, "危機"))

    outcomes = store.handoff_outcomes(f)
    handoffs = sum(outcomes.values())
    outcome_table = _partition(
        "handoff_outcome",
        "人への引き継ぎの結果",
        [(k, OUTCOME_LABELS[k], outcomes.get(k, 0)) for k in HANDOFF_OUTCOMES],
        handoffs,
    )
    tables.append(outcome_table)

    for source, title in (
        ("bot", "紹介先の種類（ボットの回答）"),
        ("counselor", "紹介先の種類（相談員）"),
    ):
        found = store.referrals(source, f)
        keyed = [(k, short_label(v), found.get(k, 0)) for k, v in tax.resource_kinds.items()]
        cells, _ = suppress_counts([n for _, _, n in keyed])
        rows = tuple(Row(k, label, c) for (k, label, _), c in zip(keyed, cells, strict=True))
        note = "1件の相談が複数の種類に紹介されることがあるため、合計は相談件数と一致しません。"
        tables.append(Table(f"referrals_{source}", title, rows, None, "bar", note=note))

    # Key figures; each is hidden where it would give a hidden count away.
    # A table that had to hide the grand total hides it everywhere.
    total_cell = show_count(total)
    partitions = {"per_day", "per_week", "per_month", "topic", "audience", "age_group"}
    partitions |= {"channel", "crisis"}
    if any(t.id in partitions and t.total and t.total.text == COMPLEMENT for t in tables):
        total_cell = Cell.hidden(COMPLEMENT)
    crisis_table = next(t for t in tables if t.id == "crisis")
    crisis_cell = sum_cells([crisis_table.row("concern").cell, crisis_table.row("urgent").cell])
    handoff_cell = outcome_table.total or show_count(handoffs)
    pickups = store.pickup_seconds(f)
    if len(pickups) >= SUPPRESS_BELOW:
        median = statistics.median(pickups)
        p90 = percentile(pickups, 90)
        median_cell = Cell(median, format_duration(median))
        p90_cell = Cell(p90, format_duration(p90))
    else:
        median_cell = p90_cell = Cell.hidden(HIDDEN_SHARE)
    referred, local = store.referred(f)
    referred_cell, local_cell = show_count(referred), show_count(local)
    key_rows = (
        Row("total", "相談件数", total_cell),
        Row("crisis", "危機の兆候があった相談", crisis_cell),
        Row("handoffs", "人（相談員）への引き継ぎ", handoff_cell),
        Row("handoff_rate", "引き継ぎ率", share(handoff_cell, total_cell)),
        Row("pickup_median", "応答までの時間（中央値）", median_cell),
        Row("pickup_p90", "応答までの時間（90パーセンタイル）", p90_cell),
        Row("abandoned", "応答前に終了した引き継ぎ", outcome_table.row("abandoned").cell),
        Row("referred", "紹介先を案内した相談", referred_cell),
        Row("local", "地域の窓口（市区町村・地域包括支援センター）への紹介", local_cell),
        Row(
            "local_share",
            "地域の窓口へ紹介した割合（相談件数に対して）",
            share(local_cell, total_cell),
        ),
    )
    overview = Table(
        "overview",
        "概要",
        key_rows,
        None,
        "none",
        header=("項目", "値"),
        note="5未満の件数と、そこから計算できてしまう値は表示しません。",
    )
    return Report(start, end, office or None, (overview, *tables))


# -- the statistics service -----------------------------------------------------------------


class Statistics:
    """Record ended conversations and build reports (one per application)."""

    def __init__(self, store: StatsStore) -> None:
        """Wrap a migrated statistics store."""
        self.store = store

    @classmethod
    def open(cls, db: sqlite_utils.Database) -> Statistics:
        """Migrate the ``stats`` tables of ``db`` and return the service."""
        return cls(StatsStore.open(db))

    def record_conversation(self, summary: ConversationSummary) -> None:
        """Count one ended conversation (call once per conversation).

        Raises:
            ValueError: a value is not a known id (nothing is written).
        """
        self.store.insert(_checked(summary))
        logger.info("conversation counted (channel %s)", summary.channel)

    def report(self, start: date, end: date, office: str | None = None) -> Report:
        """The statistics of a day range, small counts suppressed (see :func:`build_report`)."""
        return build_report(self.store, start, end, office)

    def offices(self) -> list[str]:
        """Office ids that appear in the statistics."""
        return self.store.offices()


# -- following open conversations -----------------------------------------------------------

# Conversations with the bot followed at once: all those active within one idle timeout
# (30 minutes). A whole prefecture's desk has tens to hundreds; 5,000 is 10,000 new
# conversations an hour. Each takes ~0.3 KiB (bench/memory_tables.py), so a flood cannot
# take more than ~1.5 MiB. Beyond it the least recently active conversation is counted
# early (logged, counts only); if that person comes back, it counts as a second one.
MAX_OPEN = 5_000


@dataclass(frozen=True, slots=True)
class _Handoff:
    office: str
    outcome: str
    pickup_seconds: float | None
    counselor_kinds: tuple[str, ...]


@dataclass(slots=True)
class _Episode:
    # One per open conversation (thousands under a flood), so it is small: slots, the start
    # kept as its (shared) Japan-time day, the kinds as a tuple, and the category strings
    # interned (states loaded from JSON bring a fresh copy of "theft" on every turn).
    channel: str
    day: date
    last: float
    topic: str = "other"
    audience: str = "unknown"
    age_group: str = "unknown"
    crisis: str = "none"
    office: str = ""
    bot_kinds: tuple[str, ...] = ()
    in_handoff: bool = False
    handoff: _Handoff | None = None


@functools.lru_cache(maxsize=256)
def _day_of_hour(hour: int) -> date:
    # Japan is a whole number of hours from UTC: the hour since the epoch fixes the day,
    # and every conversation of that hour shares one date object.
    return jst_day(hour * 3600.0)


def _shared_day(timestamp: float) -> date:
    return _day_of_hour(math.floor(timestamp / 3600))


OfficeFor = Callable[[Any, Sequence[str]], str]


class ConversationTracker:
    """Follows open conversations in memory and records each one once, when it ends.

    A conversation ends at whichever comes first: the idle timeout (:meth:`sweep`, or the
    person's next message after it), deletion (履歴を消して, unfollow: :meth:`end`), or the end
    of its handoff (:meth:`handoff_ended`). The retention purge comes far later than the idle
    timeout, so by then the conversation has been counted. Nothing here is written before the
    end; a restart counts what is open as ended (:meth:`flush`), except conversations with a
    counselor, which the handoff's end counts from the persisted case.

    Memory: conversations with the bot are kept in order of last activity, so the idle sweep
    and the cap take them from the front (O(1) each, no scan). Conversations with a
    counselor (few) are kept apart: they never block the sweep and are never counted early.
    """

    def __init__(
        self,
        stats: Statistics,
        idle_seconds: float,
        office_for: OfficeFor | None = None,
        max_open: int = MAX_OPEN,
        handoff_max_seconds: float = 7 * 86400,
    ) -> None:
        """Create the tracker.

        Args:
            stats: where ended conversations are recorded.
            idle_seconds: a conversation without activity this long has ended.
            office_for: (area, topics) → office id, for conversations no office took over.
            max_open: beyond this many open conversations with the bot, the least recently
                active is counted as ended (logged, counts only).
            handoff_max_seconds: a handoff that never reports its end is counted after this.
        """
        self.stats = stats
        self.idle_seconds = idle_seconds
        self.office_for = office_for
        self.max_open = max(1, max_open)
        self.handoff_max_seconds = handoff_max_seconds
        self._open: dict[str, _Episode] = {}  # with the bot, least recently active first
        self._held: dict[str, _Episode] = {}  # with a counselor: the handoff's end counts them
        self.counted_at_cap = 0  # conversations counted before their idle timeout (max_open)
        self._cap_logged = 0

    def __len__(self) -> int:
        """Open conversations followed."""
        return len(self._open) + len(self._held)

    def observe(
        self,
        key: str,
        *,
        channel: str,
        now: float,
        spoke: bool = True,
        topics: Sequence[str] = (),
        audience: str = "unknown",
        age_group: str = "unknown",
        crisis: str = "none",
        area: Any = None,
        referred_kinds: Sequence[str] = (),
    ) -> None:
        """Take in what one turn showed (categories only).

        Args:
            key: the conversation's key (the pseudonymous user key; memory only).
            channel: line | web | terminal.
            now: time of the turn.
            spoke: whether the person sent something (a greeting alone starts nothing).
            topics: the topics known so far, main first.
            audience: audience id.
            age_group: age group id.
            crisis: crisis level of the conversation so far.
            area: the area (``intents.types.Area``) if known, for the office.
            referred_kinds: resource kinds in this turn's answers.
        """
        ep = self._open.get(key)
        if ep is not None and now - ep.last > self.idle_seconds:
            self._record(key, ep)
            ep = None
        if ep is None:
            ep = self._held.get(key)
        if ep is None:
            if not spoke:
                return
            ep = _Episode(channel=sys.intern(channel), day=_shared_day(now), last=now)
            self._open[key] = ep
            self._bound()
        ep.last = max(ep.last, now)
        if not ep.in_handoff:
            self._open[key] = self._open.pop(key)  # most recently active last
        real_topics = [t for t in topics if t != "other"]
        if real_topics:
            ep.topic = sys.intern(real_topics[0])
        if audience != "unknown":
            ep.audience = sys.intern(audience)
        if age_group != "unknown":
            ep.age_group = sys.intern(age_group)
        if crisis in CRISIS_LEVELS and CRISIS_LEVELS.index(crisis) > CRISIS_LEVELS.index(
            ep.crisis
        ):
            ep.crisis = sys.intern(crisis)
        for kind in referred_kinds:
            if kind not in ep.bot_kinds:
                ep.bot_kinds = (*ep.bot_kinds, sys.intern(kind))
        if self.office_for is not None and (area is not None or not ep.office):
            try:
                ep.office = sys.intern(self.office_for(area, real_topics) or ep.office)
            except Exception:
                logger.exception("office lookup failed; counting without an office")

    def handoff_started(self, key: str) -> None:
        """The conversation went to a counselor: its handoff's end will count it."""
        ep = self._open.pop(key, None)
        if ep is not None:
            ep.in_handoff = True
            self._held[key] = ep

    def end(self, key: str, now: float | None = None) -> bool:
        """The conversation ended now (deleted, unfollowed): count it unless a handoff will.

        Returns:
            True when it was counted.
        """
        ep = self._open.get(key)
        if ep is None or ep.in_handoff:
            return False
        return self._record(key, ep)

    def handoff_ended(
        self,
        key: str | None,
        *,
        office: str,
        outcome: str,
        channel: str,
        started: float,
        pickup_seconds: float | None = None,
        counselor_kinds: Sequence[str] = (),
        topics: Sequence[str] = (),
        audience: str = "unknown",
        age_group: str = "unknown",
        crisis: str = "none",
        now: float | None = None,
    ) -> None:
        """A handoff reached its end (closed, returned, abandoned).

        When the conversation is still followed, the person is back with the bot: the
        handoff's facts are attached and the conversation is counted when it ends (idle,
        delete). Otherwise (restart, deleted) it is counted now from the case's summary.

        Args:
            key: the user key of the case (None once the person deleted it).
            office: the office that had it last.
            outcome: closed | returned | abandoned.
            channel: the case's channel.
            started: when the case was created (its day counts when nothing else is known).
            pickup_seconds: seconds until a counselor claimed it (None: never claimed).
            counselor_kinds: resource kinds of the counselor's recorded outcome.
            topics: the case summary's topics.
            audience: the case summary's audience.
            age_group: the case summary's age group.
            crisis: the case summary's crisis level.
            now: when the handoff ended (the idle timeout runs from here).

        Raises:
            ValueError: unknown outcome.
        """
        if outcome not in HANDOFF_OUTCOMES:
            raise ValueError(f"unknown handoff outcome {outcome!r}")
        ep = None if key is None else self._held.pop(key, None) or self._open.pop(key, None)
        handoff = _Handoff(office, outcome, pickup_seconds, kinds_tuple(counselor_kinds))
        if ep is None or key is None:
            ep = _Episode(channel=channel, day=_shared_day(started), last=started, handoff=handoff)
            self._open_merge(ep, topics, audience, age_group, crisis)
            self._write(self._summary(ep))
            return
        # Back with the bot: the conversation goes on and ends like any other (idle, delete),
        # so it is still counted once.
        self._open_merge(ep, topics, audience, age_group, crisis)
        ep.handoff = handoff
        ep.in_handoff = False
        ep.last = max(ep.last, now if now is not None else ep.last)
        self._open[key] = ep  # most recently active last

    def case_started(self, case: Any) -> None:
        """An escalation (``handoff.models.Escalation``) was created for a conversation."""
        if getattr(case, "user_key", None):
            self.handoff_started(case.user_key)

    def case_ended(self, case: Any, now: float | None = None) -> None:
        """An escalation reached a final state: count it (see :meth:`handoff_ended`).

        Time to pick up runs from when a counselor could first answer (``due_at``: the
        opening time for a case left out of hours) to the claim.
        """
        if case.state not in HANDOFF_OUTCOMES:
            return
        pickup = None
        if case.claimed_at is not None:
            since = max(case.created_at, getattr(case, "due_at", None) or case.created_at)
            pickup = max(0.0, case.claimed_at - since)
        tax = load_taxonomy()
        kinds = case.outcome.referred_kinds if case.outcome is not None else ()
        summary = case.summary
        self.handoff_ended(
            case.user_key,
            office=case.office_id,
            outcome=case.state,
            channel=case.channel,
            started=case.created_at,
            pickup_seconds=pickup,
            counselor_kinds=[k for k in kinds if k in tax.resource_kinds],
            topics=summary.topics,
            audience=summary.audience,
            age_group=summary.age_group,
            crisis=summary.crisis,
            now=now if now is not None else case.closed_at,
        )

    def sweep(self, now: float) -> int:
        """Count every conversation idle past the timeout (handoffs: past their maximum).

        Returns:
            How many were counted.
        """
        done = 0
        conversations = self._open
        while conversations:
            key = next(iter(conversations))
            ep = conversations[key]
            if now - ep.last <= self.idle_seconds:
                break  # every later one was active more recently
            done += self._record(key, ep)
        for key, ep in list(self._held.items()):
            if now - ep.last > self.handoff_max_seconds:
                done += self._record(key, ep)
        if self.counted_at_cap > self._cap_logged:
            logger.warning(
                "statistics: %d conversations counted before their idle timeout so far "
                "(more than %d open at once)",
                self.counted_at_cap,
                self.max_open,
            )
            self._cap_logged = self.counted_at_cap
        return done

    def flush(self) -> int:
        """Count every open conversation not with a counselor (shutdown).

        Returns:
            How many were counted.
        """
        done = 0
        for key, ep in list(self._open.items()):
            done += self._record(key, ep)
        return done

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _open_merge(
        ep: _Episode, topics: Sequence[str], audience: str, age_group: str, crisis: str
    ) -> None:
        real = [t for t in topics if t != "other"]
        if ep.topic == "other" and real:
            ep.topic = real[0]
        if ep.audience == "unknown":
            ep.audience = audience
        if ep.age_group == "unknown":
            ep.age_group = age_group
        if crisis in CRISIS_LEVELS and CRISIS_LEVELS.index(crisis) > CRISIS_LEVELS.index(
            ep.crisis
        ):
            ep.crisis = crisis

    def _bound(self) -> None:
        # The dict is kept in order of last activity (see observe()), so the oldest is first:
        # O(1) per eviction instead of a scan of every open conversation.
        while len(self._open) > self.max_open:
            key = next(iter(self._open))
            self._record(key, self._open[key])
            self.counted_at_cap += 1

    @staticmethod
    def _summary(ep: _Episode) -> ConversationSummary:
        summary = ConversationSummary(
            day=ep.day,
            channel=ep.channel,
            topic=ep.topic,
            audience=ep.audience,
            age_group=ep.age_group,
            crisis=ep.crisis,
            office=ep.office,
            bot_kinds=ep.bot_kinds,
        )
        if ep.handoff is None:
            return summary
        return replace(
            summary,
            office=ep.handoff.office,
            handoff=True,
            handoff_outcome=ep.handoff.outcome,
            pickup_seconds=ep.handoff.pickup_seconds,
            counselor_kinds=ep.handoff.counselor_kinds,
        )

    def _record(self, key: str, ep: _Episode) -> bool:
        self._open.pop(key, None)
        self._held.pop(key, None)
        return self._write(self._summary(ep))

    def _write(self, summary: ConversationSummary) -> bool:
        try:
            self.stats.record_conversation(summary)
        except Exception:
            # Statistics must never break a conversation; the failure is logged (no text).
            logger.exception("could not count a conversation")
            return False
        return True
