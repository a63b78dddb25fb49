"""Routing: from an Understanding to ranked resource kinds, each with a one-line reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from intents.crisis import CATEGORIES as CRISIS_CATEGORIES
from intents.types import Understanding
from knowledge.taxonomy import load_taxonomy

_FILE = "data/routing.yaml"
# The second topic adds its kinds only when it is close enough to the first.
_CLOSE_SECOND = 0.7
_SECOND_TOPIC_SHARE = 0.5


class RoutingError(ValueError):
    """routing.yaml does not follow its schema."""


@dataclass(frozen=True, slots=True)
class KindChoice:
    """A resource kind to offer and why, in one Japanese sentence."""

    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Route:
    topic: str
    audiences: frozenset[str] | None
    age_groups: frozenset[str] | None
    kinds: tuple[KindChoice, ...]

    @property
    def specificity(self) -> int:
        # An age-specific rule beats an audience-specific one: 高齢の方の万引き is routed
        # to 地域包括支援センター whoever writes.
        return (self.audiences is not None) + 2 * (self.age_groups is not None)

    def applies(self, u: Understanding, topic: str) -> bool:
        return (
            self.topic == topic
            and (self.audiences is None or u.audience in self.audiences)
            and (self.age_groups is None or u.age_group in self.age_groups)
        )


@dataclass(frozen=True, slots=True)
class _Exclusion:
    """Kinds that must never be offered for a kind of person (juvenile desks for adults)."""

    kinds: frozenset[str]
    age_groups: frozenset[str] | None
    primary_topics: frozenset[str] | None
    unless_topics: frozenset[str]
    unless_crisis: frozenset[str]
    any_topics: frozenset[str] | None = None  # one of these anywhere in the topic list
    any_crisis: frozenset[str] | None = None  # one of these crisis categories

    def applies(self, u: Understanding) -> bool:
        return (
            (self.age_groups is None or u.age_group in self.age_groups)
            and (self.primary_topics is None or u.topic in self.primary_topics)
            and (self.any_topics is None or bool(self.any_topics & set(u.topic_ids)))
            and (self.any_crisis is None or bool(self.any_crisis & set(u.crisis_categories)))
            and not (self.unless_topics & set(u.topic_ids))
            and not (self.unless_crisis & set(u.crisis_categories))
        )


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """The parsed routing.yaml."""

    routes: tuple[_Route, ...]
    general: tuple[KindChoice, ...]
    crisis: dict[str, dict[str, tuple[KindChoice, ...]]]
    exclude: tuple[_Exclusion, ...] = ()
    # The rows of each topic, in table order (derived from ``routes``).
    by_topic: dict[str, tuple[_Route, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[_Route]] = {}
        for r in self.routes:
            grouped.setdefault(r.topic, []).append(r)
        object.__setattr__(self, "by_topic", {t: tuple(rs) for t, rs in grouped.items()})


def _choices(items: Any, reasons: dict[str, str], kinds: set[str], where: str) -> tuple:
    if not isinstance(items, list) or not items:
        raise RoutingError(f"{where}: expected a non-empty list of kinds")
    out: list[KindChoice] = []
    for item in items:
        if isinstance(item, str):
            kind, reason = item, reasons.get(item, "")
        elif isinstance(item, dict) and len(item) == 1:
            kind, reason = next(iter(item.items()))
        else:
            raise RoutingError(f"{where}: {item!r} must be a kind or {{kind: reason}}")
        if kind not in kinds:
            raise RoutingError(f"{where}: unknown resource kind {kind!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise RoutingError(f"{where}: kind {kind!r} needs a reason")
        if any(c.kind == kind for c in out):
            raise RoutingError(f"{where}: kind {kind!r} listed twice")
        out.append(KindChoice(kind, reason.strip()))
    return tuple(out)


def _ids(value: Any, allowed: dict[str, str], where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(v in allowed for v in value):
        raise RoutingError(f"{where}: expected a list of ids from the taxonomy")
    return frozenset(value)


def parse_table(data: Any) -> RoutingTable:
    """Validate and parse the routing table.

    Args:
        data: the YAML document as loaded.

    Returns:
        The routing table.

    Raises:
        RoutingError: the document does not follow the schema.
    """
    tax = load_taxonomy()
    kinds = set(tax.resource_kinds)
    if not isinstance(data, dict):
        raise RoutingError("routing.yaml: top level must be a mapping")
    unknown = set(data) - {"reasons", "crisis", "general", "routes", "exclude"}
    if unknown:
        raise RoutingError(f"routing.yaml: unknown sections {sorted(unknown)}")
    reasons = data.get("reasons")
    if not isinstance(reasons, dict) or set(reasons) != kinds:
        raise RoutingError("routing.yaml: reasons must give one reason for every kind")
    routes: list[_Route] = []
    for n, spec in enumerate(data.get("routes") or []):
        where = f"routes[{n}]"
        if not isinstance(spec, dict) or set(spec) - {"topic", "audience", "age_group", "kinds"}:
            raise RoutingError(f"{where}: keys are topic, audience, age_group, kinds")
        if spec.get("topic") not in tax.topics:
            raise RoutingError(f"{where}: unknown topic {spec.get('topic')!r}")
        routes.append(
            _Route(
                topic=spec["topic"],
                audiences=_ids(spec.get("audience"), tax.audiences, where),
                age_groups=_ids(spec.get("age_group"), tax.age_groups, where),
                kinds=_choices(spec.get("kinds"), reasons, kinds, where),
            )
        )
    covered = {r.topic for r in routes if r.specificity == 0}
    missing = set(tax.topics) - covered - {"other"}
    if missing:
        raise RoutingError(f"routing.yaml: no default route for {sorted(missing)}")
    crisis: dict[str, dict[str, tuple[KindChoice, ...]]] = {}
    for level in ("concern", "urgent"):
        section = (data.get("crisis") or {}).get(level)
        if not isinstance(section, dict) or "default" not in section:
            raise RoutingError(f"routing.yaml: crisis.{level} needs a default list")
        crisis[level] = {
            cat: _choices(items, reasons, kinds, f"crisis.{level}.{cat}")
            for cat, items in section.items()
        }
    if crisis["urgent"]["default"][0].kind != "emergency":
        raise RoutingError("routing.yaml: urgent crisis must put emergency first")
    general = _choices(data.get("general"), reasons, kinds, "general")
    exclude = tuple(
        _exclusion(spec, tax, kinds, n) for n, spec in enumerate(data.get("exclude") or [])
    )
    return RoutingTable(tuple(routes), general, crisis, exclude)


_EXCLUDE_KEYS = frozenset(
    {"kinds", "age_group", "primary_topic", "topic", "crisis", "unless_topic", "unless_crisis"}
)


def _exclusion(spec: Any, tax: Any, kinds: set[str], n: int) -> _Exclusion:
    where = f"exclude[{n}]"
    if not isinstance(spec, dict) or set(spec) - _EXCLUDE_KEYS or "kinds" not in spec:
        raise RoutingError(f"{where}: keys are {sorted(_EXCLUDE_KEYS)}, kinds required")
    listed = spec["kinds"]
    if not isinstance(listed, list) or not listed or not set(listed) <= kinds:
        raise RoutingError(f"{where}.kinds: expected a list of resource kinds")
    if not {"age_group", "primary_topic", "topic", "crisis"} & set(spec):
        raise RoutingError(
            f"{where}: needs an age_group, primary_topic, topic or crisis condition"
        )
    crisis_cats = spec.get("unless_crisis") or []
    if not isinstance(crisis_cats, list) or not all(isinstance(c, str) for c in crisis_cats):
        raise RoutingError(f"{where}.unless_crisis: expected a list of crisis categories")
    return _Exclusion(
        kinds=frozenset(listed),
        age_groups=_ids(spec.get("age_group"), tax.age_groups, where),
        primary_topics=_ids(spec.get("primary_topic"), tax.topics, where),
        unless_topics=_ids(spec.get("unless_topic"), tax.topics, where) or frozenset(),
        unless_crisis=frozenset(crisis_cats),
        any_topics=_ids(spec.get("topic"), tax.topics, where),
        any_crisis=_crisis_ids(spec.get("crisis"), where),
    )


def _crisis_ids(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not set(value) <= set(CRISIS_CATEGORIES):
        raise RoutingError(f"{where}.crisis: expected a list of crisis categories")
    return frozenset(value)


@lru_cache(maxsize=1)
def routing_table() -> RoutingTable:
    """Load ``knowledge/data/routing.yaml`` once per process.

    Returns:
        The validated routing table.
    """
    text = resources.files("knowledge").joinpath(_FILE).read_text("utf-8")
    return parse_table(yaml.safe_load(text))


def _best_route(table: RoutingTable, u: Understanding, topic: str) -> _Route | None:
    best: _Route | None = None
    for r in table.by_topic.get(topic, ()):
        if r.applies(u, topic) and (best is None or r.specificity > best.specificity):
            best = r
    return best


def _crisis_choices(table: RoutingTable, u: Understanding) -> tuple[KindChoice, ...]:
    if u.crisis not in table.crisis:
        return ()
    by_category = table.crisis[u.crisis]
    for cat in u.crisis_categories:
        if cat in by_category:
            return by_category[cat]
    return by_category["default"]


def route_kinds(u: Understanding, limit: int = 5) -> tuple[KindChoice, ...]:
    """Rank the kinds of places to refer a person to.

    Args:
        u: the understanding of the message.
        limit: the most kinds to return.

    Returns:
        Ranked kinds with reasons; empty when the message is out of scope.
    """
    if not u.in_scope or limit <= 0:
        return ()
    table = routing_table()
    out: list[KindChoice] = []

    def extend(choices: tuple[KindChoice, ...]) -> None:
        for c in choices:
            if all(o.kind != c.kind for o in out):
                out.append(c)

    extend(_crisis_choices(table, u))
    topics = [t for t in u.topics if t.topic != "other"]
    if topics:
        first = _best_route(table, u, topics[0].topic)
        first_kinds = first.kinds if first else ()
        second_kinds: tuple[KindChoice, ...] = ()
        if len(topics) > 1 and topics[1].score >= _SECOND_TOPIC_SHARE * topics[0].score:
            second = _best_route(table, u, topics[1].topic)
            second_kinds = second.kinds if second else ()
        if len(topics) > 1 and topics[1].score >= _CLOSE_SECOND * topics[0].score:
            # Two worries of nearly equal weight: the second's best place joins the first
            # three (「痴漢で逮捕…示談は」 needs the legal desk as well as the sexual one).
            extend(first_kinds[:2])
            extend(second_kinds[:1])
        extend(first_kinds)
        extend(second_kinds)
    elif u.crisis == "urgent":
        # Danger now with nothing else to go on: only the emergency answer, no desks.
        return tuple(out[:limit])
    else:
        vague = _best_route(table, u, "other")
        extend(vague.kinds if vague else table.general)
    extend(table.general)
    banned: set[str] = set()
    for ex in table.exclude:
        if ex.applies(u):
            banned |= ex.kinds
    return tuple([c for c in out if c.kind not in banned][:limit])
