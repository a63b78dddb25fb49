"""Request limits: body size, message length, rate limits per person and address with a polite
reply, WebSocket frame size and idle timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels import web as web_channel
from bot.config import load_config
from bot.web import limits
from bot.web.limits import Limiter, Rate
from tests.privacy.helpers import chat

Factory = Callable[[web.Application], Awaitable[TestClient]]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _client(
    aiohttp_client: Factory, tmp_path: Path, clock: Clock | None = None, **rates: Rate
) -> TestClient:
    config = load_config(env={"TSUNAGU_SECRET": "limits"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    if rates:
        limits.configure(app, limits.policy_with(**rates), clock or Clock())
    return await aiohttp_client(app)


def test_token_bucket_refills_and_stays_bounded() -> None:
    clock = Clock()
    limiter = Limiter(Rate(rate=0.5, burst=3), clock, max_keys=100)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(2.0)  # one token every 2 s
    assert limiter.take("b") == 0.0  # another key has its own bucket
    clock.now += 2.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # never above the burst
    assert limiter.take("a") > 0
    for i in range(500):
        limiter.take(f"k{i}")
    assert len(limiter) == 100


def test_buckets_full_again_are_forgotten() -> None:
    clock = Clock()
    limiter = Limiter(Rate(rate=0.5, burst=3), clock, max_keys=100)  # full after 6 s
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    limiter.take("b")
    clock.now += 5.0
    limiter.take("c")
    assert len(limiter) == 3  # a is not full yet: it must still be counted
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0  # 2.5 tokens back
    assert limiter.take("a") > 0
    clock.now += 3.0
    limiter.take("d")
    assert len(limiter) == 3  # b refilled (8 s): forgotten, exactly like a new bucket
    # a kept its 0.5 tokens and refilled 1.5 since: two more, then it waits.
    assert [limiter.take("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("a") > 0
    clock.now += 4.0
    limiter.take("e")
    assert len(limiter) == 3  # c (7 s) is full again and forgotten; a, d, e are not


def test_shipped_policy_is_generous_for_people() -> None:
    policy = limits.load_policy()
    assert policy.person.burst >= 20 and policy.ip_chat.burst >= 60
    assert "110" in policy.person_text and "110" in policy.ip_text


async def test_api_per_person_limit_is_a_polite_429(
    aiohttp_client: Factory, tmp_path: Path, sudachi: None
) -> None:
    client = await _client(aiohttp_client, tmp_path, person=Rate(0.001, 2))
    session, _ = await chat(client, None)  # the greeting is not a turn of the person
    await chat(client, session, postback="consent:granted")
    await chat(client, session, text="息子が万引きをしました")
    resp = await client.post("/api/chat", json={"session": session, "text": "もう一度"})
    assert resp.status == 429
    body = await resp.json()
    assert body["error"]["code"] == "rate_limited"
    assert "時間" in body["error"]["message"] or "1分" in body["error"]["message"]
    assert int(resp.headers["Retry-After"]) >= 1
    # Another person is not affected.
    other, _ = await chat(client, None)
    await chat(client, other, postback="consent:granted")
    assert (await client.get("/healthz")).status == 200


async def test_api_per_address_limit(aiohttp_client: Factory, tmp_path: Path) -> None:
    client = await _client(aiohttp_client, tmp_path, ip_chat=Rate(0.001, 3))
    for _ in range(3):
        resp = await client.post("/api/chat", json={"session": None})
        assert resp.status == 200
    resp = await client.post("/api/chat", json={"session": None})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert "アクセスが集中" in (await resp.json())["error"]["message"]
    assert (await client.get("/healthz")).status == 200


async def test_socket_per_person_limit_answers_kindly_and_keeps_the_buttons(
    aiohttp_client: Factory, tmp_path: Path, sudachi: None
) -> None:
    client = await _client(aiohttp_client, tmp_path, person=Rate(0.001, 1))
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "hello", "session": None})
    assert (await ws.receive_json())["type"] == "ready"
    greeting = await ws.receive_json()
    buttons = [i for m in greeting["messages"] if m["type"] == "choices" for i in m["items"]]
    await ws.send_json({"type": "message", "text": "こんにちは", "id": "m1"})
    assert (await ws.receive_json())["type"] == "typing"
    first = await ws.receive_json()
    assert first["id"] == "m1"
    await ws.send_json({"type": "message", "text": "まだ書きます", "id": "m2"})
    assert (await ws.receive_json())["type"] == "typing"
    limited = await ws.receive_json()
    assert limited["type"] == "reply" and limited["id"] == "m2"
    texts = " ".join(m.get("text", "") for m in limited["messages"])
    assert "1分ほど" in texts and "110" in texts
    kept = [i for m in limited["messages"] if m["type"] == "choices" for i in m["items"]]
    offered_before = [i for m in first["messages"] if m["type"] == "choices" for i in m["items"]]
    assert buttons and offered_before  # before consent: the two consent buttons
    assert kept == offered_before
    # The socket stays open and usable.
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json())["type"] == "pong"
    await ws.close()


async def test_socket_opening_per_address_limit(aiohttp_client: Factory, tmp_path: Path) -> None:
    client = await _client(aiohttp_client, tmp_path, ip_socket=Rate(0.001, 2))
    sockets = [await client.ws_connect("/ws/chat") for _ in range(2)]
    resp = await client.get(
        "/ws/chat",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "rate_limited"
    for ws in sockets:
        await ws.close()


async def test_body_and_message_length_limits(aiohttp_client: Factory, tmp_path: Path) -> None:
    client = await _client(aiohttp_client, tmp_path)
    config = client.app[web_channel.keys.CONFIG]
    big = b'{"session": null, "text": "' + b"a" * (20 * 1024) + b'"}'
    resp = await client.post("/api/chat", data=big, headers={"Content-Type": "application/json"})
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "too_large"
    text = "あ" * (config.max_message_chars + 1)
    resp = await client.post("/api/chat", json={"session": None, "text": text})
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "text_too_long"
    # The whole app refuses bodies over 256 KiB (the LINE webhook reads before checking).
    resp = await client.post(
        "/line/webhook", data=b"x" * (300 * 1024), headers={"X-Line-Signature": "x"}
    )
    assert resp.status in (413, 503)
    resp = await client.post("/admin/login", data=b"x" * (300 * 1024))
    assert resp.status in (403, 413)
    assert (await client.get("/healthz")).status == 200


async def test_socket_frame_size_and_idle_timeout(
    aiohttp_client: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await _client(aiohttp_client, tmp_path)
    ws = await client.ws_connect("/ws/chat")
    await ws.send_str('{"type": "message", "text": "' + "a" * (20 * 1024) + '"}')
    msg = await ws.receive()
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == 1009  # message too big
    monkeypatch.setattr(web_channel, "WS_IDLE_SECONDS", 0.2)
    ws = await client.ws_connect("/ws/chat")
    msg = await asyncio.wait_for(ws.receive(), timeout=5)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == 1001  # going away: idle
    assert (await client.get("/healthz")).status == 200


async def test_limits_can_be_switched_off_for_load_tests(
    aiohttp_client: Factory, tmp_path: Path, sudachi: None
) -> None:
    config = load_config(
        env={"TSUNAGU_SECRET": "limits", "TSUNAGU_RATE_LIMITS": "0"}, db_path=tmp_path / "t.db"
    )
    assert (
        config.rate_limits is False and load_config(env={}, db_path=tmp_path / "u.db").rate_limits
    )
    app = create_app(config)
    limits.configure(
        app, limits.policy_with(person=Rate(0.001, 1), ip_chat=Rate(0.001, 1)), Clock()
    )
    client = await aiohttp_client(app)
    session, _ = await chat(client, None)
    for _ in range(4):
        await chat(client, session, text="もう一度書きます")
