"""LINE user ids are stored only encrypted, bound to their user key, and can be forgotten."""

from __future__ import annotations

from pathlib import Path

from bot.channels.line_ids import LineIdVault
from knowledge.db import connect

LINE_ID = "U" + "ab" * 16


def test_round_trip_and_nothing_in_clear(db_path: Path) -> None:
    db = connect(db_path)
    vault = LineIdVault(db, "secret")
    vault.remember("line:k1", LINE_ID)
    assert vault.lookup("line:k1") == LINE_ID
    assert vault.lookup("line:other") is None
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    assert LINE_ID.encode() not in db_path.read_bytes()


def test_wrong_secret_or_swapped_row_reads_nothing(db_path: Path) -> None:
    db = connect(db_path)
    LineIdVault(db, "secret").remember("line:k1", LINE_ID)
    assert LineIdVault(db, "another").lookup("line:k1") is None
    sealed = db.execute("SELECT sealed FROM line_users").fetchone()[0]
    db.execute("INSERT INTO line_users VALUES ('line:k2', ?, 0)", [sealed])
    assert LineIdVault(db, "secret").lookup("line:k2") is None  # bound to its user key


def test_forget_and_purge(db_path: Path) -> None:
    db = connect(db_path)
    vault = LineIdVault(db, "secret")
    vault.remember("line:k1", LINE_ID)
    vault.remember("line:old", LINE_ID, now=0)
    assert vault.purge(retention_days=30) == 1
    assert vault.forget("line:k1") is True
    assert vault.forget("line:k1") is False
    assert vault.lookup("line:k1") is None
