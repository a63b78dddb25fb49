"""What the staff sub-apps (``/admin``, ``/console``) share: templates, static files, login."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bot.web import auth
from bot.web.auth import LoginResult, principal_of

# Served by both sub-apps' static routes, from bot/static/staff/ (same origin, so the
# staff pages' CSP allows it).
SHARED_STATIC = {"staff.css": "text/css"}


def setup_templates(
    sub: web.Application, key: web.AppKey[jinja2.Environment]
) -> jinja2.Environment:
    """Jinja2 for a staff sub-app: the package's templates, autoescaped, strict undefined."""
    return aiohttp_jinja2.setup(
        sub,
        app_key=key,
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def static_file(folder: str, files: Mapping[str, str], name: str) -> web.Response | None:
    """A file from a fixed list: ``files`` in ``bot/static/<folder>/`` or the shared ones.

    Args:
        folder: The sub-app's own folder under ``bot/static``.
        files: Its own file names and their content types.
        name: The requested name.

    Returns:
        The response, or None when the name is on neither list.
    """
    if name in files:
        content_type = files[name]
    elif name in SHARED_STATIC:
        folder, content_type = "staff", SHARED_STATIC[name]
    else:
        return None
    body = resources.files("bot").joinpath("static", folder, name).read_bytes()
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8" if content_type.startswith("text/") else None,
        headers={"Cache-Control": "no-cache"},
    )


def login_page(
    request: web.Request,
    render: Callable[[dict[str, Any], int], web.Response],
    *,
    message: str = "",
    name: str = "",
    status: int = 200,
) -> web.Response:
    """The login form with a fresh login CSRF token (also set as a cookie).

    Args:
        request: The request.
        render: Renders the sub-app's login template with a context and a status.
        message: An error or notice to show.
        name: The user name typed before, shown again.
        status: The HTTP status.
    """
    token = auth.login_csrf_token(request)
    response = render({"message": message, "name": name, "login_csrf": token}, status)
    auth.set_login_csrf_cookie(response, token, request.config_dict[auth.AUTH].policy)
    return response


async def check_login(request: web.Request) -> tuple[MultiDictProxy[Any], str, LoginResult]:
    """Read the posted login form and check the password (throttled by ``bot.web.auth``).

    Returns:
        The form, the (shortened) user name and the result of the check.
    """
    form = await request.post()
    name = str(form.get("name", ""))[:128]
    password = str(form.get("password", ""))
    return form, name, request.config_dict[auth.AUTH].login(name, password, request.remote)


def session_started(request: web.Request, result: LoginResult, target: str) -> web.HTTPSeeOther:
    """Start a session for a checked login (new id) and redirect to ``target``."""
    assert result.user is not None
    a = request.config_dict[auth.AUTH]
    raw, _ = a.start_session(result.user, request.cookies.get(auth.SESSION_COOKIE))
    response = web.HTTPSeeOther(target)
    auth.set_session_cookie(response, raw, a.policy)
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path="/")
    return response


def signed_out(
    request: web.Request, login_path: str, msg: str, *, everywhere: bool = False
) -> web.HTTPSeeOther:
    """End this session (or every session of the account) and redirect to the login page.

    Args:
        request: The logged-in request.
        login_path: The sub-app's login page.
        msg: The notice key the login page shows.
        everywhere: End the account's sessions on all devices.
    """
    p = principal_of(request)
    a = request.config_dict[auth.AUTH]
    if everywhere:
        a.end_all_sessions(p.user, request.remote)
    else:
        a.end_session(p, request.remote)
    response = web.HTTPSeeOther(f"{login_path}?msg={msg}")
    auth.clear_session_cookie(response)
    return response
