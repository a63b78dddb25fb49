"""Load test: many simulated people talking to ``tsunagu serve`` over the widget, API and LINE.

Run: ``.venv/bin/python bench/load.py [--people 200] [--duration 20] [--think 1.0]``
or ``--soak 600`` for a long run that reports the server's memory slope.

It starts ``tsunagu serve`` on loopback as a subprocess (a temporary SQLite file, LINE
pointed at the LINE simulator running inside this process) and:

1. measures a bare aiohttp JSON echo server (``bench/bare_echo.py``) under the same client,
   people sending back to back over the HTTP API and WebSocket (saturation);
2. drives tsunagu the same way (saturation) and prints the throughput ratio;
3. drives N people with a think time between turns through multi-turn conversations
   over the widget WebSocket, ``POST /api/chat`` and signed LINE webhooks, and reports
   messages/s, send→reply latency percentiles per channel, errors, and the server's RSS.

The client runs on the same machine: its own CPU use slows both servers alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.line_sim import LineSimulator  # noqa: E402
from tests.line_sim import events as ev  # noqa: E402

LINE_SECRET = "0123456789abcdef0123456789abcdef"
LINE_TOKEN = "load-bench-token"
TURN_TIMEOUT = 15.0

# Multi-turn scripts: start, consent, a worry, age, area, end. Varied a little so the
# tokenizer and routing see different words.
SCRIPTS: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        ("postback", "consent:granted"),
        ("text", "息子が万引きで警察に捕まりました"),
        ("text", "中学生です"),
        ("text", "東京都です"),
        ("postback", "after:done"),
    ),
    (
        ("postback", "consent:granted"),
        ("text", "夫が覚醒剤をやめられなくて困っています"),
        ("postback", "age_group:adult"),
        ("text", "大阪府に住んでいます"),
        ("text", "ありがとうございました"),
    ),
    (
        ("postback", "consent:declined"),
        ("text", "刑務所から出たばかりで仕事も住む所もありません"),
        ("text", "40代です"),
        ("text", "福岡"),
        ("postback", "after:done"),
    ),
)


@dataclass
class Stats:
    """Latencies and errors of one phase."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    ended: float = 0.0

    def record(self, channel: str, seconds: float) -> None:
        """Record one answered turn."""
        self.latencies[channel].append(seconds)

    @property
    def total(self) -> int:
        """Answered turns over all channels."""
        return sum(len(v) for v in self.latencies.values())

    @property
    def rate(self) -> float:
        """Answered turns per second."""
        return self.total / max(self.ended - self.started, 1e-9)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Simulator(LineSimulator):
    """The LINE simulator, resolving a future when a chat gets a reply-API delivery."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.replies_per_token: Counter[str] = Counter()

    async def _answer(
        self, request: Any, body: Any, status: int, payload: Any, *a: Any, **kw: Any
    ):  # type: ignore[no-untyped-def]
        delivery = kw.get("delivery") or (a[1] if len(a) > 1 else None)
        response = await super()._answer(request, body, status, payload, *a, **kw)
        # Keep the client's memory flat over a long soak: only the latest calls matter here.
        if len(self.calls) > 5000:
            del self.calls[:-1000]
            del self.deliveries[:-1000]
        if delivery is not None and delivery.via == "reply":
            waiter = self.waiters.pop(delivery.to, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(time.perf_counter())
        return response


# Each conversation comes from its own loopback address (127.1.0.0/16), as people do from
# their own phones: the per-address request limits (bot.web.limits) see a crowd, not one
# client hammering the desk.
_ADDRESSES = (f"127.1.{i // 250}.{i % 250 + 1}" for i in itertools.count())


class Person:
    """One simulated person talking through one channel, conversation after conversation."""

    def __init__(
        self,
        n: int,
        channel: str,
        base: str,
        stats: Stats,
        think: float,
        sim: Simulator | None,
    ) -> None:
        self.n = n
        self.channel = channel
        self.http: aiohttp.ClientSession
        self.base = base
        self.stats = stats
        self.think = think
        self.sim = sim
        self.rng = random.Random(n)
        self.frame_ids = itertools.count()

    async def pause(self) -> None:
        """Think between turns (uniform 0.5–1.5 × the mean)."""
        if self.think > 0:
            await asyncio.sleep(self.think * self.rng.uniform(0.5, 1.5))

    async def run(self, stop: float) -> None:
        """Hold conversations until the monotonic deadline."""
        # Spread the starts so 200 people do not all say hello in the same millisecond.
        await asyncio.sleep(self.rng.uniform(0, max(self.think, 0.2)))
        conversation = {"ws": self._ws, "api": self._api, "line": self._line}[self.channel]
        while time.monotonic() < stop:
            script = SCRIPTS[self.rng.randrange(len(SCRIPTS))]
            try:
                connector = aiohttp.TCPConnector(local_addr=(next(_ADDRESSES), 0))
                timeout = aiohttp.ClientTimeout(total=TURN_TIMEOUT)
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                    self.http = http
                    await conversation(script, stop)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                self.stats.errors[f"{self.channel}:{type(exc).__name__}"] += 1
                await asyncio.sleep(0.2)

    async def _timed(self, make: Callable[[], Awaitable[bool]]) -> None:
        started = time.perf_counter()
        async with asyncio.timeout(TURN_TIMEOUT):
            ok = await make()
        if ok:
            self.stats.record(self.channel, time.perf_counter() - started)

    # -- widget WebSocket ------------------------------------------------------------------
    async def _ws(self, script: tuple[tuple[str, str], ...], stop: float) -> None:
        async with self.http.ws_connect(f"{self.base}/ws/chat") as ws:

            async def turn(frame: dict[str, Any]) -> bool:
                await ws.send_str(json.dumps(frame, ensure_ascii=False))
                while True:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        self.stats.errors[f"ws:closed:{ws.close_code}"] += 1
                        raise ConnectionError("socket closed")
                    data = json.loads(msg.data)
                    if data.get("type") == "reply":
                        return True
                    if data.get("type") == "error":
                        self.stats.errors[f"ws:{data.get('code')}"] += 1
                        return False

            await self._timed(lambda: turn({"type": "hello", "session": None}))
            for kind, value in script:
                if time.monotonic() >= stop:
                    return
                await self.pause()
                frame_id = f"f{next(self.frame_ids)}"
                key = "text" if kind == "text" else "postback"
                frame = {"type": "message" if kind == "text" else "postback", key: value}
                frame["id"] = frame_id
                await self._timed(lambda f=frame: turn(f))
            await self.pause()

    # -- HTTP API --------------------------------------------------------------------------
    async def _api(self, script: tuple[tuple[str, str], ...], stop: float) -> None:
        session: str | None = None

        async def turn(body: dict[str, Any]) -> bool:
            nonlocal session
            async with self.http.post(f"{self.base}/api/chat", json=body) as resp:
                data = await resp.json(content_type=None)
                if resp.status != 200:
                    self.stats.errors[f"api:{resp.status}"] += 1
                    return False
                session = data.get("session")
                return True

        await self._timed(lambda: turn({"session": None, "action": "start"}))
        for kind, value in script:
            if time.monotonic() >= stop:
                return
            await self.pause()
            await self._timed(lambda k=kind, v=value: turn({"session": session, k: v}))
        await self.pause()

    # -- LINE webhook ------------------------------------------------------------------------
    async def _line(self, script: tuple[tuple[str, str], ...], stop: float) -> None:
        sim = self.sim
        assert sim is not None
        user = ev.new_user_id()

        async def turn(event: dict[str, Any]) -> bool:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[float] = loop.create_future()
            sim.waiters[user] = waiter
            result = await sim.send(event)
            if result.status != 200:
                self.stats.errors[f"line:{result.status}"] += 1
                sim.waiters.pop(user, None)
                return False
            await waiter
            return True

        try:
            await self._timed(lambda: turn(ev.follow(user)))
            for kind, value in script:
                if time.monotonic() >= stop:
                    return
                await self.pause()
                event = ev.text(user, value) if kind == "text" else ev.postback(user, value)
                await self._timed(lambda e=event: turn(e))
            await self.pause()
        finally:
            sim.waiters.pop(user, None)


async def drive(
    base: str,
    people: int,
    channels: tuple[str, ...],
    seconds: float,
    think: float,
    sim: Simulator | None,
    on_tick: Callable[[float], None] | None = None,
) -> Stats:
    """Run ``people`` people spread over ``channels`` for ``seconds``."""
    stats = Stats()
    stop = time.monotonic() + seconds
    crowd = [
        Person(i, channels[i % len(channels)], base, stats, think, sim) for i in range(people)
    ]
    stats.started = time.perf_counter()
    tasks = [asyncio.create_task(p.run(stop)) for p in crowd]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1.0)
            if on_tick is not None:
                on_tick(time.perf_counter() - stats.started)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(*tasks)
    stats.ended = time.perf_counter()
    tick.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tick
    return stats


# -- servers -------------------------------------------------------------------------------


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Poll ``/healthz`` until it answers 200."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError("server did not become healthy")


def start_tsunagu(
    port: int, db: Path, line_base: str, log: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``tsunagu serve`` on loopback with LINE pointed at the simulator."""
    env = {
        **os.environ,
        "TSUNAGU_SECRET": "load-bench-secret",
        "LINE_CHANNEL_SECRET": LINE_SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
        "TSUNAGU_LINE_API_BASE": line_base,
        "TSUNAGU_RATE_LIMITS": "0",  # the bench floods on purpose (bot.web.limits)
        **(extra_env or {}),
    }
    env.pop("TSUNAGU_CONFIG", None)
    cmd = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--db", str(db)]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per minute."""
    if len(samples) < 3:
        return 0.0
    xs, ys = [s for s, _ in samples], [m for _, m in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 60 if den else 0.0


async def open_conversations(base: str) -> float | None:
    """The statistics tracker's open conversations, from ``/metrics`` (loopback, no token)."""
    with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
            for line in (await resp.text()).splitlines():
                if line.startswith("tsunagu_open_conversations "):
                    return float(line.split()[1])
    return None


def report(title: str, stats: Stats) -> None:
    """Print one phase."""
    print(f"\n{title}: {stats.total} turns in {stats.ended - stats.started:.1f} s")
    print(f"  messages/s: {stats.rate:.0f}")
    every = [x for v in stats.latencies.values() for x in v]
    rows = [*sorted(stats.latencies.items()), ("all", every)]
    for channel, values in rows:
        print(
            f"  {channel:>4}: n={len(values):6d}  p50 {_pct(values, 0.50):6.1f} ms  "
            f"p95 {_pct(values, 0.95):6.1f} ms  p99 {_pct(values, 0.99):6.1f} ms  "
            f"max {_pct(values, 1.0):7.1f} ms"
        )
    errors = ", ".join(f"{k}={n}" for k, n in sorted(stats.errors.items())) or "none"
    print(f"  errors: {errors}")


async def run(args: argparse.Namespace) -> int:
    """Run the phases and print the results."""
    tmp = Path(tempfile.mkdtemp(prefix="tsunagu-load-"))
    log = tmp / "server.log"
    saturating = ("api", "ws")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"Python {sys.version.split()[0]}; people {args.people}; logs in {tmp}"
    )
    bare_rate = 0.0
    if not args.soak and not args.skip_bare:
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_echo.py"), str(port)])
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base, proc)
            bare = await drive(base, args.people, saturating, args.duration, 0.0, None)
            report("bare aiohttp echo, back to back (api+ws)", bare)
            bare_rate = bare.rate
        finally:
            stop(proc)

    async with Simulator(LINE_SECRET, LINE_TOKEN) as sim:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        sim.webhook_url = f"{base}/line/webhook"
        extra = {"TSUNAGU_IDLE_MINUTES": str(args.idle_minutes)} if args.idle_minutes else None
        proc = start_tsunagu(port, tmp / "load.db", sim.base_url, log, extra)
        samples: list[tuple[float, float]] = []
        try:
            started = time.monotonic()
            await wait_healthy(base, proc)
            ready = time.monotonic() - started
            print(f"\ntsunagu ready in {ready:.1f} s, RSS {rss_mb(proc.pid):.0f} MiB")
            if not args.soak:
                sat = await drive(base, args.people, saturating, args.duration, 0.0, sim)
                report("tsunagu, back to back (api+ws)", sat)
                if bare_rate:
                    print(f"  ratio to the bare handler: {sat.rate / bare_rate:.0%}")
            seconds = args.soak or args.duration
            phase_start = time.monotonic()

            def tick(_: float) -> None:
                elapsed = time.monotonic() - phase_start
                samples.append((elapsed, rss_mb(proc.pid)))
                if args.soak and int(elapsed) % 60 == 0:
                    print(f"  {elapsed:5.0f} s  RSS {samples[-1][1]:.1f} MiB", flush=True)

            tracked: list[float | None] = []

            async def follow_tracker() -> None:
                # The one bounded table /metrics shows: where it levels off (its cap).
                while True:
                    await asyncio.sleep(60)
                    tracked.append(await open_conversations(base))

            follower = asyncio.create_task(follow_tracker()) if args.soak else None
            channels = ("ws", "api", "line")
            live = await drive(base, args.people, channels, seconds, args.think, sim, tick)
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
                counts = ", ".join("?" if n is None else f"{n:.0f}" for n in tracked)
                print(f"  open conversations followed for statistics, each minute: {counts}")
            report(f"tsunagu, {args.people} people, think {args.think:.1f} s (ws+api+line)", live)
            answered = Counter(
                c.body.get("replyToken") for c in sim.calls_to("/message/reply") if c.status == 200
            )
            twice = sum(1 for n in answered.values() if n > 1)
            rejected = len(sim.rejected())
            print(f"  LINE reply tokens used twice: {twice}; platform rejections: {rejected}")
        finally:
            final_rss = rss_mb(proc.pid)
            stop(proc)
    rss = [m for _, m in samples]
    if rss:
        print(f"\nserver RSS: start {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, ", end="")
        print(f"end {final_rss:.0f} MiB")
        end = samples[-1][0]
        half = [s for s in samples if s[0] >= end / 2]
        quarter = [s for s in samples if s[0] >= end * 3 / 4]
        print(
            f"RSS slope: {slope_mb_per_min(samples):+.2f} MiB/min overall, "
            f"{slope_mb_per_min(half):+.2f} MiB/min over the second half, "
            f"{slope_mb_per_min(quarter):+.2f} MiB/min over the last quarter"
        )
        if args.soak:
            # Where memory levels off: the slope of each successive quarter.
            slopes = [
                slope_mb_per_min([s for s in samples if end * q / 4 <= s[0] < end * (q + 1) / 4])
                for q in range(4)
            ]
            print("RSS slope per quarter: " + ", ".join(f"{x:+.2f}" for x in slopes))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200, help="concurrent people (200)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase (20)")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time, s (1.0)")
    parser.add_argument("--soak", type=float, default=0.0, help="soak seconds (e.g. 600)")
    parser.add_argument("--skip-bare", action="store_true", help="skip the bare baseline")
    parser.add_argument(
        "--idle-minutes",
        type=int,
        default=0,
        help="server idle timeout (TSUNAGU_IDLE_MINUTES; default the server's 30): a soak "
        "with a shorter one fills the per-conversation statistics window sooner",
    )
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
