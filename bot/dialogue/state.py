"""Conversation state: a small JSON-able value, and the in-memory home of no-record state."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from typing import Any

from intents.types import Area, Understanding

logger = logging.getLogger(__name__)

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


# No-record people held at once: those active within the engine's TTL (hours). A whole
# prefecture's desk has tens; 2,000 is hundreds an hour. Each takes ~0.4 KiB
# (bench/memory_tables.py), so a flood takes under 1 MiB. Beyond it the least recently
# active person's state goes (logged, counts only): back again, one who declined records is
# not asked a second time (the choice is stored) but starts the worry anew; one who had not
# chosen yet is greeted anew.
MAX_VOLATILE = 2_000
_SHARED_MAX = 4096  # distinct shared values (slots, areas, button sets) before starting over
_STRING_FIELDS = ("phase", "consent", "asking", "crisis")
_CAP_LOG_SECONDS = 60.0


class VolatileStates:
    """State of people who have not agreed to records: memory only, bounded, expiring.

    Kept in order of last activity, so expired entries are popped from the front on every
    write (amortized O(1)) and the cap drops the least recently active. Entries are made
    small: equal parts (slots, areas, topics, button sets, asked pieces) are shared between
    people instead of held once per person, and the phase/consent strings are interned.
    """

    def __init__(self, max_entries: int = MAX_VOLATILE, ttl_seconds: float = 6 * 3600) -> None:
        """Create an empty map.

        Args:
            max_entries: oldest entries are dropped beyond this many people.
            ttl_seconds: entries untouched this long are dropped.
        """
        self._items: OrderedDict[str, tuple[DialogueState, float]] = OrderedDict()
        self._shared: dict[Any, Any] = {}
        self.max_entries = max(1, max_entries)
        self.ttl_seconds = ttl_seconds
        self.dropped_at_cap = 0  # states dropped before their time (max_entries)
        self._cap_logged = (-math.inf, 0)

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
        items[user_key] = (self._compact(state), now)
        items.move_to_end(user_key)  # oldest first: the expired are all at the front
        while len(items) > self.max_entries:
            items.popitem(last=False)
            self.dropped_at_cap += 1
        while items and now - next(iter(items.values()))[1] > self.ttl_seconds:
            items.popitem(last=False)
        if self.dropped_at_cap > self._cap_logged[1]:
            self._log_cap(now)

    def drop(self, user_key: str) -> None:
        """Forget ``user_key``."""
        self._items.pop(user_key, None)

    def __len__(self) -> int:
        """Number of people held."""
        return len(self._items)

    # -- internals ------------------------------------------------------------------------

    def _share(self, value: Any) -> Any:
        """The one kept copy of an immutable value equal to ``value`` (itself if new)."""
        shared = self._shared
        kept = shared.get(value)
        if kept is None:
            if isinstance(value, Slots):
                area = value.area
                value = replace(
                    value,
                    topics=self._share(value.topics),
                    area=None if area is None else self._share(area),
                )
            if len(shared) >= _SHARED_MAX:
                shared.clear()  # values already shared stay shared; new ones start again
            kept = shared[value] = value
        return kept

    def _compact(self, state: DialogueState) -> DialogueState:
        changes: dict[str, Any] = {}
        for name in ("slots", "pending", "asked", "candidates", "offered"):
            value = getattr(state, name)
            if value:
                try:
                    kept = self._share(value)
                except TypeError:  # unhashable: a state rebuilt from broken JSON; kept as is
                    continue
                if kept is not value:
                    changes[name] = kept
        for name in _STRING_FIELDS:
            value = getattr(state, name)
            if type(value) is str:  # a state rebuilt from stored JSON may hold anything
                kept = sys.intern(value)
                if kept is not value:
                    changes[name] = kept
        return replace(state, **changes) if changes else state

    def _log_cap(self, now: float) -> None:
        # At most one line a minute, counts only.
        since, _ = self._cap_logged
        if now - since >= _CAP_LOG_SECONDS:
            logger.warning(
                "no-record states at the cap of %d people: %d dropped before their time so far",
                self.max_entries,
                self.dropped_at_cap,
            )
            self._cap_logged = (now, self.dropped_at_cap)
