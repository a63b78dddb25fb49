"""Connection pragmas and the migration runner, on real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

from knowledge.db import DatabaseError, connect, migrate, schema_version


def _v1(db: sqlite_utils.Database) -> None:
    db["things"].create({"id": int, "name": str}, pk="id")


def _v2(db: sqlite_utils.Database) -> None:
    db["things"].add_column("note", str)


def _broken(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE half (id INTEGER)")
    raise RuntimeError("boom")


def test_pragmas(tmp_path: Path) -> None:
    db = connect(tmp_path / "a.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrate_from_empty_and_from_previous(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = connect(path)
    assert migrate(db, "demo", [_v1]) == 1
    db["things"].insert({"id": 1, "name": "x"})
    db.conn.close()
    db = connect(path)
    assert migrate(db, "demo", [_v1, _v2]) == 2
    assert schema_version(db, "demo") == 2
    assert db["things"].get(1)["name"] == "x"
    assert "note" in db["things"].columns_dict


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    db = connect(tmp_path / "a.db")
    migrate(db, "demo", [_v1])
    with pytest.raises(DatabaseError, match="v2 failed"):
        migrate(db, "demo", [_v1, _broken])
    assert schema_version(db, "demo") == 1
    assert "half" not in db.table_names()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = connect(tmp_path / "a.db")
    migrate(db, "demo", [_v1, _v2])
    with pytest.raises(DatabaseError, match="newer than this code"):
        migrate(db, "demo", [_v1])


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError):
        connect(path)
