"""The outbox sender process is SIGKILLed in the middle of a burst of reminders. After a restart
every reminder is delivered, and the only repeats are the messages the platform had accepted
whose row was not yet marked sent when the process died: the in-flight window (a send and its
mark are two steps, and nothing can make them one). At Telegram's pace (one send every ~35 ms)
that window holds one message at most in practice; the bound is the sender's `max_in_flight`,
so the tests assert the exact accounting and print how many repeated."""
from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from jobs.scans import followup_reminders
from storage.models import Identity, OutboxMessage, Task, User
from tests.conftest import T0
from tests.reliability.conftest import sqlite_only
from tests.reliability.processes import HANG_GUARD_S, Child

SENDER = "tests.reliability.sender_process"
REPS = 120


async def queue_reminders(crm) -> set[str]:
    """REPS reps, each with a follow-up due a minute ago; the reminder scan queues them."""
    async with crm.uow() as uow:
        for i in range(REPS):
            user = User(display_name=f"Rep {i}", role="rep", timezone="UTC", created_at=T0)
            uow.session.add(user)
            await uow.flush()
            uow.session.add(Identity(user_id=user.id, platform="telegram",
                                     platform_user_id=str(5000 + i),
                                     dm_address=f"telegram:{5000 + i}", created_at=T0))
            uow.session.add(Task(title=f"Call client {i}", due_at=T0 - timedelta(minutes=1),
                                 owner_id=user.id, status="open", created_at=T0))
        await uow.commit()
    assert await followup_reminders(crm, T0) == REPS
    return {f"telegram:{5000 + i}" for i in range(REPS)}


def delivered(log) -> list[str]:
    if not log.exists():
        return []
    return [line.split("\t")[0] for line in log.read_text().splitlines()]


async def sent_addresses(crm) -> set[str]:
    async with crm.reader() as uow:
        rows = await uow.session.execute(
            select(OutboxMessage.address).where(OutboxMessage.status == "sent"))
        return set(rows.scalars())


async def pending(crm) -> int:
    async with crm.reader() as uow:
        return await uow.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending"))


async def until(condition, poll: float = 0.05):
    """Poll `condition` (an async callable) until truthy; the guard only stops a hang."""
    async def _wait():
        while not (result := await condition()):
            await asyncio.sleep(poll)
        return result
    return await asyncio.wait_for(_wait(), HANG_GUARD_S)


async def crash_and_restart(crm, tmp_path, *, kill_after: int | None, die_after: int | None):
    """Run a sender until it dies mid-burst, then a fresh one until the outbox is empty.
    Returns (delivered at the crash, marked sent at the crash, everything delivered)."""
    url, log = crm.settings.database_url, tmp_path / "phone.log"
    extra = ["--die-after", str(die_after)] if die_after else []
    first = await Child.start(SENDER, url, str(log), "--lease-seconds", "1", *extra)
    if kill_after:
        async def enough():
            return len(delivered(log)) >= kill_after
        await until(enough)
        await first.kill()
    else:
        assert await asyncio.wait_for(first.proc.wait(), HANG_GUARD_S) < 0
        await first.kill()
    at_crash, marked = delivered(log), await sent_addresses(crm)

    second = await Child.start(SENDER, url, str(log), "--lease-seconds", "1")

    async def drained():
        return await pending(crm) == 0
    await until(drained)
    assert await second.stop() == 0
    return at_crash, marked, delivered(log)


def check(expected: set[str], at_crash: list[str], marked: set[str], everything: list[str]) -> set[str]:
    """Every reminder delivered; repeats only in the in-flight window. Returns the repeats."""
    counts = Counter(everything)
    assert set(counts) == expected  # nothing lost, nothing sent to anyone else
    repeats = {address for address, n in counts.items() if n > 1}
    in_flight = set(at_crash) - marked  # accepted by the platform, not yet marked sent
    assert repeats == in_flight and max(counts.values()) <= 2
    return repeats


@pytest.mark.slow
@sqlite_only
async def test_a_sender_killed_mid_burst_loses_nothing(crm, tmp_path, rng):
    expected = await queue_reminders(crm)
    at_crash, marked, everything = await crash_and_restart(
        crm, tmp_path, kill_after=rng.randrange(5, REPS - 20), die_after=None)
    assert 0 < len(at_crash) < REPS
    repeats = check(expected, at_crash, marked, everything)
    print(f"killed after {len(at_crash)} deliveries: {len(repeats)} repeated")


@pytest.mark.slow
@sqlite_only
async def test_a_sender_killed_between_send_and_mark_repeats_that_one_message(crm, tmp_path, rng):
    expected = await queue_reminders(crm)
    die_after = rng.randrange(5, REPS - 20)
    at_crash, marked, everything = await crash_and_restart(
        crm, tmp_path, kill_after=None, die_after=die_after)
    assert len(at_crash) == die_after
    repeats = check(expected, at_crash, marked, everything)
    assert at_crash[-1] in repeats  # the message accepted just before the kill went again
    print(f"killed after delivery {die_after}: {len(repeats)} repeated")
