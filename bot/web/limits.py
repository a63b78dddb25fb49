"""Request limits of the public side: token buckets per person and per client address.

- per person (widget session or LINE user, through an engine intercept that runs before
  every other): over the limit the API answers 429 with a JSON error, the WebSocket and
  LINE get a kind message (with 110/119) and the buttons offered before stay usable;
- per client address: ``POST /api/chat`` and opening ``/ws/chat`` (429 JSON). The LINE
  webhook is not limited by address: every LINE user arrives from LINE's servers.

Body sizes (``/api/chat`` 16 KiB, everything else the app's 256 KiB), message length
(``max_message_chars``), WebSocket frame size (16 KiB → close 1009) and the idle timeout
of sockets (15 minutes) are enforced where the requests are read, in ``bot.channels.web``
and ``bot.app``; the tests of ``tests/security`` prove all of them.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from bot import keys
from bot.channels.base import IncomingMessage
from bot.dialogue.replies import Choice, ChoicesReply, TextReply
from bot.dialogue.turn import Turn
from bot.web.security import Handler

logger = logging.getLogger(__name__)

MAX_KEYS = 20_000  # buckets remembered; the least recently used are dropped first
_API_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tsunagu_api_request", default=False
)


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket's refill rate (tokens per second) and size."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """The limits and the texts shown when one is reached (``bot/web/limits.yaml``)."""

    person: Rate
    ip_chat: Rate
    ip_socket: Rate
    person_text: str
    ip_text: str


def load_policy() -> LimitPolicy:
    """Read and check ``bot/web/limits.yaml``.

    Raises:
        ValueError: a missing or non-positive value.
    """
    raw = yaml.safe_load(resources.files("bot.web").joinpath("limits.yaml").read_text("utf-8"))

    def rate(name: str) -> Rate:
        item = raw.get(name) or {}
        r, b = float(item.get("rate", 0)), int(item.get("burst", 0))
        if r <= 0 or b < 1:
            raise ValueError(f"limits.yaml: {name} needs a positive rate and burst")
        return Rate(r, b)

    texts = raw.get("texts") or {}
    if not texts.get("person") or not texts.get("ip"):
        raise ValueError("limits.yaml: texts.person and texts.ip are required")
    return LimitPolicy(
        rate("person"), rate("ip_chat"), rate("ip_socket"), texts["person"], texts["ip"]
    )


class Limiter:
    """Token buckets by key, bounded in memory.

    A bucket left alone until it is full again is the same as no bucket, so it is
    forgotten (expiry); beyond ``max_keys`` the least recently used are forgotten too.
    """

    def __init__(
        self, rate: Rate, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        """Create an empty limiter.

        Args:
            rate: refill rate and bucket size.
            clock: monotonic time source (tests move it).
            max_keys: how many buckets are remembered at most.
        """
        self.rate = rate
        self.clock = clock
        self.max_keys = max_keys
        # Seconds after which any bucket has refilled completely.
        self.refill_seconds = rate.burst / rate.rate
        # Least recently used first: (tokens, last use).
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Take one token for ``key``.

        Returns:
            0.0 when allowed, else the seconds until a token is available again.
        """
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - last) * self.rate.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate.rate
        self._buckets[key] = (tokens, now)
        buckets = self._buckets
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest[1] < self.refill_seconds:
                break
            buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        """How many buckets are remembered."""
        return len(self._buckets)


class RateLimited(Exception):
    """A person sent too much over the API; turned into a 429 by the middleware."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


@dataclass
class Limits:
    """The limiters of one app."""

    policy: LimitPolicy
    person: Limiter
    ip_chat: Limiter
    ip_socket: Limiter
    enabled: bool = True  # Config.rate_limits (TSUNAGU_RATE_LIMITS=0 for load tests)

    @classmethod
    def create(
        cls, policy: LimitPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> Limits:
        """Limiters for a policy (default: ``limits.yaml``)."""
        p = policy or load_policy()
        return cls(
            p, Limiter(p.person, clock), Limiter(p.ip_chat, clock), Limiter(p.ip_socket, clock)
        )


LIMITS = web.AppKey("limits", Limits)


# -- per person: an engine intercept -------------------------------------------------------


def person_intercept(limits: Limits) -> Callable[[Turn, IncomingMessage], str | None]:
    """The engine intercept that keeps one person from flooding the desk."""

    def intercept(turn: Turn, incoming: IncomingMessage) -> str | None:
        if not limits.enabled:
            return None
        wait = limits.person.take(turn.user_key)
        if not wait:
            return None
        logger.info("turn refused: person over the rate limit (%s)", turn.channel)
        if _API_REQUEST.get():
            raise RateLimited(wait)
        offered = turn.state.offered
        if offered:
            # The buttons shown before stay usable (the engine keeps the last prompt's).
            items = tuple(Choice(label, postback) for label, postback in offered)
            turn.add(ChoicesReply(limits.policy.person_text, items))
        else:
            turn.add(TextReply(limits.policy.person_text))
        turn.count("limit", "person")
        return "rate_limited"

    return intercept


# -- per address: a middleware --------------------------------------------------------------


def _too_many(message: str, wait: float) -> web.Response:
    return web.json_response(
        {"error": {"code": "rate_limited", "message": message}},
        status=429,
        headers={"Retry-After": str(max(1, math.ceil(wait))), "Cache-Control": "no-store"},
    )


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per-address limits on the chat API and socket; per-person 429s of the API."""
    limits = request.app.get(LIMITS)
    path = request.path
    if limits is None or not limits.enabled or path not in ("/api/chat", "/ws/chat"):
        return await handler(request)
    remote = request.remote or "-"
    if path == "/ws/chat":
        wait = limits.ip_socket.take(remote) if request.method == "GET" else 0.0
        if wait:
            logger.info("widget socket refused: address over the rate limit")
            return _too_many(limits.policy.ip_text, wait)
        return await handler(request)
    if request.method == "POST":
        wait = limits.ip_chat.take(remote)
        if wait:
            logger.info("chat request refused: address over the rate limit")
            return _too_many(limits.policy.ip_text, wait)
    token = _API_REQUEST.set(True)
    try:
        return await handler(request)
    except RateLimited as exc:
        return _too_many(limits.policy.person_text, exc.retry_after)
    finally:
        _API_REQUEST.reset(token)


@web.middleware
async def malformed_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bodies no handler can read become a clear 400 instead of a 500.

    A multipart body without a boundary is refused before any handler tries to read it;
    JSON nested thousands deep (``RecursionError`` in the parser) is refused wherever a
    handler parses it.
    """
    if request.method in ("POST", "PUT", "PATCH") and request.content_type.startswith(
        "multipart/"
    ):
        ctype = request.headers.get("Content-Type", "")
        if "boundary=" not in ctype.lower():
            logger.info("request refused: multipart body without a boundary")
            return web.json_response(
                {"error": {"code": "bad_body", "message": "malformed multipart body"}},
                status=400,
            )
    try:
        return await handler(request)
    except RecursionError:
        logger.info("request refused: body nested too deep")
        if request.path.startswith(("/admin", "/console")):
            body: dict[str, Any] = {"error": "bad_json", "message": "入れ子が深すぎます。"}
        else:
            body = {"error": {"code": "bad_json", "message": "the body is nested too deep"}}
        return web.json_response(body, status=400)


async def _attach(app: web.Application) -> None:
    app[LIMITS].enabled = app[keys.CONFIG].rate_limits
    # First of all intercepts: a flood never reaches the handover or the handlers.
    app[keys.ENGINE].intercepts.insert(0, person_intercept(app[LIMITS]))


def setup(app: web.Application) -> None:
    """Install the limiters (after ``bot.core``, which creates the engine)."""
    app[LIMITS] = Limits.create()
    app.middlewares.append(malformed_guard)
    app.middlewares.append(middleware)
    app.on_startup.append(_attach)


def configure(app: web.Application, policy: LimitPolicy, clock: Callable[[], float]) -> None:
    """Replace the limits of an app before it starts (tests, a different deployment)."""
    app[LIMITS] = Limits.create(policy, clock)


def policy_with(**changes: Any) -> LimitPolicy:
    """The shipped policy with some fields replaced (e.g. ``person=Rate(1, 2)``)."""
    from dataclasses import replace

    return replace(load_policy(), **changes)
