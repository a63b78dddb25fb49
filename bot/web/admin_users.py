"""Admin pages for staff accounts (admins only): add, disable, enable, reset passwords."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.web import auth
from bot.web.admin_base import LOGIN_PATH, ROLE_LABELS, kb_of, not_found, render, see_other
from bot.web.auth import Principal, principal_of, require_role
from bot.web.forms import field_errors
from knowledge.base import KnowledgeBase
from knowledge.models import ROLES
from knowledge.validation import ValidationError

routes = web.RouteTableDef()


def _users_page(
    request: web.Request,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    password_errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> web.Response:
    kb = kb_of(request)
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
        kb_of(request).add_user(
            name, role, password, office_id=office, actor=principal_of(request).user.name
        )
    except ValidationError as exc:
        return _users_page(request, errors=field_errors(exc), values=values, status=422)
    raise see_other("/users", "user_added")


async def _target_user(request: web.Request) -> tuple[KnowledgeBase, Principal, str]:
    kb = kb_of(request)
    name = request.match_info["name"]
    if kb.get_user(name) is None:
        raise not_found("そのユーザーは見つかりません。")
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
    request.config_dict[auth.AUTH].end_all_sessions(user, request.remote)
    raise see_other("/users", "user_disabled")


@routes.post("/users/{name}/enable")
@require_role("admin")
async def user_enable(request: web.Request) -> web.Response:
    """``POST /admin/users/{name}/enable``: allow the account to log in again."""
    kb, p, name = await _target_user(request)
    kb.enable_user(name, actor=p.user.name)
    raise see_other("/users", "user_enabled")


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
    a.end_all_sessions(user, request.remote)
    if user.id == p.user.id:
        response = web.HTTPSeeOther(f"{LOGIN_PATH}?msg=password_set")
        auth.clear_session_cookie(response)
        raise response
    raise see_other("/users", "password_set")
