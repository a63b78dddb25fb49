"""Table-driven triage cases: our own labelled set and the dev set, scored with thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.triage import load_items, score

DATA = Path(__file__).resolve().parent.parent / "data"

pytestmark = pytest.mark.usefixtures("sudachi")

# Thresholds: the targets on dev.yaml, and the same bar for our own cases
# (written as real people write: typos, kana only, half-width, long context, openers).
TARGETS = {
    "topic": 0.90,
    "audience": 0.85,
    "routing": 0.92,
}
MAX_ROUTING_ERRORS = 0.02
MIN_CRISIS_RECALL = 1.0
MAX_FALSE_ALARMS = 0.05  # crisis detection is intents.crisis; this guards the totals


@pytest.mark.parametrize("name", ["intent_cases.yaml", "dev.yaml"])
def test_labelled_set_meets_targets(name: str) -> None:
    items = load_items(DATA / name)
    if name == "intent_cases.yaml":
        assert len(items) >= 60
        assert len({i["id"] for i in items}) == len(items)
    rep = score(items)
    misses = "\n".join(f"{m['id']} {m['failed']} {m['text'][:40]}" for m in rep.misses)
    for metric, floor in TARGETS.items():
        rate = getattr(rep, metric)
        assert rate.hits / rate.total >= floor, f"{metric} below {floor}\n{misses}"
    assert rep.routing_errors.hits / rep.routing_errors.total <= MAX_ROUTING_ERRORS, misses
    assert rep.crisis_recall.hits / rep.crisis_recall.total >= MIN_CRISIS_RECALL, misses
    assert rep.false_alarms.hits / rep.false_alarms.total <= MAX_FALSE_ALARMS, misses


def test_dev_copy_is_verbatim() -> None:
    shared = Path("/work/shared/eval/dev.yaml")
    if not shared.exists():  # the shared folder exists only on the build machine
        pytest.skip("no shared folder here; the copy is the reference")
    assert (DATA / "dev.yaml").read_bytes() == shared.read_bytes()
