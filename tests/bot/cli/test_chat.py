"""``tsunagu chat`` and ``tsunagu serve``'s first start: the real engine on real files."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from bot.cli.serve import prepare_database
from bot.config import load_config
from knowledge.db import connect, schema_version

ROOT = Path(__file__).resolve().parents[3]


def test_prepare_database_creates_and_migrates(tmp_path: Path) -> None:
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=tmp_path / "sub" / "t.db")
    hint = prepare_database(config)
    assert config.db_path.exists()
    db = connect(config.db_path)
    assert schema_version(db, "handoff") >= 1
    assert db.execute("SELECT count(*) FROM resources").fetchone()[0] > 0
    db.close()
    assert hint is None or "tsunagu user add" in hint
    # A second start changes nothing and still works.
    prepare_database(config)


def test_chat_in_a_terminal(tmp_path: Path) -> None:
    script = "1\n高齢の父が万引きを繰り返しています\n1\n履歴を消して\n/quit\n"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--db", str(tmp_path / "t.db")],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"TSUNAGU_SECRET": "s", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1) 同意して相談する" in out
    assert "■ " in out  # resource cards after the area question was skipped
    assert "記録をすべて消しました" in out


async def test_converse_numbers_press_buttons(tmp_path: Path, sudachi: None) -> None:
    from bot.cli.chat import converse
    from bot.dialogue.engine import Engine
    from handoff.store import ConversationStore
    from knowledge.base import KnowledgeBase

    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=tmp_path / "t.db")
    db = connect(config.db_path)
    engine = Engine(KnowledgeBase.open(db), ConversationStore.open(db), config)
    out = io.StringIO()
    await converse(engine, io.StringIO("2\n9\n"), out)
    text = out.getvalue()
    assert "この会話は記録しません" in text  # 2) 記録せずに相談する
    # Leaving the terminal chat leaves nothing behind.
    assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
    db.close()
