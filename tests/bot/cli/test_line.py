"""``tsunagu line check``: settings validation, and the bot info call against the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.line import bot_info, problems
from bot.config import load_config
from tests.line_sim import LineSimulator

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for var in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "TSUNAGU_LINE_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TSUNAGU_SECRET", "s")
    monkeypatch.setenv("TSUNAGU_DB", str(tmp_path / "t.db"))
    return monkeypatch


def test_missing_settings_are_reported(env: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["line", "check"]) == 1
    out = capsys.readouterr().out
    assert "LINE_CHANNEL_SECRET is not set" in out
    assert "LINE_CHANNEL_ACCESS_TOKEN is not set" in out


def test_malformed_settings_are_reported() -> None:
    config = load_config(
        env={
            "TSUNAGU_SECRET": "s",
            "LINE_CHANNEL_SECRET": "short",
            "LINE_CHANNEL_ACCESS_TOKEN": "Bearer abc",
            "TSUNAGU_LINE_API_BASE": "http://api.example.com/v2",
        }
    )
    assert len(problems(config)) == 3


def test_good_settings_pass(env: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    env.setenv("LINE_CHANNEL_SECRET", SECRET)
    env.setenv("LINE_CHANNEL_ACCESS_TOKEN", "token")
    assert main(["line", "check"]) == 0
    assert "/line/webhook" in capsys.readouterr().out


def test_unreachable_api_base_fails(env: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    env.setenv("LINE_CHANNEL_SECRET", SECRET)
    env.setenv("LINE_CHANNEL_ACCESS_TOKEN", "token")
    env.setenv("TSUNAGU_LINE_API_BASE", "http://127.0.0.1:9")
    assert main(["line", "check", "--call-api"]) == 1
    assert "cannot reach" in capsys.readouterr().out


async def test_bot_info_from_the_simulator() -> None:
    async with LineSimulator(SECRET, "token") as sim:
        config = load_config(env={"TSUNAGU_SECRET": "s", **sim.app_env()})
        info = await bot_info(config)
        assert info["chatMode"] == "bot"
        assert sim.calls[-1].path == "/v2/bot/info"
