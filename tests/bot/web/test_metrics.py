"""GET /metrics: scraped after real traffic; token and loopback rules; no text or user keys."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_app
from bot.config import load_config
from bot.web.metrics import METRICS

TOKEN = "metrics-token-for-tests-0123456789"
MESSAGE = "母が万引きをやめられません"


def _app(tmp_path: Path, token: str = "") -> web.Application:
    env = {"TSUNAGU_SECRET": "test-secret"}
    if token:
        env["TSUNAGU_METRICS_TOKEN"] = token
    return create_app(load_config(env=env, db_path=tmp_path / "tsunagu.db"))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_scrape_after_traffic(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    client = await aiohttp_client(_app(tmp_path))
    first = await client.post("/api/chat", json={"text": MESSAGE})
    session = (await first.json())["session"]
    await client.post("/api/chat", json={"session": session, "postback": "consent:granted"})
    await client.get("/admin/history/resource/some-id-42")  # a route with parameters
    await client.get("/no/such/page?user=secret")
    await client.post("/api/chat", data=b"{not json")
    ws = await client.ws_connect("/ws/chat", headers={"Origin": str(client.make_url(""))})
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = await resp.text()
    await ws.close()
    s = _samples(text)
    chat = (("method", "POST"), ("route", "/api/chat"), ("status", "200"))
    assert s[("tsunagu_http_requests_total", chat)] == 2
    assert any(
        name == "tsunagu_http_requests_total"
        and dict(labels)["route"] == "/admin/history/{entity}/{id}"
        for name, labels in s
    )
    unmatched = (("method", "GET"), ("route", "(unmatched)"), ("status", "404"))
    assert s[("tsunagu_http_requests_total", unmatched)] == 1
    latency = (("method", "POST"), ("route", "/api/chat"))
    assert s[("tsunagu_http_request_duration_seconds_count", latency)] == 3
    assert s[("tsunagu_messages_total", (("channel", "web"),))] == 2
    assert s[("tsunagu_websocket_connections", (("kind", "widget"),))] == 1
    assert ("tsunagu_queue_length", (("office", "sample_probation"),)) in s
    assert s[("tsunagu_open_conversations", ())] == 1
    # Never raw URLs, message text or user keys.
    assert "some-id-42" not in text and "secret" not in text and "/no/such" not in text
    assert MESSAGE not in text and session not in text


async def test_errors_are_counted(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    app = _app(tmp_path)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("broken on purpose")

    app.router.add_get("/boom/{n}", boom)
    client = await aiohttp_client(app)
    assert (await client.get("/boom/1")).status == 500
    assert (await client.get("/boom/2")).status == 500
    s = _samples(app[METRICS].exposition().decode())
    assert s[("tsunagu_errors_total", (("kind", "exception"), ("where", "/boom/{n}")))] == 2
    assert s[("tsunagu_errors_total", (("kind", "http_5xx"), ("where", "/boom/{n}")))] == 2
    assert s[("tsunagu_errors_total", (("kind", "log"), ("where", "aiohttp.server")))] >= 2


async def test_token_is_required_when_set(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    client = await aiohttp_client(_app(tmp_path, TOKEN))
    assert (await client.get("/metrics")).status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await client.get("/metrics", headers=wrong)).status == 401
    basic = {"Authorization": f"Basic {TOKEN}"}
    assert (await client.get("/metrics", headers=basic)).status == 401
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200
    assert "tsunagu_http_requests_total" in await ok.text()


async def test_without_token_a_proxied_request_is_refused(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    client = await aiohttp_client(_app(tmp_path))
    assert (await client.get("/metrics")).status == 200
    proxied = {"X-Forwarded-For": "203.0.113.9"}
    assert (await client.get("/metrics", headers=proxied)).status == 403


def _outside_address() -> str | None:
    """An address of this machine that is not loopback (None when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_without_token_only_loopback_is_answered(tmp_path: Path) -> None:
    address = _outside_address()
    if address is None:
        pytest.fail("this machine has no non-loopback IPv4 address to test from")
    runner = web.AppRunner(_app(tmp_path))
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{address}:{port}/metrics") as resp:
                assert resp.status == 403
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
            async with http.get(f"http://{address}:{port}/healthz") as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def test_apps_have_separate_registries(tmp_path: Path) -> None:
    a, b = _app(tmp_path / "a"), _app(tmp_path / "b")
    assert a[METRICS].registry is not b[METRICS].registry
