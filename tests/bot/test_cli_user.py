"""``tsunagu user``: add, list, disable, passwd, and the first-run hint."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.user import first_run_hint
from knowledge.base import KnowledgeBase
from knowledge.db import connect


def _run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def test_user_lifecycle(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", str(db_path)]
    assert first_run_hint(KnowledgeBase.open(connect(db_path))) is not None
    assert main(["user", "list", *db]) == 0
    assert "tsunagu user add" in capsys.readouterr().out

    argv = ["user", "add", "admin", "--role", "admin", "--password-stdin", *db]
    assert _run(argv, "first admin pass\n", monkeypatch) == 0
    bad = ["user", "add", "c0", "--role", "counselor", "--office", "tokyo", "--password-stdin"]
    assert _run([*bad, *db], "counselor pass1\n", monkeypatch) == 1  # no such office
    assert "sample_city_welfare" in capsys.readouterr().err
    office = "sample_city_welfare"
    argv = ["user", "add", "c1", "--role", "counselor", "--office", office, "--password-stdin"]
    assert _run([*argv, *db], "counselor pass1\n", monkeypatch) == 0
    assert _run([*argv, *db], "counselor pass1\n", monkeypatch) == 1  # name taken
    assert "すでに使われて" in capsys.readouterr().err
    argv = ["user", "add", "x1", "--role", "staff", "--password-stdin", *db]
    assert _run(argv, "short\n", monkeypatch) == 1
    assert "10文字以上" in capsys.readouterr().err

    assert main(["user", "list", *db]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == [
        "admin\tadmin\t-\t有効 enabled",
        "c1\tcounselor\tsample_city_welfare\t有効 enabled",
    ]

    kb = KnowledgeBase.open(connect(db_path))
    assert first_run_hint(kb) is None
    assert kb.verify_password("admin", "first admin pass") is not None

    assert main(["user", "disable", "c1", *db]) == 0
    assert main(["user", "disable", "admin", *db]) == 1  # the last admin stays
    assert "最後の管理者" in capsys.readouterr().err
    assert kb.verify_password("c1", "counselor pass1") is None

    argv = ["user", "passwd", "admin", "--password-stdin", *db]
    assert _run(argv, "second admin pass\n", monkeypatch) == 0
    assert kb.verify_password("admin", "second admin pass") is not None
    assert kb.verify_password("admin", "first admin pass") is None
    assert main(["user", "disable", "nobody", *db]) == 1
