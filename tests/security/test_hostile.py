"""Hostile input: property tests on normalize() and understand() (assess() and mask() are in
tests/intents/test_hostile_text.py) and on the LINE webhook's parsing path: any JSON, deep
JSON and huge strings get 200 or 400 — never a 5xx, never a hang."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linebot.v3 import WebhookParser
from linebot.v3.webhook import SignatureValidator

from bot.channels import line
from intents import understand
from intents.normalize import fold, normalize
from intents.types import Understanding
from tests.intents.test_hostile_text import _hostile

SECRET = "hostile0123456789hostile01234567"
_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_hostile)
def test_normalize_never_raises_and_is_stable(text: str) -> None:
    once = normalize(text)
    assert isinstance(once, str)
    assert normalize(once) == once  # idempotent: normalising twice changes nothing
    assert isinstance(fold(text), str)


@_SETTINGS
@given(_hostile)
def test_understand_never_raises(text: str) -> None:
    u = understand(text)
    assert isinstance(u, Understanding)
    assert u.crisis in ("none", "concern", "urgent")
    assert u.topics


# -- the LINE webhook ------------------------------------------------------------------------


class _Channel:
    """The parts of ``LineChannel`` the webhook handler uses; events are only collected."""

    def __init__(self) -> None:
        self.validator = SignatureValidator(SECRET)
        self.parser = WebhookParser(SECRET)
        self.events: list[Any] = []

    def dispatch(self, events: list[Any], received: float | None = None) -> None:
        self.events.extend(events)


def sign(body: bytes) -> str:
    """LINE's signature of a body."""
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


async def _post_all(bodies: list[bytes]) -> list[int]:
    app = web.Application(client_max_size=256 * 1024)
    app[line.LINE] = _Channel()  # type: ignore[assignment]
    app.router.add_post("/line/webhook", line.webhook)
    async with TestClient(TestServer(app)) as client:
        statuses = []
        for body in bodies:
            resp = await asyncio.wait_for(
                client.post(
                    "/line/webhook",
                    data=body,
                    headers={"X-Line-Signature": sign(body), "Content-Type": "application/json"},
                ),
                timeout=20,
            )
            statuses.append(resp.status)
            resp.release()
        return statuses


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _hostile,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_hostile, inner, max_size=4),
    max_leaves=30,
)
_keys = st.sampled_from(
    [
        "type",
        "mode",
        "timestamp",
        "source",
        "webhookEventId",
        "deliveryContext",
        "replyToken",
        "message",
        "postback",
        "userId",
        "text",
        "id",
        "data",
        "unsend",
        "messageId",
    ]
)
_eventish = st.dictionaries(_keys, _json | st.sampled_from(["message", "text", "user", "active"]))
_bodies = st.one_of(
    _json.map(lambda v: json.dumps(v).encode()),
    st.lists(_eventish, max_size=5).map(lambda e: json.dumps({"events": e}).encode()),
    st.lists(_eventish, max_size=5).map(
        lambda e: json.dumps({"destination": "U0", "events": e}).encode()
    ),
    st.binary(max_size=200),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_bodies, min_size=1, max_size=5))
def test_webhook_answers_any_signed_body_with_200_or_400(bodies: list[bytes]) -> None:
    for status in asyncio.run(_post_all(bodies)):
        assert status in (200, 400), status


def test_webhook_deep_and_huge_bodies() -> None:
    deep = b'{"events": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    deep_obj = b'{"events": [' + b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"]}"
    huge_text = json.dumps(
        {
            "destination": "U0",
            "events": [
                {
                    "type": "message",
                    "mode": "active",
                    "timestamp": 1,
                    "webhookEventId": "x",
                    "deliveryContext": {"isRedelivery": False},
                    "source": {"type": "user", "userId": "U" + "0" * 32},
                    "replyToken": "r",
                    "message": {"type": "text", "id": "1", "text": "死" * 50_000},
                }
            ],
        },
        ensure_ascii=False,
    ).encode()
    too_big = b'{"events": [], "x": "' + b"a" * 300_000 + b'"}'
    invalid_utf8 = b'{"events": [{"type": "\xff\xfe"}]}'
    statuses = asyncio.run(_post_all([deep, deep_obj, huge_text, too_big, invalid_utf8]))
    assert statuses[0] == 400 and statuses[1] in (200, 400)
    assert statuses[2] == 200  # a long message is a valid event; the engine cuts it
    assert statuses[3] == 413 and statuses[4] == 400
