"""Deterministic crisis check: suicidal thoughts, self-harm, overdose, harm to others, danger."""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from intents.literals import Gate, GateIndex, gate_of
from intents.normalize import fold
from intents.types import Analysis, CrisisAssessment, Evidence

logger = logging.getLogger(__name__)

LEVELS = ("none", "concern", "urgent")
CATEGORIES = (
    "suicidal",
    "self_harm",
    "overdose",
    "harm_to_others",
    "danger_now",
    "child_in_danger",
)
_RULE_LEVELS = frozenset({"concern", "urgent"})
_RULE_KEYS = frozenset(
    {"id", "level", "category", "also", "patterns", "readings", "all", "escalate", "unless"}
)
_GROUP_KEYS = frozenset({"patterns", "readings"})
# Sentence ends in normalised text (NFKC has already turned ！？ into !?).
_SENTENCE_END = re.compile(r"[。!?\n]+")
_RANK = {level: i for i, level in enumerate(LEVELS)}


class CrisisRulesError(ValueError):
    """The crisis rule file does not follow its schema."""


@dataclass(frozen=True, slots=True)
class _Matcher:
    """Regexes on the folded text and, for kana forms, on the reading as well."""

    folded: tuple[re.Pattern[str], ...]
    reading: tuple[re.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    level: str
    categories: tuple[str, ...]
    groups: tuple[_Matcher, ...]  # one group: any pattern; several: all in one sentence
    escalate: str | None
    unless: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _RuleSet:
    rules: tuple[_Rule, ...]
    markers: dict[str, re.Pattern[str]]
    denial: re.Pattern[str]
    # Literal gates of each rule's first group (folded text, reading): one scan of the
    # message says which rules cannot match, before any of their regexes run.
    gates: tuple[GateIndex, GateIndex]


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: _Rule
    matched: str
    sentence: int
    text: str  # the sentence it was found in
    source: int  # 0: folded text, 1: reading


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    """Fold a pattern like a message and compile it; reject what folding would break."""
    if not isinstance(pattern, str) or not pattern:
        raise CrisisRulesError(f"{where}: pattern must be a non-empty string")
    if pattern != pattern.lower() or " " in pattern:
        raise CrisisRulesError(f"{where}: pattern {pattern!r} must be lower-case without spaces")
    try:
        return re.compile(fold(pattern))
    except re.error as exc:
        raise CrisisRulesError(f"{where}: bad regex {pattern!r}: {exc}") from exc


def _pattern_list(value: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CrisisRulesError(f"{where}: expected a list of patterns")
    return tuple(_compile(p, where) for p in value)


def _matcher(spec: Any, where: str) -> _Matcher:
    if not isinstance(spec, dict) or not set(spec) <= _GROUP_KEYS:
        raise CrisisRulesError(f"{where}: a group has only 'patterns' and 'readings'")
    folded = _pattern_list(spec.get("patterns"), where)
    reading = _pattern_list(spec.get("readings"), where)
    if not folded and not reading:
        raise CrisisRulesError(f"{where}: a group needs at least one pattern")
    # Kana forms also run on the folded text, so hiragana-only messages meet them there.
    return _Matcher(folded=_union(folded + reading), reading=_union(reading))


def _union(pats: tuple[re.Pattern[str], ...]) -> tuple[re.Pattern[str], ...]:
    """One alternation instead of many patterns: one scan per sentence, not one per pattern."""
    if not pats:
        return ()
    return (re.compile("|".join(f"(?:{p.pattern})" for p in pats)),)


def _rule(spec: Any, markers: dict[str, re.Pattern[str]], seen: set[str]) -> _Rule:
    if not isinstance(spec, dict):
        raise CrisisRulesError("each rule must be a mapping")
    rid = spec.get("id")
    if not isinstance(rid, str) or not rid:
        raise CrisisRulesError("rule without id")
    if rid in seen:
        raise CrisisRulesError(f"{rid}: duplicate rule id")
    seen.add(rid)
    unknown = set(spec) - _RULE_KEYS
    if unknown:
        raise CrisisRulesError(f"{rid}: unknown keys {sorted(unknown)}")
    level = spec.get("level")
    if level not in _RULE_LEVELS:
        raise CrisisRulesError(f"{rid}: level must be concern or urgent")
    categories = [spec.get("category"), *(spec.get("also") or [])]
    for cat in categories:
        if cat not in CATEGORIES:
            raise CrisisRulesError(f"{rid}: unknown category {cat!r}")
    if "all" in spec:
        if "patterns" in spec or "readings" in spec:
            raise CrisisRulesError(f"{rid}: use either 'all' or 'patterns'/'readings'")
        if not isinstance(spec["all"], list) or len(spec["all"]) < 2:
            raise CrisisRulesError(f"{rid}: 'all' needs at least two groups")
        groups = tuple(_matcher(g, rid) for g in spec["all"])
    else:
        groups = (_matcher({k: spec[k] for k in _GROUP_KEYS if k in spec}, rid),)
    escalate = spec.get("escalate")
    if escalate is not None and escalate not in markers:
        raise CrisisRulesError(f"{rid}: unknown escalate marker {escalate!r}")
    unless = spec.get("unless") or []
    if not isinstance(unless, list) or any(u not in markers for u in unless):
        raise CrisisRulesError(f"{rid}: unless must list known markers")
    return _Rule(
        id=rid,
        level=level,
        categories=tuple(dict.fromkeys(categories)),
        groups=groups,
        escalate=escalate,
        unless=tuple(unless),
    )


def parse_rules(data: Any) -> _RuleSet:
    """Validate and compile crisis rule data (the parsed YAML).

    Args:
        data: the mapping read from ``crisis.yaml``.

    Returns:
        The compiled rule set.

    Raises:
        CrisisRulesError: when the data does not follow the schema.
    """
    if not isinstance(data, dict) or data.get("version") != 1:
        raise CrisisRulesError("crisis rules: expected a mapping with version: 1")
    raw_markers = data.get("markers")
    if not isinstance(raw_markers, dict):
        raise CrisisRulesError("crisis rules: 'markers' mapping missing")
    for required in ("past", "denial"):
        if required not in raw_markers:
            raise CrisisRulesError(f"crisis rules: marker {required!r} missing")
    markers: dict[str, re.Pattern[str]] = {}
    for name, pats in raw_markers.items():
        compiled = _pattern_list(pats, f"marker {name}")
        if not compiled:
            raise CrisisRulesError(f"marker {name}: empty")
        markers[name] = re.compile("|".join(f"(?:{p.pattern})" for p in compiled))
    rules_data = data.get("rules")
    if not isinstance(rules_data, list) or not rules_data:
        raise CrisisRulesError("crisis rules: 'rules' list missing")
    seen: set[str] = set()
    rules = tuple(_rule(spec, markers, seen) for spec in rules_data)
    gates = tuple(
        GateIndex([_first_gate(getattr(r.groups[0], source)) for r in rules])
        for source in ("folded", "reading")
    )
    return _RuleSet(rules=rules, markers=markers, denial=markers["denial"], gates=gates)  # type: ignore[arg-type]


def _first_gate(pats: tuple[re.Pattern[str], ...]) -> Gate:
    """The gate of a group's one union pattern; none (always run) for anything else."""
    return gate_of(pats[0]) if len(pats) == 1 else ()


@lru_cache(maxsize=1)
def rules() -> _RuleSet:
    """Load, validate and compile ``intents/rules/crisis.yaml`` once per process."""
    text = resources.files("intents").joinpath("rules/crisis.yaml").read_text("utf-8")
    ruleset = parse_rules(yaml.safe_load(text))
    logger.info("crisis rules loaded: %d rules", len(ruleset.rules))
    return ruleset


def _sentences(text: str) -> list[str]:
    return _SENTENCE_END.split(text)


def _find(
    pats: tuple[re.Pattern[str], ...], sentence: str, denial: re.Pattern[str]
) -> re.Match[str] | None:
    """First match of any pattern that is not followed at once by a clear denial."""
    for pat in pats:
        for m in pat.finditer(sentence):
            if m.end() > m.start() and denial.match(sentence, m.end()):
                continue
            return m
    return None


def _windows(sentences: list[str], joined: bool) -> list[tuple[int, str]]:
    """Each sentence alone, or (for multi-group rules) joined with the next one or two.

    Three sentences: 「いま屋上。学校にばれた。柵こえたらいける」 says the place and the plan
    with a sentence between them.
    """
    if not joined:
        return list(enumerate(sentences))
    out = [(i, s) for i, s in enumerate(sentences)]
    out.extend((i, f"{a}。{b}") for i, (a, b) in enumerate(itertools.pairwise(sentences)))
    out.extend(
        (i, f"{sentences[i]}。{sentences[i + 1]}。{sentences[i + 2]}")
        for i in range(len(sentences) - 2)
    )
    return out


def _may_match(rule: _Rule, joined: tuple[str, str], gated: tuple[bool, bool]) -> bool:
    """Cheap necessary condition: the rule's first group occurs somewhere in the message.

    One scan of the whole text (sentences joined by 。, a superset of every sentence and
    joined window) instead of one per sentence, and none when the literal gate already
    says it cannot match; most rules are settled here.
    """
    first = rule.groups[0]
    return (gated[0] and any(p.search(joined[0]) for p in first.folded)) or (
        gated[1] and any(p.search(joined[1]) for p in first.reading)
    )


def _match_rule(
    rule: _Rule, sentences: tuple[list[str], list[str]], ruleset: _RuleSet
) -> _Hit | None:
    """The first place where the rule matches: folded text first, then the reading.

    A match silenced by context (ゲーム, 遺族 …) in the folded text also silences the
    reading, whose katakana the context markers cannot see.
    """
    folded_windows = _windows(sentences[0], len(rule.groups) > 1)
    silenced = False
    for source in (0, 1):
        windows = folded_windows if source == 0 else _windows(sentences[1], len(rule.groups) > 1)
        for i, window in windows:
            if not window:
                continue
            found: list[re.Match[str]] = []
            for group in rule.groups:
                pats = group.reading if source else group.folded
                m = _find(pats, window, ruleset.denial) if pats else None
                if m is None:
                    break
                found.append(m)
            else:
                context = [window]
                if source:  # context words are written in kanji: look at the folded text
                    context.append(folded_windows[i][1] if i < len(folded_windows) else "")
                if any(ruleset.markers[u].search(c) for u in rule.unless for c in context):
                    silenced = True
                    continue
                matched = " + ".join(m.group(0) for m in found)
                return _Hit(rule, matched, i, window, source)
        if silenced:
            return None
    return None


def _level_of(hit: _Hit, sentences: list[str], ruleset: _RuleSet) -> str:
    level = hit.rule.level
    if level == "concern" and hit.rule.escalate:
        marker = ruleset.markers[hit.rule.escalate]
        near = sentences[max(0, hit.sentence - 1) : hit.sentence + 2]
        if any(marker.search(s) for s in [*near, hit.text]):
            level = "urgent"
    if level == "urgent" and ruleset.markers["past"].search(hit.text):
        # Told as history (昔, 以前, 〜たことがある): serious, but not happening now.
        level = "concern"
    return level


def assess(analysis: Analysis) -> CrisisAssessment:
    """Assess the crisis level of one message.

    Matching runs per sentence on the folded text (kanji and kana forms) and on the
    folded reading (kana forms, so hiragana-only and mixed writing meet the rules).

    Args:
        analysis: the message, from :func:`intents.tokenizer.analyse`.

    Returns:
        Level none/concern/urgent, the categories found and one Evidence per rule hit.
    """
    ruleset = rules()
    folded_sents = _sentences(analysis.folded)
    reading_sents = _sentences(analysis.reading)
    level = "none"
    categories: list[str] = []
    evidence: list[Evidence] = []
    joined = ("。".join(folded_sents), "。".join(reading_sents))
    folded_ok = ruleset.gates[0].candidates(joined[0])
    reading_ok = ruleset.gates[1].candidates(joined[1])
    for n in sorted(folded_ok | reading_ok):  # rule order: evidence keeps it
        rule = ruleset.rules[n]
        if not _may_match(rule, joined, (n in folded_ok, n in reading_ok)):
            continue
        hit = _match_rule(rule, (folded_sents, reading_sents), ruleset)
        if hit is None:
            continue
        hit_level = _level_of(hit, reading_sents if hit.source else folded_sents, ruleset)
        if _RANK[hit_level] > _RANK[level]:
            level = hit_level
        categories.extend(c for c in rule.categories if c not in categories)
        evidence.append(
            Evidence(kind="crisis", label=hit_level, rule=rule.id, matched=hit.matched)
        )
    return CrisisAssessment(level=level, categories=tuple(categories), evidence=tuple(evidence))
