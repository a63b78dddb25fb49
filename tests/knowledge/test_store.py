"""FTS5 search over Sudachi-tokenised FAQ and resources, with Japanese queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase
from knowledge.db import connect
from knowledge.textindex import index_text, match_query


@pytest.fixture
def kb(db_path: Path) -> KnowledgeBase:
    return KnowledgeBase.open(connect(db_path))


def test_index_text_uses_normalized_forms(sudachi: None) -> None:
    assert index_text("万引してしまった").split()[0] == "万引き"
    assert index_text("シュミレーション") == "シミュレーション"
    assert match_query("、。！") is None
    assert match_query('"; DROP TABLE faq; --') is not None  # quoted, never raw FTS syntax


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("前科って消えるんですか？", "criminal_record"),
        ("ダルクってなんですか", "darc"),
        ("りすたぽって何", "ristapo"),
        ("名前を言わないで相談したい", "anonymous"),
        ("息子が大麻を使っているみたいです", "drugs_family"),
        ("パチンコで借金をしてしまった", "gambling_debt"),
        ("万引きがやめられない", "kleptomania"),
        ("夫に殴られます", "dv"),
        ("ｄａｒｃとは", "darc"),
    ],
)
def test_faq_search_japanese(kb: KnowledgeBase, query: str, expected: str) -> None:
    hits = kb.search_faq(query, limit=3)
    assert hits, query
    assert hits[0].entry.id == expected
    assert hits[0].score > 0


def test_faq_search_nothing_for_unrelated(kb: KnowledgeBase) -> None:
    assert kb.search_faq("") == []
    assert kb.search_faq("。。。") == []
    assert kb.search_faq("ラーメンの美味しい店") == []


def test_inactive_faq_is_not_found(kb: KnowledgeBase) -> None:
    entry = kb.get_faq("darc")
    assert entry is not None
    kb.save_faq(
        {
            "id": "darc",
            "questions": list(entry.questions),
            "answer": entry.answer,
            "active": False,
        },
        actor="staff1",
    )
    assert all(h.entry.id != "darc" for h in kb.search_faq("ダルクとは"))


def test_resource_search(kb: KnowledgeBase) -> None:
    assert kb.search_resources("少年鑑別所")[0].id == "juvenile_support_center"
    assert kb.search_resources("介護の相談")[0].kind == "community_care_center"
