"""The event bus of the relay: an interface plus an in-process asyncio implementation.

Topics used by tsunagu (events are JSON-able dicts, so a Redis pub/sub implementation
can replace :class:`MemoryBus` when several app instances run):

- ``office:<id>``      queue changes of one office (the console's live queue)
- ``case:<id>``        messages and state changes of one case (the open console view)
- ``person:<key>``     what must reach one person (counselor messages, notices)
- ``deliver:<channel>`` the same events again, for a channel that pushes (LINE)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Protocol

logger = logging.getLogger(__name__)

Event = Mapping[str, Any]


class Subscription(Protocol):
    """Events of the topics subscribed to, in order; close it when done."""

    def __aiter__(self) -> AsyncIterator[Event]:
        """Iterate over events as they arrive."""

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds or once closed."""

    def close(self) -> None:
        """Stop receiving."""


class EventBus(Protocol):
    """Publish/subscribe between the person's channel and the console."""

    def publish(self, topic: str, event: Event) -> None:
        """Send an event to every current subscriber of ``topic`` (never blocks)."""

    def subscribe(self, *topics: str) -> Subscription:
        """Receive the events of ``topics`` from now on."""


class _MemorySubscription:
    """One subscriber's queue."""

    _CLOSED: ClassVar[dict[str, Any]] = {"type": "_closed"}

    def __init__(self, bus: MemoryBus, topics: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        self.topics = topics
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.closed = False
        self.dropped = 0

    def _put(self, event: Event) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # A subscriber that stopped reading must not hold up everyone else.
            self.dropped += 1
            logger.warning("bus subscriber is not reading; event dropped")

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self.get()
            if event is None:
                return
            yield event

    async def get(self, timeout: float | None = None) -> Event | None:
        if self.closed and self._queue.empty():
            return None
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        return None if event is self._CLOSED else event

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(self._CLOSED)


class MemoryBus:
    """In-process bus on asyncio queues (one app instance)."""

    def __init__(self, maxsize: int = 1000) -> None:
        """Create an empty bus; each subscriber buffers at most ``maxsize`` events."""
        self._subs: dict[str, list[_MemorySubscription]] = {}
        self.maxsize = maxsize

    def publish(self, topic: str, event: Event) -> None:
        """Send ``event`` to every subscriber of ``topic``."""
        for sub in list(self._subs.get(topic, ())):
            sub._put(event)

    def subscribe(self, *topics: str) -> _MemorySubscription:
        """Receive events of ``topics`` from now on."""
        sub = _MemorySubscription(self, topics, self.maxsize)
        for topic in topics:
            self._subs.setdefault(topic, []).append(sub)
        return sub

    def subscribers(self, topic: str) -> int:
        """How many subscribers listen on ``topic`` (presence checks, tests)."""
        return len(self._subs.get(topic, ()))

    def _remove(self, sub: _MemorySubscription) -> None:
        for topic in sub.topics:
            subs = self._subs.get(topic, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(topic, None)

    def close(self) -> None:
        """Close every subscription (shutdown)."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()
