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


@pytest.mark.parametrize(
    "text",
    ["マンビキ ガ", "ケース-ワーカ-", "a-b AB しゃぶ~", "İx 〜--a", "", "   ", "ｶﾞ ﾊﾟﾁﾝｺ"],
)
def test_fold_with_offsets_maps_back(text: str) -> None:
    from intents.normalize import fold_with_offsets

    text = normalize(text) if text.strip() else text
    folded, offsets = fold_with_offsets(text)
    assert folded == fold(text)
    assert len(offsets) == len(folded)
    assert all(0 <= i < len(text) for i in offsets)
    assert list(offsets) == sorted(offsets)


def test_pattern_key_folds_kana_only() -> None:
    from intents.normalize import kana_key, pattern_key

    assert pattern_key(r"(シャブ|\d+歳)\S") == r"(しやぶ|\d+歳)\S"
    assert kana_key(fold("シャブ")) == "しやぶ"
