"""Tasks and follow-ups: create, complete, cancel, snooze, reschedule, the board, due scans.

Also the small rules other use cases share when they create a task or assign an owner.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.access import acting_user, can_see_owner, visible
from handlers.context import CRM, Actor
from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound
from handlers.values import require_text
from storage.enums import Role, TaskStatus
from storage.models import Task, User
from storage.uow import UnitOfWork

MAX_TITLE = 500
UPCOMING_DAYS = 14


@dataclass(frozen=True)
class TaskBoard:
    """The actor's open tasks: overdue (due before now), today (rest of their local day) and
    upcoming (the next 14 local days)."""

    overdue: list[Task]
    today: list[Task]
    upcoming: list[Task]


def require_aware(value: datetime, field: str) -> datetime:
    """`value` if it carries a time zone; a naive time would be read in the server's zone."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("I need a date and time with a time zone, e.g. tomorrow 10:00.", field=field)
    return value


def user_zone(user: User, default: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


async def assignable_owner(uow: UnitOfWork, user: User, owner_id: int | None) -> int:
    """The owner a new or reassigned record gets: the actor by default; a manager may pick
    someone on their team, an admin anyone active; a rep only themselves."""
    if owner_id is None or owner_id == user.id:
        return user.id
    if user.role == Role.REP:
        raise NotAllowed(
            "You can only assign records to yourself. Ask your manager to reassign it.",
            field="owner_id",
        )
    owner = await uow.users.get(owner_id)
    if owner is None or not owner.active or not await can_see_owner(uow, user, owner_id):
        raise NotAllowed(
            "You can assign records only to yourself or someone on your team.", field="owner_id"
        )
    return owner_id


async def add_task(
    uow: UnitOfWork,
    *,
    title: str,
    due_at: datetime,
    owner_id: int,
    created_by_id: int,
    contact_id: int | None = None,
    deal_id: int | None = None,
) -> Task:
    """Add an open task inside the caller's unit of work: audited, emits task_created."""
    task = uow.tasks.add(
        Task(
            title=title,
            due_at=due_at,
            owner_id=owner_id,
            contact_id=contact_id,
            deal_id=deal_id,
            status=TaskStatus.OPEN.value,
            created_by_id=created_by_id,
            created_at=uow.now,
        )
    )
    await uow.audit.created(task)
    uow.emit("task_created", task_id=task.id)
    return task


async def _link(uow: UnitOfWork, user: User, contact_id: int | None, deal_id: int | None):
    """Check the contact/deal a task is about; a deal implies its contact."""
    if deal_id is not None:
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        if contact_id is not None and contact_id != deal.contact_id:
            raise InvalidInput("That deal belongs to a different contact.", field="deal_id")
        contact_id = deal.contact_id
    if contact_id is not None:
        contact = await visible(uow, uow.contacts, contact_id, user, "contact")
        if contact.deleted_at is not None:
            raise NotFound(f"No contact #{contact_id} that you can see.")
    return contact_id, deal_id


async def create_task(
    crm: CRM,
    actor: Actor,
    *,
    title: str,
    due_at: datetime,
    contact_id: int | None = None,
    deal_id: int | None = None,
    owner_id: int | None = None,
) -> Task:
    """A new open task (stored in UTC), owned by the actor unless a manager assigns it."""
    async with crm.uow(actor, action="create_task") as uow:
        user = await acting_user(uow, actor)
        text = require_text(title, "task", MAX_TITLE, field="title")
        require_aware(due_at, "due_at")
        owner = await assignable_owner(uow, user, owner_id)
        contact_id, deal_id = await _link(uow, user, contact_id, deal_id)
        task = await add_task(
            uow, title=text, due_at=due_at, owner_id=owner, created_by_id=user.id,
            contact_id=contact_id, deal_id=deal_id,
        )
        await uow.commit()
        return task


async def get_task(crm: CRM, actor: Actor, task_id: int) -> Task:
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        task = await visible(uow, uow.tasks, task_id, user, "task")
        return task


async def _open_task(uow: UnitOfWork, actor: Actor, task_id: int) -> Task:
    user = await acting_user(uow, actor)
    task = await visible(uow, uow.tasks, task_id, user, "task")
    if task.status == TaskStatus.DONE:
        raise Conflict("This task is already done.")
    if task.status == TaskStatus.CANCELLED:
        raise Conflict("This task was cancelled.")
    return task


async def _close(crm: CRM, actor: Actor, task_id: int, status: TaskStatus, action: str) -> Task:
    async with crm.uow(actor, action=action) as uow:
        task = await _open_task(uow, actor, task_id)
        uow.audit.set(task, "status", status.value)
        uow.audit.set(task, "completed_at", uow.now)
        await uow.commit()
        return task


async def complete_task(crm: CRM, actor: Actor, task_id: int) -> Task:
    """Mark an open task done (completed_at = now)."""
    return await _close(crm, actor, task_id, TaskStatus.DONE, "complete_task")


async def cancel_task(crm: CRM, actor: Actor, task_id: int) -> Task:
    """Cancel an open task (completed_at records when it was closed)."""
    return await _close(crm, actor, task_id, TaskStatus.CANCELLED, "cancel_task")


async def snooze_task(crm: CRM, actor: Actor, task_id: int, until: datetime) -> Task:
    """Push an open task to `until` (in the future); its reminder fires again then."""
    async with crm.uow(actor, action="snooze_task") as uow:
        task = await _open_task(uow, actor, task_id)
        require_aware(until, "until")
        if until <= uow.now:
            raise InvalidInput(
                "Pick a time in the future, e.g. “in 2 hours” or “tomorrow 9:00”.", field="until"
            )
        uow.audit.set(task, "snoozed_until", until)
        uow.audit.set(task, "due_at", until)
        await uow.commit()
        return task


async def reschedule_task(crm: CRM, actor: Actor, task_id: int, due_at: datetime) -> Task:
    """Give an open task a new due time."""
    async with crm.uow(actor, action="reschedule_task") as uow:
        task = await _open_task(uow, actor, task_id)
        require_aware(due_at, "due_at")
        uow.audit.set(task, "due_at", due_at)
        uow.audit.set(task, "snoozed_until", None)
        await uow.commit()
        return task


async def task_board(crm: CRM, actor: Actor) -> TaskBoard:
    """The actor's open tasks split by their own local day (users.timezone)."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        now = uow.now
        zone = user_zone(user, crm.settings.timezone)
        today = now.astimezone(zone).date()
        end_of_today = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
        horizon = datetime.combine(
            today + timedelta(days=UPCOMING_DAYS + 1), time(0), tzinfo=zone
        )
        tasks = await uow.tasks.open_of_owner(user.id, due_before=horizon)
    return TaskBoard(
        overdue=[t for t in tasks if t.due_at < now],
        today=[t for t in tasks if now <= t.due_at < end_of_today],
        upcoming=[t for t in tasks if t.due_at >= end_of_today],
    )


async def due_tasks(crm: CRM, *, until: datetime, limit: int = 500) -> list[Task]:
    """Open tasks due at or before `until`, earliest first (for the reminder job; no actor)."""
    require_aware(until, "until")
    async with crm.reader() as uow:
        tasks = await uow.tasks.due(until=until, limit=limit)
        return tasks
