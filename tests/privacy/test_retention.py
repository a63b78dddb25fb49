"""Retention and deletion: after a purge or a person's own deletion, the text is gone from the
SQLite files themselves (database, WAL), not only from the tables."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import core, keys, retention
from bot.app import create_app
from bot.channels.line_ids import LineIdVault
from bot.cli import main
from bot.config import Config, load_config
from handoff.models import Outcome
from knowledge.db import connect
from tests.privacy.helpers import (
    assert_not_in_files,
    case_for_counselor,
    chat,
    file_bytes,
    start_with_consent,
)

# Words that survive masking (no name, number or place), so the test can first see them
# stored and then see them gone.
WORRY = "弟が自転車を盗んで、シマフクロウ色の鞄に隠していました"
MARKER = "シマフクロウ色"
LIVE = "相談員さん、ハシビロコウ模様の話を聞いてください"
LIVE_MARKER = "ハシビロコウ模様"
COUNSELOR_TEXT = "お話ありがとうございます。カワセミ係がお聞きします"
COUNSELOR_MARKER = "カワセミ係"
DAY = 86400


def _config(tmp_path: Path, **extra: str) -> Config:
    return load_config(
        env={"TSUNAGU_SECRET": "retention-secret", **extra}, db_path=tmp_path / "t.db"
    )


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    tmp_path: Path,
    sudachi: None,
) -> TestClient:
    app = create_app(_config(tmp_path))
    c = await aiohttp_client(app)
    app[keys.KB].add_user("kana", "counselor", "kana-counsel-pass-1", office_id="sample_probation")
    return c


async def _conversation_with_handoff(client: TestClient) -> str:
    """A consented conversation, handed to a counselor who answers and closes it."""
    app = client.app
    session = await start_with_consent(client)
    await chat(client, session, text=WORRY)
    _, messages = await chat(client, session, text="人と話したい")
    assert any(m["type"] == "choices" for m in messages), messages
    await chat(client, session, postback="handoff:full")
    await chat(client, session, text=LIVE)
    desk = app[keys.DESK]
    _, case_id, counselor = case_for_counselor(client, session, "kana")
    desk.claim(counselor, case_id)
    desk.open_for_counselor(counselor, case_id)
    desk.reply(counselor, case_id, COUNSELOR_TEXT)
    desk.add_note(counselor, case_id, "メモ：ハシビロコウ模様の件")
    desk.close(counselor, case_id, Outcome(referred_kinds=(), referred_to="", resolved=True))
    return session


def _count(db_path: Path, table: str) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_purge_deletes_everything_past_retention_from_the_files(
    client: TestClient,
) -> None:
    app = client.app
    config = app[keys.CONFIG]
    await _conversation_with_handoff(client)
    db = app[keys.DB]
    store = app[keys.CONVERSATIONS]
    store.claim_event("evt-expiring", ttl_seconds=60)
    vault = LineIdVault(db, config.secret)
    vault.remember("line:old", "U" + "a" * 32, now=time.time() - 40 * DAY)
    vault.remember("line:recent", "U" + "b" * 32)
    data = file_bytes(config.db_path)
    for marker in (MARKER, LIVE_MARKER, COUNSELOR_MARKER):
        assert marker.encode() in data, f"{marker} was never stored: the test proves nothing"

    # Within the period only what expired goes: the claim (60 s) and the 40-day-old id.
    report = retention.purge(db, config, now=time.time() + 29 * DAY)
    assert (report.conversations, report.escalations) == (0, 0)
    assert (report.events, report.line_ids) == (1, 1)
    assert _count(config.db_path, "messages") > 0

    report = retention.purge(db, config, now=time.time() + 31 * DAY)
    assert report.conversations == 1 and report.escalations == 1
    assert report.line_ids == 1 and report.checkpointed
    for table in (
        "conversations",
        "messages",
        "escalations",
        "escalation_messages",
        "escalation_notes",
        "escalation_history",
        "processed_events",
        "line_users",
    ):
        assert _count(config.db_path, table) == 0, table
    # The audit log of who opened which case stays (no text in it).
    assert _count(config.db_path, "escalation_audit") >= 1
    assert Path(f"{config.db_path}-wal").stat().st_size == 0
    assert_not_in_files(config.db_path, MARKER, LIVE_MARKER, COUNSELOR_MARKER, "シマフクロウ")


async def test_delete_my_history_removes_the_text_at_once(client: TestClient) -> None:
    config = client.app[keys.CONFIG]
    session = await _conversation_with_handoff(client)
    assert MARKER.encode() in file_bytes(config.db_path)
    _, messages = await chat(client, session, text="履歴を消して")
    assert messages[-1]["type"] in ("end", "text")
    await asyncio.sleep(0)  # the checkpoint runs right after the turn
    await asyncio.sleep(0.05)
    assert _count(config.db_path, "messages") == 0
    assert _count(config.db_path, "escalation_messages") == 0
    assert_not_in_files(config.db_path, MARKER, LIVE_MARKER, COUNSELOR_MARKER)


async def test_widget_delete_action_removes_the_text_at_once(client: TestClient) -> None:
    config = client.app[keys.CONFIG]
    session = await start_with_consent(client)
    await chat(client, session, text=WORRY)
    assert MARKER.encode() in file_bytes(config.db_path)
    _, messages = await chat(client, session, action="delete")
    assert messages == [{"type": "end", "text": messages[0]["text"]}]
    await asyncio.sleep(0.05)
    assert_not_in_files(config.db_path, MARKER)


async def test_purge_command_uses_the_configured_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sudachi: None
) -> None:
    config = _config(tmp_path)
    db = connect(config.db_path)
    from handoff.desk import Desk

    desk = Desk.open(db)
    store = desk.conversations
    old = time.time() - 31 * DAY
    conv = store.save("web:old", "web", {}, "granted", now=old)
    store.add_message(conv, "in", WORRY, now=old)
    recent = store.save("web:new", "web", {}, "granted")
    store.add_message(recent, "in", "最近の相談です", now=time.time())
    db.close()
    code = main(["purge", "--db", str(config.db_path), "--json"])
    assert code == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["conversations"] == 1 and counts["checkpointed"] is True
    assert _count(config.db_path, "conversations") == 1
    assert_not_in_files(config.db_path, MARKER)
    # A shorter period from the command line, in Japanese by default.
    assert main(["purge", "--db", str(config.db_path), "--days", "1"]) == 0
    assert "1日より前" in capsys.readouterr().out
    assert _count(config.db_path, "conversations") == 1  # still active today
    assert main(["purge", "--db", str(tmp_path / "missing.db")]) == 1
    assert main(["purge", "--db", str(config.db_path), "--days", "0"]) == 2


async def test_periodic_task_purges_while_serving(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(core, "PURGE_INTERVAL_SECONDS", 0.05)
    app = create_app(_config(tmp_path))
    await aiohttp_client(app)
    store = app[keys.CONVERSATIONS]
    old = time.time() - 31 * DAY
    conv = store.save("web:old", "web", {}, "granted", now=old)
    store.add_message(conv, "in", "スズメ色の古い相談", now=old)
    for _ in range(100):
        await asyncio.sleep(0.05)
        if store.get("web:old") is None:
            break
    assert store.get("web:old") is None
    assert_not_in_files(app[keys.CONFIG].db_path, "スズメ色")


async def test_purge_before_every_table_exists(tmp_path: Path) -> None:
    """``tsunagu purge`` on a database of only the knowledge tables does nothing, safely."""
    config = _config(tmp_path)
    db = connect(config.db_path)
    db.execute("CREATE TABLE unrelated (x)")
    report = retention.purge(db, config, vacuum=True)
    assert report.as_dict() == {
        "conversations": 0,
        "escalations": 0,
        "escalations_unlinked": 0,
        "events": 0,
        "line_ids": 0,
        "checkpointed": True,
    }
    db.close()
