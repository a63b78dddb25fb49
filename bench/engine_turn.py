"""Benchmark: CPU cost of one dialogue turn in-process (engine + knowledge base + SQLite).

Runs the load test's scripts (``bench/load.py``) through the real engine on a temporary
SQLite file, without HTTP, and prints the mean cost per turn; ``--profile`` prints the
cProfile functions that dominate.

Usage: python bench/engine_turn.py [--conversations 600] [--profile] [--line-writes]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import SCRIPTS  # noqa: E402
from bot.channels.base import IncomingMessage  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.dialogue.engine import Engine  # noqa: E402
from handoff.store import ConversationStore  # noqa: E402
from intents import tokenizer  # noqa: E402
from knowledge.base import KnowledgeBase  # noqa: E402
from knowledge.db import connect  # noqa: E402


def _conversations(engine: Engine, n: int, start: int, other_db: object | None) -> int:
    turns = 0
    for i in range(start, start + n):
        key = f"bench-{i}"
        engine.handle_sync(IncomingMessage(channel="web", user_key=key, text="こんにちは"))
        turns += 1
        for kind, value in SCRIPTS[i % len(SCRIPTS)]:
            if other_db is not None:
                # What a LINE event does on its own connection (claims its event id).
                other_db.execute(  # type: ignore[attr-defined]
                    "INSERT OR IGNORE INTO processed_events (event_id, expires_at) VALUES (?, ?)",
                    [f"ev-{i}-{turns}", time.time() + 60],
                )
            incoming = (
                IncomingMessage(channel="web", user_key=key, text=value)
                if kind == "text"
                else IncomingMessage(channel="web", user_key=key, postback=value)
            )
            engine.handle_sync(incoming)
            turns += 1
    return turns


def main() -> int:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument("--profile", action="store_true", help="print the cProfile top 30")
    parser.add_argument(
        "--line-writes",
        action="store_true",
        help="a second connection writes before every turn (as the LINE channel does)",
    )
    args = parser.parse_args()
    tokenizer.load()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = connect(path)
        kb = KnowledgeBase.open(db)
        store = ConversationStore.open(db)
        engine = Engine(kb, store, Config(db_path=path))
        other = connect(path) if args.line_writes else None
        _conversations(engine, 30, 0, other)  # warm up: rules, templates, caches
        profiler = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        turns = _conversations(engine, args.conversations, 1000, other)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        print(
            f"{turns} turns: {cpu / turns * 1000:.3f} ms CPU per turn "
            f"({wall / turns * 1000:.3f} ms wall, {turns / wall:.0f} turns/s in one thread)"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        if other is not None:
            other.close()
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
