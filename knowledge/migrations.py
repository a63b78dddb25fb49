"""Numbered schema migrations of the ``knowledge`` package (migration i → schema version i+1)."""

from __future__ import annotations

import json

import sqlite_utils

from knowledge.textindex import index_text

PACKAGE = "knowledge"


def v001_initial(db: sqlite_utils.Database) -> None:
    """Resources, reply templates, FAQ entries and the revision log."""
    db.execute(
        """CREATE TABLE resources (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            description TEXT NOT NULL,
            topics TEXT NOT NULL DEFAULT '[]',
            audiences TEXT NOT NULL DEFAULT '[]',
            age_groups TEXT NOT NULL DEFAULT '[]',
            coverage TEXT NOT NULL DEFAULT 'national',
            prefecture_code TEXT,
            municipality_code TEXT,
            phone TEXT,
            url TEXT,
            hours TEXT NOT NULL DEFAULT '[]',
            always_open INTEGER NOT NULL DEFAULT 0,
            hours_note TEXT,
            how TEXT NOT NULL DEFAULT '[]',
            notes TEXT,
            source_url TEXT,
            verified_on TEXT,
            sample INTEGER NOT NULL DEFAULT 0,
            active INTEGER NOT NULL DEFAULT 1,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX resources_kind ON resources (kind, active)")
    db.execute(
        """CREATE TABLE templates (
            id TEXT PRIMARY KEY,
            description TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE faq (
            id TEXT PRIMARY KEY,
            questions TEXT NOT NULL,
            answer TEXT NOT NULL,
            topics TEXT NOT NULL DEFAULT '[]',
            active INTEGER NOT NULL DEFAULT 1,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE revisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            at TEXT NOT NULL,
            before TEXT,
            after TEXT
        )"""
    )
    db.execute("CREATE INDEX revisions_entity ON revisions (entity, entity_id, id)")


def v002_users_search(db: sqlite_utils.Database) -> None:
    """Staff accounts, the verification note on resources, FTS5 over FAQ and resources."""
    db.execute("ALTER TABLE resources ADD COLUMN verification_note TEXT")
    db.execute(
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'counselor')),
            office_id TEXT,
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    # Columns hold space-joined Sudachi normalized forms; unicode61 splits on the spaces.
    tok = "tokenize = 'unicode61 remove_diacritics 0'"
    db.execute(
        f"CREATE VIRTUAL TABLE faq_fts USING fts5(faq_id UNINDEXED, questions, answer, {tok})"
    )
    db.execute(
        f"CREATE VIRTUAL TABLE resource_fts USING fts5(resource_id UNINDEXED, name, body, {tok})"
    )
    # Rows written under schema v1 get indexed now.
    for row in db.execute("SELECT id, questions, answer FROM faq").fetchall():
        db.execute(
            "INSERT INTO faq_fts (faq_id, questions, answer) VALUES (?, ?, ?)",
            [row[0], index_text(*json.loads(row[1])), index_text(row[2])],
        )
    for row in db.execute("SELECT id, name, description, notes FROM resources").fetchall():
        db.execute(
            "INSERT INTO resource_fts (resource_id, name, body) VALUES (?, ?, ?)",
            [row[0], index_text(row[1]), index_text(row[2], row[3] or "")],
        )


def v003_content_version(db: sqlite_utils.Database) -> None:
    """A counter bumped by every change to resources, templates or FAQ (any connection).

    The knowledge base caches these tables in memory and reloads them only when the
    counter moves; ``PRAGMA data_version`` alone also moves on writes to unrelated tables
    by other connections (LINE events, the CLI), which made every such write cost a reload.
    """
    db.execute(
        "CREATE TABLE knowledge_version (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "n INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO knowledge_version (id, n) VALUES (1, 0)")
    for table in ("resources", "templates", "faq"):
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_version AFTER {event} ON {table} "
                "BEGIN UPDATE knowledge_version SET n = n + 1 WHERE id = 1; END"
            )


MIGRATIONS = (v001_initial, v002_users_search, v003_content_version)
