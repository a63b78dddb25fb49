"""Japanese language understanding for tsunagu: normalise, tokenise, match rules, detect crisis.

Imports nothing from the other tsunagu packages and does no I/O beyond loading its rules
and the Sudachi dictionary (both on first use).
"""

from __future__ import annotations

# Bound eagerly so that ``intents.understand`` is always the function: a lazily imported
# submodule of the same name would otherwise replace it as the package attribute.
from intents.understand import understand

__all__ = ["understand"]
