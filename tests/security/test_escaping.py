"""What a person types is shown as text everywhere: the widget and console scripts build the DOM
with textContent only and link only http(s)/tel targets, the admin's "try a message" page
escapes it, and LINE Flex cards never carry a javascript: URI."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.channels.line_render import render
from bot.channels.web import reply_to_json
from bot.config import load_config
from bot.dialogue.replies import ResourceCard, ResourcesReply
from tests.privacy.helpers import chat, login

HOSTILE = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">押して</a>',
    "javascript:alert(1)",
    "\u202eお知らせ\u202c",  # right-to-left override
    "ゼロ\u200b幅\u200d結合\ufeff",  # zero-width characters
    "{{ 7 * 7 }}{% raw %}",  # template syntax
)
SCRIPTS = ("widget.js", "console/console.js", "admin/admin.js")
_SINKS = re.compile(
    r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\("
)


def _script(name: str) -> str:
    return resources.files("bot").joinpath("static", *name.split("/")).read_text("utf-8")


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_never_parse_text_as_html(name: str) -> None:
    source = _script(name)
    assert not _SINKS.search(source), f"{name} uses an HTML sink"
    if name != "admin/admin.js":  # the admin script shows no text of its own
        assert "textContent" in source


def test_widget_links_only_http_and_tel() -> None:
    source = _script("widget.js")
    assignments = re.findall(r"(\w+)\.href\s*=\s*([^;]+);", source)
    targets = {value.strip() for _, value in assignments}
    assert targets == {'ORIGIN + "/widget.css"', '"tel:" + item.tel', "item.url"}
    # The web link is only made after the scheme check.
    check = source.index("/^https?:\\/\\//.test(item.url)")
    assert check < source.index("web.href = item.url")
    # setAttribute cannot smuggle a link either.
    assert not re.search(r"setAttribute\(\s*[\"'](href|src|on\w+)", source)


def _card(phone: str | None, url: str | None) -> ResourcesReply:
    return ResourcesReply(
        items=(
            ResourceCard(
                resource_id="x",
                kind="other",
                name="<b>名前</b>",
                description="<script>alert(1)</script>",
                reason="理由",
                phone=phone,
                url=url,
            ),
        ),
        intro="ご案内",
    )


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,x"],
)
def test_no_javascript_uri_reaches_the_widget_or_line(url: str) -> None:
    reply = _card("javascript:alert(1)//090-1234-5678", url)
    item = reply_to_json(reply)["items"][0]
    assert item["tel"] is None or re.fullmatch(r"[0-9#+]+", item["tel"])
    uris = re.findall(r"'uri': '([^']*)'", repr(render([reply])))
    assert uris, "the Flex card has no buttons: the test proves nothing"
    for uri in uris:
        assert uri.startswith(("tel:", "https://", "http://")), uri
        assert "javascript" not in uri.lower()


@pytest.fixture
async def staff_client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    tmp_path: Path,
    sudachi: None,
) -> TestClient:
    config = load_config(env={"TSUNAGU_SECRET": "escape"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    client = await aiohttp_client(app)
    app[keys.KB].add_user("sato", "staff", "sato-staff-pass-3")
    return client


@pytest.mark.parametrize("text", HOSTILE)
async def test_admin_try_a_message_escapes_what_is_typed(
    staff_client: TestClient, text: str
) -> None:
    token = await login(staff_client, "sato", "sato-staff-pass-3")
    resp = await staff_client.post("/admin/try", data={"message": text, "csrf_token": token})
    assert resp.status == 200
    page = await resp.text()
    for raw in ("<script>alert", "<img src=x", '<a href="javascript:', 'onerror="alert'):
        assert raw not in page
    if "7 * 7" in text:
        assert "{{ 7 * 7 }}" in page  # shown as typed, never evaluated
    if "<" in text:
        assert "&lt;" in page
    # No inline script can run whatever got in: the policy forbids it.
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_api_answers_are_json_not_html(staff_client: TestClient) -> None:
    session, _ = await chat(staff_client, None)
    await chat(staff_client, session, postback="consent:granted")
    for text in HOSTILE:
        resp = await staff_client.post("/api/chat", json={"session": session, "text": text})
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert isinstance((await resp.json())["messages"], list)
