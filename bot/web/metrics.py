"""Operator metrics at ``GET /metrics`` (Prometheus text format): counts and timings only.

Labels are never raw URLs, text or user keys: requests are labelled with the route's
canonical path (``/admin/history/{entity}/{id}``), messages with the channel id,
queues with the office id. Access: a bearer token (``TSUNAGU_METRICS_TOKEN``), or — when no
token is set — only clients on the loopback interface that did not come through a proxy.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot import keys
from bot.web.security import Handler, tokens_equal

if TYPE_CHECKING:
    from bot.channels.base import IncomingMessage
    from bot.dialogue.turn import Turn

logger = logging.getLogger(__name__)

PATH = "/metrics"
UNMATCHED = "(unmatched)"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The app's metrics in their own registry (several apps in one process do not clash)."""

    def __init__(self) -> None:
        """Create the registry and the metrics."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tsunagu_http_requests",
            "HTTP requests by route (canonical path), method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tsunagu_http_request_duration_seconds",
            "Time to answer an HTTP request, by route (WebSocket sessions excluded).",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "tsunagu_errors",
            "Server errors: unhandled exceptions and 5xx answers by route; ERROR logs by module.",
            ["kind", "where"],
            registry=self.registry,
        )
        self.messages = Counter(
            "tsunagu_messages",
            "Messages and button presses from people, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(self))
        self.sources: dict[str, Callable[[], Iterable[tuple[str, float]]]] = {}

    def exposition(self) -> bytes:
        """The current values in Prometheus text format."""
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Gauges read at scrape time: WebSocket connections, queue length per office, open chats."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        sockets = GaugeMetricFamily(
            "tsunagu_websocket_connections", "Open WebSocket connections.", labels=["kind"]
        )
        queue = GaugeMetricFamily(
            "tsunagu_queue_length", "Conversations waiting for a counselor.", labels=["office"]
        )
        tracked = GaugeMetricFamily(
            "tsunagu_open_conversations", "Conversations followed for statistics."
        )
        families = {"sockets": sockets, "queue": queue, "open": tracked}
        for name, source in list(self.metrics.sources.items()):
            kind, _, _ = name.partition(":")
            family = families.get(kind)
            if family is None:
                continue
            try:
                for label, value in source():
                    if kind == "open":
                        family.add_metric([], value)
                    else:
                        family.add_metric([label], value)
            except Exception:
                logger.exception("metrics source %s failed", name)
        return [sockets, queue, tracked]

    def describe(self) -> Iterable[Any]:
        return []


class _ErrorLogCounter(logging.Handler):
    """Counts ERROR records by logger name (the record's text is never read)."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(level=logging.ERROR)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        self.metrics.errors.labels("log", record.name).inc()


METRICS = web.AppKey("metrics", Metrics)


def route_of(request: web.Request) -> str:
    """The canonical path of the matched route, never the raw URL."""
    info = request.match_info
    if info.http_exception is not None:
        return UNMATCHED
    try:
        return info.route.resource.canonical if info.route.resource else UNMATCHED
    except AttributeError:
        return UNMATCHED


def middleware(metrics: Metrics) -> Any:
    """Count and time every request by its route (also those of /admin and other sub-apps)."""

    @web.middleware
    async def mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = route_of(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception:
            metrics.errors.labels("exception", route).inc()
            raise
        finally:
            metrics.requests.labels(route, request.method, str(status)).inc()
            if status >= 500:
                metrics.errors.labels("http_5xx", route).inc()
            if status != 101:  # a WebSocket's time is its session, not an answer
                metrics.latency.labels(route, request.method).observe(
                    time.perf_counter() - started
                )

    return mw


def _loopback(request: web.Request) -> bool:
    if any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP")):
        return False  # a reverse proxy on this host would otherwise look local
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: bearer token, or loopback when no token is configured."""
    token = request.app[keys.CONFIG].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not tokens_equal(value.strip(), token):
            raise web.HTTPUnauthorized(
                text="bearer token required\n", headers={"WWW-Authenticate": "Bearer"}
            )
    elif not _loopback(request):
        raise web.HTTPForbidden(text="metrics are served to loopback clients only\n")
    metrics = request.app[METRICS]
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def message_counter(metrics: Metrics) -> Callable[[Turn, IncomingMessage | None], None]:
    """An ``Engine.turn_hooks`` entry counting people's messages by channel."""

    def count(turn: Turn, incoming: IncomingMessage | None) -> None:
        if incoming is not None:
            metrics.messages.labels(turn.channel).inc()

    return count


async def _live_sources(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS]
    handler = _ErrorLogCounter(metrics)
    logging.getLogger().addHandler(handler)
    if keys.ENGINE in app:
        app[keys.ENGINE].turn_hooks.append(message_counter(metrics))
    try:
        from bot.channels.web import SOCKETS

        if SOCKETS in app:
            metrics.sources["sockets:widget"] = lambda: [("widget", float(len(app[SOCKETS])))]
    except ImportError:
        pass
    if keys.STATS_TRACKER in app:
        tracker = app[keys.STATS_TRACKER]
        metrics.sources["open:stats"] = lambda: [("", float(len(tracker)))]
    queue = _queue_source(app)
    if queue is not None:
        metrics.sources["queue:offices"] = queue
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        metrics.sources.clear()


def _queue_source(app: web.Application) -> Callable[[], Iterable[tuple[str, float]]] | None:
    """Queue length per office from the handoff desk, when the app has one."""
    desk_key = getattr(keys, "DESK", None)
    if desk_key is None or desk_key not in app:
        return None
    desk = app[desk_key]

    def lengths() -> Iterable[tuple[str, float]]:
        counts: dict[str, float] = {o.id: 0.0 for o in desk.offices}
        for case in desk.store.queue():
            counts[case.office_id] = counts.get(case.office_id, 0.0) + 1
        return list(counts.items())

    return lengths


def setup(app: web.Application) -> None:
    """Add ``/metrics`` and the request middleware (sources attach at startup)."""
    metrics = Metrics()
    app[METRICS] = metrics
    app.middlewares.append(middleware(metrics))
    app.router.add_get(PATH, metrics_handler)
    app.cleanup_ctx.append(_live_sources)
