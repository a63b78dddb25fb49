"""Commands understood at any point (人と話したい, 最初から, 履歴を消して, ヘルプ, 続きから)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml
from rapidfuzz import fuzz

from intents.normalize import fold, normalize
from intents.tokenizer import analyse

logger = logging.getLogger(__name__)

COMMAND_IDS = ("human", "restart", "delete", "help", "resume")
_STRIP = "。、．，.,!！?？〜~ー…・　 "


@dataclass(frozen=True, slots=True)
class CommandTable:
    """Variants of every command, pre-read as folded katakana."""

    variants: tuple[tuple[str, str], ...]  # (folded reading, command id)
    polite_endings: tuple[str, ...]
    max_chars: int
    fuzzy_cutoff: float
    fuzzy_max_chars: int


def _key(text: str) -> str:
    """The matching key of a text: its folded katakana reading without punctuation."""
    analysis = analyse(text)
    reading = analysis.reading or fold(normalize(text))
    return "".join(ch for ch in reading if ch not in _STRIP)


@lru_cache(maxsize=1)
def load_commands() -> CommandTable:
    """Load and validate ``commands.yaml`` (beside this module).

    Returns:
        The command table.

    Raises:
        ValueError: the file has unknown command ids or malformed entries.
    """
    raw = resources.files("bot.dialogue").joinpath("commands.yaml").read_text("utf-8")
    data = yaml.safe_load(raw)
    if not isinstance(data, dict) or not isinstance(data.get("commands"), dict):
        raise ValueError("commands.yaml: expected a mapping with 'commands'")
    variants: list[tuple[str, str]] = []
    for command, phrases in data["commands"].items():
        if command not in COMMAND_IDS:
            raise ValueError(f"commands.yaml: unknown command {command!r}")
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise ValueError(f"commands.yaml: {command} must list strings")
        variants.extend((_key(p), command) for p in phrases)
    endings = data.get("polite_endings", [])
    if not isinstance(endings, list):
        raise ValueError("commands.yaml: polite_endings must be a list")
    return CommandTable(
        variants=tuple(variants),
        polite_endings=tuple(fold(normalize(str(e))) for e in endings),
        max_chars=int(data.get("max_chars", 20)),
        fuzzy_cutoff=float(data.get("fuzzy_cutoff", 84)),
        fuzzy_max_chars=int(data.get("fuzzy_max_chars", 14)),
    )


def match_command(text: str) -> str | None:
    """Return the command a short message asks for, or None.

    Args:
        text: the message as typed.

    Returns:
        One of ``COMMAND_IDS`` or None.
    """
    table = load_commands()
    stripped = normalize(text).strip(_STRIP)
    if not stripped or len(stripped) > table.max_chars:
        return None
    key = _key(stripped)
    if not key:
        return None
    for variant, command in table.variants:
        if key == variant:
            return command
        if key.startswith(variant) and key[len(variant) :] in table.polite_endings:
            return command
    if len(stripped) <= table.fuzzy_max_chars:
        best: tuple[float, str] | None = None
        for variant, command in table.variants:
            score = fuzz.ratio(key, variant, score_cutoff=table.fuzzy_cutoff)
            if score and (best is None or score > best[0]):
                best = (score, command)
        if best is not None:
            return best[1]
    return None
