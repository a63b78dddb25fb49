"""Japanese language understanding for tsunagu: normalise, tokenise, match rules, detect crisis.

Imports nothing from the other tsunagu packages and does no I/O beyond loading its rules
and the Sudachi dictionary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intents.types import Understanding

__all__ = ["understand"]


def understand(text: str) -> Understanding:
    """Understand one message: topics, audience, age group, crisis, area, evidence.

    Args:
        text: the message as typed (any string).

    Returns:
        The Understanding of the message.
    """
    from intents.understand import understand as _understand

    return _understand(text)
