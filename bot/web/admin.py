"""The staff web admin at ``/admin``: the sub-app, login, the dashboard and the page modules.

The pages live in ``bot.web.admin_*`` modules (resources, templates, FAQ, history, trials,
import/export, users), each with its own route table; ``bot.web.admin_base`` holds what
they share (and ``bot.web.staff`` what the admin shares with the console).
"""

from __future__ import annotations

import importlib
import logging

from aiohttp import web

from bot import keys
from bot.web import (
    admin_bundles,
    admin_faq,
    admin_history,
    admin_resources,
    admin_templates,
    admin_try,
    admin_users,
    auth,
    staff,
)
from bot.web.admin_base import (
    ANY_ROLE,
    LOGIN_PATH,
    PREFIX,
    STAFF,
    TEMPLATES,
    kb_of,
    not_found,
    render,
    see_other,
)
from bot.web.auth import public, require_role

__all__ = ["LOGIN_PATH", "PREFIX", "TEMPLATES", "create_admin_app", "render", "setup"]

logger = logging.getLogger(__name__)

_STATIC = {"admin.css": "text/css", "admin.js": "text/javascript"}
# Route tables of the page modules, in the order they are added.
_PAGES = (
    admin_resources,
    admin_templates,
    admin_faq,
    admin_history,
    admin_try,
    admin_bundles,
    admin_users,
)

routes = web.RouteTableDef()


# -- static -----------------------------------------------------------------------------------


@routes.get("/static/{name}")
@public
async def static(request: web.Request) -> web.Response:
    """``GET /admin/static/{name}``: the admin's CSS and JS (a fixed list of files)."""
    response = staff.static_file("admin", _STATIC, request.match_info["name"])
    if response is None:
        raise not_found()
    return response


# -- login / logout ---------------------------------------------------------------------------


def _login_page(
    request: web.Request, *, message: str = "", name: str = "", status: int = 200
) -> web.Response:
    def page(context: dict[str, object], status: int) -> web.Response:
        context["next"] = request.query.get("next", "")
        return render(request, "login.html", context, status=status)

    return staff.login_page(request, page, message=message, name=name, status=status)


@routes.get("/login")
@public
async def login_form(request: web.Request) -> web.Response:
    """``GET /admin/login``: the login page (logged-in staff go to the dashboard)."""
    p = auth.current(request)
    if p is not None and p.user.role in STAFF:
        raise see_other("/")
    return _login_page(request)


@routes.post("/login")
@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/login``: check the password, start a new session (rotated id)."""
    form, name, result = await staff.check_login(request)
    if result.user is None:
        return _login_page(request, message=result.message, name=name, status=401)
    if result.user.role in STAFF:
        target = auth.safe_next(
            request.query.get("next") or str(form.get("next", "")), PREFIX + "/"
        )
    else:
        target = "/console/"  # counselors work in the console, not here
    raise staff.session_started(request, result, target)


@routes.post("/logout")
@require_role(*ANY_ROLE)
async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout``: end this browser's session."""
    raise staff.signed_out(request, LOGIN_PATH, "logged_out")


@routes.post("/logout-all")
@require_role(*ANY_ROLE)
async def logout_all(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout-all``: end every session of the account (all devices)."""
    raise staff.signed_out(request, LOGIN_PATH, "logged_out_all", everywhere=True)


# -- dashboard --------------------------------------------------------------------------------


@routes.get("/")
@require_role(*STAFF)
async def dashboard(request: web.Request) -> web.Response:
    """``GET /admin/``: counts and the latest changes."""
    kb = kb_of(request)
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


# -- setup ------------------------------------------------------------------------------------


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
    staff.setup_templates(admin, TEMPLATES)
    admin.add_routes(routes)
    for module in _PAGES:
        admin.add_routes(module.routes)
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
