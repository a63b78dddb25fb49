"""Typo-tolerant keyword matching with rapidfuzz (``partial_ratio`` + score cutoff only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from intents.matcher import Hit, Views, compiled_keywords
from intents.normalize import fold, normalize
from intents.rules import KeywordRule

# Measured with bench/fuzzy.py (table in README): only katakana loanwords of at least
# MIN_CHARS characters are matched fuzzily (ギャンプル, クレプトマニヤ, オーバードース).
# Kanji words meet their typos through the reading view instead (認知しょう, 保護士), and
# phrases with hiragana (寝るところ, 出てきます) match ordinary grammar when fuzzy.
# With these values one replaced character is found in every candidate and no labelled
# message gains a fuzzy hit for a topic it is not about. Shorter words (スリ, ボート) never
# match fuzzily: one changed character in a short word is another word.
MIN_CHARS = 5
SCORE_CUTOFF = 80.0
_KATAKANA_WORD = re.compile("[\u30a1-\u30faー]+")
# A fuzzy match counts for less than the exact word.
FUZZY_FACTOR = 0.7
# Ordinary words one letter from a keyword: never a typo of it (インスタのストーリー).
_NOT_TYPOS = frozenset({"ストーリー", "ストーリーズ"})


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: str
    chars: frozenset[str]
    rule: KeywordRule


@lru_cache(maxsize=4)
def _candidates(min_chars: int) -> tuple[_Candidate, ...]:
    out = []
    for r in compiled_keywords().rules:
        key = fold(normalize(r.text))
        if len(key) >= min_chars and _KATAKANA_WORD.fullmatch(normalize(r.text)):
            out.append(_Candidate(key, frozenset(key), r))
    return tuple(out)


def _word_start_ok(surface: str, start: int, key: str) -> bool:
    """A window inside a longer katakana word must begin like the keyword.

    ネットギャンプル keeps ギャ of ギャンブル; ケースワーカー holds スワーカー, one letter from
    ストーカー, but it is another word whose middle only looks like it.
    """
    if start == 0 or not _KATAKANA_WORD.match(surface[start - 1]):
        return True
    return surface[start : start + 2] == key[:2]


def _whole_word(surface: str, start: int, end: int) -> str:
    """The katakana word around a span of the normalised text."""
    while start > 0 and _KATAKANA_WORD.match(surface[start - 1]):
        start -= 1
    while end < len(surface) and _KATAKANA_WORD.match(surface[end]):
        end += 1
    return surface[start:end]


def fuzzy_hits(
    views: Views,
    exact_rules: set[str],
    *,
    min_chars: int = MIN_CHARS,
    cutoff: float = SCORE_CUTOFF,
) -> list[Hit]:
    """Find keywords written with one typo that the exact matchers missed.

    Args:
        views: the message views.
        exact_rules: rule ids already matched exactly (skipped here).
        min_chars: shortest folded keyword that may match fuzzily.
        cutoff: rapidfuzz ``partial_ratio`` score a match needs (0–100).

    Returns:
        Fuzzy hits (weight reduced by FUZZY_FACTOR), spans in the normalised text.
    """
    surface = views.surface
    if not surface:
        return []
    present = frozenset(surface)
    hits: list[Hit] = []
    for c in _candidates(min_chars):
        if c.rule.rule in exact_rules or len(c.chars & present) < len(c.chars) - 1:
            continue
        res = fuzz.partial_ratio_alignment(c.key, surface, score_cutoff=cutoff)
        # A typo keeps the word's length give or take one; a shorter window is a prefix.
        if res is None or res.dest_end - res.dest_start < len(c.key) - 1:
            continue
        if not _word_start_ok(surface, res.dest_start, c.key):
            continue
        start, end = views.surface_span(res.dest_start, res.dest_end)
        # The word as written (the folded surface turns every kana into katakana).
        if _whole_word(views.analysis.text, start, end) in _NOT_TYPOS:
            continue
        hits.append(
            Hit(
                "topic",
                c.rule.label,
                c.rule.rule,
                start,
                end,
                c.rule.weight * FUZZY_FACTOR,
                fuzzy=True,
            )
        )
    return hits
