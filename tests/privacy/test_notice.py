"""The privacy notice (/privacy) and the bot's short notice say what the code really does."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from intents.pii import KINDS, mask
from tests.privacy.helpers import chat

Factory = Callable[[web.Application], Awaitable[TestClient]]

# How the notice names each kind of personal data that intents.pii masks.
KIND_WORDS = {
    "EMAIL": "メールアドレス",
    "URL": "URL",
    "MYNUMBER": "マイナンバー",
    "PHONE": "電話番号",
    "POSTAL": "郵便番号",
    "LINE_ID": "LINE などのID",
    "ADDRESS": "住所",
    "NAME": "お名前",
}


async def _client(aiohttp_client: Factory, tmp_path: Path, days: str = "14") -> TestClient:
    config = load_config(
        env={"TSUNAGU_SECRET": "notice", "TSUNAGU_RETENTION_DAYS": days},
        db_path=tmp_path / "t.db",
    )
    return await aiohttp_client(create_app(config))


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


async def test_privacy_page_states_the_running_retention_and_every_rule(
    aiohttp_client: Factory, tmp_path: Path
) -> None:
    client = await _client(aiohttp_client, tmp_path, days="14")
    resp = await client.get("/privacy")
    assert resp.status == 200
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    text = _text(await resp.text())
    assert "プライバシーポリシー" in text
    assert "14日間保存" in text and "30日" not in text
    for phrase in (
        "匿名",
        "同意いただいた場合だけ記録",
        "記録せずに相談する",
        "HMAC",
        "暗号化（AES-GCM）",
        "表示名やプロフィール画像は取得しません",
        "ログ）には、メッセージの文章やユーザーIDは書きません",
        "自分の所属する事務所に届いた相談だけ",
        "監査記録",
        "履歴を消して",
        "ブロックしたときも、その場で削除",
        "5件未満",
        "命に関わる危険",
        "子どもへの虐待",
        "犯罪を行うことが予告",
        "110番",
        "119番",
    ):
        assert phrase in text, phrase


async def test_notice_lists_every_kind_that_is_masked(
    aiohttp_client: Factory, tmp_path: Path, sudachi: None
) -> None:
    assert set(KIND_WORDS) == set(KINDS), "a new masked kind needs a word in the notice"
    client = await _client(aiohttp_client, tmp_path)
    text = _text(await (await client.get("/privacy")).text())
    for word in KIND_WORDS.values():
        assert word in text, word
    # The placeholder the notice shows is the one the masker writes.
    assert "<PHONE>" in mask("電話は090-1234-5678です").text
    assert "&lt;PHONE&gt;" in await (await client.get("/privacy")).text()


async def test_demo_page_links_the_notice_and_nothing_sets_a_cookie(
    aiohttp_client: Factory, tmp_path: Path
) -> None:
    client = await _client(aiohttp_client, tmp_path)
    resp = await client.get("/")
    assert 'href="/privacy"' in await resp.text()
    assert "Set-Cookie" not in resp.headers
    resp = await client.post("/api/chat", json={"session": None})
    assert "Set-Cookie" not in resp.headers
    assert "Set-Cookie" not in (await client.get("/privacy")).headers


async def test_the_bots_greeting_agrees_with_the_notice(
    aiohttp_client: Factory, tmp_path: Path, sudachi: None
) -> None:
    client = await _client(aiohttp_client, tmp_path, days="14")
    _, messages = await chat(client, None)
    greeting = " ".join(m.get("text", "") for m in messages)
    notice = _text(await (await client.get("/privacy")).text())
    # Same period, same way to delete, same limits of confidentiality, same emergency numbers.
    assert "14日間保存" in greeting and "14日間保存" in notice
    for phrase in ("匿名", "履歴を消して", "個人情報を伏せて", "110番", "119番"):
        assert phrase in greeting and phrase in notice, phrase
    for limit in ("命に関わる危険", "子どもへの虐待", "犯罪の予告"):
        assert limit in greeting, limit
    # The consent question offers exactly the two modes the notice describes.
    labels = [i["label"] for m in messages if m["type"] == "choices" for i in m["items"]]
    assert labels == ["同意して相談する", "記録せずに相談する"]
    for label in labels:
        assert label in notice
    assert client.app[keys.CONFIG].retention_days == 14
