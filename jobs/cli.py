"""`python main.py jobs` (list the jobs with last and next run) and `jobs run <name>`."""

from __future__ import annotations

import argparse

from handlers.context import CRM
from jobs.scheduler import JOBS, last_runs, missed, next_run_times, run_job


def add_subcommands(subparsers) -> None:
    """Add the `jobs` command (with `run <name>`) to main.py's argparse subparsers."""
    jobs = subparsers.add_parser("jobs", help="list scheduled jobs, or run one now")
    actions = jobs.add_subparsers(dest="jobs_action")
    run_one = actions.add_parser("run", help="run one job now")
    run_one.add_argument("name", choices=sorted(JOBS), help="the job to run")


async def run(crm: CRM, args: argparse.Namespace) -> int:
    """Carry out `jobs` / `jobs run <name>`; returns the process exit code."""
    if getattr(args, "jobs_action", None) == "run":
        added = await run_job(crm, args.name)
        print(f"{args.name}: queued {added} notification(s)")
        return 0
    print(await listing(crm))
    return 0


async def listing(crm: CRM) -> str:
    now = crm.now()
    runs = await last_runs(crm)
    upcoming = next_run_times(now)
    lines = [f"{'job':<14}{'last run (UTC)':<20}{'next run (UTC)':<20}what"]
    for name, spec in JOBS.items():
        last = runs.get(name)
        nxt = now if missed(spec, last, now) else upcoming[name]
        lines.append(f"{name:<14}{_stamp(last):<20}{_stamp(nxt):<20}{spec.help}")
    return "\n".join(lines)


def _stamp(at) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "never"
