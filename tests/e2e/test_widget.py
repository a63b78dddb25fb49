"""The widget on the demo page in a real headless Chromium, against the real app."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.web import SOCKETS
from tests.e2e.conftest import Live, Pages, assert_not_blank

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

EXIT_URL = "https://www.google.co.jp/"


async def test_widget_full_conversation(live: Live, pages: Pages, shots: Path) -> None:
    from playwright.async_api import expect

    base = live.base + "/"
    page = await pages.page(390, 800)
    # Quick exit goes to a neutral site; answer it locally (no internet here).
    await page.route(
        EXIT_URL + "**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<title>Google</title>検索"
        ),
    )
    await page.goto(base)
    panel = page.locator(".tsg-panel")
    await expect(panel).to_be_visible()
    await expect(page.locator(".tsg-log")).to_have_attribute("aria-live", "polite")
    await expect(page.get_by_role("button", name="すぐに閉じる")).to_be_visible()

    # Greeting with the privacy notice and the consent choice.
    consent = page.get_by_role("button", name="同意して相談する")
    await expect(consent).to_be_visible(timeout=15000)
    await expect(page.locator(".tsg-log")).to_contain_text("110番")
    await consent.click()
    await expect(page.get_by_role("button", name="万引き・盗み")).to_be_visible()

    # A family member writes about an elderly parent's shoplifting (Enter sends).
    box = page.get_by_label("メッセージ")
    await box.fill("高齢の母が万引きをしてしまいました")
    await box.press("Enter")
    await expect(page.locator(".tsg-user .tsg-bubble").last).to_have_text(
        "高齢の母が万引きをしてしまいました"
    )
    skip = page.get_by_role("button", name="わからない・答えない").last
    await expect(skip).to_be_visible(timeout=15000)
    await skip.click()
    card = page.locator('.tsg-card[data-kind="community_care_center"]').first
    await expect(card).to_be_visible(timeout=15000)
    await expect(card).to_contain_text("地域包括支援センター")
    await expect(page.locator(".tsg-typing")).to_be_hidden()

    # The page renders something (not a blank screen).
    shot = await page.screenshot(path=str(shots / "widget.png"), full_page=False)
    assert_not_blank(shot, min_variance=100)

    # A crisis message: emergency/crisis lines with tap-to-call links at once.
    await box.fill("もう死にたいです")
    await box.press("Enter")
    crisis = page.locator('.tsg-card[data-kind="emergency"], .tsg-card[data-kind="crisis_line"]')
    await expect(crisis.first).to_be_visible(timeout=15000)
    tel = page.locator(".tsg-card a.tsg-tel").last
    assert (await tel.get_attribute("href") or "").startswith("tel:")
    await expect(page.get_by_role("button", name="相談員と話したい").last).to_be_visible()

    # IME: Enter while composing must not send.
    before = await page.locator(".tsg-user").count()
    await box.fill("へんかんちゅう")
    await box.dispatch_event("keydown", {"key": "Enter", "isComposing": True, "keyCode": 229})
    await page.wait_for_timeout(300)
    assert await page.locator(".tsg-user").count() == before
    assert await box.input_value() == "へんかんちゅう"
    await box.fill("")

    # 履歴を消して: deleted at once, confirmed, the tab forgets the session too.
    await box.fill("履歴を消して")
    await box.press("Enter")
    await expect(page.locator(".tsg-end")).to_contain_text("消しました", timeout=15000)
    assert await page.evaluate("sessionStorage.getItem('tsunagu.session')") is None
    assert await page.locator(".tsg-card").count() == 0

    # A fresh session greets again; then すぐに閉じる replaces the page.
    await expect(page.get_by_role("button", name="同意して相談する").last).to_be_visible(
        timeout=15000
    )
    await page.get_by_role("button", name="同意して相談する").last.click()
    await box.fill("薬物のことで相談したいです")
    await box.press("Enter")
    await expect(page.locator(".tsg-user").last).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('tsunagu.session')")
    await page.get_by_role("button", name="すぐに閉じる").click()
    await page.wait_for_url(EXIT_URL + "**", timeout=15000)
    assert "Google" in await page.title()
    await page.go_back()
    # location.replace leaves no history entry back to the chat.
    assert not page.url.startswith(base)


async def test_widget_at_320px_and_reconnect(live: Live, pages: Pages) -> None:
    from playwright.async_api import expect

    base = live.base + "/"
    page = await pages.page(320, 640)
    await page.goto(base)
    consent = page.get_by_role("button", name="記録せずに相談する")
    await expect(consent).to_be_visible(timeout=15000)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, "no horizontal scrolling on a 320 px phone"
    panel_box = await page.locator(".tsg-panel").bounding_box()
    assert panel_box is not None and panel_box["width"] <= 320
    await consent.click()
    await expect(page.locator(".tsg-choices").last).to_be_visible()

    # Connection lost (server drops every socket): the message waits in the outbox
    # and is sent once, after the widget reconnects by itself.
    for ws in list(live.app[SOCKETS]):
        await ws.close()
    await expect(page.locator(".tsg-status")).to_contain_text("つなぎ直して")
    box = page.get_by_label("メッセージ")
    await box.fill("ギャンブルで借金があります")
    await box.press("Enter")
    await expect(page.locator(".tsg-user .tsg-bubble").last).to_have_text(
        "ギャンブルで借金があります"
    )
    area = page.get_by_role("button", name="わからない・答えない").last
    await expect(area).to_be_visible(timeout=20000)
    await expect(page.locator(".tsg-status")).to_be_empty()
    assert await page.evaluate("JSON.parse(sessionStorage.getItem('tsunagu.outbox'))") == []

    # Reload: the conversation is still shown (sessionStorage), keyboard reachable.
    count = await page.locator(".tsg-msg").count()
    await page.reload()
    await expect(page.locator(".tsg-msg")).to_have_count(count, timeout=15000)
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.className")
    assert focused
