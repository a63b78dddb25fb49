"""Tests for intents.crisis: every rule fires, harmless idioms stay quiet, dev-set recall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from intents import crisis
from intents.tokenizer import analyse
from intents.types import CrisisAssessment

DATA = Path(__file__).resolve().parent.parent / "data"
CASES: dict[str, Any] = yaml.safe_load((DATA / "crisis_cases.yaml").read_text("utf-8"))


def _assess(text: str) -> CrisisAssessment:
    return crisis.assess(analyse(text))


def _dev_items() -> list[dict[str, Any]]:
    return yaml.safe_load((DATA / "dev.yaml").read_text("utf-8"))


@pytest.mark.parametrize("case", CASES["positive"], ids=lambda c: f"{c['rule']}:{c['text'][:20]}")
def test_positive_case(case: dict[str, str], sudachi: None) -> None:
    result = _assess(case["text"])
    assert result.level == case["level"], result
    assert case["rule"] in {e.rule for e in result.evidence}, result
    assert all(e.kind == "crisis" for e in result.evidence)
    assert set(result.categories) <= set(crisis.CATEGORIES)


def test_every_rule_has_a_positive_case() -> None:
    tested = {c["rule"] for c in CASES["positive"]}
    shipped = {r.id for r in crisis.rules().rules}
    assert shipped - tested == set()
    assert tested - shipped == set()


@pytest.mark.parametrize("text", CASES["harmless"])
def test_harmless_does_not_alarm(text: str, sudachi: None) -> None:
    result = _assess(text)
    assert result.level == "none", result


@pytest.mark.parametrize("case", CASES["negated"], ids=lambda c: c["text"][:20])
def test_clear_denial(case: dict[str, str], sudachi: None) -> None:
    assert _assess(case["text"]).level == case["level"]


@pytest.mark.parametrize("case", CASES["past"], ids=lambda c: c["text"][:20])
def test_past_lowers_urgent_to_concern(case: dict[str, str], sudachi: None) -> None:
    assert _assess(case["text"]).level == case["level"]


def test_categories_and_evidence(sudachi: None) -> None:
    result = _assess("今夫が包丁を振り回しています。もう死にたい")
    assert result.level == "urgent"
    assert result.categories[:2] == ("suicidal", "danger_now")
    rules = {e.rule: e for e in result.evidence}
    assert rules["danger.weapon"].label == "urgent"
    assert rules["suicidal.want_to_die"].label == "concern"


def test_empty_and_neutral(sudachi: None) -> None:
    assert _assess("") == CrisisAssessment(level="none")
    assert _assess("相談したいです").level == "none"


def test_dev_set_recall_and_false_alarms(sudachi: None) -> None:
    items = _dev_items()
    flagged = [i for i in items if i["crisis"] != "none"]
    calm = [i for i in items if i["crisis"] == "none"]
    missed = [i["id"] for i in flagged if _assess(i["text"]).level == "none"]
    alarms = [i["id"] for i in calm if _assess(i["text"]).level != "none"]
    urgent_missed = [
        i["id"]
        for i in flagged
        if i["crisis"] == "urgent" and _assess(i["text"]).level != "urgent"
    ]
    assert missed == []
    assert urgent_missed == []
    assert len(alarms) / len(calm) <= 0.03, alarms


def test_dev_copy_is_verbatim() -> None:
    shared = Path("/work/shared/eval/dev.yaml")
    if not shared.exists():
        pytest.skip("shared folder not present outside the development machine")
    assert (DATA / "dev.yaml").read_bytes() == shared.read_bytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "version"),
        ({"version": 1, "markers": {"past": ["昔"]}, "rules": []}, "denial"),
        (
            {"version": 1, "markers": {"past": ["昔"], "denial": ["ない"]}, "rules": []},
            "rules",
        ),
        (
            {
                "version": 1,
                "markers": {"past": ["昔"], "denial": ["ない"]},
                "rules": [{"id": "x", "level": "high", "category": "suicidal", "patterns": ["a"]}],
            },
            "level",
        ),
        (
            {
                "version": 1,
                "markers": {"past": ["昔"], "denial": ["ない"]},
                "rules": [{"id": "x", "level": "concern", "category": "sad", "patterns": ["a"]}],
            },
            "category",
        ),
        (
            {
                "version": 1,
                "markers": {"past": ["昔"], "denial": ["ない"]},
                "rules": [
                    {"id": "x", "level": "concern", "category": "suicidal", "patterns": ["("]}
                ],
            },
            "regex",
        ),
        (
            {
                "version": 1,
                "markers": {"past": ["昔"], "denial": ["ない"]},
                "rules": [
                    {"id": "x", "level": "concern", "category": "suicidal", "patterns": ["A"]}
                ],
            },
            "lower-case",
        ),
        (
            {
                "version": 1,
                "markers": {"past": ["昔"], "denial": ["ない"]},
                "rules": [
                    {"id": "x", "level": "concern", "category": "suicidal", "patterns": ["a"]},
                    {"id": "x", "level": "concern", "category": "suicidal", "patterns": ["b"]},
                ],
            },
            "duplicate",
        ),
        (
            {
                "version": 1,
                "markers": {"past": ["昔"], "denial": ["ない"]},
                "rules": [
                    {
                        "id": "x",
                        "level": "concern",
                        "category": "suicidal",
                        "patterns": ["a"],
                        "unless": ["nope"],
                    }
                ],
            },
            "unless",
        ),
    ],
)
def test_schema_errors(data: Any, message: str) -> None:
    with pytest.raises(crisis.CrisisRulesError, match=message):
        crisis.parse_rules(data)
