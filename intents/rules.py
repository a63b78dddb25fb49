"""Rule files (``intents/rules/*.yaml``): loading once per process and schema validation."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from intents.normalize import pattern_key

logger = logging.getLogger(__name__)

# The ids fixed by the shared triage taxonomy (tests check they match knowledge/data).
TOPICS = (
    "theft",
    "drugs",
    "alcohol",
    "gambling",
    "sexual",
    "violence",
    "child_abuse",
    "juvenile",
    "housing",
    "employment",
    "livelihood",
    "health",
    "legal",
    "probation",
    "victim",
    "isolation",
    "other",
)
AUDIENCES = ("self", "family", "supporter", "resident", "unknown")
AGE_GROUPS = ("minor", "adult", "elderly", "unknown")

# Files this module reads; crisis.yaml belongs to intents.crisis.
RULE_FILES = ("topics.yaml", "cues.yaml", "areas.yaml")


class RuleError(ValueError):
    """A rule file does not follow its schema."""


@dataclass(frozen=True, slots=True)
class KeywordRule:
    """A literal word or phrase that supports a label (matched on three views)."""

    rule: str  # e.g. "theft.kw.万引き"
    kind: str  # topic
    label: str
    text: str
    weight: float
    aligned: bool  # must start and end on token boundaries


@dataclass(frozen=True, slots=True)
class PatternRule:
    """A regular expression over the hiragana-folded text (and reading)."""

    rule: str
    kind: str  # topic | audience | age_group | scope | negation | time
    label: str
    regex: re.Pattern[str]
    weight: float
    mask: bool = False  # topic words inside this span count for little (self-introductions)
    kana_only: bool = False  # also worth running on the reading view


@dataclass(frozen=True, slots=True)
class AgeNumberRule:
    """A pattern with a named group ``n`` (and optional ``unit``) giving an age."""

    rule: str
    regex: re.Pattern[str]
    weight: float


@dataclass(frozen=True, slots=True)
class Scoring:
    """Numbers that turn hits into decisions (all in topics.yaml so they are tunable)."""

    negated_factor: float
    past_factor: float
    masked_factor: float
    repeat_bonus: float
    min_topic_score: float
    confident_score: float
    confident_margin: float
    priority: tuple[str, ...]
    minor_boost: dict[str, float]
    elderly_boost: dict[str, float]
    lead_bonus: dict[str, float]
    frame_absorbs: dict[str, frozenset[str]]  # victim → offence topics its span absorbs
    # Circumstances that often come with a behaviour (認知症 with 万引き, 借金 with
    # ギャンブル): a close second of these does not make the primary topic unsure.
    companion_topics: frozenset[str]


@dataclass(frozen=True, slots=True)
class TopicRules:
    """Everything topics.yaml defines."""

    keywords: tuple[KeywordRule, ...]
    patterns: tuple[PatternRule, ...]
    scoring: Scoring


@dataclass(frozen=True, slots=True)
class CueRules:
    """Everything cues.yaml defines."""

    audience: tuple[PatternRule, ...]
    age_group: tuple[PatternRule, ...]
    age_numbers: tuple[AgeNumberRule, ...]
    negation_after: tuple[re.Pattern[str], ...]
    negation_unless: tuple[re.Pattern[str], ...]
    past: tuple[PatternRule, ...]
    consult: tuple[PatternRule, ...]
    unrelated: tuple[PatternRule, ...]
    default_audience_with_topic: str
    topic_age: dict[str, str]


@dataclass(frozen=True, slots=True)
class Place:
    """One gazetteer entry."""

    name: str  # official name, e.g. 新宿区
    code: str  # JIS code: 2 digits for prefectures, 6 (with check digit) for municipalities
    prefecture_code: str
    aliases: tuple[str, ...]
    ambiguous: bool  # the name exists elsewhere too (中央区, 北区)


@dataclass(frozen=True, slots=True)
class Gazetteer:
    """Prefectures and municipalities from areas.yaml."""

    prefectures: tuple[Place, ...]
    municipalities: tuple[Place, ...]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (a second ``4:`` would silently win)."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise RuleError(
            f"duplicate keys {sorted(map(str, dupes))} at line {node.start_mark.line + 1}"
        )
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read(name: str) -> Any:
    text = resources.files("intents").joinpath("rules", name).read_text("utf-8")
    data = yaml.load(text, Loader=_UniqueKeyLoader)
    if not isinstance(data, dict):
        raise RuleError(f"{name}: top level must be a mapping")
    return data


def _need(data: Any, key: str, typ: type, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise RuleError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, typ):
        raise RuleError(f"{where}.{key}: expected {typ.__name__}")
    return value


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{where}: pattern must be a non-empty string")
    try:
        return re.compile(pattern_key(pattern))
    except re.error as exc:
        raise RuleError(f"{where}: bad pattern {pattern!r}: {exc}") from exc


def _weighted(section: Any, where: str) -> list[tuple[float, Any]]:
    """Read a ``{weight: [items]}`` mapping."""
    if not isinstance(section, dict):
        raise RuleError(f"{where}: expected a mapping of weight to list")
    out: list[tuple[float, Any]] = []
    for weight, items in section.items():
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            raise RuleError(f"{where}: weight {weight!r} must be a positive number")
        if not isinstance(items, list) or not items:
            raise RuleError(f"{where}.{weight}: expected a non-empty list")
        out.extend((float(weight), item) for item in items)
    return out


_KANA_ONLY = re.compile(r"^[\u3041-\u309f\u30a0-\u30ffー()|?:*+.\\\[\]{}^$0-9,!=<>-]*$")


def _patterns(
    section: Any, kind: str, labels: tuple[str, ...], where: str, *, mask_key: str = ""
) -> list[PatternRule]:
    out: list[PatternRule] = []
    if not isinstance(section, dict):
        raise RuleError(f"{where}: expected a mapping of label to weighted patterns")
    for label, body in section.items():
        if label not in labels:
            raise RuleError(f"{where}: unknown label {label!r}")
        spec = body if isinstance(body, dict) else {}
        for key, masked in (("patterns", False), (mask_key, True)):
            if not key or key not in spec:
                continue
            for n, (weight, pattern) in enumerate(_weighted(spec[key], f"{where}.{label}")):
                out.append(
                    PatternRule(
                        rule=f"{kind}.{label}.{key}{n}",
                        kind=kind,
                        label=label,
                        regex=_compile(pattern, f"{where}.{label}.{key}"),
                        weight=weight,
                        mask=masked,
                        kana_only=bool(_KANA_ONLY.match(pattern)),
                    )
                )
        unknown = set(spec) - {"patterns", mask_key} if isinstance(body, dict) else {"?"}
        if unknown:
            raise RuleError(f"{where}.{label}: unknown keys {sorted(unknown)}")
    return out


def _plain_patterns(items: Any, kind: str, label: str, where: str) -> list[PatternRule]:
    if not isinstance(items, list) or not items:
        raise RuleError(f"{where}: expected a non-empty list of patterns")
    return [
        PatternRule(
            rule=f"{kind}.{label}{n}",
            kind=kind,
            label=label,
            regex=_compile(p, where),
            weight=1.0,
            kana_only=bool(_KANA_ONLY.match(p)),
        )
        for n, p in enumerate(items)
    ]


def _scoring(data: Any) -> Scoring:
    where = "topics.yaml:scoring"
    priority = tuple(_need(data, "priority", list, where))
    if sorted(priority) != sorted(t for t in TOPICS if t != "other"):
        raise RuleError(f"{where}.priority: must list every topic except other once")

    def boost(key: str) -> dict[str, float]:
        b = _need(data, key, dict, where)
        if not all(k in TOPICS and isinstance(v, int | float) for k, v in b.items()):
            raise RuleError(f"{where}.{key}: topic → number")
        return {k: float(v) for k, v in b.items()}

    numbers = {
        k: float(_need(data, k, int | float, where))
        for k in (
            "negated_factor",
            "past_factor",
            "masked_factor",
            "repeat_bonus",
            "min_topic_score",
            "confident_score",
            "confident_margin",
        )
    }
    companions = _need(data, "companion_topics", list, where)
    if not all(t in TOPICS for t in companions):
        raise RuleError(f"{where}.companion_topics: unknown topic id")
    frames = data.get("frame_absorbs") or {}
    if not isinstance(frames, dict) or not all(
        k in TOPICS and isinstance(v, list) and set(v) <= set(TOPICS) for k, v in frames.items()
    ):
        raise RuleError(f"{where}.frame_absorbs: topic → list of topics")
    return Scoring(
        priority=priority,
        frame_absorbs={k: frozenset(v) for k, v in frames.items()},
        companion_topics=frozenset(companions),
        minor_boost=boost("minor_boost"),
        elderly_boost=boost("elderly_boost"),
        lead_bonus=boost("lead_bonus"),
        **numbers,
    )


@lru_cache(maxsize=1)
def topic_rules() -> TopicRules:
    """Load and validate ``topics.yaml`` (once per process).

    Returns:
        The keyword and pattern rules of every topic and the scoring numbers.

    Raises:
        RuleError: the file does not follow the schema.
    """
    data = _read("topics.yaml")
    topics = _need(data, "topics", dict, "topics.yaml")
    keywords: list[KeywordRule] = []
    patterns: list[PatternRule] = []
    seen: set[tuple[str, str]] = set()
    for topic, spec in topics.items():
        where = f"topics.yaml:{topic}"
        if topic not in TOPICS or topic == "other":
            raise RuleError(f"{where}: unknown topic id")
        if not isinstance(spec, dict) or set(spec) - {"keywords", "patterns"}:
            raise RuleError(f"{where}: only 'keywords' and 'patterns' are allowed")
        for weight, word in _weighted(_need(spec, "keywords", dict, where), where):
            if not isinstance(word, str) or not word.strip("="):
                raise RuleError(f"{where}: keyword must be a non-empty string")
            aligned = word.startswith("=")
            text = word.lstrip("=")
            if (topic, text) in seen:
                raise RuleError(f"{where}: duplicate keyword {text!r}")
            seen.add((topic, text))
            keywords.append(
                KeywordRule(f"{topic}.kw.{text}", "topic", topic, text, weight, aligned)
            )
        if "patterns" in spec:
            for n, (weight, pattern) in enumerate(_weighted(spec["patterns"], where)):
                patterns.append(
                    PatternRule(
                        rule=f"{topic}.re{n}",
                        kind="topic",
                        label=topic,
                        regex=_compile(pattern, where),
                        weight=weight,
                        kana_only=bool(_KANA_ONLY.match(pattern)),
                    )
                )
    missing = set(TOPICS) - set(topics) - {"other"}
    if missing:
        raise RuleError(f"topics.yaml: no rules for {sorted(missing)}")
    scoring = _scoring(_need(data, "scoring", dict, "topics.yaml"))
    logger.debug("loaded %d topic keywords, %d patterns", len(keywords), len(patterns))
    return TopicRules(tuple(keywords), tuple(patterns), scoring)


@lru_cache(maxsize=1)
def cue_rules() -> CueRules:
    """Load and validate ``cues.yaml`` (once per process).

    Returns:
        Audience, age, negation, time and scope cues.

    Raises:
        RuleError: the file does not follow the schema.
    """
    data = _read("cues.yaml")
    w = "cues.yaml"
    audience = _patterns(
        _need(data, "audience", dict, w), "audience", AUDIENCES, f"{w}:audience", mask_key="intro"
    )
    age = _patterns(_need(data, "age_group", dict, w), "age_group", AGE_GROUPS, f"{w}:age_group")
    numbers = [
        AgeNumberRule(f"age_group.number{n}", _compile(p, f"{w}:age_numbers"), weight)
        for n, (weight, p) in enumerate(_weighted(_need(data, "age_numbers", dict, w), w))
    ]
    for r in numbers:
        if "n" not in r.regex.groupindex:
            raise RuleError(f"{w}:age_numbers: {r.regex.pattern!r} lacks a group named n")
    neg = _need(data, "negation", dict, w)
    time = _need(data, "time", dict, w)
    scope = _need(data, "scope", dict, w)
    default = _need(data, "default_audience_with_topic", str, w)
    topic_age = _need(data, "topic_age", dict, w)
    if default not in AUDIENCES:
        raise RuleError(f"{w}: default_audience_with_topic must be an audience id")
    if not all(k in TOPICS and v in AGE_GROUPS for k, v in topic_age.items()):
        raise RuleError(f"{w}: topic_age maps topic ids to age group ids")
    return CueRules(
        audience=tuple(audience),
        age_group=tuple(age),
        age_numbers=tuple(numbers),
        negation_after=tuple(
            _compile(p, f"{w}:negation.after") for p in _need(neg, "after", list, w)
        ),
        negation_unless=tuple(
            _compile(p, f"{w}:negation.unless") for p in _need(neg, "unless", list, w)
        ),
        past=tuple(_plain_patterns(_need(time, "past", list, w), "time", "past", w)),
        consult=tuple(_plain_patterns(_need(scope, "consult", list, w), "scope", "consult", w)),
        unrelated=tuple(
            _plain_patterns(_need(scope, "unrelated", list, w), "scope", "unrelated", w)
        ),
        default_audience_with_topic=default,
        topic_age=dict(topic_age),
    )


def _check_digit(code5: str) -> str:
    """JIS X 0402 check digit of a five-digit municipality code."""
    total = sum(int(d) * w for d, w in zip(code5, (6, 5, 4, 3, 2), strict=True))
    return str((11 - total % 11) % 10)


def _places(items: Any, where: str, *, municipal: bool) -> list[Place]:
    if not isinstance(items, list):
        raise RuleError(f"{where}: expected a list")
    out: list[Place] = []
    for n, item in enumerate(items):
        at = f"{where}[{n}]"
        name = _need(item, "name", str, at)
        code = str(_need(item, "code", str, at))
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise RuleError(f"{at}.aliases: expected a list of strings")
        if municipal:
            if not re.fullmatch(r"\d{5}", code):
                raise RuleError(f"{at}: municipality code must have five digits")
            full = code + _check_digit(code)
            pref = code[:2]
        else:
            if not re.fullmatch(r"\d{2}", code) or not 1 <= int(code) <= 47:
                raise RuleError(f"{at}: prefecture code must be 01–47")
            full = pref = code
        out.append(Place(name, full, pref, tuple(aliases), bool(item.get("ambiguous", False))))
    return out


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """Load and validate ``areas.yaml`` (once per process).

    Returns:
        The prefectures and municipalities with their JIS codes.

    Raises:
        RuleError: the file does not follow the schema.
    """
    data = _read("areas.yaml")
    prefs = _places(_need(data, "prefectures", list, "areas.yaml"), "prefectures", municipal=False)
    if sorted(p.code for p in prefs) != [f"{i:02d}" for i in range(1, 48)]:
        raise RuleError("areas.yaml: prefectures must list codes 01–47 exactly once")
    munis = _places(
        _need(data, "municipalities", list, "areas.yaml"), "municipalities", municipal=True
    )
    codes = [m.code for m in munis]
    if len(set(codes)) != len(codes):
        raise RuleError("areas.yaml: duplicate municipality code")
    sample_prefs, sample_munis = _sample_places(data.get("samples") or {})
    return Gazetteer(tuple(prefs + sample_prefs), tuple(munis + sample_munis))


def _sample_places(data: Any) -> tuple[list[Place], list[Place]]:
    """The fictional places of the shipped sample entries (サンプル県 99, サンプル市 999999).

    They take codes no real place has (JIS prefecture codes end at 47), so that staff can
    try the sample local entries in the admin before real ones replace them.
    """
    where = "areas.yaml:samples"
    if not isinstance(data, dict):
        raise RuleError(f"{where}: expected a mapping")
    prefs = []
    for p in data.get("prefectures", []):
        code = str(_need(p, "code", str, where))
        prefs.append(Place(_need(p, "name", str, where), code, code, (), False))
    munis = []
    for m in data.get("municipalities", []):
        code, pref = str(_need(m, "code", str, where)), str(_need(m, "prefecture", str, where))
        if not re.fullmatch(r"9\d{5}", code) or pref not in {p.code for p in prefs}:
            raise RuleError(f"{where}: sample codes are 9xxxxx in a sample prefecture")
        munis.append(Place(_need(m, "name", str, where), code, pref, (), False))
    for p in prefs:
        if not re.fullmatch(r"(4[89]|[5-9]\d)", p.code):
            raise RuleError(f"{where}: a sample prefecture code must not be a real one (01–47)")
    return prefs, munis


def load_all() -> None:
    """Load and validate every rule file now (otherwise loaded on first use)."""
    topic_rules()
    cue_rules()
    gazetteer()
