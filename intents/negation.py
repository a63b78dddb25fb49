"""Negation (〜ていない, やめた, もう〜ない) and time (昔, 以前) around topic keywords."""

from __future__ import annotations

import re
from functools import lru_cache

from intents.literals import GateIndex, gate_of
from intents.matcher import Hit, Views
from intents.normalize import fold, kana_key
from intents.rules import cue_rules

# The clause after a keyword ends at sentence punctuation, a comma or a contrast.
_CLAUSE_END = re.compile(r"[。!?\n、,]|けど|けれど|でも|のに|が、")
_SENTENCE_START = re.compile(r"[。!?\n]")
_WINDOW = 16


def _after(text: str, end: int) -> str:
    window = text[end : end + _WINDOW]
    m = _CLAUSE_END.search(window, 1)
    if m:
        window = window[: m.start()]
    return kana_key(fold(window))


def is_negated(views: Views, hit: Hit) -> bool:
    """Whether the clause after a topic hit negates it (「暴力はふるいません」).

    Clauses that say the person cannot stop (「やめられない」) are not negations.

    Args:
        views: the message views.
        hit: a topic hit.

    Returns:
        True when the topic is negated there.
    """
    cues = cue_rules()
    clause = _after(views.analysis.text, hit.end)
    if not clause:
        return False
    after = _after_gates(cues.negation_after).candidates(clause)
    if not after:  # no negation cue can match this clause (most hits)
        return False
    # The hit itself may end inside the cue (a pattern matching 「やめられ」 before 「ない」).
    text = views.analysis.text
    probe = kana_key(fold(text[max(hit.start, hit.end - 4) : hit.end])) + clause
    if any(p.search(probe) for p in cues.negation_unless):
        return False
    return any(cues.negation_after[i].search(clause) for i in sorted(after))


@lru_cache(maxsize=4)
def _after_gates(patterns: tuple[re.Pattern[str], ...]) -> GateIndex:
    return GateIndex([gate_of(p) for p in patterns])


def past_spans(views: Views, past_hits: list[Hit]) -> list[tuple[int, int]]:
    """Spans of the text (from a past cue to the end of its sentence) placed in the past.

    Args:
        views: the message views.
        past_hits: hits of the ``time.past`` cues.

    Returns:
        ``(start, end)`` spans in the normalised text.
    """
    text = views.analysis.text
    spans = []
    for h in past_hits:
        m = _SENTENCE_START.search(text, h.end)
        spans.append((h.start, m.start() if m else len(text)))
    return spans


def in_past(hit: Hit, spans: list[tuple[int, int]]) -> bool:
    """Whether a hit lies inside a past span."""
    return any(s <= hit.start < e for s, e in spans)
