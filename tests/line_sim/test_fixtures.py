"""Every copied fixture and every simulator-built event parses with the SDK's WebhookParser."""

from __future__ import annotations

import json

import pytest
from linebot.v3 import WebhookParser
from linebot.v3.webhooks import (
    FollowEvent,
    JoinEvent,
    MessageEvent,
    PostbackEvent,
    UnfollowEvent,
    UnsendEvent,
)

from tests.line_sim import LineSimulator
from tests.line_sim import events as ev
from tests.line_sim.events import FIXTURES

SECRET = "fixture-secret"
SIM = LineSimulator(SECRET, "token")
PARSER = WebhookParser(SECRET)


def parse(body: dict) -> list:
    raw = json.dumps(body, ensure_ascii=False)
    return PARSER.parse(raw, SIM.sign(raw.encode()))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_every_fixture_parses(path) -> None:  # type: ignore[no-untyped-def]
    raw = path.read_text(encoding="utf-8")
    events = PARSER.parse(raw, SIM.sign(raw.encode()))
    assert len(events) == len(json.loads(raw)["events"])


def test_built_events_parse_to_the_right_classes() -> None:
    user = ev.new_user_id()
    built = [
        (ev.text(user, "こんにちは"), MessageEvent),
        (ev.postback(user, "topic=drugs"), PostbackEvent),
        (ev.sticker(user), MessageEvent),
        (ev.image(user), MessageEvent),
        (ev.media(user, "audio"), MessageEvent),
        (ev.media(user, "location"), MessageEvent),
        (ev.follow(user), FollowEvent),
        (ev.unfollow(user), UnfollowEvent),
        (ev.unsend(user, "1"), UnsendEvent),
        (ev.join_group(ev.new_group_id()), JoinEvent),
        (ev.join_room(ev.new_room_id()), JoinEvent),
    ]
    parsed = parse(ev.body(*(e for e, _ in built)))
    for event, (_, cls) in zip(parsed, built, strict=True):
        assert isinstance(event, cls)
    ids = {e["webhookEventId"] for e, _ in built}
    assert len(ids) == len(built)
