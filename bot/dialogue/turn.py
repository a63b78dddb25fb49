"""One turn of a conversation: the state being changed and the replies being collected."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.dialogue.flowdata import FlowData
from bot.dialogue.render import JST, Renderer
from bot.dialogue.replies import ChoicesReply, Reply
from bot.dialogue.state import DialogueState, Slots
from intents.types import Area, TopicScore, Understanding
from knowledge.types import Referral


class KnowledgeBaseLike(Protocol):
    """What the dialogue needs from ``knowledge.base.KnowledgeBase``."""

    def render(self, template_id: str, **context: Any) -> str:
        """Render a template."""

    def route(
        self,
        u: Understanding,
        area: Area | None = None,
        limit: int = 3,
        now: datetime | None = None,
    ) -> list[Referral]:
        """Ranked referrals for an understanding."""


def slots_understanding(slots: Slots, crisis: str = "none") -> Understanding:
    """The Understanding that routing sees for what the conversation knows so far."""
    topics = tuple(TopicScore(t, 1.0) for t in slots.topics) or (TopicScore("other", 0.0),)
    return Understanding(
        topics=topics,
        audience=slots.audience,
        age_group=slots.age_group,
        crisis=crisis,
        area=slots.area,
        confident=True,
    )


@dataclass
class Turn:
    """Mutable working set of one turn; handlers change ``state`` and append replies."""

    kb: KnowledgeBaseLike
    renderer: Renderer
    flow: FlowData
    user_key: str
    channel: str
    state: DialogueState
    now: float
    retention_days: int = 30
    replies: list[Reply] = field(default_factory=list)
    counts: list[tuple[str, str]] = field(default_factory=list)
    delete_requested: bool = False

    @property
    def when(self) -> datetime:
        """The turn's time in Japan."""
        return datetime.fromtimestamp(self.now, JST)

    def add(self, reply: Reply) -> None:
        """Append a reply."""
        self.replies.append(reply)

    def say(self, template_id: str, **context: Any) -> None:
        """Append a text reply from a template."""
        self.add(self.renderer.say(template_id, **context))

    def ask(self, template_id: str, items: Iterable[tuple[str, str]], **context: Any) -> None:
        """Append a prompt with buttons ((label template id or text, postback) pairs)."""
        self.add(self.renderer.choices(template_id, items, **context))

    def count(self, metric: str, key: str = "") -> None:
        """Record an anonymous count (written by the engine at the end of the turn)."""
        self.counts.append((metric, key))

    def route(self, slots: Slots, crisis: str = "none", limit: int = 3) -> list[Referral]:
        """Referrals for the given slots."""
        u = slots_understanding(slots, crisis)
        return list(self.kb.route(u, area=slots.area, limit=limit, now=self.when))

    def topic_choices(self, topics: Sequence[str]) -> list[tuple[str, str]]:
        """Buttons for topics."""
        return [(f"topic:{t}", f"topic:{t}") for t in topics]

    def offered(self) -> tuple[tuple[str, str], ...]:
        """The buttons of the last prompt of this turn (to read a typed label as a press)."""
        for reply in reversed(self.replies):
            if isinstance(reply, ChoicesReply):
                return tuple((c.label, c.postback) for c in reply.items)
        return ()
