"""Staff web sessions, login throttling and the login audit log: the only SQL on those tables.

Session ids are never stored: only their SHA-256, so a copy of the database file does not
let anyone take over a session. Policy (idle/absolute expiry, lockout thresholds) belongs to
the caller; this module only records and answers.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlite_utils

from knowledge.db import migrate

PACKAGE = "sessions"


def v001_initial(db: sqlite_utils.Database) -> None:
    """Sessions (hashed ids), failed-login counters and the login audit log."""
    db.execute(
        """CREATE TABLE web_sessions (
            id_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL,
            csrf_token TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX web_sessions_user ON web_sessions (user_id)")
    db.execute(
        """CREATE TABLE login_failures (
            key TEXT NOT NULL,
            at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX login_failures_key ON login_failures (key, at)")
    db.execute(
        """CREATE TABLE login_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            user_name TEXT NOT NULL,
            event TEXT NOT NULL,
            remote TEXT
        )"""
    )


MIGRATIONS = (v001_initial,)


def hash_id(raw: str) -> str:
    """The stored form of a session id (SHA-256 hex; ids are 256-bit random, no salt needed)."""
    return hashlib.sha256(raw.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One stored session (the raw id is only known to the browser holding the cookie)."""

    id_hash: str
    user_id: int
    csrf_token: str
    created_at: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One line of the login audit log (never a password)."""

    id: int
    at: float
    user_name: str
    event: str  # login | failure | locked | logout | logout_all
    remote: str | None


class SessionStore:
    """Sessions, failed-login counters and the login audit in the project database."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        """Wrap a migrated database; prefer :meth:`open`."""
        self.db = db

    @classmethod
    def open(cls, db: sqlite_utils.Database) -> SessionStore:
        """Migrate the ``sessions`` tables and return the store.

        Raises:
            knowledge.db.DatabaseError: migration failed.
        """
        migrate(db, PACKAGE, MIGRATIONS)
        return cls(db)

    # -- sessions -----------------------------------------------------------------------

    def create(self, user_id: int, now: float | None = None) -> tuple[str, SessionRecord]:
        """Start a session; returns the raw id (for the cookie only) and the record."""
        now = time.time() if now is None else now
        raw = secrets.token_urlsafe(32)
        record = SessionRecord(hash_id(raw), user_id, secrets.token_urlsafe(32), now, now)
        self.db.execute(
            "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, last_seen) "
            "VALUES (?, ?, ?, ?, ?)",
            [record.id_hash, user_id, record.csrf_token, now, now],
        )
        return raw, record

    def get(self, raw: str) -> SessionRecord | None:
        """The session with this raw id, expired or not."""
        row = self.db.execute(
            "SELECT id_hash, user_id, csrf_token, created_at, last_seen FROM web_sessions "
            "WHERE id_hash = ?",
            [hash_id(raw)],
        ).fetchone()
        return None if row is None else SessionRecord(*row)

    def touch(self, id_hash: str, now: float) -> None:
        """Record activity on a session (for the idle timeout)."""
        self.db.execute("UPDATE web_sessions SET last_seen = ? WHERE id_hash = ?", [now, id_hash])

    def delete(self, id_hash: str) -> None:
        """End one session."""
        self.db.execute("DELETE FROM web_sessions WHERE id_hash = ?", [id_hash])

    def delete_for_user(self, user_id: int) -> int:
        """End every session of an account; returns how many there were."""
        cur = self.db.execute("DELETE FROM web_sessions WHERE user_id = ?", [user_id])
        return cur.rowcount

    def count_for_user(self, user_id: int) -> int:
        """How many sessions an account has (expired ones included until purged)."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM web_sessions WHERE user_id = ?", [user_id]
        ).fetchone()
        return int(row[0])

    def purge(self, idle_seconds: float, absolute_seconds: float, now: float | None = None) -> int:
        """Delete sessions past either expiry; returns how many."""
        now = time.time() if now is None else now
        cur = self.db.execute(
            "DELETE FROM web_sessions WHERE last_seen < ? OR created_at < ?",
            [now - idle_seconds, now - absolute_seconds],
        )
        return cur.rowcount

    # -- throttling ---------------------------------------------------------------------

    def add_failure(self, key: str, now: float | None = None) -> None:
        """Count one failed login for a key (``user:NAME`` or ``ip:ADDR``)."""
        now = time.time() if now is None else now
        self.db.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", [key, now])

    def failures(self, key: str, since: float) -> tuple[int, float | None]:
        """(failed logins for a key since a time, time of the latest one)."""
        row = self.db.execute(
            "SELECT COUNT(*), MAX(at) FROM login_failures WHERE key = ? AND at >= ?",
            [key, since],
        ).fetchone()
        return int(row[0]), (None if row[1] is None else float(row[1]))

    def clear_failures(self, key: str) -> None:
        """Forget the failures of a key (after a successful login or an admin reset)."""
        self.db.execute("DELETE FROM login_failures WHERE key = ?", [key])

    def purge_failures(self, before: float) -> int:
        """Delete failure records older than a time."""
        return self.db.execute("DELETE FROM login_failures WHERE at < ?", [before]).rowcount

    # -- audit --------------------------------------------------------------------------

    def audit(
        self, user_name: str, event: str, remote: str | None, now: float | None = None
    ) -> None:
        """Append a login event (the name as typed, cut to 64 characters)."""
        now = time.time() if now is None else now
        self.db.execute(
            "INSERT INTO login_audit (at, user_name, event, remote) VALUES (?, ?, ?, ?)",
            [now, user_name[:64], event, remote],
        )

    def recent_logins(self, limit: int = 100) -> list[LoginEvent]:
        """The latest login events, newest first."""
        rows = self.db.execute(
            "SELECT id, at, user_name, event, remote FROM login_audit ORDER BY id DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [LoginEvent(*r) for r in rows]
