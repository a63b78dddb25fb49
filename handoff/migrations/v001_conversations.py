"""v001: conversations, masked messages, anonymous counts and processed channel events."""

from __future__ import annotations

import sqlite_utils


def upgrade(db: sqlite_utils.Database) -> None:
    """Create the conversation tables."""
    db.execute(
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            user_key TEXT NOT NULL UNIQUE,
            channel TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT '{}',
            consent TEXT NOT NULL DEFAULT 'none'
                CHECK (consent IN ('none', 'granted', 'declined')),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_activity REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX conversations_last_activity ON conversations (last_activity)")
    db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            text TEXT NOT NULL,
            channel_message_id TEXT,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX messages_conversation ON messages (conversation_id, id)")
    db.execute(
        """
        CREATE TABLE anonymous_counts (
            day TEXT NOT NULL,
            metric TEXT NOT NULL,
            key TEXT NOT NULL,
            n INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, metric, key)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE processed_events (
            event_id TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX processed_events_expiry ON processed_events (expires_at)")
