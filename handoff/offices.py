"""Offices that take handed-over conversations: areas covered, opening hours, routing."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

import yaml

from intents.types import Area
from knowledge.hours import HOLIDAY, default_holidays, to_japan_time
from knowledge.types import HoursRule

DAY_NAMES = "月火水木金土日祝"  # index = HoursRule day number (7 = public holiday)
_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")  # same rule as account office ids
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_AREA_RE = re.compile(r"^\d{2}$|^\d{5,6}$")
_FIELDS = {"id", "name", "sample", "default", "areas", "topics", "hours", "holidays"}


class OfficeDataError(ValueError):
    """The office data is invalid; ``errors`` lists (where, Japanese message) pairs."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{w}: {m}" for w, m in self.errors))


@dataclass(frozen=True, slots=True)
class Office:
    """One office whose counselors answer in the chat."""

    id: str
    name: str
    areas: tuple[str, ...] = ()  # prefecture (2 digits) / municipality (5–6 digits) codes
    topics: tuple[str, ...] = ()  # empty → any topic
    hours: tuple[HoursRule, ...] = ()
    holidays: frozenset[date] = frozenset()
    default: bool = False
    sample: bool = False

    @property
    def label(self) -> str:
        """The name as shown to people (samples say so)."""
        if self.sample and "サンプル" not in self.name:
            return f"{self.name}（サンプル）"
        return self.name


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _day_code(day: date, holidays: Collection[date]) -> int:
    return HOLIDAY if day in holidays else day.weekday()


def _open_at(rules: Sequence[HoursRule], local: datetime, holidays: Collection[date]) -> bool:
    minute = local.hour * 60 + local.minute
    today = _day_code(local.date(), holidays)
    yesterday = _day_code(local.date() - timedelta(days=1), holidays)
    for rule in rules:
        opens, closes = _minutes(rule.opens), _minutes(rule.closes)
        if closes > opens:
            if today in rule.days and opens <= minute < closes:
                return True
        else:  # spans midnight
            if today in rule.days and minute >= opens:
                return True
            if yesterday in rule.days and minute < closes:
                return True
    return False


class OfficeDirectory:
    """All offices, with routing by area and topic and opening-hours questions."""

    def __init__(
        self, offices: Sequence[Office], holidays: Collection[date] | None = None
    ) -> None:
        """Create the directory.

        Args:
            offices: the offices; exactly one should be ``default``.
            holidays: shared closure dates; defaults to the knowledge base's list.

        Raises:
            OfficeDataError: no offices, duplicate ids or not exactly one default.
        """
        errors: list[tuple[str, str]] = []
        if not offices:
            errors.append(("offices", "事務所が1つもありません。"))
        ids = [o.id for o in offices]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            errors.append((dup, "事務所IDが重複しています。"))
        if offices and sum(o.default for o in offices) != 1:
            errors.append(("default", "default: true の事務所をちょうど1つ指定してください。"))
        if errors:
            raise OfficeDataError(errors)
        self._offices = {o.id: o for o in offices}
        self.holidays: frozenset[date] = frozenset(
            default_holidays() if holidays is None else holidays
        )

    def __iter__(self) -> Any:
        """Iterate over the offices in file order."""
        return iter(self._offices.values())

    def get(self, office_id: str | None) -> Office | None:
        """The office with this id."""
        return self._offices.get(office_id or "")

    @property
    def default(self) -> Office:
        """The office that takes conversations nobody else covers."""
        return next(o for o in self._offices.values() if o.default)

    def route(self, area: Area | None, topics: Sequence[str] = ()) -> Office:
        """Choose the office for a conversation: municipality, then prefecture, then default.

        Args:
            area: the person's area, if known.
            topics: the conversation's topics (offices with a topic list need one of them).

        Returns:
            The office.
        """
        muni = (area.municipality_code or "") if area else ""
        pref = ((area.prefecture_code or muni[:2]) if area else "") or ""
        best: tuple[int, Office] | None = None
        for office in self._offices.values():
            if office.topics and topics and not set(office.topics) & set(topics):
                continue
            for code in office.areas:
                rank = None
                if len(code) >= 5 and muni and muni[:5] == code[:5]:
                    rank = 0
                elif len(code) == 2 and pref == code:
                    rank = 1
                if rank is not None and (best is None or rank < best[0]):
                    best = (rank, office)
        return best[1] if best else self.default

    def is_open(self, office: Office, now: datetime) -> bool:
        """True when the office's counselors are on duty at ``now`` (Japan time)."""
        holidays = self.holidays | office.holidays
        return _open_at(office.hours, to_japan_time(now), holidays)

    def next_opening(self, office: Office, now: datetime, days: int = 14) -> datetime | None:
        """When the office opens next (Japan time), or None within ``days`` (or never).

        Args:
            office: the office.
            now: the moment to look from.
            days: how far to look ahead.

        Returns:
            The first minute the office is open after ``now`` (``now`` itself when open).
        """
        local = to_japan_time(now).replace(second=0, microsecond=0)
        if self.is_open(office, local):
            return local
        holidays = self.holidays | office.holidays
        # Openings only happen at a rule's "opens" minute or at midnight (holiday rules).
        starts = sorted({_minutes(r.opens) for r in office.hours} | {0})
        for offset in range(days + 1):
            day = local.date() + timedelta(days=offset)
            for minute in starts:
                moment = datetime(day.year, day.month, day.day, tzinfo=local.tzinfo) + timedelta(
                    minutes=minute
                )
                if moment > local and _open_at(office.hours, moment, holidays):
                    return moment
        return None


# -- loading ------------------------------------------------------------------------------


def _day(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 7 else None
    text = str(value).strip()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    return DAY_NAMES.index(text) if len(text) == 1 and text in DAY_NAMES else None


def _time(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value // 60:02d}:{value % 60:02d}"  # YAML 1.1 sexagesimal 09:00
    text = unicodedata.normalize("NFKC", str(value or "")).strip()
    if len(text) == 4 and text[1] == ":":
        text = "0" + text
    return text if _TIME_RE.match(text) else None


def _hours(raw: Any, where: str, errors: list[tuple[str, str]]) -> tuple[HoursRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append((where, "受付時間は一覧で指定してください。"))
        return ()
    rules: list[HoursRule] = []
    for i, item in enumerate(raw, start=1):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"days", "opens", "closes"}:
            errors.append((at, "受付時間は days・opens・closes で指定してください。"))
            continue
        days_raw = item.get("days")
        if isinstance(days_raw, str):
            days_raw = [d for d in days_raw if d not in " ,、"]
        days = [_day(d) for d in days_raw] if isinstance(days_raw, list) else []
        if not days or any(d is None for d in days):
            errors.append(
                (f"{at}.days", "曜日は月火水木金土日祝（または0〜7）で指定してください。")
            )
            continue
        opens, closes = _time(item.get("opens")), _time(item.get("closes"))
        if opens is None or closes is None or opens == closes:
            errors.append(
                (at, "開始・終了時刻は「09:00」のように、別々の時刻で指定してください。")
            )
            continue
        rules.append(HoursRule(tuple(sorted({d for d in days if d is not None})), opens, closes))
    return tuple(rules)


def parse_offices(data: Any) -> list[Office]:
    """Check the office data (the content of ``offices.yaml``) and return the offices.

    Raises:
        OfficeDataError: one entry per problem found.
    """
    errors: list[tuple[str, str]] = []
    items = data.get("offices") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise OfficeDataError([("offices", "offices: の下に事務所の一覧を書いてください。")])
    offices: list[Office] = []
    for n, item in enumerate(items, start=1):
        where = f"offices[{n}]"
        if not isinstance(item, Mapping):
            errors.append((where, "事務所は項目の組で書いてください。"))
            continue
        extra = set(item) - _FIELDS
        if extra:
            errors.append((where, f"使えない項目があります: {', '.join(sorted(map(str, extra)))}"))
        office_id = str(item.get("id") or "")
        if not _ID_RE.match(office_id):
            errors.append((f"{where}.id", "IDは半角英数字と「_ . -」で64文字以内です。"))
        name = str(item.get("name") or "").strip()
        if not name:
            errors.append((f"{where}.name", "名前を入れてください。"))
        areas = tuple(str(a) for a in item.get("areas") or ())
        for code in areas:
            if not _AREA_RE.match(code):
                errors.append((f"{where}.areas", f"地域コード「{code}」は2桁か5〜6桁の数字です。"))
        holidays: set[date] = set()
        for value in item.get("holidays") or ():
            try:
                holidays.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
            except ValueError:
                errors.append((f"{where}.holidays", f"日付「{value}」は 2025-12-29 の形です。"))
        offices.append(
            Office(
                id=office_id,
                name=name,
                areas=areas,
                topics=tuple(str(t) for t in item.get("topics") or ()),
                hours=_hours(item.get("hours"), f"{where}.hours", errors),
                holidays=frozenset(holidays),
                default=bool(item.get("default", False)),
                sample=bool(item.get("sample", False)),
            )
        )
    if errors:
        raise OfficeDataError(errors)
    return offices


def load_directory(
    text: str | None = None, holidays: Collection[date] | None = None
) -> OfficeDirectory:
    """Load offices from YAML text, or the shipped ``handoff/data/offices.yaml``.

    Args:
        text: YAML text of an offices file (``None`` → the shipped file).
        holidays: shared closure dates (defaults to the knowledge base's list).

    Returns:
        The directory.

    Raises:
        OfficeDataError: the data is invalid.
    """
    if text is None:
        text = resources.files("handoff").joinpath("data/offices.yaml").read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OfficeDataError([("offices.yaml", f"YAMLとして読めません: {exc}")]) from exc
    return OfficeDirectory(parse_offices(data), holidays)
