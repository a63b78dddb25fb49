"""End-to-end fixtures: a live app on a free port, one Chromium per module, login, blank checks.

Browser tests share one event loop per module (``pytest.mark.asyncio(loop_scope="module")``
in the test module) so that one Chromium serves all of its tests.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import keys
from bot.app import create_app
from bot.config import load_config
from knowledge.models import User

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Live:
    """The real app served on a free local port, with a temporary SQLite file."""

    server: TestServer
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> web.Application:
        """The running application."""
        return self.server.app

    @property
    def base(self) -> str:
        """The server's root URL, without the trailing slash."""
        return str(self.server.make_url("/")).rstrip("/")

    def add_user(
        self, name: str, role: str, password: str, *, office_id: str | None = None
    ) -> User:
        """Create a staff account of a role; log_in remembers its password."""
        kb = self.app[keys.KB]
        kb.add_user(name, role, password, office_id=office_id)
        self.passwords[name] = password
        user = kb.get_user(name)
        assert user is not None
        return user

    async def log_in(self, page: Page, name: str, *, screenshot: Path | None = None) -> None:
        """Fill in the login form the page shows as name and submit it.

        Args:
            page: A page showing the admin or console login form.
            name: An account made with add_user.
            screenshot: Where to keep a picture of the filled-in form, if anywhere.
        """
        await page.get_by_label("ユーザー名").fill(name)
        await page.get_by_label("パスワード").fill(self.passwords[name])
        if screenshot is not None:
            await page.screenshot(path=str(screenshot))
        await page.get_by_role("button", name="ログイン").click()

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the SQLite file directly, as an auditor would."""
        with sqlite3.connect(self.app[keys.CONFIG].db_path) as conn:
            return conn.execute(sql, params).fetchall()


@asynccontextmanager
async def live_app(tmp_path: Path, env: dict[str, str] | None = None) -> AsyncIterator[Live]:
    """Serve create_app(config) on 127.0.0.1 with a free port and a fresh database.

    Args:
        tmp_path: The test's temporary folder (the SQLite file goes there).
        env: Extra environment for load_config (LINE settings, for example).
    """
    config = load_config(env={"TSUNAGU_SECRET": "e2e", **(env or {})}, db_path=tmp_path / "t.db")
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        yield Live(server)
    finally:
        await server.close()


@pytest_asyncio.fixture(loop_scope="module")
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """The real app on a free port with its own temporary database and default config."""
    async with live_app(tmp_path) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """The system Chromium, launched once per test module."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class Pages:
    """Fresh browser contexts (own cookies and storage) for one test, closed after it."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._contexts: list[BrowserContext] = []

    async def context(self, width: int, height: int) -> BrowserContext:
        """A new context with a viewport of width x height."""
        context = await self._browser.new_context(viewport={"width": width, "height": height})
        self._contexts.append(context)
        return context

    async def page(self, width: int, height: int) -> Page:
        """A new page in a context of its own."""
        return await (await self.context(width, height)).new_page()

    async def close(self) -> None:
        """Close every context this test opened."""
        while self._contexts:
            await self._contexts.pop().close()


@pytest_asyncio.fixture(loop_scope="module")
async def pages(browser: Browser) -> AsyncIterator[Pages]:
    """Opens pages in the module's Chromium and closes them when the test ends."""
    opened = Pages(browser)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Folder for screenshots; TSUNAGU_SCREENSHOTS keeps them for a person to look at."""
    target = Path(os.environ.get("TSUNAGU_SCREENSHOTS", tmp_path / "shots"))
    target.mkdir(parents=True, exist_ok=True)
    return target


def watch(page: Page, *, warnings: bool = True, failed_responses: bool = True) -> list[str]:
    """Collect the page's script errors (and warnings, HTTP ≥ 400) as they happen.

    Args:
        page: The page to watch.
        warnings: Count console warnings (CSP reports among them), not only errors.
        failed_responses: Count responses with a status of 400 or more.

    Returns:
        A list that fills up while the test runs; assert it stays empty.
    """
    kinds = ("error", "warning") if warnings else ("error",)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in kinds else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    if failed_responses:
        page.on(
            "response",
            lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
    return problems


async def ask_for_a_counselor(page: Page, worry: str) -> None:
    """In the widget: consent, write a worry, ask for a person, agree to share, be queued.

    Args:
        page: A page showing the widget, before its greeting was answered.
        worry: The first message the person writes.
    """
    from playwright.async_api import expect

    await page.get_by_role("button", name="同意して相談する").click(timeout=15000)
    box = page.get_by_label("メッセージ")
    await box.fill(worry)
    await box.press("Enter")
    await expect(page.locator(".tsg-choices").last).to_be_visible(timeout=15000)
    await box.fill("人と話したい")
    await box.press("Enter")
    # What will be shared, and the choice.
    agree = page.get_by_role("button", name="同意する", exact=True)
    await expect(agree).to_be_visible(timeout=15000)
    await expect(page.locator(".tsg-log")).to_contain_text("匿名のまま")
    await agree.click()
    await expect(page.locator('.tsg-notice[data-status="waiting"]')).to_be_visible(timeout=15000)


def _decode(png: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the inflated (still filtered) rows of a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, chunk = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, ctype = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    return width, height, 4 if ctype == 6 else 3, zlib.decompress(data)


def assert_not_blank(png: bytes, *, min_variance: float = 50) -> None:
    """Fail when a screenshot is a blank screen (decoded without an imaging library).

    Args:
        png: The screenshot.
        min_variance: The least byte variance that counts as drawn (about 0 when blank).
    """
    width, height, bpp, raw = _decode(png)
    stride = width * bpp + 1
    # Sample the filter-free bytes of every 8th row: enough to tell blank from drawn.
    samples = [
        raw[r * stride + 1 + c] for r in range(0, height, 8) for c in range(0, width * bpp, 7)
    ]
    variance = statistics.pvariance(samples)
    assert variance > min_variance, f"the screenshot looks blank (variance {variance:.1f})"


def distinct_colours(png: bytes) -> int:
    """Number of distinct RGB colours in a PNG (1 for a blank image); exact but slow."""
    width, height, bpp, raw = _decode(png)
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        ftype, cur = line[0], bytearray(line[1:])
        for i in range(stride):  # undo the PNG row filters
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif ftype == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif ftype == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (cur[i] + pred) & 0xFF
        prev = cur
        for x in range(0, stride, bpp * 3):
            colours.add(bytes(cur[x : x + 3]))
    return len(colours)
