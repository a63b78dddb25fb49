"""Fuzzy matching: one typo in a long katakana word matches; short words and grammar never."""

from __future__ import annotations

import pytest

from intents import understand
from intents.fuzzy import MIN_CHARS, SCORE_CUTOFF, _candidates, fuzzy_hits
from intents.matcher import build_views, match_keywords
from intents.tokenizer import analyse

pytestmark = pytest.mark.usefixtures("sudachi")


def _fuzzy_labels(text: str) -> set[str]:
    v = build_views(analyse(text))
    return {h.label for h in fuzzy_hits(v, {h.rule for h in match_keywords(v)})}


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("ギャンプルがやめられない", "gambling"),
        ("妻がクレプトマニヤかもしれない", "theft"),
        ("オーバードースしてしまう", "drugs"),
        ("オンラインカジソにはまった", "gambling"),
        ("ネットギャンプルにはまる", "gambling"),  # a typo inside a compound
    ],
)
def test_one_typo_in_a_long_katakana_word_matches(text: str, topic: str) -> None:
    assert topic in _fuzzy_labels(text)
    u = understand(text)
    assert u.topic == topic
    assert any(e.fuzzy and e.label == topic for e in u.evidence)


@pytest.mark.parametrize(
    "text",
    [
        "仕事で出てきます。寝るところはあります",  # hiragana phrases are never fuzzy
        "詐欺の受け子をさせられた",  # けがをさせ ≠ け子をさせ
        "保護観察の面接です",  # a prefix of 保護観察所 is not a typo of it
        "スリッパを買った",  # short words (スリ) are never fuzzy
        "ケースワーカーです",  # スワーカー inside another word is not ストーカー
        "インスタのストーリーに写真を上げた",  # an ordinary word one letter from ストーカー
        "ボードゲームで遊んだ",
        "明日の天気おしえて",
        "iPhoneの充電がすぐなくなる",
    ],
)
def test_no_false_fuzzy_matches(text: str) -> None:
    assert _fuzzy_labels(text) == set()


def test_thresholds_and_candidates() -> None:
    assert MIN_CHARS >= 5 and SCORE_CUTOFF >= 80
    cands = _candidates(MIN_CHARS)
    assert cands and all(len(c.key) >= MIN_CHARS for c in cands)


def test_labelled_messages_gain_no_wrong_fuzzy_topic() -> None:
    """The measurement behind the thresholds (bench/fuzzy.py), kept as a regression test."""
    from pathlib import Path

    import yaml

    data = Path(__file__).resolve().parent.parent / "data"
    items = yaml.safe_load((data / "dev.yaml").read_text("utf-8"))
    items += yaml.safe_load((data / "intent_cases.yaml").read_text("utf-8"))
    wrong = [i["id"] for i in items if _fuzzy_labels(i["text"]) - set(i["topic"])]
    assert wrong == []
