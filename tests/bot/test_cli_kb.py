"""``tsunagu kb``: validate the shipped data, byte-stable export/import round trip, diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from knowledge.base import KnowledgeBase
from knowledge.db import connect


def test_validate_passes_on_shipped_data(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kb", "validate", "--db", str(db_path)]) == 0
    assert "問題ありません" in capsys.readouterr().out


def test_validate_reports_broken_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "resources:\n  - id: x\n    name: X\n    kind: nope\n    description: d\n"
        "    phone: '123'\n    notes: n\n",
        encoding="utf-8",
    )
    assert main(["kb", "validate", str(bad), "--db", str(tmp_path / "k.db")]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml resources[x].kind" in err and "分類表にありません" in err
    assert "resources[x].phone" in err


def test_round_trip_is_byte_stable(tmp_path: Path) -> None:
    db1, db2 = tmp_path / "a.db", tmp_path / "b.db"
    out1, out2, out3 = tmp_path / "e1", tmp_path / "e2", tmp_path / "e3"
    kb = KnowledgeBase.open(connect(db1))
    # Content that stresses the YAML writer: multi-line text, quotes, colons, hours.
    kb.save_template(
        {"id": "multi", "description": "x: y", "text": "一行目\n  二行目 {{ a }}\n'引用'\n"},
        actor="t",
    )
    kb.save_resource(
        {
            "id": "extra",
            "name": "名前: 「記号」#",
            "kind": "municipal_welfare",
            "description": "説明",
            "coverage": "municipality",
            "municipality_code": "012025",
            "hours": [{"days": "月水祝", "opens": "08:30", "closes": "24:00"}],
            "notes": "yes",
            "sample": True,
            "active": False,
        },
        actor="t",
    )
    kb.store.db.conn.close()
    assert main(["kb", "export", str(out1), "--db", str(db1)]) == 0
    assert main(["kb", "import", str(out1), "--db", str(db2)]) == 0
    assert main(["kb", "export", str(out2), "--db", str(db2)]) == 0
    assert main(["kb", "import", str(out2), "--db", str(db2)]) == 0
    assert main(["kb", "export", str(out3), "--db", str(db2)]) == 0
    for name in ("resources.yaml", "faq.yaml", "templates.yaml"):
        first = (out1 / name).read_bytes()
        assert first == (out2 / name).read_bytes() == (out3 / name).read_bytes(), name
    assert "multi" in (out1 / "templates.yaml").read_text(encoding="utf-8")


def test_diff_then_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "k.db"
    out = tmp_path / "export"
    assert main(["kb", "export", str(out), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["kb", "diff", str(out), "--db", str(db)]) == 0
    assert "変更はありません" in capsys.readouterr().out
    text = (out / "resources.yaml").read_text(encoding="utf-8")
    text = text.replace("phone: 0570-085-085", "phone: 03-1234-5678")
    (out / "resources.yaml").write_text(text, encoding="utf-8")
    (out / "new.yaml").write_text(
        "faq:\n  - id: new_q\n    questions: [新しい質問]\n    answer: 新しい答え\n",
        encoding="utf-8",
    )
    assert main(["kb", "diff", str(out), "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "変更 窓口 juvenile_support_center (phone)" in shown
    assert "追加 FAQ new_q" in shown
    assert main(["kb", "import", str(out), "--db", str(db), "--actor", "staff1"]) == 0
    kb = KnowledgeBase.open(connect(db))
    res = kb.get_resource("juvenile_support_center")
    assert res is not None and res.phone == "03-1234-5678"
    assert kb.history("resource", "juvenile_support_center")[0].actor == "staff1"


def test_import_is_all_or_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "k.db"
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.yaml").write_text(
        "faq:\n  - id: good\n    questions: [質問]\n    answer: 答え\n", encoding="utf-8"
    )
    (src / "b.yaml").write_text(
        "templates:\n  - id: broken\n    text: '{{ oops'\n", encoding="utf-8"
    )
    assert main(["kb", "import", str(src), "--db", str(db)]) == 1
    assert "b.yaml templates[broken].text" in capsys.readouterr().err
    kb = KnowledgeBase.open(connect(db))
    assert kb.get_faq("good") is None
