"""The LINE channel: a signed webhook in, the Messaging API (line-bot-sdk v3) out."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import ClientTimeout, web
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)
from linebot.v3.models.events import UnknownEvent
from linebot.v3.webhook import SignatureValidator
from linebot.v3.webhooks import (
    Event,
    FollowEvent,
    GroupSource,
    JoinEvent,
    MessageEvent,
    PostbackEvent,
    RoomSource,
    TextMessageContent,
    UnfollowEvent,
    UnsendEvent,
    UserSource,
)

from bot import keys
from bot.channels.base import IncomingMessage
from bot.channels.line_ids import LineIdVault
from bot.channels.line_render import Message, batches, render, texts
from bot.config import Config
from bot.dialogue.replies import Reply, TextReply
from bot.identity import user_key
from knowledge.db import connect

logger = logging.getLogger(__name__)

CHANNEL = "line"
# LINE does not publish the exact lifetime of a reply token; answers later than this
# go out as push messages instead of risking an "Invalid reply token".
REPLY_WINDOW_SECONDS = 50.0
EVENT_TTL_SECONDS = 7 * 86400  # LINE redelivers for at most a few days
API_TIMEOUT = ClientTimeout(total=8)
LOADING_TIMEOUT = ClientTimeout(total=3)
LOADING_SECONDS = 20
# The loading animation costs one Messaging API round trip before the answer, so it is
# shown only when the answer is late: not ready this long after the webhook arrived
# (a backlog, or a slow turn). A turn normally takes well under a millisecond.
LOADING_AFTER_SECONDS = 0.5
PUSH_ATTEMPTS = 3
SHUTDOWN_GRACE_SECONDS = 10.0
NOT_CONFIGURED = (
    "LINE is not configured: set LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN "
    "(and TSUNAGU_LINE_API_BASE for a non-default API host), then restart."
)


class EngineLike(Protocol):
    """What the channel needs of ``bot.dialogue.engine.Engine``."""

    async def handle(self, incoming: IncomingMessage) -> list[Reply]:
        """Answer one message."""

    async def greet(self, user_key: str, channel: str) -> list[Reply]:
        """First contact: greeting and privacy notice."""

    def forget(self, user_key: str) -> Any:
        """Delete the person's conversation (may be a coroutine)."""


class StoreLike(Protocol):
    """What the channel needs of ``handoff.store.ConversationStore``."""

    def claim_event(self, event_id: str, ttl_seconds: int = ...) -> bool:
        """Atomically claim an event id; False for a duplicate."""

    def delete_message(self, user_key: str, channel_message_id: str) -> bool:
        """Delete one stored message."""


class PushFailed(RuntimeError):
    """A push message could not be delivered; ``reason`` says why (no text, no ids)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # unknown_user | quota | rejected | unavailable


@dataclass(frozen=True, slots=True)
class _Target:
    """Where the answer to one event goes."""

    chat_id: str  # LINE user id (1:1) — never logged
    reply_token: str | None
    received_ms: int
    retry_seed: str  # makes push retry keys stable for the same event


class LineChannel:
    """Everything the LINE channel holds while the app runs.

    Build it inside the running event loop (``cleanup_ctx``): the SDK's
    ``AsyncApiClient`` opens an aiohttp session on construction.
    """

    def __init__(
        self,
        app: web.Application,
        config: Config,
        *,
        engine: EngineLike | None = None,
        conversations: StoreLike | None = None,
    ) -> None:
        """Open the API client and the encrypted id table.

        Args:
            app: the application (engine and stores are read from it per event).
            config: the service configuration with LINE settings.
            engine: the dialogue engine; default ``app[keys.ENGINE]``.
            conversations: the conversation store; default ``app[keys.CONVERSATIONS]``.
        """
        self.app = app
        self._engine = engine
        self._conversations = conversations
        self.config = config
        self.parser = WebhookParser(config.line_channel_secret)
        self.validator = SignatureValidator(config.line_channel_secret)
        self.client = AsyncApiClient(
            Configuration(
                host=config.line_api_base.rstrip("/"),
                access_token=config.line_channel_access_token,
            )
        )
        self.api = AsyncMessagingApi(self.client)
        self.db = connect(config.db_path)
        self.vault = LineIdVault(self.db, config.secret)
        self.vault.purge(config.retention_days)
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # chat → (lock, tasks)

    @property
    def engine(self) -> EngineLike:
        """The dialogue engine."""
        return self._engine or self.app[keys.ENGINE]  # type: ignore[attr-defined]

    @property
    def conversations(self) -> StoreLike:
        """The conversation store (event claims, unsend)."""
        return self._conversations or self.app[keys.CONVERSATIONS]  # type: ignore[attr-defined]

    async def close(self) -> None:
        """Let running event tasks finish (briefly), cancel the rest, close the client."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.client.close()
        self.db.conn.close()

    async def idle(self) -> None:
        """Wait until every event received so far has been handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*set(self._tasks), return_exceptions=True)

    # -------------------------------------------------------------------- webhook
    def dispatch(self, events: Sequence[Event], received: float | None = None) -> None:
        """Handle parsed events in background tasks: one per chat, in timestamp order.

        Args:
            events: the parsed webhook events.
            received: ``time.monotonic()`` when the webhook arrived (defaults to now).
        """
        received = time.monotonic() if received is None else received
        by_chat: dict[str, list[Event]] = {}
        for event in events:
            by_chat.setdefault(_chat_key(event), []).append(event)
        for chat, chat_events in by_chat.items():
            chat_events.sort(key=lambda e: e.timestamp or 0)
            task = asyncio.create_task(self._run_chat(chat, chat_events, received))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_chat(self, chat: str, events: list[Event], received: float) -> None:
        lock, users = self._locks.get(chat, (asyncio.Lock(), 0))
        self._locks[chat] = (lock, users + 1)
        try:
            async with lock:  # a later webhook for the same chat waits its turn (FIFO)
                for event in events:
                    started = time.monotonic()
                    try:
                        await self._handle(event, received)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        logger.error(
                            "LINE event %s failed: %s", event.webhook_event_id, type(exc).__name__
                        )
                    logger.debug(
                        "LINE event %s handled in %.0f ms",
                        event.webhook_event_id,
                        (time.monotonic() - started) * 1000,
                    )
        finally:
            lock, users = self._locks[chat]
            if users <= 1:
                del self._locks[chat]
            else:
                self._locks[chat] = (lock, users - 1)

    async def _handle(self, event: Event, received: float) -> None:
        event_id = event.webhook_event_id
        if isinstance(event, UnknownEvent):
            logger.info("LINE event %s of unknown type %r ignored", event_id, event.type)
            return
        if str(getattr(event.mode, "value", event.mode)) == "standby":
            logger.info("LINE event %s in standby mode: not answered", event_id)
            return
        conversations = self.conversations
        if not conversations.claim_event(event_id, EVENT_TTL_SECONDS):
            logger.info("LINE event %s already handled (redelivery): skipped", event_id)
            return
        source = event.source
        if isinstance(event, JoinEvent):
            await self._leave(event)
            return
        if not isinstance(source, UserSource) or not source.user_id:
            # Messages in groups and rooms (which we leave at once) are not read.
            logger.info("LINE event %s (%s) outside a 1:1 chat ignored", event_id, event.type)
            return
        key = user_key(CHANNEL, source.user_id, self.config.secret)
        target = _Target(
            source.user_id, getattr(event, "reply_token", None), event.timestamp, event_id
        )
        engine = self.engine
        if isinstance(event, UnfollowEvent):
            await _maybe_await(engine.forget(key))
            self.vault.forget(key)
            logger.info("LINE event %s: unfollow, conversation deleted", event_id)
            return
        if isinstance(event, UnsendEvent):
            conversations.delete_message(key, event.unsend.message_id)
            return
        self.vault.remember(key, source.user_id)
        if isinstance(event, FollowEvent):
            await self._deliver(target, await engine.greet(key, CHANNEL))
        elif isinstance(event, MessageEvent) and isinstance(event.message, TextMessageContent):
            incoming = IncomingMessage(
                CHANNEL, key, text=event.message.text, event_id=event.message.id
            )
            await self._answer(target, incoming, received)
        elif isinstance(event, MessageEvent):
            # Stickers, images, audio, video, files, locations: nothing is downloaded.
            logger.info("LINE event %s: %s message not read", event_id, event.message.type)
            await self._deliver(target, [TextReply(texts()["media"])])
        elif isinstance(event, PostbackEvent):
            incoming = IncomingMessage(
                CHANNEL, key, postback=event.postback.data, event_id=event_id
            )
            await self._answer(target, incoming, received)
        else:
            logger.info("LINE event %s of type %s ignored", event_id, event.type)

    async def _answer(self, target: _Target, incoming: IncomingMessage, received: float) -> None:
        turn = asyncio.ensure_future(self.engine.handle(incoming))
        try:
            budget = LOADING_AFTER_SECONDS - (time.monotonic() - received)
            done, _ = await asyncio.wait({turn}, timeout=max(budget, 0.0))
            if not done:
                # Late: let the person see that an answer is coming (it stops by itself
                # when the answer arrives, so it must go out before the answer).
                await self._show_loading(target.chat_id)
            replies = await turn
        except asyncio.CancelledError:
            turn.cancel()
            raise
        except Exception as exc:
            logger.error("engine failed on LINE event: %s", type(exc).__name__)
            replies = [TextReply(texts()["error"])]
        await self._deliver(target, replies)

    async def _show_loading(self, chat_id: str) -> None:
        try:
            await self.api.show_loading_animation(
                ShowLoadingAnimationRequest(chatId=chat_id, loadingSeconds=LOADING_SECONDS),
                _request_timeout=LOADING_TIMEOUT,
            )
        except Exception as exc:  # cosmetic: never let it stop the answer
            logger.debug("loading animation not shown: %s", type(exc).__name__)

    async def _leave(self, event: JoinEvent) -> None:
        source = event.source
        chat_id = getattr(source, "group_id", None) or getattr(source, "room_id", None)
        if not chat_id:
            return
        target = _Target(chat_id, event.reply_token, event.timestamp, event.webhook_event_id)
        await self._deliver(target, [TextReply(texts()["group"])])
        try:
            if isinstance(source, GroupSource):
                await self.api.leave_group(chat_id, _request_timeout=API_TIMEOUT)
            elif isinstance(source, RoomSource):
                await self.api.leave_room(chat_id, _request_timeout=API_TIMEOUT)
            logger.info("LINE event %s: left a %s", event.webhook_event_id, source.type)
        except ApiException as exc:
            logger.warning("leaving a LINE %s failed: HTTP %s", source.type, exc.status)

    # -------------------------------------------------------------------- sending
    async def _deliver(self, target: _Target, replies: Sequence[Reply]) -> None:
        """Send replies: the first call with the reply token while it is fresh, then push."""
        calls = batches(render(replies))
        token = target.reply_token
        age = time.time() - target.received_ms / 1000
        for i, messages in enumerate(calls):
            if (
                token
                and i == 0
                and age < REPLY_WINDOW_SECONDS
                and await self._reply(token, messages)
            ):
                continue
            key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tsunagu:line:{target.retry_seed}:{i}"))
            try:
                await self._push(target.chat_id, messages, key)
            except PushFailed as exc:
                logger.warning("LINE answer not delivered: %s", exc.reason)
                return

    async def _reply(self, token: str, messages: list[Message]) -> bool:
        request = ReplyMessageRequest.from_dict({"replyToken": token, "messages": messages})
        try:
            await self.api.reply_message(request, _request_timeout=API_TIMEOUT)
            return True
        except ApiException as exc:
            # Invalid/expired token → push instead. Other 4xx would fail as a push too,
            # but the push path logs it and keeps the reason.
            logger.info("LINE reply refused (HTTP %s); pushing instead", exc.status)
        except (TimeoutError, OSError) as exc:
            # The reply may or may not have arrived; a push could duplicate it, but
            # silence would be worse for someone asking for help.
            logger.warning("LINE reply failed (%s); pushing instead", type(exc).__name__)
        return False

    async def _push(self, to: str, messages: list[Message], retry_key: str) -> None:
        request = PushMessageRequest.from_dict({"to": to, "messages": messages})
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            try:
                await self.api.push_message(
                    request, x_line_retry_key=retry_key, _request_timeout=API_TIMEOUT
                )
                return
            except ApiException as exc:
                if exc.status == 409:  # this retry key was accepted before: sent once
                    return
                if exc.status == 429:
                    raise PushFailed("quota") from exc
                if exc.status is not None and 400 <= exc.status < 500:
                    reason = "unknown_user" if _error_message(exc) == _NO_SUCH_USER else "rejected"
                    raise PushFailed(reason) from exc
                logger.warning("LINE push attempt %d: HTTP %s", attempt, exc.status)
            except (TimeoutError, OSError) as exc:
                logger.warning("LINE push attempt %d: %s", attempt, type(exc).__name__)
            await asyncio.sleep(0.2 * attempt)
        raise PushFailed("unavailable")

    async def push(self, user: str, replies: Sequence[Reply]) -> None:
        """Push replies to a person outside a webhook (a counselor's answer).

        Args:
            user: the pseudonymous user key (``line:…``) or a raw LINE user id.
            replies: what to send; split into calls of 5 messages.

        Raises:
            PushFailed: unknown user, push quota exhausted (429), refused, or LINE
                unreachable after retries. A user who blocked the account cannot be
                detected: LINE answers 200 and delivers nothing.
        """
        line_id = self.vault.lookup(user) if user.startswith(f"{CHANNEL}:") else user
        if not line_id:
            raise PushFailed("unknown_user")
        push_id = uuid.uuid4().hex
        for i, messages in enumerate(batches(render(replies))):
            key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tsunagu:line:push:{push_id}:{i}"))
            await self._push(line_id, messages, key)

    async def send(self, user_key: str, replies: Sequence[Reply]) -> None:
        """``OutgoingChannel``: deliver replies to a LINE user by push."""
        await self.push(user_key, replies)


_NO_SUCH_USER = "Failed to send messages"


def _error_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))
    except (ValueError, AttributeError):
        return ""


def _chat_key(event: Event) -> str:
    source = event.source
    for attr in ("user_id", "group_id", "room_id"):
        value = getattr(source, attr, None)
        if value and (attr != "user_id" or isinstance(source, UserSource)):
            return f"{attr}:{value}"
    for attr in ("group_id", "room_id", "user_id"):
        value = getattr(source, attr, None)
        if value:
            return f"{attr}:{value}"
    return f"event:{event.webhook_event_id}"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


# ------------------------------------------------------------------------ aiohttp wiring
LINE = web.AppKey("line_channel", LineChannel)


async def webhook(request: web.Request) -> web.StreamResponse:
    """``POST /line/webhook``: verify, parse, answer 200 at once, handle in the background."""
    received = time.monotonic()
    channel = request.app.get(LINE)
    if channel is None:
        return web.json_response({"error": NOT_CONFIGURED}, status=503)
    signature = request.headers.get("X-Line-Signature", "")
    raw = await request.read()
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        body = None
    # The signature is checked before anything else looks at the body.
    if not signature or body is None or not channel.validator.validate(body, signature):
        logger.warning("LINE webhook refused: missing or invalid signature")
        return web.json_response({"error": "invalid signature"}, status=400)
    try:
        events = channel.parser.parse(body, signature)
    except InvalidSignatureError:
        logger.warning("LINE webhook refused: invalid signature")
        return web.json_response({"error": "invalid signature"}, status=400)
    except Exception as exc:  # malformed JSON or events that even UnknownEvent cannot hold
        logger.warning("LINE webhook body not understood: %s", type(exc).__name__)
        return web.json_response({"error": "malformed body"}, status=400)
    if events:
        channel.dispatch(events, received)
    return web.Response(text="OK")


def _line_ctx(
    engine: EngineLike | None, conversations: StoreLike | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        if not config.line_enabled:
            logger.info("LINE channel off (no LINE_CHANNEL_SECRET / LINE_CHANNEL_ACCESS_TOKEN)")
            yield
            return
        channel = LineChannel(app, config, engine=engine, conversations=conversations)
        app[LINE] = channel
        yield
        await channel.close()

    return ctx


def setup(
    app: web.Application,
    *,
    engine: EngineLike | None = None,
    conversations: StoreLike | None = None,
) -> None:
    """Add the LINE webhook route and the channel's lifetime to the app.

    Args:
        app: the application.
        engine: override of ``app[keys.ENGINE]`` (tests).
        conversations: override of ``app[keys.CONVERSATIONS]`` (tests).
    """
    app.router.add_post("/line/webhook", webhook)
    app.cleanup_ctx.append(_line_ctx(engine, conversations))
