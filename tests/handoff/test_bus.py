"""The in-memory event bus: fan-out per topic, order, closing, and slow subscribers."""

from __future__ import annotations

import asyncio

from handoff.bus import EventBus, MemoryBus


async def test_events_fan_out_per_topic_in_order() -> None:
    bus: EventBus = MemoryBus()
    a = bus.subscribe("case:1")
    both = bus.subscribe("case:1", "case:2")
    for n in range(3):
        bus.publish("case:1", {"n": n})
    bus.publish("case:2", {"n": 9})
    bus.publish("case:3", {"n": -1})  # nobody listens: dropped silently
    assert [(await a.get(1))["n"] for _ in range(3)] == [0, 1, 2]  # type: ignore[index]
    assert [(await both.get(1))["n"] for _ in range(4)] == [0, 1, 2, 9]  # type: ignore[index]
    assert await a.get(0.01) is None


async def test_closing_ends_iteration_and_unsubscribes() -> None:
    bus = MemoryBus()
    sub = bus.subscribe("office:x")
    got: list[int] = []

    async def read() -> None:
        async for event in sub:
            got.append(event["n"])

    reader = asyncio.create_task(read())
    bus.publish("office:x", {"n": 1})
    await asyncio.sleep(0)
    sub.close()
    await asyncio.wait_for(reader, 1)
    assert got == [1]
    assert bus.subscribers("office:x") == 0
    bus.publish("office:x", {"n": 2})  # no error after close


async def test_a_subscriber_that_stops_reading_does_not_block_others() -> None:
    bus = MemoryBus(maxsize=2)
    slow = bus.subscribe("t")
    fast = bus.subscribe("t")
    for n in range(5):
        bus.publish("t", {"n": n})
        assert (await fast.get(1))["n"] == n  # type: ignore[index]
    assert slow.dropped == 3
    bus.close()
    assert bus.subscribers("t") == 0
