"""LINE webhook speed: ack latency and answered events per second, through the simulator.

Run: ``.venv/bin/python bench/line_webhook.py [--users 50] [--bodies 40]``. It starts the
real app (engine, SQLite in a temporary directory) and the LINE simulator in-process,
sends signed webhook bodies of 5 text events each from many users, and reports how fast
the webhook answered 200 and how long until every event had its reply.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import app as app_module
from bot.channels import line
from bot.config import load_config
from tests.line_sim import LineSimulator
from tests.line_sim import events as ev

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "bench-token"


async def run(users: int, bodies: int) -> None:
    """Send the load and print the measurements."""
    if "bot.channels.line" not in app_module.FEATURES:
        app_module.FEATURES = (*app_module.FEATURES, "bot.channels.line")
    async with LineSimulator(SECRET, TOKEN) as sim:
        tmp = Path(tempfile.mkdtemp())
        config = load_config(
            env={
                "TSUNAGU_SECRET": "bench",
                "LINE_CHANNEL_SECRET": SECRET,
                "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
                "TSUNAGU_LINE_API_BASE": sim.base_url,
            },
            db_path=tmp / "bench.db",
        )
        application = app_module.create_app(config)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        sim.webhook_url = f"http://127.0.0.1:{port}/line/webhook"
        ids = [ev.new_user_id() for _ in range(users)]
        acks: list[float] = []
        started = time.perf_counter()
        total = 0
        for b in range(bodies):
            batch = [
                ev.text(ids[(b * 5 + i) % users], "息子のことで相談したいです") for i in range(5)
            ]
            total += len(batch)
            result = await sim.send(*batch)
            assert result.status == 200, result
            acks.append(result.seconds * 1000)
        await application[line.LINE].idle()
        elapsed = time.perf_counter() - started
        answered = len(sim.calls_to("/message/reply")) + len(sim.calls_to("/message/push"))
        await runner.cleanup()
    acks.sort()
    print(f"events: {total} in {bodies} bodies from {users} users; answered calls: {answered}")
    print(
        f"webhook ack ms: median {statistics.median(acks):.1f}, "
        f"p95 {acks[int(len(acks) * 0.95) - 1]:.1f}, max {acks[-1]:.1f}"
    )
    print(f"all answered in {elapsed:.2f} s: {total / elapsed:.0f} events/s end to end")
    print(f"rejected by the platform: {len(sim.rejected())}")


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--bodies", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.bodies))


if __name__ == "__main__":
    main()
