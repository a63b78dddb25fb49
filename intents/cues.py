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
    """Hits for ages written as numbers (80歳, 70代, 父（72）, 七十二歳), labelled by age group.

    Args:
        views: the message views.

    Returns:
        One hit per age found.
    """
    text = views.surface_kana
    # Kanji numerals (七十二歳, 八十代, 七十を過ぎて) are read as digits, positions mapped back.
    text, back = _arabic(text) if _KANJI_NUMBER.search(text) else (text, None)
    hits: list[Hit] = []
    if not _DIGIT.search(text):  # every age pattern needs a number
        return hits
    for r in cue_rules().age_numbers:
        for m in r.regex.finditer(text):
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
            i, j = m.start(), m.end()
            if back is not None:
                i, j = back[i], back[j - 1] + 1
            start, end = views.surface_span(i, j)
            hits.append(Hit("age_group", label, r.rule, start, end, r.weight))
    return hits


_KANJI_DIGITS = {c: n for n, c in enumerate("〇一二三四五六七八九")}
# Only numerals an age pattern could read: followed by 歳, 代, を過ぎ, にもなって … (一人,
# 一緒, 一度 are everywhere and would cost a conversion and a scan per message).
_KANJI_NUMBER = re.compile(
    "[一二三四五六七八九十]+(?=歳|才|さい|代|だい|を過ぎ|過ぎ|すぎ|近|手前|にも|にな|の(息子|娘)|\\))"
)


def kanji_number(run: str) -> int | None:
    """The value of a kanji numeral below 100 (七十二 → 72, 十五 → 15, 八 → 8), else None.

    Args:
        run: a run of the characters 一〜九 and 十.

    Returns:
        The number, or None when the run is not one numeral (一一, 十十).
    """
    if run.count("十") > 1:
        return None
    if "十" in run:
        tens, _, ones = run.partition("十")
        if len(tens) > 1 or len(ones) > 1:
            return None
        return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[ones] if ones else 0)
    return _KANJI_DIGITS[run] if len(run) == 1 else None


def _arabic(text: str) -> tuple[str, list[int]]:
    """``text`` with kanji numerals as digits, and for each character its index in ``text``."""
    out: list[str] = []
    back: list[int] = []
    last = 0
    for m in _KANJI_NUMBER.finditer(text):
        value = kanji_number(m.group())
        if value is None:
            continue
        out.append(text[last : m.start()])
        back.extend(range(last, m.start()))
        digits = str(value)
        out.append(digits)
        # The first digit maps to the numeral's start, the others to its last character.
        back.extend([m.start()] + [m.end() - 1] * (len(digits) - 1))
        last = m.end()
    out.append(text[last:])
    back.extend(range(last, len(text)))
    return "".join(out), back


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
