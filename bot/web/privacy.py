"""``GET /privacy``: the privacy notice (プライバシーポリシー) with the running config values."""

from __future__ import annotations

import jinja2
from aiohttp import web

from bot import keys

# The page is static apart from the config values, so it gets the strictest policy.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
PATH = "/privacy"
_ENV = web.AppKey("privacy_templates", jinja2.Environment)


async def privacy_page(request: web.Request) -> web.Response:
    """``GET /privacy``: what is stored, masked, for how long, who sees it, and how to delete."""
    config = request.app[keys.CONFIG]
    html = (
        request.app[_ENV].get_template("privacy.html").render(retention_days=config.retention_days)
    )
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def setup(app: web.Application) -> None:
    """Add ``/privacy``."""
    app[_ENV] = jinja2.Environment(
        loader=jinja2.PackageLoader("bot", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get(PATH, privacy_page)
