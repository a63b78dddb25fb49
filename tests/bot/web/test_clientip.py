"""bot.web.clientip: X-Forwarded-For only from trusted proxies; login lockout per real client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import ConfigError, load_config
from bot.web import auth
from bot.web.clientip import resolve
from tests.bot.web.conftest import csrf_of

PROXY = ("10.0.0.0/8", "127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        # Nothing configured: the header means nothing.
        ("127.0.0.1", ["203.0.113.5"], (), "127.0.0.1"),
        # An untrusted peer cannot choose its address.
        ("198.51.100.7", ["203.0.113.5"], PROXY, "198.51.100.7"),
        # A trusted proxy: the rightmost untrusted address (left of it is client-written).
        ("10.0.0.2", ["203.0.113.5"], PROXY, "203.0.113.5"),
        ("10.0.0.2", ["1.1.1.1, 203.0.113.5"], PROXY, "203.0.113.5"),
        ("10.0.0.2", ["1.1.1.1, 203.0.113.5, 10.0.0.9"], PROXY, "203.0.113.5"),
        ("10.0.0.2", ["1.1.1.1", "203.0.113.5, 10.1.2.3"], PROXY, "203.0.113.5"),
        # Only proxies in the chain: the leftmost one; no header: the proxy itself.
        ("10.0.0.2", ["10.0.0.3, 10.0.0.4"], PROXY, "10.0.0.3"),
        ("10.0.0.2", [], PROXY, "10.0.0.2"),
        # Garbage stops the walk at the last good hop.
        ("10.0.0.2", ["203.0.113.5, not-an-ip"], PROXY, "10.0.0.2"),
        ("10.0.0.2", ["not-an-ip, 203.0.113.5"], PROXY, "203.0.113.5"),
        # Ports and IPv6.
        ("10.0.0.2", ["203.0.113.5:4711"], PROXY, "203.0.113.5"),
        ("10.0.0.2", ["[2001:db8::1]:4711"], PROXY, "2001:db8::1"),
        ("::1", ["2001:db8::1"], ("::1",), "2001:db8::1"),
        ("::ffff:10.0.0.2", ["203.0.113.5"], PROXY, "203.0.113.5"),
        (None, ["203.0.113.5"], PROXY, None),
    ],
)
def test_resolve(
    peer: str | None, xff: list[str], trusted: tuple[str, ...], expected: str
) -> None:
    assert resolve(peer, xff, trusted) == expected


def test_config_from_env_and_bad_values(tmp_path: Path) -> None:
    env = {"TSUNAGU_SECRET": "x", "TSUNAGU_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1"}
    config = load_config(env=env, db_path=tmp_path / "t.db")
    assert config.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")
    assert (
        load_config(env={"TSUNAGU_SECRET": "x"}, db_path=tmp_path / "t.db").trusted_proxies == ()
    )
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(env={**env, "TSUNAGU_TRUSTED_PROXIES": "10.0.0.0/33"}, db_path=tmp_path / "t")


async def _client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, trusted: str
) -> TestClient:
    env = {"TSUNAGU_SECRET": "ip-test", "TSUNAGU_TRUSTED_PROXIES": trusted}
    app = create_app(load_config(env=env, db_path=tmp_path / "t.db"))
    client = await aiohttp_client(app)
    app[keys.KB].add_user("alice", "admin", "alice-admin-pass-1")
    return client


async def _login(client: TestClient, name: str, password: str, xff: str) -> tuple[int, str]:
    page = await client.get("/admin/login", headers={"X-Forwarded-For": xff})
    resp = await client.post(
        "/admin/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(await page.text())},
        headers={"X-Forwarded-For": xff},
        allow_redirects=False,
    )
    return resp.status, await resp.text()


async def test_behind_a_trusted_proxy_one_address_does_not_lock_out_everyone(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    client = await _client(aiohttp_client, tmp_path, "127.0.0.1")  # the test client's peer
    for i in range(20):  # a guesser behind the proxy, a different name each time
        await _login(client, f"guess{i}", "wrong-password-x", "203.0.113.66")
    status, text = await _login(client, "alice", "alice-admin-pass-1", "203.0.113.66")
    assert status == 401 and auth.LOCKED_MESSAGE in text
    # Someone else behind the same proxy still logs in; the audit names the real address.
    status, _ = await _login(client, "alice", "alice-admin-pass-1", "198.51.100.8")
    assert status == 303
    log = client.app[keys.SESSIONS].recent_logins()
    assert log[0].event == "login" and log[0].remote == "198.51.100.8"


async def test_an_untrusted_peer_cannot_dodge_the_lockout_with_the_header(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    client = await _client(aiohttp_client, tmp_path, "10.0.0.0/8")  # not the test client
    for i in range(20):
        await _login(client, f"guess{i}", "wrong-password-x", f"203.0.113.{i}")
    status, text = await _login(client, "alice", "alice-admin-pass-1", "198.51.100.8")
    assert status == 401 and auth.LOCKED_MESSAGE in text
    assert {e.remote for e in client.app[keys.SESSIONS].recent_logins()} == {"127.0.0.1"}
