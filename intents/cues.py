"""Audience (who is writing) and age group (of the person of concern) from cue hits."""

from __future__ import annotations

import re

from intents.matcher import Hit, Views
from intents.rules import cue_rules

# Equal scores: a stated role beats a relation, a relation beats the first person.
_AUDIENCE_ORDER = ("supporter", "family", "self", "resident")
# Age patterns read a number (their group ``n`` goes through int()).
_DIGIT = re.compile(r"\d")
_AGE_ORDER = ("minor", "elderly", "adult")
# A cue rule counts at most this often: 「息子は…主人は…」 is more family than one mention.
_RULE_REPEATS = 2


def _best(scores: dict[str, float], order: tuple[str, ...]) -> str | None:
    if not scores:
        return None
    top = max(scores.values())
    return next(label for label in order if scores.get(label) == top)


def _sum_by_label(hits: list[Hit]) -> dict[str, float]:
    """Sum cue weights per label.

    Overlapping hits of one label count once (the strongest), and each rule counts at most twice,
    so one word matched by two patterns, or repeated, does not outvote the rest.
    """
    scores: dict[str, float] = {}
    by_label: dict[str, list[Hit]] = {}
    for h in hits:
        by_label.setdefault(h.label, []).append(h)
    for label, group in by_label.items():
        group.sort(key=lambda h: (h.start, -h.weight))
        used: dict[str, int] = {}
        total = 0.0
        end = -1
        best = 0.0
        best_rule = ""
        for h in group:
            if h.start >= end:  # a new cluster of overlapping hits
                if best_rule:
                    used[best_rule] = used.get(best_rule, 0) + 1
                total += best
                best, best_rule = 0.0, ""
            end = max(end, h.end)
            if used.get(h.rule, 0) < _RULE_REPEATS and h.weight > best:
                best, best_rule = h.weight, h.rule
        scores[label] = total + best
    return scores


def decide_audience(hits: list[Hit], *, has_topic: bool) -> str:
    """Pick who is writing from audience cue hits.

    Args:
        hits: hits of the audience cues.
        has_topic: whether a topic was found (then the default is the writer themself).

    Returns:
        An audience id.
    """
    best = _best(_sum_by_label(hits), _AUDIENCE_ORDER)
    if best:
        return best
    return cue_rules().default_audience_with_topic if has_topic else "unknown"


def age_number_hits(views: Views) -> list[Hit]:
    """Hits for ages written as numbers (80歳, 70代, 父（72）), labelled with the age group.

    Args:
        views: the message views.

    Returns:
        One hit per age found.
    """
    hits: list[Hit] = []
    if not _DIGIT.search(views.surface_kana):  # every age pattern needs a number
        return hits
    for r in cue_rules().age_numbers:
        for m in r.regex.finditer(views.surface_kana):
            n = int(m.group("n"))
            decade = "unit" in r.regex.groupindex and m.group("unit")
            if decade:
                # 「60代後半」: the late sixties are over 65
                late = "late" in r.regex.groupindex and m.group("late") and n >= 60
                label = "minor" if n < 20 else "elderly" if n >= 70 or late else "adult"
            else:
                if n > 120:
                    continue
                label = "minor" if n < 18 else "elderly" if n >= 65 else "adult"
            start, end = views.surface_span(m.start(), m.end())
            hits.append(Hit("age_group", label, r.rule, start, end, r.weight))
    return hits


def decide_age(hits: list[Hit], topic: str) -> str:
    """Pick the age group of the person of concern.

    Args:
        hits: age cue hits (words and numbers).
        topic: the primary topic (juvenile and child abuse imply a minor).

    Returns:
        An age group id.
    """
    scores = _sum_by_label(hits)
    implied = cue_rules().topic_age.get(topic)
    if implied:  # the person of concern in child abuse or delinquency is a child
        return implied
    return _best(scores, _AGE_ORDER) or "unknown"
