"""Conversation storage: the only module that runs SQL on conversations, messages and events.

Message text is masked for personal data here, right before it is written, so no caller can
store raw text by mistake. Nothing in this module logs text or user keys.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlite_utils

from handoff.migrations import MIGRATIONS
from knowledge.db import migrate, retry_busy

if TYPE_CHECKING:
    from intents.types import Analysis

logger = logging.getLogger(__name__)

CONSENT_VALUES = ("none", "granted", "declined")
_JST = timezone(timedelta(hours=9))

Masker = Callable[[str], str]

# tsunagu's own replies are templates and resource names that repeat turn after turn; their
# masked form is cached (masking a long reply costs ~3 ms, more than understanding the
# message). Only outgoing text is cached: the person's words are never kept in memory.
_OUT_CACHE_SIZE = 512
_OUT_CACHE_SECONDS = 3600.0  # texts not sent for an hour (edited templates) are dropped
_MAX_PENDING_COUNTS = 1000


def _default_mask(text: str, analysis: Analysis | None = None) -> str:
    # Imported lazily: the masker loads Sudachi, which the store's own tests may not need.
    from intents.pii import mask

    return mask(text, analysis).text


@dataclass(frozen=True, slots=True)
class Conversation:
    """One person's conversation as stored (state is the engine's JSON-able mapping)."""

    id: int
    user_key: str
    channel: str
    state: Mapping[str, Any]
    consent: str
    created_at: float
    updated_at: float
    last_activity: float


@dataclass(frozen=True, slots=True)
class TurnMessage:
    """A message to store with a turn (see :meth:`ConversationStore.save_turn`)."""

    direction: str  # in | out
    text: str  # masked by the store before it is written
    channel_message_id: str | None = None
    analysis: Analysis | None = None  # the triage analysis of ``text``, if the caller has it


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One masked message of a conversation."""

    id: int
    direction: str  # in | out
    text: str  # already masked
    channel_message_id: str | None
    created_at: float


class ConversationStore:
    """Conversations, masked messages, anonymous counts and processed-event ids in SQLite."""

    def __init__(self, db: sqlite_utils.Database, mask: Masker | None = None) -> None:
        """Wrap an open, migrated database (use :meth:`open` to migrate).

        Args:
            db: the project database.
            mask: text → masked text; defaults to ``intents.pii.mask``.
        """
        self.db = db
        self._mask = mask or _default_mask
        # Least recently used first: text → (masked text, last use).
        self._masked_out: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # Anonymous counters waiting to be written with the next save (one commit per turn
        # instead of one per counter) or by flush_counts().
        self._pending_counts: Counter[tuple[str, str, str]] = Counter()

    @classmethod
    def open(cls, db: sqlite_utils.Database, mask: Masker | None = None) -> ConversationStore:
        """Migrate the ``handoff`` tables and return the store.

        Args:
            db: the project database (``knowledge.db.connect``).
            mask: optional masker (tests); defaults to ``intents.pii.mask``.

        Returns:
            The store.
        """
        migrate(db, "handoff", MIGRATIONS)
        return cls(db, mask)

    # -- conversations -------------------------------------------------------------------

    def get(self, user_key: str) -> Conversation | None:
        """Return the stored conversation of ``user_key``, or None."""
        row = self.db.execute(
            "SELECT id, user_key, channel, state, consent, created_at, updated_at, "
            "last_activity FROM conversations WHERE user_key = ?",
            [user_key],
        ).fetchone()
        if row is None:
            return None
        try:
            state = json.loads(row[3])
        except ValueError:
            logger.warning("conversation %d has unreadable state; starting afresh", row[0])
            state = {}
        return Conversation(
            id=row[0],
            user_key=row[1],
            channel=row[2],
            state=state if isinstance(state, dict) else {},
            consent=row[4],
            created_at=row[5],
            updated_at=row[6],
            last_activity=row[7],
        )

    def save(
        self,
        user_key: str,
        channel: str,
        state: Mapping[str, Any],
        consent: str,
        now: float | None = None,
    ) -> int:
        """Create or update the conversation of ``user_key``.

        Args:
            user_key: pseudonymous key.
            channel: line | web | terminal.
            state: JSON-serialisable engine state (no raw message text).
            consent: none | granted | declined.
            now: timestamp (defaults to the current time).

        Returns:
            The conversation id.

        Raises:
            ValueError: unknown consent value.
        """
        if consent not in CONSENT_VALUES:
            raise ValueError(f"unknown consent {consent!r}")
        now = time.time() if now is None else now
        payload = json.dumps(dict(state), ensure_ascii=False, sort_keys=True)

        def write() -> int:
            with self._transaction():
                conversation_id = self._upsert(user_key, channel, payload, consent, now)
                self._write_counts()
            return conversation_id

        conversation_id = retry_busy(write)
        self._pending_counts.clear()
        return conversation_id

    def save_turn(
        self,
        user_key: str,
        channel: str,
        state: Mapping[str, Any],
        consent: str,
        messages: Sequence[TurnMessage] = (),
        now: float | None = None,
    ) -> int:
        """Save a conversation and append messages to it in one transaction.

        The same as :meth:`save` followed by :meth:`add_message` for each message, but
        one commit instead of one per row; the texts are masked before the transaction.

        Args:
            user_key: pseudonymous key.
            channel: line | web | terminal.
            state: JSON-serialisable engine state (no raw message text).
            consent: none | granted | declined.
            messages: what the person said and what tsunagu answered, in order.
            now: timestamp (defaults to the current time).

        Returns:
            The conversation id.

        Raises:
            ValueError: unknown consent value or message direction.
        """
        if consent not in CONSENT_VALUES:
            raise ValueError(f"unknown consent {consent!r}")
        now = time.time() if now is None else now
        rows = [
            (m.direction, self._masked(m.direction, m.text, m.analysis), m.channel_message_id)
            for m in messages
        ]
        payload = json.dumps(dict(state), ensure_ascii=False, sort_keys=True)

        def write() -> int:
            with self._transaction():
                conversation_id = self._upsert(user_key, channel, payload, consent, now)
                self._write_counts()
                self.db.conn.executemany(
                    "INSERT INTO messages (conversation_id, direction, text, channel_message_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?)",
                    [(conversation_id, d, text, mid, now) for d, text, mid in rows],
                )
            return conversation_id

        conversation_id = retry_busy(write)
        self._pending_counts.clear()
        return conversation_id

    def _upsert(self, user_key: str, channel: str, payload: str, consent: str, now: float) -> int:
        row = self.db.execute(
            "INSERT INTO conversations "
            "(user_key, channel, state, consent, created_at, updated_at, last_activity) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(user_key) DO UPDATE SET channel = excluded.channel, "
            "state = excluded.state, consent = excluded.consent, "
            "updated_at = excluded.updated_at, last_activity = excluded.last_activity "
            "RETURNING id",
            [user_key, channel, payload, consent, now, now, now],
        ).fetchone()
        return int(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One atomic unit: a transaction, or a savepoint inside a caller's transaction."""
        conn = self.db.conn
        nested = conn.in_transaction
        conn.execute("SAVEPOINT store_write" if nested else "BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # SQLite may have rolled back already (disk full, I/O error): a second rollback
            # would fail and hide the error the operator needs to see.
            if conn.in_transaction:
                if nested:
                    conn.execute("ROLLBACK TO store_write")
                    conn.execute("RELEASE store_write")
                else:
                    conn.execute("ROLLBACK")
            raise
        conn.execute("RELEASE store_write" if nested else "COMMIT")

    def _write_counts(self) -> None:
        if self._pending_counts:
            self.db.conn.executemany(
                "INSERT INTO anonymous_counts (day, metric, key, n) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(day, metric, key) DO UPDATE SET n = n + excluded.n",
                [(*k, n) for k, n in self._pending_counts.items()],
            )

    def delete_conversation(self, user_key: str) -> bool:
        """Delete everything stored about ``user_key`` now (conversation and its messages).

        Returns:
            True when something was deleted.
        """
        cur = retry_busy(
            lambda: self.db.execute("DELETE FROM conversations WHERE user_key = ?", [user_key])
        )
        deleted = cur.rowcount > 0
        if deleted:
            logger.info("conversation deleted on request")
        return deleted

    def purge_expired(self, retention_days: int, now: float | None = None) -> int:
        """Delete conversations whose last activity is older than the retention period.

        Returns:
            How many conversations were deleted.
        """
        now = time.time() if now is None else now
        cutoff = now - retention_days * 86400
        cur = retry_busy(
            lambda: self.db.execute("DELETE FROM conversations WHERE last_activity < ?", [cutoff])
        )
        if cur.rowcount:
            logger.info("purged %d conversations past retention", cur.rowcount)
        return cur.rowcount

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        direction: str,
        text: str,
        channel_message_id: str | None = None,
        now: float | None = None,
        analysis: Analysis | None = None,
    ) -> int:
        """Mask ``text`` and append it to a conversation.

        Args:
            conversation_id: id returned by :meth:`save`.
            direction: ``in`` (from the person) or ``out`` (from tsunagu).
            text: the message; masked here before it is written.
            channel_message_id: the channel's message id (LINE unsend), if any.
            now: timestamp.
            analysis: the triage analysis of ``text``, if the caller has it: the default
                masker reuses its tokens when they fit (same result, one Sudachi run less).

        Returns:
            The message id.

        Raises:
            ValueError: unknown direction.
        """
        masked = self._masked(direction, text, analysis)
        now = time.time() if now is None else now
        cur = retry_busy(
            lambda: self.db.execute(
                "INSERT INTO messages (conversation_id, direction, text, channel_message_id, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                [conversation_id, direction, masked, channel_message_id, now],
            )
        )
        return int(cur.lastrowid or 0)

    def _masked(self, direction: str, text: str, analysis: Analysis | None) -> str:
        if direction == "out":
            return self._mask_out(text)
        if direction != "in":
            raise ValueError(f"unknown direction {direction!r}")
        if analysis is not None and self._mask is _default_mask:
            return _default_mask(text, analysis)
        return self._mask(text)

    def _mask_out(self, text: str) -> str:
        cache = self._masked_out
        now = time.monotonic()
        hit = cache.pop(text, None)
        masked = self._mask(text) if hit is None else hit[0]
        cache[text] = (masked, now)
        if len(cache) > _OUT_CACHE_SIZE:
            cache.popitem(last=False)
        while cache and now - next(iter(cache.values()))[1] > _OUT_CACHE_SECONDS:
            cache.popitem(last=False)
        return masked

    def messages(self, user_key: str) -> list[StoredMessage]:
        """Return the masked messages of ``user_key``'s conversation, oldest first."""
        rows = self.db.execute(
            "SELECT m.id, m.direction, m.text, m.channel_message_id, m.created_at "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.user_key = ? ORDER BY m.id",
            [user_key],
        ).fetchall()
        return [StoredMessage(*row) for row in rows]

    def delete_message(self, user_key: str, channel_message_id: str) -> bool:
        """Delete one message the person withdrew (e.g. LINE unsend).

        Returns:
            True when a message was deleted.
        """
        cur = retry_busy(
            lambda: self.db.execute(
                "DELETE FROM messages WHERE channel_message_id = ? AND conversation_id IN "
                "(SELECT id FROM conversations WHERE user_key = ?)",
                [channel_message_id, user_key],
            )
        )
        return cur.rowcount > 0

    # -- anonymous counts -------------------------------------------------------------------

    def count(self, metric: str, key: str = "", now: float | None = None) -> None:
        """Add one to an anonymous daily counter (no user key, no text).

        The increment is written with the next :meth:`save` (in the same transaction) or
        by :meth:`flush_counts`, which the service calls every second and on shutdown: a
        crash loses at most the last second of counters, never a conversation.

        Args:
            metric: e.g. ``turn``, ``topic``, ``audience``, ``crisis``, ``consent``.
            key: the id counted, e.g. ``drugs``.
            now: timestamp; the day is taken in Japan time.
        """
        now = time.time() if now is None else now
        day = datetime.fromtimestamp(now, _JST).date().isoformat()
        self._pending_counts[(day, metric, key)] += 1
        if len(self._pending_counts) >= _MAX_PENDING_COUNTS:
            self.flush_counts()

    def flush_counts(self) -> None:
        """Write the anonymous counters still held in memory (periodically and on close)."""
        if not self._pending_counts:
            return

        def write() -> None:
            with self._transaction():
                self._write_counts()

        retry_busy(write)
        self._pending_counts.clear()

    def counts(self, metric: str | None = None) -> dict[tuple[str, str, str], int]:
        """Return the anonymous counters as ``{(day, metric, key): n}``."""
        self.flush_counts()
        sql = "SELECT day, metric, key, n FROM anonymous_counts"
        params: list[str] = []
        if metric is not None:
            sql += " WHERE metric = ?"
            params.append(metric)
        return {(d, m, k): int(n) for d, m, k, n in self.db.execute(sql, params).fetchall()}

    # -- processed channel events (webhook redelivery) -----------------------------------

    def claim_event(self, event_id: str, ttl_seconds: int = 86400) -> bool:
        """Claim a channel event id once; redeliveries of the same id return False.

        The claim is one atomic INSERT OR IGNORE, persisted, so it holds across restarts
        and between concurrent handlers. An expired claim may be claimed again.

        Args:
            event_id: the channel's event id (e.g. LINE ``webhookEventId``).
            ttl_seconds: how long the claim is remembered.

        Returns:
            True when this call claimed the event (process it), False for a duplicate.
        """
        now = time.time()

        def write() -> bool:
            with self._transaction():
                self.db.execute(
                    "DELETE FROM processed_events WHERE event_id = ? AND expires_at <= ?",
                    [event_id, now],
                )
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO processed_events (event_id, expires_at) VALUES (?, ?)",
                    [event_id, now + ttl_seconds],
                )
                return cur.rowcount == 1

        return retry_busy(write)

    def purge_events(self, now: float | None = None) -> int:
        """Forget event claims past their expiry.

        Returns:
            How many claims were removed.
        """
        now = time.time() if now is None else now
        cur = retry_busy(
            lambda: self.db.execute("DELETE FROM processed_events WHERE expires_at <= ?", [now])
        )
        return cur.rowcount
