"""Whether a resource is open at a given moment, in Japan time, with a configurable holiday list.

The shipped holiday list (``knowledge/data/holidays.yaml``) is not exhaustive: it covers the
national holidays of the years it names plus the year-end closure, and must be extended.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from importlib import resources

import yaml

from knowledge.types import HoursRule, Resource

logger = logging.getLogger(__name__)

HOLIDAY = 7  # HoursRule day number for a public holiday


def _japan_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Tokyo")
    except Exception:  # tzdata missing (slim containers): Japan has no DST
        logger.warning("Asia/Tokyo time zone data missing; using fixed UTC+9")
        return timezone(timedelta(hours=9), "JST")


JST = _japan_tz()


@lru_cache(maxsize=1)
def default_holidays() -> frozenset[date]:
    """The shipped holiday/closure dates (not exhaustive; see the data file)."""
    text = resources.files("knowledge").joinpath("data/holidays.yaml").read_text("utf-8")
    data = yaml.safe_load(text) or {}
    items = data.get("holidays", []) if isinstance(data, dict) else []
    out: set[date] = set()
    for item in items:
        out.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
    return frozenset(out)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _day_code(day: date, holidays: Collection[date]) -> int:
    return HOLIDAY if day in holidays else day.weekday()


def _open_in(rules: tuple[HoursRule, ...], day: date, minute: int, hol: Collection[date]) -> bool:
    today = _day_code(day, hol)
    yesterday = _day_code(day - timedelta(days=1), hol)
    for rule in rules:
        opens, closes = _minutes(rule.opens), _minutes(rule.closes)
        if closes > opens:
            if today in rule.days and opens <= minute < closes:
                return True
        else:  # spans midnight, e.g. 22:00–06:00
            if today in rule.days and minute >= opens:
                return True
            if yesterday in rule.days and minute < closes:
                return True
    return False


def to_japan_time(now: datetime) -> datetime:
    """Convert to Japan time; a naive datetime is taken to be Japan time already."""
    if now.tzinfo is None:
        return now.replace(tzinfo=JST)
    return now.astimezone(JST)


def open_now(
    resource: Resource, now: datetime, holidays: Collection[date] | None = None
) -> bool | None:
    """Tell whether the resource takes consultations at ``now`` (Japan time).

    On a date in ``holidays`` only rules that list day 7 (祝) apply.

    Args:
        resource: the resource.
        now: the moment; naive values are read as Japan time.
        holidays: closure dates; defaults to the shipped, non-exhaustive list.

    Returns:
        True or False, or None when the resource has no structured hours.
    """
    if resource.always_open:
        return True
    if not resource.hours:
        return None
    local = to_japan_time(now)
    minute = local.hour * 60 + local.minute
    hol = default_holidays() if holidays is None else holidays
    return _open_in(resource.hours, local.date(), minute, hol)


__all__ = ["HOLIDAY", "JST", "default_holidays", "open_now", "to_japan_time"]
