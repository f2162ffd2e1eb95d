"""Run every benchmark, print its figures, and record them in docs/benchmarks.md.

    .venv/bin/python -m bench                              # all of them, small default sizes
    .venv/bin/python -m bench --only telegram,slack        # some of them
    .venv/bin/python -m bench --scale-sizes 10000,100000,1000000 --fanout-reps 1000
    .venv/bin/python -m bench --postgres postgresql://postgres@127.0.0.1:5432/test

Each benchmark runs in a process of its own (so peak memory and start-up are its own) and can
also run alone: `python -m bench.bench_<name> --help`. The figures replace that benchmark's
section of docs/benchmarks.md (between `<!-- bench:<name> -->` markers), with the date and the
command; the hand-written analysis around them is kept. Nothing here asserts timing.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from bench import ROOT, machine_description, postgres_url_from_env

DOC = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    title: str
    postgres: bool  # takes --postgres URL

    @property
    def available(self) -> bool:
        return (ROOT / (self.module.replace(".", "/") + ".py")).exists()


BENCHMARKS = (
    Benchmark("telegram", "bench.bench_telegram_inbound", "Inbound Telegram: throughput and latency", True),
    Benchmark("slack", "bench.bench_slack_ack", "Slack acknowledgement time", True),
    Benchmark("scale", "bench.bench_scale", "Scale of the data", True),
    Benchmark("reports", "bench.bench_reports", "Reports, board and exports on a seeded database", True),
    Benchmark("fanout", "bench.bench_fanout", "Notification fan-out", False),
    Benchmark("dates", "bench.bench_dates", "Natural-date parsing", False),
    Benchmark("startup", "bench.bench_startup", "Start-up", False),
)


def size_arguments(args) -> dict[str, list[str]]:
    """Each benchmark's own size options, from this command's options."""
    return {
        "telegram": ["--users", str(args.telegram_users), "--rounds", str(args.telegram_rounds),
                     "--seconds", str(args.telegram_seconds), "--rate-users", str(args.telegram_rate_users)],
        "slack": ["--rate", str(args.slack_rate), "--seconds", str(args.slack_seconds)],
        "scale": ["--sizes", args.scale_sizes],
        "reports": ["--deals", str(args.reports_deals)],
        "fanout": ["--reps", str(args.fanout_reps)],
        "dates": ["--rounds", str(args.dates_rounds)],
        "startup": ["--runs", str(args.startup_runs)],
    }


def run_one(bench: Benchmark, extra: list[str]) -> tuple[int, str, float]:
    """Run one benchmark, echoing its output as it comes; (exit code, output, seconds)."""
    command = [sys.executable, "-m", bench.module, *extra]
    print(f"\n=== {bench.name}: {' '.join(shlex.quote(c) for c in command[1:])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = proc.wait()
    return code, "".join(lines), time.perf_counter() - started


def replace_section(text: str, name: str, body: str, title: str) -> str:
    """`text` with the block between `<!-- bench:name -->` markers replaced by `body`
    (appended under `## title` when the markers are not there yet)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    return text.rstrip() + f"\n\n## {title}\n\n{block}\n"


def record(results: list[tuple[Benchmark, int, str, float, list[str]]], postgres_url: str | None,
           *, whole_run: bool) -> None:
    """Write each benchmark's figures into docs/benchmarks.md, and the machine description
    after a run of all of them (a run of a few keeps the recorded one)."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if whole_run or "<!-- bench:machine -->" not in text:
        machine = "\n".join(machine_description(postgres_url))
        text = replace_section(text, "machine", machine, "The machine")
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    for bench, code, output, seconds, extra in results:
        command = " ".join([".venv/bin/python -m", bench.module, *extra])
        status = "" if code == 0 else f" — **failed (exit {code})**"
        body = f"Measured {stamp} in {seconds:.0f} s with `{command}`{status}:\n\n```text\n{output.rstrip()}\n```"
        text = replace_section(text, bench.name, body, bench.title)
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(b.name for b in BENCHMARKS))
    parser.add_argument("--postgres", metavar="URL",
                        help="also measure on PostgreSQL (default: CRM_TEST_POSTGRES_URL when set)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--telegram-users", type=int, default=20)
    sizes.add_argument("--telegram-rounds", type=int, default=2)
    sizes.add_argument("--telegram-seconds", type=float, default=10.0)
    sizes.add_argument("--telegram-rate-users", type=int, default=100)
    sizes.add_argument("--slack-rate", type=float, default=20.0)
    sizes.add_argument("--slack-seconds", type=float, default=10.0)
    sizes.add_argument("--scale-sizes", default="10000,100000")
    sizes.add_argument("--reports-deals", type=int, default=2000)
    sizes.add_argument("--fanout-reps", type=int, default=300)
    sizes.add_argument("--dates-rounds", type=int, default=200)
    sizes.add_argument("--startup-runs", type=int, default=3)
    args = parser.parse_args(argv)

    known = {b.name: b for b in BENCHMARKS}
    wanted = [n.strip() for n in args.only.split(",")] if args.only else list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(known)}")
    postgres_url = postgres_url_from_env(args.postgres)
    print("\n".join(machine_description(postgres_url)))
    results, summary = [], []
    for name in wanted:
        bench = known[name]
        if not bench.available:
            summary.append((name, "skipped: not written yet", 0.0))
            continue
        extra = size_arguments(args)[name] + (["--postgres", postgres_url] if bench.postgres and postgres_url else [])
        code, output, seconds = run_one(bench, extra)
        # The figures name the variable, never a URL that may hold a password.
        shown = [shlex.quote(a) if a != postgres_url else '"$CRM_TEST_POSTGRES_URL"' for a in extra]
        results.append((bench, code, output, seconds, shown))
        summary.append((name, "ok" if code == 0 else f"failed (exit {code})", seconds))
    print(f"\n{'benchmark':<10} {'result':<28} {'wall time':>9}")
    for name, status, seconds in summary:
        print(f"{name:<10} {status:<28} {seconds:>7.0f} s")
    if results and not args.no_write:
        record(results, postgres_url, whole_run=not args.only)
        print(f"\nFigures written to {DOC.relative_to(ROOT)}")
    return 0 if all(code == 0 for _, code, *_ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
