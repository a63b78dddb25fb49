"""The flow's data (``flow.yaml``): which topics to offer, what to ask, which kinds are local."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from intents.crisis import CATEGORIES as CRISIS_CATEGORIES

SLOT_IDS = ("audience", "age_group", "area")


@dataclass(frozen=True, slots=True)
class SlotQuestion:
    """How one missing piece is asked: a template and (label template, value) buttons."""

    template: str
    choices: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FlowData:
    """Validated contents of ``flow.yaml``."""

    start_topics: tuple[str, ...]
    menu_topics: tuple[str, ...]
    slot_order: tuple[str, ...]
    slots: dict[str, SlotQuestion]
    local_kinds: frozenset[str]
    crisis_kinds: dict[str, tuple[str, ...]]
    phone_kinds: tuple[str, ...]
    other_topics: tuple[str, ...] = ()

    @property
    def all_topics(self) -> tuple[str, ...]:
        """Every topic a button may carry."""
        return tuple(dict.fromkeys((*self.start_topics, *self.menu_topics, *self.other_topics)))


def _strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"flow.yaml: {key} must be a list of strings")
    return tuple(value)


@lru_cache(maxsize=1)
def load_flow() -> FlowData:
    """Load and validate ``flow.yaml`` beside this module.

    Returns:
        The flow data.

    Raises:
        ValueError: a key is missing or malformed.
    """
    raw = resources.files("bot.dialogue").joinpath("flow.yaml").read_text("utf-8")
    data = yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise ValueError("flow.yaml: expected a mapping")
    order = _strings(data, "slot_order")
    if set(order) - set(SLOT_IDS):
        raise ValueError(f"flow.yaml: unknown slot in slot_order {order}")
    slots: dict[str, SlotQuestion] = {}
    for slot in order:
        spec = data.get("slots", {}).get(slot)
        if not isinstance(spec, dict) or not isinstance(spec.get("template"), str):
            raise ValueError(f"flow.yaml: slot {slot} needs a template")
        choices = spec.get("choices", [])
        if not all(isinstance(c, list) and len(c) == 2 for c in choices):
            raise ValueError(f"flow.yaml: slot {slot} choices must be [label, value] pairs")
        slots[slot] = SlotQuestion(spec["template"], tuple((str(a), str(b)) for a, b in choices))
    crisis = data.get("crisis_kinds")
    if not isinstance(crisis, dict) or not {"default", "urgent"} <= set(crisis):
        raise ValueError("flow.yaml: crisis_kinds needs default and urgent")
    unknown = set(crisis) - {"default", "urgent", *CRISIS_CATEGORIES}
    if unknown:
        raise ValueError(f"flow.yaml: crisis_kinds has unknown categories {sorted(unknown)}")
    return FlowData(
        start_topics=_strings(data, "start_topics"),
        menu_topics=_strings(data, "menu_topics"),
        slot_order=order,
        slots=slots,
        local_kinds=frozenset(_strings(data, "local_kinds")),
        crisis_kinds={str(k): tuple(str(x) for x in v) for k, v in crisis.items()},
        phone_kinds=_strings(data, "phone_kinds"),
        other_topics=_strings(data, "other_topics"),
    )
