"""Normalisation and folding."""

from __future__ import annotations

import pytest

from intents.normalize import fold, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﾏﾝﾋﾞｷ", "マンビキ"),  # half-width katakana
        ("ＡＡに行きたい", "AAに行きたい"),  # full-width ASCII
        ("助けて！！！！", "助けて!"),  # repeated punctuation
        ("つらい😭😭", "つらい"),  # emoji
        ("死\u200bにたい", "死にたい"),  # zero-width space
        ("a\x00b", "a b"),  # control characters
        ("  前後の空白  ", "前後の空白"),
        ("\ud800壊れた", "壊れた"),  # lone surrogate
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("まんびき", "マンビキ"),
        ("しゃぶ", "シャブ"),
        ("ぱちんこ", "パチンコ"),
        ("ギャンブル", "ぎゃんぶる"),
        ("ｺｰﾋｰ", "コ-ヒ-"),  # long-vowel variants
        ("ＧＡ", "ga"),
    ],
)
def test_fold_meets(a: str, b: str) -> None:
    assert fold(normalize(a)) == fold(normalize(b))
