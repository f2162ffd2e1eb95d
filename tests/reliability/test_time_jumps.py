"""Time misbehaves: daylight saving starts or ends between setting a follow-up and its due
time, and the server clock jumps forward (a suspended VM wakes up) or back (NTP corrects it).
The scheduler runs the reminder scan as it would (every few minutes) and the outbox sender
delivers; each reminder arrives once, at the local time the rep asked for."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conversations.messages import Address, Reply
from conversations.router import Router
from handlers.contacts import create_lead
from jobs.scheduler import run_job
from jobs.sender import OutboxSender
from storage.models import Task
from tests.chat import Chat, all_rows
from tests.jobs_support import FakeChannel, VirtualTime, add_task

UTC = timezone.utc
BERLIN = "Europe/Berlin"


class ClockedPhone(FakeChannel):
    """Records each delivery with the CRM clock's time."""

    def __init__(self, clock) -> None:
        super().__init__(vt=VirtualTime())
        self.clock = clock
        self.received: list[tuple[str, str, datetime]] = []

    async def send(self, address: Address, reply: Reply) -> str:
        self.received.append((str(address), reply.text.plain, self.clock.now()))
        return await super().send(address, reply)


class Scheduler:
    """The reminder job and the sender, run the way the scheduler runs them."""

    def __init__(self, crm, clock) -> None:
        self.crm, self.clock = crm, clock
        self.phone = ClockedPhone(clock)
        vt = self.phone.vt
        self.sender = OutboxSender(crm, {"telegram": self.phone}, monotonic=vt.monotonic,
                                   sleep=vt.sleep)

    async def tick(self) -> None:
        await run_job(self.crm, "reminders")
        await self.sender.run_once()

    async def run_until(self, end: datetime, step: timedelta) -> None:
        while self.clock.now() < end:
            self.clock.set(min(end, self.clock.now() + step))
            self.phone.vt.now += step.total_seconds()  # the sender's pacing clock moves on too
            await self.tick()

    def reminders(self) -> list[tuple[str, datetime]]:
        return [(text.split(": ", 1)[0], at) for _, text, at in self.phone.received]


async def follow_up_via_chat(crm, make_user, when: str) -> Task:
    """Rana (in Berlin) sets a follow-up by chat, as she would type it."""
    rana = await make_user("Rana", tz=BERLIN, identity=("telegram", "42"))
    await create_lead(crm, rana, name="Layla Nasser", next_step_at=crm.now() + timedelta(days=60))
    chat = Chat(Router(crm), platform="telegram", user_id="42")
    for text in ("/followup", "Layla", "Send revised quote", when):
        await chat.say(text)
    assert "Follow-up set" in chat.last_text
    [task] = [t for t in await all_rows(crm, Task) if t.title == "Send revised quote"]
    return task


@pytest.mark.slow
@pytest.mark.parametrize("friday, due_utc", [
    # Summer time starts on Sun 28 Mar 2027: Monday 09:00 in Berlin is 07:00 UTC.
    (datetime(2027, 3, 26, 10, 0, tzinfo=UTC), datetime(2027, 3, 29, 7, 0, tzinfo=UTC)),
    # Summer time ends on Sun 31 Oct 2027: Monday 09:00 in Berlin is 08:00 UTC.
    (datetime(2027, 10, 29, 10, 0, tzinfo=UTC), datetime(2027, 11, 1, 8, 0, tzinfo=UTC)),
], ids=["spring-forward", "fall-back"])
async def test_a_reminder_across_a_dst_change_fires_once_at_the_local_time(
    crm, clock, make_user, friday, due_utc
):
    clock.set(friday)
    task = await follow_up_via_chat(crm, make_user, "monday 9am")
    assert task.due_at == due_utc
    scheduler = Scheduler(crm, clock)
    await scheduler.run_until(due_utc - timedelta(hours=1), timedelta(minutes=30))
    await scheduler.run_until(due_utc + timedelta(hours=2), timedelta(minutes=1))
    assert scheduler.reminders() == [("⏰ Follow-up due at 09:00", due_utc)]


@pytest.mark.slow
async def test_a_clock_jump_forward_delivers_the_missed_reminder_once(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "42"))
    due = clock.now() + timedelta(minutes=10)
    await add_task(crm, rana, due, title="Call Layla")
    scheduler = Scheduler(crm, clock)
    await scheduler.run_until(due - timedelta(minutes=2), timedelta(minutes=1))
    clock.set(due + timedelta(hours=3))  # the machine slept through the due time
    await scheduler.tick()
    await scheduler.run_until(due + timedelta(hours=4), timedelta(minutes=5))
    assert scheduler.reminders() == [("⏰ Follow-up due at 09:10", due + timedelta(hours=3))]


@pytest.mark.slow
async def test_a_clock_jump_back_repeats_nothing_and_loses_nothing(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "42"))
    first_due = clock.now() + timedelta(minutes=30)  # 09:30
    await add_task(crm, rana, first_due, title="Call Layla")
    scheduler = Scheduler(crm, clock)
    await scheduler.run_until(first_due + timedelta(minutes=30), timedelta(minutes=1))  # 10:00
    clock.set(clock.now() - timedelta(hours=1))  # NTP puts the clock back to 09:00
    # A follow-up set now, due in the hour the clock lives through a second time.
    second_due = clock.now() + timedelta(minutes=15)  # 09:15
    await add_task(crm, rana, second_due, title="Send the quote")
    await scheduler.run_until(clock.now() + timedelta(hours=2), timedelta(minutes=1))
    assert scheduler.reminders() == [
        ("⏰ Follow-up due at 09:30", first_due),
        ("⏰ Follow-up due at 09:15", second_due),
    ]
