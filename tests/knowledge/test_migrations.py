"""Knowledge schema migrations: from an empty file and from the previous version."""

from __future__ import annotations

import json
from pathlib import Path

from knowledge.base import KnowledgeBase
from knowledge.db import connect, migrate, schema_version
from knowledge.migrations import MIGRATIONS, PACKAGE


def test_from_empty_file(db_path: Path) -> None:
    db = connect(db_path)
    kb = KnowledgeBase.open(db, load_defaults=False)
    assert schema_version(db, PACKAGE) == len(MIGRATIONS)
    for table in ("resources", "templates", "faq", "revisions", "users", "faq_fts"):
        assert table in db.table_names()
    assert kb.list_resources() == []


def test_from_previous_version_keeps_and_indexes_rows(db_path: Path, sudachi: None) -> None:
    db = connect(db_path)
    migrate(db, PACKAGE, MIGRATIONS[:1])  # schema v1: before search
    db.execute(
        "INSERT INTO faq (id, questions, answer, topics, active, updated_at) "
        "VALUES (?, ?, ?, ?, 1, '2026-01-01T00:00:00+00:00')",
        ["old", json.dumps(["ダルクとは何ですか"]), "回復のための施設です。", '["drugs"]'],
    )
    db.execute(
        "INSERT INTO resources (id, name, kind, description, notes, updated_at) "
        "VALUES ('old_res', '古い窓口', 'municipal_welfare', '生活の相談', "
        "'役所で尋ねてください', '2026-01-01T00:00:00+00:00')"
    )
    db.conn.close()

    db = connect(db_path)
    kb = KnowledgeBase.open(db, load_defaults=False)
    assert schema_version(db, PACKAGE) == len(MIGRATIONS)
    res = kb.get_resource("old_res")
    assert res is not None and res.name == "古い窓口" and res.verification_note is None
    assert [h.entry.id for h in kb.search_faq("ダルクって何？")] == ["old"]
    assert [r.id for r in kb.search_resources("生活の相談")] == ["old_res"]


def test_reopen_is_idempotent_and_keeps_edits(db_path: Path) -> None:
    kb = KnowledgeBase.open(connect(db_path))
    kb.save_template({"id": "greeting", "text": "編集済み"}, actor="staff1")
    kb.store.delete_template("topic_intro.other")  # as if an older version lacked it
    kb.store.db.conn.close()
    kb = KnowledgeBase.open(connect(db_path))
    assert kb.render("greeting") == "編集済み"
    assert kb.has_template("topic_intro.other")  # shipped templates that are missing come back


def test_from_v2_counts_knowledge_changes(db_path: Path) -> None:
    db = connect(db_path)
    migrate(db, PACKAGE, MIGRATIONS[:2])
    db.execute(
        "INSERT INTO templates (id, text, updated_at) VALUES ('t', 'a', '2026-01-01T00:00:00')"
    )
    kb = KnowledgeBase.open(db, load_defaults=False)
    assert kb.render("t") == "a"
    start = kb.store.change_marker()
    db.execute("UPDATE templates SET text = 'b' WHERE id = 't'")
    assert kb.store.change_marker() != start
    assert kb.render("t") == "b"
