"""``tsunagu chat``: the dialogue engine in a terminal, for staff to try the bot and for demos."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.config import ConfigError, load_config
from bot.dialogue.replies import (
    ChoicesReply,
    EndReply,
    HandoffNotice,
    Reply,
    ResourcesReply,
    TextReply,
)
from knowledge.db import DatabaseError

CHANNEL = "terminal"
_QUIT = {"/quit", "/exit", "/q"}


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``chat`` command."""
    p = sub.add_parser("chat", help="talk to the bot in this terminal (same engine as the web)")
    p.add_argument(
        "--db", type=Path, help="SQLite file (default ./data/tsunagu.db, env TSUNAGU_DB)"
    )
    p.add_argument("--config", type=Path, help="YAML configuration file (env TSUNAGU_CONFIG)")
    p.set_defaults(func=run)


def render(replies: Sequence[Reply], out: TextIO) -> list[str]:
    """Print replies as plain text; returns the postbacks of numbered choices."""
    postbacks: list[str] = []
    for reply in replies:
        if isinstance(reply, TextReply | EndReply):
            print(f"つなぐ> {reply.text}", file=out)
        elif isinstance(reply, HandoffNotice):
            print(f"つなぐ> [{reply.status}] {reply.text}", file=out)
        elif isinstance(reply, ChoicesReply):
            print(f"つなぐ> {reply.text}", file=out)
            for choice in reply.items:
                postbacks.append(choice.postback)
                print(f"   {len(postbacks)}) {choice.label}", file=out)
        elif isinstance(reply, ResourcesReply):
            if reply.intro:
                print(f"つなぐ> {reply.intro}", file=out)
            for card in reply.items:
                sample = " [サンプル]" if card.sample else ""
                print(f"   ■ {card.name}{sample}", file=out)
                if card.reason:
                    print(f"     {card.reason}", file=out)
                for label, value in (
                    ("電話", card.phone),
                    ("受付", card.hours),
                    ("web", card.url),
                ):
                    if value:
                        print(f"     {label}: {value}", file=out)
    return postbacks


async def converse(engine: object, inp: TextIO, out: TextIO) -> None:
    """Read lines and answer them until end of input or /quit.

    A line with only a number presses that numbered button.
    """
    from bot.channels.base import IncomingMessage
    from bot.dialogue.engine import Engine

    assert isinstance(engine, Engine)
    key = f"{CHANNEL}:{secrets.token_hex(8)}"
    postbacks = render(await engine.greet(key, CHANNEL), out)
    print("（番号でボタンを選べます。/quit で終了）", file=out)
    while True:
        print("あなた> ", end="", file=out, flush=True)
        line = inp.readline()
        if not line:
            break
        text = line.strip()
        if text in _QUIT:
            break
        if not text:
            continue
        if text.isdigit() and 1 <= int(text) <= len(postbacks):
            incoming = IncomingMessage(CHANNEL, key, postback=postbacks[int(text) - 1])
        else:
            incoming = IncomingMessage(CHANNEL, key, text=text)
        postbacks = render(await engine.handle(incoming), out)
    engine.forget(key)


def run(args: argparse.Namespace) -> int:
    """Open the database and knowledge base, then chat on stdin/stdout."""
    from bot.cli.serve import prepare_database
    from bot.dialogue.engine import Engine
    from handoff.store import ConversationStore
    from knowledge.base import KnowledgeBase
    from knowledge.db import connect

    try:
        config = load_config(args.config, db_path=args.db)
        prepare_database(config)
    except (ConfigError, OSError, DatabaseError) as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 2
    db = connect(config.db_path)
    try:
        engine = Engine(KnowledgeBase.open(db), ConversationStore.open(db), config)
        asyncio.run(converse(engine, sys.stdin, sys.stdout))
    except KeyboardInterrupt:
        print(file=sys.stdout)
    finally:
        db.close()
    return 0
