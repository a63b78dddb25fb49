"""Engine persistence: consent decides what is stored; forget, idle return, restart survival."""

from __future__ import annotations

from pathlib import Path

from bot.channels.base import IncomingMessage
from bot.config import load_config
from bot.dialogue.engine import Engine
from bot.dialogue.replies import ChoicesReply
from handoff.store import ConversationStore
from knowledge.base import KnowledgeBase
from knowledge.db import connect

KEY = "web:test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def _engine(db_path: Path, clock: Clock) -> Engine:
    db = connect(db_path)
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=db_path)
    return Engine(KnowledgeBase.open(db), ConversationStore.open(db), config, clock=clock)


async def test_state_survives_a_restart(db_path: Path, sudachi: None) -> None:
    clock = Clock()
    engine = _engine(db_path, clock)
    await engine.greet(KEY, "web")
    await engine.handle(IncomingMessage("web", KEY, postback="consent:granted"))
    replies = await engine.handle(IncomingMessage("web", KEY, postback="topic:theft"))
    asked = [r for r in replies if isinstance(r, ChoicesReply)][-1].items[0].postback
    # A new engine on the same file (a server restart) continues the same conversation.
    engine2 = _engine(db_path, clock)
    conv = engine2.store.get(KEY)
    assert conv is not None and conv.state["asking"] == asked.split(":")[0]
    assert engine2.store.messages(KEY)


async def test_declined_keeps_only_the_choice(db_path: Path, sudachi: None) -> None:
    clock = Clock()
    engine = _engine(db_path, clock)
    await engine.greet(KEY, "web")
    await engine.handle(IncomingMessage("web", KEY, postback="consent:declined"))
    await engine.handle(IncomingMessage("web", KEY, text="ギャンブルで借金があります"))
    conv = engine.store.get(KEY)
    assert conv is not None and conv.consent == "declined" and dict(conv.state) == {}
    assert engine.store.messages(KEY) == []
    assert engine.store.counts("consent")


async def test_forget_deletes_everything(db_path: Path, sudachi: None) -> None:
    engine = _engine(db_path, Clock())
    await engine.greet(KEY, "web")
    await engine.handle(IncomingMessage("web", KEY, postback="consent:granted"))
    engine.forget(KEY)
    assert engine.store.get(KEY) is None
    assert engine.store.messages(KEY) == []
    assert len(engine.volatile) == 0


async def test_greet_after_idle_offers_resume(db_path: Path, sudachi: None) -> None:
    clock = Clock()
    engine = _engine(db_path, clock)
    await engine.greet(KEY, "web")
    await engine.handle(IncomingMessage("web", KEY, postback="consent:granted"))
    assert await engine.greet(KEY, "web") == []  # reopened at once: nothing to repeat
    clock.now += 31 * 60
    replies = await engine.greet(KEY, "web")
    assert [c.postback for c in replies[-1].items] == ["cmd:resume", "cmd:restart"]  # type: ignore[union-attr]


async def test_stored_text_has_no_bidi_or_invisible_tricks(db_path: Path, sudachi: None) -> None:
    engine = _engine(db_path, Clock())
    await engine.greet(KEY, "web")
    await engine.handle(IncomingMessage("web", KEY, postback="consent:granted"))
    # U+202E would show 「万引きがやめられない」 reversed in the console; U+200B hides a space.
    await engine.handle(IncomingMessage("web", KEY, text="\u202e万引き\u200bがやめられない\u2066"))
    stored = [m.text for m in engine.store.messages(KEY) if m.direction == "in"]
    assert stored[-1] == "万引きがやめられない"
