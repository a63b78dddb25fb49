"""The application factory."""

from __future__ import annotations

from pathlib import Path

from bot.app import create_app
from bot.config import load_config


async def test_healthz(aiohttp_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(env={"TSUNAGU_SECRET": "t"}, db_path=tmp_path / "t.db")
    client = await aiohttp_client(create_app(config))
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
