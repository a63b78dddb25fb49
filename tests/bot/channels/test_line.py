"""The LINE channel's mechanics, through the real SDK against the simulator.

The dialogue engine is replaced here by a recording stand-in so the tests can see what
the channel hands it and in which order; ``tests/e2e/test_line_*.py`` use the real engine.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.channels import line
from bot.channels.base import IncomingMessage
from bot.config import Config, load_config
from bot.dialogue.replies import Choice, ChoicesReply, Reply, TextReply
from bot.identity import user_key
from handoff.store import ConversationStore
from knowledge.db import connect
from tests.line_sim import LineSimulator
from tests.line_sim import events as ev

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "test-access-token"


class RecordingEngine:
    """Answers every message with an echo and records the calls."""

    def __init__(self) -> None:
        self.handled: list[IncomingMessage] = []
        self.greeted: list[str] = []
        self.forgotten: list[str] = []
        self.delay = 0.0
        self.replies: list[Reply] | None = None

    async def handle(self, incoming: IncomingMessage) -> list[Reply]:
        self.handled.append(incoming)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.replies is not None:
            return self.replies
        return [TextReply(f"受け取りました: {incoming.text or incoming.postback}")]

    async def greet(self, key: str, channel: str) -> list[Reply]:
        self.greeted.append(key)
        return [TextReply("こんにちは。つなぐです。")]

    def forget(self, key: str) -> None:
        self.forgotten.append(key)


Env = tuple[LineSimulator, RecordingEngine, TestClient, Config]


@pytest.fixture
async def env(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Path
) -> AsyncIterator[Env]:
    async with LineSimulator(SECRET, TOKEN) as sim:
        config = load_config(
            env={"TSUNAGU_SECRET": "server-secret", **sim.app_env()}, db_path=tmp_path / "t.db"
        )
        engine = RecordingEngine()
        store = ConversationStore.open(connect(config.db_path), mask=lambda t: t)
        app = web.Application()
        app[keys.CONFIG] = config
        line.setup(app, engine=engine, conversations=store)
        client = await aiohttp_client(app)
        sim.webhook_url = str(client.make_url("/line/webhook"))
        yield sim, engine, client, config
        await client.close()


async def idle(client: TestClient) -> None:
    await client.app[line.LINE].idle()


async def test_without_settings_the_webhook_answers_503(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Path
) -> None:
    app = web.Application()
    app[keys.CONFIG] = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=tmp_path / "t.db")
    line.setup(app)
    client = await aiohttp_client(app)
    resp = await client.post("/line/webhook", data=b"{}")
    assert resp.status == 503
    assert "LINE_CHANNEL_SECRET" in (await resp.json())["error"]


@pytest.mark.parametrize("signature", [None, "", "AAAA", "bm90IHRoZSByaWdodCBvbmU="])
async def test_bad_or_missing_signature_is_refused_and_nothing_happens(
    env: Env, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    sim, engine, client, _ = env
    user = ev.new_user_id()
    secret_text = "秘密の相談内容"
    result = await sim.post_body(ev.body(ev.text(user, secret_text)), signature=signature or None)
    assert result.status == 400
    await idle(client)
    assert engine.handled == [] and sim.calls == []
    assert "signature" in caplog.text
    assert secret_text not in caplog.text and user not in caplog.text


async def test_signed_but_malformed_body_is_a_400(env: Env) -> None:
    sim, engine, client, _ = env
    for raw in (b"not json", b'{"events": [{"type": "message"}]}', b"\xff\xfe"):
        result = await sim.post_body(raw, signature=sim.sign(raw))
        assert result.status == 400
    await idle(client)
    assert engine.handled == []


async def test_empty_events_is_the_connection_check(env: Env) -> None:
    sim, _, _, _ = env
    result = await sim.post_body(ev.load_body("docs_empty_events_connection_check"))
    assert result.status == 200


async def test_text_reaches_the_engine_pseudonymised_and_is_replied(env: Env) -> None:
    sim, engine, _client, config = env
    user = ev.new_user_id()
    event = ev.text(user, "息子のことで相談したいです")
    assert (await sim.send(event)).status == 200
    messages = await sim.wait_messages(user, 1)
    (incoming,) = engine.handled
    assert incoming.user_key == user_key("line", user, config.secret)
    assert user not in incoming.user_key
    assert incoming.text == "息子のことで相談したいです"
    assert incoming.event_id == event["message"]["id"]
    assert messages[0]["text"].startswith("受け取りました")
    assert sim.deliveries[0].via == "reply"
    assert sim.loading == []  # a prompt answer needs no loading animation


async def test_a_late_answer_is_announced_by_the_loading_animation_first(env: Env) -> None:
    sim, engine, _client, _ = env
    engine.delay = 1.2
    user = ev.new_user_id()
    assert (await sim.send(ev.text(user, "相談したいです"))).status == 200
    for _ in range(100):
        if sim.loading:
            break
        await asyncio.sleep(0.02)
    assert sim.loading == [{"chatId": user, "loadingSeconds": 20}]
    assert sim.deliveries == []  # shown while the answer is still being made
    messages = await sim.wait_messages(user, 1)
    assert messages[0]["text"].startswith("受け取りました")


async def test_webhook_answers_at_once_while_the_engine_works(env: Env) -> None:
    sim, engine, _client, _ = env
    engine.delay = 1.5
    user = ev.new_user_id()
    result = await sim.send(ev.text(user, "こんにちは"))
    assert result.status == 200 and result.seconds < 1.0
    assert sim.messages_to(user) == []
    await sim.wait_messages(user, 1)


async def test_redelivered_event_is_answered_once(env: Env) -> None:
    sim, engine, client, _ = env
    user = ev.new_user_id()
    event = ev.text(user, "こんにちは")
    await sim.send(event)
    await sim.wait_messages(user, 1)
    assert (await sim.redeliver(event)).status == 200
    await idle(client)
    assert len(engine.handled) == 1
    assert len(sim.messages_to(user)) == 1


async def test_ten_events_from_three_users_in_one_body_keep_order(env: Env) -> None:
    sim, engine, client, config = env
    users = [ev.new_user_id() for _ in range(3)]
    base = ev.now_ms()
    events = [ev.text(users[i % 3], f"{i}", timestamp=base + i) for i in range(10)]
    shuffled = events[:]
    random.Random(5).shuffle(shuffled)
    assert (await sim.send(*shuffled)).status == 200
    await idle(client)
    for n, user in enumerate(users):
        key = user_key("line", user, config.secret)
        seen = [m.text for m in engine.handled if m.user_key == key]
        assert seen == [str(i) for i in range(n, 10, 3)]
        assert len(sim.messages_to(user)) == len(seen)


async def test_standby_and_unknown_events_get_no_answer(env: Env) -> None:
    sim, engine, client, _ = env
    user = ev.new_user_id()
    body = ev.body(ev.standby(ev.text(user, "x")), ev.unknown(user))
    assert (await sim.post_body(body)).status == 200
    await idle(client)
    assert engine.handled == [] and sim.calls == []


async def test_expired_reply_token_falls_back_to_push(env: Env) -> None:
    sim, _engine, client, _ = env
    user = ev.new_user_id()
    event = ev.text(user, "こんにちは")
    sim.register(event)
    sim.expire_reply_token(event["replyToken"])
    await sim.send(event)
    await sim.wait_messages(user, 1)
    await idle(client)
    assert [c.status for c in sim.calls_to("/message/reply")] == [400]
    (push,) = sim.calls_to("/message/push")
    assert push.status == 200 and push.retry_key
    assert sim.deliveries[0].via == "push"


async def test_late_answer_is_pushed_without_trying_the_token(env: Env) -> None:
    sim, _engine, _client, _ = env
    user = ev.new_user_id()
    await sim.send(ev.text(user, "前の話の続きです", timestamp=ev.now_ms() - 120_000))
    await sim.wait_messages(user, 1)
    assert sim.calls_to("/message/reply") == []
    assert sim.deliveries[0].via == "push"


async def test_many_choices_and_long_answers_stay_within_limits(env: Env) -> None:
    sim, engine, client, _ = env
    engine.replies = [
        TextReply("長いご案内です。" * 1500),
        *[TextReply(f"{i}") for i in range(6)],
        ChoicesReply(
            "選んでください", tuple(Choice(f"選択肢{i}" * 3, f"c={i}") for i in range(20))
        ),
    ]
    user = ev.new_user_id()
    await sim.send(ev.text(user, "教えてください"))
    await sim.wait_messages(user, 10)
    await idle(client)
    assert sim.rejected() == []
    assert [len(d.messages) for d in sim.deliveries] == [5, 5]
    assert [d.via for d in sim.deliveries] == ["reply", "push"]
    assert len(sim.messages_to(user)[-1]["quickReply"]["items"]) == 13


async def test_sticker_and_image_get_the_text_only_notice(env: Env) -> None:
    sim, engine, _client, _ = env
    user = ev.new_user_id()
    await sim.send(ev.sticker(user))
    await sim.send(ev.image(user))
    await sim.send(ev.media(user, "location"))
    texts = await sim.wait_messages(user, 3)
    assert engine.handled == []
    assert all("文字" in m["text"] for m in texts)


async def test_postback_reaches_the_engine(env: Env) -> None:
    sim, engine, _client, _ = env
    user = ev.new_user_id()
    await sim.send(ev.postback(user, "audience=family"))
    await sim.wait_messages(user, 1)
    assert engine.handled[0].postback == "audience=family"
    assert engine.handled[0].text is None


async def test_follow_greets_and_unfollow_forgets(env: Env) -> None:
    sim, engine, client, config = env
    user = ev.new_user_id()
    key = user_key("line", user, config.secret)
    await sim.send(ev.follow(user))
    assert texts_of(await sim.wait_messages(user, 1)) == ["こんにちは。つなぐです。"]
    assert engine.greeted == [key]
    channel = client.app[line.LINE]
    assert channel.vault.lookup(key) == user
    await sim.send(ev.unfollow(user))
    await idle(client)
    assert engine.forgotten == [key]
    assert channel.vault.lookup(key) is None


async def test_join_group_and_room_say_one_to_one_only_then_leave(env: Env) -> None:
    sim, engine, client, _ = env
    group, room = ev.new_group_id(), ev.new_room_id()
    await sim.send(ev.join_group(group), ev.join_room(room))
    await sim.wait_for(lambda: len(sim.left) == 2)
    assert sorted(sim.left) == sorted([group, room])
    assert "1対1" in sim.messages_to(group)[0]["text"]
    assert "1対1" in sim.messages_to(room)[0]["text"]
    await sim.send(ev.group_text(group, ev.new_user_id(), "グループで話しかけます"))
    await idle(client)
    assert engine.handled == []


async def test_push_by_user_key_quota_and_unknown_user(env: Env) -> None:
    sim, _engine, client, config = env
    channel = client.app[line.LINE]
    user = ev.new_user_id()
    await sim.send(ev.text(user, "こんにちは"))
    await sim.wait_messages(user, 1)
    key = user_key("line", user, config.secret)
    await channel.push(key, [TextReply("相談員の山田です。")])
    assert sim.texts_to(user)[-1] == "相談員の山田です。"
    assert sim.calls[-1].retry_key
    with pytest.raises(line.PushFailed) as err:
        await channel.push("line:unknown", [TextReply("x")])
    assert err.value.reason == "unknown_user"
    with pytest.raises(line.PushFailed) as err:
        await channel.push(ev.new_user_id(), [TextReply("x")])
    assert err.value.reason == "unknown_user"
    sim.push_quota = 0
    with pytest.raises(line.PushFailed) as err:
        await channel.send(key, [TextReply("x")])
    assert err.value.reason == "quota"


async def test_a_timed_out_push_is_retried_with_the_same_key(env: Env) -> None:
    sim, _engine, client, _config = env
    channel = client.app[line.LINE]
    user = ev.new_user_id()
    sim.register(ev.text(user, "x"))
    sim.api_delay = 0.3
    original = line.API_TIMEOUT
    line.API_TIMEOUT = line.ClientTimeout(total=0.1)
    try:
        with pytest.raises(line.PushFailed):
            await channel.push(user, [TextReply("一度だけ届きます")])
    finally:
        line.API_TIMEOUT = original
    sim.api_delay = 0
    await asyncio.sleep(0.5)  # let the simulator finish the calls the client gave up on
    keys_used = {c.retry_key for c in sim.calls_to("/message/push")}
    assert len(keys_used) == 1
    statuses = [c.status for c in sim.calls_to("/message/push")]
    assert statuses[0] == 200 and set(statuses[1:]) <= {409}
    assert sim.texts_to(user) == ["一度だけ届きます"]


async def test_shutdown_waits_for_running_events(env: Env) -> None:
    sim, engine, client, _ = env
    engine.delay = 0.3
    user = ev.new_user_id()
    await sim.send(ev.text(user, "こんにちは"))
    await client.close()  # runs the cleanup context: tasks finish, client closes
    assert len(sim.messages_to(user)) == 1


def texts_of(messages: list[dict[str, Any]]) -> list[str]:
    return [json.loads(json.dumps(m))["text"] for m in messages]


async def test_a_later_body_for_the_same_person_waits_its_turn(env: Env) -> None:
    sim, engine, client, _ = env
    engine.delay = 0.2
    user = ev.new_user_id()
    await sim.send(ev.text(user, "1"))
    await sim.send(ev.text(user, "2"))
    await idle(client)
    assert [m.text for m in engine.handled] == ["1", "2"]
    assert client.app[line.LINE]._locks == {}
