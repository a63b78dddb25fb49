"""Shared resources of the app: the database, knowledge base, conversation store and engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import sqlite_utils
from aiohttp import web

from bot import keys, retention
from bot.config import Config
from bot.dialogue.engine import Engine
from handoff.store import ConversationStore
from knowledge.base import KnowledgeBase
from knowledge.db import connect

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600


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
        app[keys.ENGINE] = Engine(kb, store, config)
        logger.info("database, knowledge base and dialogue engine ready")
        purger = asyncio.create_task(_purge_periodically(db, config))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
    finally:
        db.close()


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
