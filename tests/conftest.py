"""Shared fixtures: the real Sudachi tokenizer, temporary SQLite files, the shared folder."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def sudachi() -> None:
    """Load the real Sudachi dictionary once per test session."""
    from intents import tokenizer

    tokenizer.load()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a fresh SQLite file in a temporary directory."""
    return tmp_path / "tsunagu.db"
