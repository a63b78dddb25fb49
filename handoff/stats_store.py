"""Statistics storage: the only module with SQL on the ``stats`` tables (counts, no people).

One row per ended conversation holds only count dimensions — the Japan-time day, channel,
office, topic, audience, age group, crisis level, handoff outcome, seconds until a counselor
picked it up and the resource kinds referred to. No text, no user key, no conversation id,
no time of day: the rows cannot be joined back to a person or a transcript, and they are
kept when the conversation itself is deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlite_utils

from knowledge.db import Migration, migrate

logger = logging.getLogger(__name__)

PACKAGE = "stats"
SOURCES = ("bot", "counselor")
# Columns a query may group by (never interpolate anything else into SQL).
DIMENSIONS = ("day", "channel", "office", "topic", "audience", "age_group", "crisis")


def _v001(db: sqlite_utils.Database) -> None:
    """Ended conversations as count dimensions, and the resource kinds they were referred to."""
    db.execute(
        """CREATE TABLE stats_conversations (
            id INTEGER PRIMARY KEY,
            day TEXT NOT NULL,
            channel TEXT NOT NULL,
            office TEXT NOT NULL DEFAULT '',
            topic TEXT NOT NULL,
            audience TEXT NOT NULL,
            age_group TEXT NOT NULL,
            crisis TEXT NOT NULL CHECK (crisis IN ('none', 'concern', 'urgent')),
            handoff INTEGER NOT NULL DEFAULT 0,
            handoff_outcome TEXT
                CHECK (handoff_outcome IS NULL
                       OR handoff_outcome IN ('closed', 'returned', 'abandoned')),
            pickup_seconds INTEGER,
            local_window INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX stats_conversations_day ON stats_conversations (day, office)")
    db.execute(
        """CREATE TABLE stats_referrals (
            conversation INTEGER NOT NULL
                REFERENCES stats_conversations (id) ON DELETE CASCADE,
            source TEXT NOT NULL CHECK (source IN ('bot', 'counselor')),
            kind TEXT NOT NULL,
            PRIMARY KEY (conversation, source, kind)
        )"""
    )


MIGRATIONS: tuple[Migration, ...] = (_v001,)


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One ended conversation as stored: count dimensions only."""

    day: date
    channel: str
    office: str
    topic: str
    audience: str
    age_group: str
    crisis: str
    handoff: bool
    handoff_outcome: str | None
    pickup_seconds: int | None
    local_window: bool
    bot_kinds: tuple[str, ...] = ()
    counselor_kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filter:
    """Which rows a query covers: an inclusive day range and optionally one office."""

    start: date
    end: date
    office: str | None = None

    def where(self, alias: str = "") -> tuple[str, list[str]]:
        """SQL condition and parameters for this filter."""
        p = f"{alias}." if alias else ""
        sql = f"{p}day BETWEEN ? AND ?"
        params = [self.start.isoformat(), self.end.isoformat()]
        if self.office:
            sql += f" AND {p}office = ?"
            params.append(self.office)
        return sql, params


class StatsStore:
    """Insert ended conversations and answer aggregate queries."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        """Wrap an open, migrated database (use :meth:`open` to migrate)."""
        self.db = db

    @classmethod
    def open(cls, db: sqlite_utils.Database) -> StatsStore:
        """Migrate the ``stats`` tables and return the store.

        Args:
            db: the project database (``knowledge.db.connect``).

        Returns:
            The store.
        """
        migrate(db, PACKAGE, MIGRATIONS)
        return cls(db)

    def insert(self, row: StatsRow) -> None:
        """Write one ended conversation and its referred resource kinds atomically."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT INTO stats_conversations (day, channel, office, topic, audience, "
                "age_group, crisis, handoff, handoff_outcome, pickup_seconds, local_window) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    row.day.isoformat(),
                    row.channel,
                    row.office,
                    row.topic,
                    row.audience,
                    row.age_group,
                    row.crisis,
                    int(row.handoff),
                    row.handoff_outcome,
                    row.pickup_seconds,
                    int(row.local_window),
                ],
            )
            conv = cur.lastrowid
            for source, kinds in (("bot", row.bot_kinds), ("counselor", row.counselor_kinds)):
                conn.executemany(
                    "INSERT OR IGNORE INTO stats_referrals (conversation, source, kind) "
                    "VALUES (?, ?, ?)",
                    [(conv, source, kind) for kind in kinds],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- aggregates -----------------------------------------------------------------------

    def total(self, f: Filter) -> int:
        """Number of conversations."""
        where, params = f.where()
        row = self.db.execute(
            f"SELECT COUNT(*) FROM stats_conversations WHERE {where}", params
        ).fetchone()
        return int(row[0])

    def count_by(self, dimension: str, f: Filter) -> dict[str, int]:
        """Conversations per value of one dimension (``DIMENSIONS``).

        Raises:
            ValueError: unknown dimension.
        """
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dimension!r}")
        where, params = f.where()
        rows = self.db.execute(
            f"SELECT {dimension}, COUNT(*) FROM stats_conversations WHERE {where} "
            f"GROUP BY {dimension} ORDER BY {dimension}",
            params,
        ).fetchall()
        return {str(k): int(n) for k, n in rows}

    def handoff_outcomes(self, f: Filter) -> dict[str, int]:
        """Handed-over conversations per outcome (closed, returned, abandoned)."""
        where, params = f.where()
        rows = self.db.execute(
            "SELECT COALESCE(handoff_outcome, ''), COUNT(*) FROM stats_conversations "
            f"WHERE {where} AND handoff = 1 GROUP BY 1",
            params,
        ).fetchall()
        return {str(k): int(n) for k, n in rows}

    def pickup_seconds(self, f: Filter) -> list[int]:
        """Seconds until pick-up of every handed-over conversation that was picked up."""
        where, params = f.where()
        rows = self.db.execute(
            "SELECT pickup_seconds FROM stats_conversations "
            f"WHERE {where} AND handoff = 1 AND pickup_seconds IS NOT NULL "
            "ORDER BY pickup_seconds",
            params,
        ).fetchall()
        return [int(r[0]) for r in rows]

    def referrals(self, source: str, f: Filter) -> dict[str, int]:
        """Conversations referred to each resource kind by ``bot`` or ``counselor``.

        Raises:
            ValueError: unknown source.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        where, params = f.where("c")
        rows = self.db.execute(
            "SELECT r.kind, COUNT(DISTINCT r.conversation) FROM stats_referrals r "
            "JOIN stats_conversations c ON c.id = r.conversation "
            f"WHERE {where} AND r.source = ? GROUP BY r.kind ORDER BY r.kind",
            [*params, source],
        ).fetchall()
        return {str(k): int(n) for k, n in rows}

    def referred(self, f: Filter) -> tuple[int, int]:
        """(conversations referred anywhere, of those referred to a local window)."""
        where, params = f.where("c")
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(c.local_window), 0) FROM stats_conversations c "
            f"WHERE {where} AND EXISTS "
            "(SELECT 1 FROM stats_referrals r WHERE r.conversation = c.id)",
            params,
        ).fetchone()
        return int(row[0]), int(row[1])

    def offices(self) -> list[str]:
        """Every office id that appears in the statistics."""
        rows = self.db.execute(
            "SELECT DISTINCT office FROM stats_conversations WHERE office != '' ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def count_rows(self) -> int:
        """Number of stored rows (all time)."""
        return int(self.db.execute("SELECT COUNT(*) FROM stats_conversations").fetchone()[0])


def kinds_tuple(kinds: Sequence[str]) -> tuple[str, ...]:
    """Distinct kinds in first-seen order."""
    return tuple(dict.fromkeys(k for k in kinds if k))
