"""Routing: topic × audience × age group × crisis → ranked resource kinds with reasons."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from intents.types import TopicScore, Understanding
from knowledge.routing import KindChoice, RoutingError, parse_table, route_kinds, routing_table
from knowledge.taxonomy import load_taxonomy


def _u(topic: str = "other", score: float = 3.0, **kw: object) -> Understanding:
    topics = (TopicScore(topic, score),) if topic != "other" else (TopicScore("other", 0.0),)
    return Understanding(topics=topics, **kw)  # type: ignore[arg-type]


def _kinds(u: Understanding) -> list[str]:
    return [c.kind for c in route_kinds(u)]


def test_table_loads_and_covers_every_topic() -> None:
    table = routing_table()
    tax = load_taxonomy()
    assert {r.topic for r in table.routes} >= set(tax.topics) - {"other"}
    for r in table.routes:
        assert all(c.kind in tax.resource_kinds and c.reason.endswith("です") for c in r.kinds)


def test_elderly_theft_goes_to_the_community_care_center_first() -> None:
    first = route_kinds(_u("theft", audience="family", age_group="elderly"))[0]
    assert first == KindChoice(
        "community_care_center",
        "高齢の方の万引きは、認知症や孤立など生活全体の支えが必要なことが多いためです",
    )


@pytest.mark.parametrize(
    ("u", "first"),
    [
        (_u("theft", audience="self", age_group="adult"), "mental_health_center"),
        (_u("theft", age_group="minor"), "juvenile_support_center"),
        (_u("drugs", audience="family", age_group="adult"), "family_group"),
        (_u("child_abuse", age_group="minor"), "child_guidance_center"),
        (_u("housing", age_group="elderly"), "settlement_support_center"),
        (_u("employment", audience="supporter"), "probation_office"),
        (_u("victim"), "victim_support"),
        (_u("legal"), "legal_support"),
    ],
)
def test_rules_pick_the_most_specific(u: Understanding, first: str) -> None:
    assert _kinds(u)[0] == first


def test_out_of_scope_gets_nothing() -> None:
    assert route_kinds(_u(in_scope=False)) == ()


def test_vague_opener_gets_general_desks() -> None:
    kinds = _kinds(_u())
    assert kinds[:2] == ["probation_office", "municipal_welfare"]
    assert "family_group" in _kinds(_u(audience="family"))[:3]


def test_crisis_comes_first() -> None:
    concern = _kinds(_u("gambling", crisis="concern", crisis_categories=("suicidal",)))
    assert concern[0] == "crisis_line"
    assert "self_help_group" in concern
    urgent = _kinds(_u("drugs", crisis="urgent", crisis_categories=("overdose",)))
    assert urgent[:2] == ["emergency", "crisis_line"]


def test_danger_from_another_person_is_emergency_only_when_nothing_else_is_known() -> None:
    assert _kinds(_u(crisis="urgent", crisis_categories=("danger_now",))) == ["emergency"]
    kinds = _kinds(_u("violence", crisis="urgent", crisis_categories=("danger_now",)))
    assert kinds[0] == "emergency" and "crisis_line" not in kinds


def test_second_topic_fills_the_list_and_limit_holds() -> None:
    u = Understanding(topics=(TopicScore("gambling", 4.0), TopicScore("housing", 3.0)))
    kinds = _kinds(u)
    assert kinds[0] == "self_help_group" and len(kinds) == 5 == len(set(kinds))
    assert len(route_kinds(u, limit=2)) == 2
    assert route_kinds(u, limit=0) == ()


def test_a_close_second_worry_gets_a_place_in_the_first_three() -> None:
    close = Understanding(
        topics=(TopicScore("sexual", 4.0), TopicScore("legal", 3.0)), audience="family"
    )
    assert "legal_support" in _kinds(close)[:3]
    assert _kinds(close)[0] == _kinds(_u("sexual", 4.0, audience="family"))[0]
    distant = Understanding(
        topics=(TopicScore("sexual", 4.0), TopicScore("legal", 2.5)), audience="family"
    )
    assert _kinds(distant)[:3] == _kinds(_u("sexual", 4.0, audience="family"))[:3]


def _data() -> dict:
    return yaml.safe_load(
        resources.files("knowledge").joinpath("data/routing.yaml").read_text("utf-8")
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["routes"][0]["kinds"].append("library"), "unknown resource kind"),
        (lambda d: d["routes"][0].update({"topic": "weather"}), "unknown topic"),
        (lambda d: d["routes"][0].update({"age_group": ["teen"]}), "taxonomy"),
        (lambda d: d["reasons"].pop("emergency"), "every kind"),
        (lambda d: d["crisis"]["urgent"]["default"].reverse(), "emergency first"),
        (
            lambda d: d.update({"routes": [r for r in d["routes"] if r["topic"] != "legal"]}),
            "legal",
        ),
        (lambda d: d["routes"][0]["kinds"].append({"legal_support": " "}), "reason"),
    ],
)
def test_broken_tables_are_refused(mutate: object, message: str) -> None:
    data = _data()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(RoutingError, match=message):
        parse_table(data)


@pytest.mark.parametrize("age", ["adult", "elderly"])
def test_childrens_desks_never_for_adults(age: str) -> None:
    for topic in load_taxonomy().topics:
        if topic in {"other", "child_abuse", "juvenile"}:
            continue
        for audience in ("self", "family", "supporter", "resident", "unknown"):
            for crisis in ("none", "concern"):
                u = _u(topic, age_group=age, audience=audience, crisis=crisis)
                assert not {"child_guidance_center", "juvenile_support_center"} & set(_kinds(u)), (
                    topic,
                    audience,
                    crisis,
                )


def test_childrens_desks_kept_when_a_child_is_involved() -> None:
    u = Understanding(
        topics=(TopicScore("violence", 3.0), TopicScore("child_abuse", 2.0)),
        age_group="elderly",
    )
    assert "child_guidance_center" in _kinds(u)
    u = _u("alcohol", age_group="adult", crisis="concern", crisis_categories=("child_in_danger",))
    assert _kinds(u)[0] == "child_guidance_center"


def test_desks_for_older_people_never_for_minors() -> None:
    for topic in load_taxonomy().topics:
        if topic == "other":
            continue
        kinds = set(_kinds(_u(topic, age_group="minor")))
        assert not {"community_care_center", "settlement_support_center"} & kinds, topic


def test_victims_never_get_offender_desks() -> None:
    offender = {"self_help_group", "addiction_clinic", "juvenile_support_center", "family_group"}
    for age in ("minor", "adult", "elderly", "unknown"):
        for audience in ("self", "family", "supporter", "resident", "unknown"):
            u = Understanding(
                topics=(TopicScore("victim", 4.0), TopicScore("sexual", 3.0)),
                age_group=age,
                audience=audience,
            )
            kinds = set(_kinds(u))
            assert not offender & kinds, (age, audience)
            assert {"victim_support", "police_consultation"} & kinds


def test_a_harmed_child_is_not_sent_to_the_delinquency_desk() -> None:
    for first, second in (("violence", "child_abuse"), ("child_abuse", "violence")):
        u = Understanding(
            topics=(TopicScore(first, 4.0), TopicScore(second, 3.0)),
            age_group="minor",
            audience="resident",
        )
        kinds = _kinds(u)
        assert "juvenile_support_center" not in kinds, kinds
        assert "child_guidance_center" in kinds
    # Delinquency as well: the delinquency desk stays possible.
    u = Understanding(
        topics=(TopicScore("juvenile", 4.0), TopicScore("child_abuse", 3.0)), age_group="minor"
    )
    assert "juvenile_support_center" in _kinds(u)


def test_a_child_in_danger_now_is_not_sent_to_the_delinquency_desk() -> None:
    u = Understanding(
        topics=(TopicScore("violence", 4.0), TopicScore("juvenile", 2.0)),
        age_group="minor",
        crisis="urgent",
        crisis_categories=("child_in_danger", "danger_now"),
    )
    kinds = _kinds(u)
    assert kinds[:2] == ["emergency", "child_guidance_center"]
    assert "juvenile_support_center" not in kinds


def test_an_urgent_suicidal_crisis_gets_no_practical_desk_in_the_first_three() -> None:
    u = _u("employment", 4.0, crisis="urgent", crisis_categories=("suicidal",))
    assert _kinds(u)[:3] == ["emergency", "crisis_line", "mental_health_center"]


def test_exclusion_schema_is_checked() -> None:
    data = yaml.safe_load(resources.files("knowledge").joinpath("data/routing.yaml").read_text())
    data["exclude"] = [{"kinds": ["child_guidance_center"]}]
    with pytest.raises(RoutingError, match="condition"):
        parse_table(data)
    data["exclude"] = [{"kinds": ["nope"], "age_group": ["adult"]}]
    with pytest.raises(RoutingError, match="kinds"):
        parse_table(data)
    data["exclude"] = [{"kinds": ["emergency"], "crisis": ["sad"]}]
    with pytest.raises(RoutingError, match="crisis"):
        parse_table(data)
