"""「メッセージを試す」: what the bot understands and answers, without keeping anything.

A throwaway engine runs over an in-memory SQLite conversation store, so a test message
never reaches the real database, the counts or the logs. The conversation is fresh and
consented, like a person who has just agreed to the notice and writes their worry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bot.channels.base import IncomingMessage
from bot.channels.web import reply_to_json
from bot.config import Config
from bot.dialogue.engine import Engine
from handoff.store import ConversationStore
from intents.types import Understanding
from knowledge.base import KnowledgeBase
from knowledge.db import connect
from knowledge.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

MAX_TRIAL_CHARS = 1000
_TRIAL_KEY = "admin-trial"


@dataclass(frozen=True, slots=True)
class TrialView:
    """The Understanding in display form plus the bot's replies as widget message objects."""

    topics: list[tuple[str, str, float]]  # (id, label, score)
    audience: str
    age_group: str
    crisis: str
    crisis_id: str
    crisis_categories: tuple[str, ...]
    area: str
    negated: list[str]
    past: list[str]
    confident: bool
    in_scope: bool
    evidence: list[dict[str, Any]]
    replies: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def _label(table: dict[str, str], key: str) -> str:
    return f"{table.get(key, key)}（{key}）"


def describe(u: Understanding, tx: Taxonomy) -> dict[str, Any]:
    """An Understanding as labelled, display-ready values."""
    area = "（わかりません）"
    if u.area is not None:
        parts = [
            p
            for p in (
                u.area.prefecture and f"{u.area.prefecture}（{u.area.prefecture_code or '-'}）",
                u.area.municipality
                and f"{u.area.municipality}（{u.area.municipality_code or '-'}）",
            )
            if p
        ]
        area = " ".join(parts) or area
    return {
        "topics": [
            (t.topic, tx.topics.get(t.topic, t.topic), round(t.score, 2)) for t in u.topics
        ],
        "audience": _label(tx.audiences, u.audience),
        "age_group": _label(tx.age_groups, u.age_group),
        "crisis": _label(tx.crisis_levels, u.crisis),
        "crisis_id": u.crisis,
        "crisis_categories": u.crisis_categories,
        "area": area,
        "negated": [tx.topics.get(t, t) for t in u.negated_topics],
        "past": [tx.topics.get(t, t) for t in u.past_topics],
        "confident": u.confident,
        "in_scope": u.in_scope,
        "evidence": [
            {
                "kind": e.kind,
                "label": e.label,
                "rule": e.rule,
                "matched": e.matched,
                "weight": round(e.weight, 2),
                "fuzzy": e.fuzzy,
            }
            for e in u.evidence
        ],
    }


async def replies_for(kb: KnowledgeBase, config: Config, text: str) -> list[dict[str, Any]]:
    """The replies a fresh, consented web conversation gets for ``text`` (nothing stored).

    Args:
        kb: the knowledge base, or a preview view from ``KnowledgeBase.with_overrides``.
        config: service configuration (retention days shown in texts, message limits).
        text: the test message.

    Returns:
        The replies as the widget receives them.
    """
    db = connect(":memory:")
    try:
        # Nothing is kept, so there is nothing to mask; skipping it also keeps this fast.
        store = ConversationStore.open(db, mask=lambda s: s)
        engine = Engine(kb, store, config)
        await engine.greet(_TRIAL_KEY, "web")
        await engine.handle(IncomingMessage("web", _TRIAL_KEY, postback="consent:granted"))
        replies = await engine.handle(IncomingMessage("web", _TRIAL_KEY, text=text))
        return [reply_to_json(r) for r in replies]
    finally:
        db.close()


async def run_trial(
    kb: KnowledgeBase, config: Config, text: str, understand: Any = None
) -> TrialView:
    """Understand ``text`` and compute the bot's answer with ``kb``.

    Args:
        kb: the knowledge base or a preview view.
        config: service configuration.
        text: the test message (cut to ``MAX_TRIAL_CHARS``).
        understand: text → Understanding; defaults to ``intents.understand``.

    Returns:
        The display values; ``error`` is set when the answer could not be made.
    """
    import intents

    started = time.perf_counter()
    text = text[:MAX_TRIAL_CHARS]
    u = (understand or intents.understand)(text)
    values = describe(u, kb.taxonomy)
    try:
        replies = await replies_for(kb, config, text)
        error = ""
    except Exception:
        # A broken template must show as a message to staff, not as a server error.
        logger.exception("trial reply failed")
        replies = []
        error = "返信を作れませんでした。文面（テンプレート）に誤りがないか確認してください。"
    logger.info("admin trial in %.1f ms", (time.perf_counter() - started) * 1000)
    return TrialView(**values, replies=replies, error=error)
