"""Knowledge YAML files: read and validate bundles, canonical (byte-stable) export.

A knowledge file is a YAML mapping with one or more of the sections ``resources``,
``faq`` and ``templates`` (each a list). Other YAML files in a directory (taxonomy,
routing, holidays) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from knowledge.models import FaqEntry, Template
from knowledge.records import faq_to_dict, resource_to_dict, template_to_dict
from knowledge.types import Resource
from knowledge.validation import ValidationError, parse_faq, parse_resource, parse_template

SECTIONS = ("resources", "faq", "templates")


@dataclass(frozen=True, slots=True)
class Bundle:
    """Resources, FAQ entries and templates read from files (ids unique per section)."""

    resources: tuple[Resource, ...] = ()
    faq: tuple[FaqEntry, ...] = ()
    templates: tuple[Template, ...] = ()
    skipped: tuple[str, ...] = field(default=(), compare=False)  # non-knowledge files


def _walk(root: Traversable) -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []

    def visit(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            name = f"{prefix}{child.name}"
            if child.is_dir():
                visit(child, name + "/")
            elif child.name.endswith((".yaml", ".yml")):
                out.append((name, child))

    visit(root, "")
    return out


def read_files(files: Iterable[tuple[str, Traversable | Path]]) -> Bundle:
    """Read and validate knowledge files given as (display name, file) pairs.

    Raises:
        ValidationError: every problem of every file, fields prefixed with the file name
            and the entry id, e.g. ``resources.yaml resources[police_110].phone``.
    """
    errors: list[tuple[str, str]] = []
    parsed: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    skipped: list[str] = []
    parsers = {"resources": parse_resource, "faq": parse_faq, "templates": parse_template}
    for name, f in files:
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            errors.append((name, f"YAMLとして読めません: {exc}"))
            continue
        if not isinstance(data, Mapping) or not set(data) & set(SECTIONS):
            skipped.append(name)
            continue
        for key in set(data) - set(SECTIONS):
            errors.append((name, f"「{key}」は使えない見出しです（resources・faq・templates）。"))
        for section in SECTIONS:
            items = data.get(section)
            if items is None:
                continue
            if not isinstance(items, list):
                errors.append((f"{name} {section}", "一覧（- で始まる項目）で書いてください。"))
                continue
            for i, item in enumerate(items):
                label = item.get("id") if isinstance(item, Mapping) else None
                where = f"{name} {section}[{label or i + 1}]"
                if not isinstance(item, Mapping):
                    errors.append((where, "項目は「名前: 値」の組で書いてください。"))
                    continue
                try:
                    value = parsers[section](item)
                except ValidationError as exc:
                    errors.extend((f"{where}.{fld}", msg) for fld, msg in exc.errors)
                    continue
                if value.id in parsed[section]:
                    errors.append((where, f"ID「{value.id}」が重複しています。"))
                    continue
                parsed[section][value.id] = value
    if errors:
        raise ValidationError(errors)
    return Bundle(
        resources=tuple(parsed["resources"][k] for k in sorted(parsed["resources"])),
        faq=tuple(parsed["faq"][k] for k in sorted(parsed["faq"])),
        templates=tuple(parsed["templates"][k] for k in sorted(parsed["templates"])),
        skipped=tuple(skipped),
    )


def read_path(path: Path) -> Bundle:
    """Read one knowledge file, or every ``*.yaml`` below a directory.

    Raises:
        ValidationError: invalid content (see :func:`read_files`).
        FileNotFoundError: the path does not exist.
    """
    if not path.exists():
        raise FileNotFoundError(path)
    if path.is_dir():
        return read_files(_walk(path))
    return read_files([(path.name, path)])


@lru_cache(maxsize=1)
def default_bundle() -> Bundle:
    """The knowledge shipped in ``knowledge/data`` (resources, FAQ, every template file)."""
    return read_files(_walk(resources.files("knowledge").joinpath("data")))


class _Dumper(yaml.SafeDumper):
    """Canonical YAML: block style, multi-line strings as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data: Any) -> str:
    """Dump with fixed settings so equal data always gives equal bytes."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=4096,
        indent=2,
    )


def export_files(bundle: Bundle) -> dict[str, str]:
    """The bundle as file name → YAML text: resources.yaml, faq.yaml, templates.yaml."""
    header = (
        "# tsunagu knowledge export: edit, then `tsunagu kb diff DIR` and "
        "`tsunagu kb import DIR`\n"
    )
    return {
        "resources.yaml": header
        + dump_yaml({"resources": [resource_to_dict(r) for r in bundle.resources]}),
        "faq.yaml": header + dump_yaml({"faq": [faq_to_dict(f) for f in bundle.faq]}),
        "templates.yaml": header
        + dump_yaml({"templates": [template_to_dict(t) for t in bundle.templates]}),
    }
