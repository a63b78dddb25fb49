"""The Dockerfile and the example configuration: checked without a container engine."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _stages() -> list[str]:
    return re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", DOCKERFILE, flags=re.M | re.I)


def test_multi_stage_slim_base() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert all("slim" in image for image, _ in stages)


def test_runs_as_non_root() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.M)
    assert users and users[-1] not in {"root", "0"}


def test_data_volume_and_healthcheck() -> None:
    assert re.search(r'^VOLUME\s+\["/data"\]', DOCKERFILE, flags=re.M)
    assert "TSUNAGU_DB=/data/tsunagu.db" in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*", DOCKERFILE, flags=re.M)
    assert "/healthz" in DOCKERFILE


def test_dictionary_checked_at_build_time() -> None:
    assert "Dictionary(dict='core')" in DOCKERFILE


def test_no_secrets_baked_in() -> None:
    for name in ("TSUNAGU_SECRET", "LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
        assert not re.search(rf"^\s*(ENV|ARG)\b.*{name}", DOCKERFILE, flags=re.M), name


def test_compose_example_takes_secrets_from_env() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    env = compose["services"]["tsunagu"]["environment"]
    assert env["TSUNAGU_SECRET"].startswith("${")
    assert "tsunagu-data:/data" in compose["services"]["tsunagu"]["volumes"]


def test_example_config_is_valid(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.example.yaml", env={"TSUNAGU_SECRET": "x"})
    assert config.port == 8080


def test_compose_gives_a_graceful_stop_time() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    grace = compose["services"]["tsunagu"]["stop_grace_period"]
    assert int(grace.rstrip("s")) >= 15  # serve's shutdown timeout (8 s) + LINE tasks
