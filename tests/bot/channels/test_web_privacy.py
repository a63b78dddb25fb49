"""A phone number typed in the web chat never reaches the database files."""

from __future__ import annotations

from pathlib import Path

from bot.app import create_app
from bot.config import load_config
from knowledge.db import connect

PHONES = ("090-1234-5678", "09012345678", "０９０－１２３４－５６７８")
EMAIL = "taro.yamada@example.com"


def _db_bytes(db_path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = Path(str(db_path) + suffix)
        if f.exists():
            data += f.read_bytes()
    return data


async def test_phone_typed_in_chat_is_not_in_database_file(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, sudachi: None
) -> None:
    db_path = tmp_path / "t.db"
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=db_path)
    client = await aiohttp_client(create_app(config))
    resp = await client.post("/api/chat", json={"session": None})
    session = (await resp.json())["session"]
    resp = await client.post("/api/chat", json={"session": session, "postback": "consent:granted"})
    assert resp.status == 200
    for phone in PHONES:
        text = f"息子が万引きをしました。連絡先は{phone}、メールは{EMAIL}です"
        resp = await client.post("/api/chat", json={"session": session, "text": text})
        assert resp.status == 200
    # The conversation was stored (with consent), masked.
    db = connect(db_path)
    stored = [row[0] for row in db.execute("SELECT text FROM messages WHERE direction = 'in'")]
    db.close()
    assert any("<PHONE>" in t and "<EMAIL>" in t for t in stored), stored
    data = _db_bytes(db_path)
    for needle in (*PHONES, "12345678", "1234-5678", EMAIL, "taro.yamada"):
        assert needle.encode() not in data, f"{needle} found in the database files"
        assert needle.encode("utf-16-le") not in data


async def test_no_record_mode_stores_no_text(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path, sudachi: None
) -> None:
    db_path = tmp_path / "t.db"
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=db_path)
    client = await aiohttp_client(create_app(config))
    resp = await client.post("/api/chat", json={"session": None})
    session = (await resp.json())["session"]
    await client.post("/api/chat", json={"session": session, "postback": "consent:declined"})
    marker = "ギャンブルで借金が三百万円あります"
    resp = await client.post("/api/chat", json={"session": session, "text": marker})
    assert resp.status == 200
    assert marker.encode() not in _db_bytes(db_path)
    assert "三百万".encode() not in _db_bytes(db_path)
