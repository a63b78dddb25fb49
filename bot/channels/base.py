"""The one internal message type and the output-channel protocol shared by all channels."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.dialogue.replies import Reply


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One thing a person sent, whatever the channel."""

    channel: str  # line | web | terminal
    user_key: str  # pseudonymous: an HMAC of the channel's user id, never the raw id
    text: str | None = None
    postback: str | None = None
    event_id: str | None = None
    received_at: float = field(default_factory=time.time)


class OutgoingChannel(Protocol):
    """Where replies to one person go."""

    async def send(self, user_key: str, replies: Sequence[Reply]) -> None:
        """Deliver replies to the person behind ``user_key``."""


class CollectingChannel:
    """Keeps what would have been sent; for tests and the terminal chat."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []

    async def send(self, user_key: str, replies: Sequence[Reply]) -> None:
        """Record the replies."""
        self.sent.extend((user_key, r) for r in replies)
