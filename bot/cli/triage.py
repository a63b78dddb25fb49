"""``tsunagu triage`` (one message or JSON lines) and ``tsunagu eval`` (score a labelled set)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

# Longest line read in --jsonl mode; longer lines are answered with an error.
MAX_LINE_BYTES = 1_000_000
_TOP = 3


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``triage`` and ``eval`` commands."""
    p = sub.add_parser("triage", help="triage one message, or JSON lines on stdin (--jsonl)")
    p.add_argument("text", nargs="?", help="the message (omit with --jsonl)")
    p.add_argument("--jsonl", action="store_true", help='read {"text": ...} lines on stdin')
    p.set_defaults(func=run_triage)
    e = sub.add_parser("eval", help="score triage on a labelled YAML set (shared/eval format)")
    e.add_argument("file", type=Path, help="labelled set, e.g. tests/data/dev.yaml")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=run_eval)


def triage(text: str) -> dict[str, Any]:
    """Triage one message into the CLI's JSON record.

    Args:
        text: the message.

    Returns:
        ``{"topic", "topics", "audience", "age_group", "crisis", "resource_kinds",
        "evidence"}`` plus ``area``, ``confident`` and ``in_scope``.
    """
    from intents import understand
    from knowledge.routing import route_kinds

    u = understand(text)
    kinds = route_kinds(u)
    area = None
    if u.area:
        area = {
            "prefecture": u.area.prefecture,
            "prefecture_code": u.area.prefecture_code,
            "municipality": u.area.municipality,
            "municipality_code": u.area.municipality_code,
        }
    return {
        "topic": u.topic,
        "topics": list(u.topic_ids[:5]),
        "audience": u.audience,
        "age_group": u.age_group,
        "crisis": u.crisis,
        "resource_kinds": [k.kind for k in kinds[:5]],
        "evidence": [
            {"kind": e.kind, "label": e.label, "rule": e.rule, "matched": e.matched}
            | ({"fuzzy": True} if e.fuzzy else {})
            for e in u.evidence
        ],
        "reasons": {k.kind: k.reason for k in kinds},
        "negated_topics": list(u.negated_topics),
        "past_topics": list(u.past_topics),
        "area": area,
        "confident": u.confident,
        "in_scope": u.in_scope,
    }


def _line_record(raw: bytes) -> dict[str, Any]:
    """One output record for one input line; never raises for bad input."""
    if len(raw) > MAX_LINE_BYTES:
        return {"error": f"line too long (over {MAX_LINE_BYTES} bytes)"}
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"error": "line is not valid UTF-8"}
    try:
        data = json.loads(line)
    except ValueError:
        return {"error": "line is not valid JSON"}
    if not isinstance(data, dict) or "text" not in data:
        return {"error": 'expected a JSON object with a "text" field'}
    text = data["text"]
    if not isinstance(text, str):
        return {"error": '"text" must be a string'}
    record = triage(text)
    if "id" in data and isinstance(data["id"], str | int):
        record = {"id": data["id"], **record}
    return record


def _stdin_bytes() -> io.BufferedReader | io.BytesIO:
    buf = getattr(sys.stdin, "buffer", None)
    if buf is not None:
        return buf
    return io.BytesIO(sys.stdin.read().encode("utf-8", "surrogatepass"))


def run_jsonl(source: Iterable[bytes], out: TextIO) -> int:
    """Answer every non-blank input line with one JSON line.

    Args:
        source: raw input lines.
        out: where JSON lines are written.

    Returns:
        0, or 1 when any line was answered with an error.
    """
    failed = False
    for raw in source:
        stripped = raw.strip()
        if not stripped:
            continue
        record = _line_record(stripped)
        failed = failed or "error" in record
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return 1 if failed else 0


def _print_readable(record: dict[str, Any], out: TextIO) -> None:
    out.write(f"topic:          {record['topic']}  (ranked: {', '.join(record['topics'])})\n")
    out.write(f"audience:       {record['audience']}\n")
    out.write(f"age_group:      {record['age_group']}\n")
    out.write(f"crisis:         {record['crisis']}\n")
    area = record["area"]
    if area:
        place = area["prefecture"] + (f" {area['municipality']}" if area["municipality"] else "")
        out.write(f"area:           {place}\n")
    if record["negated_topics"]:
        out.write(f"negated:        {', '.join(record['negated_topics'])}\n")
    if record["past_topics"]:
        out.write(f"past:           {', '.join(record['past_topics'])}\n")
    out.write(f"confident:      {'yes' if record['confident'] else 'no (ask to confirm)'}\n")
    out.write(f"in scope:       {'yes' if record['in_scope'] else 'no'}\n")
    out.write("resource_kinds:\n")
    for n, kind in enumerate(record["resource_kinds"], 1):
        out.write(f"  {n}. {kind} — {record['reasons'][kind]}\n")
    out.write("evidence:\n")
    for e in record["evidence"]:
        fuzzy = " (fuzzy)" if e.get("fuzzy") else ""
        out.write(f"  {e['kind']:<9} {e['label']:<12} 「{e['matched']}」 {e['rule']}{fuzzy}\n")


def run_triage(args: argparse.Namespace) -> int:
    """Handle ``tsunagu triage``."""
    if args.jsonl:
        return run_jsonl(_stdin_bytes(), sys.stdout)
    if args.text is None:
        print('error: give a message, e.g. tsunagu triage "相談したいです", or use --jsonl')
        return 2
    _print_readable(triage(args.text), sys.stdout)
    return 0


# ── eval ────────────────────────────────────────────────────────────────────


@dataclass
class _Rate:
    hits: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.hits += ok
        self.total += 1

    def as_dict(self) -> dict[str, Any]:
        value = self.hits / self.total if self.total else None
        return {"value": value, "hits": self.hits, "n": self.total}


@dataclass
class _Report:
    topic: _Rate = field(default_factory=_Rate)
    audience: _Rate = field(default_factory=_Rate)
    age_group: _Rate = field(default_factory=_Rate)
    routing: _Rate = field(default_factory=_Rate)
    routing_errors: _Rate = field(default_factory=_Rate)
    crisis_recall: _Rate = field(default_factory=_Rate)
    crisis_exact: _Rate = field(default_factory=_Rate)
    urgent_recall: _Rate = field(default_factory=_Rate)
    false_alarms: _Rate = field(default_factory=_Rate)
    per_topic: dict[str, _Rate] = field(default_factory=lambda: defaultdict(_Rate))
    per_audience: dict[str, _Rate] = field(default_factory=lambda: defaultdict(_Rate))
    misses: list[dict[str, Any]] = field(default_factory=list)


_FIELDS = ("id", "text", "topic", "audience", "age_group", "crisis", "refer_any", "refer_never")


def load_items(path: Path) -> list[dict[str, Any]]:
    """Load and check a labelled set.

    Args:
        path: a YAML list in the format of ``shared/eval/dev.yaml``.

    Returns:
        The items.

    Raises:
        ValueError: the file is not a list of items with the expected fields.
    """
    data = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a YAML list of items")
    for n, item in enumerate(data):
        if not isinstance(item, dict) or any(f not in item for f in _FIELDS):
            raise ValueError(f"{path}: item {n} lacks one of {', '.join(_FIELDS)}")
    return data


def score(items: list[dict[str, Any]]) -> _Report:
    """Score triage on labelled items with the rules of ``shared/eval/README.md``.

    Args:
        items: labelled items.

    Returns:
        The report with every metric, breakdowns and misses.
    """
    rep = _Report()
    for item in items:
        got = triage(item["text"])
        top3 = got["resource_kinds"][:_TOP]
        topic_ok = got["topic"] in item["topic"]
        rep.topic.add(topic_ok)
        rep.per_topic[item["topic"][0]].add(topic_ok)
        audience_ok = got["audience"] == item["audience"]
        rep.audience.add(audience_ok)
        rep.per_audience[item["audience"]].add(audience_ok)
        age_ok = got["age_group"] == item["age_group"]
        rep.age_group.add(age_ok)
        if item["refer_any"]:
            routing_ok = any(k in item["refer_any"] for k in top3)
        else:
            routing_ok = got["topic"] == "other"
        rep.routing.add(routing_ok)
        wrong = [k for k in top3 if k in item["refer_never"]]
        rep.routing_errors.add(bool(wrong))
        crisis_ok = True
        if item["crisis"] != "none":
            crisis_ok = got["crisis"] != "none"
            rep.crisis_recall.add(crisis_ok)
            rep.crisis_exact.add(got["crisis"] == item["crisis"])
            if item["crisis"] == "urgent":
                rep.urgent_recall.add(got["crisis"] == "urgent")
        else:
            alarm = got["crisis"] != "none"
            rep.false_alarms.add(alarm)
            crisis_ok = not alarm
        failed = [
            name
            for name, ok in (
                ("topic", topic_ok),
                ("audience", audience_ok),
                ("age_group", age_ok),
                ("routing", routing_ok),
                ("routing_error", not wrong),
                ("crisis", crisis_ok),
            )
            if not ok
        ]
        if failed:
            rep.misses.append(
                {
                    "id": item["id"],
                    "failed": failed,
                    "text": item["text"],
                    "expected": {
                        "topic": item["topic"],
                        "audience": item["audience"],
                        "age_group": item["age_group"],
                        "crisis": item["crisis"],
                        "refer_any": item["refer_any"],
                        "refer_never": item["refer_never"],
                    },
                    "got": {
                        "topic": got["topic"],
                        "topics": got["topics"],
                        "audience": got["audience"],
                        "age_group": got["age_group"],
                        "crisis": got["crisis"],
                        "resource_kinds": top3,
                    },
                }
            )
    return rep


_METRICS = (
    ("topic accuracy", "topic"),
    ("audience accuracy", "audience"),
    ("age-group accuracy", "age_group"),
    ("routing hit rate (top 3)", "routing"),
    ("routing error rate (lower is better)", "routing_errors"),
    ("crisis recall", "crisis_recall"),
    ("crisis exact level", "crisis_exact"),
    ("urgent recall", "urgent_recall"),
    ("false alarm rate (lower is better)", "false_alarms"),
)


def report_dict(rep: _Report) -> dict[str, Any]:
    """The report as plain data (what ``--json`` prints)."""
    return {
        "metrics": {key: getattr(rep, key).as_dict() for _, key in _METRICS},
        "per_topic": {k: v.as_dict() for k, v in sorted(rep.per_topic.items())},
        "per_audience": {k: v.as_dict() for k, v in sorted(rep.per_audience.items())},
        "misses": rep.misses,
    }


def _pct(rate: _Rate) -> str:
    if not rate.total:
        return "   n/a"
    return f"{100 * rate.hits / rate.total:5.1f}% ({rate.hits}/{rate.total})"


def print_report(rep: _Report, out: TextIO) -> None:
    """Print the report for people."""
    for label, key in _METRICS:
        out.write(f"{label:<38} {_pct(getattr(rep, key))}\n")
    out.write("\ntopic accuracy by expected topic:\n")
    for k, v in sorted(rep.per_topic.items()):
        out.write(f"  {k:<12} {_pct(v)}\n")
    out.write("audience accuracy by expected audience:\n")
    for k, v in sorted(rep.per_audience.items()):
        out.write(f"  {k:<12} {_pct(v)}\n")
    out.write(f"\nmisses ({len(rep.misses)}):\n")
    for m in rep.misses:
        exp, got = m["expected"], m["got"]
        out.write(f"- {m['id']} [{', '.join(m['failed'])}] {m['text'][:70]}\n")
        out.write(
            f"    expected topic={'/'.join(exp['topic'])} audience={exp['audience']} "
            f"age={exp['age_group']} crisis={exp['crisis']} refer_any={exp['refer_any']} "
            f"refer_never={exp['refer_never']}\n"
        )
        out.write(
            f"    got      topics={got['topics']} audience={got['audience']} "
            f"age={got['age_group']} crisis={got['crisis']} kinds={got['resource_kinds']}\n"
        )


def run_eval(args: argparse.Namespace) -> int:
    """Handle ``tsunagu eval``."""
    try:
        items = load_items(args.file)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"error: {exc}")
        return 2
    rep = score(items)
    if args.json:
        print(json.dumps(report_dict(rep), ensure_ascii=False, indent=2))
    else:
        print_report(rep, sys.stdout)
    return 0
