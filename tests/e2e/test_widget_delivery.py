"""Counselor messages reach the widget exactly once after leaving the page, and the widget
falls back to HTTP when WebSockets are blocked (real Chromium, app, engine and SQLite)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bot import keys
from bot.identity import user_key
from knowledge.models import User
from tests.e2e.conftest import Live, Pages, ask_for_a_counselor

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

WORRY = "高齢の母が万引きをしてしまいました"
SAID = "相談員の木村です。折り返しは03-1234-5678からです。"


async def _counselor(live: Live, page: Any) -> tuple[int, User]:
    session = await page.evaluate("JSON.parse(sessionStorage.getItem('tsunagu.session'))")
    app = live.app
    case = app[keys.DESK].open_case(user_key("web", session, app[keys.CONFIG].secret))
    assert case is not None
    user = live.add_user("kaori", "counselor", "kaori-counsel-pass-1", office_id=case.office_id)
    return case.id, user


def _counselor_bubbles(page: Any) -> Any:
    return page.locator(".tsg-bot .tsg-bubble", has_text="【相談員】")


async def test_messages_sent_while_the_page_was_away_arrive_once(live: Live, pages: Pages) -> None:
    from playwright.async_api import expect

    base = live.base + "/"
    desk = live.app[keys.DESK]
    page = await pages.page(390, 800)
    await page.goto(base)
    await ask_for_a_counselor(page, WORRY)
    case_id, kaori = await _counselor(live, page)
    desk.claim(kaori, case_id)
    claimed = page.locator('.tsg-notice[data-status="claimed"]')
    await expect(claimed).to_have_count(1, timeout=15000)
    desk.reply(kaori, case_id, "はじめまして。")
    await expect(_counselor_bubbles(page)).to_have_count(1, timeout=15000)
    # The person leaves the page (same tab: sessionStorage stays); the counselor writes.
    await page.goto("about:blank")
    desk.reply(kaori, case_id, SAID)
    desk.reply(kaori, case_id, "ゆっくりで大丈夫です。")
    await asyncio.sleep(0.1)
    await page.goto(base)
    bubbles = _counselor_bubbles(page)
    await expect(bubbles).to_have_count(3, timeout=15000)
    texts = await bubbles.all_inner_texts()
    # Exactly what was typed, in order, each once (the kept copy is masked).
    assert texts == [
        "【相談員】はじめまして。",
        "【相談員】" + SAID,
        "【相談員】ゆっくりで大丈夫です。",
    ]
    await expect(claimed).to_have_count(1)
    # Live again: the next one arrives once, and a reload shows no duplicates.
    desk.reply(kaori, case_id, "また書きます。")
    await expect(bubbles).to_have_count(4, timeout=15000)
    await page.reload()
    await expect(page.locator(".tsg-log")).to_contain_text("また書きます。")
    await page.wait_for_timeout(1000)
    assert await bubbles.count() == 4


async def test_blocked_websockets_fall_back_to_http(live: Live, pages: Pages, shots: Path) -> None:
    from playwright.async_api import expect

    base = live.base + "/"
    desk = live.app[keys.DESK]
    attempts: list[str] = []

    async def block(ws: Any) -> None:  # a network that refuses WebSockets
        attempts.append(ws.url)
        await ws.close()

    context = await pages.context(390, 800)
    await context.route_web_socket(re.compile(r"/ws/chat$"), block)
    page = await context.new_page()
    await page.goto(base)
    await expect(page.locator(".tsg-root")).to_have_attribute(
        "data-transport", "http", timeout=20000
    )
    assert len(attempts) >= 3
    # The whole conversation with the bot works over HTTP.
    await ask_for_a_counselor(page, WORRY)
    card_or_choice = page.locator(".tsg-card, .tsg-choices")
    assert await card_or_choice.count() > 0
    # Counselor messages arrive by polling, exactly as typed, once.
    case_id, kaori = await _counselor(live, page)
    desk.claim(kaori, case_id)
    desk.reply(kaori, case_id, SAID)
    await expect(_counselor_bubbles(page)).to_have_count(1, timeout=30000)
    assert await _counselor_bubbles(page).inner_text() == "【相談員】" + SAID
    # The person answers; the bot stays silent and the counselor gets it.
    box = page.get_by_label("メッセージ")
    await box.fill("よろしくお願いします")
    await box.press("Enter")
    for _ in range(100):
        kept = [m.text for m in desk.store.messages(case_id) if m.sender == "person"]
        if "よろしくお願いします" in kept:
            break
        await asyncio.sleep(0.1)
    assert "よろしくお願いします" in kept
    await page.screenshot(path=str(shots / "fallback.png"))
