"""Value types of the knowledge store besides resources: templates, FAQ, revisions, accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("admin", "staff", "counselor")


@dataclass(frozen=True, slots=True)
class Template:
    """A reply text (jinja2), e.g. ``greeting`` or ``topic_intro.theft``."""

    id: str
    text: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """A frequently asked question: several ways to ask it and one answer."""

    id: str
    questions: tuple[str, ...]
    answer: str
    topics: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class FaqHit:
    """A FAQ entry found by full-text search; higher score is a better match."""

    entry: FaqEntry
    score: float


@dataclass(frozen=True, slots=True)
class User:
    """A staff account (never carries the password hash)."""

    id: int
    name: str
    role: str  # admin | staff | counselor
    office_id: str | None
    disabled: bool
    created_at: str  # ISO 8601, UTC
    updated_at: str


@dataclass(frozen=True, slots=True)
class Revision:
    """One recorded change: who did what to which entity, with the state before and after."""

    id: int
    entity: str  # resource | template | faq | user
    entity_id: str
    action: str  # create | update | deactivate | delete | restore | import
    actor: str
    at: str  # ISO 8601, UTC
    before: dict[str, Any] | None
    after: dict[str, Any] | None
