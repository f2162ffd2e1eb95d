"""The outbox and its sender: enqueue once, deliver once, pace, retry, give up, survive crashes."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta

from bot.base import RetryLater, Unreachable
from conversations.messages import Address, Choice, OutFile, Reply
from conversations.rich import Rich, bold, link
from handlers.context import CRM
from jobs.outbox import enqueue
from jobs.payload import reply_from_json, reply_to_json
from jobs.sender import Limits, OutboxSender, Pacer
from storage.db import open_database
from tests.jobs_support import FakeChannel, VirtualTime, outbox_rows

HELLO = Reply.say("Hello ", bold("Rana"), choices=[Choice("✅ Done", "task:done:1")])


async def queue(crm, n: int, *, prefix: str = "t", chat=lambda i: f"telegram:{1000 + i}") -> None:
    async with crm.uow() as uow:
        for i in range(n):
            await enqueue(uow, f"{prefix}:{i}", [chat(i)], HELLO, kind="test")
        await uow.commit()


def tick(clock, vt: VirtualTime, seconds: float) -> None:
    """Move the database clock and the sender's monotonic clock together."""
    clock.advance(seconds=seconds)
    vt.now += seconds


def sender_for(crm, channel, vt, **kw) -> OutboxSender:
    return OutboxSender(
        crm,
        {"telegram": channel},
        kw.pop("worker_id", "w1"),
        monotonic=vt.monotonic,
        sleep=vt.sleep,
        **kw,
    )


def test_payload_round_trips_spans_buttons_and_files(tmp_path):
    reply = Reply(
        text=Rich.of("Deal ", bold("Acme <b>"), " ", link("open", "https://example.com")),
        choices=(Choice("Log", "go:log:deal=7"), Choice("Lost", "go:move:deal=7,stage=lost")),
        image=OutFile(tmp_path / "chart.png", "chart.png", "Pipeline"),
        file=OutFile(tmp_path / "deals.xlsx", "deals.xlsx"),
        edit_key="card:7",
    )
    assert reply_from_json(reply_to_json(reply)) == reply


async def test_same_dedupe_key_is_queued_once(crm):
    async with crm.uow() as uow:
        first = await enqueue(
            uow, "reminder:task:42:2026-12-05T06:00Z", ["telegram:1"], HELLO, kind="reminder"
        )
        again = await enqueue(
            uow, "reminder:task:42:2026-12-05T06:00Z", ["telegram:1"], HELLO, kind="reminder"
        )
        await uow.commit()
    assert (first, again) == (1, 0)
    rows = await outbox_rows(crm, "reminder:")
    assert [(r.dedupe_key, r.address, r.status) for r in rows] == [
        ("reminder:task:42:2026-12-05T06:00Z@telegram:1", "telegram:1", "pending")
    ]


async def test_sender_delivers_and_records_the_message_ref(crm):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    await queue(crm, 3)
    assert await sender_for(crm, channel, vt).run_once() == 3
    assert channel.texts() == ["Hello Rana"] * 3
    assert channel.sent[0][1].choices == (Choice("✅ Done", "task:done:1"),)
    rows = await outbox_rows(crm)
    assert {(r.status, r.sent_at) for r in rows} == {("sent", crm.now())}
    assert sorted(r.message_ref for r in rows) == ["msg-1", "msg-2", "msg-3"]
    assert await sender_for(crm, channel, vt).run_once() == 0  # nothing left, nothing repeated


async def test_not_before_holds_a_row_back(crm, clock):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    async with crm.uow() as uow:
        await enqueue(
            uow,
            "later",
            ["telegram:1"],
            HELLO,
            kind="test",
            not_before=clock.now() + timedelta(hours=1),
        )
        await uow.commit()
    sender = sender_for(crm, channel, vt)
    assert await sender.run_once() == 0
    clock.advance(hours=1)
    assert await sender.run_once() == 1
    assert len(channel.sent) == 1


async def test_retry_later_requeues_after_retry_after(crm, clock):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    channel.fail["telegram:1000"] = deque([RetryLater(7, "429 Too Many Requests")])
    await queue(crm, 1)
    sender = sender_for(crm, channel, vt)
    await sender.run_once()
    (row,) = await outbox_rows(crm)
    assert (row.status, row.attempts, row.not_before) == (
        "pending",
        1,
        clock.now() + timedelta(seconds=7),
    )
    assert "429" in row.last_error
    clock.advance(seconds=6)
    assert await sender.run_once() == 0 and channel.sent == []
    tick(clock, vt, 1)
    vt.now += 6
    assert await sender.run_once() == 1
    (row,) = await outbox_rows(crm)
    assert (row.status, row.attempts, len(channel.sent)) == ("sent", 2, 1)


async def test_unreachable_marks_the_row_dead_and_the_rest_still_go(crm):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    channel.fail["telegram:1001"] = deque([Unreachable("Forbidden: bot was blocked by the user")])
    await queue(crm, 3)
    await sender_for(crm, channel, vt).run_once()
    rows = {r.address: r for r in await outbox_rows(crm)}
    assert rows["telegram:1001"].status == "dead"
    assert "blocked" in rows["telegram:1001"].last_error
    assert {rows["telegram:1000"].status, rows["telegram:1002"].status} == {"sent"}


async def test_a_channel_bug_backs_off_then_gives_up(crm, clock):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    channel.fail["telegram:1000"] = deque([RuntimeError("boom")] * 3)
    await queue(crm, 1)
    sender = sender_for(crm, channel, vt, max_attempts=3)
    await sender.run_once()
    (row,) = await outbox_rows(crm)
    assert (row.status, row.not_before) == ("pending", clock.now() + timedelta(seconds=5))
    tick(clock, vt, 5)
    await sender.run_once()
    (row,) = await outbox_rows(crm)
    assert (row.attempts, row.not_before) == (2, clock.now() + timedelta(seconds=10))
    tick(clock, vt, 10)
    await sender.run_once()
    (row,) = await outbox_rows(crm)
    assert (row.status, row.attempts) == ("dead", 3)
    assert "gave up after 3 tries" in row.last_error and channel.sent == []


async def test_restart_mid_burst_resends_nothing_and_loses_nothing(crm, clock):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    await queue(crm, 10)
    crashed = sender_for(crm, channel, vt, worker_id="crashed", batch_size=4)
    # The first process delivers one batch, then dies holding the next one (claimed, unsent).
    assert await crashed.run_once() == 4
    held = await crashed._claim()
    assert len(held) == 4
    restarted = sender_for(crm, channel, vt, worker_id="restarted")
    assert await restarted.run_once() == 2  # only the unclaimed rows while the lease lives
    clock.advance(minutes=2, seconds=1)  # the dead process's lease runs out
    assert await restarted.run_once() == 4
    addresses = [a for a, _, _ in channel.sent]
    assert sorted(addresses) == sorted(f"telegram:{1000 + i}" for i in range(10))
    assert {r.status for r in await outbox_rows(crm)} == {"sent"}


async def test_a_lost_lease_is_not_marked_by_the_old_worker(crm, clock):
    await queue(crm, 1)
    async with crm.uow() as uow:
        (row,) = await uow.outbox.claim("old", now=clock.now(), lease_until=clock.now(), limit=5)
        await uow.commit()
    clock.advance(seconds=1)
    async with crm.uow() as uow:
        assert (
            len(
                await uow.outbox.claim(
                    "new", now=clock.now(), lease_until=clock.now() + timedelta(minutes=1), limit=5
                )
            )
            == 1
        )
        assert not await uow.outbox.mark_sent(row.id, "old", now=clock.now(), message_ref="x")
        assert await uow.outbox.mark_sent(row.id, "new", now=clock.now(), message_ref="y")
        await uow.commit()
    (row,) = await outbox_rows(crm)
    assert (row.status, row.message_ref) == ("sent", "y")


def test_pacer_spaces_sends_overall_per_chat_and_per_group():
    vt = VirtualTime()
    pacer = Pacer(Limits(overall_per_s=30, chat_interval=1.0, group_interval=3.0), vt.monotonic)
    starts = [pacer.reserve(Address("telegram", str(i))) for i in range(60)]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 1 / 30 and starts[-1] < 60 / 30 * 1.1  # ~30/s, with a small margin
    assert pacer.busy_for(Address("telegram", "0")) >= 1.0 - starts[-1]
    group = Address("telegram", "-100200")
    first, second = pacer.reserve(group), pacer.reserve(group)
    assert second - first >= 3.0  # 20 messages a minute in a group
    pacer.pause(Address("telegram", "7"), 30)
    assert pacer.busy_for(Address("telegram", "7")) == 30


async def test_a_busy_chat_gives_its_slot_to_others(crm, clock):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    await queue(crm, 3, chat=lambda i: "telegram:55")
    sender = sender_for(crm, channel, vt)
    assert await sender.run_once() == 3
    assert len(channel.sent) == 1  # the other two wait for the chat's next second
    rows = await outbox_rows(crm)
    assert sorted(r.attempts for r in rows) == [0, 0, 1]
    for _ in range(4):
        tick(clock, vt, 2)
        await sender.run_once()
    times = [t for _, _, t in channel.sent]
    assert len(times) == 3 and all(b - a >= 1.0 for a, b in zip(times, times[1:]))


async def test_rows_for_a_platform_without_a_channel_wait_for_one(crm):
    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    await queue(crm, 2, chat=lambda i: ["telegram:1", "slack:C1"][i])
    await sender_for(crm, channel, vt).run_once()
    assert {r.address: r.status for r in await outbox_rows(crm)} == {
        "telegram:1": "sent",
        "slack:C1": "pending",
    }


async def test_two_senders_on_one_database_deliver_each_row_once(crm, settings):
    """Two processes' worth of senders (separate engines) drain one outbox concurrently."""
    await queue(crm, 300)
    other = CRM(db=open_database(settings.database_url), settings=settings, clock=crm.clock)
    channel = FakeChannel()
    senders = [
        OutboxSender(app, {"telegram": channel}, f"worker-{n}", batch_size=20, limits={})
        for n, app in enumerate((crm, other))
    ]
    try:

        async def drain(sender):
            handled = 0
            while (n := await sender.run_once()) > 0:
                handled += n
            return handled

        handled = await asyncio.gather(*(drain(s) for s in senders))
    finally:
        await other.db.dispose()
    addresses = [a for a, _, _ in channel.sent]
    assert len(addresses) == 300 and len(set(addresses)) == 300
    assert sum(handled) == 300 and all(handled)  # both took part
    assert {r.status for r in await outbox_rows(crm)} == {"sent"}


async def test_processed_events_report_a_repeat_once_recorded(crm, clock):
    async with crm.uow() as uow:
        assert not await uow.processed.exists("telegram", "update:77")
        assert await uow.processed.seen("telegram", "update:77", uow.now) is False
        assert await uow.processed.seen("telegram", "update:77", uow.now) is True
        assert await uow.processed.seen("slack", "update:77", uow.now) is False  # per platform
        assert await uow.processed.exists("telegram", "update:77")
        await uow.commit()
    clock.advance(days=2)
    async with crm.uow() as uow:
        assert await uow.processed.prune(clock.now() - timedelta(days=1)) == 2
        await uow.commit()
    async with crm.reader() as uow:
        assert not await uow.processed.exists("telegram", "update:77")


async def test_a_crash_between_send_and_mark_repeats_that_one_message_only(crm, clock, monkeypatch):
    """The documented worst case: the platform took the message, the mark never landed."""
    from storage.repos.outbox import OutboxRepository

    vt = VirtualTime()
    channel = FakeChannel(vt=vt)
    await queue(crm, 3)
    real_mark = OutboxRepository.mark_sent
    crashed_once = []

    async def mark_or_crash(self, id_, worker_id, **kw):
        if not crashed_once:
            crashed_once.append(id_)
            raise ConnectionError("database went away")
        return await real_mark(self, id_, worker_id, **kw)

    monkeypatch.setattr(OutboxRepository, "mark_sent", mark_or_crash)
    assert await sender_for(crm, channel, vt, worker_id="first").run_once() == 3
    tick(clock, vt, 121)  # the unmarked row's lease runs out
    assert await sender_for(crm, channel, vt, worker_id="second").run_once() == 1
    addresses = [a for a, _, _ in channel.sent]
    assert len(addresses) == 4 and len(set(addresses)) == 3  # one message repeated, none lost
    assert {r.status for r in await outbox_rows(crm)} == {"sent"}
