"""Pseudonymous user keys: a channel's user id never reaches the engine or the database."""

from __future__ import annotations

import hashlib
import hmac


def user_key(channel: str, raw_id: str, secret: str) -> str:
    """Return the pseudonymous key of a channel user.

    Args:
        channel: channel name (``line``, ``web``, ``terminal``).
        raw_id: the channel's own id (e.g. a LINE userId).
        secret: the server secret (``Config.secret``).

    Returns:
        ``"<channel>:<hex HMAC-SHA256>"``, stable for the same secret.
    """
    digest = hmac.new(secret.encode(), f"{channel}\x00{raw_id}".encode(), hashlib.sha256)
    return f"{channel}:{digest.hexdigest()[:32]}"
