"""The triage vocabulary (topic, audience, age group, crisis and resource-kind ids) as shipped."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

_SECTIONS = ("topics", "audiences", "age_groups", "crisis_levels", "resource_kinds")


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """Ids mapped to their Japanese labels, one mapping per section."""

    topics: dict[str, str]
    audiences: dict[str, str]
    age_groups: dict[str, str]
    crisis_levels: dict[str, str]
    resource_kinds: dict[str, str]


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """Load ``knowledge/data/taxonomy.yaml`` (a verbatim copy of the shared taxonomy).

    Returns:
        The taxonomy.

    Raises:
        ValueError: the file lacks a section or a section is not a mapping of strings.
    """
    text = resources.files("knowledge").joinpath("data/taxonomy.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    out: dict[str, dict[str, str]] = {}
    for section in _SECTIONS:
        items = data.get(section) if isinstance(data, dict) else None
        if not isinstance(items, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in items.items()
        ):
            raise ValueError(f"taxonomy.yaml: section {section!r} missing or malformed")
        out[section] = dict(items)
    return Taxonomy(**out)
