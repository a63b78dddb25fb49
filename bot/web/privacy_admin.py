"""``/admin/privacy``: consent records and the audit log for admins, with a CSV export.

Mounted as its own sub-app under the admin's prefix with the admin's auth middlewares and
templates (the admin's router is frozen once mounted, as ``bot.web.stats`` found). Only
``admin`` may use it: the consent records say which conversations exist, the audit log
who opened which case. Nothing here shows a user key or a message.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from bot import keys
from bot.web import admin, auth, staff
from bot.web.auth import principal_of, require_role

PREFIX = f"{admin.PREFIX}/privacy"
AUDIT_LIMIT = 1000
CONVERSATION_LIMIT = 200
_JST = timezone(timedelta(hours=9))
_CASE_ACTIONS = {
    "open_transcript": "会話の記録を開いた",
    "open_summary": "概要を開いた（匿名）",
    "denied": "開こうとして拒否された",
}
_LOGIN_ACTIONS = {
    "login": "ログイン",
    "failure": "ログイン失敗",
    "locked": "ログイン停止中",
    "logout": "ログアウト",
    "logout_all": "すべての端末からログアウト",
    "audit_export": "監査記録を書き出した",
}
_CONSENT_LABELS = {
    "granted": "記録に同意",
    "declined": "記録しない",
    "none": "未選択",
    "full": "会話の共有に同意",
    "anonymous": "匿名のまま",
    "cancelled": "やめた",
    "offered": "案内した",
    "requested": "希望した",
}


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One line of the combined audit log (case openings and staff logins)."""

    at: float
    kind: str  # case | login
    actor: str
    action: str
    case_id: int | None
    conversation_id: int | None
    detail: str


def _fmt(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, _JST).strftime("%Y-%m-%d %H:%M:%S")


def audit_rows(app: Mapping[Any, Any], limit: int = AUDIT_LIMIT) -> list[AuditRow]:
    """Case openings (``handoff``) and staff logins (``knowledge.sessions``), newest first."""
    rows: list[AuditRow] = []
    desk = app.get(keys.DESK)
    if desk is not None:
        for e in desk.store.audit_log(limit=limit):
            rows.append(
                AuditRow(
                    e.at, "case", e.actor, e.action, e.escalation_id, e.conversation_id, e.detail
                )
            )
    sessions = app.get(keys.SESSIONS)
    if sessions is not None:
        for ev in sessions.recent_logins(limit):
            rows.append(
                AuditRow(ev.at, "login", ev.user_name, ev.event, None, None, ev.remote or "")
            )
    rows.sort(key=lambda r: r.at, reverse=True)
    return rows[:limit]


def consent_records(app: Mapping[Any, Any]) -> dict[str, Any]:
    """What is kept under which consent: conversations, cases and the daily choices."""
    db = app[keys.DB]
    retention = app[keys.CONFIG].retention_days
    # Read-only: the columns that say what is kept and until when, never the user key.
    conversations = [
        {
            "id": r[0],
            "channel": r[1],
            "consent": r[2],
            "created": _fmt(r[3]),
            "last": _fmt(r[4]),
            "until": _fmt(r[4] + retention * 86400),
            "messages": r[5],
        }
        for r in db.execute(
            "SELECT c.id, c.channel, c.consent, c.created_at, c.last_activity, "
            "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) "
            "FROM conversations c ORDER BY c.last_activity DESC LIMIT ?",
            [CONVERSATION_LIMIT],
        )
    ]
    totals = {
        consent: n
        for consent, n in db.execute(
            "SELECT consent, COUNT(*) FROM conversations GROUP BY consent"
        )
    }
    cases: list[dict[str, Any]] = []
    desk = app.get(keys.DESK)
    if desk is not None:
        for esc in [*desk.store.list_open(), *desk.store.list_recent_final(limit=50)]:
            cases.append(
                {
                    "id": esc.id,
                    "office": esc.office_id,
                    "consent": esc.consent,
                    "state": esc.state,
                    "created": _fmt(esc.created_at),
                    "linked": esc.user_key is not None,
                }
            )
    store = app[keys.CONVERSATIONS]
    flush = getattr(store, "flush_counts", None)
    if callable(flush):
        flush()  # counters may be batched in memory until the next write
    daily: dict[str, dict[str, int]] = {}
    for metric in ("consent", "handoff"):
        for (day, _, key), n in store.counts(metric).items():
            daily.setdefault(day, {})[f"{metric}:{key}"] = n
    return {
        "conversations": conversations,
        "totals": totals,
        "cases": cases,
        "daily": sorted(daily.items(), reverse=True)[:60],
        "retention_days": retention,
    }


@require_role("admin")
async def privacy_page(request: web.Request) -> web.Response:
    """``GET /admin/privacy/``: consent records and the latest audit entries."""
    records = consent_records(request.config_dict)
    return admin.render(
        request,
        "privacy.html",
        {
            **records,
            "audit": audit_rows(request.config_dict, 200),
            "fmt": _fmt,
            "case_actions": _CASE_ACTIONS,
            "login_actions": _LOGIN_ACTIONS,
            "consent_labels": _CONSENT_LABELS,
            "daily_columns": (
                "consent:granted",
                "consent:declined",
                "handoff:full",
                "handoff:anonymous",
                "handoff:cancelled",
            ),
        },
    )


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet never reads as a formula (names are typed by people)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def audit_csv(rows: list[AuditRow]) -> bytes:
    """The audit log as CSV: UTF-8 with BOM (Excel in Japan), CRLF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["日時", "種類", "操作者", "操作", "相談番号", "会話番号", "詳細"])
    for r in rows:
        label = (_CASE_ACTIONS if r.kind == "case" else _LOGIN_ACTIONS).get(r.action, r.action)
        writer.writerow(
            [
                _fmt(r.at),
                "相談" if r.kind == "case" else "ログイン",
                _cell(r.actor),
                _cell(label),
                r.case_id if r.case_id is not None else "",
                r.conversation_id if r.conversation_id is not None else "",
                _cell(r.detail),
            ]
        )
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


@require_role("admin")
async def audit_export(request: web.Request) -> web.Response:
    """``GET /admin/privacy/audit.csv``: the whole audit log as CSV (the export is audited)."""
    p = principal_of(request)
    sessions = request.config_dict.get(keys.SESSIONS)
    if sessions is not None:
        sessions.audit(p.user.name, "audit_export", request.remote)
    rows = audit_rows(request.config_dict, limit=100_000)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return web.Response(
        body=audit_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="tsunagu-audit-{stamp}.csv"'},
    )


async def _to_page(request: web.Request) -> web.StreamResponse:
    """``GET /admin/privacy`` → ``/admin/privacy/``."""
    raise web.HTTPMovedPermanently(PREFIX + "/")


def create_privacy_app() -> web.Application:
    """The ``/admin/privacy`` sub-app: the admin's auth middlewares and templates."""
    sub = web.Application(middlewares=auth.middlewares(admin.LOGIN_PATH))
    staff.setup_templates(sub, admin.TEMPLATES)
    sub.router.add_get("/", privacy_page)
    sub.router.add_get("/audit.csv", audit_export)
    return sub


def setup(app: web.Application) -> None:
    """Mount ``/admin/privacy`` (after ``bot.web.admin``, which opens the session store)."""
    auth.setup(app)
    app.router.add_get(PREFIX, _to_page)
    app.add_subapp(PREFIX, create_privacy_app())
