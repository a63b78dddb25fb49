"""Numbered schema migrations of the ``handoff`` package (conversations, messages, events)."""

from __future__ import annotations

from handoff.migrations import v001_conversations
from knowledge.db import Migration

# Migration i brings the "handoff" tables to version i + 1; only ever append.
MIGRATIONS: tuple[Migration, ...] = (v001_conversations.upgrade,)
