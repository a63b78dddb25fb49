"""Declarative handler registry: postbacks, commands and phases mapped to handler functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.dialogue.turn import Turn

# A handler gets the turn and a value (the postback value, or "" for commands and phases).
Handler = Callable[["Turn", str], None]

KINDS = ("postback", "command", "phase", "signal")
_HANDLERS: dict[tuple[str, str], Handler] = {}


def on(kind: str, name: str) -> Callable[[Handler], Handler]:
    """Register a handler, e.g. ``@on("postback", "consent")`` or ``@on("command", "help")``.

    Args:
        kind: postback | command | phase | signal (e.g. crisis).
        name: postback prefix (before ``:``), command id or phase name.

    Returns:
        The decorator.

    Raises:
        ValueError: unknown kind or a name registered twice.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown handler kind {kind!r}")

    def decorate(func: Handler) -> Handler:
        if (kind, name) in _HANDLERS:
            raise ValueError(f"handler {kind}:{name} registered twice")
        _HANDLERS[(kind, name)] = func
        return func

    return decorate


def lookup(kind: str, name: str) -> Handler | None:
    """Return the handler registered for ``kind``/``name``, or None."""
    return _HANDLERS.get((kind, name))


def registered() -> list[tuple[str, str]]:
    """Every registered (kind, name), for tests and docs."""
    return sorted(_HANDLERS)
