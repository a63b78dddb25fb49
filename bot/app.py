"""The aiohttp application factory."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.config import Config


async def healthz(request: web.Request) -> web.Response:
    """Liveness/readiness probe."""
    return web.json_response({"status": "ok"})


def create_app(config: Config) -> web.Application:
    """Create the tsunagu web application.

    Args:
        config: the validated service configuration.

    Returns:
        The application, with its resources opened in ``cleanup_ctx``.
    """
    app = web.Application(client_max_size=256 * 1024)
    app[keys.CONFIG] = config
    app.router.add_get("/healthz", healthz)
    return app
