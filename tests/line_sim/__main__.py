"""Chat with a running tsunagu over the simulated LINE platform: ``python -m tests.line_sim``.

Start the simulator first, then tsunagu with the environment it prints::

    python -m tests.line_sim --webhook http://127.0.0.1:8080/line/webhook
    # in another shell, with the printed LINE_* and TSUNAGU_LINE_API_BASE variables:
    tsunagu serve

Each line typed is sent as a text message from one simulated user; ``/follow``,
``/unfollow``, ``/sticker``, ``/image`` and ``/pb DATA`` (a postback) send those events.
What the bot sends back is printed (text, quick-reply labels, Flex alt text).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys

from tests.line_sim import events as ev
from tests.line_sim.server import LineSimulator


def _show(message: dict) -> str:
    if message.get("type") == "flex":
        return f"[Flex] {message.get('altText')}"
    out = message.get("text", f"[{message.get('type')}]")
    items = (message.get("quickReply") or {}).get("items", [])
    if items:
        labels = " / ".join(i["action"].get("label", "?") for i in items)
        out += f"\n    [{labels}]"
    return out


async def _main(args: argparse.Namespace) -> int:
    sim = LineSimulator(args.secret, args.token, webhook_url=args.webhook)
    await sim.start(port=args.port)
    for name, value in sim.app_env().items():
        print(f"{name}={value}")
    user = ev.new_user_id()
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return 0
            line = line.strip()
            if not line:
                continue
            seen = len(sim.messages_to(user))
            event = {
                "/follow": lambda: ev.follow(user),
                "/unfollow": lambda: ev.unfollow(user),
                "/sticker": lambda: ev.sticker(user),
                "/image": lambda: ev.image(user),
            }.get(line, lambda: None)()
            if event is None and line.startswith("/pb "):
                event = ev.postback(user, line[4:])
            event = event or ev.text(user, line)
            result = await sim.send(event)
            print(f"  (webhook {result.status} in {result.seconds * 1000:.0f} ms)")
            with contextlib.suppress(TimeoutError):
                await sim.wait_messages(user, seen + 1, timeout=5)
            await asyncio.sleep(0.3)
            for message in sim.messages_to(user)[seen:]:
                print("bot>", _show(message))
            for call in sim.rejected():
                print("REJECTED", call.path, json.dumps(call.response, ensure_ascii=False))
            sim.calls.clear()
    finally:
        await sim.close()


def main() -> int:
    """Run the interactive simulator."""
    parser = argparse.ArgumentParser(prog="python -m tests.line_sim", description=__doc__)
    parser.add_argument("--webhook", default="http://127.0.0.1:8080/line/webhook")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--secret", default=secrets.token_hex(16))
    parser.add_argument("--token", default="dev-access-token")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
