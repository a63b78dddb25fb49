"""Webhook events built from the LINE fixture files, with fresh ids, tokens and timestamps."""

from __future__ import annotations

import copy
import json
import secrets
import time
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "line"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def load_body(name: str) -> dict[str, Any]:
    """Return a deep copy of a whole fixture body (``name`` without ``.json``)."""
    return copy.deepcopy(_read(name))


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def template(name: str) -> dict[str, Any]:
    """Return a deep copy of the first event of a fixture file."""
    return copy.deepcopy(_read(name)["events"][0])


def new_user_id() -> str:
    """A user id in LINE's format: ``U`` + 32 hex digits."""
    return "U" + secrets.token_hex(16)


def new_group_id() -> str:
    """A group id in LINE's format: ``C`` + 32 hex digits."""
    return "C" + secrets.token_hex(16)


def new_room_id() -> str:
    """A room id in LINE's format: ``R`` + 32 hex digits."""
    return "R" + secrets.token_hex(16)


def new_event_id() -> str:
    """A webhookEventId: a 26-character ULID."""
    return "".join(secrets.choice(_CROCKFORD) for _ in range(26))


def new_reply_token() -> str:
    """A reply token: 32 hex digits."""
    return secrets.token_hex(16)


def new_message_id() -> str:
    """A message id: 18 decimal digits."""
    return str(10**17 + secrets.randbelow(9 * 10**17))


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


def _fresh(name: str, source: dict[str, Any], timestamp: int | None) -> dict[str, Any]:
    event = template(name)
    event["webhookEventId"] = new_event_id()
    event["timestamp"] = timestamp if timestamp is not None else now_ms()
    event["deliveryContext"] = {"isRedelivery": False}
    event["mode"] = "active"
    event["source"] = source
    if "replyToken" in event:
        event["replyToken"] = new_reply_token()
    if "message" in event:
        event["message"]["id"] = new_message_id()
        event["message"]["quoteToken"] = secrets.token_urlsafe(24)
    return event


def user_source(user_id: str) -> dict[str, Any]:
    """A one-to-one chat source."""
    return {"type": "user", "userId": user_id}


def text(user_id: str, text: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """A text message from a user in a one-to-one chat."""
    event = _fresh("sdk_text_message_user", user_source(user_id), timestamp)
    event["message"]["text"] = text
    return event


def postback(user_id: str, data: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """A postback (a tapped quick-reply or button) from a user."""
    event = _fresh("sdk_postback", user_source(user_id), timestamp)
    event["postback"] = {"data": data}
    return event


def sticker(user_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """A sticker from a user."""
    return _fresh("sdk_sticker_message", user_source(user_id), timestamp)


def image(user_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """An image (content held by LINE) from a user."""
    return _fresh("sdk_image_message_user_imageset", user_source(user_id), timestamp)


def media(user_id: str, kind: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """A video, audio, file or location message from a user (from the multi-event fixture)."""
    body = _read("sdk_all_events_multi")
    found = next(
        e for e in body["events"] if e["type"] == "message" and e["message"]["type"] == kind
    )
    event = copy.deepcopy(found)
    event["webhookEventId"] = new_event_id()
    event["timestamp"] = timestamp if timestamp is not None else now_ms()
    event["source"] = user_source(user_id)
    event["replyToken"] = new_reply_token()
    event["message"]["id"] = new_message_id()
    return event


def follow(user_id: str, *, unblocked: bool = False, timestamp: int | None = None) -> dict:
    """A follow (friend added, or unblocked) event."""
    event = _fresh("sdk_follow", user_source(user_id), timestamp)
    event["follow"] = {"isUnblocked": unblocked}
    return event


def unfollow(user_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """An unfollow (blocked) event; it carries no reply token."""
    return _fresh("sdk_unfollow", user_source(user_id), timestamp)


def unsend(user_id: str, message_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """The user took back a message they sent in the one-to-one chat."""
    event = _fresh("sdk_unsend_group", user_source(user_id), timestamp)
    event["unsend"] = {"messageId": message_id}
    return event


def join_group(group_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """The bot was added to a group."""
    return _fresh("sdk_join_group", {"type": "group", "groupId": group_id}, timestamp)


def join_room(room_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """The bot was added to a multi-person chat (room)."""
    return _fresh("sdk_join_group", {"type": "room", "roomId": room_id}, timestamp)


def group_text(group_id: str, user_id: str, text: str) -> dict[str, Any]:
    """A text message in a group the bot is in."""
    event = _fresh(
        "sdk_text_message_group", {"type": "group", "groupId": group_id, "userId": user_id}, None
    )
    event["message"]["text"] = text
    return event


def unknown(user_id: str, *, timestamp: int | None = None) -> dict[str, Any]:
    """An event type the SDK does not model (forward compatibility)."""
    return _fresh("sdk_unknown_event_type", user_source(user_id), timestamp)


def standby(event: dict[str, Any]) -> dict[str, Any]:
    """The same event as seen by a bot in standby mode (another module is active)."""
    event = copy.deepcopy(event)
    event["mode"] = "standby"
    event.pop("replyToken", None)
    return event


def body(*events: dict[str, Any], destination: str = "Ubot") -> dict[str, Any]:
    """A webhook request body holding ``events``."""
    return {"destination": destination, "events": list(events)}
