"""Benchmark: memory held per entry by the server's bounded in-memory tables (tracemalloc).

Runs the load test's conversations (``bench/load.py`` scripts) through the real app
in-process — widget WebSocket and ``POST /api/chat``, real engine and SQLite file — then
reports, for each table, how many entries it holds and how much memory emptying it gives
back (tracemalloc, so Python allocations only), per entry and in total:

- the statistics tracker's open conversations (``handoff.stats.ConversationTracker``),
- no-record dialogue states (``bot.dialogue.state.VolatileStates``),
- widget outboxes (``bot.relay.Outboxes``), after the sockets closed, and separately
  outboxes holding one undelivered counselor notice each.

Usage: python bench/memory_tables.py [--conversations 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from bench.load import SCRIPTS  # noqa: E402
from bot import keys  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.relay import OUTBOXES  # noqa: E402

# Through the test client's own session, each response released: TestClient keeps every
# response and socket it made until it closes, which would show here as memory held.


async def _api(client: TestClient, script: tuple[tuple[str, str], ...]) -> None:
    http, url = client.session, client.make_url("/api/chat")
    async with http.post(url, json={"session": None, "action": "start"}) as resp:
        session = (await resp.json())["session"]
    for kind, value in script:
        async with http.post(url, json={"session": session, kind: value}) as resp:
            assert resp.status == 200, await resp.text()


async def _ws(client: TestClient, script: tuple[tuple[str, str], ...], n: int) -> None:
    async with client.session.ws_connect(client.make_url("/ws/chat")) as ws:

        async def reply(frame: dict[str, Any]) -> None:
            await ws.send_str(json.dumps(frame, ensure_ascii=False))
            while (await ws.receive_json(timeout=10))["type"] != "reply":
                pass

        await reply({"type": "hello", "session": None})
        for i, (kind, value) in enumerate(script):
            key = "text" if kind == "text" else "postback"
            frame = {"type": "message" if kind == "text" else "postback", key: value}
            await reply({**frame, "id": f"{n}-{i}"})


async def _conversations(client: TestClient, start: int, n: int) -> None:
    for i in range(start, start + n):
        script = SCRIPTS[i % len(SCRIPTS)]
        if i % 2:
            await _ws(client, script, i)
        else:
            await _api(client, script)
    await asyncio.sleep(0.05)  # followers of closed sockets finish


def _emptier(table: Any) -> Callable[[], None]:
    """Empty every container of a table (whichever of these it has)."""

    def empty() -> None:
        for name in ("_open", "_held", "_items", "_shared", "_boxes", "_empty", "_pending"):
            getattr(table, name, {}).clear()

    return empty


def _freed(label: str, size: int, empty: Callable[[], None]) -> None:
    """Print how much memory emptying a table gives back."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    empty()
    gc.collect()
    freed = before - tracemalloc.get_traced_memory()[0]
    per = freed / size if size else 0.0
    print(f"  {label:<44} {size:7d} entries  {freed / 1024:9.1f} KiB  {per:7.0f} B/entry")


async def run(conversations: int) -> None:
    """Drive the conversations and print the table sizes."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            env={"TSUNAGU_SECRET": "memory-bench", "TSUNAGU_RATE_LIMITS": "0"},
            db_path=Path(tmp) / "m.db",
        )
        app = create_app(config)
        async with TestClient(TestServer(app)) as client:
            await _conversations(client, 0, 30)  # warm up: rules, templates, caches
            engine = app[keys.ENGINE]
            tracker = app[keys.STATS_TRACKER]
            outboxes = app[OUTBOXES]
            tracemalloc.start()
            await _conversations(client, 1000, conversations)
            print(f"after {conversations} conversations (half widget socket, half API):")
            _freed("statistics tracker, open conversations", len(tracker), _emptier(tracker))
            volatile = engine.volatile
            _freed("no-record states", len(volatile), _emptier(volatile))
            if hasattr(outboxes, "counts"):
                print(f"  widget outboxes by kind: {outboxes.counts()}")
            # Since bot.relay keeps empty outboxes nobody follows only briefly (60 s), these
            # are the last minute's, not every socket's.
            _freed("widget outboxes (sockets closed)", len(outboxes), _emptier(outboxes))
            render = app[keys.ENGINE].renderer
            notice = [
                {"type": "notice", "status": "closed", "text": render.text("handoff_closed")}
            ]
            for i in range(conversations):
                outboxes.open(f"web:{i:032x}").add(list(notice))
            _freed(
                "widget outboxes, one uncollected notice each", len(outboxes), _emptier(outboxes)
            )
            tracemalloc.stop()


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1500)
    asyncio.run(run(parser.parse_args().conversations))


if __name__ == "__main__":
    main()
