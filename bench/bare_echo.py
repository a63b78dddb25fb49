"""A bare aiohttp server echoing JSON: the baseline ``bench/load.py`` compares tsunagu with.

Run: ``python bench/bare_echo.py PORT``. ``POST /api/chat`` parses the JSON body and returns it
inside a reply of the same shape as tsunagu's; ``GET /ws/chat`` echoes each frame as a reply;
``GET /healthz`` answers ok. No access log, like a production setup behind a proxy.
"""

from __future__ import annotations

import json
import sys

from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.Response:
    """Echo the JSON body back."""
    data = await request.json()
    return web.json_response({"session": data.get("session"), "messages": [data]})


async def ws_echo(request: web.Request) -> web.WebSocketResponse:
    """Echo every text frame as a reply frame."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            break
        data = json.loads(msg.data)
        await ws.send_json({"type": "reply", "id": data.get("id"), "messages": [data]})
    return ws


async def healthz(request: web.Request) -> web.Response:
    """Readiness probe."""
    return web.json_response({"status": "ok"})


def main() -> None:
    """Serve on 127.0.0.1:PORT until terminated."""
    app = web.Application()
    app.router.add_post("/api/chat", echo)
    app.router.add_get("/ws/chat", ws_echo)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
