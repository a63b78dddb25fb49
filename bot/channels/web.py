"""The web chat channel: demo page, embeddable widget, WebSocket ``/ws/chat`` and ``/api/chat``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
import weakref
from collections import OrderedDict
from dataclasses import asdict
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, WSMsgType, web

from bot import keys
from bot.channels.base import IncomingMessage
from bot.dialogue.replies import (
    ChoicesReply,
    EndReply,
    HandoffNotice,
    Reply,
    ResourcesReply,
    TextReply,
)
from bot.identity import user_key
from bot.relay import OUTBOXES, follow_widget

logger = logging.getLogger(__name__)

CHANNEL = "web"
MAX_BODY_BYTES = 16 * 1024  # one chat message as JSON; far above max_message_chars
WS_IDLE_SECONDS = 15 * 60  # a silent socket is closed; the widget reconnects when used
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
MAX_POLL_WAIT = 20.0  # longest wait of an HTTP poll for counselor messages (fallback mode)
_POSTBACK_MAX = 300  # LINE's postback limit, kept for every channel

TEMPLATES = web.AppKey("widget_templates", jinja2.Environment)
SOCKETS = web.AppKey("widget_sockets", weakref.WeakSet)  # type: ignore[type-arg]
RECENT = web.AppKey("widget_recent", OrderedDict)  # type: ignore[type-arg]
_RECENT_MAX = 2000


class BadRequest(ValueError):
    """Malformed chat input; ``code`` is machine-readable, the message is for developers."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


# -- replies as JSON -------------------------------------------------------------------


def _tel(phone: str | None) -> str | None:
    """The ``tel:`` target of a phone number (digits, ``#`` and ``+`` only)."""
    if not phone:
        return None
    digits = re.sub(r"[^0-9#+]", "", phone)
    return digits or None


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """One reply as a widget/API message object (see README, "Web widget")."""
    if isinstance(reply, TextReply):
        return {"type": "text", "text": reply.text}
    if isinstance(reply, ChoicesReply):
        return {
            "type": "choices",
            "text": reply.text,
            "items": [{"label": c.label, "postback": c.postback} for c in reply.items],
        }
    if isinstance(reply, ResourcesReply):
        items = []
        for card in reply.items:
            item = asdict(card)
            item["id"] = item.pop("resource_id")
            item["how"] = list(card.how)
            item["tel"] = _tel(card.phone)
            items.append(item)
        return {"type": "resources", "intro": reply.intro, "items": items}
    if isinstance(reply, HandoffNotice):
        return {"type": "handoff", "status": reply.status, "text": reply.text}
    if isinstance(reply, EndReply):
        return {"type": "end", "text": reply.text}
    raise TypeError(f"unknown reply {type(reply).__name__}")


# -- input validation --------------------------------------------------------------------


def new_session() -> str:
    """A fresh anonymous session token (192 bits from the OS CSPRNG)."""
    return secrets.token_urlsafe(24)


def parse_session(value: Any) -> str | None:
    """Validate a session token (None → a new session will be made)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SESSION_RE.match(value):
        raise BadRequest("bad_session", "session must be null or a token from this server")
    return value


def parse_turn(data: Any, max_chars: int) -> tuple[str | None, str | None, str | None]:
    """Validate ``{"text"}`` / ``{"postback"}`` / ``{"action"}``; returns (text, postback, action).

    Raises:
        BadRequest: anything else.
    """
    if not isinstance(data, dict):
        raise BadRequest("bad_json", "the body must be a JSON object")
    text, postback, action = data.get("text"), data.get("postback"), data.get("action")
    given = [k for k in ("text", "postback", "action") if data.get(k) is not None]
    if len(given) > 1:
        raise BadRequest("ambiguous", "send only one of text, postback or action")
    if text is not None:
        if not isinstance(text, str):
            raise BadRequest("bad_text", "text must be a string")
        if len(text) > max_chars:
            raise BadRequest("text_too_long", f"text is limited to {max_chars} characters", 413)
        if not text.strip():
            raise BadRequest("empty_text", "text is empty")
    if postback is not None and (
        not isinstance(postback, str) or not postback or len(postback) > _POSTBACK_MAX
    ):
        raise BadRequest("bad_postback", "postback must be a short non-empty string")
    if action is not None and action not in ("start", "delete"):
        raise BadRequest("bad_action", "action must be 'start' or 'delete'")
    return text, postback, action


async def run_turn(
    app: web.Application,
    session: str,
    text: str | None,
    postback: str | None,
    action: str | None,
) -> list[dict[str, Any]]:
    """Run one turn for a web session and return the message objects."""
    config = app[keys.CONFIG]
    engine = app[keys.ENGINE]
    key = user_key(CHANNEL, session, config.secret)
    if action == "delete":
        engine.forget(key)
        return [{"type": "end", "text": engine.renderer.text("deleted")}]
    if text is None and postback is None:
        replies = await engine.greet(key, CHANNEL)
    else:
        replies = await engine.handle(IncomingMessage(CHANNEL, key, text=text, postback=postback))
    return [reply_to_json(r) for r in replies]


def parse_since(data: dict[str, Any]) -> tuple[str | None, int]:
    """The last counselor push a client saw: ``{"epoch": str|null, "seq": int}``.

    Raises:
        BadRequest: a wrong type or size.
    """
    epoch, seq = data.get("epoch"), data.get("seq", 0)
    if epoch is not None and (not isinstance(epoch, str) or not 0 < len(epoch) <= 32):
        raise BadRequest("bad_epoch", "epoch must be null or the string the server sent")
    if seq is None:
        seq = 0
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**53:
        raise BadRequest("bad_seq", "seq must be a non-negative integer")
    return epoch, seq


def _parse_id(data: dict[str, Any]) -> str | None:
    frame_id = data.get("id")
    if frame_id is not None and (not isinstance(frame_id, str) or len(frame_id) > 64):
        raise BadRequest("bad_id", "id must be a short string")
    return frame_id


async def updates_after(
    app: web.Application, session: str, epoch: str | None, seq: int, wait: float = 0.0
) -> dict[str, Any]:
    """Counselor pushes after (epoch, seq), waiting up to ``wait`` seconds for one."""
    outboxes = app.get(OUTBOXES)
    if outboxes is None:
        return {"epoch": None, "updates": []}
    box = outboxes.open(user_key(CHANNEL, session, app[keys.CONFIG].secret))
    box.ack(epoch, seq)
    if wait > 0 and not box.after(epoch, seq):
        await box.wait(seq if epoch == box.epoch else 0, wait)
    items = box.after(epoch, seq)
    return {"epoch": box.epoch, "updates": [{"seq": n, "messages": m} for n, m in items]}


def _error(exc: BadRequest) -> web.Response:
    return web.json_response({"error": {"code": exc.code, "message": str(exc)}}, status=exc.status)


# -- HTTP API --------------------------------------------------------------------------


async def api_chat(request: web.Request) -> web.Response:
    """``POST /api/chat``: one turn as JSON (see README, "Web widget")."""
    config = request.app[keys.CONFIG]
    try:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise BadRequest("too_large", f"the body is limited to {MAX_BODY_BYTES} bytes", 413)
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise BadRequest("too_large", f"the body is limited to {MAX_BODY_BYTES} bytes", 413)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BadRequest("bad_json", "the body must be UTF-8 JSON") from exc
        if not isinstance(data, dict):
            raise BadRequest("bad_json", "the body must be a JSON object")
        session = parse_session(data.get("session"))
        frame_id = _parse_id(data)
        if data.get("action") == "updates":
            if session is None:
                raise BadRequest("no_session", "updates need the session of a conversation")
            epoch, seq = parse_since(data)
            wait = data.get("wait", 0)
            if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
                raise BadRequest("bad_wait", "wait must be a number of seconds")
            out = await updates_after(
                request.app, session, epoch, seq, min(float(wait), MAX_POLL_WAIT)
            )
            return _api_json(request, {"session": session, "messages": [], **out})
        text, postback, action = parse_turn(data, config.max_message_chars)
    except BadRequest as exc:
        return _error(exc)
    session = session or new_session()
    recent = request.app[RECENT]
    cache_key = (session, frame_id)
    if frame_id is not None and cache_key in recent:
        # A resend (the answer was lost on the way): the turn already ran.
        return _api_json(request, {"session": session, "messages": recent[cache_key]})
    messages = await run_turn(request.app, session, text, postback, action)
    if frame_id is not None:
        _remember(recent, cache_key, messages)
    return _api_json(request, {"session": session, "messages": messages})


def _api_json(request: web.Request, body: dict[str, Any]) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    origin = request.headers.get("Origin")
    if origin is not None and origin_allowed(request) and urlsplit(origin).netloc != request.host:
        # The widget embedded on an allowed site polls here when sockets are blocked.
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    return web.json_response(body, headers=headers)


def _remember(recent: OrderedDict, key: tuple[str, str], messages: list[Any]) -> None:  # type: ignore[type-arg]
    recent[key] = messages
    while len(recent) > _RECENT_MAX:
        recent.popitem(last=False)


# -- WebSocket -------------------------------------------------------------------------


def origin_allowed(request: web.Request) -> bool:
    """Same origin, or one of ``allowed_origins``. Browsers always send Origin on sockets."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: cross-site socket hijacking needs a browser
    allowed = request.app[keys.CONFIG].allowed_origins
    if origin in allowed or "*" in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.host


async def ws_chat(request: web.Request) -> web.StreamResponse:
    """``GET /ws/chat``: the live widget connection (frames documented in the README)."""
    if not origin_allowed(request):
        logger.info("widget socket refused: origin not allowed")
        return web.json_response(
            {"error": {"code": "bad_origin", "message": "origin not allowed"}}, status=403
        )
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_BODY_BYTES)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    session: str | None = None
    config = request.app[keys.CONFIG]
    follower: asyncio.Task[None] | None = None  # counselor messages (bot.relay)
    try:
        while not ws.closed:
            try:
                msg = await ws.receive(timeout=WS_IDLE_SECONDS)
            except TimeoutError:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle")
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            if msg.type == WSMsgType.ERROR:
                logger.info("widget socket error: %s", type(ws.exception()).__name__)
                break
            if msg.type != WSMsgType.TEXT:
                await ws.send_json(_ws_error("bad_frame", "send JSON text frames"))
                continue
            session, since = await _ws_frame(request.app, ws, msg.data, session, config)
            follower = follow_widget(request.app, ws, session, follower, since or (None, 0))
    finally:
        request.app[SOCKETS].discard(ws)
        if follower is not None:
            follower.cancel()
    return ws


def _ws_error(code: str, message: str, frame_id: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if frame_id is not None:
        out["id"] = frame_id
    return out


async def _ws_frame(
    app: web.Application, ws: web.WebSocketResponse, raw: str, session: str | None, config: Any
) -> tuple[str | None, tuple[str | None, int] | None]:
    """Handle one frame; returns the socket's session after it (and a hello's ``since``)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        await ws.send_json(_ws_error("bad_json", "frames must be JSON objects"))
        return session, None
    if not isinstance(data, dict):
        await ws.send_json(_ws_error("bad_json", "frames must be JSON objects"))
        return session, None
    frame_id = data.get("id")
    if frame_id is not None and (not isinstance(frame_id, str) or len(frame_id) > 64):
        await ws.send_json(_ws_error("bad_id", "id must be a short string"))
        return session, None
    kind = data.get("type")
    try:
        if kind == "ping":
            await ws.send_json({"type": "pong"})
            return session, None
        if kind == "hello":
            given = parse_session(data.get("session"))
            since = parse_since(data) if given else (None, 0)
            session = given or new_session()
            await ws.send_json({"type": "ready", "session": session, "resumed": bool(given)})
            if given is not None and data.get("greet") is False:
                # A widget reconnecting (or leaving the HTTP fallback) within one page already
                # shows the conversation: only missed pushes, no greeting a second time.
                return session, since
            messages = await run_turn(app, session, None, None, None)
            if messages:
                await ws.send_json({"type": "reply", "id": None, "messages": messages})
            return session, since
        if session is None:
            raise BadRequest("no_session", "send a hello frame first")
        if kind not in ("message", "postback", "delete"):
            raise BadRequest("bad_type", "type must be hello, message, postback, delete or ping")
        payload = {
            "message": {"text": data.get("text")},
            "postback": {"postback": data.get("postback")},
            "delete": {"action": "delete"},
        }[kind]
        text, postback, action = parse_turn(payload, config.max_message_chars)
    except BadRequest as exc:
        await ws.send_json(_ws_error(exc.code, str(exc), frame_id))
        return session, None
    recent = app[RECENT]
    cache_key = (session, frame_id)
    if frame_id is not None and cache_key in recent:
        # A resend after a reconnect: the turn already ran; send the same answer again.
        await ws.send_json({"type": "reply", "id": frame_id, "messages": recent[cache_key]})
        return session, None
    await ws.send_json({"type": "typing"})
    started = time.perf_counter()
    messages = await run_turn(app, session, text, postback, action)
    if frame_id is not None:
        _remember(recent, cache_key, messages)
    await ws.send_json({"type": "reply", "id": frame_id, "messages": messages})
    logger.debug("widget turn in %.1f ms", (time.perf_counter() - started) * 1000)
    return session, None


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


# -- pages and assets --------------------------------------------------------------------

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@aiohttp_jinja2.template("widget/demo.html", app_key=TEMPLATES)
async def demo_page(request: web.Request) -> dict[str, Any]:
    """``GET /``: a demo page of a consultation desk with the widget."""
    return {}


async def _demo(request: web.Request) -> web.StreamResponse:
    response = await demo_page(request)
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _asset(name: str, content_type: str) -> web.Response:
    body = resources.files("bot").joinpath("static", name).read_bytes()
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


async def widget_js(request: web.Request) -> web.Response:
    """``GET /widget.js``: the embeddable widget (one script tag)."""
    return _asset("widget.js", "text/javascript")


async def widget_css(request: web.Request) -> web.Response:
    """``GET /widget.css``: the widget's styles (loaded by widget.js)."""
    return _asset("widget.css", "text/css")


async def demo_css(request: web.Request) -> web.Response:
    """``GET /demo.css``: styles of the demo page only."""
    return _asset("demo.css", "text/css")


def setup(app: web.Application) -> None:
    """Add the widget routes, templates and socket bookkeeping."""
    aiohttp_jinja2.setup(
        app,
        app_key=TEMPLATES,
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    app[SOCKETS] = weakref.WeakSet()
    app[RECENT] = OrderedDict()
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/", _demo)
    app.router.add_get("/widget.js", widget_js)
    app.router.add_get("/widget.css", widget_css)
    app.router.add_get("/demo.css", demo_css)
    app.router.add_get("/ws/chat", ws_chat)
    app.router.add_post("/api/chat", api_chat)
