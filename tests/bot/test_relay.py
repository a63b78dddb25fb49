"""bot.relay through the real engine: offer, choice, silent bot, 最初から and 履歴を消して."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.identity import user_key
from bot.relay import format_moment, format_wait
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
