"""Every route of the whole app × every role gets the expected answer (tests/security/routes.yaml).

The routes are walked from the app's router and the routers of its sub-apps, so a route
added anywhere without a line in the table fails here. Office scoping is checked with two
counselors of different offices against a case of office A.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.web import auth
from tests.privacy.helpers import chat, login, start_with_consent

TABLE = Path(__file__).with_name("routes.yaml")
ROLES = ("anonymous", "counselor_a", "counselor_b", "staff", "admin")
ACCOUNTS = {
    "counselor_a": ("kana", "counselor", "kana-counsel-pass-1", "sample_probation"),
    "counselor_b": ("beni", "counselor", "beni-counsel-pass-2", "sample_city_welfare"),
    "staff": ("sato", "staff", "sato-staff-pass-3", None),
    "admin": ("root", "admin", "root-admin-pass-4", None),
}
JSON = {"Accept": "application/json"}
# A body every console case action accepts, so only the office check can refuse it.
VALID_BODY = {
    "text": "こんにちは",
    "resource_id": "yorisoi_hotline",
    "office": "sample_city_welfare",
    "kinds": [],
    "referred_to": "",
}


def app_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path pattern) of every route of the app and its sub-apps (HEAD left out)."""
    out: list[tuple[str, str]] = []

    def walk(router: web.UrlDispatcher) -> None:
        for resource in router.resources():
            info = resource.get_info()
            if isinstance(info.get("app"), web.Application):
                walk(info["app"].router)
                continue
            for route in resource:
                if route.method != "HEAD":
                    out.append((route.method, resource.canonical))

    walk(app.router)
    return out


def _staff_app_handlers(app: web.Application) -> list[tuple[str, str, Any]]:
    out = []
    for resource in app.router.resources():
        info = resource.get_info()
        sub = info.get("app")
        if isinstance(sub, web.Application):
            for r in sub.router.resources():
                for route in r:
                    if route.method != "HEAD":
                        out.append((route.method, r.canonical, route.handler))
    return out


def load_table() -> dict[str, dict[str, Any]]:
    """The expectations: ``"METHOD /pattern"`` → rule (see the comments in routes.yaml)."""
    data = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    routes = data["routes"]
    for key, rule in routes.items():
        method, _, pattern = key.partition(" ")
        assert method in ("GET", "POST", "PUT", "DELETE", "PATCH") and pattern.startswith("/")
        assert set(rule) <= {"allow", "public", "path", "office", "status", "note"}, key
        assert ("allow" in rule) != ("public" in rule), f"{key}: allow or public, not both"
        if "allow" in rule:
            assert set(rule["allow"]) <= {"counselor", "staff", "admin"}, key
    return routes


def expected(rule: dict[str, Any], method: str, role: str) -> tuple[int, str | None]:
    """(status, JSON error code or None) for a request without a CSRF token."""
    if "public" in rule:
        value = rule["public"]
        if isinstance(value, dict):
            return int(value.get(role, value["default"])), None
        return int(value), None
    if role == "anonymous":
        return 401, "unauthenticated"
    allowed = role.split("_")[0] in rule["allow"]
    if not allowed:
        return 403, "forbidden"
    if method != "GET":
        return 403, "csrf"
    if rule.get("office") == "a" and role == "counselor_b":
        return 403, "forbidden"
    return int(rule.get("status", 200)), None


@dataclass
class World:
    app: web.Application
    clients: dict[str, TestClient]
    tokens: dict[str, str]
    values: dict[str, str]


@pytest.fixture
async def world(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sudachi: None
) -> World:
    config = load_config(env={"TSUNAGU_SECRET": "routes"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    first = await aiohttp_client(app)
    kb = app[keys.KB]
    for name, role, password, office in ACCOUNTS.values():
        kb.add_user(name, role, password, office_id=office)
    clients = {"anonymous": first}
    tokens: dict[str, str] = {}
    for role, (name, _, password, _) in ACCOUNTS.items():
        client = TestClient(first.server)
        await client.start_server()
        tokens[role] = await login(client, name, password)
        clients[role] = client
    # A case waiting in office A's queue.
    session = await start_with_consent(first)
    await chat(first, session, text="弟が自転車を盗みました")
    await chat(first, session, text="人と話したい")
    await chat(first, session, postback="handoff:full")
    desk = app[keys.DESK]
    case = next(iter(desk.store.list_open()))
    if case.office_id != "sample_probation":
        case = desk.store.rehome(case.id, "sample_probation", "test")
    values = {
        "case_a": str(case.id),
        "faq": kb.list_faq()[0].id,
        "rev": str(kb.history("resource", "yorisoi_hotline")[0].id),
    }
    yield World(app, clients, tokens, values)
    for role, client in clients.items():
        if role != "anonymous":
            await client.close()


def _path(key: str, rule: dict[str, Any], values: dict[str, str]) -> str:
    path = rule.get("path") or key.partition(" ")[2]
    return path.format(**values)


def test_table_names_every_route_and_nothing_else(tmp_path: Path) -> None:
    app = create_app(load_config(env={"TSUNAGU_SECRET": "r"}, db_path=tmp_path / "t.db"))
    found = {f"{m} {p}" for m, p in app_routes(app)}
    table = set(load_table())
    assert not found - table, f"routes without a rule in routes.yaml: {sorted(found - table)}"
    assert not table - found, f"rules for routes that do not exist: {sorted(table - found)}"
    # Every route of a staff sub-app also declares its roles in code (fail closed).
    for method, pattern, handler in _staff_app_handlers(app):
        if pattern.startswith(("/admin", "/console")):
            assert auth.route_roles(handler) is not None, f"{method} {pattern}"


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_for_every_role(world: World, role: str) -> None:
    client = world.clients[role]
    failures = []
    for key, rule in load_table().items():
        method = key.partition(" ")[0]
        path = _path(key, rule, world.values)
        resp = await client.request(method, path, headers=JSON, allow_redirects=False)
        status, code = expected(rule, method, role)
        got_code = None
        if code is not None and resp.content_type == "application/json":
            body = await resp.json()
            got_code = body.get("error") if isinstance(body, dict) else None
            if isinstance(got_code, dict):
                got_code = got_code.get("code")
        if resp.status != status or (code is not None and got_code != code):
            failures.append(
                f"{method} {path}: expected {status} {code}, got {resp.status} {got_code}"
            )
        resp.release()
    assert not failures, "\n".join(failures)


async def test_office_scoping_with_a_valid_token(world: World) -> None:
    """Counselor B, with a correct CSRF token, still cannot act on office A's case."""
    client = world.clients["counselor_b"]
    headers = {**JSON, auth.CSRF_HEADER: world.tokens["counselor_b"]}
    case = world.values["case_a"]
    for key, rule in load_table().items():
        method = key.partition(" ")[0]
        if rule.get("office") != "a" or method == "GET":
            continue
        path = _path(key, rule, world.values)
        resp = await client.request(method, path, json=VALID_BODY, headers=headers)
        assert resp.status == 403, f"{method} {path}: {resp.status}"
        assert (await resp.json())["error"] == "forbidden"
    # Nothing changed: the case still waits, and every refusal is in the audit log.
    esc = world.app[keys.DESK].store.get(int(case))
    assert esc.state == "waiting" and esc.counselor is None
    denied = [e for e in world.app[keys.DESK].store.audit_log() if e.action == "denied"]
    assert denied and all(e.actor == "beni" for e in denied)
