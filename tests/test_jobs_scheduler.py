"""The schedule: jobs missed while down run at start-up; `jobs` lists them, `jobs run` runs one."""

from __future__ import annotations

import argparse
from datetime import timedelta

from jobs import cli
from jobs.payload import reply_from_json
from jobs.scheduler import JOBS, build_scheduler, last_runs, run_job
from tests.jobs_support import add_task, outbox_rows


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="main.py")
    cli.add_subcommands(root.add_subparsers(dest="command"))
    return root


async def test_jobs_never_run_are_due_at_start_and_recent_ones_wait_for_their_schedule(crm, clock):
    scheduler = await build_scheduler(crm)
    scheduler.start(paused=True)
    try:
        assert {job.id: job.next_run_time for job in scheduler.get_jobs()} == {
            name: clock.now() for name in JOBS
        }
        job = scheduler.get_job("reminders")
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 60)
    finally:
        scheduler.shutdown(wait=False)

    await run_job(crm, "neglected")
    clock.advance(minutes=30)  # within the hourly period of "neglected", past the others'
    scheduler = await build_scheduler(crm)
    scheduler.start(paused=True)
    try:
        due_now = {job.id for job in scheduler.get_jobs() if job.next_run_time == clock.now()}
        assert due_now == set(JOBS) - {"neglected"}
    finally:
        scheduler.shutdown(wait=False)


async def test_run_job_queues_and_records_the_run(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_task(crm, rana, clock.now() - timedelta(minutes=1))
    assert await run_job(crm, "reminders") == 1
    assert await last_runs(crm) == {"reminders": clock.now()}
    assert len(await outbox_rows(crm, "reminder:")) == 1


async def test_cli_lists_jobs_and_runs_one(crm, clock, make_user, capsys):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_task(crm, rana, clock.now())
    assert await cli.run(crm, parser().parse_args(["jobs", "run", "reminders"])) == 0
    assert capsys.readouterr().out == "reminders: queued 1 notification(s)\n"

    assert await cli.run(crm, parser().parse_args(["jobs"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["job", "last", "run", "(UTC)", "next", "run", "(UTC)", "what"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(JOBS)
    assert rows["reminders"].split()[1:5] == ["2026-12-04", "09:00", "2026-12-04", "09:01"]
    assert rows["summary"].split()[1:4] == ["never", "2026-12-04", "09:00"]  # never ran: due now


async def test_reminder_scan_reads_only_what_came_due_since_its_last_run(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await run_job(crm, "reminders")
    clock.advance(hours=1)
    # Created after the last run but due before it (minus the overlap): not this scan's business.
    await add_task(crm, rana, clock.now() - timedelta(minutes=70), title="Backdated")
    await add_task(crm, rana, clock.now() - timedelta(minutes=30), title="Came due")
    assert await run_job(crm, "reminders") == 1
    (row,) = await outbox_rows(crm, "reminder:")
    assert "Came due" in reply_from_json(row.payload).text.plain
