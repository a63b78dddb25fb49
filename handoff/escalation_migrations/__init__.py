"""Numbered schema migrations of the ``escalation`` tables (cases, live messages, audit)."""

from __future__ import annotations

from handoff.escalation_migrations import v001_escalations
from knowledge.db import Migration

# Migration i brings the "escalation" tables to version i + 1; only ever append.
MIGRATIONS: tuple[Migration, ...] = (v001_escalations.upgrade,)
