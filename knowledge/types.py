"""Value types of the knowledge base: resources, opening hours, referrals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HoursRule:
    """One opening window: days of the week (0 = Monday … 6 = Sunday, 7 = public holiday)."""

    days: tuple[int, ...]
    opens: str  # "09:00" Japan time
    closes: str  # "17:00"; "24:00" allowed


@dataclass(frozen=True, slots=True)
class Resource:
    """A place a person can be referred to."""

    id: str
    name: str
    kind: str  # taxonomy resource_kinds id
    description: str  # plain Japanese, one or two sentences
    topics: tuple[str, ...] = ()  # empty → any topic of its kind
    audiences: tuple[str, ...] = ()  # empty → anyone
    age_groups: tuple[str, ...] = ()  # empty → any age
    coverage: str = "national"  # national | prefecture | municipality
    prefecture_code: str | None = None  # "13"
    municipality_code: str | None = None
    phone: str | None = None
    url: str | None = None
    hours: tuple[HoursRule, ...] = ()
    always_open: bool = False  # 24 hours, every day
    hours_note: str | None = None  # as published, e.g. 平日9時〜17時（祝日を除く）
    how: tuple[str, ...] = ()  # 電話・来所・メール・LINE・オンライン
    notes: str | None = None  # cost / confidentiality / line exclusions
    source_url: str | None = None
    verified_on: str | None = None  # ISO date
    # Where the figures came from and what must be re-checked before launch.
    verification_note: str | None = None
    sample: bool = False
    active: bool = True


@dataclass(frozen=True, slots=True)
class Referral:
    """A resource chosen for one Understanding, with the reason shown to the person."""

    resource: Resource
    reason: str
    rank: int
