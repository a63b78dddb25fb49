"""``tsunagu backup``: a copy taken under writes is whole, consistent and restorable."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.cli import main
from handoff.store import ConversationStore
from knowledge.db import connect


def _writer(db_path: Path, stop: threading.Event, written: list[int]) -> None:
    store = ConversationStore.open(connect(db_path), mask=lambda t: t)
    i = 0
    while not stop.is_set():
        i += 1
        conv = store.save(f"web:{i}", "web", {"n": i}, "granted")
        store.add_message(conv, "in", f"message {i}")
        written.append(i)
    store.db.close()


def test_backup_under_writes_is_consistent_and_restorable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = tmp_path / "data" / "tsunagu.db"
    ConversationStore.open(connect(db_path))
    stop, written = threading.Event(), []
    thread = threading.Thread(target=_writer, args=(db_path, stop, written))
    thread.start()
    try:
        while len(written) < 200:
            threading.Event().wait(0.01)
        backup_dir = tmp_path / "backups"
        backup_dir.mkdir()
        assert main(["backup", str(backup_dir), "--db", str(db_path)]) == 0
    finally:
        stop.set()
        thread.join()
    assert "integrity ok" in capsys.readouterr().out
    (copy,) = backup_dir.glob("tsunagu-*.db")
    assert not list(backup_dir.glob("*.partial"))
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conversations = conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
    messages = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    conn.close()
    # A snapshot: at least what was written before the backup, and every conversation with
    # its message (the writer saves the pair back to back; at most the last one is cut).
    assert 200 <= conversations <= len(written)
    assert conversations - 1 <= messages <= conversations

    # Restore (README, Operating): stop, copy the backup over the file, start.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    copy.replace(db_path)
    store = ConversationStore.open(connect(db_path))
    assert store.get("web:1") is not None
    assert [m.text for m in store.messages("web:1")] == ["message 1"]


def test_backup_of_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", str(tmp_path / "b.db"), "--db", str(tmp_path / "none.db")]) == 2
    assert "no database" in capsys.readouterr().out
    assert not (tmp_path / "none.db").exists()
