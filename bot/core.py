"""Shared resources of the app: the database, knowledge base, conversation store and engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator

import sqlite_utils
from aiohttp import web

from bot import keys, retention
from bot.channels.base import IncomingMessage
from bot.config import Config
from bot.dialogue.engine import Engine
from bot.dialogue.replies import Reply, TextReply
from handoff.store import ConversationStore
from knowledge.base import KnowledgeBase
from knowledge.db import connect, storage_problem

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600
FLUSH_INTERVAL_SECONDS = 1.0
# Said when the database refuses a write (disk full, read-only): the knowledge base may be
# unreadable too, so this text does not come from a template. 110/119: reference README.
STORAGE_FAILED = (
    "申し訳ありません。いまシステムの不具合で、メッセージを受け付けられませんでした。"
    "少し時間をおいて、もう一度送ってください。"
    "いま危険なときは、すぐに110番（警察）・119番（救急）に電話してください。"
)


class GuardedEngine(Engine):
    """The engine, answering politely when the database cannot be written.

    The operator gets the reason in the log (never text or user keys); the person gets
    :data:`STORAGE_FAILED` instead of a dropped connection or an HTTP 500.
    """

    def handle_sync(self, incoming: IncomingMessage) -> list[Reply]:
        """See :meth:`Engine.handle_sync`."""
        try:
            return super().handle_sync(incoming)
        except sqlite3.Error as exc:
            return _storage_failed(exc)

    async def greet(self, user_key: str, channel: str) -> list[Reply]:
        """See :meth:`Engine.greet`."""
        try:
            return await super().greet(user_key, channel)
        except sqlite3.Error as exc:
            return _storage_failed(exc)


def _storage_failed(exc: sqlite3.Error) -> list[Reply]:
    logger.error("turn not saved: %s", storage_problem(exc))
    return [TextReply(STORAGE_FAILED)]


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    db = connect(config.db_path)
    try:
        kb = KnowledgeBase.open(db)
        store = ConversationStore.open(db)
        store.purge_expired(config.retention_days)
        store.purge_events()
        app[keys.DB] = db
        app[keys.KB] = kb
        app[keys.CONVERSATIONS] = store
        app[keys.ENGINE] = GuardedEngine(kb, store, config)
        logger.info("database, knowledge base and dialogue engine ready")
        purger = asyncio.create_task(_purge_periodically(db, config))
        flusher = asyncio.create_task(_flush_periodically(store))
        try:
            yield
        finally:
            for task in (purger, flusher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            _flush(store)
    finally:
        db.close()


def _flush(store: ConversationStore) -> None:
    try:
        store.flush_counts()
    except sqlite3.Error as exc:
        logger.error("anonymous counters not saved: %s", storage_problem(exc))


async def _flush_periodically(store: ConversationStore) -> None:
    """Write the anonymous counters held in memory every second (see ``store.count``)."""
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
        _flush(store)


async def _purge_periodically(db: sqlite_utils.Database, config: Config) -> None:
    """Delete everything past retention once an hour (``bot.retention.purge``)."""
    while True:
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)
        try:
            retention.purge(db, config)
        except Exception:
            logger.exception("periodic purge failed; retrying next hour")


def setup(app: web.Application) -> None:
    """Open the shared resources for the lifetime of the app (first feature in the list)."""
    app.cleanup_ctx.append(_resources)
