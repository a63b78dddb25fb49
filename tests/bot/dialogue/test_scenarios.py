"""Conversation scenarios (tests/scenarios/*.yaml) run against the real engine.

Real Sudachi, real triage, the shipped knowledge base and a real SQLite file per scenario.
Assertions are on reply types, template ids, asked pieces and resource kinds, not on full
wording, so staff can edit the texts without breaking the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.channels.base import IncomingMessage
from bot.config import load_config
from bot.dialogue.engine import Engine
from bot.dialogue.replies import (
    ChoicesReply,
    EndReply,
    HandoffNotice,
    Reply,
    ResourcesReply,
    TextReply,
)
from handoff.store import ConversationStore
from knowledge.base import KnowledgeBase
from knowledge.db import connect

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
_TYPES = {
    TextReply: "text",
    ChoicesReply: "choices",
    ResourcesReply: "resources",
    HandoffNotice: "handoff",
    EndReply: "end",
}
_STEP_KEYS = {"say", "postback", "greet", "wait_minutes", "expect"}
_EXPECT_KEYS = {
    "types",
    "types_include",
    "says",
    "asks",
    "kinds",
    "kinds_include",
    "kinds_exclude",
    "kinds_first",
    "no_resources",
    "postbacks_include",
    "crisis_first",
    "handoff",
    "stored_messages",
    "consent",
}


class Clock:
    """Time the scenario can move forward (idle timeout)."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0  # 2026-01-01 09:00 JST, a Thursday morning

    def __call__(self) -> float:
        return self.now


def _texts(replies: list[Reply]) -> list[str]:
    out = []
    for r in replies:
        if isinstance(r, ResourcesReply):
            out.append(r.intro)
        else:
            out.append(r.text)
    return out


def _kinds(replies: list[Reply]) -> list[str]:
    return [c.kind for r in replies if isinstance(r, ResourcesReply) for c in r.items]


def _postbacks(replies: list[Reply]) -> list[str]:
    return [c.postback for r in replies if isinstance(r, ChoicesReply) for c in r.items]


def check(
    expect: dict[str, Any], replies: list[Reply], kb: KnowledgeBase, engine: Engine, where: str
) -> None:
    """Assert one step's expectations."""
    unknown = set(expect) - _EXPECT_KEYS
    assert not unknown, f"{where}: unknown expectations {unknown}"
    types = [_TYPES[type(r)] for r in replies]
    kinds = _kinds(replies)
    texts = _texts(replies)
    postbacks = _postbacks(replies)
    info = f"{where}: types={types} kinds={kinds} postbacks={postbacks} texts={texts}"
    if "types" in expect:
        assert types == expect["types"], info
    for t in expect.get("types_include", []):
        assert t in types, info
    for template in expect.get("says", []):
        assert kb.render(template) in texts, f"{info}\n missing template {template}"
    if "asks" in expect:
        last = [r for r in replies if isinstance(r, ChoicesReply)]
        assert last, info
        assert all(c.postback.startswith(expect["asks"] + ":") for c in last[-1].items), info
    if "kinds" in expect:
        assert kinds == expect["kinds"], info
    for kind in expect.get("kinds_include", []):
        assert kind in kinds, info
    for kind in expect.get("kinds_exclude", []):
        assert kind not in kinds, info
    if "kinds_first" in expect:
        assert kinds and kinds[0] in expect["kinds_first"], info
    if expect.get("no_resources"):
        assert not kinds, info
    assert len(kinds) <= 3 * types.count("resources"), info
    for r in replies:
        if isinstance(r, ResourcesReply):
            assert 1 <= len(r.items) <= 3, info
    for pb in expect.get("postbacks_include", []):
        assert pb in postbacks, info
    if expect.get("crisis_first"):
        assert types[0] == "text", info
        assert texts[0] in (kb.render("crisis_urgent"), kb.render("crisis_concern")), info
        assert types[1] == "resources", info
        assert kinds[0] in ("emergency", "crisis_line", "child_guidance_center", "dv_support")
        assert "cmd:human" in postbacks, info
    if "handoff" in expect:
        notices = [r for r in replies if isinstance(r, HandoffNotice)]
        assert notices and notices[0].status == expect["handoff"], info
    if "stored_messages" in expect:
        stored = engine.store.db.execute("SELECT count(*) FROM messages").fetchone()[0]
        if expect["stored_messages"] == "some":
            assert stored > 0, f"{where}: nothing stored"
        else:
            assert stored == expect["stored_messages"], f"{where}: {stored} messages stored"
    if "consent" in expect:
        conv = engine.store.get(USER)
        consent = conv.consent if conv else "none"
        assert consent == expect["consent"], f"{where}: consent {consent}"
    for r in replies:
        if isinstance(r, ChoicesReply):
            assert all(len(c.label) <= 20 for c in r.items), info


USER = "web:scenario"


@pytest.fixture(scope="module")
def kb_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One knowledge base file, copied per scenario (importing the defaults takes a moment)."""
    path = tmp_path_factory.mktemp("kb") / "kb.db"
    db = connect(path)
    KnowledgeBase.open(db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(path: Path, kb_db: Path, tmp_path: Path, sudachi: None) -> None:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(spec, dict) and spec.get("steps"), f"{path.name}: no steps"
    db_file = tmp_path / "t.db"
    db_file.write_bytes(kb_db.read_bytes())
    db = connect(db_file)
    kb = KnowledgeBase.open(db)
    store = ConversationStore.open(db)
    config = load_config(env={"TSUNAGU_SECRET": "s"}, db_path=db_file)
    clock = Clock()
    engine = Engine(kb, store, config, clock=clock)
    for i, step in enumerate(spec["steps"], start=1):
        where = f"{path.name} step {i}"
        assert set(step) <= _STEP_KEYS, f"{where}: unknown keys {set(step) - _STEP_KEYS}"
        clock.now += 60 * float(step.get("wait_minutes", 0.5))
        if step.get("greet"):
            replies = await engine.greet(USER, "web")
        elif "postback" in step:
            replies = await engine.handle(IncomingMessage("web", USER, postback=step["postback"]))
        else:
            replies = await engine.handle(IncomingMessage("web", USER, text=step.get("say", "")))
        check(step.get("expect", {}), replies, kb, engine, where)
    db.close()


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 25
