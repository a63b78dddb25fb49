"""Escalation storage: the only module that runs SQL on cases, live messages, notes and audit.

Every text written here (live messages, notes, 紹介先) is masked for personal data right
before it is written. Nothing here logs text or user keys.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlite_utils

from handoff.escalation_migrations import MIGRATIONS
from handoff.models import (
    CRISIS_RANK,
    ESCALATION_CONSENTS,
    AuditEntry,
    CaseMessage,
    CaseSummary,
    Escalation,
    HistoryEntry,
    Note,
    Outcome,
)
from handoff.states import FINAL_STATES, OPEN_STATES, WAITING, check_move
from knowledge.db import migrate

logger = logging.getLogger(__name__)

Masker = Callable[[str], str]
MAX_TEXT_CHARS = 4000

_COLUMNS = (
    "id, user_key, channel, conversation_id, office_id, state, consent, reason, topics, "
    "audience, age_group, area_name, area_code, crisis, recommended, counselor, created_at, "
    "updated_at, due_at, last_activity, claimed_at, closed_at, outcome, close_reason, "
    "told_position"
)
_QUEUE_ORDER = "crisis_rank DESC, created_at, id"
_FINAL = "state IN ('closed', 'returned', 'abandoned')"


class NotFound(LookupError):
    """No escalation with this id."""


class Conflict(RuntimeError):
    """The case changed meanwhile (e.g. another counselor claimed it first)."""


def _default_mask(text: str) -> str:
    from intents.pii import mask  # lazy: loads Sudachi

    return mask(text).text


def _row(row: Sequence[Any]) -> Escalation:
    outcome = None
    if row[22]:
        data = json.loads(row[22])
        outcome = Outcome(
            referred_kinds=tuple(data.get("referred_kinds", ())),
            referred_to=str(data.get("referred_to", "")),
            resolved=bool(data.get("resolved", True)),
        )
    return Escalation(
        id=row[0],
        user_key=row[1],
        channel=row[2],
        conversation_id=row[3],
        office_id=row[4],
        state=row[5],
        consent=row[6],
        reason=row[7],
        summary=CaseSummary(
            topics=tuple(json.loads(row[8])),
            audience=row[9],
            age_group=row[10],
            area_name=row[11],
            area_code=row[12],
            crisis=row[13],
            recommended=tuple(json.loads(row[14])),
        ),
        counselor=row[15],
        created_at=row[16],
        updated_at=row[17],
        due_at=row[18],
        last_activity=row[19],
        claimed_at=row[20],
        closed_at=row[21],
        outcome=outcome,
        close_reason=row[23],
        told_position=row[24],
    )


class EscalationStore:
    """Cases, their history, live messages, notes and the audit log in SQLite."""

    def __init__(self, db: sqlite_utils.Database, mask: Masker | None = None) -> None:
        """Wrap an open, migrated database (use :meth:`open` to migrate)."""
        self.db = db
        self._mask = mask or _default_mask

    @classmethod
    def open(cls, db: sqlite_utils.Database, mask: Masker | None = None) -> EscalationStore:
        """Migrate the ``escalation`` tables (after the ``handoff`` ones) and return the store.

        Args:
            db: the project database; the conversation tables must exist already
                (``handoff.store.ConversationStore.open``).
            mask: text → masked text; defaults to ``intents.pii.mask``.

        Returns:
            The store.
        """
        migrate(db, "escalation", MIGRATIONS)
        return cls(db, mask)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run several writes atomically (BEGIN IMMEDIATE … COMMIT/ROLLBACK)."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _clean(self, text: str) -> str:
        return self._mask(text.strip()[:MAX_TEXT_CHARS])

    # -- cases --------------------------------------------------------------------------

    def create(
        self,
        *,
        user_key: str,
        channel: str,
        conversation_id: int | None,
        office_id: str,
        consent: str,
        reason: str,
        summary: CaseSummary,
        due_at: float,
        actor: str = "person",
        now: float | None = None,
    ) -> Escalation:
        """Put a new case in an office's queue.

        Raises:
            ValueError: unknown consent.
            Conflict: the person already has an open case.
        """
        if consent not in ESCALATION_CONSENTS:
            raise ValueError(f"unknown consent {consent!r}")
        now = time.time() if now is None else now
        try:
            with self.transaction():
                cur = self.db.execute(
                    "INSERT INTO escalations (user_key, channel, conversation_id, office_id, "
                    "state, consent, reason, topics, audience, age_group, area_name, "
                    "area_code, crisis, crisis_rank, recommended, created_at, updated_at, "
                    "due_at, last_activity) VALUES "
                    "(?, ?, ?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        user_key,
                        channel,
                        conversation_id,
                        office_id,
                        consent,
                        reason,
                        json.dumps(list(summary.topics)),
                        summary.audience,
                        summary.age_group,
                        summary.area_name,
                        summary.area_code,
                        summary.crisis,
                        CRISIS_RANK.get(summary.crisis, 0),
                        json.dumps(list(summary.recommended)),
                        now,
                        now,
                        due_at,
                        now,
                    ],
                )
                esc_id = int(cur.lastrowid or 0)
                self._history(esc_id, actor, "created", None, WAITING, office_id, now)
        except sqlite3.IntegrityError as exc:
            raise Conflict("the person already has an open case") from exc
        logger.info("escalation %d created for office %s (%s)", esc_id, office_id, reason)
        return self.get(esc_id)

    def get(self, escalation_id: int) -> Escalation:
        """The case with this id.

        Raises:
            NotFound: no such case.
        """
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM escalations WHERE id = ?", [escalation_id]
        ).fetchone()
        if row is None:
            raise NotFound(f"no escalation {escalation_id}")
        return _row(row)

    def open_for(self, user_key: str) -> Escalation | None:
        """The person's open (waiting, claimed or active) case, if any."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM escalations WHERE user_key = ? "
            "AND state IN ('waiting', 'claimed', 'active')",
            [user_key],
        ).fetchone()
        return _row(row) if row else None

    def latest_for(self, user_key: str) -> Escalation | None:
        """The person's most recent case in any state."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM escalations WHERE user_key = ? ORDER BY id DESC LIMIT 1",
            [user_key],
        ).fetchone()
        return _row(row) if row else None

    def queue(self, office_id: str | None = None) -> list[Escalation]:
        """Waiting cases, crisis first (urgent, concern), then oldest; all offices for None."""
        sql = f"SELECT {_COLUMNS} FROM escalations WHERE state = 'waiting'"
        params: list[Any] = []
        if office_id is not None:
            sql += " AND office_id = ?"
            params.append(office_id)
        return [_row(r) for r in self.db.execute(f"{sql} ORDER BY {_QUEUE_ORDER}", params)]

    def list_open(self, office_id: str | None = None) -> list[Escalation]:
        """Open cases (waiting first in queue order, then claimed/active by claim time)."""
        sql = f"SELECT {_COLUMNS} FROM escalations WHERE state IN ('waiting', 'claimed', 'active')"
        params: list[Any] = []
        if office_id is not None:
            sql += " AND office_id = ?"
            params.append(office_id)
        sql += f" ORDER BY state != 'waiting', {_QUEUE_ORDER}"
        return [_row(r) for r in self.db.execute(sql, params)]

    def list_recent_final(self, office_id: str | None = None, limit: int = 20) -> list[Escalation]:
        """Recently finished cases, newest first."""
        sql = f"SELECT {_COLUMNS} FROM escalations WHERE {_FINAL}"
        params: list[Any] = []
        if office_id is not None:
            sql += " AND office_id = ?"
            params.append(office_id)
        sql += " ORDER BY COALESCE(closed_at, updated_at) DESC LIMIT ?"
        params.append(limit)
        return [_row(r) for r in self.db.execute(sql, params)]

    def move(
        self,
        escalation_id: int,
        to_state: str,
        actor: str,
        *,
        expect: Sequence[str] | None = None,
        counselor: str | None = None,
        office_id: str | None = None,
        outcome: Outcome | None = None,
        close_reason: str | None = None,
        detail: str = "",
        action: str | None = None,
        now: float | None = None,
    ) -> Escalation:
        """Change a case's state, checked by the state machine and atomic against races.

        Args:
            escalation_id: the case.
            to_state: the new state.
            actor: who did it (user name, ``person``, ``system``).
            expect: states the case must be in (defaults to any that may move to ``to_state``).
            counselor: set the counselor (claim); a move to WAITING clears it.
            office_id: set the office (transfer).
            outcome: the outcome (close).
            close_reason: why it ended.
            detail: history detail (no personal data).
            action: history action name (defaults to the new state).
            now: timestamp.

        Returns:
            The changed case.

        Raises:
            NotFound: no such case.
            handoff.states.InvalidTransition: the machine does not allow it.
            Conflict: the case changed meanwhile.
        """
        now = time.time() if now is None else now
        with self.transaction():
            current = self.get(escalation_id)
            if expect is not None and current.state not in expect:
                raise Conflict(f"escalation {escalation_id} is {current.state}")
            check_move(current.state, to_state)
            sets = ["state = ?", "updated_at = ?", "last_activity = ?"]
            params: list[Any] = [to_state, now, now]
            if counselor is not None:
                sets += ["counselor = ?", "claimed_at = ?"]
                params += [counselor, now]
            elif to_state == WAITING:
                sets += ["counselor = NULL", "claimed_at = NULL", "told_position = NULL"]
            if office_id is not None:
                sets.append("office_id = ?")
                params.append(office_id)
            if to_state in FINAL_STATES:
                sets.append("closed_at = ?")
                params.append(now)
            if outcome is not None:
                sets.append("outcome = ?")
                params.append(
                    json.dumps(
                        {
                            "referred_kinds": list(outcome.referred_kinds),
                            "referred_to": self._clean(outcome.referred_to)
                            if outcome.referred_to.strip()
                            else "",
                            "resolved": outcome.resolved,
                        },
                        ensure_ascii=False,
                    )
                )
            if close_reason is not None:
                sets.append("close_reason = ?")
                params.append(close_reason)
            cur = self.db.execute(
                f"UPDATE escalations SET {', '.join(sets)} WHERE id = ? AND state = ?",
                [*params, escalation_id, current.state],
            )
            if cur.rowcount != 1:
                raise Conflict(f"escalation {escalation_id} changed meanwhile")
            self._history(
                escalation_id, actor, action or to_state, current.state, to_state, detail, now
            )
        logger.info(
            "escalation %d: %s → %s (%s)", escalation_id, current.state, to_state, action or ""
        )
        return self.get(escalation_id)

    def touch(self, escalation_id: int, now: float | None = None) -> None:
        """Record activity on a case (a message either way)."""
        now = time.time() if now is None else now
        self.db.execute(
            "UPDATE escalations SET last_activity = ?, updated_at = ? WHERE id = ?",
            [now, now, escalation_id],
        )

    def set_told_position(self, escalation_id: int, position: int | None) -> None:
        """Remember which place in the queue the person was last told."""
        self.db.execute(
            "UPDATE escalations SET told_position = ? WHERE id = ?", [position, escalation_id]
        )

    def raise_crisis(self, escalation_id: int, crisis: str) -> bool:
        """Raise a case's crisis level (never lowers it).

        Returns:
            True when the level went up.
        """
        rank = CRISIS_RANK.get(crisis, 0)
        cur = self.db.execute(
            "UPDATE escalations SET crisis = ?, crisis_rank = ? WHERE id = ? AND crisis_rank < ?",
            [crisis, rank, escalation_id, rank],
        )
        return cur.rowcount == 1

    def rehome(
        self, escalation_id: int, office_id: str, actor: str, now: float | None = None
    ) -> Escalation:
        """Move a waiting case to another office's queue (a transfer before any claim).

        Raises:
            Conflict: the case is no longer waiting.
        """
        now = time.time() if now is None else now
        with self.transaction():
            current = self.get(escalation_id)
            cur = self.db.execute(
                "UPDATE escalations SET office_id = ?, updated_at = ?, told_position = NULL "
                "WHERE id = ? AND state = 'waiting'",
                [office_id, now, escalation_id],
            )
            if cur.rowcount != 1:
                raise Conflict(f"escalation {escalation_id} is not waiting")
            detail = f"{current.office_id}→{office_id}"
            self._history(escalation_id, actor, "transferred", WAITING, WAITING, detail, now)
        return self.get(escalation_id)

    def forget_person(self, user_key: str, now: float | None = None) -> int:
        """Unlink every case of ``user_key``; delete their live messages and notes.

        Open cases end as abandoned (reason ``deleted``). Categories and outcomes stay.

        Returns:
            How many cases were unlinked.
        """
        with self.transaction():
            ids = [
                r[0]
                for r in self.db.execute(
                    "SELECT id FROM escalations WHERE user_key = ?", [user_key]
                )
            ]
            for esc_id in ids:
                self.db.execute(
                    "DELETE FROM escalation_messages WHERE escalation_id = ?", [esc_id]
                )
                self.db.execute("DELETE FROM escalation_notes WHERE escalation_id = ?", [esc_id])
            self.db.execute(
                "UPDATE escalations SET "
                "close_reason = CASE WHEN state IN ('waiting', 'claimed', 'active') "
                "THEN 'deleted' ELSE close_reason END, "
                "closed_at = CASE WHEN state IN ('waiting', 'claimed', 'active') "
                "THEN ? ELSE closed_at END, "
                "state = CASE WHEN state IN ('waiting', 'claimed', 'active') "
                "THEN 'abandoned' ELSE state END, user_key = NULL WHERE user_key = ?",
                [time.time() if now is None else now, user_key],
            )
        return len(ids)

    def purge_expired(self, retention_days: int, now: float | None = None) -> int:
        """Unlink finished cases past retention and delete their messages and notes.

        Returns:
            How many cases were purged.
        """
        now = time.time() if now is None else now
        cutoff = now - retention_days * 86400
        with self.transaction():
            ids = [
                r[0]
                for r in self.db.execute(
                    f"SELECT id FROM escalations WHERE {_FINAL} "
                    "AND COALESCE(closed_at, updated_at) < ? AND (user_key IS NOT NULL OR id IN "
                    "(SELECT escalation_id FROM escalation_messages))",
                    [cutoff],
                )
            ]
            for esc_id in ids:
                self.db.execute(
                    "DELETE FROM escalation_messages WHERE escalation_id = ?", [esc_id]
                )
                self.db.execute("DELETE FROM escalation_notes WHERE escalation_id = ?", [esc_id])
                self.db.execute("UPDATE escalations SET user_key = NULL WHERE id = ?", [esc_id])
        return len(ids)

    def delete_expired(self, retention_days: int, now: float | None = None) -> int:
        """Delete finished cases past retention with their history, live chat and notes.

        The audit log keeps its entries (who opened which case number, and when): it holds
        no text of the conversation and is the record of access.

        Returns:
            How many cases were deleted.
        """
        now = time.time() if now is None else now
        cutoff = now - retention_days * 86400
        cur = self.db.execute(
            f"DELETE FROM escalations WHERE {_FINAL} AND COALESCE(closed_at, updated_at) < ?",
            [cutoff],
        )
        if cur.rowcount:
            logger.info("deleted %d finished cases past retention", cur.rowcount)
        return cur.rowcount

    def open_cases_idle(self) -> list[Escalation]:
        """All open cases (for the abandonment check)."""
        return [
            _row(r)
            for r in self.db.execute(
                f"SELECT {_COLUMNS} FROM escalations WHERE state IN "
                f"({', '.join('?' for _ in OPEN_STATES)})",
                sorted(OPEN_STATES),
            )
        ]

    def mean_handling_seconds(self, office_id: str, last: int = 20) -> float | None:
        """Mean time from claim to close of the office's last closed cases."""
        row = self.db.execute(
            "SELECT AVG(closed_at - claimed_at), COUNT(*) FROM (SELECT closed_at, claimed_at "
            "FROM escalations WHERE office_id = ? AND state = 'closed' AND claimed_at IS NOT NULL "
            "ORDER BY closed_at DESC LIMIT ?)",
            [office_id, last],
        ).fetchone()
        return float(row[0]) if row and row[1] else None

    def outcome_counts(self, since: float = 0.0) -> dict[str, int]:
        """How often each resource kind was referred to in closed cases since ``since``."""
        counts: dict[str, int] = {}
        for (raw,) in self.db.execute(
            "SELECT outcome FROM escalations WHERE state = 'closed' AND outcome IS NOT NULL "
            "AND closed_at >= ?",
            [since],
        ):
            for kind in json.loads(raw).get("referred_kinds", ()):
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    # -- history ----------------------------------------------------------------------

    def _history(
        self,
        escalation_id: int,
        actor: str,
        action: str,
        from_state: str | None,
        to_state: str,
        detail: str,
        now: float,
    ) -> None:
        self.db.execute(
            "INSERT INTO escalation_history (escalation_id, at, actor, action, from_state, "
            "to_state, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [escalation_id, now, actor, action, from_state, to_state, detail],
        )

    def history(self, escalation_id: int) -> list[HistoryEntry]:
        """The state changes of a case, oldest first."""
        return [
            HistoryEntry(*r)
            for r in self.db.execute(
                "SELECT at, actor, action, from_state, to_state, detail FROM escalation_history "
                "WHERE escalation_id = ? ORDER BY id",
                [escalation_id],
            )
        ]

    # -- live messages and notes ------------------------------------------------------

    def add_message(
        self,
        escalation_id: int,
        sender: str,
        text: str,
        *,
        author: str | None = None,
        kind: str = "text",
        resource_id: str | None = None,
        now: float | None = None,
    ) -> CaseMessage:
        """Mask and keep one message of the live chat.

        Raises:
            ValueError: unknown sender or kind.
        """
        if sender not in ("person", "counselor", "system") or kind not in ("text", "resource"):
            raise ValueError("unknown sender or kind")
        now = time.time() if now is None else now
        masked = self._clean(text) if kind == "text" else text.strip()[:MAX_TEXT_CHARS]
        cur = self.db.execute(
            "INSERT INTO escalation_messages (escalation_id, sender, author, kind, text, "
            "resource_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [escalation_id, sender, author, kind, masked, resource_id, now],
        )
        self.touch(escalation_id, now)
        return CaseMessage(
            int(cur.lastrowid or 0), escalation_id, sender, author, kind, masked, resource_id, now
        )

    def messages(self, escalation_id: int) -> list[CaseMessage]:
        """The live chat of a case, oldest first."""
        return [
            CaseMessage(*r)
            for r in self.db.execute(
                "SELECT id, escalation_id, sender, author, kind, text, resource_id, created_at "
                "FROM escalation_messages WHERE escalation_id = ? ORDER BY id",
                [escalation_id],
            )
        ]

    def add_note(
        self, escalation_id: int, author: str, text: str, now: float | None = None
    ) -> Note:
        """Mask and keep an internal note (never sent to the person)."""
        now = time.time() if now is None else now
        masked = self._clean(text)
        cur = self.db.execute(
            "INSERT INTO escalation_notes (escalation_id, author, text, created_at) "
            "VALUES (?, ?, ?, ?)",
            [escalation_id, author, masked, now],
        )
        return Note(int(cur.lastrowid or 0), escalation_id, author, masked, now)

    def notes(self, escalation_id: int) -> list[Note]:
        """The internal notes of a case, oldest first."""
        return [
            Note(*r)
            for r in self.db.execute(
                "SELECT id, escalation_id, author, text, created_at FROM escalation_notes "
                "WHERE escalation_id = ? ORDER BY id",
                [escalation_id],
            )
        ]

    # -- audit --------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        escalation_id: int,
        conversation_id: int | None,
        detail: str = "",
        now: float | None = None,
    ) -> AuditEntry:
        """Write one audit entry (who, when, which case and conversation)."""
        now = time.time() if now is None else now
        cur = self.db.execute(
            "INSERT INTO escalation_audit (at, actor, action, escalation_id, conversation_id, "
            "detail) VALUES (?, ?, ?, ?, ?, ?)",
            [now, actor, action, escalation_id, conversation_id, detail],
        )
        return AuditEntry(
            int(cur.lastrowid or 0), now, actor, action, escalation_id, conversation_id, detail
        )

    def audit_log(
        self,
        *,
        escalation_id: int | None = None,
        actor: str | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        """Read audit entries, newest first, optionally for one case or one actor."""
        sql = (
            "SELECT id, at, actor, action, escalation_id, conversation_id, detail "
            "FROM escalation_audit"
        )
        where: list[str] = []
        params: list[Any] = []
        if escalation_id is not None:
            where.append("escalation_id = ?")
            params.append(escalation_id)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [AuditEntry(*r) for r in self.db.execute(sql, params)]
