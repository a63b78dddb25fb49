"""The statistics page in a real headless Chromium: charts render and show the seeded numbers."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot import keys
from bot.app import create_app
from bot.config import load_config
from handoff.stats import COMPLEMENT, SUPPRESSED
from tests.handoff.test_stats import seed

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
PASSWORD = "sam-staff-pass-22"
RANGE = "start=2025-11-03&end=2025-11-16"
SHOTS = Path(__file__).resolve().parent.parent.parent / "build" / "screenshots"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    config = load_config(env={"TSUNAGU_SECRET": "e2e"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    app[keys.KB].add_user("sam", "staff", PASSWORD)
    seed(app[keys.STATS])
    yield srv
    await srv.close()


def _distinct_colours(png: bytes) -> int:
    """Number of distinct RGB colours in a PNG (1 for a blank image); no imaging library."""
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
    raw = zlib.decompress(data)
    bpp = 4 if ctype == 6 else 3
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


async def test_stats_page_charts_render_with_the_seeded_numbers(server: TestServer) -> None:
    from playwright.async_api import async_playwright, expect

    base = str(server.make_url("/")).rstrip("/")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{base}/admin/stats?{RANGE}")
            await page.get_by_label("ユーザー名").fill("sam")
            await page.get_by_label("パスワード").fill(PASSWORD)
            await page.get_by_role("button", name="ログイン").click()
            await expect(page.get_by_role("heading", name="統計", level=1)).to_be_visible()
            assert "/admin/stats" in page.url

            def cell(table: str, key: str):  # type: ignore[no-untyped-def]
                return page.locator(f'table[data-table="{table}"] tr[data-key="{key}"] td')

            await expect(cell("overview", "total")).to_have_text("28")
            await expect(cell("overview", "handoff_rate")).to_have_text("35.7%")
            await expect(cell("overview", "pickup_median")).to_have_text("1分30秒")
            await expect(cell("overview", "local_share")).to_have_text("53.6%")
            await expect(cell("topic", "theft")).to_have_text("12")
            await expect(cell("topic", "juvenile")).to_have_text(SUPPRESSED)
            await expect(cell("topic", "gambling")).to_have_text(COMPLEMENT)
            await expect(cell("per_week", "2025-11-03")).to_have_text("18")

            # Charts: drawn (bars with a width), labelled in Japanese, 5未満 shown as such.
            topic = page.locator("#chart-topic")
            await expect(topic).to_be_visible()
            widths = await topic.locator("rect.bar:not(.small)").evaluate_all(
                "els => els.map(e => e.getBBox().width)"
            )
            drawn = [w for w in widths if w > 0]
            assert len(drawn) == 2 and drawn[0] > drawn[1] > 50  # 12 and 9; zeros are flat
            await expect(topic.locator("text", has_text="万引き・窃盗")).to_have_count(1)
            await expect(topic.locator("text.value", has_text=SUPPRESSED)).to_have_count(1)
            values = await topic.locator("text.value").all_text_contents()
            assert "12" in values and "9" in values
            line = page.locator("#chart-per_day")
            await expect(line.locator("circle.point")).to_have_count(14)
            await expect(line.locator("text.band-label")).to_have_text(SUPPRESSED)

            SHOTS.mkdir(parents=True, exist_ok=True)
            for chart in ("topic", "per_day", "referrals_bot"):
                png = await page.locator(f"#chart-{chart}").screenshot()
                (SHOTS / f"stats-{chart}.png").write_bytes(png)
                assert _distinct_colours(png) > 5, f"chart {chart} looks blank"
            await page.screenshot(path=str(SHOTS / "stats-page.png"), full_page=True)

            # The office filter: the page reloads with that office's numbers.
            await page.get_by_label("事務所", exact=True).select_option("office_b")
            await page.get_by_role("button", name="表示").click()
            await expect(cell("overview", "total")).to_have_text("5")
            assert "office=office_b" in page.url

            # CSV export of a table: UTF-8 with BOM.
            async with page.expect_download() as info:
                await page.locator("#s-topic a.csv").click()
            download = await info.value
            body = Path(await download.path()).read_bytes()
            assert body.startswith(b"\xef\xbb\xbf")
            assert "薬物,5未満".encode() in body
            assert not errors, errors
        finally:
            await browser.close()
