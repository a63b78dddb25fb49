"""The Messaging API's request validation rules, as the LINE platform applies them."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_MESSAGES = 5
MAX_TEXT_UTF16 = 5000
MAX_QUICK_REPLY_ITEMS = 13
MAX_QUICK_REPLY_LABEL = 20
MAX_FLEX_LABEL = 40
MAX_POSTBACK_DATA = 300
MAX_DISPLAY_TEXT = 300
MAX_MESSAGE_ACTION_TEXT = 300
MAX_URI = 1000
MAX_ALT_TEXT = 1500
MAX_BUBBLE_BYTES = 30 * 1024
MAX_CAROUSEL_BYTES = 50 * 1024
MAX_CAROUSEL_BUBBLES = 12
URI_SCHEMES = ("http://", "https://", "line://", "tel:")
MESSAGE_TYPES = frozenset(
    {"text", "textV2", "sticker", "image", "video", "audio", "location", "imagemap"}
    | {"template", "flex"}
)
RETRY_KEY = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def utf16_len(text: str) -> int:
    """Length as LINE counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def json_size(value: Any) -> int:
    """Size in bytes of the compact UTF-8 JSON of ``value``."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class _Errors:
    def __init__(self) -> None:
        self.details: list[dict[str, str]] = []

    def add(self, prop: str, message: str) -> None:
        self.details.append({"message": message, "property": prop})


def validate_messages(messages: Any) -> list[dict[str, str]]:
    """Check a ``messages`` array of a reply or push request.

    Args:
        messages: the decoded ``messages`` value of the request body.

    Returns:
        LINE-style error details (``{"message", "property"}``); empty when valid.
    """
    errors = _Errors()
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        errors.add("messages", f"Size must be between 1 and {MAX_MESSAGES}")
        return errors.details
    for i, message in enumerate(messages):
        _message(errors, f"messages[{i}]", message)
    return errors.details


def _message(errors: _Errors, prop: str, message: Any) -> None:
    if not isinstance(message, dict):
        errors.add(prop, "Must be an object")
        return
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        errors.add(f"{prop}.type", "Invalid message type")
        return
    if kind == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text:
            errors.add(f"{prop}.text", "May not be empty")
        elif utf16_len(text) > MAX_TEXT_UTF16:
            errors.add(f"{prop}.text", f"Length must be between 0 and {MAX_TEXT_UTF16}")
    elif kind == "flex":
        _flex(errors, prop, message)
    if "quickReply" in message:
        _quick_reply(errors, f"{prop}.quickReply", message["quickReply"])


def _quick_reply(errors: _Errors, prop: str, quick: Any) -> None:
    items = quick.get("items") if isinstance(quick, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUICK_REPLY_ITEMS:
        errors.add(f"{prop}.items", f"Size must be between 1 and {MAX_QUICK_REPLY_ITEMS}")
        return
    for i, item in enumerate(items):
        item_prop = f"{prop}.items[{i}]"
        if not isinstance(item, dict) or item.get("type") != "action":
            errors.add(f"{item_prop}.type", "Must be 'action'")
            continue
        image = item.get("imageUrl")
        if image is not None and not str(image).startswith("https://"):
            errors.add(f"{item_prop}.imageUrl", "Must be an HTTPS URL")
        _action(errors, f"{item_prop}.action", item.get("action"), MAX_QUICK_REPLY_LABEL, True)


def _action(errors: _Errors, prop: str, action: Any, max_label: int, label_required: bool) -> None:
    if not isinstance(action, dict):
        errors.add(prop, "May not be null")
        return
    kind = action.get("type")
    label = action.get("label")
    needs_label = label_required and kind not in {"camera", "cameraRoll", "location"}
    if label is None:
        if needs_label:
            errors.add(f"{prop}.label", "May not be empty")
    elif not isinstance(label, str) or not label:
        errors.add(f"{prop}.label", "May not be empty")
    elif len(label) > max_label:
        errors.add(f"{prop}.label", f"Length must be between 0 and {max_label}")
    if kind == "postback":
        data = action.get("data")
        if not isinstance(data, str) or not data:
            errors.add(f"{prop}.data", "May not be empty")
        elif len(data) > MAX_POSTBACK_DATA:
            errors.add(f"{prop}.data", f"Length must be between 0 and {MAX_POSTBACK_DATA}")
        display = action.get("displayText")
        if display is not None and len(str(display)) > MAX_DISPLAY_TEXT:
            errors.add(f"{prop}.displayText", f"Length must be between 0 and {MAX_DISPLAY_TEXT}")
    elif kind == "message":
        text = action.get("text")
        if not isinstance(text, str) or not text:
            errors.add(f"{prop}.text", "May not be empty")
        elif len(text) > MAX_MESSAGE_ACTION_TEXT:
            errors.add(f"{prop}.text", f"Length must be between 0 and {MAX_MESSAGE_ACTION_TEXT}")
    elif kind == "uri":
        uri = action.get("uri")
        if not isinstance(uri, str) or not uri.startswith(URI_SCHEMES):
            errors.add(f"{prop}.uri", "Invalid URI")
        elif len(uri) > MAX_URI:
            errors.add(f"{prop}.uri", f"Length must be between 0 and {MAX_URI}")
    elif kind not in {"datetimepicker", "camera", "cameraRoll", "location", "richmenuswitch"}:
        errors.add(f"{prop}.type", "Invalid action type")


def _flex(errors: _Errors, prop: str, message: dict[str, Any]) -> None:
    alt = message.get("altText")
    if not isinstance(alt, str) or not alt.strip():
        errors.add(f"{prop}.altText", "May not be empty")
    elif len(alt) > MAX_ALT_TEXT:
        errors.add(f"{prop}.altText", f"Length must be between 0 and {MAX_ALT_TEXT}")
    contents = message.get("contents")
    if not isinstance(contents, dict):
        errors.add(f"{prop}.contents", "May not be null")
        return
    cprop = f"{prop}.contents"
    if contents.get("type") == "bubble":
        if json_size(contents) > MAX_BUBBLE_BYTES:
            errors.add(cprop, f"Size must be at most {MAX_BUBBLE_BYTES} bytes")
        _bubble(errors, cprop, contents)
    elif contents.get("type") == "carousel":
        bubbles = contents.get("contents")
        if not isinstance(bubbles, list) or not 1 <= len(bubbles) <= MAX_CAROUSEL_BUBBLES:
            errors.add(f"{cprop}.contents", f"Size must be between 1 and {MAX_CAROUSEL_BUBBLES}")
            return
        if json_size(contents) > MAX_CAROUSEL_BYTES:
            errors.add(cprop, f"Size must be at most {MAX_CAROUSEL_BYTES} bytes")
        for i, bubble in enumerate(bubbles):
            bprop = f"{cprop}.contents[{i}]"
            if not isinstance(bubble, dict) or bubble.get("type") != "bubble":
                errors.add(f"{bprop}.type", "Must be 'bubble'")
                continue
            if json_size(bubble) > MAX_BUBBLE_BYTES:
                errors.add(bprop, f"Size must be at most {MAX_BUBBLE_BYTES} bytes")
            _bubble(errors, bprop, bubble)
    else:
        errors.add(f"{cprop}.type", "Must be 'bubble' or 'carousel'")


def _bubble(errors: _Errors, prop: str, bubble: dict[str, Any]) -> None:
    for block in ("header", "hero", "body", "footer"):
        if block in bubble:
            _component(errors, f"{prop}.{block}", bubble[block])


def _component(errors: _Errors, prop: str, component: Any) -> None:
    if not isinstance(component, dict):
        errors.add(prop, "Must be an object")
        return
    kind = component.get("type")
    if kind == "box":
        if component.get("layout") not in {"horizontal", "vertical", "baseline"}:
            errors.add(f"{prop}.layout", "Invalid layout")
        children = component.get("contents")
        if not isinstance(children, list):
            errors.add(f"{prop}.contents", "May not be null")
            return
        for i, child in enumerate(children):
            _component(errors, f"{prop}.contents[{i}]", child)
    elif kind == "text":
        text = component.get("text")
        if not component.get("contents") and (not isinstance(text, str) or not text):
            errors.add(f"{prop}.text", "May not be empty")
    elif kind == "button":
        _action(errors, f"{prop}.action", component.get("action"), MAX_FLEX_LABEL, True)
    elif kind in {"image", "video"}:
        url = component.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            errors.add(f"{prop}.url", "Must be an HTTPS URL")
    elif kind not in {"separator", "filler", "icon", "span"}:
        errors.add(f"{prop}.type", "Invalid component type")
    if "action" in component and kind != "button":
        _action(errors, f"{prop}.action", component["action"], MAX_FLEX_LABEL, False)
