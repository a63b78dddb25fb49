"""The dialogue engine: one turn in, channel-neutral replies out, state kept per person."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.dialogue import handlers  # noqa: F401  (registers every handler)
from bot.dialogue.commands import match_command
from bot.dialogue.flow import apply_message
from bot.dialogue.flowdata import load_flow
from bot.dialogue.handlers.consent import greeting
from bot.dialogue.handlers.crisis import escalate
from bot.dialogue.registry import lookup
from bot.dialogue.render import Renderer
from bot.dialogue.replies import (
    ChoicesReply,
    EndReply,
    HandoffNotice,
    Reply,
    ResourcesReply,
    TextReply,
)
from bot.dialogue.state import CONSENT, OPEN, RETURN, DialogueState, Slots, VolatileStates
from bot.dialogue.turn import KnowledgeBaseLike, Turn
from handoff.store import TurnMessage
from intents.normalize import display_safe, normalize

if TYPE_CHECKING:
    from bot.channels.base import IncomingMessage
    from bot.config import Config
    from handoff.store import ConversationStore
    from intents.types import Understanding

logger = logging.getLogger(__name__)

Understander = Callable[[str], "Understanding"]


def _understand(text: str) -> Understanding:
    # The submodule, not ``intents.understand``: once imported, the submodule shadows the
    # package-level function of the same name.
    from intents.understand import understand

    return understand(text)


def match_offered(text: str, offered: tuple[tuple[str, str], ...]) -> str | None:
    """A typed message that is the label of a button just offered counts as pressing it.

    ``同意`` or ``記録せずに`` (a leading part of a label of 2+ characters) also count.
    """
    typed = normalize(text).strip("。、.!！?？ 　")
    if not typed:
        return None
    for label, postback in offered:
        if typed == label or (len(typed) >= 2 and label.startswith(typed)):
            return postback
    return None


class Engine:
    """Channel-neutral conversation engine (one per application)."""

    def __init__(
        self,
        kb: KnowledgeBaseLike,
        store: ConversationStore,
        config: Config,
        *,
        understand: Understander | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the engine.

        Args:
            kb: the knowledge base (templates and routing).
            store: the conversation store.
            config: service configuration (idle timeout, retention).
            understand: text → Understanding; defaults to ``intents.understand``.
            clock: time source (tests move it forward).
        """
        self.kb = kb
        self.store = store
        self.config = config
        self.renderer = Renderer(kb, open_now=getattr(kb, "open_now", None))
        # One check for knowledge changes per turn instead of one per rendered template.
        self._steady: Callable[[], AbstractContextManager[None]] = (
            getattr(kb, "steady", None) or contextlib.nullcontext
        )
        self.flow = load_flow()
        self._understand = understand or _understand
        self.clock = clock
        # No-record conversations live here only; kept a little past the idle timeout.
        self.volatile = VolatileStates(ttl_seconds=max(4 * 3600, config.idle_minutes * 120))
        # Observers (statistics): after every turn, and before a conversation is deleted.
        self.turn_hooks: list[Callable[[Turn, IncomingMessage | None], None]] = []
        self.forget_hooks: list[Callable[[str], None]] = []
        # Run before the handlers; one that returns a label handled the turn (bot.relay:
        # the handover to a counselor, during which the bot stays silent).
        self.intercepts: list[Callable[[Turn, IncomingMessage], str | None]] = []
        # Asked before the 続きから greeting after the idle timeout; one that returns a label
        # greeted instead (bot.relay: the person is still with, or waiting for, a counselor).
        self.greet_intercepts: list[Callable[[Turn], str | None]] = []

    # -- public API -----------------------------------------------------------------

    async def handle(self, incoming: IncomingMessage) -> list[Reply]:
        """Answer one message or button press (CPU-only and fast; no executor needed).

        Args:
            incoming: what the person sent.

        Returns:
            The replies, in order.
        """
        return self.handle_sync(incoming)

    async def greet(self, user_key: str, channel: str) -> list[Reply]:
        """The greeting for a new contact (LINE follow, widget opened).

        A conversation that already exists gets the return greeting instead, so reopening
        the widget never loses anything.
        """
        with self._steady():
            return self._greet(user_key, channel)

    def _greet(self, user_key: str, channel: str) -> list[Reply]:
        now = self.clock()
        state, last, existed = self._load(user_key, now)
        turn = self._turn(user_key, channel, state, now)
        if existed and state.phase != CONSENT:
            if now - last > self.config.idle_minutes * 60 and state.crisis == "none":
                if not any(intercept(turn) for intercept in self.greet_intercepts):
                    turn.state = state.with_(phase=RETURN)
                    lookup("phase", RETURN)(turn, "")  # type: ignore[misc]
            else:
                return []
        else:
            greeting(turn)
        self._finish(turn, None, "", now)
        return turn.replies

    def forget(self, user_key: str) -> None:
        """Delete everything kept about ``user_key`` now (LINE unfollow, widget 会話を消す)."""
        for hook in self.forget_hooks:
            hook(user_key)
        self.store.delete_conversation(user_key)
        self.volatile.drop(user_key)

    # -- one turn -------------------------------------------------------------------

    def handle_sync(self, incoming: IncomingMessage) -> list[Reply]:
        """Synchronous core of :meth:`handle`."""
        started = time.perf_counter()
        if incoming.text:
            # Bidi overrides and invisible characters could disguise the text wherever
            # it is shown (console, transcript); they carry no meaning for triage.
            incoming = replace(incoming, text=display_safe(incoming.text))
        now = self.clock()
        state, last, existed = self._load(incoming.user_key, now)
        turn = self._turn(incoming.user_key, incoming.channel, state, now)
        said = incoming.text or _label_of(incoming.postback or "", state.offered)
        with self._steady():
            kind = self._dispatch(turn, incoming, last, existed)
        self._finish(turn, incoming, said, now)
        logger.info(
            "turn %s/%s phase=%s replies=%d in %.1f ms",
            incoming.channel,
            kind,
            turn.state.phase,
            len(turn.replies),
            (time.perf_counter() - started) * 1000,
        )
        return turn.replies

    def _turn(self, user_key: str, channel: str, state: DialogueState, now: float) -> Turn:
        return Turn(
            kb=self.kb,
            renderer=self.renderer,
            flow=self.flow,
            user_key=user_key,
            channel=channel,
            state=state,
            now=now,
            retention_days=self.config.retention_days,
        )

    def _load(self, user_key: str, now: float) -> tuple[DialogueState, float, bool]:
        """(state, last activity, whether the person was here before)."""
        conv = self.store.get(user_key)
        if conv is not None and conv.consent == "granted":
            state = DialogueState.from_dict(dict(conv.state)).with_(consent="granted")
            return state, conv.last_activity, True
        held = self.volatile.get(user_key, now)
        if held is not None:
            return held[0], held[1], True
        if conv is not None and conv.consent == "declined":
            # The no-record choice is remembered; the conversation itself never was.
            return DialogueState(phase=OPEN, consent="declined"), conv.last_activity, True
        return DialogueState(), now, False

    def _dispatch(self, turn: Turn, incoming: IncomingMessage, last: float, existed: bool) -> str:
        """Run the right handler; returns a short label of what ran (for the log)."""
        for intercept in self.intercepts:
            label = intercept(turn, incoming)
            if label:
                return label
        state = turn.state
        if incoming.postback:
            return self._postback(turn, incoming.postback, existed)
        text = (incoming.text or "").strip()
        if not text:
            if existed:
                turn.say("empty_message")
            else:
                greeting(turn)
            return "empty"
        u = self._safe_understand(text)
        said = Slots.from_understanding(u)
        # Crisis first, whatever the phase, before commands and buttons.
        if u.crisis != "none":
            escalate(turn, u.crisis, u.crisis_categories, said)
            return "crisis"
        postback = match_offered(text, state.offered)
        if postback:
            return self._postback(turn, postback, existed)
        command = match_command(text)
        if command and (existed or command == "delete"):
            lookup("command", command)(turn, "")  # type: ignore[misc]
            return f"command:{command}"
        meaningful = bool(said.topics)
        if not existed or state.phase == CONSENT:
            if not existed:
                greeting(turn)
            else:
                lookup("phase", CONSENT)(turn, "")  # type: ignore[misc]
            # Kept in memory only until the person chooses about records.
            turn.state = turn.state.with_(pending=said if meaningful else None)
            return "consent"
        if now_idle(turn.now, last, self.config.idle_minutes) and state.crisis == "none":
            turn.state = state.with_(phase=RETURN, pending=said if meaningful else None)
            lookup("phase", RETURN)(turn, "")  # type: ignore[misc]
            return "return"
        if state.phase == RETURN:
            turn.state = state.with_(phase=OPEN, pending=None)
        apply_message(turn, said)
        return "message"

    def _postback(self, turn: Turn, postback: str, existed: bool) -> str:
        kind, _, value = postback.partition(":")
        if not existed and kind != "consent":
            # A button from a conversation that no longer exists (deleted, expired).
            greeting(turn)
            return "postback:stale"
        handler = lookup("postback", kind)
        if handler is None:
            turn.say("unknown_choice")
            return "postback:unknown"
        handler(turn, value)
        return f"postback:{kind}"

    def _safe_understand(self, text: str) -> Understanding:
        try:
            return self._understand(text[: self.config.max_message_chars])
        except Exception:
            # Never leave the person without an answer; the fallback asks them to choose.
            logger.exception("understanding failed; answering with the fallback")
            from intents.types import TopicScore, Understanding

            return Understanding(topics=(TopicScore("other", 0.0),))

    # -- persistence ------------------------------------------------------------------

    def _finish(self, turn: Turn, incoming: IncomingMessage | None, said: str, now: float) -> None:
        """Save state and masked messages (with consent) or keep state in memory only."""
        for hook in self.turn_hooks:
            hook(turn, incoming)
        user_key = turn.user_key
        for metric, key in turn.counts:
            self.store.count(metric, key, now=now)
        self.store.count("turn", turn.channel, now=now)
        if turn.delete_requested:
            self.forget(user_key)
            return
        state = turn.state.with_(offered=turn.offered(), turns=turn.state.turns + 1)
        if state.consent != "granted":
            self.volatile.put(user_key, state, now)
            if state.consent == "declined":
                # Only the choice itself, so the person is not asked again after a restart.
                self.store.save(user_key, turn.channel, {}, "declined", now=now)
            return
        self.volatile.drop(user_key)
        messages: list[TurnMessage] = []
        if incoming is not None and said:
            msg_id = incoming.event_id if incoming.text else None
            messages.append(TurnMessage("in", said, channel_message_id=msg_id))
        out = "\n".join(filter(None, (_reply_text(r) for r in turn.replies)))
        if out:
            messages.append(TurnMessage("out", out))
        # One commit for the state and both messages (masked by the store).
        self.store.save_turn(user_key, turn.channel, state.to_dict(), "granted", messages, now=now)


def now_idle(now: float, last: float, idle_minutes: int) -> bool:
    """Whether the conversation has been idle longer than the timeout."""
    return now - last > idle_minutes * 60


def _label_of(postback: str, offered: tuple[tuple[str, str], ...]) -> str:
    """The transcript line of a button press: its label, or the postback id."""
    if not postback:
        return ""
    return next((label for label, pb in offered if pb == postback), f"[{postback}]")


def _reply_text(reply: Reply) -> str:
    """What is kept of a reply in the transcript (template text and resource names)."""
    if isinstance(reply, TextReply | EndReply | HandoffNotice):
        return reply.text
    if isinstance(reply, ChoicesReply):
        return reply.text + " [" + " / ".join(c.label for c in reply.items) + "]"
    if isinstance(reply, ResourcesReply):
        return "\n".join([reply.intro, *(f"・{c.name}" for c in reply.items)]).strip()
    return ""
