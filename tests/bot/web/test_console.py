"""The counselor console: login, office scoping (403), audit, CSRF, live queue, the full relay."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from handoff.models import CaseSummary
from intents.types import Area

PASSWORDS = {
    "kaori": "kaori-counsel-pass-1",
    "kenji": "kenji-counsel-pass-2",
    "alice": "alice-admin-pass-3",
    "sam": "sam-staff-pass-44",
}
ACCOUNTS = {
    "kaori": ("counselor", "sample_probation"),
    "kenji": ("counselor", "sample_city_welfare"),
    "alice": ("admin", None),
    "sam": ("staff", None),
}
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
PREF = Area(prefecture="サンプル県", prefecture_code="99")
CITY = Area(prefecture_code="99", municipality="サンプル市", municipality_code="999999")


@dataclass
class Console:
    app: web.Application
    make_client: Callable[[], Awaitable[TestClient]]

    async def login(self, name: str) -> tuple[TestClient, str]:
        """A new browser logged in as ``name``; returns it and the page's CSRF token."""
        client = await self.make_client()
        page = await client.get("/console/login")
        token = _CSRF_RE.search(await page.text())
        assert token
        resp = await client.post(
            "/console/login",
            data={"name": name, "password": PASSWORDS[name], "csrf_token": token.group(1)},
            allow_redirects=False,
        )
        assert resp.status == 303, await resp.text()
        page = await client.get("/console/")
        assert page.status == 200
        meta = _META_RE.search(await page.text())
        assert meta
        return client, meta.group(1)

    def case(
        self, key: str, area: Area = PREF, crisis: str = "none", consent: str = "full"
    ) -> int:
        esc, _ = self.app[keys.DESK].escalate(
            user_key=key,
            channel="web",
            consent=consent,
            reason="requested",
            summary=CaseSummary(topics=("theft",), audience="family", crisis=crisis),
            area=area,
        )
        return esc.id


@pytest.fixture
async def console(
    aiohttp_server: Callable[..., Awaitable[Any]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    tmp_path: Path,
    sudachi: None,
) -> Console:
    config = load_config(env={"TSUNAGU_SECRET": "test-secret"}, db_path=tmp_path / "t.db")
    server = await aiohttp_server(create_app(config))
    app = server.app
    for name, (role, office) in ACCOUNTS.items():
        app[keys.KB].add_user(name, role, PASSWORDS[name], office_id=office)
    return Console(app, lambda: aiohttp_client(server))


async def test_login_rules(console: Console) -> None:
    anonymous = await console.make_client()
    resp = await anonymous.get("/console/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")
    resp = await anonymous.get("/console/api/queue")
    assert resp.status == 401
    # Staff keep the knowledge base; they do not read conversations.
    page = await anonymous.get("/console/login")
    token = _CSRF_RE.search(await page.text())
    assert token
    resp = await anonymous.post(
        "/console/login",
        data={"name": "sam", "password": PASSWORDS["sam"], "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    assert resp.status == 403 and "相談員のアカウント" in await resp.text()
    client, _ = await console.login("kaori")
    page = await client.get("/console/")
    text = await page.text()
    assert "相談の一覧" in text and "サンプル保護観察所" in text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


async def test_a_counselor_of_another_office_gets_403_and_it_is_audited(
    console: Console,
) -> None:
    case_id = console.case("web:person-a", area=PREF)
    kenji, kenji_csrf = await console.login("kenji")
    kaori, kaori_csrf = await console.login("kaori")
    alice, _ = await console.login("alice")
    queue = await (await kenji.get("/console/api/queue")).json()
    assert queue["cases"] == []
    for method, path in [
        ("GET", f"/console/api/cases/{case_id}"),
        ("POST", f"/console/api/cases/{case_id}/claim"),
        ("POST", f"/console/api/cases/{case_id}/reply"),
        ("POST", f"/console/api/cases/{case_id}/note"),
        ("POST", f"/console/api/cases/{case_id}/close"),
    ]:
        resp = await kenji.request(
            method, path, json={"text": "x"}, headers={"X-CSRF-Token": kenji_csrf}
        )
        assert resp.status == 403, (method, path)
    queue = await (await kaori.get("/console/api/queue")).json()
    (row,) = queue["cases"]
    assert row["id"] == case_id and row["topic_label"] and "user_key" not in row
    resp = await kaori.get(f"/console/api/cases/{case_id}")
    assert resp.status == 200
    assert (await alice.get(f"/console/api/cases/{case_id}")).status == 200  # admin: all
    log = console.app[keys.DESK].audit_log(escalation_id=case_id)
    actions = [(e.actor, e.action) for e in reversed(log)]
    assert actions.count(("kenji", "denied")) == 5
    assert ("kaori", "open_transcript") in actions and ("alice", "open_transcript") in actions
    # Unknown ids and other garbage.
    assert (await kaori.get("/console/api/cases/99999")).status == 404
    resp = await kaori.post(
        f"/console/api/cases/{case_id}/claim", headers={"X-CSRF-Token": kaori_csrf}
    )
    assert resp.status == 200
    resp = await kaori.post(
        f"/console/api/cases/{case_id}/claim", headers={"X-CSRF-Token": kaori_csrf}
    )
    assert resp.status == 409


async def test_posts_need_the_csrf_token(console: Console) -> None:
    case_id = console.case("web:person-b")
    kaori, _ = await console.login("kaori")
    resp = await kaori.post(f"/console/api/cases/{case_id}/claim")
    assert resp.status == 403
    resp = await kaori.post(
        f"/console/api/cases/{case_id}/claim", headers={"X-CSRF-Token": "wrong" * 8}
    )
    assert resp.status == 403
    assert console.app[keys.DESK].store.get(case_id).state == "waiting"


async def test_bad_input_gets_clear_errors(console: Console) -> None:
    case_id = console.case("web:person-c")
    kaori, csrf = await console.login("kaori")
    h = {"X-CSRF-Token": csrf}
    base = f"/console/api/cases/{case_id}"
    assert (await kaori.post(f"{base}/claim", headers=h)).status == 200
    resp = await kaori.post(f"{base}/reply", json={"text": "  "}, headers=h)
    assert resp.status == 400 and (await resp.json())["error"] == "empty"
    resp = await kaori.post(f"{base}/reply", json={"text": "あ" * 2001}, headers=h)
    assert resp.status == 413
    resp = await kaori.post(f"{base}/reply", data=b"not json", headers=h)
    assert resp.status == 400
    resp = await kaori.post(f"{base}/resource", json={"resource_id": "nope"}, headers=h)
    assert resp.status == 400
    resp = await kaori.post(f"{base}/transfer", json={"office": "nowhere"}, headers=h)
    assert resp.status == 400
    resp = await kaori.post(f"{base}/close", json={"kinds": ["made_up"]}, headers=h)
    assert resp.status == 400
    assert console.app[keys.DESK].store.get(case_id).state == "claimed"


async def _reply_frame(ws: Any) -> list[dict[str, Any]]:
    while True:
        frame = await ws.receive_json(timeout=10)
        if frame["type"] == "reply":
            return frame["messages"]


async def _case_frame(ws: Any, event_type: str, sender: str | None = None) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=10)
        if frame["type"] != "case" or frame["event"]["type"] != event_type:
            continue
        if sender is None or frame["event"]["message"]["sender"] == sender:
            return frame["event"]


async def test_the_whole_relay_over_the_widget_socket_and_the_console(console: Console) -> None:
    person = await console.make_client()
    ws = await person.ws_connect("/ws/chat")
    await ws.send_json({"type": "hello", "session": None})
    await _reply_frame(ws)
    for n, frame in enumerate(
        [
            {"type": "postback", "postback": "consent:granted"},
            {"type": "message", "text": "息子が万引きで捕まりました"},
            {"type": "message", "text": "人と話したい"},
        ]
    ):
        await ws.send_json({**frame, "id": f"f{n}"})
        answer = await _reply_frame(ws)
    offer = answer[-1]
    assert [i["postback"] for i in offer["items"]] == [
        "handoff:full",
        "handoff:anonymous",
        "handoff:cancel",
    ]
    assert "匿名のまま" in offer["text"]
    await ws.send_json({"type": "postback", "postback": "handoff:full", "id": "c"})
    queued = await _reply_frame(ws)
    assert queued[0]["type"] == "handoff" and queued[0]["status"] == "waiting"
    desk = console.app[keys.DESK]
    (case,) = desk.store.queue()
    assert case.office_id == "sample_probation"  # no area given → the default office
    kenji, csrf = await console.login("kaori")
    h = {"X-CSRF-Token": csrf}
    cws = await kenji.ws_connect("/console/ws")
    snapshot = await cws.receive_json(timeout=10)
    assert snapshot["type"] == "queue" and [c["id"] for c in snapshot["cases"]] == [case.id]
    view = await (await kenji.get(f"/console/api/cases/{case.id}")).json()
    assert view["transcript_shared"]
    assert any("万引き" in line["text"] for line in view["transcript"])
    await cws.send_json({"type": "watch", "case": case.id})
    assert (await kenji.post(f"/console/api/cases/{case.id}/claim", headers=h)).status == 200
    notice = await _reply_frame(ws)
    assert (
        notice == [{"type": "handoff", "status": "claimed", "text": notice[0]["text"]}]
        and "相談員" in notice[0]["text"]
    )
    resp = await kenji.post(
        f"/console/api/cases/{case.id}/reply", json={"text": "相談員の木村です。"}, headers=h
    )
    assert resp.status == 200
    (msg,) = await _reply_frame(ws)
    assert msg["type"] == "text" and msg["text"].endswith("相談員の木村です。")
    # The person writes: the bot stays silent, the counselor sees it live.
    await ws.send_json({"type": "message", "text": "よろしくお願いします", "id": "p1"})
    assert await _reply_frame(ws) == []
    event = await _case_frame(cws, "message", sender="person")
    assert event["message"]["text"] == "よろしくお願いします"
    # A resource card and an internal note (never sent to the person).
    resource_id = view["recommended"][0]["id"]
    resp = await kenji.post(
        f"/console/api/cases/{case.id}/resource", json={"resource_id": resource_id}, headers=h
    )
    assert resp.status == 200
    (card,) = await _reply_frame(ws)
    assert card["type"] == "resources" and card["items"][0]["id"] == resource_id
    resp = await kenji.post(
        f"/console/api/cases/{case.id}/note", json={"text": "内部メモです"}, headers=h
    )
    assert resp.status == 200
    resp = await kenji.post(
        f"/console/api/cases/{case.id}/close",
        json={"kinds": ["probation_office"], "referred_to": "サンプル保護観察所"},
        headers=h,
    )
    assert resp.status == 200
    (closed,) = await _reply_frame(ws)
    assert closed["status"] == "closed"
    done = desk.store.get(case.id)
    assert done.state == "closed" and done.outcome is not None
    assert done.outcome.referred_kinds == ("probation_office",)
    # Back with the bot: it answers again.
    await ws.send_json({"type": "message", "text": "ありがとうございました", "id": "p2"})
    assert await _reply_frame(ws) != []
    assert not any(
        "内部メモ" in str(m) for m in console.app[keys.CONVERSATIONS].messages(case.user_key or "")
    )
    await ws.close()
    await cws.close()


async def test_the_console_socket_flags_a_new_crisis_case(console: Console) -> None:
    kaori, _ = await console.login("kaori")
    cws = await kaori.ws_connect("/console/ws")
    assert (await cws.receive_json(timeout=10))["cases"] == []
    console.case("web:crisis", crisis="urgent")
    frames = [await cws.receive_json(timeout=10) for _ in range(2)]
    assert frames[0]["type"] == "crisis"
    assert frames[1]["type"] == "queue" and frames[1]["cases"][0]["crisis"] == "urgent"
    # Another office's case does not reach this socket.
    console.case("web:city", area=CITY)
    console.case("web:next", area=PREF)
    nxt = await cws.receive_json(timeout=10)
    assert nxt["type"] == "queue" and len(nxt["cases"]) == 2
    # Watching another office's case is refused.
    other = console.app[keys.DESK].store.queue("sample_city_welfare")[0].id
    await cws.send_json({"type": "watch", "case": other})
    assert (await cws.receive_json(timeout=10))["code"] == "forbidden"
    # Cross-site socket hijacking: a socket from another origin is refused.
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await kaori.ws_connect("/console/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    await cws.close()
    await asyncio.sleep(0)


async def test_the_counselor_sees_their_own_words_as_sent_and_only_masked_copies_are_kept(
    console: Console,
) -> None:
    """Staff text is shown to its author as typed; the database and other viewers: masked."""
    case_id = console.case("web:own-words")
    kaori, csrf = await console.login("kaori")
    h = {"X-CSRF-Token": csrf}
    base = f"/console/api/cases/{case_id}"
    cws = await kaori.ws_connect("/console/ws")
    await cws.receive_json(timeout=10)
    await cws.send_json({"type": "watch", "case": case_id})
    assert (await kaori.post(f"{base}/claim", headers=h)).status == 200
    said = "相談員の木村です。折り返しは03-1234-5678からです。"
    resp = await kaori.post(f"{base}/reply", json={"text": said}, headers=h)
    assert (await resp.json())["message"]["text"] == said
    assert (await _case_frame(cws, "message", sender="counselor"))["message"]["text"] == said
    view = await (await kaori.get(base)).json()
    assert [m["text"] for m in view["live"]] == [said]
    # What is kept is masked; an admin supervising sees the kept copy.
    (kept,) = console.app[keys.DESK].store.messages(case_id)
    assert "木村" not in kept.text and "1234" not in kept.text
    alice, _ = await console.login("alice")
    other = await (await alice.get(base)).json()
    assert [m["text"] for m in other["live"]] == [kept.text]
    await cws.close()
