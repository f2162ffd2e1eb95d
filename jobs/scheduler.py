"""The job schedule: an APScheduler 3 `AsyncIOScheduler` running in the main event loop.

The truth lives in CRM tables, not in a job store: each job is a scan (`jobs/scans.py`) run
every few minutes. A `JobRun` row remembers the last completed run, so a job that was due
while the process was down runs at start-up; `coalesce` folds a backlog of missed runs into
one, and a generous `misfire_grace_time` lets a run delayed by a busy loop still happen.
"""

from __future__ import annotations

import asyncio

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from handlers.context import CRM
from jobs import scans
from storage.repos.jobs import JobRunRepository

log = logging.getLogger(__name__)

JobFn = Callable[[CRM, datetime], Awaitable[int]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFn
    cron: dict  # CronTrigger fields, in UTC
    period: timedelta  # a run older than this at start-up means one was missed
    help: str

    def trigger(self) -> CronTrigger:
        return CronTrigger(timezone=timezone.utc, **self.cron)


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "reminders",
            scans.followup_reminders,
            {"minute": "*"},
            timedelta(minutes=1),
            "follow-up reminders at their due time",
        ),
        JobSpec(
            "morning",
            scans.morning_plans,
            {"minute": "*/5"},
            timedelta(minutes=5),
            "each rep's plan at their local start of work",
        ),
        JobSpec(
            "summary",
            scans.daily_summaries,
            {"minute": "*/5"},
            timedelta(minutes=5),
            "daily pipeline summary per team channel at its local time",
        ),
        JobSpec(
            "neglected",
            scans.neglected_leads,
            {"minute": "15"},
            timedelta(hours=1),
            "nudges for deals going cold; daily digest to managers",
        ),
        JobSpec(
            "installments",
            scans.installment_reminders,
            {"minute": "20"},
            timedelta(hours=1),
            "installment reminders and overdue escalation",
        ),
        JobSpec(
            "housekeeping",
            scans.housekeeping,
            {"hour": "3", "minute": "40"},
            timedelta(days=1),
            "prune delivered notifications (30 days) and seen platform events (7 days)",
        ),
    )
}


async def run_job(crm: CRM, name: str) -> int:
    """Run one job now and record the run; returns how many notifications it queued."""
    spec = JOBS[name]
    now = crm.now()
    added = await spec.fn(crm, now)
    async with crm.uow(action="job_run") as uow:
        await JobRunRepository(uow.session).record(name, now)
        await uow.commit()
    log.info("job %s queued %d notification(s)", name, added)
    return added


async def last_runs(crm: CRM) -> dict[str, datetime]:
    async with crm.reader() as uow:
        return await JobRunRepository(uow.session).last_runs()


def missed(spec: JobSpec, last_run: datetime | None, now: datetime) -> bool:
    """Whether a run was due while nothing ran (never run counts as missed)."""
    return last_run is None or last_run + spec.period <= now


async def build_scheduler(crm: CRM) -> AsyncIOScheduler:
    """A scheduler with every job added (not started). Jobs missed while down run at once."""
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    runs = await last_runs(crm)
    now = crm.now()
    for spec in JOBS.values():
        kwargs = {"next_run_time": now} if missed(spec, runs.get(spec.name), now) else {}
        scheduler.add_job(
            _safe_run,
            spec.trigger(),
            args=(crm, spec.name),
            id=spec.name,
            name=spec.help,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=int(spec.period.total_seconds()),
            **kwargs,
        )
    return scheduler


# Jobs running right now, so a shutdown can let them finish instead of cancelling them
# half-way through a transaction (a cancelled SQLite connection can keep the process alive).
_RUNNING: set[asyncio.Task] = set()


async def _safe_run(crm: CRM, name: str) -> None:
    task = asyncio.current_task()
    _RUNNING.add(task)
    try:
        await run_job(crm, name)
    except Exception:  # the next run retries; the scheduler must keep running
        log.exception("job %s failed", name)
    finally:
        _RUNNING.discard(task)


async def stop_scheduler(scheduler: AsyncIOScheduler, timeout: float = 30.0) -> None:
    """Stop starting jobs, let the running ones finish (up to `timeout`), then shut down."""
    scheduler.pause()
    if _RUNNING:
        await asyncio.wait(set(_RUNNING), timeout=timeout)
    scheduler.shutdown(wait=False)


def next_run_times(now: datetime) -> dict[str, datetime | None]:
    """When each job would next fire after `now` by its schedule (a fire time equal to `now`
    is the run happening now, so the next one is asked for from a second later)."""
    after = now + timedelta(seconds=1)
    return {name: spec.trigger().get_next_fire_time(None, after) for name, spec in JOBS.items()}
