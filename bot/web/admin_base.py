"""The admin pages' shared plumbing: paths, roles, notices, rendering, redirects, trials."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import keys
from bot.web import auth
from bot.web.forms import ACTION_LABELS
from bot.web.trial import MAX_TRIAL_CHARS, run_trial
from knowledge.base import KnowledgeBase
from knowledge.models import ROLES

PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"
STAFF = ("admin", "staff")
ANY_ROLE = ROLES
TEMPLATES = web.AppKey("admin_templates", jinja2.Environment)
JST = timezone(timedelta(hours=9))

# Messages after a redirect are chosen by key, so no user text travels in a URL.
NOTICES = {
    "saved": "保存しました。",
    "created": "作成しました。",
    "deactivated": "無効にしました。ボットはこの窓口を案内しなくなります。",
    "activated": "有効にしました。",
    "restored": "この版に戻しました（復元も履歴に残ります）。",
    "imported": "取り込みました。",
    "nothing": "変更はありませんでした。",
    "user_added": "ユーザーを追加しました。",
    "user_disabled": "ユーザーを無効にしました（ログイン中の画面もすべて終了しました）。",
    "user_enabled": "ユーザーを有効にしました。",
    "password_set": "パスワードを設定しました（そのユーザーのログインはすべて終了しました）。",
    "logged_out_all": "ほかの端末のログインをすべて終了しました。",
    "logged_out": "ログアウトしました。",
}
ENTITY_LABELS = {"resource": "窓口", "template": "文面", "faq": "FAQ", "user": "ユーザー"}
ROLE_LABELS = {"admin": "管理者", "staff": "職員", "counselor": "相談員"}


def kb_of(request: web.Request) -> KnowledgeBase:
    """The knowledge base of the running app."""
    return request.config_dict[keys.KB]


def _fmt_time(value: str | float | None) -> str:
    """ISO text or epoch seconds → Japan time ``2026-11-25 14:03``."""
    if value is None or value == "":
        return ""
    try:
        if isinstance(value, int | float):
            dt = datetime.fromtimestamp(value, JST)
        else:
            dt = datetime.fromisoformat(value).astimezone(JST)
    except (ValueError, OverflowError, OSError):
        return str(value)
    return dt.strftime("%Y-%m-%d %H:%M")


def render(
    request: web.Request, name: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render an admin page with the shared context (user, CSRF token, notice, labels)."""
    p = auth.current(request)
    kb = kb_of(request)
    notice = NOTICES.get(request.query.get("msg", ""), "")
    base = {
        "principal": p,
        "user": p.user if p else None,
        "csrf_token": p.csrf_token if p else "",
        "is_admin": bool(p and p.user.role == "admin"),
        "notice": notice,
        "taxonomy": kb.taxonomy,
        "role_labels": ROLE_LABELS,
        "entity_labels": ENTITY_LABELS,
        "action_labels": ACTION_LABELS,
        "path": request.path,
        "fmt_time": _fmt_time,
        "summary": [],
        "errors": {},
        "error": "",
        "open_evidence": False,
    }
    base.update(context)
    response = aiohttp_jinja2.render_template(
        f"admin/{name}", request, base, app_key=TEMPLATES, status=status
    )
    return response


def not_found(message: str = "見つかりません。") -> web.HTTPNotFound:
    """A 404 with the staff error page (raise it)."""
    page = auth.error_page(404, message)
    return web.HTTPNotFound(text=page.text, content_type="text/html")


def see_other(path: str, msg: str | None = None) -> web.HTTPSeeOther:
    """A redirect to an admin path with a notice chosen by key (raise it)."""
    return web.HTTPSeeOther(f"{PREFIX}{path}" + (f"?msg={msg}" if msg else ""))


def errors_summary(errors: dict[str, list[str]], labels: dict[str, str]) -> list[str]:
    """Field errors as 「label: message」 lines for the summary at the top of a form."""
    return [f"{labels.get(f, f)}: {m}" for f, ms in errors.items() for m in ms]


def flag(value: str | None) -> bool | None:
    """A ``1``/``0`` filter from a query string (anything else: no filter)."""
    return {"1": True, "0": False}.get(value or "")


async def before_after(
    request: web.Request, message: str, before: KnowledgeBase, after: KnowledgeBase
) -> dict[str, Any]:
    """The same trial message run on the saved knowledge and on an unsaved edit."""
    if not message:
        return {"message": "", "error": "試すメッセージを入力してください。"}
    config = request.config_dict[keys.CONFIG]
    return {
        "message": message[:MAX_TRIAL_CHARS],
        "before": await run_trial(before, config, message),
        "after": await run_trial(after, config, message),
        "error": "",
    }
