"""Every shipped rule file loads and validates; broken rule files are refused."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from intents import rules
from intents.rules import AGE_GROUPS, AUDIENCES, TOPICS, RuleError


def test_every_shipped_rule_file_loads() -> None:
    names = sorted(p.name for p in resources.files("intents").joinpath("rules").iterdir())
    assert set(rules.RULE_FILES) <= set(names)
    for name in names:  # all YAML parses (crisis.yaml and pii.yaml have their own loaders)
        assert isinstance(
            yaml.safe_load(resources.files("intents").joinpath("rules", name).read_text("utf-8")),
            dict | list,
        )
    rules.load_all()
    from intents import crisis

    assert crisis.rules()  # crisis.yaml: validated by its own loader
    assert len(rules.topic_rules().keywords) > 300


def test_ids_match_the_shared_taxonomy() -> None:
    from knowledge.taxonomy import load_taxonomy

    tax = load_taxonomy()
    assert set(TOPICS) == set(tax.topics)
    assert set(AUDIENCES) == set(tax.audiences)
    assert set(AGE_GROUPS) == set(tax.age_groups)


def test_every_topic_has_keywords_and_priority() -> None:
    tr = rules.topic_rules()
    assert {k.label for k in tr.keywords} == set(TOPICS) - {"other"}
    assert sorted(tr.scoring.priority) == sorted(set(TOPICS) - {"other"})


def test_gazetteer_codes() -> None:
    g = rules.gazetteer()
    real_prefs = [p for p in g.prefectures if p.code != "99"]
    real_munis = [m for m in g.municipalities if m.prefecture_code != "99"]
    assert len(real_prefs) == 47
    codes = {m.name: m.code for m in g.municipalities}
    wards = [m for m in real_munis if m.code.startswith("131")]
    assert len(wards) == 23
    assert codes["千代田区"] == "131016"  # JIS X 0402 with check digit
    assert codes["新宿区"] == "131041"
    assert codes["札幌市"] == "011002"
    assert len([m for m in real_munis if m.name.endswith("市")]) == 20  # designated cities
    # The only other places are the fictional ones of the shipped samples.
    assert {(p.name, p.code) for p in g.prefectures} - {(p.name, p.code) for p in real_prefs} == {
        ("サンプル県", "99")
    }
    assert codes["サンプル市"] == "999999"


def _load_with(monkeypatch: pytest.MonkeyPatch, name: str, data: object) -> None:
    real = rules._read

    def fake(n: str) -> object:
        return data if n == name else real(n)

    monkeypatch.setattr(rules, "_read", fake)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["topics"].update({"weather": {"keywords": {3: ["雨"]}}}), "unknown topic"),
        (lambda d: d["topics"]["theft"]["keywords"].update({-1: ["x"]}), "positive number"),
        (lambda d: d["topics"]["theft"].update({"patterns": {3: ["(unclosed"]}}), "bad pattern"),
        (lambda d: d["topics"]["theft"].update({"extra": 1}), "only 'keywords'"),
        (lambda d: d["topics"].pop("drugs"), "no rules for"),
        (lambda d: d["scoring"]["priority"].pop(), "priority"),
    ],
)
def test_broken_topics_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, mutate: object, message: str
) -> None:
    text = resources.files("intents").joinpath("rules", "topics.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    mutate(data)  # type: ignore[operator]
    _load_with(monkeypatch, "topics.yaml", data)
    rules.topic_rules.cache_clear()
    try:
        with pytest.raises(RuleError, match=message):
            rules.topic_rules()
    finally:
        rules.topic_rules.cache_clear()


def test_broken_cues_and_areas_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = resources.files("intents").joinpath("rules", "cues.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    data["audience"]["teacher"] = {"patterns": {3: ["先生"]}}
    _load_with(monkeypatch, "cues.yaml", data)
    rules.cue_rules.cache_clear()
    try:
        with pytest.raises(RuleError, match="unknown label"):
            rules.cue_rules()
    finally:
        rules.cue_rules.cache_clear()
    areas = yaml.safe_load(
        resources.files("intents").joinpath("rules", "areas.yaml").read_text("utf-8")
    )
    areas["prefectures"].pop()
    _load_with(monkeypatch, "areas.yaml", areas)
    rules.gazetteer.cache_clear()
    try:
        with pytest.raises(RuleError, match="01–47"):
            rules.gazetteer()
    finally:
        rules.gazetteer.cache_clear()
