"""Conversation state: a small JSON-able value, and the in-memory home of no-record state."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from typing import Any

from intents.types import Area, Understanding

# Phases of a conversation.
CONSENT = "consent"  # greeting shown, waiting for 同意 / 記録せずに
OPEN = "open"  # waiting for the worry in free text (or a topic button)
ASK = "ask"  # asked one missing piece (``asking``)
CONFIRM = "confirm"  # two-stage fallback: asked 「〜についてのご相談でしょうか？」
ANSWERED = "answered"  # resources given; 他に気になることは？
RETURN = "return"  # came back after the idle timeout; 続きから / 最初から offered

PHASES = (CONSENT, OPEN, ASK, CONFIRM, ANSWERED, RETURN)
_AREA_FIELDS = tuple(f.name for f in fields(Area))


@dataclass(frozen=True, slots=True)
class Slots:
    """What is known about the worry: derived categories only, never message text."""

    topics: tuple[str, ...] = ()
    audience: str = "unknown"
    age_group: str = "unknown"
    area: Area | None = None
    confident: bool = True
    in_scope: bool = True

    @classmethod
    def from_understanding(cls, u: Understanding) -> Slots:
        """Keep what a message said that the flow uses."""
        topics = tuple(t for t in u.topic_ids if t != "other")
        area = u.area if u.area and (u.area.prefecture_code or u.area.prefecture) else None
        return cls(
            topics=topics,
            audience=u.audience,
            age_group=u.age_group,
            area=area,
            confident=u.confident,
            in_scope=u.in_scope,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``dataclasses.asdict`` gives, without its deep copies)."""
        area = self.area
        return {
            "topics": list(self.topics),
            "audience": self.audience,
            "age_group": self.age_group,
            "area": None if area is None else {n: getattr(area, n) for n in _AREA_FIELDS},
            "confident": self.confident,
            "in_scope": self.in_scope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Slots | None:
        """Inverse of :meth:`to_dict`; None for None."""
        if not data:
            return None
        area = data.get("area")
        return cls(
            topics=tuple(str(t) for t in data.get("topics", ())),
            audience=str(data.get("audience", "unknown")),
            age_group=str(data.get("age_group", "unknown")),
            area=Area(**area) if isinstance(area, dict) else None,
            confident=bool(data.get("confident", True)),
            in_scope=bool(data.get("in_scope", True)),
        )


@dataclass(frozen=True, slots=True)
class DialogueState:
    """Where one conversation stands. Stored as JSON (with consent) or only in memory."""

    phase: str = CONSENT
    consent: str = "none"  # none | granted | declined
    slots: Slots = field(default_factory=Slots)
    asking: str | None = None  # audience | age_group | area while phase == ASK
    asked: tuple[str, ...] = ()  # pieces already asked once (never asked twice)
    fallback: int = 0  # 0, 1 (asked to confirm / rephrase), 2 (offered the topic menu)
    candidates: tuple[str, ...] = ()  # topics offered in the fallback question
    crisis: str = "none"  # highest crisis level seen; a flagged conversation never resets
    pending: Slots | None = None  # a message that arrived before consent / after idle
    offered: tuple[tuple[str, str], ...] = ()  # last buttons: (label, postback)
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the store."""
        return {
            "phase": self.phase,
            "consent": self.consent,
            "slots": self.slots.to_dict(),
            "asking": self.asking,
            "asked": list(self.asked),
            "fallback": self.fallback,
            "candidates": list(self.candidates),
            "crisis": self.crisis,
            "pending": self.pending.to_dict() if self.pending else None,
            "offered": [list(o) for o in self.offered],
            "turns": self.turns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DialogueState:
        """Rebuild a state; unknown or broken values fall back to a fresh start."""
        try:
            phase = str(data.get("phase", CONSENT))
            return cls(
                phase=phase if phase in PHASES else OPEN,
                consent=str(data.get("consent", "none")),
                slots=Slots.from_dict(data.get("slots")) or Slots(),
                asking=data.get("asking"),
                asked=tuple(data.get("asked", ())),
                fallback=int(data.get("fallback", 0)),
                candidates=tuple(data.get("candidates", ())),
                crisis=str(data.get("crisis", "none")),
                pending=Slots.from_dict(data.get("pending")),
                offered=tuple((str(a), str(b)) for a, b in data.get("offered", ())),
                turns=int(data.get("turns", 0)),
            )
        except (TypeError, ValueError):
            return cls()

    def restart(self) -> DialogueState:
        """Forget the worry but keep consent and the crisis flag."""
        return DialogueState(phase=OPEN, consent=self.consent, crisis=self.crisis)

    def with_(self, **changes: Any) -> DialogueState:
        """A copy with changes (``dataclasses.replace``)."""
        return replace(self, **changes)


class VolatileStates:
    """State of people who have not agreed to records: memory only, bounded, expiring."""

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 6 * 3600) -> None:
        """Create an empty map.

        Args:
            max_entries: oldest entries are dropped beyond this many people.
            ttl_seconds: entries untouched this long are dropped.
        """
        self._items: OrderedDict[str, tuple[DialogueState, float]] = OrderedDict()
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds

    def get(self, user_key: str, now: float | None = None) -> tuple[DialogueState, float] | None:
        """Return ``(state, last_activity)`` or None."""
        now = time.time() if now is None else now
        item = self._items.get(user_key)
        if item is None:
            return None
        if now - item[1] > self.ttl_seconds:
            del self._items[user_key]
            return None
        return item

    def put(self, user_key: str, state: DialogueState, now: float | None = None) -> None:
        """Remember the state of ``user_key``."""
        now = time.time() if now is None else now
        items = self._items
        items[user_key] = (state, now)
        items.move_to_end(user_key)  # oldest first: the expired are all at the front
        while len(items) > self.max_entries:
            items.popitem(last=False)
        while items and now - next(iter(items.values()))[1] > self.ttl_seconds:
            items.popitem(last=False)

    def drop(self, user_key: str) -> None:
        """Forget ``user_key``."""
        self._items.pop(user_key, None)

    def __len__(self) -> int:
        """Number of people held."""
        return len(self._items)
