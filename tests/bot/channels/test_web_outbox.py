"""Counselor messages reach a widget person exactly once, also across reconnects and polling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.identity import user_key
from bot.relay import COUNSELOR_PREFIX, OUTBOXES
from knowledge.models import User

Client = Any  # pytest-aiohttp's TestClient
SAID = "相談員の木村です。03-1234-5678 にお電話ください。"


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path, sudachi: None) -> Client:  # type: ignore[no-untyped-def]
    config = load_config(env={"TSUNAGU_SECRET": "outbox-test"}, db_path=tmp_path / "t.db")
    return await aiohttp_client(create_app(config))


async def _api(client: Client, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    resp = await client.post("/api/chat", json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _queued(client: Client) -> tuple[str, int, User]:
    """A person (over the API) whose case waits; returns session, case id and a counselor."""
    session = (await _api(client, {"session": None}))["session"]
    for turn in (
        {"postback": "consent:granted"},
        {"text": "息子が万引きで捕まりました"},
        {"postback": "cmd:human"},
        {"postback": "handoff:full"},
    ):
        await _api(client, {"session": session, **turn})
    app: web.Application = client.app
    key = user_key("web", session, app[keys.CONFIG].secret)
    case = app[keys.DESK].open_case(key)
    assert case is not None
    app[keys.KB].add_user("kaori", "counselor", "kaori-counsel-pass-1", office_id=case.office_id)
    counselor = app[keys.KB].get_user("kaori")
    assert counselor is not None
    return session, case.id, counselor


async def _push(ws: Any) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=10)
        if frame["type"] == "reply" and frame.get("seq") is not None:
            return frame


async def _hello(ws: Any, session: str, epoch: str | None = None, seq: int = 0) -> None:
    await ws.send_json({"type": "hello", "session": session, "epoch": epoch, "seq": seq})
    assert (await ws.receive_json(timeout=10))["type"] == "ready"


async def test_messages_sent_while_the_socket_was_away_arrive_once_after_reconnect(
    client: Client,
) -> None:
    session, case_id, counselor = await _queued(client)
    desk = client.app[keys.DESK]
    ws = await client.ws_connect("/ws/chat")
    await _hello(ws, session)
    desk.claim(counselor, case_id)  # live: arrives at once, numbered
    live = await _push(ws)
    assert live["seq"] == 1 and live["messages"][0]["status"] == "claimed"
    await ws.close()
    # The tab is closed or the network is gone: the counselor writes twice.
    desk.reply(counselor, case_id, SAID)
    desk.reply(counselor, case_id, "お待ちしています。")
    await asyncio.sleep(0.05)  # the delivery task puts them in the outbox
    ws = await client.ws_connect("/ws/chat")
    await _hello(ws, session, live["epoch"], live["seq"])
    first, second = await _push(ws), await _push(ws)
    assert (first["seq"], second["seq"]) == (2, 3)
    # Exactly what the counselor typed (the kept copy is masked).
    assert first["messages"] == [{"type": "text", "text": COUNSELOR_PREFIX + SAID}]
    assert second["messages"][0]["text"].endswith("お待ちしています。")
    assert "03-1234-5678" not in desk.store.messages(case_id)[0].text
    await ws.close()
    # Reconnecting having seen everything: nothing is sent twice, the next one is number 4.
    ws = await client.ws_connect("/ws/chat")
    await _hello(ws, session, second["epoch"], second["seq"])
    desk.reply(counselor, case_id, "三つ目です。")
    third = await _push(ws)
    assert third["seq"] == 4 and third["messages"][0]["text"].endswith("三つ目です。")
    await ws.close()
    # A client holding an unknown numbering (e.g. the server restarted) gets what is kept.
    ws = await client.ws_connect("/ws/chat")
    await _hello(ws, session, "0123456789ab", 99)
    assert (await _push(ws))["seq"] == 4  # 1–3 were acknowledged above
    await ws.close()


async def test_polling_gets_the_same_numbered_messages(client: Client) -> None:
    session, case_id, counselor = await _queued(client)
    desk = client.app[keys.DESK]
    desk.claim(counselor, case_id)
    desk.reply(counselor, case_id, SAID)
    await asyncio.sleep(0.05)
    got = await _api(client, {"session": session, "action": "updates", "seq": 0})
    assert got["messages"] == [] and [u["seq"] for u in got["updates"]] == [1, 2]
    assert got["updates"][1]["messages"][0]["text"] == COUNSELOR_PREFIX + SAID
    epoch = got["epoch"]
    seen = {"session": session, "action": "updates", "epoch": epoch, "seq": 2}
    assert (await _api(client, seen))["updates"] == []
    # A long poll returns as soon as the counselor writes.
    poll = asyncio.create_task(_api(client, {**seen, "wait": 10}))
    await asyncio.sleep(0.2)
    assert not poll.done()
    desk.reply(counselor, case_id, "届きましたか？")
    got = await asyncio.wait_for(poll, 5)
    assert [u["seq"] for u in got["updates"]] == [3]
    # The person writes through the API: relayed, the bot stays silent.
    assert (await _api(client, {"session": session, "text": "はい", "id": "m1"}))["messages"] == []
    assert [m.sender for m in desk.store.messages(case_id)][-1] == "person"


async def test_api_resend_with_the_same_id_runs_the_turn_once(client: Client) -> None:
    session = (await _api(client, {"session": None}))["session"]
    await _api(client, {"session": session, "postback": "consent:granted"})
    body = {"session": session, "text": "息子が万引きで捕まりました", "id": "r1"}
    first = await _api(client, body)
    again = await _api(client, body)
    assert again == first
    key = user_key("web", session, client.app[keys.CONFIG].secret)
    said = [m for m in client.app[keys.CONVERSATIONS].messages(key) if m.direction == "in"]
    assert len([m for m in said if "万引き" in m.text]) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"session": None, "action": "updates"}, "no_session"),
        ({"action": "updates", "seq": -1}, "bad_seq"),
        ({"action": "updates", "seq": "3"}, "bad_seq"),
        ({"action": "updates", "epoch": 5}, "bad_epoch"),
        ({"action": "updates", "wait": "long"}, "bad_wait"),
        ({"text": "こんにちは", "id": 7}, "bad_id"),
    ],
)
async def test_bad_updates_requests(client: Client, body: dict[str, Any], code: str) -> None:
    session = (await _api(client, {"session": None}))["session"]
    got = await _api(client, {"session": session, **body}, status=400)
    assert got["error"]["code"] == code


async def test_deleting_the_conversation_drops_the_outbox(client: Client) -> None:
    session, case_id, counselor = await _queued(client)
    client.app[keys.DESK].claim(counselor, case_id)
    await asyncio.sleep(0.05)
    key = user_key("web", session, client.app[keys.CONFIG].secret)
    assert client.app[OUTBOXES].get(key) is not None
    await _api(client, {"session": session, "action": "delete"})
    assert client.app[OUTBOXES].get(key) is None
