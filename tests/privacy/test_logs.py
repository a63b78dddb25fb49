"""Logs carry ids and timings only: everything logged during full conversations over the widget
API, the WebSocket and the LINE webhook (with a handover to a counselor) is searched for the
text, the personal data and the raw LINE user id — none may appear."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.channels import line
from bot.config import load_config
from bot.identity import user_key
from tests.line_sim import LineSimulator
from tests.line_sim import events as ev
from tests.privacy.helpers import case_for_counselor, chat

SECRET = "abcdefabcdefabcdefabcdefabcdef12"
TOKEN = "logs-access-token"
PHONE = "090-8765-4321"
EMAIL = "hanako.kimura@example.jp"
NAME = "木村花子"
# Each channel gets its own words, so a leak points at its path.
WORDS = {
    "api": f"娘の{NAME}が万引きを繰り返しています。電話は{PHONE}、メールは{EMAIL}です",
    "api_live": "相談員さん、タンチョウ模様の手紙のことです",
    "ws": "父がパチンコで借金を作りました。住所は東京都千代田区永田町1-7-1です",
    "line": "息子がオオルリ色の自転車を盗んだかもしれません。090-1111-2222",
    "counselor": "ご連絡ありがとうございます。ヤマセミ係の者です",
}
NEEDLES = (
    PHONE,
    "8765-4321",
    "87654321",
    EMAIL,
    "hanako",
    NAME,
    "木村",
    "万引きを繰り返して",
    "タンチョウ",
    "パチンコで借金",
    "永田町",
    "オオルリ",
    "1111-2222",
    "ヤマセミ",
)


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as it would be written, with arguments and tracebacks."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = []
    for record in caplog.records:
        if record.name.startswith("tests."):
            continue  # the simulated LINE platform is not tsunagu
        lines.append(formatter.format(record))
    return "\n".join(lines)


async def test_no_text_or_id_in_any_log(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    sudachi: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with LineSimulator(SECRET, TOKEN) as sim:
        config = load_config(
            env={"TSUNAGU_SECRET": "logs-secret", **sim.app_env()}, db_path=tmp_path / "t.db"
        )
        app = create_app(config)
        client = await aiohttp_client(app)
        sim.webhook_url = str(client.make_url("/line/webhook"))
        kb = app[keys.KB]
        kb.add_user("kana", "counselor", "kana-counsel-pass-1", office_id="sample_probation")
        counselor = next(u for u in kb.list_users() if u.name == "kana")
        desk = app[keys.DESK]

        # 1. The widget API, with a handover, a counselor's answer and deletion.
        session, _ = await chat(client, None)
        await chat(client, session, postback="consent:granted")
        await chat(client, session, text=WORDS["api"])
        await chat(client, session, text="人と話したい")
        await chat(client, session, postback="handoff:full")
        await chat(client, session, text=WORDS["api_live"])
        _, case_id, counselor = case_for_counselor(client, session, "kana")
        desk.claim(counselor, case_id)
        desk.open_for_counselor(counselor, case_id)
        desk.reply(counselor, case_id, WORDS["counselor"])
        await chat(client, session, text="履歴を消して")

        # 2. The WebSocket.
        ws = await client.ws_connect("/ws/chat")
        await ws.send_json({"type": "hello", "session": None})
        await ws.receive_json()
        await ws.receive_json()
        await ws.send_json({"type": "postback", "postback": "consent:granted", "id": "a"})
        await ws.receive_json()
        await ws.receive_json()
        await ws.send_json({"type": "message", "text": WORDS["ws"], "id": "b"})
        await ws.receive_json()
        await ws.receive_json()
        await ws.send_json({"type": "message", "text": "x" * 9000, "id": "c"})  # too long
        await ws.receive_json()
        await ws.send_json({"type": "delete", "id": "d"})
        await ws.receive_json()
        await ws.receive_json()
        await ws.close()

        # 3. LINE: follow, consent, a message, a redelivery, a bad signature, unfollow.
        user = ev.new_user_id()
        channel = app[line.LINE]
        for event in (
            ev.follow(user),
            ev.postback(user, "consent:granted"),
            ev.text(user, WORDS["line"]),
            ev.text(user, "人と話したい"),
        ):
            assert (await sim.send(event)).status == 200
            await channel.idle()
        repeated = ev.text(user, WORDS["line"])
        await sim.send(repeated)
        await sim.redeliver(repeated)
        await channel.idle()
        bad = await client.post(
            "/line/webhook", data=b'{"events": []}', headers={"X-Line-Signature": "bad"}
        )
        assert bad.status == 400
        assert (await sim.send(ev.unfollow(user))).status == 200
        await channel.idle()
        assert sim.texts_to(user), "the LINE conversation did not happen"

    logged = _logged(caplog)
    assert "aiohttp.access" in logged and "/api/chat" in logged, "access log not captured"
    assert "turn web/" in logged and "turn line/" in logged  # the engine logged turns
    assert "LINE event" in logged and "redelivery" in logged and "unfollow" in logged
    for needle in (*NEEDLES, user, session, user_key("line", user, config.secret)):
        assert needle not in logged, f"{needle!r} found in the logs"
    for text in WORDS.values():
        assert text not in logged
