"""Offices: the shipped data, validation, routing by area and opening hours in Japan time."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from handoff.offices import OfficeDataError, load_directory
from intents.types import Area
from knowledge.hours import JST

DATA = """
offices:
  - id: city
    name: テスト市の窓口
    areas: ["999999"]
    hours: [{days: 月火水木金, opens: "09:00", closes: "17:00"}]
  - id: pref
    name: テスト県の窓口
    areas: ["99"]
    default: true
    hours:
      - {days: 月火水木金, opens: "09:00", closes: "17:00"}
      - {days: 土, opens: "10:00", closes: "12:00"}
    holidays: [2030-01-07]
  - id: night
    name: 夜間の窓口
    areas: ["98"]
    topics: [drugs]
    hours: [{days: [0, 1, 2, 3, 4, 5, 6, 7], opens: "22:00", closes: "06:00"}]
"""


def test_shipped_offices_load_and_are_marked_sample() -> None:
    directory = load_directory()
    offices = list(directory)
    assert len(offices) >= 2
    assert all(o.sample and "サンプル" in o.label for o in offices)
    assert directory.default.id == "sample_probation"
    assert directory.get("sample_city_welfare") is not None


def test_routing_prefers_municipality_then_prefecture_then_default() -> None:
    d = load_directory(DATA, holidays=())
    city = Area(prefecture_code="99", municipality_code="999999")
    assert d.route(city).id == "city"
    assert d.route(Area(prefecture_code="99", municipality_code="991234")).id == "pref"
    assert d.route(Area(prefecture="東京都", prefecture_code="13")).id == "pref"  # default
    assert d.route(None).id == "pref"
    # An office with a topic list only takes those topics.
    assert d.route(Area(prefecture_code="98"), ("drugs",)).id == "night"
    assert d.route(Area(prefecture_code="98"), ("theft",)).id == "pref"


def test_opening_hours_in_japan_time_with_holidays() -> None:
    d = load_directory(DATA, holidays={date(2030, 1, 1)})
    pref = d.get("pref")
    assert pref is not None
    # Monday 2030-01-14 10:00 JST is open; the same moment in UTC is 01:00.
    assert d.is_open(pref, datetime(2030, 1, 14, 10, 0, tzinfo=JST))
    assert d.is_open(pref, datetime.fromisoformat("2030-01-14T01:00:00+00:00"))
    assert not d.is_open(pref, datetime(2030, 1, 14, 17, 0, tzinfo=JST))
    assert not d.is_open(pref, datetime(2030, 1, 1, 10, 0, tzinfo=JST))  # shared holiday
    assert not d.is_open(pref, datetime(2030, 1, 7, 10, 0, tzinfo=JST))  # office's own
    night = d.get("night")
    assert night is not None
    assert d.is_open(night, datetime(2030, 1, 15, 2, 0, tzinfo=JST))  # spans midnight
    assert not d.is_open(night, datetime(2030, 1, 15, 12, 0, tzinfo=JST))


def test_next_opening_skips_evenings_weekends_and_holidays() -> None:
    d = load_directory(DATA, holidays={date(2030, 1, 14)})
    pref = d.get("pref")
    assert pref is not None
    # Friday 2030-01-11 18:00 → Saturday 10:00.
    assert d.next_opening(pref, datetime(2030, 1, 11, 18, 0, tzinfo=JST)) == datetime(
        2030, 1, 12, 10, 0, tzinfo=JST
    )
    # Saturday 13:00 → Monday is a holiday → Tuesday 09:00.
    assert d.next_opening(pref, datetime(2030, 1, 12, 13, 0, tzinfo=JST)) == datetime(
        2030, 1, 15, 9, 0, tzinfo=JST
    )
    now = datetime(2030, 1, 15, 11, 30, tzinfo=JST)
    assert d.next_opening(pref, now) == now  # open: now


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("offices: {}", "offices"),
        ("offices: [{id: 'a b', name: x, default: true}]", "offices[1].id"),
        ("offices: [{id: a, name: '', default: true}]", "offices[1].name"),
        ("offices: [{id: a, name: x, default: true, areas: ['1']}]", "offices[1].areas"),
        (
            "offices: [{id: a, name: x, default: true, hours: [{days: 月, opens: '9時'}]}]",
            "offices[1].hours[1]",
        ),
        (
            "offices: [{id: a, name: x, default: true, hours: [{days: 月月x}]}]",
            "offices[1].hours[1].days",
        ),
        ("offices: [{id: a, name: x, default: true, color: red}]", "offices[1]"),
        ("offices: [{id: a, name: x}]", "default"),
        ("offices: [{id: a, name: x, default: true}, {id: a, name: y}]", "a"),
        ("offices: [", "offices.yaml"),
    ],
)
def test_invalid_data_is_refused_with_a_clear_message(text: str, where: str) -> None:
    with pytest.raises(OfficeDataError) as info:
        load_directory(text)
    assert where in [w for w, _ in info.value.errors]
    assert all(message for _, message in info.value.errors)
