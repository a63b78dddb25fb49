"""Masking precision/recall per kind on tests/data/pii_corpus.yaml, and masking speed.

Run: ``.venv/bin/python bench/pii_eval.py [--json]``. The tests import ``parse_snippet``
and ``score`` from here so that the README table and the test thresholds agree.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from intents.pii import KINDS, PiiSpan, mask  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "pii_corpus.yaml"
_MARK = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]")


@dataclass(frozen=True, slots=True)
class Snippet:
    """One corpus line: plain text and the spans a masker must replace."""

    text: str
    spans: tuple[PiiSpan, ...]


@dataclass(slots=True)
class KindScore:
    """Counts for one kind of personal data."""

    gold: int = 0
    found: int = 0  # gold spans fully covered by predicted spans of the same kind
    predicted: int = 0
    correct: int = 0  # predicted spans that overlap a gold span of the same kind
    missed: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


def parse_snippet(marked: str) -> Snippet:
    """Turn ``電話は[[PHONE:090-…]]です`` into text plus spans.

    Args:
        marked: a corpus line with ``[[KIND:text]]`` markup.

    Returns:
        The plain text and its labelled spans.

    Raises:
        ValueError: on an unknown kind.
    """
    out: list[str] = []
    spans: list[PiiSpan] = []
    pos = 0
    length = 0
    for m in _MARK.finditer(marked):
        kind, value = m.group(1), m.group(2)
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} in {marked!r}")
        before = marked[pos : m.start()]
        out.append(before)
        length += len(before)
        spans.append(PiiSpan(kind, length, length + len(value)))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(marked[pos:])
    return Snippet("".join(out), tuple(spans))


def load_corpus(path: Path = CORPUS) -> list[Snippet]:
    """Read and parse the labelled corpus."""
    data = yaml.safe_load(path.read_text("utf-8"))
    return [parse_snippet(s) for s in data["snippets"]]


def _covered(gold: PiiSpan, predicted: tuple[PiiSpan, ...], text: str) -> bool:
    """Every non-space character of the gold span lies in a predicted span of its kind."""
    for i in range(gold.start, gold.end):
        if text[i].isspace():
            continue
        if not any(p.kind == gold.kind and p.start <= i < p.end for p in predicted):
            return False
    return True


def score(snippets: list[Snippet]) -> dict[str, KindScore]:
    """Precision and recall per kind.

    A gold span counts as found when predicted spans of the same kind cover all of it (a
    partly masked phone number still leaks); a predicted span counts as correct when it
    overlaps a gold span of the same kind.

    Args:
        snippets: the parsed corpus.

    Returns:
        One KindScore per kind in :data:`intents.pii.KINDS`.
    """
    scores = {kind: KindScore() for kind in KINDS}
    for snip in snippets:
        predicted = mask(snip.text).spans
        for gold in snip.spans:
            s = scores[gold.kind]
            s.gold += 1
            if _covered(gold, predicted, snip.text):
                s.found += 1
            else:
                s.missed.append(snip.text)
        for p in predicted:
            s = scores.setdefault(p.kind, KindScore())
            s.predicted += 1
            if any(g.kind == p.kind and g.start < p.end and p.start < g.end for g in snip.spans):
                s.correct += 1
            else:
                s.false.append(f"{snip.text[p.start : p.end]} in {snip.text}")
    return scores


def table(scores: dict[str, KindScore], n_snippets: int) -> str:
    """Markdown table of the scores."""
    lines = [
        f"Masking on {n_snippets} labelled snippets (tests/data/pii_corpus.yaml)",
        "",
        "| kind | gold spans | recall | predicted | precision |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, s in scores.items():
        lines.append(f"| {kind} | {s.gold} | {s.recall:.1%} | {s.predicted} | {s.precision:.1%} |")
    gold = sum(s.gold for s in scores.values())
    found = sum(s.found for s in scores.values())
    pred = sum(s.predicted for s in scores.values())
    correct = sum(s.correct for s in scores.values())
    lines.append(f"| all | {gold} | {found / gold:.1%} | {pred} | {correct / max(pred, 1):.1%} |")
    return "\n".join(lines)


def _speed(snippets: list[Snippet]) -> str:
    texts = [s.text for s in snippets]
    mask(texts[0])  # load the dictionary and vocabulary first
    times: list[float] = []
    for _ in range(5):
        for t in texts:
            t0 = time.perf_counter()
            mask(t)
            times.append(time.perf_counter() - t0)
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    big = "連絡先は090-1234-5678、田中さんの件です。" * 4000
    t0 = time.perf_counter()
    mask(big)
    big_s = time.perf_counter() - t0
    return (
        f"mask(): median {statistics.median(times) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms "
        f"per snippet; {len(big) // 1000} k chars in {big_s:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the table (and misses), or JSON with --json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args(argv)
    snippets = load_corpus()
    scores = score(snippets)
    if args.json:
        print(
            json.dumps(
                {
                    k: {
                        "gold": s.gold,
                        "recall": s.recall,
                        "predicted": s.predicted,
                        "precision": s.precision,
                    }
                    for k, s in scores.items()
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(table(scores, len(snippets)))
    for kind, s in scores.items():
        for text in s.missed:
            print(f"MISSED {kind}: {text}")
        for text in s.false:
            print(f"FALSE  {kind}: {text}")
    if not args.no_speed:
        print()
        print(_speed(snippets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
