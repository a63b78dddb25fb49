"""Open-now in Japan time, holidays and overnight windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from knowledge.hours import JST, default_holidays, open_now, to_japan_time
from knowledge.types import HoursRule, Resource


def _res(*rules: HoursRule, always: bool = False) -> Resource:
    return Resource(
        id="r", name="r", kind="crisis_line", description="d", hours=rules, always_open=always
    )


WEEKDAYS = HoursRule((0, 1, 2, 3, 4), "09:00", "17:00")


def test_weekday_window_in_japan_time() -> None:
    r = _res(WEEKDAYS)
    # Wednesday 2026-11-25 10:00 JST == 01:00 UTC
    assert open_now(r, datetime(2026, 11, 25, 1, 0, tzinfo=UTC)) is True
    assert open_now(r, datetime(2026, 11, 25, 10, 0)) is True  # naive = Japan time
    assert open_now(r, datetime(2026, 11, 25, 8, 59, tzinfo=JST)) is False
    assert open_now(r, datetime(2026, 11, 25, 17, 0, tzinfo=JST)) is False
    # 2026-11-25 20:00 in New York is already Thursday 10:00 in Japan
    ny = timezone(timedelta(hours=-5))
    assert open_now(r, datetime(2026, 11, 25, 20, 0, tzinfo=ny)) is True
    assert open_now(r, datetime(2026, 11, 28, 10, 0, tzinfo=JST)) is False  # Saturday


def test_holidays_close_weekday_rules() -> None:
    r = _res(WEEKDAYS)
    labour_day = datetime(2026, 11, 23, 10, 0, tzinfo=JST)  # 勤労感謝の日, a Monday
    assert date(2026, 11, 23) in default_holidays()
    assert open_now(r, labour_day) is False
    assert open_now(r, labour_day, holidays=frozenset()) is True
    with_holidays = _res(HoursRule((0, 1, 2, 3, 4, 5, 6, 7), "10:00", "22:00"))
    assert open_now(with_holidays, labour_day) is True


def test_overnight_and_24h() -> None:
    night = _res(HoursRule((4,), "22:00", "06:00"))  # Friday night into Saturday
    assert open_now(night, datetime(2026, 11, 27, 23, 0, tzinfo=JST)) is True
    assert open_now(night, datetime(2026, 11, 28, 5, 59, tzinfo=JST)) is True
    assert open_now(night, datetime(2026, 11, 28, 6, 0, tzinfo=JST)) is False
    assert open_now(night, datetime(2026, 11, 26, 23, 0, tzinfo=JST)) is False
    until_midnight = _res(HoursRule((2,), "18:00", "24:00"))
    assert open_now(until_midnight, datetime(2026, 11, 25, 23, 59, tzinfo=JST)) is True
    assert open_now(_res(always=True), datetime(2026, 1, 1, 3, 0, tzinfo=JST)) is True
    assert open_now(_res(), datetime(2026, 1, 1, 3, 0, tzinfo=JST)) is None


def test_to_japan_time() -> None:
    assert to_japan_time(datetime(2026, 1, 1, 15, 0, tzinfo=UTC)).day == 2
    assert to_japan_time(datetime(2026, 1, 1, 15, 0, tzinfo=UTC)).utcoffset() == timedelta(hours=9)
