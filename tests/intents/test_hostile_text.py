"""Hostile input: crisis assessment and masking never raise and never hang on any Unicode."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intents.crisis import assess
from intents.pii import mask
from intents.tokenizer import analyse
from intents.types import CrisisAssessment

# Characters that break naive code: lone surrogates, bidi controls, zero-width joiners,
# combining marks, variation selectors, half-width kana marks, emoji pieces, full-width
# digits and the kanji numerals the masker converts.
_TRICKY = [
    "\ud800",
    "\udfff",
    "\u202e",
    "\u202d",
    "\u2066",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u0301",
    "\u0336",
    "\u3099",
    "\u309a",
    "\uff9e",
    "\uff9f",
    "\ufe0f",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "\U0001f1ef\U0001f1f5",
    "\x00",
    "\x1b",
    "\r",
    "\n",
    "\t",
    "\u3000",
    "０",
    "〇",
    "九",
    "-",
    "ー",
    "@",
    "〒",
    "死",
    "殺",
    "さん",
    "丁目",
    "090",
    "ｼﾆﾀｲ",
]

_hostile = st.lists(
    st.one_of(
        st.sampled_from(_TRICKY),
        st.characters(codec=None, exclude_categories=()),
        st.text(max_size=20),
    ),
    max_size=60,
).map("".join)

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_hostile)
def test_assess_never_raises(text: str) -> None:
    result = assess(analyse(text))
    assert isinstance(result, CrisisAssessment)
    assert result.level in ("none", "concern", "urgent")


@_SETTINGS
@given(_hostile)
def test_mask_never_raises_and_spans_are_sane(text: str) -> None:
    result = mask(text)
    last = 0
    for span in result.spans:
        assert last <= span.start < span.end <= len(text)
        last = span.end
    # Everything outside the spans is kept verbatim, each span becomes its placeholder.
    rebuilt, pos = [], 0
    for span in result.spans:
        rebuilt += [text[pos : span.start], f"<{span.kind}>"]
        pos = span.end
    rebuilt.append(text[pos:])
    assert result.text == "".join(rebuilt)


_BIG = [
    "あ" * 100_000,
    "死" * 100_000,
    "0" * 100_000,
    "0-" * 50_000,
    "1-" * 50_000,
    "a" * 100_000,
    "a." * 50_000,
    "a@" * 50_000,
    "東京都新宿区" * 16_000,
    "田中さん" * 25_000,
    "〇九〇" * 33_000,
    "死にたい。" * 20_000,
    "\u0301" * 100_000,
    "\U0001f468\u200d" * 25_000,
    "\ud800" * 100_000,
]


@pytest.mark.slow
@pytest.mark.parametrize("text", _BIG, ids=lambda t: f"{t[:3]!r}x{len(t)}")
def test_100k_strings_finish(text: str, sudachi: None) -> None:
    t0 = time.perf_counter()
    assess(analyse(text))
    result = mask(text)
    elapsed = time.perf_counter() - t0
    assert len(result.text) > 0
    # Not a speed test (bench/ measures speed); this catches catastrophic backtracking.
    assert elapsed < 30, elapsed
