"""KnowledgeBase.route: concrete resources by fit and by closeness of coverage to the area."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from intents.types import Area, TopicScore, Understanding
from knowledge.base import KnowledgeBase, _route_kinds
from knowledge.db import connect
from knowledge.hours import JST

SAMPLE_AREA = Area(
    prefecture="サンプル県",
    prefecture_code="99",
    municipality="サンプル市",
    municipality_code="999999",
)


def _u(topic: str, **kw: Any) -> Understanding:
    return Understanding(topics=(TopicScore(topic, 1.0),), confident=True, **kw)


@pytest.fixture
def kb(db_path: Path) -> KnowledgeBase:
    return KnowledgeBase.open(connect(db_path))


def _add(kb: KnowledgeBase, rid: str, kind: str, coverage: str, **kw: Any) -> None:
    data: dict[str, Any] = {
        "id": rid,
        "name": rid,
        "kind": kind,
        "description": "テスト用の窓口です。",
        "coverage": coverage,
        "notes": "テスト",
        "sample": True,
    }
    data.update(kw)
    kb.save_resource(data, actor="test")


def test_municipal_before_prefectural_before_national(db_path: Path) -> None:
    kb = KnowledgeBase.open(connect(db_path), load_defaults=False)
    u = _u("probation")
    kind = _route_kinds(u)[0].kind
    _add(kb, "national", kind, "national", phone="03-0000-0000")
    _add(kb, "pref13", kind, "prefecture", prefecture_code="13")
    _add(kb, "pref14", kind, "prefecture", prefecture_code="14")
    _add(kb, "shinjuku", kind, "municipality", municipality_code="131041")
    _add(kb, "yokohama", kind, "municipality", municipality_code="141003")
    shinjuku = Area(
        prefecture="東京都",
        prefecture_code="13",
        municipality="新宿区",
        municipality_code="131041",
    )
    ids = [r.resource.id for r in kb.route(u, shinjuku, limit=3)]
    assert ids == ["shinjuku", "pref13", "national"]
    hachioji = Area(
        prefecture="東京都",
        prefecture_code="13",
        municipality="八王子市",
        municipality_code="132012",
    )
    assert [r.resource.id for r in kb.route(u, hachioji)] == ["pref13", "national"]
    # Only the prefecture is known: the municipality code's first two digits are enough too.
    assert kb.route(u, Area(municipality_code="141003"))[0].resource.id == "yokohama"
    assert kb.route(u, Area(prefecture_code="14"))[0].resource.id == "pref14"
    # Area unknown: national only.
    assert [r.resource.id for r in kb.route(u, None)] == ["national"]
    assert [r.rank for r in kb.route(u, shinjuku)] == [1, 2, 3]


def test_unknown_area_gives_national_and_how_to_find_local(kb: KnowledgeBase) -> None:
    refs = kb.route(_u("health", age_group="elderly"), None)
    assert refs and all(r.resource.coverage == "national" for r in refs)
    assert not any(r.resource.sample for r in refs)
    guides = [r for r in refs if not r.resource.phone]
    assert guides, "a local kind should come as a how-to-find guide"
    assert all("探し方" in r.reason for r in guides)
    assert all(r.resource.notes for r in guides)


def test_sample_area_prefers_sample_local_entries(kb: KnowledgeBase) -> None:
    u = _u("health", age_group="elderly", audience="family")
    refs = kb.route(u, SAMPLE_AREA)
    assert refs[0].resource.id == "sample_city.community_care"
    assert "サンプル市" in refs[0].reason and "サンプル" in refs[0].reason
    ids = [r.resource.id for r in refs]
    assert "community_care_center_guide" not in ids  # the local one replaces the guide


def test_area_from_understanding_and_limits(kb: KnowledgeBase) -> None:
    u = _u("drugs", audience="family", area=SAMPLE_AREA)
    refs = kb.route(u)
    ids = [r.resource.id for r in refs]
    assert len(ids) == len(set(ids)) <= 3
    assert "sample_pref.mental_health_center" in ids
    assert len(kb.route(u, limit=1)) == 1
    assert all(r.reason for r in refs)


def test_topic_audience_and_inactive_filters(kb: KnowledgeBase) -> None:
    family = [r.resource.id for r in kb.route(_u("drugs", audience="family"), None, limit=5)]
    assert "self_help_na" not in family  # NA is for the person themself
    self_ids = [r.resource.id for r in kb.route(_u("alcohol", audience="self"), None, limit=5)]
    assert "self_help_na" not in self_ids and "self_help_ga" not in self_ids
    kb.deactivate_resource("mental_health_center_guide", actor="test")
    again = [r.resource.id for r in kb.route(_u("drugs", audience="family"), None, limit=5)]
    assert "mental_health_center_guide" not in again


def test_urgent_crisis_gives_emergency_numbers(kb: KnowledgeBase) -> None:
    u = Understanding(
        topics=(TopicScore("violence", 1.0),), crisis="urgent", crisis_categories=("danger_now",)
    )
    refs = kb.route(u, None)
    assert refs[0].resource.kind == "emergency"
    assert refs[0].resource.phone in {"110", "119"}


def test_open_resources_first_among_equals(kb: KnowledgeBase) -> None:
    u = Understanding(topics=(TopicScore("isolation", 1.0),), crisis="concern")
    kinds = [c.kind for c in _route_kinds(u)]
    assert "crisis_line" in kinds
    night = datetime(2026, 11, 25, 3, 0, tzinfo=JST)  # Wednesday 03:00
    evening = datetime(2026, 11, 25, 18, 0, tzinfo=JST)
    at_night = [r.resource for r in kb.route(u, None, limit=5, now=night)]
    lines = [r for r in at_night if r.kind == "crisis_line"]
    assert lines[0].always_open  # only the 24-hour line is open at 3 a.m.
    in_evening = [r.resource for r in kb.route(u, None, limit=5, now=evening)]
    first_line = next(r for r in in_evening if r.kind == "crisis_line")
    assert kb.open_now(first_line, evening) is True
