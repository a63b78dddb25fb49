"""The widget leaves its HTTP fallback for the WebSocket when sockets work again, and a
duplicated tab starts a conversation of its own (real Chromium, app, engine and SQLite).

Sockets are blocked and let through again by routing ``/ws/chat`` in the browser (a proxy
that refuses upgrades); the widget's backoff waits are skipped with Playwright's clock.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Any

import aiohttp
import pytest

from bot import keys
from bot.identity import user_key
from knowledge.models import User
from tests.e2e.conftest import Live, Pages, ask_for_a_counselor, watch

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

WS_PATH = re.compile(r"/ws/chat$")
WORRY = "高齢の母が万引きをしてしまいました"
CONSENT = "同意して相談する"


class Gate:
    """A network in front of ``/ws/chat``: refuses socket upgrades while ``blocked``.

    Sockets it lets through reach the real server; what the page sends on them is recorded.
    """

    def __init__(self) -> None:
        self.blocked = True
        self.attempts = 0
        self.opened = 0
        self.sent: list[dict[str, Any]] = []

    async def handle(self, ws: Any) -> None:
        self.attempts += 1
        if self.blocked:
            await ws.close()
            return
        self.opened += 1
        server = ws.connect_to_server()

        def upstream(message: str | bytes) -> None:
            if isinstance(message, str):
                self.sent.append(json.loads(message))
            server.send(message)

        ws.on_message(upstream)

    def frames(self, kind: str) -> list[dict[str, Any]]:
        """What the page sent over sockets, of one frame type."""
        return [f for f in self.sent if f.get("type") == kind]


class ApiLog:
    """The page's ``POST /api/chat`` requests, by kind."""

    def __init__(self, context: Any) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        context.on("request", lambda r: self._seen(r, self.bodies))
        context.on("requestfailed", lambda r: self._seen(r, self.failed))

    def _seen(self, request: Any, into: list[dict[str, Any]]) -> None:
        if request.url.endswith("/api/chat") and request.method == "POST":
            into.append(json.loads(request.post_data or "{}"))

    @property
    def polls(self) -> int:
        return sum(1 for b in self.bodies if b.get("action") == "updates")

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies if "text" in b]


async def _transport(page: Any, value: str, timeout: float = 20000) -> None:
    from playwright.async_api import expect

    await expect(page.locator(".tsg-root")).to_have_attribute(
        "data-transport", value, timeout=timeout
    )


async def _stored(page: Any, key: str) -> Any:
    return await page.evaluate(f"JSON.parse(sessionStorage.getItem('tsunagu.{key}'))")


def _key(live: Live, session: str) -> str:
    return user_key("web", session, live.app[keys.CONFIG].secret)


def _kept_in(live: Live, session: str) -> list[str]:
    """What the person wrote, as the SQLite file keeps it (consented conversations)."""
    rows = live.rows(
        "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.user_key = ? AND m.direction = 'in' ORDER BY m.id",
        _key(live, session),
    )
    return [r[0] for r in rows]


async def _counselor(live: Live, page: Any) -> tuple[int, User]:
    session = await _stored(page, "session")
    case = live.app[keys.DESK].open_case(_key(live, session))
    assert case is not None
    user = live.add_user("kaori", "counselor", "kaori-counsel-pass-1", office_id=case.office_id)
    return case.id, user


async def _blocked_page(pages: Pages, gate: Gate, url: str) -> tuple[Any, ApiLog]:
    """A phone-sized page whose sockets go through ``gate``, on HTTP once they failed."""
    context = await pages.context(390, 800)
    await context.route_web_socket(WS_PATH, gate.handle)
    api = ApiLog(context)
    page = await context.new_page()
    await page.clock.install()
    await page.goto(url)
    await _transport(page, "http")
    assert gate.attempts == 3 and gate.opened == 0
    return page, api


async def _say(page: Any, text: str) -> None:
    box = page.get_by_label("メッセージ")
    await box.fill(text)
    await box.press("Enter")


async def _until(check: Any, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    assert check()


# -- from HTTP back to the socket ---------------------------------------------------------


async def test_back_on_the_socket_nothing_lost_or_doubled(live: Live, pages: Pages) -> None:
    """Counselor messages keep coming while the widget switches from polling to the socket."""
    from playwright.async_api import expect

    desk = live.app[keys.DESK]
    gate = Gate()
    page, api = await _blocked_page(pages, gate, live.base + "/")
    problems = watch(page, warnings=False, failed_responses=True)
    await ask_for_a_counselor(page, WORRY)
    case_id, kaori = await _counselor(live, page)
    desk.claim(kaori, case_id)
    said = [f"{n}通目です。ゆっくりで大丈夫ですよ。" for n in range(1, 10)]
    desk.reply(kaori, case_id, said[0])
    bubbles = page.locator(".tsg-bot .tsg-bubble", has_text="【相談員】")
    await expect(bubbles).to_have_count(1, timeout=30000)
    assert api.polls > 0

    # Sockets work again; the counselor goes on writing while the widget switches.
    gate.blocked = False

    async def counselor_writes() -> None:
        for text in said[1:]:
            desk.reply(kaori, case_id, text)
            await asyncio.sleep(0.15)

    writing = asyncio.create_task(counselor_writes())
    await asyncio.sleep(0.3)
    await page.clock.fast_forward(5000)  # the first retry is due 2.5–5 s after falling back
    await _transport(page, "ws", timeout=10000)
    await writing
    polls_at_switch = api.polls
    await expect(bubbles).to_have_count(len(said), timeout=15000)
    assert await bubbles.all_inner_texts() == ["【相談員】" + t for t in said]
    assert gate.opened == 1
    # The long poll has stopped: no new poll in 1.5 s (it runs every 0.3 s while on HTTP).
    await page.wait_for_timeout(1500)
    assert api.polls == polls_at_switch

    # The person answers over the socket; the counselor gets it once.
    turns_over_http = api.texts()
    await _say(page, "ありがとうございます。少し落ち着きました。")
    await _until(
        lambda: (
            "ありがとうございます。少し落ち着きました。"
            in [m.text for m in desk.store.messages(case_id) if m.sender == "person"]
        )
    )
    await page.wait_for_timeout(500)
    kept = [m.text for m in desk.store.messages(case_id) if m.sender == "person"]
    assert kept.count("ありがとうございます。少し落ち着きました。") == 1
    assert api.texts() == turns_over_http
    assert [f["text"] for f in gate.frames("message")] == [
        "ありがとうございます。少し落ち着きました。"
    ]
    # Each notice and the greeting once; the reconnect hello asked for no greeting again.
    assert await page.get_by_role("button", name=CONSENT).count() == 1
    await expect(page.locator('.tsg-notice[data-status="claimed"]')).to_have_count(1)
    await expect(page.locator('.tsg-notice[data-status="waiting"]')).to_have_count(1)
    assert gate.frames("hello")[0].get("greet") is False
    assert await _stored(page, "outbox") == []
    assert problems == []

    # A reload shows the same conversation, each message once.
    shown = await page.locator(".tsg-msg").all_inner_texts()
    await page.reload()
    await expect(page.locator(".tsg-msg")).to_have_count(len(shown), timeout=15000)
    await page.wait_for_timeout(1000)
    assert await page.locator(".tsg-msg").all_inner_texts() == shown


async def test_a_turn_on_its_way_over_http_is_sent_once(live: Live, pages: Pages) -> None:
    """The switch happens while a message is on its way over HTTP and another one waits."""
    from playwright.async_api import expect

    gate = Gate()
    page, api = await _blocked_page(pages, gate, live.base + "/")
    await page.get_by_role("button", name=CONSENT).click(timeout=15000)
    await expect(page.locator(".tsg-choices").last).to_be_visible(timeout=15000)
    session = await _stored(page, "session")

    release = asyncio.Event()
    held: list[str] = []

    async def hold_turns(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        if "text" in body and not release.is_set():
            held.append(body["text"])
            await release.wait()
        await route.continue_()

    await page.route("**/api/chat", hold_turns)
    first, second = "高齢の父が万引きをくり返しています", "家族として何ができるでしょうか"
    await _say(page, first)
    await _until(lambda: held == [first])
    await _say(page, second)  # waits in the outbox behind the first
    assert [f["text"] for f in await _stored(page, "outbox")] == [first, second]

    gate.blocked = False
    await page.clock.fast_forward(5000)
    await _transport(page, "ws", timeout=10000)
    await page.wait_for_timeout(500)
    # The second must not overtake the first, which is still on its way over HTTP.
    assert gate.frames("message") == []
    release.set()

    await _until(lambda: len(gate.frames("message")) == 1)
    await expect(page.locator(".tsg-typing")).to_be_hidden(timeout=15000)
    assert await _stored(page, "outbox") == []
    users = page.locator(".tsg-user .tsg-bubble")
    assert await users.all_inner_texts() == [CONSENT, first, second]
    assert [f["text"] for f in gate.frames("message")] == [second]
    assert api.texts() == [first]
    # The server ran each turn once: the SQLite file keeps each message once, in order.
    await page.wait_for_timeout(500)
    assert _kept_in(live, session) == [CONSENT, first, second]
    # Each answer shown once: every bot message in the log differs from the one before.
    bots = await page.locator(".tsg-bot").all_inner_texts()
    assert all(a != b for a, b in itertools.pairwise(bots))


async def test_switch_before_consent_shows_the_greeting_once(live: Live, pages: Pages) -> None:
    from playwright.async_api import expect

    gate = Gate()
    page, api = await _blocked_page(pages, gate, live.base + "/")
    consent = page.get_by_role("button", name=CONSENT)
    await expect(consent).to_be_visible(timeout=15000)
    await _until(lambda: api.polls == 1)  # waiting on the server for counselor messages
    shown = await page.locator(".tsg-msg").count()
    gate.blocked = False
    await page.clock.fast_forward(5000)
    await _transport(page, "ws", timeout=10000)
    await page.wait_for_timeout(1000)
    assert await page.locator(".tsg-msg").count() == shown
    # The long poll that was waiting has been cancelled, and no other one started.
    assert [b.get("action") for b in api.failed] == ["updates"]
    assert api.polls == 1
    await expect(consent).to_have_count(1)
    await consent.click()  # the greeting's buttons still work, now over the socket
    await expect(page.locator(".tsg-choices").last).to_be_visible(timeout=15000)
    assert [f["postback"] for f in gate.frames("postback")] == ["consent:granted"]


async def test_retries_back_off_with_jitter_up_to_five_minutes(live: Live, pages: Pages) -> None:
    """Each wait lies in the upper half of 5 s, 10 s, 20 s … capped at 5 minutes."""
    gate = Gate()
    page, _ = await _blocked_page(pages, gate, live.base + "/")
    await page.clock.pause_at(await page.evaluate("Date.now() / 1000 + 0.05"))
    await asyncio.sleep(0.3)
    for ceiling in (5, 10, 20, 40, 80, 160, 300, 300):
        before = gate.attempts
        await page.clock.run_for(ceiling * 500 - 200)
        await asyncio.sleep(0.3)
        assert gate.attempts == before, f"retried before {ceiling / 2} s"
        await page.clock.run_for(ceiling * 500 + 400)
        await _until(lambda before=before: gate.attempts == before + 1, timeout=5)
        await asyncio.sleep(0.3)  # the refused socket closes; the next wait starts now
    assert gate.opened == 0
    assert await page.locator(".tsg-root").get_attribute("data-transport") == "http"


async def test_forced_http_never_tries_the_socket(live: Live, pages: Pages) -> None:
    from playwright.async_api import expect

    gate = Gate()
    gate.blocked = False
    context = await pages.context(390, 800)
    await context.route_web_socket(WS_PATH, gate.handle)
    page = await context.new_page()
    embed = live.base + "/embed-http"
    await page.route(
        embed,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body='<!doctype html><title>x</title><script src="/widget.js" data-open="true" '
            'data-transport="http" defer></script>',
        ),
    )
    await page.clock.install()
    await page.goto(embed)
    await expect(page.get_by_role("button", name=CONSENT)).to_be_visible(timeout=15000)
    await page.clock.fast_forward("10:00")
    await page.wait_for_timeout(500)
    assert gate.attempts == 0
    await _transport(page, "http")


async def test_hello_without_greeting(live: Live) -> None:
    """``"greet": false`` skips the greeting of a known session, never of a new one."""
    url = live.base.replace("http://", "ws://") + "/ws/chat"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "session": None, "greet": False})
        ready = await ws.receive_json(timeout=10)
        assert ready["type"] == "ready" and not ready["resumed"]
        greeting = await ws.receive_json(timeout=10)
        assert greeting["type"] == "reply" and greeting["messages"][-1]["type"] == "choices"
        session = ready["session"]
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "session": session, "greet": False})
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        assert (await ws.receive_json(timeout=10))["type"] == "pong"  # nothing in between
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "hello", "session": session})
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        again = await ws.receive_json(timeout=10)  # before consent: the greeting again
        assert again["type"] == "reply" and again["messages"][-1]["type"] == "choices"


# -- duplicated tabs ---------------------------------------------------------------------


async def test_duplicated_tab_starts_its_own_conversation(live: Live, pages: Pages) -> None:
    from playwright.async_api import expect

    context = await pages.context(390, 800)
    # The demo page has no icon; a new tab asks for one (a 404 is not the widget's).
    await context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    first = await context.new_page()
    problems = watch(first, warnings=False)
    await first.goto(live.base + "/")
    await first.get_by_role("button", name=CONSENT).click(timeout=15000)
    await _say(first, "息子が薬物をやめられません")
    await expect(first.locator(".tsg-choices").last).to_be_visible(timeout=15000)
    original = await _stored(first, "session")
    first_log = await first.locator(".tsg-msg").all_inner_texts()

    # window.open copies sessionStorage into the new tab, as "Duplicate tab" does.
    async with context.expect_page() as opened:
        await first.evaluate("window.open(location.href)")
    second = await opened.value
    problems += watch(second, warnings=False)
    await second.wait_for_load_state()
    note = second.locator(".tsg-note")
    await expect(note).to_have_text(
        "これまでの会話は、別のタブで続いています。このタブでは新しく相談を始められます。",
        timeout=15000,
    )
    await expect(second.get_by_role("button", name=CONSENT)).to_be_visible(timeout=15000)
    await expect(second.locator(".tsg-user")).to_have_count(0)
    await _until_async(lambda: _stored(second, "session"), lambda s: s and s != original)
    copy = await _stored(second, "session")
    assert not await _stored(second, "outbox")

    # Each tab goes on with its own conversation; nothing of one shows in the other.
    await _say(first, "家族としてどう接したらいいですか")
    await expect(first.locator(".tsg-user")).to_have_count(3, timeout=15000)
    await second.get_by_role("button", name=CONSENT).click()
    await _say(second, "夫がギャンブルで借金を重ねています")
    await expect(second.locator(".tsg-user")).to_have_count(2, timeout=15000)
    await expect(second.locator(".tsg-choices").last).to_be_visible(timeout=15000)
    await first.wait_for_timeout(500)
    assert await first.locator(".tsg-user .tsg-bubble").all_inner_texts() == [
        CONSENT,
        "息子が薬物をやめられません",
        "家族としてどう接したらいいですか",
    ]
    assert await second.locator(".tsg-user .tsg-bubble").all_inner_texts() == [
        CONSENT,
        "夫がギャンブルで借金を重ねています",
    ]
    assert (await first.locator(".tsg-msg").all_inner_texts())[: len(first_log)] == first_log
    assert await _stored(first, "session") == original
    assert _kept_in(live, original) == [
        CONSENT,
        "息子が薬物をやめられません",
        "家族としてどう接したらいいですか",
    ]
    assert _kept_in(live, copy) == [CONSENT, "夫がギャンブルで借金を重ねています"]

    # Reloading either tab keeps its own conversation: a reload is not a duplicate.
    for page, session in ((first, original), (second, copy)):
        shown = await page.locator(".tsg-msg").all_inner_texts()
        await page.reload()
        await expect(page.locator(".tsg-msg")).to_have_count(len(shown), timeout=15000)
        assert await page.locator(".tsg-msg").all_inner_texts() == shown
        assert await _stored(page, "session") == session
    assert problems == []


async def _until_async(get: Any, ok: Any, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if ok(await get()):
            return
        await asyncio.sleep(0.1)
    assert ok(await get())


async def test_next_page_of_the_same_tab_keeps_the_conversation(live: Live, pages: Pages) -> None:
    """Moving between pages of a site (and back) is no duplicate: nothing is forgotten."""
    from playwright.async_api import expect

    context = await pages.context(390, 800)
    await context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    other = live.base + "/access"
    await context.route(
        other,
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body="<!doctype html><title>アクセス</title><p>窓口の場所</p>"
            '<script src="/widget.js" data-open="true" defer></script>',
        ),
    )
    page = await context.new_page()
    await page.goto(live.base + "/")
    await page.get_by_role("button", name=CONSENT).click(timeout=15000)
    await _say(page, "出所した弟の住むところを探しています")
    await expect(page.locator(".tsg-choices").last).to_be_visible(timeout=15000)
    session = await _stored(page, "session")
    shown = await page.locator(".tsg-msg").all_inner_texts()
    for step in ("next page", "back"):
        if step == "next page":
            await page.goto(other)
        else:
            await page.go_back()
        await expect(page.locator(".tsg-msg")).to_have_count(len(shown), timeout=15000)
        await page.wait_for_timeout(700)
        assert await page.locator(".tsg-msg").all_inner_texts() == shown, step
        assert await page.locator(".tsg-note").count() == 0, step
        assert await _stored(page, "session") == session, step
