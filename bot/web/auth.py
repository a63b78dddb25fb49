"""Staff authentication for /admin and /console: sessions, CSRF, throttling and role checks.

Every route of a protected sub-app must declare who may use it, with :func:`require_role`
or :func:`public`; the middleware refuses a route that declares nothing (fail closed).

Reuse for another sub-app (e.g. the console)::

    auth.setup(app)                              # once, on the main app
    sub.middlewares.extend(auth.middlewares("/console/login"))

    @routes.get("/")
    @auth.require_role("counselor", "admin")
    async def index(request): principal = auth.current(request) ...
"""

from __future__ import annotations

import functools
import html
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot import keys
from bot.web.security import Handler, Middleware, new_token, security_headers, tokens_equal
from knowledge.base import KnowledgeBase
from knowledge.models import User
from knowledge.sessions import SessionRecord, SessionStore
from knowledge.validation import ValidationError

logger = logging.getLogger(__name__)

SESSION_COOKIE = "tsunagu_session"
LOGIN_CSRF_COOKIE = "tsunagu_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_TOUCH_EVERY = 60.0  # seconds; a session is not rewritten on every request
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ROLES_ATTR = "__tsunagu_roles__"
PUBLIC_ATTR = "__tsunagu_public__"

LOCKED_MESSAGE = (
    "ログインに続けて失敗したため、しばらくログインできないようにしています。"
    "15分ほどたってから、もう一度お試しください。"
)
FAILED_MESSAGE = "ユーザー名かパスワードが違います。"
CSRF_MESSAGE = (
    "画面の有効期限が切れたか、正しくない送信でした。"
    "ページを読み込み直して、もう一度お試しください。"
)
FORBIDDEN_MESSAGE = "このページを使う権限がありません。"


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Session lifetimes and login throttling thresholds."""

    idle_seconds: float = 30 * 60
    absolute_seconds: float = 12 * 3600
    # Failed logins within the window that lock an account name / a client address.
    max_user_failures: int = 5
    max_ip_failures: int = 20
    window_seconds: float = 15 * 60
    secure_cookies: bool = False


@dataclass(frozen=True, slots=True)
class Principal:
    """The logged-in staff member of a request."""

    user: User
    session: SessionRecord

    @property
    def csrf_token(self) -> str:
        """The per-session CSRF token to put in forms."""
        return self.session.csrf_token


@dataclass(frozen=True, slots=True)
class LoginResult:
    """Outcome of a login attempt: the user, or a message for the login page."""

    user: User | None
    message: str = ""
    locked: bool = False


class PasswordPolicyError(ValidationError):
    """A password set from the web breaks the policy."""


def check_password_policy(name: str, password: str, confirm: str | None = None) -> None:
    """Passwords set from the web: 10+ characters, not the user name, typed twice the same.

    Raises:
        PasswordPolicyError: with Japanese messages for the form.
    """
    from knowledge.accounts import check_password

    errors: list[tuple[str, str]] = []
    try:
        check_password(password)
    except ValidationError as exc:
        errors += exc.errors
    if name and name.lower() in password.lower():
        errors.append(("password", "パスワードにユーザー名を含めないでください。"))
    if confirm is not None and confirm != password:
        errors.append(("password_confirm", "確認のパスワードが一致しません。"))
    if errors:
        raise PasswordPolicyError(errors)


class Auth:
    """Sessions and logins over a :class:`SessionStore` and the knowledge base's accounts."""

    def __init__(
        self,
        store: SessionStore,
        kb: KnowledgeBase,
        policy: AuthPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the auth service (one per application).

        Args:
            store: session, throttling and audit storage.
            kb: where accounts live.
            policy: lifetimes and thresholds.
            clock: time source (tests move it forward).
        """
        self.store = store
        self.kb = kb
        self.policy = policy or AuthPolicy()
        self.clock = clock

    # -- sessions -----------------------------------------------------------------------

    def principal(self, raw_session: str | None) -> Principal | None:
        """The valid session behind a cookie value, or None (expired ones are deleted)."""
        if not raw_session or len(raw_session) > 128:
            return None
        record = self.store.get(raw_session)
        if record is None:
            return None
        now = self.clock()
        p = self.policy
        if now - record.last_seen > p.idle_seconds or now - record.created_at > p.absolute_seconds:
            self.store.delete(record.id_hash)
            return None
        user = self.kb.get_user_by_id(record.user_id)
        if user is None or user.disabled:
            self.store.delete(record.id_hash)
            return None
        if now - record.last_seen > _TOUCH_EVERY:
            self.store.touch(record.id_hash, now)
        return Principal(user, record)

    def start_session(self, user: User, old_raw: str | None = None) -> tuple[str, SessionRecord]:
        """A new session for a user who just logged in; any previous one is dropped (rotation)."""
        if old_raw:
            old = self.store.get(old_raw)
            if old is not None:
                self.store.delete(old.id_hash)
        self.store.purge(self.policy.idle_seconds, self.policy.absolute_seconds, self.clock())
        return self.store.create(user.id, self.clock())

    def end_session(self, principal: Principal, remote: str | None = None) -> None:
        """Log out of this browser."""
        self.store.delete(principal.session.id_hash)
        self.store.audit(principal.user.name, "logout", remote, self.clock())

    def end_all_sessions(self, user: User, remote: str | None = None) -> int:
        """Log an account out everywhere (also used after a password reset or disabling)."""
        count = self.store.delete_for_user(user.id)
        self.store.audit(user.name, "logout_all", remote, self.clock())
        return count

    # -- logins -------------------------------------------------------------------------

    def locked(self, name: str, remote: str | None) -> bool:
        """Whether logins for this name or from this address are paused."""
        p = self.policy
        since = self.clock() - p.window_seconds
        if self.store.failures(_user_key(name), since)[0] >= p.max_user_failures:
            return True
        return bool(remote) and self.store.failures(f"ip:{remote}", since)[0] >= p.max_ip_failures

    def login(self, name: str, password: str, remote: str | None) -> LoginResult:
        """Check a name and password, with throttling and an audit record.

        Unknown names are throttled like known ones, so the lockout does not reveal which
        accounts exist.
        """
        name = name.strip()
        now = self.clock()
        if not name or not password or len(password) > 1024 or len(name) > 128:
            return LoginResult(None, FAILED_MESSAGE)
        if self.locked(name, remote):
            self.store.audit(name, "locked", remote, now)
            logger.warning("login refused: too many failures")
            return LoginResult(None, LOCKED_MESSAGE, locked=True)
        user = self.kb.verify_password(name, password)
        if user is None:
            self.store.add_failure(_user_key(name), now)
            if remote:
                self.store.add_failure(f"ip:{remote}", now)
            self.store.audit(name, "failure", remote, now)
            self.store.purge_failures(now - 24 * 3600)
            if self.locked(name, remote):
                return LoginResult(None, LOCKED_MESSAGE, locked=True)
            return LoginResult(None, FAILED_MESSAGE)
        self.store.clear_failures(_user_key(name))
        self.store.audit(user.name, "login", remote, now)
        logger.info("login of user id %d", user.id)
        return LoginResult(user)

    def unlock(self, name: str) -> None:
        """Clear the failed-login counter of an account (after an admin resets it)."""
        self.store.clear_failures(_user_key(name))


def _user_key(name: str) -> str:
    return f"user:{name.strip().lower()}"


AUTH = web.AppKey("auth", Auth)
_PRINCIPAL = web.RequestKey("principal", Principal)


# -- cookies ------------------------------------------------------------------------------


def set_session_cookie(response: web.StreamResponse, raw: str, policy: AuthPolicy) -> None:
    """Put the session id in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS)."""
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=policy.secure_cookies,
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    """Remove the session cookie from the browser."""
    response.del_cookie(SESSION_COOKIE, path="/")


def login_csrf_token(request: web.Request) -> str:
    """The CSRF token of the login form: the browser's current one, or a new one.

    There is no session before login, so the token is a double-submit cookie; set it on
    the response with :func:`set_login_csrf_cookie`.
    """
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not 32 <= len(token) <= 64:
        token = new_token()
    return token


def set_login_csrf_cookie(response: web.StreamResponse, token: str, policy: AuthPolicy) -> None:
    """Send the login form's CSRF token as a strict, HttpOnly cookie."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=policy.secure_cookies,
    )


# -- access to the request's user -----------------------------------------------------------


def current(request: web.Request) -> Principal | None:
    """The logged-in staff member of the request (set by the middleware)."""
    return request.get(_PRINCIPAL)


def principal_of(request: web.Request) -> Principal:
    """The logged-in staff member; only call from routes under :func:`require_role`."""
    p = current(request)
    if p is None:
        raise web.HTTPUnauthorized()
    return p


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Decorate a route handler so only logged-in users with one of ``roles`` reach it.

    Anonymous → redirect to the login page (pages) or 401 JSON (``/api/`` paths);
    a wrong role → 403. The declared roles are also read by the middleware, which
    refuses routes without any declaration.
    """
    if not roles:
        raise ValueError("require_role needs at least one role")
    allowed = frozenset(roles)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            p = current(request)
            if p is None:
                raise web.HTTPUnauthorized()
            if p.user.role not in allowed:
                raise web.HTTPForbidden()
            return await handler(request)

        setattr(wrapper, ROLES_ATTR, allowed)
        return wrapper

    return decorate


def public(handler: Handler) -> Handler:
    """Mark a route that anyone may use (the login page, static files)."""
    setattr(handler, PUBLIC_ATTR, True)
    return handler


def route_roles(handler: Any) -> frozenset[str] | None:
    """The roles a route handler declares; ``frozenset()`` for public, None if undeclared."""
    if getattr(handler, PUBLIC_ATTR, False):
        return frozenset()
    roles = getattr(handler, ROLES_ATTR, None)
    return roles if isinstance(roles, frozenset) else None


# -- middleware ---------------------------------------------------------------------------


def _wants_json(request: web.Request) -> bool:
    return "/api/" in request.path or "application/json" in request.headers.get("Accept", "")


def error_page(status: int, message: str) -> web.Response:
    """A minimal Japanese error page (no template, so every sub-app can use it)."""
    body = (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>エラー {status}</title></head><body><main>"
        f'<h1>エラー（{status}）</h1><p role="alert">{html.escape(message)}</p>'
        '<p><a href="/admin/">管理画面のトップへ</a></p></main></body></html>'
    )
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")


def _refuse(request: web.Request, status: int, message: str, code: str) -> web.Response:
    if _wants_json(request):
        return web.json_response({"error": code, "message": message}, status=status)
    return error_page(status, message)


async def _csrf_ok(request: web.Request, expected: str) -> bool:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return tokens_equal(header, expected)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return isinstance(value, str) and tokens_equal(value, expected)
    return False


def auth_middleware(login_path: str) -> Middleware:
    """The middleware that loads the session, checks CSRF and enforces route declarations.

    Args:
        login_path: where anonymous visitors of pages are sent, e.g. ``/admin/login``.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        auth = request.config_dict[AUTH]
        principal = auth.principal(request.cookies.get(SESSION_COOKIE))
        request[_PRINCIPAL] = principal
        match = request.match_info
        if match.http_exception is not None:
            return await handler(request)  # 404 / 405 from the router
        roles = route_roles(match.handler)
        if roles is None:
            logger.error("route %s declares no roles; refused", request.path)
            return _refuse(request, 403, FORBIDDEN_MESSAGE, "forbidden")
        if roles and principal is None:
            return _unauthenticated(request, login_path)
        if roles and principal is not None and principal.user.role not in roles:
            return _refuse(request, 403, FORBIDDEN_MESSAGE, "forbidden")
        if request.method not in _SAFE_METHODS:
            if principal is not None:
                expected = principal.csrf_token
            else:
                expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
            try:
                ok = await _csrf_ok(request, expected)
            except web.HTTPRequestEntityTooLarge:
                return _refuse(
                    request, 413, "送信されたデータが大きすぎます。", "request_too_large"
                )
            if not ok:
                logger.warning("CSRF check failed on %s", request.path)
                return _refuse(request, 403, CSRF_MESSAGE, "csrf")
        try:
            response = await handler(request)
        except web.HTTPUnauthorized:
            return _unauthenticated(request, login_path)
        except web.HTTPForbidden:
            return _refuse(request, 403, FORBIDDEN_MESSAGE, "forbidden")
        if principal is None and request.cookies.get(SESSION_COOKIE) and roles:
            clear_session_cookie(response)
        return response

    return middleware


def _unauthenticated(request: web.Request, login_path: str) -> web.Response:
    if _wants_json(request):
        response = web.json_response(
            {"error": "unauthenticated", "message": "ログインしてください。"}, status=401
        )
    else:
        target = request.path_qs if request.method == "GET" else ""
        location = login_path + (f"?next={quote(target, safe='')}" if target else "")
        response = web.Response(status=303, headers={"Location": location})
    if request.cookies.get(SESSION_COOKIE):
        clear_session_cookie(response)
    return response


def middlewares(login_path: str) -> list[Middleware]:
    """Security headers then auth, for a staff sub-app (``/admin``, ``/console``)."""
    return [security_headers(), auth_middleware(login_path)]


def safe_next(value: str | None, prefix: str) -> str:
    """A post-login redirect target: a local path under ``prefix`` only (no open redirect)."""
    if not value or not value.startswith(prefix) or value.startswith("//") or "\\" in value:
        return prefix
    if any(ord(ch) < 0x20 for ch in value):
        return prefix
    return value


# -- lifecycle ----------------------------------------------------------------------------


async def _open(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    store = SessionStore.open(app[keys.DB])
    policy = AuthPolicy(secure_cookies=config.https)
    store.purge(policy.idle_seconds, policy.absolute_seconds)
    app[keys.SESSIONS] = store
    app[AUTH] = Auth(store, app[keys.KB], policy)
    yield


_SET_UP = web.AppKey("auth_set_up", bool)


def setup(app: web.Application) -> None:
    """Open the session store after ``bot.core`` (idempotent: admin and console both call it)."""
    if app.get(_SET_UP):
        return
    app[_SET_UP] = True
    app.cleanup_ctx.append(_open)
