"""The handover end to end: a person in the widget (Chromium) or on LINE (simulator) and a
counselor in the console (Chromium), against the real app, engine and SQLite file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot import keys
from bot.identity import user_key
from tests.e2e.conftest import Live, Pages, ask_for_a_counselor, live_app
from tests.line_sim import LineSimulator
from tests.line_sim import events as ev

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

LINE_SECRET = "00112233445566778899aabbccddeeff"
LINE_TOKEN = "e2e-handoff-token"
ACCOUNTS = {
    # The default office takes conversations without a known area.
    "kaori": ("counselor", "sample_probation", "kaori-counsel-pass-1"),
    "kenji": ("counselor", "sample_city_welfare", "kenji-counsel-pass-2"),
}


def _add_counselors(live: Live) -> None:
    for name, (role, office, password) in ACCOUNTS.items():
        live.add_user(name, role, password, office_id=office)


async def _console_login(live: Live, pages: Pages, name: str) -> Any:
    page = await pages.page(1280, 900)
    await page.goto(live.base + "/console/")
    await live.log_in(page, name)
    await page.wait_for_url("**/console/")
    return page


async def test_widget_person_and_console_counselor(live: Live, pages: Pages, shots: Path) -> None:
    from playwright.async_api import expect

    _add_counselors(live)
    base = live.base + "/"
    person = await pages.page(390, 800)
    await person.goto(base)
    await ask_for_a_counselor(person, "息子が万引きで警察に捕まりました")
    box = person.get_by_label("メッセージ")
    (case_id,) = [r[0] for r in live.rows("SELECT id FROM escalations")]

    # The counselor of the right office logs in and sees the case in the queue.
    counselor = await _console_login(live, pages, "kaori")
    row = counselor.locator(f'tr[data-case="{case_id}"]')
    await expect(row).to_be_visible(timeout=15000)
    await expect(row).to_contain_text("万引き")
    await expect(row).to_contain_text("会話の共有に同意")
    await row.get_by_role("button", name="開く").click()
    await expect(counselor.locator("#transcript")).to_contain_text("万引き")
    await counselor.get_by_role("button", name="この相談を担当する").click()
    await expect(person.locator('.tsg-notice[data-status="claimed"]')).to_be_visible(timeout=15000)
    # Counselor → person (a canned reply, edited).
    canned = counselor.get_by_label("定型文")
    await canned.select_option(value="canned.greeting")
    reply = counselor.get_by_label("返信", exact=True)
    await expect(reply).to_have_value(re.compile("^相談員です。"))
    await reply.fill("相談員の木村です。お話を聞かせてください。")
    await counselor.get_by_role("button", name="送信").click()
    await expect(person.locator(".tsg-bot .tsg-bubble").last).to_contain_text(
        "相談員の木村です", timeout=15000
    )
    # The counselor sees their own words as sent (the kept copy is masked).
    own = counselor.locator("#live .from-counselor").last
    await expect(own).to_have_text(
        re.compile("相談員の木村です。お話を聞かせてください。$"), timeout=15000
    )
    await counselor.reload()
    await (
        counselor.locator(f'tr[data-case="{case_id}"]').get_by_role("button", name="開く").click()
    )
    await expect(counselor.locator("#live .from-counselor").last).to_contain_text(
        "相談員の木村です", timeout=15000
    )
    kept = live.rows("SELECT text FROM escalation_messages WHERE sender='counselor'")
    assert kept and all("木村" not in t for (t,) in kept)
    # Person → counselor, live; markup arrives as text, never as HTML.
    await box.fill("よろしくお願いします <b>太字</b>")
    await box.press("Enter")
    heard = counselor.locator("#live .from-person").last
    await expect(heard).to_contain_text("よろしくお願いします <b>太字</b>", timeout=15000)
    assert await counselor.locator("#live b").count() == 0
    # The bot stayed silent while the counselor was on.
    bot_bubbles = await person.locator(".tsg-bot").count()
    await person.screenshot(path=str(shots / "person-with-counselor.png"))
    await counselor.screenshot(path=str(shots / "console-case.png"), full_page=True)

    # A counselor of another office cannot open it.
    other = await _console_login(live, pages, "kenji")
    await expect(other.locator("#queue-body")).to_contain_text("お待ちの相談はありません")
    resp = await other.request.get(base + f"console/api/cases/{case_id}")
    assert resp.status == 403
    denied = live.rows(
        "SELECT actor FROM escalation_audit WHERE action = 'denied' AND escalation_id = ?",
        case_id,
    )
    assert denied == [("kenji",)]

    # Close with an outcome; the person is back with the bot.
    await counselor.get_by_label("保護観察所", exact=False).first.check()
    await counselor.get_by_label("紹介先（任意）").fill("サンプル保護観察所")
    await counselor.get_by_role("button", name="終了する").click()
    await expect(person.locator('.tsg-notice[data-status="closed"]')).to_be_visible(timeout=15000)
    assert await person.locator(".tsg-bot").count() == bot_bubbles + 1
    await box.fill("ありがとうございました")
    await box.press("Enter")
    await expect(person.locator(".tsg-bot")).to_have_count(bot_bubbles + 2, timeout=15000)
    await person.screenshot(path=str(shots / "person-back-with-bot.png"))
    await counselor.screenshot(path=str(shots / "console-closed.png"), full_page=True)
    (state, outcome), *_ = live.rows(
        "SELECT state, outcome FROM escalations WHERE id = ?", case_id
    )
    assert state == "closed" and '"probation_office"' in outcome
    opened = live.rows(
        "SELECT actor, action FROM escalation_audit "
        "WHERE escalation_id = ? AND action LIKE 'open%'",
        case_id,
    )
    assert ("kaori", "open_transcript") in opened


async def test_line_person_and_console_counselor(
    pages: Pages, shots: Path, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    from bot.channels.line import LINE

    async with (
        LineSimulator(LINE_SECRET, LINE_TOKEN) as sim,
        live_app(tmp_path, sim.app_env()) as live,
    ):
        _add_counselors(live)
        sim.webhook_url = live.base + "/line/webhook"
        user = ev.new_user_id()

        async def say(event: dict[str, Any]) -> list[dict[str, Any]]:
            return await sim.say(user, event, live.app[LINE].idle)

        await say(ev.follow(user))
        await say(ev.postback(user, "consent:granted"))
        await say(ev.text(user, "息子が万引きで警察に捕まりました"))
        offer = await say(ev.text(user, "人と話したい"))
        actions = [i["action"]["data"] for i in offer[-1]["quickReply"]["items"]]
        assert actions == ["handoff:full", "handoff:anonymous", "handoff:cancel"]
        queued = await say(ev.postback(user, "handoff:anonymous"))
        assert any("相談員" in m.get("text", "") for m in queued)
        key = user_key("line", user, live.app[keys.CONFIG].secret)
        case = live.app[keys.DESK].open_case(key)
        assert case is not None and case.consent == "anonymous"

        counselor = await _console_login(live, pages, "kaori")
        row = counselor.locator(f'tr[data-case="{case.id}"]')
        await expect(row).to_contain_text("匿名", timeout=15000)
        await row.get_by_role("button", name="開く").click()
        # Anonymous: categories only, no transcript.
        await expect(counselor.locator("#transcript-note")).to_contain_text("匿名")
        assert await counselor.locator("#transcript li").count() == 0
        await counselor.get_by_role("button", name="この相談を担当する").click()
        reply = counselor.get_by_label("返信", exact=True)
        await expect(reply).to_be_visible(timeout=15000)
        pushes_before = len(sim.calls_to("/message/push"))
        await reply.fill("相談員の木村です。LINEでお話しできます。")
        await counselor.get_by_role("button", name="送信").click()
        for _ in range(100):
            if any("LINEでお話しできます" in t for t in sim.texts_to(user)):
                break
            await counselor.wait_for_timeout(100)
        assert any("LINEでお話しできます" in t for t in sim.texts_to(user))
        assert len(sim.calls_to("/message/push")) > pushes_before  # a push
        # The person answers on LINE: no bot reply, the counselor sees it.
        answer = await say(ev.text(user, "ありがとうございます。話を聞いてください"))
        assert answer == []
        heard = counselor.locator("#live .from-person").last
        await expect(heard).to_contain_text("話を聞いてください", timeout=15000)
        await counselor.screenshot(path=str(shots / "console-line.png"))
        await counselor.get_by_role("button", name="ボットに戻す").click()
        for _ in range(100):
            if live.app[keys.DESK].open_case(key) is None:
                break
            await counselor.wait_for_timeout(100)
        await pages.close()  # the console is gone before the person writes again
        back = await say(ev.text(user, "最初から"))
        assert back and all("【相談員】" not in m.get("text", "") for m in back)
        assert live.app[keys.DESK].store.get(case.id).state == "returned"
        assert sim.rejected() == []
