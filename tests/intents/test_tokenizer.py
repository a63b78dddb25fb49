"""Sudachi tokenisation and the Analysis built on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intents.tokenizer import MAX_ANALYSIS_CHARS, analyse, reading_of, tokenize

pytestmark = pytest.mark.usefixtures("sudachi")


def test_tokens_carry_forms_and_offsets() -> None:
    text = "覚せい剤と万引をした"
    tokens = tokenize(text)
    assert "".join(t.surface for t in tokens) == text
    for t in tokens:
        assert text[t.start : t.end] == t.surface
    by_surface = {t.surface: t for t in tokens}
    assert by_surface["万引"].normalized == "万引き"  # normalized form
    assert by_surface["覚せい剤"].reading == "カクセイザイ"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("まんびき", "万引き"),
        ("ﾏﾝﾋﾞｷ", "万引き"),
        ("かくせいざい", "覚醒剤"),
        ("ほごかんさつ", "保護観察"),
    ],
)
def test_reading_meets_across_scripts(a: str, b: str) -> None:
    assert analyse(a).reading == analyse(b).reading


def test_reading_keeps_numbers_and_latin() -> None:
    tokens = tokenize("78歳 AA")
    assert [reading_of(t) for t in tokens if t.surface in ("78", "AA")] == ["78", "AA"]


def test_empty_and_symbol_only() -> None:
    for raw in ("", "   ", "😭😭😭", "\x00\x01"):
        a = analyse(raw)
        assert a.tokens == () or all(t.surface.strip() == "" for t in a.tokens)


def test_long_input_is_cut_not_rejected() -> None:
    a = analyse("万引きがやめられません。" * 10_000)
    assert a.truncated
    assert len(a.text) == MAX_ANALYSIS_CHARS
    assert a.tokens[-1].end <= len(a.text)
    # Offsets stay exact across the chunks Sudachi is given.
    assert all(a.text[t.start : t.end] == t.surface for t in a.tokens)
    assert all(x.end == y.start for x, y in zip(a.tokens, a.tokens[1:], strict=False))


def test_recent_results_are_reused_and_the_memo_stays_small() -> None:
    from intents import tokenizer

    first = tokenizer.tokenize("息子が万引きをしました")
    assert tokenizer.tokenize("息子が万引きをしました") is first  # one turn reads it thrice
    for n in range(tokenizer._RECENT + 5):
        tokenizer.tokenize(f"テスト{n}です")
    assert len(tokenizer._recent) <= tokenizer._RECENT
    again = tokenizer.tokenize("息子が万引きをしました")
    assert again == first and again is not first  # pushed out, tokenised afresh
    long_text = "あ" * (tokenizer._RECENT_MAX_CHARS + 1)
    tokenizer.tokenize(long_text)
    assert long_text not in tokenizer._recent


def test_cached_word_forms_give_the_same_tokens_as_fresh_ones() -> None:
    from intents import tokenizer

    # Out-of-vocabulary words share one id per POS; their forms must come from the surface.
    text = "クレプトマニアとクレプトマニヤ、80歳と74歳、ＡＡとNAに通う。盗んだ物を返した"
    tokenizer._words.clear()
    tokenizer._recent.clear()
    fresh = tokenizer.tokenize(text)
    tokenizer._recent.clear()
    cached = tokenizer.tokenize(text)
    assert cached == fresh
    by_surface = {t.surface: t for t in cached}
    assert by_surface["80"].kana == "80" and by_surface["74"].kana == "74"
    assert by_surface["盗ん"].dictionary == "盗む"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_tokens_tile_the_text_with_their_offsets(raw: str) -> None:
    a = analyse(raw)
    position = 0
    for t in a.tokens:
        assert t.start == position and a.text[t.start : t.end] == t.surface
        position = t.end
    assert position == len(a.text)
