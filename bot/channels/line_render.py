"""Channel-neutral replies → LINE message objects (as JSON dicts) within LINE's limits."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import yaml

from bot.dialogue.replies import (
    Choice,
    ChoicesReply,
    EndReply,
    HandoffNotice,
    Reply,
    ResourceCard,
    ResourcesReply,
    TextReply,
)

logger = logging.getLogger(__name__)

MAX_MESSAGES_PER_CALL = 5
MAX_TEXT = 5000  # UTF-16 code units
MAX_QUICK_REPLY_ITEMS = 13
MAX_LABEL = 20  # quick-reply action label
MAX_FLEX_LABEL = 40  # Flex button action label
MAX_POSTBACK = 300
MAX_DISPLAY_TEXT = 300
MAX_ALT_TEXT = 400  # LINE allows 1500; notifications show far less
MAX_BUBBLE_BYTES = 30 * 1024
MAX_CAROUSEL_BUBBLES = 12
MAX_CARD_FIELD = 1000  # characters per text field of a card, before any size check

Message = dict[str, Any]

# Where a long text may be cut, best first: paragraph, line, sentence, clause, word.
_BREAKS = ("\n\n", "\n", "。", "！", "？", "!", "?", "．", ". ", "」", "、", "，", ", ", " ", "　")
_TEXT_KEYS = frozenset(
    {"media", "group", "error", "resources_alt", "sample", "call", "web", "hours", "why"}
)


@cache
def texts() -> Mapping[str, str]:
    """The channel's fixed texts (``line_texts.yaml``), validated on first use."""
    raw = resources.files("bot.channels").joinpath("line_texts.yaml").read_text("utf-8")
    data = yaml.safe_load(raw)
    if not isinstance(data, dict) or set(data) != _TEXT_KEYS:
        raise ValueError(f"line_texts.yaml must have exactly the keys {sorted(_TEXT_KEYS)}")
    if not all(isinstance(v, str) and v.strip() for v in data.values()):
        raise ValueError("line_texts.yaml: every text must be a non-empty string")
    return {k: v.strip() for k, v in data.items()}


def utf16_len(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _joins_previous(ch: str) -> bool:
    # Combining marks, variation selectors, ZWJ and emoji modifiers belong to the
    # character before them: never start a piece with one.
    return (
        unicodedata.combining(ch) > 0
        or ch in "\u200d\ufe0e\ufe0f"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"
        or "\U000e0020" <= ch <= "\U000e007f"
        or unicodedata.category(ch) == "Mn"
    )


def _fit(text: str, limit: int) -> int:
    """The largest cut index whose prefix fits ``limit`` UTF-16 units, not inside a cluster."""
    units = 0
    cut = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            break
        cut = i + 1
    while 0 < cut < len(text) and (_joins_previous(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    return cut or 1


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-16 units, at natural breaks.

    Paragraph and line ends come first, then sentence ends (。！？), then clause marks
    and spaces; a word is cut only when a piece has no break at all, and never inside
    a character cluster (emoji sequence, combining mark).

    Args:
        text: any text.
        limit: maximum UTF-16 length of a piece.

    Returns:
        Non-empty pieces, in order (``[]`` for blank text).
    """
    pieces: list[str] = []
    rest = text.strip()
    while rest and utf16_len(rest) > limit:
        cut = _fit(rest, limit)
        window = rest[:cut]
        at = -1
        for sep in _BREAKS:
            i = window.rfind(sep)
            if i > 0 and i + len(sep) >= cut // 2:
                at = i + len(sep)
                break
        if at < 0:
            found = [window.rfind(sep) + len(sep) for sep in _BREAKS if window.rfind(sep) > 0]
            at = max(found) if found else cut
        piece = rest[:at].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[at:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quick_reply(items: Sequence[Choice]) -> dict[str, Any] | None:
    """A quick reply of postback buttons: at most 13, labels ≤ 20, data ≤ 300 characters."""
    built = []
    for choice in items:
        if not choice.postback or len(choice.postback) > MAX_POSTBACK:
            logger.warning("quick-reply item dropped: postback data over %d chars", MAX_POSTBACK)
            continue
        label = choice.label.strip() or choice.postback
        built.append(
            {
                "type": "action",
                "action": {
                    "type": "postback",
                    "label": _clip(label, MAX_LABEL),
                    "data": choice.postback,
                    "displayText": _clip(label, MAX_DISPLAY_TEXT),
                },
            }
        )
    if len(built) > MAX_QUICK_REPLY_ITEMS:
        logger.warning("quick reply cut from %d to %d items", len(built), MAX_QUICK_REPLY_ITEMS)
        built = built[:MAX_QUICK_REPLY_ITEMS]
    return {"items": built} if built else None


def _text_messages(text: str) -> list[Message]:
    return [{"type": "text", "text": piece} for piece in split_text(text)]


def _tel(phone: str) -> str | None:
    digits = re.sub(r"[^\d+]", "", phone)
    return f"tel:{digits}" if len(digits) >= 3 else None


def _card_text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "text", "text": _clip(text, MAX_CARD_FIELD), "wrap": True, **style}


def resource_bubble(card: ResourceCard, field_limit: int = MAX_CARD_FIELD) -> dict[str, Any]:
    """One resource as a Flex bubble: what, why, when; a tel: and a web button."""
    t = texts()
    body: list[dict[str, Any]] = []
    if card.sample:
        body.append(_card_text(t["sample"], size="xs", color="#B45309", weight="bold"))
    body.append(_card_text(card.name, size="md", weight="bold"))
    for value, style in (
        (card.description, {"size": "sm", "color": "#333333"}),
        (f"{t['why']}: {card.reason}" if card.reason else "", {"size": "sm", "color": "#555555"}),
        (f"{t['hours']}: {card.hours}" if card.hours else "", {"size": "xs", "color": "#555555"}),
        (card.notes or "", {"size": "xs", "color": "#555555"}),
    ):
        if value.strip():
            body.append(_card_text(_clip(value, field_limit), **style))
    buttons: list[dict[str, Any]] = []
    tel = _tel(card.phone) if card.phone else None
    if tel:
        label = _clip(f"{t['call']} {card.phone}", MAX_FLEX_LABEL)
        buttons.append(
            {
                "type": "button",
                "style": "primary",
                "height": "sm",
                "action": {"type": "uri", "label": label, "uri": tel},
            }
        )
    if card.url and card.url.startswith(("https://", "http://")) and len(card.url) <= 1000:
        buttons.append(
            {
                "type": "button",
                "style": "link",
                "height": "sm",
                "action": {"type": "uri", "label": t["web"], "uri": card.url},
            }
        )
    bubble: dict[str, Any] = {
        "type": "bubble",
        "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
    }
    if buttons:
        bubble["footer"] = {
            "type": "box",
            "layout": "vertical",
            "spacing": "sm",
            "contents": buttons,
        }
    if json_size(bubble) > MAX_BUBBLE_BYTES and field_limit > 50:
        return resource_bubble(card, field_limit // 2)
    return bubble


def json_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON of ``value`` (how LINE measures Flex size)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _resources(reply: ResourcesReply) -> list[Message]:
    messages = _text_messages(reply.intro) if reply.intro.strip() else []
    cards = list(reply.items)
    for start in range(0, len(cards), MAX_CAROUSEL_BUBBLES):
        chunk = cards[start : start + MAX_CAROUSEL_BUBBLES]
        names = " / ".join(c.name + (f"({texts()['sample']})" if c.sample else "") for c in chunk)
        alt = _clip(f"{texts()['resources_alt']}: {names}", MAX_ALT_TEXT)
        contents = {"type": "carousel", "contents": [resource_bubble(c) for c in chunk]}
        messages.append({"type": "flex", "altText": alt, "contents": contents})
    return messages


def render(replies: Sequence[Reply]) -> list[Message]:
    """Render replies as LINE message objects, in order.

    Long texts are split; the quick reply of the last choices is attached to the very
    last message (LINE shows a quick reply only there).

    Args:
        replies: what the engine answered.

    Returns:
        LINE message dicts (any number; :func:`batches` groups them 5 a call).
    """
    messages: list[Message] = []
    quick: dict[str, Any] | None = None
    for reply in replies:
        if isinstance(reply, ChoicesReply):
            messages.extend(_text_messages(reply.text))
            quick = quick_reply(reply.items)
        elif isinstance(reply, ResourcesReply):
            messages.extend(_resources(reply))
        elif isinstance(reply, TextReply | HandoffNotice | EndReply):
            messages.extend(_text_messages(reply.text))
        else:  # pragma: no cover - the Reply union is closed
            logger.warning("unknown reply type %s not sent", type(reply).__name__)
    if quick is not None:
        if not messages:
            messages.append({"type": "text", "text": "…"})
        messages[-1]["quickReply"] = quick
    return messages


def batches(messages: Sequence[Message]) -> list[list[Message]]:
    """Group messages into API calls of at most 5."""
    return [
        list(messages[i : i + MAX_MESSAGES_PER_CALL])
        for i in range(0, len(messages), MAX_MESSAGES_PER_CALL)
    ]
