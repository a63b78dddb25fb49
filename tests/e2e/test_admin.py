"""The staff admin in a real headless Chromium: log in, edit a phone number, try, restore."""

from __future__ import annotations

import os
import re
import statistics
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot import keys
from bot.app import create_app
from bot.config import load_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "e2e-admin-password"
OLD_PHONE = "0120-279-338"  # よりそいホットライン, as shipped
NEW_PHONE = "03-9999-0000"  # a test value in a throwaway database
MESSAGE = "死にたいです"  # routes to the crisis lines, よりそいホットライン among them


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    config = load_config(env={"TSUNAGU_SECRET": "e2e"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    app[keys.KB].add_user("sato", "staff", PASSWORD)
    yield srv
    await srv.close()


def _variance(png: bytes) -> float:
    """Byte variance of a screenshot's image data (about 0 for a blank page)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        chunk = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, ctype = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            data += chunk
        pos += 12 + length
    raw = zlib.decompress(data)
    bpp = 4 if ctype == 6 else 3
    stride = width * bpp + 1
    samples = [
        raw[r * stride + 1 + c] for r in range(0, height, 8) for c in range(0, width * bpp, 7)
    ]
    return statistics.pvariance(samples)


def _shot_dir(tmp_path: Path) -> Path:
    # TSUNAGU_SCREENSHOTS keeps the pictures for a person to look at.
    target = Path(os.environ.get("TSUNAGU_SCREENSHOTS", tmp_path / "shots"))
    target.mkdir(parents=True, exist_ok=True)
    return target


async def test_edit_try_restore_in_chromium(server: TestServer, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    shots = _shot_dir(tmp_path)
    base = str(server.make_url("/")).rstrip("/")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on("dialog", lambda d: d.accept())  # 「この版に戻す」 asks first

            # Anonymous → login page.
            await page.goto(base + "/admin/resources")
            await expect(page).to_have_url(base + "/admin/login?next=%2Fadmin%2Fresources")
            await page.get_by_label("ユーザー名").fill("sato")
            await page.get_by_label("パスワード").fill(PASSWORD)
            await page.screenshot(path=str(shots / "admin-login.png"))
            await page.get_by_role("button", name="ログイン").click()
            await expect(page).to_have_url(base + "/admin/resources")
            await expect(page.get_by_role("heading", name="窓口", exact=True)).to_be_visible()

            # Find the resource and change its phone number.
            await page.get_by_role("searchbox", name="検索").fill("よりそい")
            await page.get_by_role("button", name="絞り込む").click()
            await page.get_by_role("link", name="よりそいホットライン").click()
            phone = page.get_by_label("電話番号")
            await expect(phone).to_have_value(OLD_PHONE)
            await phone.fill(NEW_PHONE)
            await page.get_by_role("button", name="保存する").click()
            await expect(page.get_by_role("status")).to_have_text("保存しました。")
            await expect(page.get_by_label("電話番号")).to_have_value(NEW_PHONE)
            await page.screenshot(path=str(shots / "admin-resource-edit.png"), full_page=True)

            # 「メッセージを試す」 shows the new number in the bot's reply.
            await page.get_by_role("link", name="メッセージを試す").click()
            await page.get_by_label("メッセージ", exact=True).fill(MESSAGE)
            await page.get_by_role("button", name="試す", exact=True).click()
            replies = page.locator(".replies")
            await expect(replies).to_contain_text("よりそいホットライン")
            await expect(replies).to_contain_text(NEW_PHONE)
            await expect(replies).not_to_contain_text(OLD_PHONE)
            await expect(page.locator(".facts")).to_contain_text("suicidal")
            tried = await page.screenshot(path=str(shots / "admin-try-new.png"), full_page=True)
            assert _variance(tried) > 50

            # Restore the revision before the edit and see the old number again.
            await page.goto(base + "/admin/resources/yorisoi_hotline")
            await page.get_by_role("link", name="変更履歴を見る").click()
            await expect(page.locator("table.diff ins").first).to_have_text(NEW_PHONE)
            await page.screenshot(path=str(shots / "admin-history.png"), full_page=True)
            await page.get_by_role("button", name=re.compile(r"^第\d+版に戻す$")).first.click()
            await expect(page.get_by_role("status")).to_contain_text("この版に戻しました")
            await page.get_by_role("link", name="メッセージを試す").click()
            await page.get_by_label("メッセージ", exact=True).fill(MESSAGE)
            await page.get_by_role("button", name="試す", exact=True).click()
            await expect(replies).to_contain_text(OLD_PHONE)
            await expect(replies).not_to_contain_text(NEW_PHONE)
            restored = await page.screenshot(path=str(shots / "admin-try-old.png"))
            assert _variance(restored) > 50

            # A tablet in portrait: the editing form stays usable.
            await page.set_viewport_size({"width": 820, "height": 1180})
            await page.goto(base + "/admin/resources/yorisoi_hotline")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 820
            tablet = await page.screenshot(path=str(shots / "admin-tablet.png"))
            assert _variance(tablet) > 50
            # No CSP violations or script errors anywhere on the way.
            assert problems == []
        finally:
            await browser.close()
