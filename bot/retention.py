"""Retention: delete what is past the retention period and make deleted text unrecoverable.

One function, :func:`purge`, used by ``tsunagu purge`` and by the periodic task of
``bot.core``: conversations and their messages, finished escalations with their live chat
and notes, expired webhook-event claims and sealed LINE ids not seen for the period. After
deleting, the WAL is checkpointed and truncated: with ``secure_delete`` on, deleted rows
are zeroed in the database file, and the truncation removes the older copies of those
pages that the write-ahead log still held.

:func:`setup` (a feature of the app) also checkpoints right after a person deletes their
own conversation (履歴を消して, 会話を消す, LINE unfollow) and forgets their sealed LINE id.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass

import sqlite_utils
from aiohttp import web

from bot import keys
from bot.config import Config
from handoff.escalation_store import EscalationStore
from handoff.store import ConversationStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """How much one purge deleted (counts only)."""

    conversations: int = 0
    escalations: int = 0
    escalations_unlinked: int = 0
    events: int = 0
    line_ids: int = 0
    checkpointed: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        """The counts as a mapping (CLI output, logs)."""
        return {
            "conversations": self.conversations,
            "escalations": self.escalations,
            "escalations_unlinked": self.escalations_unlinked,
            "events": self.events,
            "line_ids": self.line_ids,
            "checkpointed": self.checkpointed,
        }


def _tables(db: sqlite_utils.Database) -> set[str]:
    return set(db.table_names())


def checkpoint(db: sqlite_utils.Database) -> bool:
    """Copy the WAL into the database file and truncate it to zero bytes.

    Returns:
        True when the WAL was fully checkpointed (False when a reader kept it busy; the
        next purge tries again).
    """
    try:
        row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError as exc:
        logger.warning("WAL checkpoint failed: %s", type(exc).__name__)
        return False
    busy = bool(row and row[0])
    if busy:
        logger.info("WAL checkpoint incomplete (database busy); retried at the next purge")
    return not busy


def purge(
    db: sqlite_utils.Database, config: Config, now: float | None = None, *, vacuum: bool = False
) -> PurgeReport:
    """Delete everything past ``config.retention_days`` and checkpoint the WAL.

    Only tables that exist are touched, so this may run before every feature has
    migrated its tables (e.g. at start-up).

    Args:
        db: the project database (``knowledge.db.connect``).
        config: the service configuration (retention period, secret).
        now: the current time (tests).
        vacuum: also rebuild the file (``VACUUM``) so it shrinks; not needed for privacy
            (secure_delete zeroes deleted rows) and slow on a large file.

    Returns:
        The counts of what was deleted.
    """
    now = time.time() if now is None else now
    days = config.retention_days
    tables = _tables(db)
    conversations = events = escalations = unlinked = line_ids = 0
    if "conversations" in tables:
        store = ConversationStore(db)
        # Deleting a conversation also empties and unlinks its cases (trigger of handoff).
        conversations = store.purge_expired(days, now=now)
        events = store.purge_events(now=now)
    if "escalations" in tables:
        cases = EscalationStore(db)
        unlinked = cases.purge_expired(days, now=now)
        escalations = cases.delete_expired(days, now=now)
    if "line_users" in tables:
        from bot.channels.line_ids import LineIdVault

        line_ids = LineIdVault(db, config.secret).purge(days, now=now)
    if vacuum:
        db.execute("VACUUM")
    report = PurgeReport(
        conversations=conversations,
        escalations=escalations,
        escalations_unlinked=unlinked,
        events=events,
        line_ids=line_ids,
        checkpointed=checkpoint(db),
    )
    logger.info(
        "purge: %d conversations, %d cases (%d unlinked), %d event ids, %d LINE ids",
        conversations,
        escalations,
        unlinked,
        events,
        line_ids,
    )
    return report


# -- the app: deletion on request ---------------------------------------------------------


def _forget_line_id(app: web.Application, user_key: str) -> None:
    """履歴を消して on LINE: the sealed id goes with the conversation."""
    if not user_key.startswith("line:") or "line_users" not in _tables(app[keys.DB]):
        return
    from bot.channels.line_ids import LineIdVault

    LineIdVault(app[keys.DB], app[keys.CONFIG].secret).forget(user_key)


def _after_forget(app: web.Application, user_key: str) -> None:
    """Runs before the engine deletes; the checkpoint is queued to run right after it."""
    _forget_line_id(app, user_key)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called outside the app's loop (library use): nothing to queue
        return
    loop.call_soon(checkpoint, app[keys.DB])


async def _attach(app: web.Application) -> None:
    app[keys.ENGINE].forget_hooks.append(lambda key: _after_forget(app, key))


def setup(app: web.Application) -> None:
    """Forget LINE ids and checkpoint the WAL whenever a person deletes their conversation."""
    app.on_startup.append(_attach)
