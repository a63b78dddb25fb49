"""The statistics page in a real headless Chromium: charts render and show the seeded numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import keys
from handoff.stats import COMPLEMENT, SUPPRESSED
from tests.e2e.conftest import Live, Pages, distinct_colours, watch
from tests.handoff.test_stats import seed

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "sam-staff-pass-22"
RANGE = "start=2025-11-03&end=2025-11-16"


async def test_stats_page_charts_render_with_the_seeded_numbers(
    live: Live, pages: Pages, shots: Path
) -> None:
    from playwright.async_api import expect

    live.add_user("sam", "staff", PASSWORD)
    seed(live.app[keys.STATS])
    base = live.base
    page = await pages.page(1366, 900)
    errors = watch(page)
    await page.goto(f"{base}/admin/stats?{RANGE}")
    await live.log_in(page, "sam")
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

    for chart in ("topic", "per_day", "referrals_bot"):
        png = await page.locator(f"#chart-{chart}").screenshot()
        (shots / f"stats-{chart}.png").write_bytes(png)
        assert distinct_colours(png) > 5, f"chart {chart} looks blank"
    await page.screenshot(path=str(shots / "stats-page.png"), full_page=True)

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
