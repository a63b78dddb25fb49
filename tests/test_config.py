"""Configuration loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config


def test_env_and_overrides(tmp_path: Path) -> None:
    env = {
        "TSUNAGU_PORT": "9000",
        "TSUNAGU_SECRET": "s3cret",
        "TSUNAGU_DB": str(tmp_path / "x.db"),
    }
    config = load_config(env=env, host="0.0.0.0")
    assert config.port == 9000
    assert config.host == "0.0.0.0"
    assert config.secret == "s3cret"
    assert not config.line_enabled


def test_unknown_key_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("prot: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(path, env={"TSUNAGU_SECRET": "x"})


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("line_channel_secret: abc\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="environment"):
        load_config(path, env={"TSUNAGU_SECRET": "x"})


def test_local_secret_is_created_once(tmp_path: Path) -> None:
    env = {"TSUNAGU_DB": str(tmp_path / "d" / "t.db")}
    first = load_config(env=env).secret
    assert len(first) == 64
    assert load_config(env=env).secret == first
