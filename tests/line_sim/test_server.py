"""The simulator itself: it signs webhooks and rejects what the LINE platform rejects."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TextMessage,
)
from linebot.v3.webhooks import MessageEvent, TextMessageContent

from tests.line_sim import LineSimulator
from tests.line_sim import events as ev

SECRET = "sim-channel-secret"
TOKEN = "sim-access-token"
QUICK = "messages[0].quickReply.items[0].action"


@pytest.fixture
async def sim() -> AsyncIterator[LineSimulator]:
    async with LineSimulator(SECRET, TOKEN) as simulator:
        yield simulator


@pytest.fixture
async def api(sim: LineSimulator) -> AsyncIterator[AsyncMessagingApi]:
    config = Configuration(host=sim.base_url, access_token=TOKEN)
    async with AsyncApiClient(config) as client:
        yield AsyncMessagingApi(client)


async def raw(sim: LineSimulator, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    """POST to the simulated API without the SDK (whose models would refuse some bodies)."""
    sent = {"Authorization": f"Bearer {TOKEN}", **headers}
    async with (
        ClientSession() as session,
        session.post(sim.base_url + path, json=body, headers=sent) as resp,
    ):
        return resp.status, await resp.json()


def text(value: str = "こんにちは", **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def quick(n: int, label: str = "はい", data: str = "yes") -> dict[str, Any]:
    item = {"type": "action", "action": {"type": "postback", "label": label, "data": data}}
    return {"items": [item] * n}


async def known_user(sim: LineSimulator) -> tuple[str, str]:
    """A user the platform knows, and a fresh reply token of theirs."""
    user = ev.new_user_id()
    event = ev.text(user, "hi")
    sim.register(event)
    return user, event["replyToken"]


async def test_webhook_is_signed_and_parses_with_the_sdk(sim: LineSimulator) -> None:
    received: list[tuple[str, str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.text(), request.headers.get("x-line-signature")))
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sim.webhook_url = f"http://127.0.0.1:{port}/hook"
    try:
        user = ev.new_user_id()
        result = await sim.send(ev.text(user, "相談したいです"))
        assert result.status == 200
        bad = await sim.post_body(ev.body(ev.text(user, "x")), signature="bm90IGl0")
        assert bad.status == 200  # this receiver does not check; the parser below does
    finally:
        await runner.cleanup()
    parser = WebhookParser(SECRET)
    body, signature = received[0]
    assert signature is not None
    (event,) = parser.parse(body, signature)
    assert isinstance(event, MessageEvent)
    assert isinstance(event.message, TextMessageContent)
    assert event.message.text == "相談したいです"
    assert event.source.user_id == user  # type: ignore[union-attr]
    with pytest.raises(InvalidSignatureError):
        parser.parse(*received[1])  # type: ignore[arg-type]


async def test_known_signature_vector() -> None:
    sim = LineSimulator("channel_secret", TOKEN)
    assert sim.sign(b"bodybodybodybody") == "/gg9a+LvFevTH1sd7XCQycD7tsWclCsInj7MhBHxN7k="


async def test_reply_token_is_single_use(sim: LineSimulator, api: AsyncMessagingApi) -> None:
    user, token = await known_user(sim)
    request = ReplyMessageRequest(replyToken=token, messages=[TextMessage(text="はい")])
    response = await api.reply_message(request)
    assert len(response.sent_messages) == 1
    with pytest.raises(ApiException) as err:
        await api.reply_message(request)
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == "Invalid reply token"
    assert sim.texts_to(user) == ["はい"]


async def test_expired_and_unknown_reply_tokens(
    sim: LineSimulator, api: AsyncMessagingApi
) -> None:
    _, token = await known_user(sim)
    sim.expire_reply_token(token)
    for t in (token, "0" * 32):
        with pytest.raises(ApiException) as err:
            await api.reply_message(
                ReplyMessageRequest(replyToken=t, messages=[TextMessage(text="x")])
            )
        assert err.value.status == 400
    assert sim.deliveries == []


async def test_a_failed_reply_does_not_use_up_the_token(sim: LineSimulator) -> None:
    _, token = await known_user(sim)
    status, _ = await raw(sim, "/v2/bot/message/reply", {"replyToken": token, "messages": []})
    assert status == 400
    status, _ = await raw(
        sim, "/v2/bot/message/reply", {"replyToken": token, "messages": [text("ok")]}
    )
    assert status == 200


@pytest.mark.parametrize(
    ("message", "prop"),
    [
        (text("x", quickReply=quick(14)), "messages[0].quickReply.items"),
        (text("x", quickReply=quick(1, label="あ" * 21)), f"{QUICK}.label"),
        (text("x", quickReply=quick(1, data="d" * 301)), f"{QUICK}.data"),
        (text("x" * 5001), "messages[0].text"),
        (text("😀" * 2501), "messages[0].text"),  # an emoji counts 2 UTF-16 units
        (text(""), "messages[0].text"),
        ({"type": "flex", "contents": {"type": "bubble"}}, "messages[0].altText"),
        (
            {"type": "flex", "altText": "a", "contents": {"type": "bubble", "body": {
                "type": "box", "layout": "vertical",
                "contents": [{"type": "text", "text": "x" * (31 * 1024)}]}}},
            "messages[0].contents",
        ),
        (
            {"type": "flex", "altText": "a", "contents": {"type": "bubble", "footer": {
                "type": "box", "layout": "vertical", "contents": [{"type": "button", "action": {
                    "type": "uri", "label": "電話", "uri": "javascript:alert(1)"}}]}}},
            "messages[0].contents.footer.contents[0].action.uri",
        ),
        ({"type": "fax", "text": "x"}, "messages[0].type"),
    ],
)  # fmt: skip
async def test_invalid_messages_are_rejected(
    sim: LineSimulator, message: dict[str, Any], prop: str
) -> None:
    user, token = await known_user(sim)
    for path, body in (
        ("/v2/bot/message/reply", {"replyToken": token, "messages": [message]}),
        ("/v2/bot/message/push", {"to": user, "messages": [message]}),
    ):
        status, payload = await raw(sim, path, body)
        assert status == 400, payload
        assert prop in [d["property"] for d in payload["details"]]
    assert sim.deliveries == []


async def test_limits_themselves_are_accepted(sim: LineSimulator) -> None:
    user, _ = await known_user(sim)
    messages = [
        text("x" * 5000, quickReply=quick(13, label="あ" * 20, data="d" * 300)),
        text("😀" * 2500),
        text("a"),
        text("b"),
        text("c"),
    ]
    status, payload = await raw(sim, "/v2/bot/message/push", {"to": user, "messages": messages})
    assert status == 200, payload
    assert len(payload["sentMessages"]) == 5
    status, payload = await raw(
        sim, "/v2/bot/message/push", {"to": user, "messages": [*messages, text("d")]}
    )
    assert status == 400
    assert payload["details"][0]["property"] == "messages"


async def test_push_retry_key_is_accepted_once(sim: LineSimulator, api: AsyncMessagingApi) -> None:
    user, _ = await known_user(sim)
    key = str(uuid.uuid4())
    request = PushMessageRequest(to=user, messages=[TextMessage(text="相談員からです")])
    await api.push_message(request, x_line_retry_key=key)
    first_id = sim.calls[-1].request_id
    with pytest.raises(ApiException) as err:
        await api.push_message(request, x_line_retry_key=key)
    assert err.value.status == 409
    assert err.value.headers["X-Line-Accepted-Request-Id"] == first_id
    assert sim.texts_to(user) == ["相談員からです"]
    status, _ = await raw(
        sim, "/v2/bot/message/push", {"to": user, "messages": [text()]}, **{
            "X-Line-Retry-Key": "not-a-uuid"
        }
    )  # fmt: skip
    assert status == 400


async def test_reply_refuses_a_retry_key(sim: LineSimulator) -> None:
    _, token = await known_user(sim)
    status, _ = await raw(
        sim,
        "/v2/bot/message/reply",
        {"replyToken": token, "messages": [text()]},
        **{"X-Line-Retry-Key": str(uuid.uuid4())},
    )
    assert status == 400


async def test_push_quota_unknown_and_blocked_users(
    sim: LineSimulator, api: AsyncMessagingApi
) -> None:
    user, _ = await known_user(sim)
    with pytest.raises(ApiException) as err:
        await api.push_message(
            PushMessageRequest(to=ev.new_user_id(), messages=[TextMessage(text="x")])
        )
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == "Failed to send messages"
    sim.block(user)
    await api.push_message(PushMessageRequest(to=user, messages=[TextMessage(text="x")]))
    assert sim.messages_to(user) == []  # 200, yet nothing arrives
    sim.push_quota = 0
    with pytest.raises(ApiException) as err:
        await api.push_message(PushMessageRequest(to=user, messages=[TextMessage(text="x")]))
    assert err.value.status == 429


async def test_bearer_token_is_checked(sim: LineSimulator) -> None:
    config = Configuration(host=sim.base_url, access_token="wrong")
    async with AsyncApiClient(config) as client:
        with pytest.raises(ApiException) as err:
            await AsyncMessagingApi(client).get_bot_info()
    assert err.value.status == 401


async def test_loading_leave_and_bot_info(sim: LineSimulator, api: AsyncMessagingApi) -> None:
    user, _ = await known_user(sim)
    await api.show_loading_animation(ShowLoadingAnimationRequest(chatId=user, loadingSeconds=10))
    assert sim.loading == [{"chatId": user, "loadingSeconds": 10}]
    status, _ = await raw(sim, "/v2/bot/chat/loading/start", {"chatId": user, "loadingSeconds": 7})
    assert status == 400
    group = ev.new_group_id()
    sim.register(ev.join_group(group))
    await api.leave_group(group)
    assert sim.left == [group]
    with pytest.raises(ApiException) as err:
        await api.leave_group(group)
    assert err.value.status == 404
    info = await api.get_bot_info()
    assert info.user_id == sim.bot_user_id


async def test_redelivery_keeps_ids_and_marks_the_event(sim: LineSimulator) -> None:
    bodies: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sim.webhook_url = f"http://127.0.0.1:{port}/"
    try:
        event = ev.text(ev.new_user_id(), "hi")
        await sim.send(event)
        await sim.redeliver(event)
    finally:
        await runner.cleanup()
    first, again = (b["events"][0] for b in bodies)
    assert first["webhookEventId"] == again["webhookEventId"]
    assert first["deliveryContext"]["isRedelivery"] is False
    assert again["deliveryContext"]["isRedelivery"] is True
