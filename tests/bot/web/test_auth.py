"""Staff auth: sessions, expiry, rotation, CSRF, throttling, headers, route × role matrix."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.web import auth
from bot.web.admin import create_admin_app
from knowledge.sessions import hash_id
from tests.bot.web.conftest import PASSWORDS, Staff, csrf_of

JSON = {"Accept": "application/json"}


def _auth(staff: Staff) -> auth.Auth:
    return staff.app[auth.AUTH]


class Clock:
    """A settable clock for the auth service."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# -- sessions -------------------------------------------------------------------------------


async def test_login_sets_a_hardened_cookie_and_stores_only_a_hash(staff: Staff) -> None:
    page = await staff.client.get("/admin/login")
    token = csrf_of(await page.text())
    resp = await staff.client.post(
        "/admin/login",
        data={"name": "alice", "password": PASSWORDS["alice"], "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/admin/"
    set_cookie = next(v for v in resp.headers.getall("Set-Cookie") if "tsunagu_session=" in v)
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert "Path=/" in set_cookie
    assert "Secure" not in set_cookie  # served over plain HTTP here
    raw = staff.session_cookie()
    assert raw and len(raw) >= 40
    rows = staff.app[keys.SESSIONS].db.execute("SELECT id_hash FROM web_sessions").fetchall()
    assert [r[0] for r in rows] == [hash_id(raw)]
    assert raw.encode() not in staff.db_path.read_bytes()
    dash = await staff.client.get("/admin/")
    assert dash.status == 200
    assert "alice" in await dash.text()


async def test_secure_flag_when_served_over_https(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    config = load_config(
        env={"TSUNAGU_SECRET": "s", "TSUNAGU_HTTPS": "1"}, db_path=tmp_path / "t.db"
    )
    app = create_app(config)
    client = await aiohttp_client(app)
    app[keys.KB].add_user("alice", "admin", PASSWORDS["alice"])
    page = await client.get("/admin/login")
    assert "Secure" in page.headers["Set-Cookie"]  # the login CSRF cookie
    token = csrf_of(await page.text())
    # The browser would send the Secure cookie over HTTPS; send it by hand here.
    resp = await client.post(
        "/admin/login",
        data={"name": "alice", "password": PASSWORDS["alice"], "csrf_token": token},
        headers={"Cookie": f"{auth.LOGIN_CSRF_COOKIE}={token}"},
        allow_redirects=False,
    )
    assert resp.status == 303
    set_cookie = next(v for v in resp.headers.getall("Set-Cookie") if "tsunagu_session=" in v)
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie


async def test_login_rotates_the_session_id(staff: Staff) -> None:
    await staff.login("sam")
    first = staff.session_cookie()
    await staff.login("sam")
    second = staff.session_cookie()
    assert first and second and first != second
    # The old id no longer works, even when presented again.
    assert _auth(staff).principal(first) is None
    assert _auth(staff).principal(second) is not None


async def test_idle_and_absolute_expiry(staff: Staff) -> None:
    clock = Clock()
    a = _auth(staff)
    a.clock = clock
    user = staff.app[keys.KB].get_user("sam")
    assert user is not None
    raw, _ = a.start_session(user)
    # Active every 20 minutes: the idle timeout (30 min) never hits ...
    for _ in range(30):
        clock.now += 20 * 60
        assert a.principal(raw) is not None
    # ... but the absolute lifetime (12 h) does.
    clock.now += 20 * 60 * 7
    assert a.principal(raw) is None
    raw2, _ = a.start_session(user)
    clock.now += 31 * 60
    assert a.principal(raw2) is None
    assert staff.app[keys.SESSIONS].get(raw2) is None  # expired sessions are deleted


async def test_expired_session_redirects_to_login_and_clears_cookie(staff: Staff) -> None:
    await staff.login("sam")
    clock = Clock(start=staff.app[keys.SESSIONS].get(staff.session_cookie() or "").last_seen)
    _auth(staff).clock = clock
    clock.now += 31 * 60
    resp = await staff.client.get("/admin/resources", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/admin/login?next=")
    assert any(
        "tsunagu_session=" in v and "Max-Age=0" in v for v in resp.headers.getall("Set-Cookie")
    )


async def test_logout_and_logout_everywhere(staff: Staff) -> None:
    await staff.login("sam")
    raw = staff.session_cookie()
    resp = await staff.post_form("/admin/logout")
    assert resp.status == 303
    assert _auth(staff).principal(raw) is None
    # Two browsers of the same person, then 「すべての端末からログアウト」 in one of them.
    a = _auth(staff)
    user = staff.app[keys.KB].get_user("sam")
    assert user is not None
    other, _ = a.start_session(user)
    await staff.login("sam")
    resp = await staff.post_form("/admin/logout-all")
    assert resp.status == 303
    assert a.principal(other) is None
    assert staff.app[keys.SESSIONS].count_for_user(user.id) == 0
    assert (await staff.client.get("/admin/", allow_redirects=False)).status == 303


async def test_disabled_account_loses_its_sessions(staff: Staff) -> None:
    await staff.login("sam")
    sam_cookie = staff.session_cookie()
    staff.logout_local()
    await staff.login("alice")
    resp = await staff.post_form("/admin/users/sam/disable")
    assert resp.status == 303
    assert _auth(staff).principal(sam_cookie) is None
    staff.logout_local()
    page = await staff.client.get("/admin/login")
    resp = await staff.client.post(
        "/admin/login",
        data={
            "name": "sam",
            "password": PASSWORDS["sam"],
            "csrf_token": csrf_of(await page.text()),
        },
    )
    assert resp.status == 401


async def test_post_login_redirect_is_local_only(staff: Staff) -> None:
    for target, expected in [
        ("/admin/faq", "/admin/faq"),
        ("//evil.example/admin/", "/admin/"),
        ("https://evil.example/", "/admin/"),
        ("/admin/\\evil", "/admin/"),
        ("/console/", "/admin/"),
    ]:
        staff.logout_local()
        page = await staff.client.get("/admin/login")
        resp = await staff.client.post(
            "/admin/login",
            params={"next": target},
            data={
                "name": "sam",
                "password": PASSWORDS["sam"],
                "csrf_token": csrf_of(await page.text()),
            },
            allow_redirects=False,
        )
        assert resp.headers["Location"] == expected, target


async def test_counselor_is_sent_to_the_console(staff: Staff) -> None:
    page = await staff.client.get("/admin/login")
    resp = await staff.client.post(
        "/admin/login",
        data={
            "name": "carol",
            "password": PASSWORDS["carol"],
            "csrf_token": csrf_of(await page.text()),
        },
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/console/"


# -- CSRF -----------------------------------------------------------------------------------


async def test_csrf_is_required_on_every_state_change(staff: Staff) -> None:
    csrf = await staff.login("alice")
    kb = staff.app[keys.KB]
    before = kb.get_resource("yorisoi_hotline")
    form = {"name": "changed", "csrf_token": ""}
    for token in ("", "wrong", csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
        form["csrf_token"] = token
        resp = await staff.client.post("/admin/resources/yorisoi_hotline/deactivate", data=form)
        assert resp.status == 403
        assert "有効期限" in await resp.text()
    assert kb.get_resource("yorisoi_hotline") == before
    # A JSON body without the header is refused too.
    resp = await staff.client.post("/admin/resources/yorisoi_hotline/deactivate", json={})
    assert resp.status == 403
    # The header works for scripts.
    resp = await staff.client.post(
        "/admin/resources/yorisoi_hotline/deactivate",
        headers={auth.CSRF_HEADER: csrf},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert not kb.get_resource("yorisoi_hotline").active  # type: ignore[union-attr]


async def test_csrf_token_of_another_session_is_refused(staff: Staff) -> None:
    other = await staff.login("sam")
    staff.logout_local()
    await staff.login("alice")
    resp = await staff.client.post(
        "/admin/resources/yorisoi_hotline/deactivate", data={"csrf_token": other}
    )
    assert resp.status == 403


async def test_login_form_needs_its_csrf_cookie(staff: Staff) -> None:
    page = await staff.client.get("/admin/login")
    token = csrf_of(await page.text())
    staff.logout_local()  # a cross-site form has no cookie
    resp = await staff.client.post(
        "/admin/login",
        data={"name": "alice", "password": PASSWORDS["alice"], "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert staff.session_cookie() is None


# -- throttling -----------------------------------------------------------------------------


async def _try_login(staff: Staff, name: str, password: str) -> tuple[int, str]:
    page = await staff.client.get("/admin/login")
    resp = await staff.client.post(
        "/admin/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(await page.text())},
        allow_redirects=False,
    )
    return resp.status, await resp.text()


async def test_lockout_per_account_with_a_clear_message(staff: Staff) -> None:
    clock = Clock()
    _auth(staff).clock = clock
    for _ in range(5):
        status, text = await _try_login(staff, "sam", "wrong-password-x")
        assert status == 401
    assert auth.LOCKED_MESSAGE in text
    # Even the right password is refused while locked; other accounts are not affected.
    status, text = await _try_login(staff, "sam", PASSWORDS["sam"])
    assert status == 401 and auth.LOCKED_MESSAGE in text
    status, _ = await _try_login(staff, "alice", PASSWORDS["alice"])
    assert status == 303
    staff.logout_local()
    clock.now += 16 * 60
    status, _ = await _try_login(staff, "sam", PASSWORDS["sam"])
    assert status == 303
    events = [e.event for e in staff.app[keys.SESSIONS].recent_logins()]
    assert events.count("failure") == 5 and "locked" in events and events.count("login") == 2


async def test_unknown_names_are_throttled_like_known_ones(staff: Staff) -> None:
    _auth(staff).clock = Clock()
    texts = [(await _try_login(staff, "nobody", "whatever-pass"))[1] for _ in range(5)]
    assert auth.FAILED_MESSAGE in texts[0]
    assert auth.LOCKED_MESSAGE in texts[-1]


async def test_lockout_per_address(staff: Staff) -> None:
    _auth(staff).clock = Clock()
    for i in range(20):  # a different name each time: only the address adds up
        await _try_login(staff, f"guess{i}", "wrong-password-x")
    status, text = await _try_login(staff, "alice", PASSWORDS["alice"])
    assert status == 401 and auth.LOCKED_MESSAGE in text


async def test_audit_never_holds_passwords(staff: Staff) -> None:
    await _try_login(staff, "sam", "my-secret-typo-123")
    await staff.login("sam")
    log = staff.app[keys.SESSIONS].recent_logins()
    assert [e.event for e in log[:2]] == ["login", "failure"]
    assert all(e.user_name == "sam" for e in log[:2])
    data = staff.db_path.read_bytes() + (staff.db_path.with_suffix(".db-wal")).read_bytes()
    assert b"my-secret-typo-123" not in data
    assert PASSWORDS["sam"].encode() not in data


# -- password policy -----------------------------------------------------------------------


def test_password_policy() -> None:
    auth.check_password_policy("alice", "long-enough-pass", "long-enough-pass")
    for name, password, confirm, field in [
        ("alice", "short", "short", "password"),
        ("alice", "xx-alice-xx-yy", "xx-alice-xx-yy", "password"),
        ("alice", "ALICE123456789", "ALICE123456789", "password"),
        ("alice", "long-enough-pass", "long-enough-pasz", "password_confirm"),
    ]:
        with pytest.raises(auth.PasswordPolicyError) as err:
            auth.check_password_policy(name, password, confirm)
        assert field in dict(err.value.errors)


# -- headers --------------------------------------------------------------------------------


def _assert_staff_headers(resp_headers: object) -> None:
    h = resp_headers
    csp = h["Content-Security-Policy"]  # type: ignore[index]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert h["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert h["Referrer-Policy"] in ("no-referrer", "same-origin")  # type: ignore[index]
    assert h["X-Frame-Options"] == "DENY"  # type: ignore[index]


async def test_security_headers_on_every_kind_of_admin_response(staff: Staff) -> None:
    for path in ("/admin/login", "/admin/", "/admin/static/admin.css", "/admin/nope"):
        resp = await staff.client.get(path, allow_redirects=False)
        _assert_staff_headers(resp.headers)
    await staff.login("carol")
    resp = await staff.client.get("/admin/", allow_redirects=False)
    assert resp.status == 403
    _assert_staff_headers(resp.headers)
    resp = await staff.client.post("/admin/logout", data={"csrf_token": "bad"})
    assert resp.status == 403
    _assert_staff_headers(resp.headers)
    assert "no-store" in resp.headers["Cache-Control"]


async def test_widget_stays_embeddable(staff: Staff) -> None:
    resp = await staff.client.get("/widget.js")
    assert resp.status == 200
    assert "X-Frame-Options" not in resp.headers
    assert "frame-ancestors" not in resp.headers.get("Content-Security-Policy", "")


async def test_admin_pages_load_no_inline_script(staff: Staff) -> None:
    await staff.login("alice")
    for path in ("/admin/login", "/admin/", "/admin/resources/yorisoi_hotline", "/admin/try"):
        text = await (await staff.client.get(path)).text()
        assert re.findall(r"<script(?![^>]*\bsrc=)", text) == [], path
        assert " onclick=" not in text and " onload=" not in text and "style=" not in text


# -- route × role ---------------------------------------------------------------------------

# Who may use each /admin route. Adding a route without adding it here fails the matrix.
ALL = {"admin", "staff", "counselor"}
STAFF = {"admin", "staff"}
EXPECTED: dict[tuple[str, str], set[str] | None] = {  # None = public
    ("GET", "/static/{name}"): None,
    ("GET", "/login"): None,
    ("POST", "/login"): None,
    ("POST", "/logout"): ALL,
    ("POST", "/logout-all"): ALL,
    ("GET", "/"): STAFF,
    ("GET", "/resources"): STAFF,
    ("GET", "/resources/new"): STAFF,
    ("POST", "/resources/new"): STAFF,
    ("GET", "/resources/{id}"): STAFF,
    ("POST", "/resources/{id}"): STAFF,
    ("POST", "/resources/{id}/deactivate"): STAFF,
    ("GET", "/templates"): STAFF,
    ("GET", "/templates/{id}"): STAFF,
    ("POST", "/templates/{id}"): STAFF,
    ("GET", "/faq"): STAFF,
    ("GET", "/faq/new"): STAFF,
    ("POST", "/faq/new"): STAFF,
    ("GET", "/faq/{id}"): STAFF,
    ("POST", "/faq/{id}"): STAFF,
    ("GET", "/history/{entity}/{id}"): STAFF,
    ("POST", "/revisions/{rev}/restore"): STAFF,
    ("GET", "/try"): STAFF,
    ("POST", "/try"): STAFF,
    ("GET", "/export"): STAFF,
    ("GET", "/import"): STAFF,
    ("POST", "/import"): STAFF,
    ("POST", "/import/confirm"): STAFF,
    ("GET", "/users"): {"admin"},
    ("POST", "/users"): {"admin"},
    ("POST", "/users/{name}/disable"): {"admin"},
    ("POST", "/users/{name}/enable"): {"admin"},
    ("POST", "/users/{name}/password"): {"admin"},
}


def _admin_routes() -> list[tuple[str, str]]:
    out = []
    for resource in create_admin_app().router.resources():
        for route in resource:
            if route.method != "HEAD":
                out.append((route.method, resource.canonical))
    return out


def _concrete(pattern: str, rev_id: int) -> str:
    return (
        pattern.replace("{name}", "sam" if "/users/" in pattern else "admin.css")
        .replace("{entity}", "resource")
        .replace("{rev}", str(rev_id))
        .replace(
            "{id}",
            "greeting"
            if pattern.startswith("/templates")
            else ("yorisoi_hotline" if not pattern.startswith("/faq") else "_faq_"),
        )
    )


def test_matrix_covers_every_route() -> None:
    routes = _admin_routes()
    assert sorted(routes) == sorted(EXPECTED)
    for route in create_admin_app().router.routes():
        if route.method != "HEAD":
            assert auth.route_roles(route.handler) is not None, route


@pytest.mark.parametrize("who", ["anonymous", "counselor", "staff", "admin"])
async def test_route_role_matrix(staff: Staff, who: str) -> None:
    user = {"counselor": "carol", "staff": "sam", "admin": "alice"}.get(who)
    if user:
        await staff.login(user)
    kb = staff.app[keys.KB]
    faq_id = kb.list_faq()[0].id
    rev_id = kb.history("resource", "yorisoi_hotline")[0].id
    for method, pattern in _admin_routes():
        path = "/admin" + _concrete(pattern, rev_id).replace("_faq_", faq_id)
        allowed = EXPECTED[(method, pattern)]
        # JSON so that anonymous requests get 401 (pages redirect; tested separately);
        # POSTs carry no CSRF token, so nothing changes even where the role is allowed.
        resp = await staff.client.request(method, path, headers=JSON, allow_redirects=False)
        where = f"{who} {method} {path}"
        if allowed is None:
            assert resp.status not in (401, 403) or method == "POST", where
            continue
        if user is None:
            assert resp.status == 401, where
            assert (await resp.json())["error"] == "unauthenticated", where
        elif ROLE_OF[user] not in allowed:
            assert resp.status == 403, where
            assert (await resp.json())["error"] == "forbidden", where
        elif method == "POST":
            assert resp.status == 403, where
            assert (await resp.json())["error"] == "csrf", where
        else:
            assert resp.status == 200, where


ROLE_OF = {"alice": "admin", "sam": "staff", "carol": "counselor"}


async def test_anonymous_pages_redirect_to_login(staff: Staff) -> None:
    resp = await staff.client.get("/admin/resources?kind=emergency", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/admin/login?next=%2Fadmin%2Fresources%3Fkind%3Demergency"
    resp = await staff.client.get("/admin", allow_redirects=True)
    assert resp.status == 200 and "ログイン" in await resp.text()


async def test_undeclared_route_is_refused(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path
) -> None:
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    sub = web.Application(middlewares=auth.middlewares("/x/login"))

    async def forgotten(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    @auth.require_role("admin")
    async def declared(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    sub.router.add_get("/forgotten", forgotten)
    sub.router.add_get("/declared", declared)
    app.add_subapp("/x", sub)
    client = await aiohttp_client(app)
    resp = await client.get("/x/forgotten")
    assert resp.status == 403 and "secret" not in await resp.text()
    resp = await client.get("/x/declared", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/x/login")


def _mounted_admin(app: web.Application) -> web.Application:
    for resource in app.router.resources():
        info = resource.get_info()
        if info.get("prefix") == "/admin" and isinstance(info.get("app"), web.Application):
            return info["app"]
    raise AssertionError("/admin is not mounted")


async def test_pages_added_by_other_features_are_guarded_too(staff: Staff) -> None:
    """Routes added through ``extend_admin`` pass the same checks (anonymous and counselor)."""
    admin_app = _mounted_admin(staff.app)
    routes = [
        (route.method, route.resource.canonical, route.handler)
        for route in admin_app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    ]
    for _method, canonical, handler in routes:
        assert auth.route_roles(handler) is not None, canonical
    await staff.login("carol")
    for method, canonical, handler in routes:
        roles = auth.route_roles(handler)
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", "x", canonical)
        staff.logout_local()
        resp = await staff.client.request(method, path, headers=JSON, allow_redirects=False)
        if roles:
            assert resp.status == 401, (method, path)
        await staff.login("carol")
        resp = await staff.client.request(method, path, headers=JSON, allow_redirects=False)
        if roles and "counselor" not in roles:
            assert resp.status == 403, (method, path)
