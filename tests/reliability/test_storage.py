"""Storage faults: busy/locked retries, disk full and read-only answered politely, batching."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.core import STORAGE_FAILED
from handoff.store import ConversationStore
from knowledge.db import connect, is_busy, retry_busy, storage_problem


def test_retry_busy_waits_for_a_real_lock(db_path: Path) -> None:
    db = connect(db_path)
    db.execute("CREATE TABLE t (a INTEGER)")
    db.conn.execute("PRAGMA busy_timeout = 10")  # give up fast, so the retry matters
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as first:
        db.execute("INSERT INTO t VALUES (1)")
    assert is_busy(first.value)
    threading.Timer(0.05, lambda: other.execute("COMMIT")).start()
    retry_busy(lambda: db.execute("INSERT INTO t VALUES (2)"), attempts=8)
    assert db.execute("SELECT a FROM t").fetchall() == [(2,)]


def test_retry_busy_does_not_retry_other_errors() -> None:
    calls = []

    def write() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: x")

    with pytest.raises(sqlite3.OperationalError):
        retry_busy(write)
    assert len(calls) == 1


def test_storage_problem_explains_full_and_read_only(db_path: Path) -> None:
    db = connect(db_path)
    db.execute("CREATE TABLE t (a TEXT)")
    db.execute("PRAGMA query_only = ON")
    with pytest.raises(sqlite3.Error) as ro:
        db.execute("INSERT INTO t VALUES ('x')")
    assert "read-only" in (storage_problem(ro.value) or "")
    db.execute("PRAGMA query_only = OFF")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.Error) as full:
        db.execute("INSERT INTO t VALUES (?)", ["x" * 100_000])
    assert "full" in (storage_problem(full.value) or "")
    assert storage_problem(ValueError("x")) is None


def test_counters_go_with_the_save_and_the_flush(db_path: Path) -> None:
    store = ConversationStore.open(connect(db_path), mask=lambda t: t)
    raw = connect(db_path)  # a second connection sees only what was committed

    def written() -> int:
        return raw.execute("SELECT COALESCE(SUM(n), 0) FROM anonymous_counts").fetchone()[0]

    store.count("turn", "web")
    store.count("turn", "web")
    assert written() == 0  # held until the turn's save
    store.save("web:a", "web", {}, "granted")
    assert written() == 2
    store.count("topic", "drugs")
    store.flush_counts()
    assert written() == 3
    store.count("topic", "drugs")
    assert sum(store.counts().values()) == 4  # reading includes what is pending


async def _broken_app(aiohttp_client: Any, db_path: Path, sudachi: None) -> tuple[Any, Any]:
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=db_path)
    client = await aiohttp_client(create_app(config))
    start = await (await client.post("/api/chat", json={"action": "start"})).json()
    session = start["session"]
    body = {"session": session, "postback": "consent:granted"}
    assert (await client.post("/api/chat", json=body)).status == 200
    return client, session


@pytest.mark.parametrize("fault", ["read_only", "disk_full"])
async def test_a_failed_write_gets_a_polite_answer(
    aiohttp_client: Any,
    db_path: Path,
    sudachi: None,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    client, session = await _broken_app(aiohttp_client, db_path, sudachi)
    db = client.app[keys.DB]
    if fault == "read_only":
        db.execute("PRAGMA query_only = ON")
    else:
        db.execute("VACUUM")  # no free pages left: the next rows need new ones
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    secret = "息子が万引きで捕まりました。" * 140
    caplog.set_level(logging.ERROR)
    resp = await client.post("/api/chat", json={"session": session, "text": secret})
    assert resp.status == 200
    messages = (await resp.json())["messages"]
    assert messages == [{"type": "text", "text": STORAGE_FAILED}]
    logged = caplog.text
    assert ("read-only" if fault == "read_only" else "full") in logged
    assert "万引き" not in logged and session not in logged
    # Once the fault is gone, the conversation goes on.
    db.execute("PRAGMA query_only = OFF")
    db.execute("PRAGMA max_page_count = 1073741823")
    resp = await client.post("/api/chat", json={"session": session, "text": "薬物のことで相談"})
    assert (await resp.json())["messages"][0]["text"] != STORAGE_FAILED
