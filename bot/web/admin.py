"""The staff web admin at ``/admin``: knowledge editing, history, trials, import/export, users."""

from __future__ import annotations

import base64
import binascii
import importlib
import logging
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import keys
from bot.web import auth
from bot.web.auth import Principal, principal_of, public, require_role
from bot.web.bundles import export_zip, read_upload
from bot.web.forms import (
    ACTION_LABELS,
    FAQ_LABELS,
    RESOURCE_LABELS,
    TEMPLATE_LABELS,
    ResourceForm,
    faq_data,
    faq_values,
    field_errors,
    revision_rows,
    template_data,
    template_values,
)
from bot.web.trial import MAX_TRIAL_CHARS, run_trial
from knowledge.base import ENTITIES, KnowledgeBase
from knowledge.models import ROLES
from knowledge.validation import COVERAGES, HOW_OPTIONS, ValidationError, parse_resource

logger = logging.getLogger(__name__)

PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"
STAFF = ("admin", "staff")
ANY_ROLE = ROLES
TEMPLATES = web.AppKey("admin_templates", jinja2.Environment)
_JST = timezone(timedelta(hours=9))
_STATIC = {"admin.css": "text/css", "admin.js": "text/javascript"}

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

routes = web.RouteTableDef()


# -- helpers ------------------------------------------------------------------------------


def _kb(request: web.Request) -> KnowledgeBase:
    return request.config_dict[keys.KB]


def _fmt_time(value: str | float | None) -> str:
    """ISO text or epoch seconds → Japan time ``2026-11-25 14:03``."""
    if value is None or value == "":
        return ""
    try:
        if isinstance(value, int | float):
            dt = datetime.fromtimestamp(value, _JST)
        else:
            dt = datetime.fromisoformat(value).astimezone(_JST)
    except (ValueError, OverflowError, OSError):
        return str(value)
    return dt.strftime("%Y-%m-%d %H:%M")


def render(
    request: web.Request, name: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render an admin page with the shared context (user, CSRF token, notice, labels)."""
    p = auth.current(request)
    kb = _kb(request)
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


def _not_found(message: str = "見つかりません。") -> web.HTTPNotFound:
    page = auth.error_page(404, message)
    return web.HTTPNotFound(text=page.text, content_type="text/html")


def _see_other(path: str, msg: str | None = None) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{PREFIX}{path}" + (f"?msg={msg}" if msg else ""))


def _errors_summary(errors: dict[str, list[str]], labels: dict[str, str]) -> list[str]:
    return [f"{labels.get(f, f)}: {m}" for f, ms in errors.items() for m in ms]


def _remote(request: web.Request) -> str | None:
    return request.remote


# -- static -------------------------------------------------------------------------------


@routes.get("/static/{name}")
@public
async def static(request: web.Request) -> web.Response:
    """``GET /admin/static/{name}``: the admin's CSS and JS (a fixed list of files)."""
    name = request.match_info["name"]
    if name not in _STATIC:
        raise _not_found()
    body = resources.files("bot").joinpath("static", "admin", name).read_bytes()
    return web.Response(
        body=body,
        content_type=_STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


# -- login / logout -----------------------------------------------------------------------


def _login_page(
    request: web.Request, *, message: str = "", name: str = "", status: int = 200
) -> web.Response:
    token = auth.login_csrf_token(request)
    response = render(
        request,
        "login.html",
        {
            "message": message,
            "name": name,
            "next": request.query.get("next", ""),
            "login_csrf": token,
        },
        status=status,
    )
    auth.set_login_csrf_cookie(response, token, request.config_dict[auth.AUTH].policy)
    return response


@routes.get("/login")
@public
async def login_form(request: web.Request) -> web.Response:
    """``GET /admin/login``: the login page (logged-in staff go to the dashboard)."""
    p = auth.current(request)
    if p is not None and p.user.role in STAFF:
        raise _see_other("/")
    return _login_page(request)


@routes.post("/login")
@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/login``: check the password, start a new session (rotated id)."""
    form = await request.post()
    name = str(form.get("name", ""))[:128]
    password = str(form.get("password", ""))
    a = request.config_dict[auth.AUTH]
    result = a.login(name, password, _remote(request))
    if result.user is None:
        return _login_page(request, message=result.message, name=name, status=401)
    raw, _record = a.start_session(result.user, request.cookies.get(auth.SESSION_COOKIE))
    if result.user.role in STAFF:
        target = auth.safe_next(
            request.query.get("next") or str(form.get("next", "")), PREFIX + "/"
        )
    else:
        target = "/console/"  # counselors work in the console, not here
    response = web.HTTPSeeOther(target)
    auth.set_session_cookie(response, raw, a.policy)
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path="/")
    raise response


@routes.post("/logout")
@require_role(*ANY_ROLE)
async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout``: end this browser's session."""
    p = principal_of(request)
    request.config_dict[auth.AUTH].end_session(p, _remote(request))
    response = web.HTTPSeeOther(f"{LOGIN_PATH}?msg=logged_out")
    auth.clear_session_cookie(response)
    raise response


@routes.post("/logout-all")
@require_role(*ANY_ROLE)
async def logout_all(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout-all``: end every session of the account (all devices)."""
    p = principal_of(request)
    request.config_dict[auth.AUTH].end_all_sessions(p.user, _remote(request))
    response = web.HTTPSeeOther(f"{LOGIN_PATH}?msg=logged_out_all")
    auth.clear_session_cookie(response)
    raise response


# -- dashboard ----------------------------------------------------------------------------


@routes.get("/")
@require_role(*STAFF)
async def dashboard(request: web.Request) -> web.Response:
    """``GET /admin/``: counts and the latest changes."""
    kb = _kb(request)
    resources_all = kb.list_resources()
    counts = {
        "resources_active": sum(1 for r in resources_all if r.active),
        "resources_inactive": sum(1 for r in resources_all if not r.active),
        "resources_sample": sum(1 for r in resources_all if r.sample),
        "templates": len(kb.list_templates()),
        "faq": len(kb.list_faq()),
    }
    return render(
        request, "dashboard.html", {"counts": counts, "changes": kb.recent_changes(limit=20)}
    )


# -- resources ----------------------------------------------------------------------------


def _flag(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


@routes.get("/resources")
@require_role(*STAFF)
async def resource_list(request: web.Request) -> web.Response:
    """``GET /admin/resources``: search and filter (kind, coverage, sample, active)."""
    kb = _kb(request)
    q = request.query
    kind = q.get("kind") or None
    coverage = q.get("coverage") or None
    items = kb.list_resources(
        kind=kind if kind in kb.taxonomy.resource_kinds else None,
        active=_flag(q.get("active")),
        sample=_flag(q.get("sample")),
        query=(q.get("q") or "")[:200] or None,
    )
    if coverage in COVERAGES:
        items = [r for r in items if r.coverage == coverage]
    return render(
        request,
        "resources.html",
        {
            "items": items,
            "filters": {k: q.get(k, "") for k in ("q", "kind", "coverage", "sample", "active")},
            "coverages": COVERAGES,
        },
    )


def _resource_page(
    request: web.Request,
    form: ResourceForm,
    *,
    is_new: bool,
    errors: dict[str, list[str]] | None = None,
    trial: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    errors = errors or {}
    return render(
        request,
        "resource_edit.html",
        {
            "form": form.values,
            "is_new": is_new,
            "errors": errors,
            "summary": _errors_summary(errors, RESOURCE_LABELS),
            "labels": RESOURCE_LABELS,
            "coverages": COVERAGES,
            "how_options": [(h, h) for h in HOW_OPTIONS],
            "trial": trial,
            "max_trial": MAX_TRIAL_CHARS,
        },
        status=status,
    )


@routes.get("/resources/new")
@require_role(*STAFF)
async def resource_new(request: web.Request) -> web.Response:
    """``GET /admin/resources/new``: an empty form."""
    return _resource_page(request, ResourceForm.empty(), is_new=True)


@routes.post("/resources/new")
@require_role(*STAFF)
async def resource_create(request: web.Request) -> web.Response:
    """``POST /admin/resources/new``: create (or preview) a resource."""
    return await _resource_post(request, None)


@routes.get("/resources/{id}")
@require_role(*STAFF)
async def resource_edit(request: web.Request) -> web.Response:
    """``GET /admin/resources/{id}``: the edit form."""
    r = _kb(request).get_resource(request.match_info["id"])
    if r is None:
        raise _not_found("その窓口は見つかりません。")
    return _resource_page(request, ResourceForm.from_resource(r), is_new=False)


@routes.post("/resources/{id}")
@require_role(*STAFF)
async def resource_update(request: web.Request) -> web.Response:
    """``POST /admin/resources/{id}``: save, or preview the unsaved edit in a trial."""
    resource_id = request.match_info["id"]
    if _kb(request).get_resource(resource_id) is None:
        raise _not_found("その窓口は見つかりません。")
    return await _resource_post(request, resource_id)


async def _resource_post(request: web.Request, resource_id: str | None) -> web.Response:
    kb = _kb(request)
    p = principal_of(request)
    post = await request.post()
    form = ResourceForm.from_post(post, resource_id)
    is_new = resource_id is None
    if post.get("action") == "preview":
        message = str(post.get("trial_message", "")).strip()
        try:
            edited = parse_resource(form.data(), kb.taxonomy)
        except ValidationError as exc:
            return _resource_page(
                request, form, is_new=is_new, errors=field_errors(exc), status=422
            )
        trial = await _before_after(request, message, kb, kb.with_overrides(resources=[edited]))
        return _resource_page(request, form, is_new=is_new, trial=trial)
    try:
        saved = kb.save_resource(form.data(), actor=p.user.name, create=is_new)
    except ValidationError as exc:
        return _resource_page(request, form, is_new=is_new, errors=field_errors(exc), status=422)
    logger.info("resource saved by user id %d", p.user.id)
    raise _see_other(f"/resources/{saved.id}", "created" if is_new else "saved")


async def _before_after(
    request: web.Request, message: str, before: KnowledgeBase, after: KnowledgeBase
) -> dict[str, Any]:
    if not message:
        return {"message": "", "error": "試すメッセージを入力してください。"}
    config = request.config_dict[keys.CONFIG]
    return {
        "message": message[:MAX_TRIAL_CHARS],
        "before": await run_trial(before, config, message),
        "after": await run_trial(after, config, message),
        "error": "",
    }


@routes.post("/resources/{id}/deactivate")
@require_role(*STAFF)
async def resource_deactivate(request: web.Request) -> web.Response:
    """``POST /admin/resources/{id}/deactivate``: stop referring people to it."""
    kb = _kb(request)
    try:
        kb.deactivate_resource(request.match_info["id"], actor=principal_of(request).user.name)
    except ValidationError as exc:
        raise _not_found(exc.errors[0][1]) from exc
    raise _see_other(f"/resources/{request.match_info['id']}", "deactivated")


# -- templates ----------------------------------------------------------------------------


@routes.get("/templates")
@require_role(*STAFF)
async def template_list(request: web.Request) -> web.Response:
    """``GET /admin/templates``: reply texts, searchable."""
    q = (request.query.get("q") or "")[:200]
    return render(
        request,
        "templates.html",
        {"items": _kb(request).list_templates(q or None), "q": q},
    )


def _template_page(
    request: web.Request,
    values: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    trial: dict[str, Any] | None = None,
) -> web.Response:
    errors = errors or {}
    return render(
        request,
        "template_edit.html",
        {
            "form": values,
            "errors": errors,
            "summary": _errors_summary(errors, TEMPLATE_LABELS),
            "labels": TEMPLATE_LABELS,
            "trial": trial,
            "max_trial": MAX_TRIAL_CHARS,
        },
        status=status,
    )


@routes.get("/templates/{id}")
@require_role(*STAFF)
async def template_edit(request: web.Request) -> web.Response:
    """``GET /admin/templates/{id}``: edit a reply text."""
    t = _kb(request).get_template(request.match_info["id"])
    if t is None:
        raise _not_found("その文面は見つかりません。")
    return _template_page(request, template_values(t))


@routes.post("/templates/{id}")
@require_role(*STAFF)
async def template_update(request: web.Request) -> web.Response:
    """``POST /admin/templates/{id}``: save (compile errors shown) or preview."""
    kb = _kb(request)
    template_id = request.match_info["id"]
    if kb.get_template(template_id) is None:
        raise _not_found("その文面は見つかりません。")
    post = await request.post()
    values = template_data(post, template_id)
    if post.get("action") == "preview":
        from knowledge.validation import parse_template

        try:
            edited = parse_template(values)
        except ValidationError as exc:
            return _template_page(request, values, field_errors(exc), 422)
        message = str(post.get("trial_message", "")).strip()
        trial = await _before_after(request, message, kb, kb.with_overrides(templates=[edited]))
        return _template_page(request, values, trial=trial)
    try:
        kb.save_template(values, actor=principal_of(request).user.name)
    except ValidationError as exc:
        return _template_page(request, values, field_errors(exc), 422)
    raise _see_other(f"/templates/{template_id}", "saved")


# -- FAQ ----------------------------------------------------------------------------------


@routes.get("/faq")
@require_role(*STAFF)
async def faq_list(request: web.Request) -> web.Response:
    """``GET /admin/faq``: FAQ entries, searchable (full text and substring)."""
    q = (request.query.get("q") or "")[:200]
    active = _flag(request.query.get("active"))
    items = _kb(request).list_faq(active=active, query=q or None)
    return render(
        request,
        "faq.html",
        {"items": items, "q": q, "active": request.query.get("active", "")},
    )


def _faq_page(
    request: web.Request,
    values: dict[str, Any],
    *,
    is_new: bool,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> web.Response:
    errors = errors or {}
    return render(
        request,
        "faq_edit.html",
        {
            "form": values,
            "is_new": is_new,
            "errors": errors,
            "summary": _errors_summary(errors, FAQ_LABELS),
            "labels": FAQ_LABELS,
        },
        status=status,
    )


@routes.get("/faq/new")
@require_role(*STAFF)
async def faq_new(request: web.Request) -> web.Response:
    """``GET /admin/faq/new``: an empty FAQ form."""
    values = {"id": "", "questions": "", "answer": "", "topics": [], "active": True}
    return _faq_page(request, values, is_new=True)


@routes.post("/faq/new")
@require_role(*STAFF)
async def faq_create(request: web.Request) -> web.Response:
    """``POST /admin/faq/new``: create a FAQ entry."""
    return await _faq_post(request, None)


@routes.get("/faq/{id}")
@require_role(*STAFF)
async def faq_edit(request: web.Request) -> web.Response:
    """``GET /admin/faq/{id}``: edit a FAQ entry."""
    f = _kb(request).get_faq(request.match_info["id"])
    if f is None:
        raise _not_found("そのFAQは見つかりません。")
    return _faq_page(request, faq_values(f), is_new=False)


@routes.post("/faq/{id}")
@require_role(*STAFF)
async def faq_update(request: web.Request) -> web.Response:
    """``POST /admin/faq/{id}``: save a FAQ entry."""
    if _kb(request).get_faq(request.match_info["id"]) is None:
        raise _not_found("そのFAQは見つかりません。")
    return await _faq_post(request, request.match_info["id"])


async def _faq_post(request: web.Request, faq_id: str | None) -> web.Response:
    kb = _kb(request)
    post = await request.post()
    data = faq_data(post, faq_id)
    values = {**data, "questions": "\n".join(data["questions"])}
    try:
        saved = kb.save_faq(data, actor=principal_of(request).user.name, create=faq_id is None)
    except ValidationError as exc:
        return _faq_page(
            request, values, is_new=faq_id is None, errors=field_errors(exc), status=422
        )
    raise _see_other(f"/faq/{saved.id}", "created" if faq_id is None else "saved")


# -- history ------------------------------------------------------------------------------

_LABELS_BY_ENTITY = {"resource": RESOURCE_LABELS, "template": TEMPLATE_LABELS, "faq": FAQ_LABELS}


@routes.get("/history/{entity}/{id}")
@require_role(*STAFF)
async def history(request: web.Request) -> web.Response:
    """``GET /admin/history/{entity}/{id}``: every revision with a field diff and restore."""
    entity = request.match_info["entity"]
    if entity not in ENTITIES:
        raise _not_found()
    entity_id = request.match_info["id"]
    revisions = _kb(request).history(entity, entity_id)
    if not revisions:
        raise _not_found("履歴がありません。")
    labels = _LABELS_BY_ENTITY[entity]
    items = [(rev, revision_rows(rev, labels)) for rev in revisions]
    return render(
        request,
        "history.html",
        {"entity": entity, "entity_id": entity_id, "items": items},
    )


@routes.post("/revisions/{rev}/restore")
@require_role(*STAFF)
async def restore(request: web.Request) -> web.Response:
    """``POST /admin/revisions/{rev}/restore``: bring back the state after that revision."""
    kb = _kb(request)
    try:
        rev_id = int(request.match_info["rev"])
    except ValueError as exc:
        raise _not_found() from exc
    rev = kb.get_revision(rev_id)
    if rev is None or rev.entity not in ENTITIES:
        raise _not_found("その版は見つかりません。")
    try:
        kb.restore(rev_id, actor=principal_of(request).user.name)
    except ValidationError as exc:
        labels = _LABELS_BY_ENTITY[rev.entity]
        revisions = kb.history(rev.entity, rev.entity_id)
        return render(
            request,
            "history.html",
            {
                "entity": rev.entity,
                "entity_id": rev.entity_id,
                "items": [(r, revision_rows(r, labels)) for r in revisions],
                "summary": [m for _, m in exc.errors],
            },
            status=422,
        )
    raise _see_other(f"/history/{rev.entity}/{rev.entity_id}", "restored")


# -- try a message ------------------------------------------------------------------------


@routes.get("/try")
@require_role(*STAFF)
async def try_form(request: web.Request) -> web.Response:
    """``GET /admin/try``: 「メッセージを試す」."""
    return render(request, "try.html", {"message": "", "result": None, "max": MAX_TRIAL_CHARS})


@routes.post("/try")
@require_role(*STAFF)
async def try_submit(request: web.Request) -> web.Response:
    """``POST /admin/try``: the Understanding and the exact replies (nothing is stored)."""
    post = await request.post()
    message = str(post.get("message", "")).strip()
    if not message:
        return render(
            request,
            "try.html",
            {"message": "", "result": None, "max": MAX_TRIAL_CHARS, "error": "入力してください。"},
            status=422,
        )
    result = await run_trial(_kb(request), request.config_dict[keys.CONFIG], message)
    return render(
        request,
        "try.html",
        {"message": message[:MAX_TRIAL_CHARS], "result": result, "max": MAX_TRIAL_CHARS},
    )


# -- import / export ----------------------------------------------------------------------


@routes.get("/export")
@require_role(*STAFF)
async def export(request: web.Request) -> web.Response:
    """``GET /admin/export``: download everything as a zip of YAML files."""
    body = export_zip(_kb(request).export_bundle())
    stamp = datetime.now(_JST).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=body,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="tsunagu-knowledge-{stamp}.zip"'},
    )


@routes.get("/import")
@require_role(*STAFF)
async def import_form(request: web.Request) -> web.Response:
    """``GET /admin/import``: upload a zip or YAML file."""
    return render(request, "import.html", {"changes": None})


@routes.post("/import")
@require_role(*STAFF)
async def import_upload(request: web.Request) -> web.Response:
    """``POST /admin/import``: validate the upload and show what would change."""
    post = await request.post()
    upload = post.get("file")
    if isinstance(upload, web.FileField):
        filename, data = upload.filename or "", upload.file.read()
    else:
        filename, data = "", b""
    return _import_preview(request, filename, data)


def _import_preview(request: web.Request, filename: str, data: bytes) -> web.Response:
    try:
        bundle = read_upload(filename, data)
    except ValidationError as exc:
        return render(
            request,
            "import.html",
            {"changes": None, "summary": [f"{f}: {m}" for f, m in exc.errors]},
            status=422,
        )
    changes = _kb(request).diff(bundle)
    return render(
        request,
        "import.html",
        {
            "changes": changes,
            "filename": filename,
            "payload": base64.b64encode(data).decode("ascii"),
            "counts": (len(bundle.resources), len(bundle.faq), len(bundle.templates)),
        },
    )


@routes.post("/import/confirm")
@require_role(*STAFF)
async def import_confirm(request: web.Request) -> web.Response:
    """``POST /admin/import/confirm``: import the previewed file (validated again)."""
    post = await request.post()
    try:
        data = base64.b64decode(str(post.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    filename = str(post.get("filename", ""))[:200]
    try:
        bundle = read_upload(filename, data)
    except ValidationError:
        return _import_preview(request, filename, data)
    changes = _kb(request).import_bundle(bundle, actor=principal_of(request).user.name)
    raise _see_other("/import", "imported" if changes else "nothing")


# -- users (admins only) ------------------------------------------------------------------


def _users_page(
    request: web.Request,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    password_errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> web.Response:
    kb = _kb(request)
    store = request.config_dict[keys.SESSIONS]
    return render(
        request,
        "users.html",
        {
            "users": kb.list_users(),
            "role_options": [(r, f"{ROLE_LABELS[r]}（{r}）") for r in ROLES],
            "errors": errors or {},
            "values": values or {"name": "", "role": "staff", "office_id": ""},
            "password_errors": password_errors or {},
            "logins": store.recent_logins(50),
        },
        status=status,
    )


@routes.get("/users")
@require_role("admin")
async def users(request: web.Request) -> web.Response:
    """``GET /admin/users``: accounts and the login log."""
    return _users_page(request)


@routes.post("/users")
@require_role("admin")
async def user_add(request: web.Request) -> web.Response:
    """``POST /admin/users``: add an account (password policy enforced)."""
    post = await request.post()
    name = str(post.get("name", "")).strip()
    role = str(post.get("role", ""))
    office = str(post.get("office_id", "")).strip() or None
    password = str(post.get("password", ""))
    values = {"name": name, "role": role, "office_id": office or ""}
    try:
        auth.check_password_policy(name, password, str(post.get("password_confirm", "")))
        _kb(request).add_user(
            name, role, password, office_id=office, actor=principal_of(request).user.name
        )
    except ValidationError as exc:
        return _users_page(request, errors=field_errors(exc), values=values, status=422)
    raise _see_other("/users", "user_added")


async def _target_user(request: web.Request) -> tuple[KnowledgeBase, Principal, str]:
    kb = _kb(request)
    name = request.match_info["name"]
    if kb.get_user(name) is None:
        raise _not_found("そのユーザーは見つかりません。")
    return kb, principal_of(request), name


@routes.post("/users/{name}/disable")
@require_role("admin")
async def user_disable(request: web.Request) -> web.Response:
    """``POST /admin/users/{name}/disable``: the account can no longer log in."""
    kb, p, name = await _target_user(request)
    try:
        user = kb.disable_user(name, actor=p.user.name)
    except ValidationError as exc:
        return _users_page(request, errors=field_errors(exc), status=422)
    request.config_dict[auth.AUTH].end_all_sessions(user, _remote(request))
    raise _see_other("/users", "user_disabled")


@routes.post("/users/{name}/enable")
@require_role("admin")
async def user_enable(request: web.Request) -> web.Response:
    """``POST /admin/users/{name}/enable``: allow the account to log in again."""
    kb, p, name = await _target_user(request)
    kb.enable_user(name, actor=p.user.name)
    raise _see_other("/users", "user_enabled")


@routes.post("/users/{name}/password")
@require_role("admin")
async def user_password(request: web.Request) -> web.Response:
    """``POST /admin/users/{name}/password``: reset a password; the account's sessions end."""
    kb, p, name = await _target_user(request)
    post = await request.post()
    password = str(post.get("password", ""))
    try:
        auth.check_password_policy(name, password, str(post.get("password_confirm", "")))
        user = kb.set_password(name, password, actor=p.user.name)
    except ValidationError as exc:
        errors = {name: [m for _, m in exc.errors]}
        return _users_page(request, password_errors=errors, status=422)
    a = request.config_dict[auth.AUTH]
    a.unlock(name)
    a.end_all_sessions(user, _remote(request))
    if user.id == p.user.id:
        response = web.HTTPSeeOther(f"{LOGIN_PATH}?msg=password_set")
        auth.clear_session_cookie(response)
        raise response
    raise _see_other("/users", "password_set")


# -- setup --------------------------------------------------------------------------------


async def _first_run_hint(app: web.Application) -> None:
    kb = app[keys.KB]
    if not kb.has_admin():
        logger.warning(
            "no admin account yet; create one with: "
            "tsunagu user add NAME --role admin --password-stdin"
        )


async def _to_index(request: web.Request) -> web.StreamResponse:
    """``GET /admin`` → ``/admin/``."""
    raise web.HTTPMovedPermanently(PREFIX + "/")


def create_admin_app() -> web.Application:
    """The ``/admin`` sub-app with its routes, templates and middlewares."""
    admin = web.Application(middlewares=auth.middlewares(LOGIN_PATH))
    aiohttp_jinja2.setup(
        admin,
        app_key=TEMPLATES,
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    admin.add_routes(routes)
    return admin


def setup(app: web.Application) -> None:
    """Mount ``/admin`` (after ``bot.core``; opens the session store via ``bot.web.auth``).

    Other features add pages to the admin by defining ``extend_admin(sub)`` in their
    module (listed in ``bot.app.FEATURES``): it receives the admin sub-app before it is
    mounted (a mounted sub-app's router is frozen). Their routes go through the same
    middlewares, so each must declare its roles with :func:`bot.web.auth.require_role`.
    """
    from bot.app import FEATURES

    auth.setup(app)
    sub = create_admin_app()
    for name in FEATURES:
        if name == __name__:
            continue
        extend = getattr(importlib.import_module(name), "extend_admin", None)
        if extend is not None:
            extend(sub)
    app.router.add_get(PREFIX, _to_index)
    app.add_subapp(PREFIX, sub)
    app.on_startup.append(_first_run_hint)
