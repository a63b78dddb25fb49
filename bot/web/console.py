"""The counselor console at ``/console``: live queue, claimed cases, replies, notes, outcomes.

Who may use it (decided here, enforced by ``handoff.desk``):

- ``counselor``: the queue and cases of their own office only; another office's case is
  a 403 (and the refusal is audited);
- ``admin``: every office, for supervision; every case they open is audited too;
- ``staff``: no access — staff keep the knowledge base and never read conversations.

Login reuses ``bot.web.auth`` (the same sessions, throttling and CSRF as ``/admin``).
Pages and JSON use the staff security headers; the page's script is a plain file.
Every opening of a case writes an audit entry (``Desk.open_for_counselor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, WSMsgType, web

from bot import keys
from bot.web import auth, staff
from bot.web.auth import principal_of, public, require_role
from handoff.desk import ALL_OFFICES, Conflict, Desk, Forbidden, NotFound, visible_offices
from handoff.models import CaseMessage, Escalation, Note, Outcome, TranscriptLine
from handoff.states import InvalidTransition
from knowledge.base import KnowledgeBase
from knowledge.models import User

logger = logging.getLogger(__name__)

PREFIX = "/console"
LOGIN_PATH = f"{PREFIX}/login"
ROLES = ("counselor", "admin")
CANNED_PREFIX = "canned."
MAX_REPLY_CHARS = 2000
MAX_BODY_BYTES = 16 * 1024
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
SOCKETS = web.AppKey("console_sockets", weakref.WeakSet)  # type: ignore[type-arg]
_STATIC = {"console.css": "text/css", "console.js": "text/javascript", "chime.wav": "audio/wav"}
STATE_LABELS = {
    "waiting": "待機中",
    "claimed": "対応開始",
    "active": "対応中",
    "closed": "終了",
    "returned": "ボットに戻した",
    "abandoned": "応答なしで終了",
}
CONSENT_LABELS = {"full": "会話の共有に同意", "anonymous": "匿名（分類のみ）"}
REASON_LABELS = {
    "requested": "本人の希望",
    "crisis": "危機の可能性",
    "unroutable": "案内先が決まらない",
}

routes = web.RouteTableDef()


# -- helpers ----------------------------------------------------------------------------------


def _sent(request: web.Request) -> SentTexts:
    return request.app[SENT]


def _desk(request: web.Request) -> Desk:
    return request.config_dict[keys.DESK]


def _kb(request: web.Request) -> KnowledgeBase:
    return request.config_dict[keys.KB]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def case_json(desk: Desk, kb: KnowledgeBase, esc: Escalation, me: User, now: float) -> dict:
    """A case as the console shows it in the queue: categories only, never text or keys."""
    tax = kb.taxonomy
    s = esc.summary
    office = desk.office_of(esc)
    return {
        "id": esc.id,
        "state": esc.state,
        "state_label": STATE_LABELS.get(esc.state, esc.state),
        "office": office.id,
        "office_label": office.label,
        "consent": esc.consent,
        "consent_label": CONSENT_LABELS.get(esc.consent, esc.consent),
        "reason": esc.reason,
        "reason_label": REASON_LABELS.get(esc.reason, esc.reason),
        "channel": esc.channel,
        "topic": s.topic,
        "topic_label": tax.topics.get(s.topic, s.topic),
        "topics_label": [tax.topics.get(t, t) for t in s.topics],
        "audience_label": tax.audiences.get(s.audience, s.audience),
        "age_label": tax.age_groups.get(s.age_group, s.age_group),
        "area_label": s.area_name or "不明",
        "crisis": s.crisis,
        "crisis_label": tax.crisis_levels.get(s.crisis, s.crisis),
        "counselor": esc.counselor,
        "mine": esc.counselor == me.name,
        "created_at": esc.created_at,
        "wait_seconds": max(0.0, (esc.claimed_at or now) - esc.created_at),
        "due_at": esc.due_at,
        "connected": esc.user_key is not None,
    }


class SentTexts:
    """What counselors typed, as they typed it, shown back to the author only (memory only).

    The stored copy of every live message is masked (phone numbers, names …), which is
    right for the person's words, but a counselor who introduces themself would see their
    own name as ``<NAME>``. Their own text is staff text they already know, so the console
    shows it to them as sent; other viewers (an admin supervising) see the stored, masked
    copy, and nothing unmasked is ever written to the database or a log. Lost on restart
    (then the masked copy shows), bounded, dropped when the case ends.
    """

    def __init__(self, max_cases: int = 2000, per_case: int = 500) -> None:
        """Remember the texts of at most ``max_cases`` cases, ``per_case`` messages each."""
        self._cases: OrderedDict[int, dict[int, tuple[str, str]]] = OrderedDict()
        self.max_cases = max_cases
        self.per_case = per_case

    def add(self, case_id: int, message_id: int, author: str, text: str) -> None:
        """Remember one sent message."""
        texts = self._cases.setdefault(case_id, {})
        self._cases.move_to_end(case_id)
        texts[message_id] = (author, text)
        while len(texts) > self.per_case:
            texts.pop(next(iter(texts)))
        while len(self._cases) > self.max_cases:
            self._cases.popitem(last=False)

    def text_for(self, case_id: int, message_id: Any, viewer: str) -> str | None:
        """The text as sent, when ``viewer`` wrote it; else None."""
        entry = self._cases.get(case_id, {}).get(message_id)
        return entry[1] if entry is not None and entry[0] == viewer else None

    def drop(self, case_id: int) -> None:
        """Forget a case's texts (it ended)."""
        self._cases.pop(case_id, None)


SENT = web.AppKey("console_sent_texts", SentTexts)


def _message_json(
    m: CaseMessage, sent: SentTexts | None = None, viewer: User | None = None
) -> dict[str, Any]:
    text = m.text
    if sent is not None and viewer is not None and m.sender == "counselor" and m.kind == "text":
        text = sent.text_for(m.escalation_id, m.id, viewer.name) or text
    return {
        "id": m.id,
        "sender": m.sender,
        "author": m.author,
        "kind": m.kind,
        "text": text,
        "resource_id": m.resource_id,
        "at": m.created_at,
    }


def _event_json(
    event: Mapping[str, Any], case_id: int, sent: SentTexts, viewer: User
) -> dict[str, Any]:
    """A case event for one console socket (the viewer's own messages as they sent them)."""
    out = dict(event)
    message = out.get("message")
    if isinstance(message, Mapping) and message.get("sender") == "counselor":
        own = sent.text_for(case_id, message.get("id"), viewer.name)
        if own is not None and message.get("kind") == "text":
            out["message"] = {**message, "text": own}
    return out


def _line_json(line: TranscriptLine) -> dict[str, Any]:
    return {"sender": line.sender, "text": line.text, "at": line.created_at}


def _note_json(n: Note) -> dict[str, Any]:
    return {"id": n.id, "author": n.author, "text": n.text, "at": n.created_at}


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=0)
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=len(raw))
    try:
        data = json.loads(raw.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise _Bad("bad_json", "JSON のオブジェクトを送ってください。")
    return data


class _Bad(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


async def _case_action(request: web.Request, action: Any) -> web.Response:
    """Run one action on a case, mapping the desk's errors to JSON answers."""
    try:
        case_id = int(request.match_info["case_id"])
    except ValueError:
        return _error(404, "not_found", "見つかりません。")
    user = principal_of(request).user
    try:
        result = await action(user, case_id)
    except _Bad as exc:
        return _error(exc.status, exc.code, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too_large", "送信が大きすぎます。")
    except NotFound:
        return _error(404, "not_found", "この相談は見つかりません。")
    except Forbidden:
        return _error(403, "forbidden", "ほかの事務所の相談は開けません。")
    except (Conflict, InvalidTransition):
        return _error(409, "conflict", "この相談はすでに別の状態です。画面を更新してください。")
    except ValueError as exc:
        return _error(400, "invalid", str(exc) or "入力を確かめてください。")
    return web.json_response(result, headers={"Cache-Control": "no-store"})


def _text_field(data: dict[str, Any], name: str, limit: int = MAX_REPLY_CHARS) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Bad("empty", "内容を入力してください。")
    if len(value) > limit:
        raise _Bad("too_long", f"{limit}文字以内にしてください。", 413)
    return value


# -- static -----------------------------------------------------------------------------------


@routes.get("/static/{name}")
@public
async def static(request: web.Request) -> web.Response:
    """``GET /console/static/{name}``: the console's script, styles and chime."""
    response = staff.static_file("console", _STATIC, request.match_info["name"])
    if response is None:
        raise web.HTTPNotFound()
    return response


# -- login ------------------------------------------------------------------------------------


def _login_page(
    request: web.Request, *, message: str = "", name: str = "", status: int = 200
) -> web.Response:
    def page(context: dict[str, object], status: int) -> web.Response:
        return aiohttp_jinja2.render_template(
            "console/login.html", request, context, app_key=TEMPLATES, status=status
        )

    return staff.login_page(request, page, message=message, name=name, status=status)


@routes.get("/login")
@public
async def login_form(request: web.Request) -> web.StreamResponse:
    """``GET /console/login``: the counselors' login page."""
    p = auth.current(request)
    if p is not None and p.user.role in ROLES:
        raise web.HTTPSeeOther(PREFIX + "/")
    msg = "ログアウトしました。" if request.query.get("msg") == "logged_out" else ""
    return _login_page(request, message=msg)


@routes.post("/login")
@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    """``POST /console/login``: check the password and start a session (rotated id)."""
    _, name, result = await staff.check_login(request)
    if result.user is None:
        return _login_page(request, message=result.message, name=name, status=401)
    if result.user.role not in ROLES:
        return _login_page(
            request,
            message="相談員のアカウントでログインしてください（管理画面は /admin です）。",
            name=name,
            status=403,
        )
    raise staff.session_started(request, result, PREFIX + "/")


@routes.post("/logout")
@require_role(*ROLES)
async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /console/logout``: end this browser's session."""
    raise staff.signed_out(request, LOGIN_PATH, "logged_out")


# -- the page ---------------------------------------------------------------------------------


@routes.get("/")
@require_role(*ROLES)
async def index(request: web.Request) -> web.Response:
    """``GET /console/``: the console (queue and case panes; filled by console.js)."""
    p = principal_of(request)
    desk, kb = _desk(request), _kb(request)
    offices = visible_offices(p.user, desk.offices)
    canned = [t for t in kb.list_templates() if t.id.startswith(CANNED_PREFIX)]
    resources_ = [r for r in kb.list_resources(active=True)]
    return aiohttp_jinja2.render_template(
        "console/index.html",
        request,
        {
            "user": p.user,
            "csrf_token": p.csrf_token,
            "offices": offices,
            "all_offices": list(desk.offices),
            "canned": canned,
            "resources": resources_,
            "kinds": kb.taxonomy.resource_kinds,
            "role_label": {"admin": "管理者", "counselor": "相談員"}.get(p.user.role, ""),
        },
        app_key=TEMPLATES,
    )


async def _to_index(request: web.Request) -> web.StreamResponse:
    """``GET /console`` → ``/console/``."""
    raise web.HTTPMovedPermanently(PREFIX + "/")


# -- JSON API ---------------------------------------------------------------------------------


@routes.get("/api/queue")
@require_role(*ROLES)
async def api_queue(request: web.Request) -> web.Response:
    """``GET /console/api/queue``: open cases of the offices this user sees."""
    user = principal_of(request).user
    return web.json_response(
        _queue_payload(request.config_dict, user), headers={"Cache-Control": "no-store"}
    )


def _queue_payload(app: Mapping[Any, Any], user: User) -> dict[str, Any]:
    desk, kb = app[keys.DESK], app[keys.KB]
    now = time.time()
    return {
        "type": "queue",
        "now": now,
        "cases": [case_json(desk, kb, e, user, now) for e in desk.queue_for(user)],
    }


@routes.get("/api/cases/{case_id}")
@require_role(*ROLES)
async def api_case(request: web.Request) -> web.Response:
    """``GET /console/api/cases/{id}``: open a case (audited): summary, transcript, chat."""
    desk, kb = _desk(request), _kb(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        view = desk.open_for_counselor(user, case_id)
        esc = view.escalation
        recommended = []
        for rid in esc.summary.recommended:
            r = kb.get_resource(rid)
            if r is not None:
                recommended.append({"id": r.id, "name": r.name, "kind": r.kind})
        return {
            "case": case_json(desk, kb, esc, user, time.time()),
            "transcript_shared": view.transcript_shared,
            "transcript": [_line_json(x) for x in view.transcript],
            "live": [_message_json(m, _sent(request), user) for m in view.live],
            "notes": [_note_json(n) for n in view.notes],
            "recommended": recommended,
            "history": [
                {"at": h.at, "actor": h.actor, "action": h.action, "to": h.to_state}
                for h in view.history
            ],
        }

    return await _case_action(request, run)


def _post(path: str) -> Any:
    def decorate(handler: Any) -> Any:
        return routes.post(path)(require_role(*ROLES)(handler))

    return decorate


@_post("/api/cases/{case_id}/claim")
async def api_claim(request: web.Request) -> web.Response:
    """Claim a waiting case."""
    desk = _desk(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        esc = desk.claim(user, case_id)
        return {"ok": True, "state": esc.state}

    return await _case_action(request, run)


@_post("/api/cases/{case_id}/reply")
async def api_reply(request: web.Request) -> web.Response:
    """Send a message to the person."""
    desk = _desk(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        text = _text_field(await _json_body(request), "text")
        msg = desk.reply(user, case_id, text)
        sent = _sent(request)
        sent.add(case_id, msg.id, user.name, text.strip())  # as the person receives it
        return {"ok": True, "message": _message_json(msg, sent, user)}

    return await _case_action(request, run)


@_post("/api/cases/{case_id}/resource")
async def api_resource(request: web.Request) -> web.Response:
    """Send a resource card to the person."""
    desk, kb = _desk(request), _kb(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        data = await _json_body(request)
        rid = data.get("resource_id")
        resource = kb.get_resource(rid) if isinstance(rid, str) and len(rid) < 100 else None
        if resource is None or not resource.active:
            raise _Bad("unknown_resource", "その窓口は見つかりません。")
        msg = desk.send_resource(user, case_id, resource.id, resource.name)
        return {"ok": True, "message": _message_json(msg)}

    return await _case_action(request, run)


@_post("/api/cases/{case_id}/note")
async def api_note(request: web.Request) -> web.Response:
    """Add an internal note (never sent to the person)."""
    desk = _desk(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        text = _text_field(await _json_body(request), "text")
        return {"ok": True, "note": _note_json(desk.add_note(user, case_id, text))}

    return await _case_action(request, run)


@_post("/api/cases/{case_id}/transfer")
async def api_transfer(request: web.Request) -> web.Response:
    """Move the case to another office's queue."""
    desk = _desk(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        office = (await _json_body(request)).get("office")
        if not isinstance(office, str) or desk.offices.get(office) is None:
            raise _Bad("unknown_office", "移す先の事務所を選んでください。")
        esc = desk.transfer(user, case_id, office)
        return {"ok": True, "state": esc.state, "office": esc.office_id}

    return await _case_action(request, run)


@_post("/api/cases/{case_id}/return")
async def api_return(request: web.Request) -> web.Response:
    """Hand the person back to the bot."""
    desk = _desk(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        await _json_body(request)
        state = desk.return_to_bot(user, case_id).state
        _sent(request).drop(case_id)
        return {"ok": True, "state": state}

    return await _case_action(request, run)


@_post("/api/cases/{case_id}/close")
async def api_close(request: web.Request) -> web.Response:
    """Close the case with an outcome (kinds referred to, 紹介先)."""
    desk, kb = _desk(request), _kb(request)

    async def run(user: User, case_id: int) -> dict[str, Any]:
        data = await _json_body(request)
        kinds = data.get("kinds", [])
        referred = data.get("referred_to", "")
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise _Bad("bad_kinds", "紹介した窓口の種類を選び直してください。")
        unknown = [k for k in kinds if k not in kb.taxonomy.resource_kinds]
        if unknown:
            raise _Bad("bad_kinds", "紹介した窓口の種類に、知らないものがあります。")
        if not isinstance(referred, str) or len(referred) > 500:
            raise _Bad("bad_referred", "紹介先は500文字以内で入力してください。")
        outcome = Outcome(referred_kinds=tuple(dict.fromkeys(kinds)), referred_to=referred)
        state = desk.close(user, case_id, outcome).state
        _sent(request).drop(case_id)
        return {"ok": True, "state": state}

    return await _case_action(request, run)


# -- live updates -----------------------------------------------------------------------------


def _origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == request.host


@routes.get("/ws")
@require_role(*ROLES)
async def ws(request: web.Request) -> web.StreamResponse:
    """``GET /console/ws``: queue snapshots and the events of the cases the page watches.

    Client frames: ``{"type": "watch", "case": id}`` (access checked; one case at a time).
    Server frames: ``queue`` (a snapshot), ``case`` (an event of the watched case),
    ``crisis`` (a new crisis case arrived in a visible queue).
    """
    if not _origin_ok(request):
        return _error(403, "bad_origin", "origin not allowed")
    user = principal_of(request).user
    app = request.config_dict
    bus = request.config_dict[keys.BUS]
    desk = _desk(request)
    sent = _sent(request)
    socket = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
    await socket.prepare(request)
    request.app[SOCKETS].add(socket)
    topics = (
        [ALL_OFFICES]
        if user.role == "admin"
        else [f"office:{o.id}" for o in visible_offices(user, desk.offices)]
    )
    queue_sub = bus.subscribe(*topics)
    case_sub: Any = None
    pump_case: asyncio.Task[None] | None = None

    async def pump_queue() -> None:
        async for event in queue_sub:
            if socket.closed:
                return
            if event.get("change") in ("created", "transferred_in", "crisis") and event.get(
                "crisis"
            ) in ("concern", "urgent"):
                await socket.send_json({"type": "crisis", "case": event.get("case")})
            await socket.send_json(_queue_payload(app, user))

    async def pump(sub: Any, case_id: int) -> None:
        async for event in sub:
            if socket.closed:
                return
            out = _event_json(event, case_id, sent, user)
            await socket.send_json({"type": "case", "case": case_id, "event": out})

    queue_task = asyncio.create_task(pump_queue())
    try:
        await socket.send_json(_queue_payload(app, user))
        async for msg in socket:
            if msg.type != WSMsgType.TEXT:
                break
            try:
                data = json.loads(msg.data)
                case_id = int(data.get("case")) if data.get("type") == "watch" else None
            except (ValueError, TypeError, AttributeError):
                case_id = None
            if case_id is None:
                await socket.send_json({"type": "error", "code": "bad_frame"})
                continue
            try:
                desk.get_for(user, case_id)
            except (NotFound, Forbidden):
                await socket.send_json({"type": "error", "code": "forbidden", "case": case_id})
                continue
            if pump_case is not None:
                pump_case.cancel()
                case_sub.close()
            case_sub = bus.subscribe(f"case:{case_id}")
            pump_case = asyncio.create_task(pump(case_sub, case_id))
            await socket.send_json({"type": "watching", "case": case_id})
    finally:
        request.app[SOCKETS].discard(socket)
        queue_task.cancel()
        queue_sub.close()
        if pump_case is not None:
            pump_case.cancel()
            case_sub.close()
        for task in (queue_task, pump_case):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return socket


async def _close_sockets(app: web.Application) -> None:
    for socket in list(app[SOCKETS]):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def _fmt_time(value: float | None) -> str:
    if not value:
        return ""
    from datetime import datetime

    from knowledge.hours import JST

    return datetime.fromtimestamp(value, JST).strftime("%Y-%m-%d %H:%M")


def create_console_app() -> web.Application:
    """The ``/console`` sub-app with its routes, templates and middlewares."""
    console = web.Application(middlewares=auth.middlewares(LOGIN_PATH))
    env = staff.setup_templates(console, TEMPLATES)
    env.filters["jst"] = _fmt_time
    console[SOCKETS] = weakref.WeakSet()
    console[SENT] = SentTexts()
    console.on_shutdown.append(_close_sockets)
    console.add_routes(routes)
    return console


def setup(app: web.Application) -> None:
    """Mount ``/console`` (after ``bot.core`` and ``bot.relay``; sessions via ``bot.web.auth``)."""
    auth.setup(app)
    app.router.add_get(PREFIX, _to_index)
    app.add_subapp(PREFIX, create_console_app())
