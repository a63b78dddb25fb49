"""Handler families; importing this package registers every handler."""

from __future__ import annotations

from bot.dialogue.handlers import consent, control, crisis, topics

__all__ = ["consent", "control", "crisis", "topics"]
