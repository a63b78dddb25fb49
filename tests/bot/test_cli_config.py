"""``tsunagu config check``: values shown, secrets only as set/unset, problems found."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.config import check


def test_secrets_are_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSUNAGU_SECRET", "very-secret-value")
    monkeypatch.setenv("LINE_CHANNEL_SECRET", "line-secret-value")
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", "line-token-value")
    monkeypatch.setenv("TSUNAGU_DB", str(tmp_path / "t.db"))
    monkeypatch.setenv("TSUNAGU_PORT", "9090")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "value" not in out
    assert "TSUNAGU_SECRET" in out and "set" in out
    assert "9090" in out and str(tmp_path / "t.db") in out


def test_missing_and_half_configured(tmp_path: Path) -> None:
    env = {"TSUNAGU_DB": str(tmp_path / "d" / "t.db"), "LINE_CHANNEL_SECRET": "x"}
    lines, problems = check(env)
    assert any("TSUNAGU_SECRET" in line and "unset" in line for line in lines)
    assert problems and "half configured" in problems[0]
    assert not (tmp_path / "d").exists()  # checking creates nothing (no secret.key)


def test_invalid_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSUNAGU_PORT", "eighty")
    assert main(["config", "check"]) == 2
    assert "configuration error" in capsys.readouterr().out
