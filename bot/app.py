"""The aiohttp application factory."""

from __future__ import annotations

import importlib

from aiohttp import web

from bot import keys
from bot.config import Config

# Each feature module exposes ``setup(app: web.Application) -> None`` that adds its
# routes, sub-apps and cleanup contexts. Order matters: shared resources come first.
FEATURES: tuple[str, ...] = (
    "bot.core",
    "bot.web.clientip",
    "bot.web.limits",
    "bot.relay",
    "bot.web.admin",
    "bot.web.console",
    "bot.web.stats",
    "bot.web.metrics",
    "bot.channels.web",
    "bot.channels.line",
    "bot.retention",
    "bot.web.privacy",
    "bot.web.privacy_admin",
)


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
    for name in FEATURES:
        importlib.import_module(name).setup(app)
    return app
