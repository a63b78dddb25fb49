"""bot.relay with the real app: offer, choice, silent bot, 最初から, 履歴を消して, outboxes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.identity import user_key
from bot.relay import (
    COUNSELOR_PREFIX,
    OUTBOX_EMPTY_SECONDS,
    OUTBOX_IDLE_SECONDS,
    OUTBOXES,
    Outboxes,
    follow_outbox,
    format_moment,
    format_wait,
)
from knowledge.hours import JST


class Person:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.session: str | None = None

    async def send(self, **turn: Any) -> list[dict[str, Any]]:
        resp = await self.client.post("/api/chat", json={"session": self.session, **turn})
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        self.session = data["session"]
        return data["messages"]

    @property
    def key(self) -> str:
        assert self.session
        return user_key("web", self.session, self.client.app[keys.CONFIG].secret)


@pytest.fixture
async def person(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sudachi: None
) -> Person:
    config = load_config(env={"TSUNAGU_SECRET": "relay-test"}, db_path=tmp_path / "t.db")
    p = Person(await aiohttp_client(create_app(config)))
    await p.send()
    await p.send(postback="consent:granted")
    await p.send(text="息子が万引きで捕まりました")
    return p


async def test_cancel_creates_nothing_and_the_bot_goes_on(person: Person) -> None:
    offer = await person.send(text="人と話したい")
    assert offer[-1]["type"] == "choices"
    assert "相談の種類・どなたの相談か・年代・地域・緊急度" in offer[-1]["text"]
    answer = await person.send(text="やめる")  # a typed label counts as the button
    assert "ボットがお話をうかがいます" in answer[0]["text"]
    assert person.client.app[keys.DESK].open_case(person.key) is None


async def test_while_waiting_the_bot_is_silent_but_restart_works(person: Person) -> None:
    await person.send(postback="cmd:human")
    queued = await person.send(postback="handoff:anonymous")
    assert queued[0]["type"] == "handoff" and queued[0]["status"] == "waiting"
    desk = person.client.app[keys.DESK]
    case = desk.open_case(person.key)
    assert case is not None and case.consent == "anonymous" and case.reason == "requested"
    assert await person.send(text="窃盗についてもう少し書きます") == []
    assert [m.sender for m in desk.store.messages(case.id)] == ["person"]
    busy = await person.send(postback="topic:drugs")  # an old button
    assert "相談員とのお話の途中" in busy[0]["text"]
    back = await person.send(text="最初から")
    assert "終わりました" in back[0]["text"] and back[-1]["type"] == "choices"
    assert desk.open_case(person.key) is None
    assert desk.store.get(case.id).state == "returned"


async def test_crisis_while_waiting_brings_the_lines_at_once(person: Person) -> None:
    await person.send(postback="cmd:human")
    await person.send(postback="handoff:full")
    answer = await person.send(text="もう死にたい")
    assert any(m["type"] == "resources" for m in answer)
    case = person.client.app[keys.DESK].open_case(person.key)
    assert case is not None and case.summary.crisis != "none"


async def test_delete_ends_and_empties_the_case(person: Person) -> None:
    await person.send(postback="cmd:human")
    await person.send(postback="handoff:full")
    desk = person.client.app[keys.DESK]
    case = desk.open_case(person.key)
    assert case is not None
    await person.send(text="連絡先は090-1234-5678です")
    end = await person.send(text="履歴を消して")
    assert end[0]["type"] == "end"
    gone = desk.store.get(case.id)
    assert gone.user_key is None and gone.state == "abandoned"
    assert desk.store.messages(case.id) == []


async def test_back_after_the_idle_timeout_with_a_case_open(person: Person) -> None:
    await person.send(postback="cmd:human")
    await person.send(postback="handoff:anonymous")
    app = person.client.app
    engine, desk = app[keys.ENGINE], app[keys.DESK]
    later = time.time() + 2 * 3600  # past the idle timeout (30 minutes)
    engine.clock = lambda: later
    back = await person.send()  # the widget reopened: an empty turn greets
    assert [(m["type"], m["status"]) for m in back] == [("handoff", "waiting")]
    assert "おかえりなさい" not in back[0]["text"] and "相談員" in back[0]["text"]
    # Once greeted it is quiet again (a reconnect does not repeat the notice).
    assert await person.send() == []
    case = desk.open_case(person.key)
    assert case is not None
    app[keys.KB].add_user("kaori", "counselor", "kaori-counsel-pass-1", office_id=case.office_id)
    counselor = app[keys.KB].get_user("kaori")
    assert counselor is not None
    desk.claim(counselor, case.id)
    even_later = later + 2 * 3600
    engine.clock = lambda: even_later
    back = await person.send()
    assert [(m["type"], m["status"]) for m in back] == [("handoff", "active")]
    assert "いまも相談員とつながっています" in back[0]["text"]
    # After the case ends the usual 続きから greeting is back.
    desk.person_leaves(person.key)
    engine.clock = lambda: even_later + 2 * 3600
    back = await person.send()
    assert "おかえりなさい" in back[0]["text"]


def test_wait_and_moment_wording() -> None:
    assert format_wait(30) == "約5分"
    assert format_wait(14 * 60) == "約15分"
    assert format_wait(90 * 60) == "約1時間30分"
    assert format_wait(2 * 3600) == "約2時間"
    monday_nine = datetime(2030, 1, 14, 9, 0, tzinfo=JST).timestamp()
    assert format_moment(monday_nine) == "1月14日（月）9時00分"


# -- the widget's outboxes: kept while needed, then gone -------------------------------------


class Monotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


NOTICE = [{"type": "handoff", "status": "claimed", "text": "相談員がつながりました。"}]


def test_an_empty_outbox_nobody_follows_goes_after_a_minute() -> None:
    clock = Monotonic()
    boxes = Outboxes(clock=clock)
    first = boxes.open("web:a")
    clock.now += OUTBOX_EMPTY_SECONDS - 1
    assert boxes.open("web:a") is first  # a quick reconnect keeps the numbering
    clock.now += OUTBOX_EMPTY_SECONDS + 1
    boxes.open("web:b")  # any open sweeps the front of the queues
    assert boxes.get("web:a") is None and len(boxes) == 1
    again = boxes.open("web:a")
    assert again is not first and again.epoch != first.epoch
    # A client holding the old numbering gets everything of the new one, from its start.
    again.add(NOTICE)
    assert again.after(first.epoch, 5) == [(1, NOTICE)]


def test_a_followed_outbox_stays_while_followed() -> None:
    clock = Monotonic()
    boxes = Outboxes(clock=clock)
    box = boxes.open("web:a")
    box.watch()
    clock.now += 3 * OUTBOX_IDLE_SECONDS  # a socket open for days
    boxes.open("web:b")
    assert boxes.get("web:a") is box
    assert boxes.counts() == {"followed": 1, "empty": 1, "pending": 0}
    box.release()  # the socket closed with nothing uncollected
    assert boxes.counts() == {"followed": 0, "empty": 2, "pending": 0}
    clock.now += OUTBOX_EMPTY_SECONDS + 1
    boxes.open("web:c")
    assert boxes.get("web:a") is None and boxes.get("web:b") is None


def test_uncollected_pushes_are_kept_a_day_from_the_last_push(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Monotonic()
    boxes = Outboxes(clock=clock)
    box = boxes.open("web:a")
    box.add(NOTICE)
    clock.now += OUTBOX_IDLE_SECONDS - 60
    box.add([{"type": "text", "text": "【相談員】おはようございます。"}])  # the clock restarts
    clock.now += OUTBOX_IDLE_SECONDS - 60
    assert boxes.open("web:a") is box and [n for n, _ in box.after(None, 0)] == [1, 2]
    # The person acknowledged the first one only; nobody comes back for a day.
    box.ack(box.epoch, 1)
    assert boxes.counts()["pending"] == 1
    clock.now += OUTBOX_IDLE_SECONDS + 1
    with caplog.at_level(logging.INFO, logger="bot.relay"):
        boxes.open("web:b")
    assert boxes.get("web:a") is None and boxes.expired == 1
    assert "1 widget outboxes with uncollected pushes dropped after 24 h" in caplog.text
    assert "web:a" not in caplog.text


def test_acknowledging_everything_empties_the_outbox() -> None:
    clock = Monotonic()
    boxes = Outboxes(clock=clock)
    box = boxes.open("web:a")
    box.add(NOTICE)
    box.add(NOTICE)
    box.ack("another-epoch", 2)  # not this numbering: nothing is dropped
    assert boxes.counts()["pending"] == 1
    box.ack(box.epoch, 2)
    assert box.items == [] and boxes.counts() == {"followed": 0, "empty": 1, "pending": 0}
    assert box.add(NOTICE) == 3  # the numbering goes on while the outbox is kept


def test_at_the_cap_empty_outboxes_go_among_themselves_and_lost_pushes_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Monotonic()
    boxes = Outboxes(people=2, clock=clock)
    for key in ("web:p1", "web:p2"):
        boxes.open(key).add(NOTICE)
    for key in ("web:e1", "web:e2", "web:e3"):
        clock.now += 1
        boxes.open(key)
    # Three empty ones for a cap of two: the oldest empty one goes, no push is lost.
    assert boxes.get("web:e1") is None and boxes.get("web:p1") is not None
    assert boxes.dropped_at_cap == 0 and "cap" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="bot.relay"):
        boxes.open("web:p3").add(NOTICE)
    assert boxes.get("web:p1") is None and boxes.get("web:p3") is not None
    assert boxes.dropped_at_cap == 1
    assert "widget outboxes at the cap of 2 people not connected: 1 holding" in caplog.text
    assert "web:p" not in caplog.text


async def test_a_push_reaches_a_poll_waiting_on_the_outbox() -> None:
    boxes = Outboxes()
    box = boxes.open("web:a")
    waiting = asyncio.create_task(box.wait(0, 5))
    await asyncio.sleep(0)
    assert boxes.counts()["followed"] == 1  # never dropped while a poll waits on it
    assert boxes.open("web:a").add(NOTICE) == 1
    await asyncio.wait_for(waiting, 1)
    assert boxes.counts() == {"followed": 0, "empty": 0, "pending": 1}
    assert box._changed is None  # the wake-up event lives only while someone waits


async def test_an_outbox_being_sent_to_a_socket_is_kept() -> None:
    clock = Monotonic()
    app = web.Application()
    app[OUTBOXES] = boxes = Outboxes(clock=clock)
    box = boxes.open("web:a")
    box.add(NOTICE)
    gate, sent = asyncio.Event(), []

    async def send(frame: dict[str, Any]) -> bool:  # a slow socket
        sent.append(frame)
        await gate.wait()
        return True

    follower = asyncio.create_task(follow_outbox(app, "web:a", send, None, 0))
    await asyncio.sleep(0.01)
    assert [f["seq"] for f in sent] == [1]
    clock.now += OUTBOX_IDLE_SECONDS + 1
    boxes.open("web:b")
    assert boxes.get("web:a") is box  # followed: never swept from under its socket
    gate.set()
    box.add(NOTICE)
    await asyncio.sleep(0.01)
    assert [f["seq"] for f in sent] == [1, 2]
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower
    # Sent on a socket, not yet acknowledged by the client's next hello: still kept.
    assert boxes.counts() == {"followed": 0, "empty": 1, "pending": 1}


async def _queued_widget_person(client: TestClient) -> tuple[str, int, Any]:
    """A widget person (over the API) whose case waits, and a counselor of its office."""
    person = Person(client)
    await person.send()
    for turn in (
        {"postback": "consent:granted"},
        {"text": "息子が万引きで捕まりました"},
        {"postback": "cmd:human"},
        {"postback": "handoff:full"},
    ):
        await person.send(**turn)
    app = client.app
    case = app[keys.DESK].open_case(person.key)
    assert case is not None and person.session is not None
    app[keys.KB].add_user("kaori", "counselor", "kaori-counsel-pass-1", office_id=case.office_id)
    counselor = app[keys.KB].get_user("kaori")
    assert counselor is not None
    return person.session, case.id, counselor


async def _hello(client: TestClient, session: str | None, epoch: Any = None, seq: int = 0) -> Any:
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "hello", "session": session, "epoch": epoch, "seq": seq})
    ready = await ws.receive_json(timeout=10)
    assert ready["type"] == "ready"
    return ws


async def _push(ws: Any) -> dict[str, Any]:
    while True:
        frame = await ws.receive_json(timeout=10)
        if frame["type"] == "reply" and frame.get("seq") is not None:
            return frame


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path, sudachi: None
) -> TestClient:
    config = load_config(env={"TSUNAGU_SECRET": "relay-test"}, db_path=tmp_path / "t.db")
    return await aiohttp_client(create_app(config))


async def test_a_counselor_answer_waits_for_a_person_back_within_the_day(
    client: TestClient,
) -> None:
    session, case_id, counselor = await _queued_widget_person(client)
    desk, outboxes = client.app[keys.DESK], client.app[OUTBOXES]
    clock = Monotonic()
    clock.now = time.monotonic()
    outboxes.clock = clock
    # The person closed the laptop; the counselor answers at once.
    desk.claim(counselor, case_id)
    desk.reply(counselor, case_id, "相談員の木村です。お話を聞かせてください。")
    await asyncio.sleep(0.05)  # the delivery task fills the outbox
    # The evening passes: a crowd opens and closes the widget meanwhile (their empty
    # outboxes come and go), and the night is quiet.
    for _ in range(5):
        clock.now += 3600
        ws = await _hello(client, None)
        await ws.close()
    await asyncio.sleep(0.05)
    clock.now += 17 * 3600  # 22 hours after the answer
    others = await _hello(client, None)  # sweeps: the crowd's empty outboxes are gone
    assert outboxes.counts() == {"followed": 1, "empty": 0, "pending": 1}
    ws = await _hello(client, session)
    claimed, answer = await _push(ws), await _push(ws)
    assert claimed["messages"][0]["status"] == "claimed"
    assert answer["messages"] == [
        {"type": "text", "text": COUNSELOR_PREFIX + "相談員の木村です。お話を聞かせてください。"}
    ]
    await ws.close()
    await others.close()


async def test_an_answer_nobody_collected_for_a_day_is_dropped(client: TestClient) -> None:
    session, case_id, counselor = await _queued_widget_person(client)
    desk, outboxes = client.app[keys.DESK], client.app[OUTBOXES]
    clock = Monotonic()
    clock.now = time.monotonic()
    outboxes.clock = clock
    desk.claim(counselor, case_id)
    await asyncio.sleep(0.05)
    clock.now += OUTBOX_IDLE_SECONDS + 1
    ws = await _hello(client, session)
    # Nothing is replayed: the outbox expired (the case itself is still on the desk).
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(_push(ws), 0.3)
    assert outboxes.expired == 1 and desk.open_case(user_key("web", session, "relay-test"))
    await ws.close()


async def test_closed_sockets_leave_no_outbox_behind(client: TestClient) -> None:
    outboxes = client.app[OUTBOXES]
    clock = Monotonic()
    clock.now = time.monotonic()
    outboxes.clock = clock
    sockets = [await _hello(client, None) for _ in range(10)]
    await asyncio.sleep(0.05)
    assert outboxes.counts() == {"followed": 10, "empty": 0, "pending": 0}
    for ws in sockets:
        await ws.close()
    await asyncio.sleep(0.05)  # the followers end with their sockets
    assert outboxes.counts() == {"followed": 0, "empty": 10, "pending": 0}
    clock.now += OUTBOX_EMPTY_SECONDS + 1
    last = await _hello(client, None)
    assert len(outboxes) == 1  # only the socket still open
    await last.close()
