"""Benchmark: load time, per-message understand()+route_kinds() latency, peak RSS.

Usage: python bench/triage.py [FILE.yaml] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", type=Path, default=ROOT / "tests/data/dev.yaml")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    texts = [item["text"] for item in yaml.safe_load(args.file.read_text("utf-8"))]

    t0 = time.perf_counter()
    from intents import tokenizer

    tokenizer.load()
    t1 = time.perf_counter()
    from intents import crisis, rules
    from intents.fuzzy import _candidates
    from intents.matcher import compiled_keywords
    from intents.understand import understand
    from knowledge.routing import route_kinds, routing_table

    rules.load_all()
    compiled_keywords()
    _candidates(5)
    crisis.assess(tokenizer.analyse("x"))
    routing_table()
    t2 = time.perf_counter()

    for text in texts:  # warm-up
        route_kinds(understand(text))
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(args.repeat):
        for text in texts:
            s, c = time.perf_counter(), time.process_time()
            route_kinds(understand(text))
            cpu.append(time.process_time() - c)
            times.append(time.perf_counter() - s)
    times.sort()
    cpu.sort()
    ms = [t * 1000 for t in times]
    cpu_ms = [t * 1000 for t in cpu]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    cpu_p99 = cpu_ms[min(len(cpu_ms) - 1, int(len(cpu_ms) * 0.99))]
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"messages:             {len(texts)} × {args.repeat} = {len(ms)}")
    print(f"dictionary load:      {1000 * (t1 - t0):.0f} ms")
    print(f"rules + routing load: {1000 * (t2 - t1):.0f} ms")
    print(
        f"understand+route:     median {statistics.median(ms):.3f} ms, "
        f"mean {statistics.fmean(ms):.3f} ms, p99 {p99:.3f} ms, max {ms[-1]:.3f} ms"
    )
    # CPU time of the process (time.process_time): what the code costs on a shared machine.
    cpu_median = statistics.median(cpu_ms)
    print(f"  (process CPU time):  median {cpu_median:.3f} ms, p99 {cpu_p99:.3f} ms")
    print(f"load average:         {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    print(f"throughput:           {len(ms) / sum(times):.0f} messages/s (one core)")
    print(f"peak RSS:             {rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
