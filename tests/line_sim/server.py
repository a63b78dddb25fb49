"""A local LINE platform: signs and sends webhooks, serves the Messaging API the bot uses."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from tests.line_sim import events as ev
from tests.line_sim.validate import RETRY_KEY, validate_messages

AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
_ID_PREFIXES = ("U", "C", "R")
_INVALID_TO = "The property, 'to', in the request body is invalid (line: -, column: -)"


@dataclass(slots=True)
class ApiCall:
    """One request the bot made to the simulated Messaging API, and the answer it got."""

    method: str
    path: str
    body: Any
    retry_key: str | None
    status: int
    response: Any
    request_id: str
    at: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Delivery:
    """Messages that reached (or would have reached) a chat."""

    via: str  # reply | push
    to: str  # user, group or room id
    messages: list[dict[str, Any]]
    request_id: str
    delivered: bool = True  # False when the user has blocked the account


@dataclass(slots=True)
class WebhookResult:
    """What the bot's webhook answered."""

    status: int
    text: str
    seconds: float


@dataclass(slots=True)
class _Token:
    chat_id: str
    issued: float
    used: bool = False


class LineSimulator:
    """The LINE platform, as far as tsunagu uses it, on a local port.

    Args:
        channel_secret: signs webhook bodies (``x-line-signature``).
        access_token: the only bearer token the API accepts.
        webhook_url: where webhook bodies are POSTed (can be set later).
        reply_token_ttl: seconds a reply token stays usable.
        push_quota: pushes allowed before 429 (``None`` = unlimited).
    """

    def __init__(
        self,
        channel_secret: str,
        access_token: str,
        *,
        webhook_url: str | None = None,
        reply_token_ttl: float = 60.0,
        push_quota: int | None = None,
    ) -> None:
        self.channel_secret = channel_secret
        self.access_token = access_token
        self.webhook_url = webhook_url
        self.reply_token_ttl = reply_token_ttl
        self.push_quota = push_quota
        self.bot_user_id = "U" + hashlib.md5(access_token.encode()).hexdigest()
        self.calls: list[ApiCall] = []
        self.deliveries: list[Delivery] = []
        self.loading: list[dict[str, Any]] = []
        self.left: list[str] = []
        self.known_chats: set[str] = set()
        self.blocked: set[str] = set()
        self.api_delay = 0.0  # seconds every API call waits before answering
        self._tokens: dict[str, _Token] = {}
        self._retry_keys: dict[str, tuple[str, list[dict[str, str]]]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the API; returns its base URL (for ``TSUNAGU_LINE_API_BASE``)."""
        app = web.Application()
        app.router.add_post("/v2/bot/message/reply", self._reply)
        app.router.add_post("/v2/bot/message/push", self._push)
        app.router.add_post("/v2/bot/chat/loading/start", self._loading)
        app.router.add_post("/v2/bot/group/{chat_id}/leave", self._leave)
        app.router.add_post("/v2/bot/room/{chat_id}/leave", self._leave)
        app.router.add_get("/v2/bot/info", self._info)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        bound_port = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{bound_port}"
        self._session = ClientSession(timeout=ClientTimeout(total=30))
        return self.base_url

    async def close(self) -> None:
        """Stop serving and close the webhook client."""
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> LineSimulator:
        if not self.base_url:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def app_env(self) -> dict[str, str]:
        """The environment that points tsunagu at this simulator (once it has started)."""
        return {
            "LINE_CHANNEL_SECRET": self.channel_secret,
            "LINE_CHANNEL_ACCESS_TOKEN": self.access_token,
            "TSUNAGU_LINE_API_BASE": self.base_url,
        }

    # ------------------------------------------------------------------ webhooks
    def sign(self, body: bytes) -> str:
        """The ``x-line-signature`` of ``body`` for this channel."""
        digest = hmac.new(self.channel_secret.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def register(self, event: dict[str, Any]) -> None:
        """Make the platform know the event's chat and its reply token (done on send)."""
        source = event.get("source", {})
        chat_id = source.get("userId") if source.get("type") == "user" else None
        chat_id = chat_id or source.get("groupId") or source.get("roomId")
        if chat_id:
            self.known_chats.add(chat_id)
        if source.get("userId"):
            self.known_chats.add(source["userId"])
        token = event.get("replyToken")
        if token and token not in self._tokens and chat_id:
            self._tokens[token] = _Token(chat_id, time.monotonic())

    async def post_body(
        self,
        body: dict[str, Any] | bytes,
        *,
        signature: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> WebhookResult:
        """POST a webhook body to the bot as LINE does.

        Args:
            body: the body (a dict is serialised; bytes are sent as they are).
            signature: ``""`` signs correctly; ``None`` leaves the header out;
                any other value is sent as it is.
            headers: extra headers.

        Returns:
            The bot's status code, body text and response time.
        """
        if not self.webhook_url or self._session is None:
            raise RuntimeError("start() the simulator and set webhook_url first")
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        if isinstance(body, dict):
            for event in body.get("events", []):
                self.register(event)
        sent = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "LineBotWebhook/2.0",
        }
        if signature == "":
            sent["x-line-signature"] = self.sign(raw)
        elif signature is not None:
            sent["x-line-signature"] = signature
        sent.update(headers or {})
        start = time.monotonic()
        async with self._session.post(self.webhook_url, data=raw, headers=sent) as resp:
            text = await resp.text()
            return WebhookResult(resp.status, text, time.monotonic() - start)

    async def send(self, *events: dict[str, Any]) -> WebhookResult:
        """Send ``events`` in one signed webhook body."""
        return await self.post_body(ev.body(*events, destination=self.bot_user_id))

    async def redeliver(self, *events: dict[str, Any]) -> WebhookResult:
        """Send the same events again, marked ``isRedelivery: true`` (same ids and tokens)."""
        again = []
        for event in events:
            copied = copy.deepcopy(event)
            copied["deliveryContext"] = {"isRedelivery": True}
            again.append(copied)
        return await self.send(*again)

    async def say(
        self, chat_id: str, event: dict[str, Any], settled: Callable[[], Awaitable[object]]
    ) -> list[dict[str, Any]]:
        """Send one event, await ``settled()`` (the bot's idle), return what the chat got since.

        Raises:
            AssertionError: the webhook did not answer 200.
        """
        before = len(self.messages_to(chat_id))
        result = await self.send(event)
        assert result.status == 200, result
        await settled()
        return self.messages_to(chat_id)[before:]

    def expire_reply_token(self, token: str) -> None:
        """Age a reply token past its validity, as if the bot answered too late."""
        if token in self._tokens:
            self._tokens[token].issued -= self.reply_token_ttl + 1

    # ------------------------------------------------------------------ waiting
    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked after every API call).

        Raises:
            TimeoutError: it did not hold within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_messages(self, chat_id: str, count: int, timeout: float = 10.0) -> list[dict]:
        """Wait until ``chat_id`` got at least ``count`` messages; return them all."""
        await self.wait_for(lambda: len(self.messages_to(chat_id)) >= count, timeout)
        return self.messages_to(chat_id)

    def messages_to(self, chat_id: str) -> list[dict[str, Any]]:
        """Every message delivered to a chat, in order."""
        return [m for d in self.deliveries if d.to == chat_id and d.delivered for m in d.messages]

    def texts_to(self, chat_id: str) -> list[str]:
        """The text of every text message (and the alt text of Flex messages) to a chat."""
        out = []
        for m in self.messages_to(chat_id):
            out.append(m.get("text") or m.get("altText") or "")
        return out

    def calls_to(self, path_suffix: str) -> list[ApiCall]:
        """The recorded API calls whose path ends with ``path_suffix``."""
        return [c for c in self.calls if c.path.endswith(path_suffix)]

    def rejected(self) -> list[ApiCall]:
        """API calls the platform refused (status >= 400)."""
        return [c for c in self.calls if c.status >= 400]

    # ------------------------------------------------------------------ API
    async def _answer(
        self,
        request: web.Request,
        body: Any,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        delivery: Delivery | None = None,
    ) -> web.Response:
        request_id = delivery.request_id if delivery else secrets.token_hex(16)
        call = ApiCall(
            request.method,
            request.path,
            body,
            request.headers.get("X-Line-Retry-Key"),
            status,
            payload,
            request_id,
        )
        self.calls.append(call)
        if delivery is not None:
            self.deliveries.append(delivery)
        async with self._changed:
            self._changed.notify_all()
        all_headers = {"X-Line-Request-Id": request_id, **(headers or {})}
        return web.json_response(payload, status=status, headers=all_headers)

    async def _auth_and_body(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        if self.api_delay:  # a slow platform: the request is handled even if the bot gave up
            await asyncio.sleep(self.api_delay)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
            return body, await self._answer(
                request, body, 400, {"message": "The request body could not be parsed as JSON"}
            )
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return body, await self._answer(request, body, 401, {"message": AUTH_FAILED})
        return body, None

    async def _invalid(self, request: web.Request, body: Any, details: list) -> web.Response:
        payload = {"message": f"The request body has {len(details)} error(s)", "details": details}
        return await self._answer(request, body, 400, payload)

    def _sent(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [
            {"id": ev.new_message_id(), "quoteToken": secrets.token_urlsafe(24)} for _ in messages
        ]

    async def _reply(self, request: web.Request) -> web.Response:
        body, error = await self._auth_and_body(request)
        if error:
            return error
        if "X-Line-Retry-Key" in request.headers:
            # Only push/multicast/narrowcast/broadcast accept a retry key.
            return await self._answer(
                request, body, 400, {"message": "The retry key is not supported for this API"}
            )
        if not isinstance(body, dict) or not body.get("replyToken"):
            return await self._invalid(
                request, body, [{"message": "May not be empty", "property": "replyToken"}]
            )
        details = validate_messages(body.get("messages"))
        if details:
            return await self._invalid(request, body, details)
        token = self._tokens.get(body["replyToken"])
        if token is None or token.used or time.monotonic() - token.issued > self.reply_token_ttl:
            return await self._answer(request, body, 400, {"message": "Invalid reply token"})
        token.used = True
        delivery = Delivery("reply", token.chat_id, body["messages"], secrets.token_hex(16))
        sent = {"sentMessages": self._sent(body["messages"])}
        return await self._answer(request, body, 200, sent, delivery=delivery)

    async def _push(self, request: web.Request) -> web.Response:
        body, error = await self._auth_and_body(request)
        if error:
            return error
        key = request.headers.get("X-Line-Retry-Key")
        if key is not None and not RETRY_KEY.match(key):
            return await self._answer(
                request, body, 400, {"message": "The retry key must be a UUID"}
            )
        if key is not None and key in self._retry_keys:
            accepted_id, sent = self._retry_keys[key]
            return await self._answer(
                request,
                body,
                409,
                {"message": "The retry key is already accepted", "sentMessages": sent},
                {"X-Line-Accepted-Request-Id": accepted_id},
            )
        to = body.get("to") if isinstance(body, dict) else None
        if not isinstance(to, str) or not to:
            return await self._invalid(
                request, body, [{"message": "May not be empty", "property": "to"}]
            )
        if not (to.startswith(_ID_PREFIXES) and len(to) == 33):
            return await self._answer(
                request,
                body,
                400,
                {"message": _INVALID_TO},
            )
        details = validate_messages(body.get("messages"))
        if details:
            return await self._invalid(request, body, details)
        if to not in self.known_chats or to in self.left:
            return await self._answer(request, body, 400, {"message": "Failed to send messages"})
        if self.push_quota is not None and self.push_quota <= 0:
            return await self._answer(
                request, body, 429, {"message": "You have reached your monthly limit."}
            )
        if self.push_quota is not None:
            self.push_quota -= 1
        sent = self._sent(body["messages"])
        # A blocked user gets nothing, yet LINE answers 200 (and counts nothing).
        delivery = Delivery(
            "push", to, body["messages"], secrets.token_hex(16), delivered=to not in self.blocked
        )
        if key is not None:
            self._retry_keys[key] = (delivery.request_id, sent)
        return await self._answer(request, body, 200, {"sentMessages": sent}, delivery=delivery)

    async def _loading(self, request: web.Request) -> web.Response:
        body, error = await self._auth_and_body(request)
        if error:
            return error
        chat_id = body.get("chatId") if isinstance(body, dict) else None
        seconds = body.get("loadingSeconds", 20) if isinstance(body, dict) else None
        details = []
        if not isinstance(chat_id, str) or not chat_id.startswith("U"):
            details.append({"message": "Must be a user ID", "property": "chatId"})
        if not isinstance(seconds, int) or seconds % 5 or not 5 <= seconds <= 60:
            details.append(
                {
                    "message": "Must be a multiple of 5 between 5 and 60",
                    "property": "loadingSeconds",
                }
            )
        if details:
            return await self._invalid(request, body, details)
        self.loading.append(body)
        return await self._answer(request, body, 202, {})

    async def _leave(self, request: web.Request) -> web.Response:
        body, error = await self._auth_and_body(request)
        if error:
            return error
        chat_id = request.match_info["chat_id"]
        if chat_id not in self.known_chats or chat_id in self.left:
            return await self._answer(request, body, 404, {"message": "Not found"})
        self.left.append(chat_id)
        return await self._answer(request, body, 200, {})

    async def _info(self, request: web.Request) -> web.Response:
        body, error = await self._auth_and_body(request)
        if error:
            return error
        info = {
            "userId": self.bot_user_id,
            "basicId": "@000tsunagu",
            "displayName": "つなぐ (simulator)",
            "chatMode": "bot",
            "markAsReadMode": "auto",
        }
        return await self._answer(request, body, 200, info)

    async def _not_found(self, request: web.Request) -> web.Response:
        return await self._answer(request, None, 404, {"message": "Not found"})

    def block(self, user_id: str) -> None:
        """The user blocks the account: pushes still answer 200 but deliver nothing."""
        self.blocked.add(user_id)

    def forget_calls(self) -> None:
        """Clear the records (not tokens, keys or chats)."""
        self.calls.clear()
        self.deliveries.clear()
        self.loading.clear()


def texts(messages: Iterable[dict[str, Any]]) -> list[str]:
    """The text (or alt text) of each message."""
    return [m.get("text") or m.get("altText") or "" for m in messages]
