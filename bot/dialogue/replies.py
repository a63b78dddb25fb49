"""Channel-neutral reply values; each channel renders them its own way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Choice:
    """A button / quick reply: what it shows and what it sends back."""

    label: str  # ≤ 20 characters (LINE quick-reply limit)
    postback: str  # ≤ 300 characters (LINE postback data limit)


@dataclass(frozen=True, slots=True)
class TextReply:
    """Plain text."""

    text: str


@dataclass(frozen=True, slots=True)
class ChoicesReply:
    """A question or prompt with buttons."""

    text: str
    items: tuple[Choice, ...]


@dataclass(frozen=True, slots=True)
class ResourceCard:
    """One place to contact, as shown to the person."""

    resource_id: str
    kind: str
    name: str
    description: str
    reason: str
    phone: str | None = None
    url: str | None = None
    hours: str | None = None
    open_now: bool | None = None
    how: tuple[str, ...] = ()  # 電話・来所・メール・LINE・オンライン
    notes: str | None = None  # free / confidential / caller pays
    sample: bool = False  # an example entry, not a real agency


@dataclass(frozen=True, slots=True)
class ResourcesReply:
    """Up to three resource cards, with an optional intro line."""

    items: tuple[ResourceCard, ...]
    intro: str = ""


@dataclass(frozen=True, slots=True)
class HandoffNotice:
    """The conversation moves to (or back from) a human counselor."""

    status: str  # offered | waiting | claimed | active | closed | returned | unavailable
    text: str


@dataclass(frozen=True, slots=True)
class EndReply:
    """The conversation was cleared (履歴を消して, quick exit)."""

    text: str


Reply = TextReply | ChoicesReply | ResourcesReply | HandoffNotice | EndReply
