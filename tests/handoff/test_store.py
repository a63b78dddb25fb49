"""The conversation store: conversations, masked messages, counts, event claims, deletion."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from handoff.store import ConversationStore, TurnMessage
from knowledge.db import connect, schema_version


def _fake_mask(text: str) -> str:
    # Stands in for intents.pii.mask where a test is about storage, not about masking.
    return re.sub(r"\d", "#", text)


@pytest.fixture
def store(db_path: Path) -> ConversationStore:
    return ConversationStore.open(connect(db_path), mask=_fake_mask)


def test_open_migrates_and_is_idempotent(db_path: Path) -> None:
    db = connect(db_path)
    ConversationStore.open(db)
    ConversationStore.open(db)
    assert schema_version(db, "handoff") == 1
    assert {"conversations", "messages", "anonymous_counts", "processed_events"} <= set(
        db.table_names()
    )


def test_save_and_get_round_trip(store: ConversationStore) -> None:
    assert store.get("web:a") is None
    cid = store.save("web:a", "web", {"phase": "ask", "topics": ["theft"]}, "granted", now=10.0)
    conv = store.get("web:a")
    assert conv is not None
    assert conv.id == cid
    assert conv.state == {"phase": "ask", "topics": ["theft"]}
    assert conv.consent == "granted"
    assert conv.created_at == conv.last_activity == 10.0
    again = store.save("web:a", "web", {"phase": "done"}, "granted", now=20.0)
    assert again == cid
    conv = store.get("web:a")
    assert conv is not None
    assert conv.state == {"phase": "done"}
    assert (conv.created_at, conv.last_activity) == (10.0, 20.0)


def test_save_rejects_unknown_consent(store: ConversationStore) -> None:
    with pytest.raises(ValueError):
        store.save("web:a", "web", {}, "maybe")


def test_messages_are_masked_before_writing(store: ConversationStore) -> None:
    cid = store.save("web:a", "web", {}, "granted")
    store.add_message(cid, "in", "電話は 090 1234 5678 です", channel_message_id="m1")
    store.add_message(cid, "out", "ありがとうございます")
    texts = [m.text for m in store.messages("web:a")]
    assert texts == ["電話は ### #### #### です", "ありがとうございます"]
    with pytest.raises(ValueError):
        store.add_message(cid, "sideways", "x")


def test_an_analysis_never_bypasses_masking(db_path: Path, sudachi: None) -> None:
    from intents.tokenizer import analyse

    real = ConversationStore.open(connect(db_path))
    cid = real.save("web:a", "web", {}, "granted")
    text = "田中太郎さんの電話は090-1234-5678です"
    real.add_message(cid, "in", text, analysis=analyse(text))
    real.add_message(cid, "in", text, analysis=analyse("関係のない文"))  # tokens not used
    real.add_message(cid, "in", text)
    stored = [m.text for m in real.messages("web:a")]
    assert stored == ["<NAME>さんの電話は<PHONE>です"] * 3
    # A store with its own masker masks with it, whatever analysis comes along.
    fake = ConversationStore.open(connect(db_path), mask=_fake_mask)
    fake.add_message(cid, "in", text, analysis=analyse(text))
    assert fake.messages("web:a")[-1].text == "田中太郎さんの電話は###-####-####です"


def test_masked_replies_cache_expires(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = store.save("web:a", "web", {}, "granted")
    for i in range(3):
        store.add_message(cid, "out", f"返事{i}")
    assert len(store._masked_out) == 3
    monkeypatch.setattr("handoff.store._OUT_CACHE_SECONDS", 0.0)
    time.sleep(0.01)  # everything cached so far is now older than that
    store.add_message(cid, "out", "返事9")
    assert list(store._masked_out) == ["返事9"]
    assert [m.text for m in store.messages("web:a")][-1] == "返事#"


def test_save_turn_writes_state_and_masked_messages_together(store: ConversationStore) -> None:
    store.count("turn", "web", now=5.0)
    cid = store.save_turn(
        "web:a",
        "web",
        {"phase": "open"},
        "granted",
        [TurnMessage("in", "電話は 090 1234 5678", "m1"), TurnMessage("out", "はい、3件")],
        now=5.0,
    )
    conv = store.get("web:a")
    assert conv is not None and conv.id == cid and conv.state == {"phase": "open"}
    stored = store.messages("web:a")
    assert [(m.direction, m.text, m.channel_message_id) for m in stored] == [
        ("in", "電話は ### #### ####", "m1"),
        ("out", "はい、#件", None),
    ]
    assert store.counts("turn") == {("1970-01-01", "turn", "web"): 1}
    # Nothing is written when a message is refused: not the state, not the other message.
    with pytest.raises(ValueError):
        store.save_turn(
            "web:a",
            "web",
            {"phase": "later"},
            "granted",
            [TurnMessage("in", "x"), TurnMessage("sideways", "y")],
        )
    conv = store.get("web:a")
    assert conv is not None and conv.state == {"phase": "open"}
    assert len(store.messages("web:a")) == 2
    assert store.save_turn("web:a", "web", {"phase": "x"}, "granted", now=6.0) == cid


def test_delete_conversation_removes_messages(store: ConversationStore) -> None:
    cid = store.save("web:a", "web", {}, "granted")
    store.add_message(cid, "in", "相談です")
    other = store.save("web:b", "web", {}, "granted")
    store.add_message(other, "in", "別の人")
    assert store.delete_conversation("web:a") is True
    assert store.get("web:a") is None
    assert store.messages("web:a") == []
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    assert store.delete_conversation("web:a") is False


def test_delete_message_only_touches_own_conversation(store: ConversationStore) -> None:
    a = store.save("line:a", "line", {}, "granted")
    b = store.save("line:b", "line", {}, "granted")
    store.add_message(a, "in", "取り消す", channel_message_id="m1")
    store.add_message(b, "in", "残す", channel_message_id="m1")
    assert store.delete_message("line:b", "nope") is False
    assert store.delete_message("line:a", "m1") is True
    assert store.messages("line:a") == []
    assert [m.text for m in store.messages("line:b")] == ["残す"]


def test_claim_event_once_and_after_expiry(store: ConversationStore) -> None:
    assert store.claim_event("ev1") is True
    assert store.claim_event("ev1") is False
    assert store.claim_event("ev2", ttl_seconds=0) is True
    # A zero-TTL claim has expired at once and may be claimed again.
    assert store.claim_event("ev2", ttl_seconds=60) is True
    assert store.claim_event("ev2") is False
    assert store.purge_events(now=time.time() + 86401) == 2
    assert store.claim_event("ev1") is True


def test_claim_event_persists_across_connections(db_path: Path) -> None:
    first = ConversationStore.open(connect(db_path))
    assert first.claim_event("ev") is True
    second = ConversationStore.open(connect(db_path))
    assert second.claim_event("ev") is False


def test_anonymous_counts(store: ConversationStore) -> None:
    now = 1_700_000_000.0  # 2023-11-15 07:13 JST
    store.count("topic", "drugs", now=now)
    store.count("topic", "drugs", now=now)
    store.count("consent", "declined", now=now)
    assert store.counts("topic") == {("2023-11-15", "topic", "drugs"): 2}
    assert len(store.counts()) == 2


def test_purge_expired(store: ConversationStore) -> None:
    store.save("web:old", "web", {}, "granted", now=0.0)
    store.save("web:new", "web", {}, "granted", now=40 * 86400.0)
    assert store.purge_expired(30, now=40 * 86400.0) == 1
    assert store.get("web:old") is None
    assert store.get("web:new") is not None


def test_unreadable_state_starts_afresh(store: ConversationStore) -> None:
    store.save("web:a", "web", {}, "granted")
    store.db.execute("UPDATE conversations SET state = 'not json' WHERE user_key = 'web:a'")
    conv = store.get("web:a")
    assert conv is not None
    assert conv.state == {}
