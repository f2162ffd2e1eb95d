"""Benchmark: what one natural-date parse costs once dateparser is warm.

    .venv/bin/python bench/bench_dates.py              # 200 rounds of the typical phrases
    .venv/bin/python bench/bench_dates.py --rounds 1000

Parses the phrases reps type ("tomorrow 3pm", "fri 10:30", "in 2 weeks" ...) in a few time
zones after one warm-up round (dateparser loads its language data on first use), and prints
the cold first parse and the warm microseconds per parse (median and 95th percentile per
phrase, and overall). Not a test: it asserts nothing, it prints figures.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conversations.dates import parse_day, parse_when  # noqa: E402

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)
ZONES = [ZoneInfo(z) for z in ("Asia/Dubai", "America/New_York", "Europe/Berlin")]
WHEN = ["tomorrow", "tomorrow 3pm", "fri 10:30", "next week", "in 2 weeks", "eom", "15 Dec",
        "monday", "3pm", "in 3 days"]
DAYS = ["today", "yesterday", "15 Nov", "2026-11-20", "last friday"]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e6


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=200)
    rounds = args.parse_args().rounds

    cold = timed(lambda: parse_when("tomorrow 3pm", now=NOW, tz=ZONES[0]))
    print(f"first parse (cold, loads dateparser's data): {cold / 1000:.1f} ms")
    for tz in ZONES:  # warm-up round
        for text in WHEN:
            parse_when(text, now=NOW, tz=tz)

    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        for tz in ZONES:
            for text in WHEN:
                samples.setdefault(text, []).append(timed(lambda: parse_when(text, now=NOW, tz=tz)))
            for text in DAYS:
                samples.setdefault(f"day: {text}", []).append(
                    timed(lambda: parse_day(text, now=NOW, tz=tz, allow_future=False)))

    print(f"\nwarm, {rounds} rounds x {len(ZONES)} zones (microseconds per parse)")
    print(f"{'phrase':<22}{'median':>10}{'p95':>10}")
    for text, values in samples.items():
        values.sort()
        print(f"{text:<22}{statistics.median(values):>10.0f}{values[int(len(values) * 0.95)]:>10.0f}")
    everything = sorted(v for values in samples.values() for v in values)
    print(f"{'all phrases':<22}{statistics.median(everything):>10.0f}"
          f"{everything[int(len(everything) * 0.95)]:>10.0f}   (mean {statistics.fmean(everything):.0f})")


if __name__ == "__main__":
    main()
