"""kill -9 under load, restart on the same file: nothing acknowledged is lost, nothing doubled.

Widget WebSocket, ``/api/chat`` and LINE clients talk to ``tsunagu serve`` (a subprocess)
while it is killed with SIGKILL and started again on the same SQLite file. Afterwards
every turn, consent and escalation a client saw acknowledged is in the database, no LINE
event was answered twice (even though every event is redelivered after the restart),
``PRAGMA integrity_check`` is ok, and the widget clients reconnected and went on.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.identity import user_key
from handoff.escalation_store import EscalationStore
from handoff.store import ConversationStore
from knowledge.db import connect
from tests.line_sim import LineSimulator
from tests.line_sim import events as ev
from tests.reliability.server import LINE_SECRET, LINE_TOKEN, free_port, serve, stop, wait_healthy

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SECRET = "reliability-secret"
TEXTS = ("息子のことで相談です", "薬物のことが心配です", "どこに相談すればいいですか")
BEFORE_KILL, AFTER_RESTART = 3.0, 4.0
# Below the per-person limit (bot/web/limits.yaml: 30 at once, then 1 every 2 s).
PAUSE = 0.4


def _http(n: int, **kwargs: Any) -> aiohttp.ClientSession:
    """A client on its own loopback address: people do not share one (per-address limits)."""
    connector = aiohttp.TCPConnector(local_addr=(f"127.2.0.{n + 1}", 0))
    return aiohttp.ClientSession(connector=connector, **kwargs)


@dataclass
class Ledger:
    """What the clients saw acknowledged."""

    turns: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    consented: set[str] = field(default_factory=set)
    escalated: set[str] = field(default_factory=set)
    resumed: Counter[str] = field(default_factory=Counter)
    after_restart: Counter[str] = field(default_factory=Counter)
    restarted_at: float = float("inf")
    done: bool = False


async def _receive(ws: aiohttp.ClientWebSocketResponse, kind: str, frame_id: Any = None) -> dict:
    while True:
        msg = await ws.receive(timeout=15)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed ({ws.close_code})")
        data = msg.json()
        if data.get("type") == kind and (kind != "reply" or data.get("id") == frame_id):
            return data


async def _widget(base: str, n: int, ledger: Ledger) -> None:
    session: str | None = None
    outbox: dict[str, Any] | None = None  # a frame not yet answered, resent on reconnect
    count = 0
    async with _http(n) as http:
        while not ledger.done:
            try:
                async with http.ws_connect(f"{base}/ws/chat") as ws:
                    await ws.send_json({"type": "hello", "session": session})
                    ready = await _receive(ws, "ready")
                    if session is not None:
                        assert ready["session"] == session and ready["resumed"]
                        ledger.resumed[session] += 1
                    else:
                        session = ready["session"]
                        await _receive(ws, "reply")  # the greeting
                        consent = {"type": "postback", "id": "c", "postback": "consent:granted"}
                        await ws.send_json(consent)
                        await _receive(ws, "reply", "c")
                        ledger.consented.add(session)
                    while not ledger.done:
                        if outbox is None:
                            count += 1
                            text = TEXTS[(n + count) % len(TEXTS)]
                            outbox = {"type": "message", "id": f"m{count}", "text": text}
                        await ws.send_json(outbox)
                        await _receive(ws, "reply", outbox["id"])
                        ledger.turns[session].append(outbox["text"])
                        if time.monotonic() > ledger.restarted_at:
                            ledger.after_restart[session] += 1
                        outbox = None
                        await asyncio.sleep(PAUSE)
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                await asyncio.sleep(0.2)  # the server is down: try again, like the widget


async def _api(base: str, n: int, ledger: Ledger) -> None:
    session: str | None = None
    pending: dict[str, Any] | None = None
    count = 0
    async with _http(100 + n, timeout=aiohttp.ClientTimeout(total=15)) as http:

        async def turn(body: dict[str, Any]) -> dict[str, Any]:
            async with http.post(f"{base}/api/chat", json=body) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()

        while not ledger.done:
            try:
                if session is None:
                    session = (await turn({"action": "start"}))["session"]
                    await turn({"session": session, "postback": "consent:granted"})
                    ledger.consented.add(session)
                    await turn({"session": session, "text": "息子が万引きで捕まりました"})
                    await turn({"session": session, "postback": "cmd:human"})
                    await turn({"session": session, "postback": "handoff:full"})
                    ledger.escalated.add(session)
                if pending is None:
                    count += 1
                    pending = {"session": session, "text": TEXTS[(n + count) % len(TEXTS)]}
                await turn(pending)
                ledger.turns[session].append(pending["text"])
                pending = None
                await asyncio.sleep(PAUSE)
            except (aiohttp.ClientError, ConnectionError, TimeoutError):
                await asyncio.sleep(0.2)


async def _line(sim: LineSimulator, ledger: Ledger, sent: list[dict[str, Any]]) -> None:
    user = ev.new_user_id()
    n = 0
    while not ledger.done:
        n += 1
        event = ev.text(user, TEXTS[n % len(TEXTS)])
        sent.append(event)
        # Not acknowledged while the server is down: LINE would redeliver (done below).
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
            await sim.send(event)
        await asyncio.sleep(PAUSE)


def _answers_per_event(sim: LineSimulator, sent: list[dict[str, Any]]) -> Counter[str]:
    """How many times each event got its (first) answer: by reply token or push retry key."""
    by_token = {e["replyToken"]: e["webhookEventId"] for e in sent}
    by_key = {
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"tsunagu:line:{e['webhookEventId']}:0")): e[
            "webhookEventId"
        ]
        for e in sent
    }
    answers: Counter[str] = Counter()
    for call in sim.calls:
        if call.status != 200:
            continue
        if call.path.endswith("/message/reply"):
            answers[by_token[call.body["replyToken"]]] += 1
        elif call.path.endswith("/message/push") and call.retry_key in by_key:
            answers[by_key[call.retry_key]] += 1
    return answers


async def test_kill_and_restart_under_load(tmp_path: Path, sudachi: None) -> None:
    db, log = tmp_path / "tsunagu.db", tmp_path / "serve.log"
    ledger = Ledger()
    sent: list[dict[str, Any]] = []
    async with LineSimulator(LINE_SECRET, LINE_TOKEN) as sim:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        sim.webhook_url = f"{base}/line/webhook"
        proc = serve(db, port, log, line_base=sim.base_url)
        await asyncio.to_thread(wait_healthy, port, proc)
        clients = [asyncio.create_task(_widget(base, i, ledger)) for i in range(10)]
        clients += [asyncio.create_task(_api(base, i, ledger)) for i in range(6)]
        clients += [asyncio.create_task(_line(sim, ledger, sent)) for _ in range(4)]
        await asyncio.sleep(BEFORE_KILL)
        proc.kill()  # SIGKILL: no shutdown handler runs
        await asyncio.to_thread(proc.wait)
        acked_before = sum(len(v) for v in ledger.turns.values())
        proc = serve(db, port, log, line_base=sim.base_url)
        await asyncio.to_thread(wait_healthy, port, proc)
        ledger.restarted_at = time.monotonic()
        await asyncio.sleep(AFTER_RESTART)
        ledger.done = True
        await asyncio.wait_for(asyncio.gather(*clients), 30)
        # LINE redelivers what it could not deliver; here every event comes again.
        for event in sent:
            await sim.redeliver(event)
        assert await asyncio.to_thread(stop, proc) == 0  # graceful: LINE tasks finish
    out = log.read_text(encoding="utf-8")
    assert "Traceback" not in out, out[-3000:]

    assert acked_before > 10 and ledger.after_restart, "the load did not run on both sides"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    database = connect(db)
    store = ConversationStore(database, mask=lambda t: t)
    for session, texts in ledger.turns.items():
        key = user_key("web", session, SECRET)
        stored = Counter(m.text for m in store.messages(key) if m.direction == "in")
        missing = Counter(texts) - stored
        assert not missing, f"acknowledged turns lost: {sum(missing.values())}"
    for session in ledger.consented:
        conv = store.get(user_key("web", session, SECRET))
        assert conv is not None and conv.consent == "granted"
    escalations = EscalationStore(database)
    for session in ledger.escalated:
        assert escalations.latest_for(user_key("web", session, SECRET)) is not None

    # Every widget client came back to its own conversation and went on talking.
    widget_sessions = {s for s in ledger.resumed}
    assert len(widget_sessions) == 10
    assert all(ledger.after_restart[s] > 0 for s in widget_sessions)

    answers = _answers_per_event(sim, sent)
    assert answers, "no LINE event was answered"
    twice = {e: n for e, n in answers.items() if n > 1}
    assert not twice, f"LINE events answered more than once: {len(twice)}"
