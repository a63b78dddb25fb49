"""LINE user ids, AES-GCM encrypted, so a later answer (a counselor's) can still be pushed.

The engine and every other table only see the HMAC user key. Pushing needs the real id,
so this one table keeps it sealed with a key derived from the server secret, bound to
the user key (associated data), and forgets it on unfollow, on 履歴を消して and after
the retention period. The only SQL on ``line_users`` is here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time

import sqlite_utils
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from knowledge.db import migrate

logger = logging.getLogger(__name__)


def _v001(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE line_users (user_key TEXT PRIMARY KEY, sealed BLOB NOT NULL, "
        "updated_at REAL NOT NULL)"
    )
    db.execute("CREATE INDEX line_users_updated ON line_users (updated_at)")


MIGRATIONS = (_v001,)


class LineIdVault:
    """user key → LINE user id, encrypted at rest."""

    def __init__(self, db: sqlite_utils.Database, secret: str) -> None:
        """Migrate the table and derive the key.

        Args:
            db: the project database.
            secret: the server secret (``Config.secret``).
        """
        migrate(db, "line", MIGRATIONS)
        self.db = db
        key = hmac.new(secret.encode(), b"tsunagu line user id v1", hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def remember(self, user_key: str, line_user_id: str, now: float | None = None) -> None:
        """Store (or refresh) the sealed id of ``user_key``."""
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, line_user_id.encode(), user_key.encode())
        self.db.execute(
            "INSERT INTO line_users (user_key, sealed, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(user_key) DO UPDATE SET sealed = excluded.sealed, "
            "updated_at = excluded.updated_at",
            [user_key, sealed, time.time() if now is None else now],
        )

    def lookup(self, user_key: str) -> str | None:
        """Return the LINE user id of ``user_key``, or None when unknown or unreadable."""
        row = self.db.execute(
            "SELECT sealed FROM line_users WHERE user_key = ?", [user_key]
        ).fetchone()
        if row is None:
            return None
        sealed = bytes(row[0])
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], user_key.encode()).decode()
        except InvalidTag:
            # Another secret (rotated) or a tampered row: the id is lost, not guessed.
            logger.warning("a stored LINE id cannot be decrypted (secret changed?)")
            return None

    def forget(self, user_key: str) -> bool:
        """Delete the id of ``user_key``; True when one was stored."""
        cur = self.db.execute("DELETE FROM line_users WHERE user_key = ?", [user_key])
        return cur.rowcount > 0

    def purge(self, retention_days: int, now: float | None = None) -> int:
        """Delete ids not seen for ``retention_days``; returns how many."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        cur = self.db.execute("DELETE FROM line_users WHERE updated_at < ?", [cutoff])
        return cur.rowcount
