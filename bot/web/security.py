"""Security headers for staff pages and the small primitives the auth layer builds on."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

# Staff pages: no inline script or style, nothing from other origins, never framed.
STAFF_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def new_token() -> str:
    """A fresh random token (256 bits from the OS CSPRNG), URL-safe."""
    return secrets.token_urlsafe(32)


def tokens_equal(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens; False when either is missing or empty."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def security_headers(csp: str = STAFF_CSP, *, no_store: bool = True) -> Middleware:
    """A middleware adding CSP, nosniff, Referrer-Policy and anti-framing headers.

    Args:
        csp: the Content-Security-Policy; the default forbids inline script and framing.
        no_store: add ``Cache-Control: no-store`` to pages (staff pages hold personal data).

    Returns:
        The middleware, for a sub-app such as ``/admin`` or ``/console``.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _apply(exc.headers, csp, no_store=no_store)
            raise
        _apply(response.headers, csp, no_store=no_store)
        return response

    return middleware


def _apply(headers: MutableMapping[str, str], csp: str, *, no_store: bool) -> None:
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if "frame-ancestors 'none'" in csp:
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if no_store:
        headers.setdefault("Cache-Control", "no-store")
