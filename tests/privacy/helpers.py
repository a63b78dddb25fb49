"""Helpers shared by the privacy and security tests: file bytes, chat turns, staff logins."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot import keys
from bot.identity import user_key
from knowledge.models import User

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def file_bytes(db_path: Path) -> bytes:
    """Everything SQLite keeps on disk for this database: the file, its WAL and journals."""
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = Path(f"{db_path}{suffix}")
        if f.exists():
            data += f.read_bytes()
    return data


def assert_not_in_files(db_path: Path, *needles: str) -> None:
    """No needle is anywhere in the database files, as UTF-8 or UTF-16."""
    data = file_bytes(db_path)
    for needle in needles:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert needle.encode(encoding) not in data, f"{needle!r} ({encoding}) in {db_path}"


async def chat(client: TestClient, session: str | None, **turn: Any) -> tuple[str, list[dict]]:
    """One ``/api/chat`` turn; returns (session, messages)."""
    resp = await client.post("/api/chat", json={"session": session, **turn})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return body["session"], body["messages"]


async def start_with_consent(client: TestClient) -> str:
    """A new widget session that agreed to records."""
    session, _ = await chat(client, None)
    session, _ = await chat(client, session, postback="consent:granted")
    return session


async def login(client: TestClient, name: str, password: str) -> str:
    """Log in through the admin login form; returns the new session's CSRF token."""
    page = await client.get("/admin/login")
    m = CSRF_RE.search(await page.text())
    assert m
    resp = await client.post(
        "/admin/login",
        data={"name": name, "password": password, "csrf_token": m.group(1)},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    raw = next(c.value for c in client.session.cookie_jar if c.key == "tsunagu_session")
    record = client.app[keys.SESSIONS].get(raw)  # type: ignore[union-attr]
    assert record is not None
    return record.csrf_token


def case_for_counselor(client: TestClient, session: str, name: str) -> tuple[str, int, User]:
    """The open handover case of a widget session, moved to counselor ``name``'s office.

    Returns:
        The session's user key, the case id and the counselor's account.
    """
    app = client.app
    desk = app[keys.DESK]
    key = user_key("web", session, app[keys.CONFIG].secret)
    case = desk.open_case(key)
    assert case is not None
    counselor = user(client, name)
    if case.office_id != counselor.office_id:
        desk.store.rehome(case.id, counselor.office_id or "", "test")
    return key, case.id, counselor


def user(client: TestClient, name: str) -> User:
    """The account ``name`` of the app under test."""
    found = next(u for u in client.app[keys.KB].list_users() if u.name == name)  # type: ignore[union-attr]
    return found
