"""Canonical plain-dict forms of knowledge values (for YAML, JSON revisions and diffs)."""

from __future__ import annotations

from typing import Any

from knowledge.models import FaqEntry, Template
from knowledge.types import Resource
from knowledge.validation import DAY_NAMES, RESOURCE_FIELDS

_RESOURCE_DEFAULTS: dict[str, Any] = {
    "topics": (),
    "audiences": (),
    "age_groups": (),
    "coverage": "national",
    "always_open": False,
    "how": (),
    "hours": (),
    "sample": False,
    "active": True,
}


def resource_to_dict(r: Resource, *, full: bool = False) -> dict[str, Any]:
    """A resource as a dict in field order; defaults and empty values left out unless ``full``.

    Hours days are written as Japanese day letters (月…日, 祝 = public holiday).
    """
    out: dict[str, Any] = {}
    for name in RESOURCE_FIELDS:
        value = getattr(r, name)
        if name == "hours":
            value = [
                {
                    "days": "".join(DAY_NAMES[d] for d in h.days),
                    "opens": h.opens,
                    "closes": h.closes,
                }
                for h in value
            ]
        elif isinstance(value, tuple):
            value = list(value)
        default = _RESOURCE_DEFAULTS.get(name)
        if isinstance(default, tuple):
            default = list(default)
        if not full and (value is None or value == [] or value == default):
            continue
        out[name] = value
    return out


def template_to_dict(t: Template) -> dict[str, Any]:
    """A template as ``{id, description, text}`` (description left out when empty)."""
    out: dict[str, Any] = {"id": t.id}
    if t.description:
        out["description"] = t.description
    out["text"] = t.text
    return out


def faq_to_dict(f: FaqEntry) -> dict[str, Any]:
    """A FAQ entry as a dict; empty topics and ``active: true`` left out."""
    out: dict[str, Any] = {"id": f.id, "questions": list(f.questions), "answer": f.answer}
    if f.topics:
        out["topics"] = list(f.topics)
    if not f.active:
        out["active"] = False
    return out
