"""v001: escalations, their history, live messages, internal notes and the audit log."""

from __future__ import annotations

import sqlite_utils


def upgrade(db: sqlite_utils.Database) -> None:
    """Create the escalation tables (needs the ``handoff`` conversation tables first)."""
    db.execute(
        """
        CREATE TABLE escalations (
            id INTEGER PRIMARY KEY,
            user_key TEXT,
            channel TEXT NOT NULL,
            conversation_id INTEGER REFERENCES conversations (id) ON DELETE SET NULL,
            office_id TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('waiting', 'claimed', 'active', 'closed', 'returned', 'abandoned')),
            consent TEXT NOT NULL CHECK (consent IN ('full', 'anonymous')),
            reason TEXT NOT NULL,
            topics TEXT NOT NULL DEFAULT '[]',
            audience TEXT NOT NULL DEFAULT 'unknown',
            age_group TEXT NOT NULL DEFAULT 'unknown',
            area_name TEXT,
            area_code TEXT,
            crisis TEXT NOT NULL DEFAULT 'none',
            crisis_rank INTEGER NOT NULL DEFAULT 0,
            recommended TEXT NOT NULL DEFAULT '[]',
            counselor TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            due_at REAL NOT NULL,
            last_activity REAL NOT NULL,
            claimed_at REAL,
            closed_at REAL,
            outcome TEXT,
            close_reason TEXT,
            told_position INTEGER
        )
        """
    )
    db.execute("CREATE INDEX escalations_queue ON escalations (office_id, state)")
    # At most one open case per person.
    db.execute(
        "CREATE UNIQUE INDEX escalations_open_person ON escalations (user_key) "
        "WHERE state IN ('waiting', 'claimed', 'active')"
    )
    db.execute(
        """
        CREATE TABLE escalation_history (
            id INTEGER PRIMARY KEY,
            escalation_id INTEGER NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX escalation_history_case ON escalation_history (escalation_id, id)")
    db.execute(
        """
        CREATE TABLE escalation_messages (
            id INTEGER PRIMARY KEY,
            escalation_id INTEGER NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
            sender TEXT NOT NULL CHECK (sender IN ('person', 'counselor', 'system')),
            author TEXT,
            kind TEXT NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'resource')),
            text TEXT NOT NULL,
            resource_id TEXT,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX escalation_messages_case ON escalation_messages (escalation_id, id)")
    db.execute(
        """
        CREATE TABLE escalation_notes (
            id INTEGER PRIMARY KEY,
            escalation_id INTEGER NOT NULL REFERENCES escalations (id) ON DELETE CASCADE,
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE escalation_audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            escalation_id INTEGER NOT NULL,
            conversation_id INTEGER,
            detail TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX escalation_audit_case ON escalation_audit (escalation_id, id)")
    db.execute("CREATE INDEX escalation_audit_actor ON escalation_audit (actor, id)")
    # When a person's conversation is deleted (履歴を消して, unfollow, retention), what the
    # case holds about them goes too: the key that links it to them, the live messages and
    # the notes. The anonymous categories and the outcome stay for the statistics.
    db.execute(
        """
        CREATE TRIGGER escalations_forget_person AFTER DELETE ON conversations
        BEGIN
            DELETE FROM escalation_messages WHERE escalation_id IN
                (SELECT id FROM escalations WHERE user_key = OLD.user_key);
            DELETE FROM escalation_notes WHERE escalation_id IN
                (SELECT id FROM escalations WHERE user_key = OLD.user_key);
            UPDATE escalations SET
                state = CASE WHEN state IN ('waiting', 'claimed', 'active')
                             THEN 'abandoned' ELSE state END,
                close_reason = CASE WHEN state IN ('waiting', 'claimed', 'active')
                                    THEN 'deleted' ELSE close_reason END,
                closed_at = CASE WHEN state IN ('waiting', 'claimed', 'active')
                                 THEN (julianday('now') - 2440587.5) * 86400.0
                                 ELSE closed_at END,
                user_key = NULL
            WHERE user_key = OLD.user_key;
        END
        """
    )
