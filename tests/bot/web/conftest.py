"""Fixtures for the staff web tests: a real app on a temporary SQLite file, staff accounts."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config

PASSWORDS = {
    "alice": "alice-admin-pass-1",
    "sam": "sam-staff-pass-22",
    "carol": "carol-counsel-pass-3",
}
ROLES = {"alice": "admin", "sam": "staff", "carol": "counselor"}
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    m = _CSRF_RE.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


@dataclass
class Staff:
    """A test client on the real app plus helpers to log in as the test accounts."""

    client: TestClient
    app: web.Application
    db_path: Path

    async def login(self, name: str, password: str | None = None) -> str:
        """Log in through the login form; returns the CSRF token of the new session."""
        page = await self.client.get("/admin/login")
        token = csrf_of(await page.text())
        resp = await self.client.post(
            "/admin/login",
            data={"name": name, "password": password or PASSWORDS[name], "csrf_token": token},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        return self.session_csrf()

    async def post_form(self, path: str, data: dict[str, object] | None = None) -> ClientResponse:
        """Post a form as the logged-in browser would: with the session's CSRF token.

        Args:
            path: Where the form posts to.
            data: Field values; a list value sends the field once per item (checkboxes).

        Returns:
            The response, redirects not followed.
        """
        form: list[tuple[str, str]] = [("csrf_token", self.session_csrf())]
        for key, value in (data or {}).items():
            for v in value if isinstance(value, list) else [value]:
                form.append((key, str(v)))
        return await self.client.post(path, data=form, allow_redirects=False)

    def session_cookie(self) -> str | None:
        """The raw session id held by this client's cookie jar."""
        for cookie in self.client.session.cookie_jar:
            if cookie.key == "tsunagu_session":
                return cookie.value
        return None

    def session_csrf(self) -> str:
        """The CSRF token of this client's current session."""
        raw = self.session_cookie()
        assert raw, "not logged in"
        record = self.app[keys.SESSIONS].get(raw)
        assert record is not None
        return record.csrf_token

    def logout_local(self) -> None:
        """Forget the cookies of this client (like another browser)."""
        self.client.session.cookie_jar.clear()


@pytest.fixture
async def staff(aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path) -> Staff:
    """The real app with three accounts: alice (admin), sam (staff), carol (counselor)."""
    db_path = tmp_path / "tsunagu.db"
    config = load_config(env={"TSUNAGU_SECRET": "test-secret"}, db_path=db_path)
    app = create_app(config)
    client = await aiohttp_client(app)
    kb = app[keys.KB]
    for name, role in ROLES.items():
        kb.add_user(
            name, role, PASSWORDS[name], office_id="office1" if role == "counselor" else None
        )
    return Staff(client, app, db_path)
