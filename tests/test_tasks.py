"""Tasks and follow-ups: create, close, snooze, reschedule, the board by local day, reminder scan."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from handlers.contacts import create_lead
from handlers.errors import Conflict, InvalidInput, NotAllowed, NotFound
from handlers.tasks import (
    cancel_task,
    complete_task,
    create_task,
    due_tasks,
    get_task,
    reschedule_task,
    snooze_task,
    task_board,
)
from storage.models import AuditEntry, Task
from tests.conftest import T0

DUBAI = ZoneInfo("Asia/Dubai")


@pytest.fixture
async def team(make_user):
    maya = await make_user("Maya", "manager")
    return {
        "maya": maya,
        "rana": await make_user("Rana", "rep", manager=maya, tz="Asia/Dubai"),
        "omar": await make_user("Omar", "rep", manager=maya),
        "lina": await make_user("Lina", "rep"),
    }


async def counts(crm):
    async with crm.reader() as uow:
        return tuple([
            (await uow.session.execute(select(func.count()).select_from(m))).scalar_one()
            for m in (Task, AuditEntry)
        ])


async def test_create_task_stores_utc_and_links_the_deals_contact(crm, team):
    seen = []

    async def collect(uow, batch):
        seen.extend((e.name, e.data) for e in batch)

    crm.hooks.append(collect)
    lead = await create_lead(crm, team["rana"], name="Noor")
    seen.clear()
    due_local = datetime(2026, 12, 5, 10, 0, tzinfo=DUBAI)
    task = await create_task(crm, team["rana"], title=" Send the quote ", due_at=due_local,
                             deal_id=lead.deal.id)
    stored = await get_task(crm, team["rana"], task.id)
    assert (stored.title, stored.owner_id, stored.status) == ("Send the quote", team["rana"].user_id, "open")
    assert stored.due_at == datetime(2026, 12, 5, 6, 0, tzinfo=timezone.utc)
    assert stored.due_at.tzinfo == timezone.utc
    assert (stored.contact_id, stored.deal_id, stored.created_by_id) == (lead.contact.id, lead.deal.id, team["rana"].user_id)
    assert seen == [("task_created", {"task_id": task.id})]


async def test_bad_tasks_are_refused_and_nothing_is_written(crm, team):
    rana = team["rana"]
    mine = await create_lead(crm, rana, name="Noor")
    other = await create_lead(crm, rana, name="Sara")
    theirs = await create_lead(crm, team["lina"], name="Zed")
    before = await counts(crm)
    due = T0 + timedelta(days=1)
    with pytest.raises(InvalidInput, match="cannot be empty"):
        await create_task(crm, rana, title="  ", due_at=due)
    with pytest.raises(InvalidInput, match="time zone") as err:
        await create_task(crm, rana, title="Call", due_at=due.replace(tzinfo=None))
    assert err.value.field == "due_at"
    with pytest.raises(InvalidInput, match="different contact"):
        await create_task(crm, rana, title="Call", due_at=due, contact_id=other.contact.id,
                          deal_id=mine.deal.id)
    with pytest.raises(NotFound):
        await create_task(crm, rana, title="Call", due_at=due, contact_id=theirs.contact.id)
    with pytest.raises(NotAllowed):
        await create_task(crm, rana, title="Call", due_at=due, owner_id=team["omar"].user_id)
    assert await counts(crm) == before

    assigned = await create_task(crm, team["maya"], title="Call Noor", due_at=due,
                                 contact_id=mine.contact.id, owner_id=rana.user_id)
    assert assigned.owner_id == rana.user_id and assigned.created_by_id == team["maya"].user_id


async def test_complete_and_cancel_only_open_tasks(crm, team, clock):
    rana = team["rana"]
    a = await create_task(crm, rana, title="Call", due_at=T0 + timedelta(hours=1))
    b = await create_task(crm, rana, title="Visit", due_at=T0 + timedelta(hours=2))
    clock.advance(minutes=30)
    done = await complete_task(crm, rana, a.id)
    assert (done.status, done.completed_at) == ("done", T0 + timedelta(minutes=30))
    cancelled = await cancel_task(crm, team["maya"], b.id)
    assert cancelled.status == "cancelled"

    before = await counts(crm)
    with pytest.raises(Conflict, match="already done"):
        await complete_task(crm, rana, a.id)
    with pytest.raises(Conflict, match="cancelled"):
        await snooze_task(crm, rana, b.id, T0 + timedelta(days=1))
    with pytest.raises(NotFound, match=f"No task #{a.id}"):
        await cancel_task(crm, team["omar"], a.id)
    assert await counts(crm) == before


async def test_snooze_moves_due_time_so_the_reminder_fires_again(crm, team, clock):
    rana = team["rana"]
    task = await create_task(crm, rana, title="Call", due_at=T0 + timedelta(minutes=10))
    clock.advance(minutes=15)
    assert [t.id for t in await due_tasks(crm, until=clock.now())] == [task.id]

    until = clock.now() + timedelta(hours=2)
    snoozed = await snooze_task(crm, rana, task.id, until)
    assert (snoozed.due_at, snoozed.snoozed_until) == (until, until)
    assert await due_tasks(crm, until=clock.now()) == []
    assert [t.id for t in await due_tasks(crm, until=until)] == [task.id]

    before = await counts(crm)
    with pytest.raises(InvalidInput, match="in the future") as err:
        await snooze_task(crm, rana, task.id, clock.now() - timedelta(minutes=1))
    assert err.value.field == "until"
    assert await counts(crm) == before

    moved = await reschedule_task(crm, rana, task.id, T0 + timedelta(days=3))
    assert (moved.due_at, moved.snoozed_until) == (T0 + timedelta(days=3), None)
    async with crm.reader() as uow:
        fields = [a.field for a in await uow.audit.trail("tasks", task.id)]
    assert fields == ["snoozed_until", "due_at", "due_at", "snoozed_until", "*created"]


async def test_task_board_uses_the_owners_local_day(crm, team, clock):
    """Rana works from Dubai (UTC+4). At 23:30 her time it is still 19:30 UTC."""
    rana = team["rana"]
    clock.set(datetime(2026, 12, 4, 23, 30, tzinfo=DUBAI))

    async def task(title, when):
        return await create_task(crm, rana, title=title, due_at=when)

    missed = await task("missed", datetime(2026, 12, 4, 22, 0, tzinfo=DUBAI))
    tonight = await task("tonight", datetime(2026, 12, 4, 23, 45, tzinfo=DUBAI))
    after_midnight = await task("after midnight", datetime(2026, 12, 5, 0, 30, tzinfo=DUBAI))
    in_two_weeks = await task("in two weeks", datetime(2026, 12, 18, 23, 0, tzinfo=DUBAI))
    await task("too far", datetime(2026, 12, 19, 0, 30, tzinfo=DUBAI))
    done = await task("done", datetime(2026, 12, 4, 23, 50, tzinfo=DUBAI))
    await complete_task(crm, rana, done.id)
    await create_task(crm, team["omar"], title="not hers", due_at=datetime(2026, 12, 4, 23, 40, tzinfo=DUBAI))

    board = await task_board(crm, rana)
    assert [t.id for t in board.overdue] == [missed.id]
    assert [t.id for t in board.today] == [tonight.id]
    assert [t.id for t in board.upcoming] == [after_midnight.id, in_two_weeks.id]

    # Omar, in UTC, sees 00:30 Dubai (20:30 UTC) as still today.
    omar_task = await create_task(crm, team["omar"], title="late UTC", due_at=datetime(2026, 12, 5, 0, 30, tzinfo=DUBAI))
    assert omar_task.id in [t.id for t in (await task_board(crm, team["omar"])).today]


async def test_due_tasks_scans_every_owner_earliest_first(crm, team):
    a = await create_task(crm, team["omar"], title="a", due_at=T0 + timedelta(minutes=5))
    b = await create_task(crm, team["rana"], title="b", due_at=T0 - timedelta(hours=1))
    c = await create_task(crm, team["lina"], title="c", due_at=T0 + timedelta(minutes=5))
    await create_task(crm, team["lina"], title="later", due_at=T0 + timedelta(hours=1))
    closed = await create_task(crm, team["lina"], title="closed", due_at=T0)
    await cancel_task(crm, team["lina"], closed.id)
    assert [t.id for t in await due_tasks(crm, until=T0 + timedelta(minutes=5))] == [b.id, a.id, c.id]
    assert [t.id for t in await due_tasks(crm, until=T0 + timedelta(minutes=5), limit=1)] == [b.id]
