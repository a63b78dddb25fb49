"""The bot side of the handover: offer a counselor, keep the bot silent, relay both ways.

The engine calls :meth:`Relay.intercept` before its own handlers on every turn:

- 人と話したい (typed, or the 相談員と話したい button) → what will be shared, and the
  consent question 同意する / 匿名のまま / やめる; the choice creates the case;
- while a case is open the bot stays silent: messages go to the counselor, only
  最初から (leaves the case) and 履歴を消して (deletes everything) still work, and crisis
  words while nobody has answered yet bring the crisis lines at once;
- counselor messages, resource cards and notices (claimed, wait grew, closed …) reach the
  person through the bus: ``deliver:web`` fills the widget person's numbered in-memory
  outbox (replayed after a reconnect, polled in the HTTP fallback), LINE pushes from
  ``deliver:line``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from bot import keys
from bot.channels.base import IncomingMessage
from bot.dialogue.commands import match_command
from bot.dialogue.engine import Engine, match_offered
from bot.dialogue.handlers.crisis import crisis_referrals
from bot.dialogue.replies import HandoffNotice, Reply, TextReply
from bot.dialogue.state import CONSENT
from bot.dialogue.turn import Turn
from handoff.bus import EventBus, MemoryBus
from handoff.desk import Desk
from handoff.models import CaseSummary, Escalation, QueueInfo
from handoff.states import WAITING
from knowledge.hours import JST
from knowledge.types import Referral

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0
COUNSELOR_PREFIX = "【相談員】"
_WEEKDAYS = "月火水木金土日"
_NOTICE_TEMPLATES = {
    "claimed": "handoff_claimed",
    "closed": "handoff_closed",
    "returned": "handoff_returned",
    "abandoned": "handoff_abandoned",
    "transferred": "handoff_transferred",
    "wait_grew": "handoff_wait_grew",
}
CONSENT_BUTTONS = (
    ("btn_handoff_full", "handoff:full"),
    ("btn_handoff_anonymous", "handoff:anonymous"),
    ("btn_handoff_cancel", "handoff:cancel"),
)


def format_wait(seconds: float) -> str:
    """A wait as people say it: 約10分 / 約1時間30分 (rounded up to 5 minutes)."""
    minutes = max(5, math.ceil(seconds / 60 / 5) * 5)
    if minutes < 60:
        return f"約{minutes}分"
    hours, rest = divmod(minutes, 60)
    return f"約{hours}時間" + (f"{rest}分" if rest else "")


def format_moment(timestamp: float) -> str:
    """A moment in Japan time: 1月14日（月）9時00分."""
    t = datetime.fromtimestamp(timestamp, JST)
    return f"{t.month}月{t.day}日（{_WEEKDAYS[t.weekday()]}）{t.hour}時{t.minute:02d}分"


class Relay:
    """Engine intercept, person-side rendering and delivery loops for the handover."""

    def __init__(self, desk: Desk, engine: Engine) -> None:
        """Create the relay and attach it to the engine (intercept and forget hooks)."""
        self.desk = desk
        self.engine = engine
        self.outboxes: Outboxes | None = None  # the widget's (set by the app)
        engine.intercepts.append(self.intercept)
        engine.forget_hooks.append(self.forget)
        engine.greet_intercepts.append(self.greet_status)

    # -- the engine's side ------------------------------------------------------------

    def intercept(self, turn: Turn, incoming: IncomingMessage) -> str | None:
        """Handle the turn when it belongs to the handover; None lets the bot answer.

        Returns:
            A short label for the log when handled, else None.
        """
        key = turn.user_key
        case = self.desk.open_case(key)
        text = (incoming.text or "").strip()
        postback = incoming.postback
        if postback is None and text:
            postback = match_offered(text, turn.state.offered)
        if case is None:
            if postback and postback.startswith("handoff:"):
                return self._choose(turn, incoming, postback.partition(":")[2])
            wants = postback == "cmd:human" or (
                postback is None and text and match_command(text) == "human"
            )
            if wants and turn.state.phase != CONSENT:
                return self._offer(turn)
            return None
        # A counselor has (or will have) the conversation: the bot stays silent.
        if postback == "cmd:restart" or (text and match_command(text) == "restart"):
            self.desk.person_leaves(key)
            turn.say("handoff_left")
            return None  # the engine's 最初から runs next
        if text and match_command(text) == "delete":
            return None  # 履歴を消して: the engine deletes; the forget hook empties the case
        if postback is not None or not text:
            turn.say("handoff_in_progress")
            return "handoff:busy"
        u = self.engine._safe_understand(text)
        relayed = self.desk.person_message(key, text, crisis=u.crisis, now=turn.now)
        if u.crisis != "none":
            levels = ("none", "concern", "urgent")
            turn.state = turn.state.with_(
                crisis=max(u.crisis, turn.state.crisis, key=levels.index)
            )
            turn.count("crisis", u.crisis)
            if relayed is not None and relayed[0].state == WAITING:
                # Nobody has answered yet: never leave the person without a phone line.
                turn.say("handoff_crisis_waiting")
                referrals = crisis_referrals(turn, u.crisis_categories)
                if referrals:
                    turn.add(turn.renderer.resources(referrals, now=turn.when))
        return "handoff:relay"

    def _offer(self, turn: Turn) -> str:
        slots = turn.state.slots
        office = self.desk.offices.route(slots.area, slots.topics)
        turn.count("handoff", "offered")
        turn.ask("handoff_explain", CONSENT_BUTTONS, office=office.label)
        return "handoff:offer"

    def _choose(self, turn: Turn, incoming: IncomingMessage, value: str) -> str:
        if value == "cancel":
            turn.count("handoff", "cancelled")
            turn.say("handoff_cancelled")
            return "handoff:cancel"
        if value not in ("full", "anonymous"):
            turn.say("unknown_choice")
            return "handoff:unknown"
        state = turn.state
        slots = state.slots
        if state.crisis != "none":
            reason = "crisis"
        elif not slots.topics or state.fallback >= 2 or not slots.confident:
            reason = "unroutable"
        else:
            reason = "requested"
        recommended = tuple(r.resource.id for r in turn.route(slots, crisis=state.crisis))
        area = slots.area
        summary = CaseSummary(
            topics=slots.topics,
            audience=slots.audience,
            age_group=slots.age_group,
            area_name=(area.municipality or area.prefecture) if area else None,
            area_code=(area.municipality_code or area.prefecture_code) if area else None,
            crisis=state.crisis,
            recommended=recommended,
        )
        conv = self.engine.store.get(turn.user_key)
        conversation_id = conv.id if conv is not None and conv.consent == "granted" else None
        case, info = self.desk.escalate(
            user_key=turn.user_key,
            channel=turn.channel,
            consent=value,
            reason=reason,
            summary=summary,
            area=area,
            conversation_id=conversation_id,
            now=turn.now,
        )
        turn.count("handoff", value)
        turn.add(HandoffNotice(status="waiting", text=self._waiting_text(turn, case, info)))
        if not info.open_now or state.crisis != "none":
            referrals = crisis_referrals(turn, ())
            if referrals:
                turn.add(turn.renderer.resources(referrals, now=turn.when))
        logger.info("case %d queued (%s, %s)", case.id, reason, value)
        return "handoff:queued"

    def _waiting_text(self, turn: Turn, case: Escalation, info: QueueInfo) -> str:
        """Where the person is in the queue, or when the office opens."""
        if info.open_now:
            return turn.renderer.text(
                "handoff_waiting",
                position=info.position,
                wait=format_wait(info.expected_wait_seconds),
            )
        if info.next_opening is not None:
            return turn.renderer.text(
                "handoff_after_hours",
                office=self.desk.office_of(case).label,
                next_opening=format_moment(info.next_opening),
            )
        return turn.renderer.text("handoff_no_opening")

    def greet_status(self, turn: Turn) -> str | None:
        """Back after the idle timeout with a case open: where they stand, not 続きから."""
        case = self.desk.open_case(turn.user_key)
        if case is None:
            return None
        if case.state == WAITING:
            info = self.desk.queue_info(case, turn.now)
            turn.add(HandoffNotice(status="waiting", text=self._waiting_text(turn, case, info)))
        else:
            text = turn.renderer.text("handoff_still_connected")
            turn.add(HandoffNotice(status="active", text=text))
        return "handoff:status"

    def forget(self, user_key: str) -> None:
        """The person deleted their conversation: their case ends and is emptied."""
        self.desk.forget(user_key)
        if self.outboxes is not None:
            self.outboxes.drop(user_key)

    # -- the person's side ------------------------------------------------------------

    def render(self, event: Mapping[str, Any]) -> list[Reply]:
        """What a ``to_person`` bus event shows the person (empty when nothing)."""
        renderer = self.engine.renderer
        kind = event.get("kind")
        if kind == "text":
            return [TextReply(COUNSELOR_PREFIX + str(event.get("text", "")))]
        if kind == "resource":
            resource = self.desk_kb_resource(str(event.get("resource_id", "")))
            if resource is None:
                return []
            referral = Referral(resource=resource, reason="相談員からのご案内です。", rank=1)
            return [renderer.resources([referral], now=datetime.now(JST))]
        if kind == "notice":
            notice = str(event.get("notice", ""))
            template = _NOTICE_TEMPLATES.get(notice)
            if template is None:
                return []
            context: dict[str, Any] = {}
            if notice == "wait_grew":
                context = {
                    "position": event.get("position", 0),
                    "wait": format_wait(float(event.get("wait_seconds", 0.0))),
                }
            elif notice == "transferred":
                context = {"office": event.get("office", "")}
            return [HandoffNotice(status=notice, text=renderer.text(template, **context))]
        return []

    def desk_kb_resource(self, resource_id: str) -> Any:
        """The knowledge base's resource with this id, or None."""
        get = getattr(self.engine.kb, "get_resource", None)
        return get(resource_id) if get is not None and resource_id else None


# -- delivery loops ---------------------------------------------------------------------------


async def _deliver_line(app: web.Application, relay: Relay, bus: EventBus) -> None:
    """Push what counselors send to people on LINE."""
    from bot.channels.line import LINE, PushFailed

    sub = bus.subscribe("deliver:line")
    try:
        async for event in sub:
            channel = app.get(LINE)
            replies = relay.render(event)
            if channel is None or not replies:
                continue
            try:
                await channel.push(str(event["user_key"]), replies)
            except PushFailed as exc:
                logger.warning("case %s: LINE push failed (%s)", event.get("case"), exc.reason)
            except Exception:
                logger.exception("case %s: LINE push failed", event.get("case"))
    finally:
        sub.close()


async def _sweep(desk: Desk) -> None:
    """Abandon idle cases now and then (crisis cases never)."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            desk.expire()
        except Exception:
            logger.exception("handoff sweep failed; retrying")


# -- the widget's outbox: counselor messages numbered per person, replayed on reconnect ------

OUTBOX_PER_PERSON = 200  # unacknowledged pushes kept per person
# Outboxes kept for people who are not connected, at most this many empty ones and this many
# holding uncollected pushes; beyond that the oldest go (those holding pushes: logged, counts
# only). A connected person's outbox is not counted: it lives as long as its socket or poll.
OUTBOX_PEOPLE = 10_000
# Uncollected pushes are kept this long after the outbox's last activity (every push starts
# the clock again): the widget keeps its session for as long as the tab lives, so a person
# who left the tab open finds the counselor's answer the next morning.
OUTBOX_IDLE_SECONDS = 24 * 3600.0
# An empty outbox nobody follows is only a numbering: kept briefly (a quick reconnect keeps
# it), then dropped. The next push starts a new numbering, which clients take from its start.
OUTBOX_EMPTY_SECONDS = 60.0
FOLLOW_CHECK_SECONDS = 30.0
_CAP_LOG_SECONDS = 60.0

Push = tuple[int, list[dict[str, Any]]]


class Outbox:
    """What reached one widget person from the counselor side, numbered 1, 2, 3 …

    In memory only: the person gets exactly what the counselor typed (the stored copy is
    masked), and nothing of it is written anywhere. ``epoch`` names this numbering; a
    client holding another epoch (the server restarted, the outbox was dropped) gets
    everything the outbox holds. There is one per connected widget person, so it is small:
    slots, and the wake-up event exists only while someone waits.
    """

    __slots__ = (
        "_changed",
        "_home",
        "_waiting",
        "epoch",
        "items",
        "key",
        "limit",
        "seq",
        "touched",
        "watchers",
    )

    def __init__(
        self, limit: int = OUTBOX_PER_PERSON, *, key: str = "", home: Outboxes | None = None
    ) -> None:
        """Create an empty outbox keeping at most ``limit`` unacknowledged entries.

        Args:
            limit: unacknowledged pushes kept (the oldest go first).
            key: the person's user key (for ``home``).
            home: the :class:`Outboxes` keeping it (told when it empties, fills, is followed).
        """
        self.epoch = secrets.token_hex(6)
        self.seq = 0
        self.items: list[Push] = []
        self.limit = limit
        self.key = key
        self.touched = time.monotonic()
        self.watchers = 0  # sockets following it and polls waiting on it
        self._home = home
        self._changed: asyncio.Event | None = None  # only while someone waits (~0.7 KiB)
        self._waiting = 0

    def add(self, messages: list[dict[str, Any]]) -> int:
        """Append one push (widget message objects); returns its number."""
        self.seq += 1
        self.items.append((self.seq, messages))
        if len(self.items) > self.limit:
            del self.items[0]
        self._moved()
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return self.seq

    def after(self, epoch: str | None, seq: int) -> list[Push]:
        """The entries the client holding (epoch, seq) has not seen."""
        if epoch != self.epoch:
            seq = 0
        return [(n, m) for n, m in self.items if n > seq]

    def ack(self, epoch: str | None, seq: int) -> None:
        """The client has seen everything up to ``seq``: drop it."""
        items = self.items
        if epoch != self.epoch or not items or items[0][0] > seq:
            return
        done = 0
        while done < len(items) and items[done][0] <= seq:
            done += 1
        del items[:done]
        self._moved()

    async def wait(self, seq: int, timeout: float) -> None:
        """Return once an entry after ``seq`` exists, or after ``timeout`` seconds."""
        if self.seq > seq:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        self._waiting += 1
        self.watch()  # a push must come to this outbox, not a new one, while we wait
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        finally:
            self._waiting -= 1
            if not self._waiting and self._changed is changed:
                self._changed = None
            self.release()

    def watch(self) -> None:
        """Someone follows this outbox (a socket): it is kept until :meth:`release`."""
        self.watchers += 1
        self._moved()

    def release(self) -> None:
        """One follower is gone (an empty outbox nobody follows is soon dropped)."""
        self.watchers = max(0, self.watchers - 1)
        self._moved()

    def _moved(self) -> None:
        if self._home is not None:
            self._home.place(self)
        else:
            self.touched = time.monotonic()


class Outboxes:
    """The outboxes of widget people, by user key.

    A followed outbox (a socket follows it, a poll waits on it) stays while followed.
    The others wait in two queues in order of last activity, each swept from its front
    whenever an outbox is opened (amortized O(1)): an empty one goes after
    ``empty_seconds``, one holding uncollected pushes after ``idle_seconds``. So memory
    follows the people connected now and the pushes not yet collected, not everyone who
    ever opened the widget.
    """

    def __init__(
        self,
        people: int = OUTBOX_PEOPLE,
        idle_seconds: float = OUTBOX_IDLE_SECONDS,
        empty_seconds: float = OUTBOX_EMPTY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the outboxes.

        Args:
            people: outboxes kept for people not connected, at most this many empty ones
                and this many holding pushes (the oldest go first; at least 1).
            idle_seconds: uncollected pushes are dropped after this long without activity.
            empty_seconds: an empty outbox nobody follows is dropped after this long.
            clock: monotonic time source.
        """
        self._boxes: dict[str, Outbox] = {}
        self._empty: OrderedDict[str, None] = OrderedDict()  # not followed, nothing held
        self._pending: OrderedDict[str, None] = OrderedDict()  # not followed, pushes held
        self.people = max(1, people)
        self.idle_seconds = idle_seconds
        self.empty_seconds = empty_seconds
        self.clock = clock
        self.dropped_at_cap = 0  # outboxes with uncollected pushes dropped at the cap
        self.expired = 0  # outboxes with uncollected pushes dropped after idle_seconds
        self._cap_logged = (-math.inf, 0)

    def open(self, user_key: str) -> Outbox:
        """The person's outbox (a new, empty one when there is none)."""
        self._sweep(self.clock())
        box = self._boxes.get(user_key)
        if box is None:
            box = self._boxes[user_key] = Outbox(key=user_key, home=self)
        self.place(box)
        return box

    def get(self, user_key: str) -> Outbox | None:
        """The person's outbox, if any."""
        return self._boxes.get(user_key)

    def drop(self, user_key: str) -> None:
        """Forget the person's outbox (they deleted their conversation)."""
        self._boxes.pop(user_key, None)
        self._empty.pop(user_key, None)
        self._pending.pop(user_key, None)

    def place(self, box: Outbox) -> None:
        """Note activity on ``box``: it goes to the back of its queue (or none if followed)."""
        box.touched = self.clock()
        key = box.key
        if self._boxes.get(key) is not box:
            return  # dropped or replaced: nothing to keep
        self._empty.pop(key, None)
        self._pending.pop(key, None)
        if box.watchers:
            return
        queue = self._pending if box.items else self._empty
        queue[key] = None
        if len(queue) > self.people:
            self._make_room(queue)

    def counts(self) -> dict[str, int]:
        """Outboxes followed, empty and holding uncollected pushes (for logs and benchmarks)."""
        waiting = len(self._empty) + len(self._pending)
        return {
            "followed": len(self._boxes) - waiting,
            "empty": len(self._empty),
            "pending": len(self._pending),
        }

    def __len__(self) -> int:
        return len(self._boxes)

    def _sweep(self, now: float) -> None:
        empty = self._empty
        while empty and now - self._boxes[next(iter(empty))].touched > self.empty_seconds:
            self.drop(next(iter(empty)))
        pending, expired = self._pending, 0
        while pending and now - self._boxes[next(iter(pending))].touched > self.idle_seconds:
            self.drop(next(iter(pending)))
            expired += 1
        if expired:
            self.expired += expired
            logger.info(
                "%d widget outboxes with uncollected pushes dropped after %.0f h",
                expired,
                self.idle_seconds / 3600,
            )
        if self.dropped_at_cap > self._cap_logged[1]:
            self._log_cap()

    def _make_room(self, queue: OrderedDict[str, None]) -> None:
        # The outbox just placed is at the back, so it is never the one dropped.
        while len(queue) > self.people:
            self.drop(next(iter(queue)))
            if queue is self._pending:
                self.dropped_at_cap += 1
        if queue is self._pending:
            self._log_cap()

    def _log_cap(self) -> None:
        # At most one line a minute: the count of outboxes with pushes lost to the cap.
        since, logged = self._cap_logged
        now = self.clock()
        if self.dropped_at_cap > logged and now - since >= _CAP_LOG_SECONDS:
            logger.warning(
                "widget outboxes at the cap of %d people not connected: %d holding "
                "uncollected pushes dropped so far",
                self.people,
                self.dropped_at_cap,
            )
            self._cap_logged = (now, self.dropped_at_cap)


OUTBOXES = web.AppKey("widget_outboxes", Outboxes)


def push_frame(seq: int, epoch: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A counselor-side push as a widget socket frame (``reply`` with a number)."""
    return {"type": "reply", "id": None, "seq": seq, "epoch": epoch, "messages": messages}


async def _deliver_web(app: web.Application, relay: Relay, bus: EventBus) -> None:
    """Put what counselors send to widget people into their outboxes (sockets follow them)."""
    from bot.channels.web import CHANNEL, reply_to_json

    sub = bus.subscribe(f"deliver:{CHANNEL}")
    try:
        async for event in sub:
            try:
                replies = relay.render(event)
                if replies:
                    box = app[OUTBOXES].open(str(event["user_key"]))
                    box.add([reply_to_json(r) for r in replies])
            except Exception:
                logger.exception("case %s: widget delivery failed", event.get("case"))
    finally:
        sub.close()


async def follow_outbox(
    app: web.Application, user_key: str, send: Any, epoch: str | None, seq: int
) -> None:
    """Send a person's outbox to one widget socket, from after (epoch, seq), until cancelled.

    Args:
        app: the application (its outboxes).
        user_key: the person.
        send: ``async (frame: dict) -> bool`` writing to the socket (False: it is gone).
        epoch: the outbox numbering the client last saw (None: none).
        seq: the last number the client saw in that numbering.
    """
    outboxes = app.get(OUTBOXES)
    if outboxes is None:
        return
    box = outboxes.open(user_key)
    box.watch()  # before any await: the outbox is kept while this socket follows it
    try:
        box.ack(epoch, seq)
        while True:
            for n, messages in box.after(epoch, seq):
                if not await send(push_frame(n, box.epoch, messages)):
                    return
                epoch, seq = box.epoch, n
            await box.wait(seq if epoch == box.epoch else 0, FOLLOW_CHECK_SECONDS)
            current = outboxes.open(user_key)
            if current is not box:
                # Dropped and made anew (履歴を消して): a new numbering, sent from its start.
                box.release()
                box = current
                box.watch()
    finally:
        box.release()  # pushes sent on this socket stay until the client's next hello acks them


def follow_widget(
    app: web.Application,
    ws: web.WebSocketResponse,
    session: str | None,
    task: asyncio.Task[None] | None,
    since: tuple[str | None, int] = (None, 0),
) -> asyncio.Task[None] | None:
    """Keep one widget socket following its session's outbox (call after every frame).

    Args:
        app: the application.
        ws: the socket.
        session: the socket's session (None before hello).
        task: the follower so far.
        since: (epoch, seq) of the last push the client saw, from its hello.

    Returns:
        The follower task (a new one when the socket's session changed).
    """
    if session is None or app.get(RELAY) is None:
        return task
    from bot.channels.web import CHANNEL
    from bot.identity import user_key

    key = user_key(CHANNEL, session, app[keys.CONFIG].secret)
    name = f"widget-follow:{hash(key)}"
    if task is not None and not task.done() and task.get_name() == name:
        return task
    if task is not None:
        task.cancel()

    async def send(frame: dict[str, Any]) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_json(frame)
        except ConnectionError:
            return False  # the client is gone; its next hello says what it has seen
        return True

    return asyncio.create_task(follow_outbox(app, key, send, *since), name=name)


RELAY = web.AppKey("relay", Relay)


async def _ctx(app: web.Application) -> AsyncIterator[None]:
    bus = MemoryBus()
    kb = app[keys.KB]
    desk = Desk.open(app[keys.DB], bus=bus, users=kb.list_users)
    app[keys.BUS] = bus
    app[keys.DESK] = desk
    app[RELAY] = Relay(desk, app[keys.ENGINE])
    app[OUTBOXES] = app[RELAY].outboxes = Outboxes()
    tasks = [
        asyncio.create_task(_deliver_line(app, app[RELAY], bus)),
        asyncio.create_task(_deliver_web(app, app[RELAY], bus)),
        asyncio.create_task(_sweep(desk)),
    ]
    logger.info("handoff desk ready (%d offices)", len(list(desk.offices)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        bus.close()


def setup(app: web.Application) -> None:
    """Open the desk and bus after ``bot.core`` and attach the relay to the engine."""
    app.cleanup_ctx.append(_ctx)
