"""The web channel: /api/chat, /ws/chat, demo page and assets, malformed input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from bot.app import create_app
from bot.channels import web as web_channel
from bot.config import load_config

Client = Any  # pytest-aiohttp's TestClient


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path) -> Client:  # type: ignore[no-untyped-def]
    config = load_config(env={"TSUNAGU_SECRET": "test-secret"}, db_path=tmp_path / "t.db")
    return await aiohttp_client(create_app(config))


async def _post(client: Client, body: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/api/chat", json=body)
    return resp.status, await resp.json()


async def test_start_gives_session_and_greeting_with_consent(client: Client) -> None:
    status, data = await _post(client, {"session": None})
    assert status == 200
    assert len(data["session"]) >= 20
    types = [m["type"] for m in data["messages"]]
    assert types == ["text", "choices"]
    assert "110" in data["messages"][0]["text"]
    postbacks = [i["postback"] for i in data["messages"][1]["items"]]
    assert postbacks == ["consent:granted", "consent:declined"]


async def test_postback_continues_the_same_session(client: Client) -> None:
    _, start = await _post(client, {"session": None})
    status, data = await _post(
        client, {"session": start["session"], "postback": "consent:granted"}
    )
    assert status == 200
    assert data["session"] == start["session"]
    assert data["messages"][0]["type"] == "choices"
    assert any(i["postback"].startswith("topic:") for i in data["messages"][0]["items"])


async def test_topic_button_to_resources_json_shape(client: Client) -> None:
    _, start = await _post(client, {"session": None})
    session = start["session"]
    await _post(client, {"session": session, "postback": "consent:declined"})
    _, data = await _post(client, {"session": session, "postback": "topic:drugs"})
    # Whatever is asked first, answering every question leads to resources.
    for _ in range(4):
        if any(m["type"] == "resources" for m in data["messages"]):
            break
        choices = [m for m in data["messages"] if m["type"] == "choices"][-1]
        skip = [i for i in choices["items"] if i["postback"].endswith(":skip")]
        _, data = await _post(client, {"session": session, "postback": skip[0]["postback"]})
    resources = [m for m in data["messages"] if m["type"] == "resources"]
    assert resources, data
    card = resources[0]["items"][0]
    assert {"kind", "name", "phone", "tel", "url", "hours", "reason", "sample"} <= set(card)
    assert 1 <= len(resources[0]["items"]) <= 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", "bad_json"),
        ([1, 2], "bad_json"),
        ({"session": 5, "text": "x"}, "bad_session"),
        ({"session": "short", "text": "x"}, "bad_session"),
        ({"session": None, "text": 3}, "bad_text"),
        ({"session": None, "text": "   "}, "empty_text"),
        ({"session": None, "text": "a", "postback": "b"}, "ambiguous"),
        ({"session": None, "postback": ""}, "bad_postback"),
        ({"session": None, "action": "explode"}, "bad_action"),
    ],
)
async def test_malformed_api_input_gets_clear_error(client: Client, body: Any, code: str) -> None:
    if isinstance(body, str):
        resp = await client.post("/api/chat", data=body)
    else:
        resp = await client.post("/api/chat", json=body)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"]["code"] == code
    assert data["error"]["message"]
    # The server keeps serving.
    status, ok = await _post(client, {"session": None})
    assert status == 200 and ok["messages"]


async def test_too_long_text_and_body(client: Client) -> None:
    resp = await client.post("/api/chat", json={"session": None, "text": "あ" * 2001})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "text_too_long"
    resp = await client.post("/api/chat", data=b"{" + b" " * 20000 + b"}")
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"
    resp = await client.post("/api/chat", data=b"\xff\xfe")
    assert resp.status == 400


async def test_unknown_postback_is_answered_kindly(client: Client) -> None:
    _, start = await _post(client, {"session": None})
    session = start["session"]
    await _post(client, {"session": session, "postback": "consent:granted"})
    status, data = await _post(client, {"session": session, "postback": "nonsense:value"})
    assert status == 200
    assert data["messages"][0]["type"] == "text"


async def test_delete_action_ends_conversation(client: Client) -> None:
    _, start = await _post(client, {"session": None})
    session = start["session"]
    await _post(client, {"session": session, "postback": "consent:granted"})
    _, data = await _post(client, {"session": session, "action": "delete"})
    assert [m["type"] for m in data["messages"]] == ["end"]
    # A stale button after deletion starts afresh with the greeting.
    _, data = await _post(client, {"session": session, "postback": "topic:drugs"})
    assert data["messages"][-1]["items"][0]["postback"] == "consent:granted"


async def test_demo_page_and_assets(client: Client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    html = await resp.text()
    assert '<script src="/widget.js"' in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    for path, kind in (("/widget.js", "javascript"), ("/widget.css", "css"), ("/demo.css", "css")):
        asset = await client.get(path)
        assert asset.status == 200
        assert kind in asset.headers["Content-Type"]
    js = await (await client.get("/widget.js")).text()
    assert "isComposing" in js and "すぐに閉じる" in js


# -- WebSocket ------------------------------------------------------------------------


async def _hello(ws: Any, session: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    await ws.send_json({"type": "hello", "session": session})
    ready = await ws.receive_json(timeout=10)
    assert ready["type"] == "ready"
    messages: list[dict[str, Any]] = []
    if session is None:
        reply = await ws.receive_json(timeout=10)
        assert reply["type"] == "reply"
        messages = reply["messages"]
    return ready["session"], messages


async def _turn(ws: Any, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json(frame)
    first = await ws.receive_json(timeout=10)
    if first["type"] == "typing":
        first = await ws.receive_json(timeout=10)
    return first


async def test_ws_conversation_and_resend_after_reconnect(client: Client) -> None:
    ws = await client.ws_connect("/ws/chat")
    session, greeting = await _hello(ws)
    assert greeting[-1]["type"] == "choices"
    reply = await _turn(ws, {"type": "postback", "postback": "consent:granted", "id": "f1"})
    assert reply["type"] == "reply" and reply["id"] == "f1"
    await ws.close()
    # Reconnect with the same session; a resent frame gets the same answer, not a new turn.
    ws = await client.ws_connect("/ws/chat")
    again, messages = await _hello(ws, session)
    assert again == session and messages == []
    resent = await _turn(ws, {"type": "postback", "postback": "consent:granted", "id": "f1"})
    assert resent == reply
    await ws.close()


async def test_ws_malformed_frames_get_errors_and_socket_stays(client: Client) -> None:
    ws = await client.ws_connect("/ws/chat")
    await ws.send_str("{not json")
    assert (await ws.receive_json(timeout=10))["code"] == "bad_json"
    await ws.send_json({"type": "message", "text": "x"})
    assert (await ws.receive_json(timeout=10))["code"] == "no_session"
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive_json(timeout=10))["code"] == "bad_frame"
    await _hello(ws)
    await ws.send_json({"type": "dance"})
    assert (await ws.receive_json(timeout=10))["code"] == "bad_type"
    await ws.send_json({"type": "message", "text": 42, "id": "x1"})
    err = await ws.receive_json(timeout=10)
    assert (err["code"], err["id"]) == ("bad_text", "x1")
    await ws.send_json({"type": "hello", "session": "../../etc"})
    assert (await ws.receive_json(timeout=10))["code"] == "bad_session"
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=10)) == {"type": "pong"}
    await ws.close()


async def test_ws_oversized_frame_closes_that_socket_only(client: Client) -> None:
    ws = await client.ws_connect("/ws/chat")
    await ws.send_str("x" * (web_channel.MAX_BODY_BYTES + 10))
    msg = await ws.receive(timeout=10)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    ws2 = await client.ws_connect("/ws/chat")
    await _hello(ws2)
    await ws2.close()


async def test_ws_refuses_foreign_origin(client: Client) -> None:
    resp = await client.get(
        "/ws/chat",
        headers={
            "Origin": "https://evil.example",
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert resp.status == 403
    ws = await client.ws_connect("/ws/chat", headers={"Origin": str(client.make_url("/"))[:-1]})
    await _hello(ws)
    await ws.close()


async def test_shutdown_closes_sockets(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(env={"TSUNAGU_SECRET": "t"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws/chat")
    await _hello(ws)
    assert len(app[web_channel.SOCKETS]) == 1
    await app.shutdown()
    msg = await ws.receive(timeout=10)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    await asyncio.sleep(0)


def test_reply_to_json_rejects_unknown() -> None:
    with pytest.raises(TypeError):
        web_channel.reply_to_json(web.Response())  # type: ignore[arg-type]
