"""Malformed requests against every route of the app (walked from the routers): wrong methods,
wrong content types, truncated and invalid JSON, invalid UTF-8, oversized bodies and bad
signatures each get a clear 4xx — never a 5xx — and the server still serves /healthz."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.web import auth
from tests.line_sim import LineSimulator
from tests.privacy.helpers import login
from tests.security.test_routes import app_routes

SECRET = "malformed0123456789malformed0123"
BODIES: dict[str, tuple[bytes, str]] = {
    "truncated json": (b'{"session": null, "text": "\xe3\x81', "application/json"),
    "invalid json": (b"{session: nil,,}", "application/json"),
    "json array": (b"[1, 2, 3]", "application/json"),
    "json string": (b'"hello"', "application/json"),
    "deep json": (b"[" * 5000 + b"]" * 5000, "application/json"),
    "invalid utf-8": (b'{"text": "\xff\xfe\xfd"}', "application/json"),
    "wrong type": (b"<xml>hello</xml>", "application/xml"),
    "form for json": (b"text=%E3%81%82&session=", "application/x-www-form-urlencoded"),
    "bad multipart": (b"--x\r\nContent-Disposition: form-data\r\n\r\n", "multipart/form-data"),
    "binary": (bytes(range(256)) * 4, "application/octet-stream"),
    "oversized": (b'{"a": "' + b"a" * (300 * 1024) + b'"}', "application/json"),
}


def _concrete(pattern: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", pattern)


async def _app(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sim: LineSimulator
):  # type: ignore[no-untyped-def]
    config = load_config(
        env={"TSUNAGU_SECRET": "malformed", **sim.app_env()}, db_path=tmp_path / "t.db"
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    app[keys.KB].add_user("root", "admin", "root-admin-pass-1")
    return app, client


def _check(failures: list[str], what: str, status: int) -> None:
    if not 400 <= status < 500 and status not in (200, 301, 303):
        failures.append(f"{what}: {status}")


@pytest.mark.parametrize("who", ["anonymous", "admin"])
async def test_every_route_survives_malformed_requests(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    tmp_path: Path,
    who: str,
    sudachi: None,
) -> None:
    async with LineSimulator(SECRET, "token") as sim:
        app, client = await _app(aiohttp_client, tmp_path, sim)
        headers: dict[str, str] = {}
        if who == "admin":
            # A valid CSRF token, so the bodies reach the handlers' own parsing.
            headers[auth.CSRF_HEADER] = await login(client, "root", "root-admin-pass-1")
        failures: list[str] = []
        routes = app_routes(app)
        for method, pattern in routes:
            if pattern.endswith(("/logout", "/logout-all")) or "/users/" in pattern:
                continue  # would end the session or change accounts; covered in test_routes
            path = _concrete(pattern)
            # Wrong methods: the router answers 405 (or the staff app 401/403 first).
            for wrong in ("PUT", "DELETE", "PATCH"):
                resp = await client.request(wrong, path, headers=headers)
                _check(failures, f"{wrong} {path}", resp.status)
                if resp.status not in (404, 405) and not (
                    resp.status in (401, 403) and who == "anonymous"
                ):
                    failures.append(f"{wrong} {path}: {resp.status}, expected 405")
                resp.release()
            if method != "POST":
                continue
            for name, (body, content_type) in BODIES.items():
                resp = await client.post(
                    path,
                    data=body,
                    headers={
                        **headers,
                        "Content-Type": content_type,
                        "Accept": "application/json",
                    },
                )
                _check(failures, f"POST {path} ({name})", resp.status)
                if path in ("/api/chat", "/line/webhook") and resp.status == 200:
                    failures.append(f"POST {path} ({name}) was accepted")
                resp.release()
        assert not failures, "\n".join(failures)
        assert (await client.get("/healthz")).status == 200
        resp = await client.post("/api/chat", json={"session": None})
        assert resp.status == 200  # still serving the people it is for


async def test_api_errors_are_clear(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    async with LineSimulator(SECRET, "token") as sim:
        _, client = await _app(aiohttp_client, tmp_path, sim)
        for name, (body, content_type) in BODIES.items():
            resp = await client.post(
                "/api/chat", data=body, headers={"Content-Type": content_type}
            )
            assert resp.status in (400, 413), name
            error = (await resp.json())["error"]
            assert error["code"] in ("bad_json", "bad_body", "too_large"), name
            assert error["message"], name


async def test_webhook_signatures(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    async with LineSimulator(SECRET, "token") as sim:
        _, client = await _app(aiohttp_client, tmp_path, sim)
        body = b'{"destination": "U0", "events": []}'
        for signature in (None, "", "bad", "a" * 10_000, sim.sign(body + b" "), "\u3042"):
            headers = {"Content-Type": "application/json"}
            if signature is not None:
                headers["X-Line-Signature"] = signature.encode("utf-8").decode("latin-1")
            resp = await client.post("/line/webhook", data=body, headers=headers)
            assert resp.status == 400, signature
            if resp.content_type == "application/json":  # else refused by the HTTP parser
                assert (await resp.json())["error"] == "invalid signature"
        resp = await client.post(
            "/line/webhook", data=body, headers={"X-Line-Signature": sim.sign(body)}
        )
        assert resp.status == 200


async def test_websocket_survives_malformed_frames(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], tmp_path: Path
) -> None:
    config = load_config(env={"TSUNAGU_SECRET": "m"}, db_path=tmp_path / "t.db")
    client = await aiohttp_client(create_app(config))
    ws = await client.ws_connect("/ws/chat")
    frames = [
        "not json",
        "[1, 2]",
        '{"type": "message", "text": "before hello"}',
        '{"type": "hello", "session": "../../etc/passwd"}',
        '{"type": "hello", "session": 12}',
        '{"type": 5}',
        '{"type": "message", "id": {"x": 1}}',
        '{"type": "message", "id": "' + "i" * 100 + '"}',
        "[" * 3000 + "]" * 3000,
        '{"type": "hello", "session": null}',
        '{"type": "message", "text": 42}',
        '{"type": "message", "text": "   "}',
        '{"type": "postback", "postback": ""}',
        '{"type": "nonsense"}',
    ]
    errors = 0
    for frame in frames:
        await ws.send_str(frame)
        while True:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] == "error":
                errors += 1
                assert msg["code"] and msg["message"]
                break
            if msg["type"] == "reply" and frame.startswith('{"type": "hello"'):
                break
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive_json(timeout=10))["code"] == "bad_frame"
    assert errors == len(frames) - 1  # every frame but the valid hello is refused clearly
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=10))["type"] == "pong"
    await ws.close()
    assert (await client.get("/healthz")).status == 200
