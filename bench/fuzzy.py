"""Measure rapidfuzz thresholds: typo recall against false matches, per keyword length.

For each (shortest keyword length, partial_ratio cutoff) it reports
- typo recall: keywords of that length with one character replaced, inside a neutral
  sentence, that fuzzy matching finds again (same keyword);
- false matches: messages (dev set + own cases) with a fuzzy hit, beyond the keywords
  matched exactly, for a topic the message is not about.

Usage: python bench/fuzzy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Print the table."""
    from intents.fuzzy import _candidates, fuzzy_hits
    from intents.matcher import build_views, match_keywords
    from intents.tokenizer import analyse

    items = []
    for name in ("dev.yaml", "intent_cases.yaml"):
        items += yaml.safe_load((ROOT / "tests/data" / name).read_text("utf-8"))
    views = []
    for i in items:
        v = build_views(analyse(i["text"]))
        views.append((v, {h.rule for h in match_keywords(v)}, set(i["topic"])))
    print("min_chars cutoff  typo_recall        false_matches (messages)")
    for min_chars in (3, 4, 5, 6):
        cands = _candidates(min_chars)
        for cutoff in (70.0, 75.0, 80.0, 85.0, 90.0):
            found = total = 0
            for c in cands:
                mid = len(c.key) // 2
                typo = c.key[:mid] + ("ア" if c.key[mid] != "ア" else "イ") + c.key[mid + 1 :]
                v = build_views(analyse(f"最近{typo}のことで悩んでいます"))
                hits = fuzzy_hits(v, set(), min_chars=min_chars, cutoff=cutoff)
                total += 1
                found += any(h.rule == c.rule.rule for h in hits)
            false = 0
            for v, exact, topics in views:
                hits = fuzzy_hits(v, exact, min_chars=min_chars, cutoff=cutoff)
                false += any(h.label not in topics for h in hits)
            print(
                f"{min_chars:>9} {cutoff:>6.0f}  {found:>4}/{total:<4} {100 * found / total:5.1f}%"
                f"   {false:>4}/{len(views)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
