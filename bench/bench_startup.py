"""Benchmark: start-up of `python main.py console` to its prompt, and its resident memory.

    .venv/bin/python -m bench.bench_startup            # 5 cold + 5 warm starts
    .venv/bin/python -m bench.bench_startup --runs 1

Cold: a fresh data directory and SQLite file, so the start includes creating the schema.
Warm: the same database again (already migrated). The console prints its banner once it is
ready to read input; the clock stops there, RSS is read from /proc at that moment, then the
input is closed and the process exits. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, median

BANNER = "ChatCRM console"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of `pid` in MB, from /proc (0, 0 where unavailable)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount, _unit = line.split()
                values[key] = int(amount) / 1024
    except OSError:
        pass
    return values.get("VmRSS:", 0.0), values.get("VmHWM:", 0.0)


def start_once(data_dir: Path) -> tuple[float, float, float]:
    """Start the console once; (seconds to the banner, RSS MB, peak RSS MB)."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{data_dir / 'crm.db'}",
        "CRM_DATA_DIR": str(data_dir),
        "CRM_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "CRM_API_KEY"):
        env.pop(name, None)
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "main.py", "console"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as proc:
        seen = []
        for line in proc.stdout:
            if BANNER in line:
                elapsed = time.perf_counter() - started
                rss, peak = rss_mb(proc.pid)
                break
            seen.append(line)
        else:
            raise RuntimeError("console exited before its prompt:\n" + "".join(seen)[-2000:])
        proc.stdin.close()  # end of input: the console exits
        proc.stdout.read()
    return elapsed, rss, peak


def run(runs: int) -> dict[str, tuple[float, float, float]]:
    """Median (seconds, RSS, peak RSS) of `runs` cold and `runs` warm starts."""
    cold, warm = [], []
    with tempfile.TemporaryDirectory(prefix="crm-start-") as tmp:
        for i in range(runs):
            data = Path(tmp) / f"cold{i}"
            data.mkdir()
            cold.append(start_once(data))
            warm.append(start_once(data))
    return {
        "cold (creates the schema)": tuple(median([r[k] for r in cold]) for k in range(3)),
        "warm (database exists)": tuple(median([r[k] for r in warm]) for k in range(3)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each kind (median shown)")
    args = parser.parse_args(argv)
    results = run(args.runs)
    print(f"python main.py console -> prompt, median of {args.runs} start(s) each")
    print(f"  {'start':<28} {'to prompt':>10} {'RSS':>9} {'peak RSS':>9}")
    for label, (seconds, rss, peak) in results.items():
        print(f"  {label:<28} {seconds * 1000:7.0f} ms {rss:6.1f} MB {peak:6.1f} MB")


if __name__ == "__main__":
    main()
