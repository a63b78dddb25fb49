"""End to end over LINE: the real app, engine, SQLite and line-bot-sdk against the simulator."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels import line
from bot.config import Config, load_config
from bot.identity import user_key
from tests.line_sim import LineSimulator
from tests.line_sim import events as ev

pytestmark = pytest.mark.e2e

SECRET = "00112233445566778899aabbccddeeff"
TOKEN = "e2e-access-token"
# Which button a family member worried about theft would press at each question.
PREFERRED = ("consent:granted", "topic:theft", "audience:family", "age_group:adult", "area:skip")


@dataclass
class Line:
    sim: LineSimulator
    client: TestClient
    config: Config

    async def idle(self) -> None:
        await self.client.app[line.LINE].idle()

    def key(self, user: str) -> str:
        return user_key("line", user, self.config.secret)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the SQLite file directly, as an auditor would."""
        with sqlite3.connect(self.config.db_path) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
async def app_line(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Path
) -> AsyncIterator[Line]:
    async with LineSimulator(SECRET, TOKEN) as sim:
        config = load_config(
            env={"TSUNAGU_SECRET": "e2e-server-secret", **sim.app_env()},
            db_path=tmp_path / "tsunagu.db",
        )
        client = await aiohttp_client(create_app(config))
        sim.webhook_url = str(client.make_url("/line/webhook"))
        yield Line(sim, client, config)
        await client.close()


def quick_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [i["action"] for i in (message.get("quickReply") or {}).get("items", [])]


def choose(actions: list[dict[str, Any]]) -> str:
    for wanted in PREFERRED:
        for action in actions:
            if action["data"] == wanted:
                return wanted
    return actions[0]["data"]


async def say(app: Line, user: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one event and return the messages the bot sent in answer."""
    return await app.sim.say(user, event, app.idle)


async def consult(app: Line, user: str) -> list[dict[str, Any]]:
    """Follow, agree, write the worry, then press buttons until places are offered."""
    greeting = await say(app, user, ev.follow(user))
    assert any("110" in m.get("text", "") for m in greeting)  # danger numbers at once
    assert "consent:granted" in [a["data"] for a in quick_items(greeting[-1])]
    answer = await say(app, user, ev.postback(user, "consent:granted"))
    answer = await say(app, user, ev.text(user, "息子が万引きで警察に捕まりました。"))
    for _ in range(8):
        if any(m["type"] == "flex" for m in answer):
            return answer
        actions = quick_items(answer[-1])
        assert actions, answer
        answer = await say(app, user, ev.postback(user, choose(actions)))
    raise AssertionError("no places to contact were offered")


async def test_a_full_consultation_with_quick_replies_and_a_flex_card(app_line: Line) -> None:
    user = ev.new_user_id()
    answer = await consult(app_line, user)
    flex = next(m for m in answer if m["type"] == "flex")
    assert flex["altText"].strip()
    bubbles = flex["contents"]["contents"]
    assert 1 <= len(bubbles) <= 3
    names = [b["body"]["contents"] for b in bubbles]
    assert all(any(c.get("weight") == "bold" for c in body) for body in names)
    uris = [
        btn["action"]["uri"] for b in bubbles for btn in b.get("footer", {}).get("contents", [])
    ]
    assert all(u.startswith(("tel:", "https://", "http://")) for u in uris)
    for message in app_line.sim.messages_to(user):
        assert len(quick_items(message)) <= 13
    # The platform refused nothing the bot sent, and most answers used the reply token.
    assert app_line.sim.rejected() == []
    assert {d.via for d in app_line.sim.deliveries} == {"reply"}
    # Every answer was ready at once: no loading animation delayed it.
    assert app_line.sim.loading == []
    # The conversation is kept under the pseudonymous key only.
    keys = [r[0] for r in app_line.rows("SELECT user_key FROM conversations")]
    assert keys == [app_line.key(user)]
    raw = (
        app_line.config.db_path.read_bytes() + Path(f"{app_line.config.db_path}-wal").read_bytes()
    )
    assert user.encode() not in raw


async def test_bad_signature_is_refused_and_nothing_is_stored(app_line: Line) -> None:
    user = ev.new_user_id()
    result = await app_line.sim.post_body(ev.body(ev.text(user, "こんにちは")), signature="AAAA")
    assert result.status == 400
    result = await app_line.sim.post_body(ev.body(ev.text(user, "こんにちは")), signature=None)
    assert result.status == 400
    await app_line.idle()
    assert app_line.sim.calls == []
    assert app_line.rows("SELECT count(*) FROM conversations") == [(0,)]


async def test_redelivered_event_is_answered_once(app_line: Line) -> None:
    first = ev.load_body("sdk_text_message_user")
    again = ev.load_body("sdk_text_message_redelivered")
    user = first["events"][0]["source"]["userId"]
    for body in (first, again, first):
        assert (await app_line.sim.post_body(body)).status == 200
        await app_line.idle()
    calls = app_line.sim.calls_to("/message/reply") + app_line.sim.calls_to("/message/push")
    assert len(calls) == 1 and calls[0].status == 200
    assert len(app_line.sim.deliveries) == 1 and app_line.sim.deliveries[0].to == user


async def test_ten_events_in_one_body_are_all_answered(app_line: Line) -> None:
    users = [ev.new_user_id() for _ in range(4)]
    base = ev.now_ms()
    events = [ev.text(users[i % 4], f"相談です {i}", timestamp=base + i) for i in range(10)]
    result = await app_line.sim.send(*reversed(events))
    assert result.status == 200 and result.seconds < 1.0
    await app_line.idle()
    assert app_line.sim.rejected() == []
    assert len(app_line.sim.calls_to("/message/reply")) == 10
    for user in users:
        assert app_line.sim.messages_to(user)


async def test_sticker_and_image_get_a_text_only_note(app_line: Line) -> None:
    user = ev.new_user_id()
    for event in (ev.sticker(user), ev.image(user)):
        (note,) = await say(app_line, user, event)
        assert "文字" in note["text"]
    assert app_line.rows("SELECT count(*) FROM conversations") == [(0,)]


async def test_unfollow_deletes_the_conversation_from_the_file(app_line: Line) -> None:
    user = ev.new_user_id()
    await consult(app_line, user)
    key = app_line.key(user)
    assert app_line.rows("SELECT count(*) FROM conversations WHERE user_key = ?", key) == [(1,)]
    assert app_line.rows("SELECT count(*) FROM messages") != [(0,)]
    assert app_line.rows("SELECT count(*) FROM line_users WHERE user_key = ?", key) == [(1,)]
    assert await say(app_line, user, ev.unfollow(user)) == []
    assert app_line.rows("SELECT count(*) FROM conversations") == [(0,)]
    assert app_line.rows("SELECT count(*) FROM messages") == [(0,)]
    assert app_line.rows("SELECT count(*) FROM line_users") == [(0,)]


async def test_unsend_deletes_that_message(app_line: Line) -> None:
    user = ev.new_user_id()
    await say(app_line, user, ev.follow(user))
    await say(app_line, user, ev.postback(user, "consent:granted"))
    sent = ev.text(user, "取り消したいメッセージです")
    await say(app_line, user, sent)
    message_id = sent["message"]["id"]
    stored = "SELECT count(*) FROM messages WHERE channel_message_id = ?"
    assert app_line.rows(stored, message_id) == [(1,)]
    await say(app_line, user, ev.unsend(user, message_id))
    assert app_line.rows(stored, message_id) == [(0,)]


async def test_join_group_says_one_to_one_only_and_leaves(app_line: Line) -> None:
    group = ev.new_group_id()
    await app_line.sim.send(ev.join_group(group))
    await app_line.idle()
    assert app_line.sim.left == [group]
    (note,) = app_line.sim.messages_to(group)
    assert "1対1" in note["text"]


async def test_expired_reply_token_falls_back_to_push(app_line: Line) -> None:
    user = ev.new_user_id()
    event = ev.follow(user)
    app_line.sim.register(event)
    app_line.sim.expire_reply_token(event["replyToken"])
    answer = await say(app_line, user, event)
    assert answer and any("110" in m.get("text", "") for m in answer)
    assert [c.status for c in app_line.sim.calls_to("/message/reply")] == [400]
    pushes = app_line.sim.calls_to("/message/push")
    assert pushes and all(c.status == 200 and c.retry_key for c in pushes)


async def test_a_counselor_answer_is_pushed_by_user_key(app_line: Line) -> None:
    user = ev.new_user_id()
    await say(app_line, user, ev.follow(user))
    from bot.dialogue.replies import TextReply

    await app_line.client.app[line.LINE].push(app_line.key(user), [TextReply("相談員です。")])
    assert app_line.sim.texts_to(user)[-1] == "相談員です。"
