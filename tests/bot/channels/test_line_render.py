"""Replies rendered as LINE messages keep LINE's limits (checked with the simulator's rules)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.line_render import (
    MAX_TEXT,
    batches,
    json_size,
    render,
    resource_bubble,
    split_text,
    texts,
    utf16_len,
)
from bot.dialogue.replies import (
    Choice,
    ChoicesReply,
    HandoffNotice,
    ResourceCard,
    ResourcesReply,
    TextReply,
)
from tests.line_sim.validate import validate_messages

CARD = ResourceCard(
    resource_id="r1",
    kind="probation_office",
    name="りすたぽ(リスタート・サポート)",
    description="保護観察所の相談窓口です。",
    reason="ご家族からのご相談を受け付けています。",
    phone="03-0000-0000",
    url="https://example.org/",
    hours="平日 9:00〜17:00",
    notes="相談は無料です。",
    sample=True,
)


def valid(messages: list[dict]) -> None:
    for call in batches(messages):
        assert validate_messages(call) == [], call


def test_texts_file_loads() -> None:
    assert set(texts()) >= {"media", "group", "error"}


def test_short_text_is_one_piece() -> None:
    assert split_text("こんにちは。") == ["こんにちは。"]
    assert split_text("  \n ") == []


def test_long_text_splits_at_sentence_ends() -> None:
    sentence = "家族のことで相談したいです。"
    text = sentence * 800  # 11,200 characters
    pieces = split_text(text)
    assert len(pieces) == 3
    assert all(utf16_len(p) <= MAX_TEXT for p in pieces)
    assert all(p.endswith("。") for p in pieces)
    assert "".join(pieces) == text


def test_english_words_are_not_cut() -> None:
    text = " ".join(["consultation"] * 1000)
    pieces = split_text(text, limit=100)
    assert all(p.split(" ") == ["consultation"] * len(p.split(" ")) for p in pieces)
    assert " ".join(pieces) == text


def test_emoji_count_two_and_are_never_cut() -> None:
    family = "👨\u200d👩\u200d👧"  # one cluster, 8 UTF-16 units
    text = family * 1000
    pieces = split_text(text)
    assert all(utf16_len(p) <= MAX_TEXT for p in pieces)
    assert all(p.startswith("👨") and p.endswith("👧") for p in pieces)
    assert "".join(pieces) == text


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=400))
def test_any_text_splits_within_the_limit(text: str) -> None:
    pieces = split_text(text, limit=50)
    assert all(0 < utf16_len(p) <= 50 for p in pieces)
    # Only whitespace at the cut points may go; nothing else is lost or reordered.
    assert "".join("".join(pieces).split()) == "".join(text.split())


def test_choices_become_a_quick_reply_on_the_last_message() -> None:
    items = tuple(Choice(f"選択肢{i}", f"choice={i}") for i in range(15))
    items += (Choice("とても長いラベルのボタンでございますがいかがでしょうか", "long"),)
    items += (Choice("x", "d" * 301),)
    messages = render([ChoicesReply("どなたのことですか。", items), TextReply("続けてどうぞ。")])
    assert [m["type"] for m in messages] == ["text", "text"]
    quick = messages[-1]["quickReply"]["items"]
    assert len(quick) == 13
    assert all(len(i["action"]["label"]) <= 20 for i in quick)
    assert "quickReply" not in messages[0]
    valid(messages)


def test_long_labels_are_clipped_and_shown_in_full() -> None:
    long = "とても長いラベルのボタンでございますがいかがでしょうか"
    (message,) = render([ChoicesReply("どうぞ", (Choice(long, "x=1"),))])
    action = message["quickReply"]["items"][0]["action"]
    assert len(action["label"]) == 20 and action["label"].endswith("…")
    assert action["displayText"] == long
    valid([message])


def test_resource_cards_are_a_flex_carousel_with_tel_and_web() -> None:
    messages = render([ResourcesReply((CARD, CARD, CARD), intro="こちらに相談できます。")])
    assert messages[0] == {"type": "text", "text": "こちらに相談できます。"}
    flex = messages[1]
    assert flex["type"] == "flex"
    assert "りすたぽ" in flex["altText"] and "サンプル" in flex["altText"]
    bubbles = flex["contents"]["contents"]
    assert len(bubbles) == 3
    buttons = [b["action"]["uri"] for b in bubbles[0]["footer"]["contents"]]
    assert buttons == ["tel:0300000000", "https://example.org/"]
    assert bubbles[0]["body"]["contents"][0]["text"] == "サンプル"
    valid(messages)


def test_a_huge_card_is_shrunk_under_30kb() -> None:
    big = ResourceCard(
        resource_id="r2",
        kind="x",
        name="名前",
        description="説明" * 20000,
        reason="理由" * 20000,
        notes="注" * 20000,
    )
    bubble = resource_bubble(big)
    assert json_size(bubble) <= 30 * 1024
    assert "footer" not in bubble  # no phone, no url: no buttons
    valid(render([ResourcesReply((big,) * 3)]))


def test_many_messages_go_five_a_call() -> None:
    replies = [TextReply(f"{i}") for i in range(7)] + [HandoffNotice("waiting", "お待ちください")]
    calls = batches(render(replies))
    assert [len(c) for c in calls] == [5, 3]
    for call in calls:
        valid(call)


def test_very_long_answer_fits_in_calls() -> None:
    calls = batches(render([TextReply("相談の内容です。" * 5000)]))
    assert sum(len(c) for c in calls) == 8
    for call in calls:
        valid(call)
