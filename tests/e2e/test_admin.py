"""The staff admin in a real headless Chromium: log in, edit a phone number, try, restore."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import Live, Pages, assert_not_blank, watch

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PASSWORD = "e2e-admin-password"
OLD_PHONE = "0120-279-338"  # よりそいホットライン, as shipped
NEW_PHONE = "03-9999-0000"  # a test value in a throwaway database
MESSAGE = "死にたいです"  # routes to the crisis lines, よりそいホットライン among them


async def test_edit_try_restore_in_chromium(live: Live, pages: Pages, shots: Path) -> None:
    from playwright.async_api import expect

    live.add_user("sato", "staff", PASSWORD)
    base = live.base
    page = await pages.page(1280, 900)
    problems = watch(page)
    page.on("dialog", lambda d: d.accept())  # 「この版に戻す」 asks first

    # Anonymous → login page.
    await page.goto(base + "/admin/resources")
    await expect(page).to_have_url(base + "/admin/login?next=%2Fadmin%2Fresources")
    await live.log_in(page, "sato", screenshot=shots / "admin-login.png")
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
    assert_not_blank(tried)

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
    assert_not_blank(restored)

    # A tablet in portrait: the editing form stays usable.
    await page.set_viewport_size({"width": 820, "height": 1180})
    await page.goto(base + "/admin/resources/yorisoi_hotline")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 820
    tablet = await page.screenshot(path=str(shots / "admin-tablet.png"))
    assert_not_blank(tablet)
    # No CSP violations or script errors anywhere on the way.
    assert problems == []
