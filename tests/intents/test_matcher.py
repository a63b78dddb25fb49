"""Keyword and pattern matching over the surface, normalized-form and reading views."""

from __future__ import annotations

import pytest

from intents.matcher import Hit, build_views, drop_contained, match_keywords
from intents.tokenizer import analyse

pytestmark = pytest.mark.usefixtures("sudachi")


def _labels(text: str) -> set[str]:
    return {h.label for h in match_keywords(build_views(analyse(text)))}


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("万引きがやめられない", "theft"),
        ("万引をしてしまった", "theft"),  # normalized form 万引 → 万引き
        ("まんびきしちゃった", "theft"),  # reading
        ("ﾏﾝﾋﾞｷ ｼﾃｼﾏｯﾀ", "theft"),  # half-width katakana
        ("店の物を盗んだ", "theft"),  # conjugated verb via dictionary form
        ("覚醒剤をやめたい", "drugs"),
        ("覚せい剤をやめたい", "drugs"),
        ("シャブがやめられない", "drugs"),
        ("しゃぶがやめられない", "drugs"),
        ("かくせいざいがやめられない", "drugs"),
        ("パチンコに行ってしまう", "gambling"),
        ("ぱちんこに行ってしまう", "gambling"),
        ("パチスロで負けた", "gambling"),
        ("母が認知しょうかも", "health"),  # kana typo of 認知症 meets through the reading
        ("ほごかんさつちゅうです", "probation"),
    ],
)
def test_three_views_meet(text: str, topic: str) -> None:
    assert topic in _labels(text)


def test_spans_point_into_the_normalised_text() -> None:
    a = analyse("ﾁﾁｵﾔ ｶﾞ ﾏﾝﾋﾞｷ ﾃﾞ ﾀｲﾎ")
    hits = match_keywords(build_views(a))
    theft = next(h for h in hits if h.label == "theft")
    assert a.text[theft.start : theft.end] == "マンビキ"


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("これからどうなるの", "violence"),  # どなる must not match inside どうなる
        ("薬物の話", "violence"),  # the reading ブツ of 物 is not ぶつ
        ("協力雇用主として雇った", "theft"),  # 雇った is not 盗った
        ("aaaa battery", "alcohol"),  # AA only as a word
        ("saaas", "sexual"),
        ("鮭を焼いた", "alcohol"),  # a two-kana reading (サケ) is not matched
        ("給食だけが楽しみ", "employment"),  # 給食 sounds like 求職 but is another word
    ],
)
def test_no_false_matches(text: str, absent: str) -> None:
    assert absent not in _labels(text)


def test_latin_keywords_match_as_words() -> None:
    assert "alcohol" in _labels("AAに行ってみたい")
    assert "gambling" in _labels("GAってどこにありますか")


def test_drop_contained_keeps_the_longer_keyword() -> None:
    hits = [
        Hit("topic", "alcohol", "alcohol.kw.飲酒", 0, 2, 3),
        Hit("topic", "alcohol", "alcohol.kw.飲酒運転", 0, 4, 3),
        Hit("topic", "theft", "theft.re0", 0, 10, 2),  # a pattern never swallows others
    ]
    assert {h.rule for h in drop_contained(hits)} == {"theft.re0", "alcohol.kw.飲酒運転"}


def test_kana_and_partial_kanji_spellings_still_meet_by_reading() -> None:
    assert "drugs" in _labels("かくせいざいがやめられない")
    assert "probation" in _labels("保護士さんと合わない")  # a slip that keeps 保護
