"""The periodic jobs. Each takes `(crm, now)`, scans CRM tables for what is due, enqueues
outbox rows under dedupe keys, and returns how many rows it added. Running one twice, or in
two processes at once, sends nothing twice: the keys make every notification happen once.

Per-user and per-channel local times (morning plan, daily summary) are decided by the scan
itself ("is it this user's 09:00 window today and not yet sent?"), so the scheduler only has
to run these every few minutes, and a DST change neither skips nor doubles them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.context import CRM
from conversations.messages import Reply
from jobs import texts
from jobs.notify import dm_addresses, local_at, next_allowed_time, user_zone, work_days
from jobs.outbox import already_queued, enqueue, enqueue_dm, utc_key
from storage.enums import PIPELINE, Role
from storage.models import TeamChannel, User
from storage.repos.jobs import JobRunRepository
from storage.repos.scans import DealRow, ScanRepository
from storage.uow import UnitOfWork


@dataclass(frozen=True)
class JobConfig:
    """Thresholds of the jobs, with the issue's defaults (one place to change them)."""

    neglect_days: dict[str, int] = field(
        default_factory=lambda: {i.stage.value: i.neglect_days for i in PIPELINE if i.neglect_days}
    )
    untasked_grace: timedelta = timedelta(days=1)  # a deal with no follow-up gets a day first
    escalate_after_days: int = 3  # beyond the stage threshold, the manager hears of it
    reminder_lookback: timedelta = timedelta(days=1)  # reminders missed while down still go
    rescan_overlap: timedelta = timedelta(minutes=5)  # re-read before the last run: no gaps
    local_window: timedelta = timedelta(hours=3)  # a morning plan/summary is late, not skipped
    installment_notice_days: int = 3
    overdue_manager_days: int = 3
    overdue_team_days: int = 7
    team_work_days: frozenset[int] = frozenset(range(5))


CONFIG = JobConfig()
WRITE_BATCH = 200  # outbox rows per write transaction in the big scans


def locale_of(crm: CRM) -> str:
    return crm.settings.language


def is_working_now(user: User, now: datetime) -> bool:
    return next_allowed_time(user, now) == now


async def _users_by_id(uow: UnitOfWork, ids) -> dict[int, User]:
    users = {}
    for user_id in set(ids):
        user = await uow.users.get(user_id)
        if user is not None and user.active:
            users[user_id] = user
    return users


# --- follow-up reminders ------------------------------------------------------------------------


async def followup_reminders(crm: CRM, now: datetime) -> int:
    """Each open task whose (snoozed) due time has come: a reminder to its owner's DMs."""
    async with crm.uow(action="job_reminders") as uow:
        since = now - CONFIG.reminder_lookback
        last_run = await JobRunRepository(uow.session).last_run("reminders")
        if last_run is not None:  # only what came due since (dedupe keys cover the overlap)
            # min(): after the clock was put back, the last run lies in the future; reading
            # from there would skip tasks due in the hour the clock lives through again.
            since = max(since, min(last_run, now) - CONFIG.rescan_overlap)
        due = await ScanRepository(uow.session).tasks_due_between(since, now)
        owners = await _users_by_id(uow, (d.task.owner_id for d in due))
        added = 0
        for item in due:
            owner = owners.get(item.task.owner_id)
            if owner is None:
                continue
            key = f"reminder:task:{item.task.id}:{utc_key(item.due)}"
            reply = texts.reminder(item, user_zone(owner))
            added += await enqueue_dm(uow, owner, key, reply, kind="reminder", urgent=True)
        await uow.commit()
        return added


# --- neglected leads ---------------------------------------------------------------------------


async def neglected_leads(crm: CRM, now: datetime) -> int:
    """One nudge per neglected deal per day to its owner; one digest per manager per day of
    their reps' deals still cold `escalate_after_days` past the stage threshold."""
    stale_before = {stage: now - timedelta(days=d) for stage, d in CONFIG.neglect_days.items()}
    escalate_before = {
        stage: now - timedelta(days=d + CONFIG.escalate_after_days)
        for stage, d in CONFIG.neglect_days.items()
    }
    # The scan reads without a lock; the nudges are written in short batches, so reps saving
    # their work never wait behind a whole scan (SQLite has one writer at a time).
    async with crm.reader() as uow:
        rows = await ScanRepository(uow.session).neglected_deals(
            stale_before, now - CONFIG.untasked_grace
        )
        owners = await _users_by_id(uow, (r.deal.owner_id for r in rows))
    digests: dict[int, dict[str, list[tuple[DealRow, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    queue: list[tuple[User, str, Reply, str]] = []
    for row in rows:
        owner = owners.get(row.deal.owner_id)
        if owner is None or not is_working_now(owner, now):
            continue  # off hours: the first scan in working hours nudges, keyed by that day
        stale = row.deal.last_touched_at < stale_before[row.deal.stage]
        reason = texts.neglect_reason(row, now, stale)
        today = now.astimezone(user_zone(owner)).date()
        queue.append((owner, f"nudge:deal:{row.deal.id}:{today.isoformat()}", texts.nudge(row, reason), "nudge"))
        if owner.manager_id and row.deal.last_touched_at < escalate_before[row.deal.stage]:
            digests[owner.manager_id][owner.display_name].append((row, reason))
    async with crm.reader() as uow:
        managers = await _users_by_id(uow, digests)
    for manager_id, by_rep in digests.items():
        manager = managers.get(manager_id)
        if manager is None or not is_working_now(manager, now):
            continue
        today = now.astimezone(user_zone(manager)).date()
        key = f"neglect:manager:{manager_id}:{today.isoformat()}"
        queue.append((manager, key, texts.manager_digest(by_rep), "digest"))
    added = 0
    for start in range(0, len(queue), WRITE_BATCH):
        async with crm.uow(action="job_neglected") as uow:
            for user, key, reply, kind in queue[start:start + WRITE_BATCH]:
                added += await enqueue_dm(uow, user, key, reply, kind=kind)
            await uow.commit()
    return added


# --- morning plan ------------------------------------------------------------------------------


def in_local_window(
    now: datetime, tz: ZoneInfo, at: time, days: frozenset[int], window: timedelta
) -> date | None:
    """The local date if `now` is within `window` after wall-clock `at` on a working day."""
    today = now.astimezone(tz).date()
    if today.weekday() not in days:
        return None
    start = local_at(today, at, tz)
    return today if start <= now < start + window else None


async def morning_plans(crm: CRM, now: datetime) -> int:
    """Each rep and manager, at their local start of work on a work day: today's follow-ups,
    overdue ones and payments due."""
    async with crm.uow(action="job_morning") as uow:
        scans = ScanRepository(uow.session)
        added = 0
        for user in await scans.active_users((Role.REP.value, Role.MANAGER.value)):
            tz = user_zone(user)
            today = in_local_window(
                now, tz, user.work_start or time(9, 0), work_days(user), CONFIG.local_window
            )
            if today is None:
                continue
            key = f"morning:user:{user.id}:{today.isoformat()}"
            if await already_queued(uow, key, await dm_addresses(uow, user.id)):
                continue  # already planned today: skip the queries
            start, end = local_at(today, time(0), tz), local_at(
                today + timedelta(days=1), time(0), tz
            )
            tasks = await scans.open_tasks_of(user.id, end)
            payments = await scans.unpaid_installments(today, today, owners=[user.id])
            reply = texts.morning_plan(
                user.display_name,
                today,
                [t for t in tasks if t.due >= start],
                [t for t in tasks if t.due < start],
                payments,
                tz,
                locale_of(crm),
            )
            added += await enqueue_dm(uow, user, key, reply, kind="morning", urgent=True)
        await uow.commit()
        return added


# --- daily pipeline summary ----------------------------------------------------------------------


def previous_work_day(day: date, days: frozenset[int]) -> date:
    prev = day - timedelta(days=1)
    for _ in range(7):
        if prev.weekday() in days:
            return prev
        prev -= timedelta(days=1)
    return day - timedelta(days=1)


async def daily_summaries(crm: CRM, now: datetime) -> int:
    """Each team channel with summaries on, at its summary time on working days."""
    async with crm.uow(action="job_summary") as uow:
        scans = ScanRepository(uow.session)
        added = 0
        for channel in await scans.summary_channels():
            tz = _zone(channel.timezone)
            today = in_local_window(
                now,
                tz,
                channel.summary_time or time(9, 0),
                CONFIG.team_work_days,
                CONFIG.local_window,
            )
            if today is None:
                continue
            key = f"summary:channel:{channel.id}:{today.isoformat()}"
            if await already_queued(uow, key, [channel.address]):
                continue
            reply = await _summary(crm, scans, channel, tz, today, now)
            added += await enqueue(uow, key, [channel.address], reply, kind="summary")
        await uow.commit()
        return added


async def _summary(
    crm, scans: ScanRepository, channel: TeamChannel, tz, today: date, now: datetime
):
    owners = await scans.channel_scope(channel)
    since = previous_work_day(today, CONFIG.team_work_days)
    since_at, today_at = local_at(since, time(0), tz), local_at(today, time(0), tz)
    week_end = today + timedelta(days=6 - today.weekday())
    stale_before = {stage: now - timedelta(days=d) for stage, d in CONFIG.neglect_days.items()}
    stalled = await scans.neglected_deals(stale_before, now - CONFIG.untasked_grace, owners)
    return texts.pipeline_summary(
        channel.title or "Team",
        today,
        since,
        await scans.pipeline_by_stage(owners),
        await scans.new_deals_by_source(since_at, today_at, owners),
        await scans.closed_between(since_at, today_at, owners),
        len(stalled),
        await scans.overdue_tasks_per_owner(now, owners),
        await scans.unpaid_installments(today, week_end, owners),
        await scans.unpaid_installments(None, today - timedelta(days=1), owners),
        locale_of(crm),
    )


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


# --- installments ------------------------------------------------------------------------------


async def installment_reminders(crm: CRM, now: datetime) -> int:
    """Reminders N days before and on the due day; when overdue, the rep from day 1, the
    manager from `overdue_manager_days`, the team channels from `overdue_team_days`."""
    locale = locale_of(crm)
    horizon = (now + timedelta(days=CONFIG.installment_notice_days + 1)).date()
    async with crm.uow(action="job_installments") as uow:
        scans = ScanRepository(uow.session)
        rows = await scans.unpaid_installments(None, horizon)
        owners = await _users_by_id(uow, (r.contract.owner_id for r in rows))
        added = 0
        for row in rows:
            owner = owners.get(row.contract.owner_id)
            if owner is None:
                continue
            inst = row.installment
            today = now.astimezone(user_zone(owner)).date()
            key = f"installment:{inst.id}:{inst.due_date.isoformat()}"
            days_left = (inst.due_date - today).days
            if 0 < days_left <= CONFIG.installment_notice_days:
                reply = texts.installment_notice(row, "before", today, locale)
                added += await enqueue_dm(uow, owner, f"{key}:before", reply, kind="installment")
            elif days_left == 0:
                reply = texts.installment_notice(row, "due", today, locale)
                added += await enqueue_dm(uow, owner, f"{key}:due", reply, kind="installment")
            elif days_left < 0:
                added += await _escalate_overdue(
                    uow, scans, row, owner, key, -days_left, today, locale
                )
        await uow.commit()
        return added


async def _escalate_overdue(
    uow, scans, row, owner: User, key: str, late: int, today, locale
) -> int:
    reply = texts.installment_notice(row, "overdue", today, locale)
    added = await enqueue_dm(uow, owner, f"{key}:overdue:rep", reply, kind="overdue")
    if late >= CONFIG.overdue_manager_days and owner.manager_id:
        manager = await uow.users.get(owner.manager_id)
        if manager is not None and manager.active:
            reply = texts.installment_notice(row, "overdue", today, locale, rep=owner.display_name)
            added += await enqueue_dm(uow, manager, f"{key}:overdue:manager", reply, kind="overdue")
    if late >= CONFIG.overdue_team_days:
        channels = [c for c in await scans.channels_for_owner(owner) if c.alert_overdue]
        reply = texts.installment_notice(row, "overdue", today, locale, rep=owner.display_name)
        added += await enqueue(
            uow, f"{key}:overdue:team", [c.address for c in channels], reply, kind="overdue"
        )
    return added


# --- housekeeping ------------------------------------------------------------------------------

# Dedupe keys carry their day or due time, and scans only look back days, so a month of sent
# rows is plenty to stay idempotent; platforms stop re-delivering events within minutes.
OUTBOX_KEEP = timedelta(days=30)
EVENTS_KEEP = timedelta(days=7)


async def housekeeping(crm: CRM, now: datetime) -> int:
    """Prune delivered notifications and remembered platform events, so the tables the
    scans consult stay small as a deployment ages; returns 0 (it queues nothing)."""
    async with crm.uow(action="job_housekeeping") as uow:
        await uow.outbox.prune(now - OUTBOX_KEEP)
        await uow.processed.prune(now - EVENTS_KEEP)
        await uow.commit()
    return 0
