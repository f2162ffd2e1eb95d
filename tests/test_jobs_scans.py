"""Each periodic job against a real database and an injected clock: what is queued, to whom,
with which buttons, and that running a scan again queues nothing new."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from jobs.scans import (
    daily_summaries,
    followup_reminders,
    installment_reminders,
    morning_plans,
    neglected_leads,
)
from jobs.payload import reply_from_json
from tests.jobs_support import (
    add_deal,
    add_identity,
    add_installment,
    add_task,
    add_team_channel,
    outbox_rows,
    set_user,
)

UTC = timezone.utc


def buttons(row) -> list[str]:
    return [c.value for c in reply_from_json(row.payload).choices]


def text(row) -> str:
    return reply_from_json(row.payload).text.plain


# --- follow-up reminders -------------------------------------------------------------------------


async def test_reminder_goes_to_every_dm_at_the_due_time_once(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_identity(crm, rana, "slack", "D01:U01")
    deal = await add_deal(crm, rana, contact="Layla Haddad", title="Villa fit-out")
    task = await add_task(
        crm, rana, clock.now() + timedelta(minutes=30), title="Send the quote", deal=deal
    )
    assert await followup_reminders(crm, clock.now()) == 0  # not due yet

    clock.advance(minutes=30)
    assert await followup_reminders(crm, clock.now()) == 2
    assert await followup_reminders(crm, clock.now()) == 0  # a second scan adds nothing
    rows = await outbox_rows(crm, "reminder:")
    assert [r.dedupe_key for r in rows] == [
        f"reminder:task:{task.id}:2026-12-04T09:30Z@telegram:111",
        f"reminder:task:{task.id}:2026-12-04T09:30Z@slack:D01:U01",
    ]
    assert (
        text(rows[0]) == "⏰ Follow-up due at 09:30: Send the quote\nLayla Haddad · Villa fit-out"
    )
    assert buttons(rows[0]) == [
        f"task:done:{task.id}",
        f"task:snooze:{task.id}:60",
        f"task:tomorrow:{task.id}",
        f"go:log:deal={deal.id}",
    ]
    assert rows[0].not_before == clock.now()


async def test_snoozed_task_is_reminded_again_at_the_new_time_and_done_tasks_never(
    crm, clock, make_user
):
    rana = await make_user("Rana", identity=("telegram", "111"))
    snoozed = await add_task(
        crm, rana, clock.now() - timedelta(hours=2), snoozed_until=clock.now() + timedelta(hours=1)
    )
    await add_task(crm, rana, clock.now() - timedelta(minutes=5), status="done")
    assert await followup_reminders(crm, clock.now()) == 0
    clock.advance(hours=1)
    assert await followup_reminders(crm, clock.now()) == 1
    (row,) = await outbox_rows(crm, "reminder:")
    assert row.dedupe_key == f"reminder:task:{snoozed.id}:2026-12-04T10:00Z@telegram:111"


async def test_reminder_missed_while_down_still_goes_on_the_next_scan(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_task(crm, rana, clock.now() - timedelta(hours=5))
    await add_task(
        crm, rana, clock.now() - timedelta(days=3), title="Ancient"
    )  # beyond the look-back
    assert await followup_reminders(crm, clock.now()) == 1


# --- neglected leads -------------------------------------------------------------------------------


async def test_neglected_deal_gets_one_nudge_a_day_with_buttons(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    cold = await add_deal(
        crm, rana, stage="contacted", touched=clock.now() - timedelta(days=4), contact="Omar"
    )
    fresh = await add_deal(
        crm, rana, stage="contacted", touched=clock.now() - timedelta(days=2), contact="Sara"
    )
    await add_task(crm, rana, clock.now() + timedelta(days=1), deal=fresh)  # planned: not neglected

    assert await neglected_leads(crm, clock.now()) == 1
    assert await neglected_leads(crm, clock.now() + timedelta(hours=1)) == 0
    (row,) = await outbox_rows(crm, "nudge:")
    assert row.dedupe_key == f"nudge:deal:{cold.id}:2026-12-04@telegram:111"
    assert (
        text(row)
        == "👀 Omar · Villa fit-out is going cold: no touch for 4 days in Contacted. What's next?"
    )
    assert buttons(row) == [
        f"go:log:deal={cold.id}",
        f"go:followup:deal={cold.id}",
        f"go:move:deal={cold.id}",
        f"go:move:deal={cold.id},stage=lost",
    ]
    clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # Monday: still cold, a new day's nudge
    assert await neglected_leads(crm, clock.now()) == 2  # Sara's deal is now 5 days cold too


async def test_a_deal_with_no_follow_up_is_nudged_after_a_day(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_deal(crm, rana, stage="negotiation", touched=clock.now() - timedelta(hours=30))
    assert await neglected_leads(crm, clock.now()) == 1
    (row,) = await outbox_rows(crm, "nudge:")
    assert "no follow-up planned" in text(row)


async def test_nudges_wait_for_working_hours(crm, clock, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    await add_deal(crm, rana, stage="new", touched=clock.now() - timedelta(days=3))
    assert await neglected_leads(crm, datetime(2026, 12, 5, 10, 0, tzinfo=UTC)) == 0  # Saturday
    assert (
        await neglected_leads(crm, datetime(2026, 12, 4, 20, 0, tzinfo=UTC)) == 0
    )  # Friday evening
    assert await neglected_leads(crm, datetime(2026, 12, 7, 9, 0, tzinfo=UTC)) == 1


async def test_manager_gets_one_daily_digest_of_deals_still_cold(crm, clock, make_user):
    boss = await make_user("Maya", role="manager", identity=("telegram", "900"))
    rana = await make_user("Rana", manager=boss, identity=("telegram", "111"))
    omar = await make_user("Omar", manager=boss, identity=("telegram", "222"))
    await add_deal(crm, rana, stage="new", touched=clock.now() - timedelta(days=5), contact="Acme")
    await add_deal(
        crm, rana, stage="contacted", touched=clock.now() - timedelta(days=7), contact="Beta"
    )
    await add_deal(
        crm, omar, stage="proposal", touched=clock.now() - timedelta(days=9), contact="Gamma"
    )
    await add_deal(
        crm, omar, stage="proposal", touched=clock.now() - timedelta(days=6), contact="Delta"
    )

    assert await neglected_leads(crm, clock.now()) == 5  # four nudges and one digest
    assert await neglected_leads(crm, clock.now()) == 0
    (digest,) = await outbox_rows(crm, "neglect:manager:")
    assert digest.dedupe_key == f"neglect:manager:{boss.user_id}:2026-12-04@telegram:900"
    assert text(digest) == (
        "🧊 3 deals going cold on your team\n"
        "Rana (2)\n"
        "• Beta · Villa fit-out: no touch for 7 days in Contacted\n"
        "• Acme · Villa fit-out: no touch for 5 days in New\n"
        "Omar (1)\n"
        "• Gamma · Villa fit-out: no touch for 9 days in Proposal"
    )


# --- morning plan ----------------------------------------------------------------------------------


async def test_morning_plan_lists_today_overdue_and_payments(crm, clock, make_user):
    rana = await make_user("Rana", tz="Asia/Dubai", identity=("telegram", "111"))
    deal = await add_deal(crm, rana, contact="Layla")
    await add_task(
        crm, rana, datetime(2026, 12, 4, 7, 0, tzinfo=UTC), title="Call Layla", deal=deal
    )
    await add_task(crm, rana, datetime(2026, 12, 2, 7, 0, tzinfo=UTC), title="Send brochure")
    await add_task(crm, rana, datetime(2026, 12, 5, 7, 0, tzinfo=UTC), title="Tomorrow's call")
    won = await add_deal(crm, rana, contact="Omar", title="Office")
    await add_installment(crm, won, date(2026, 12, 4), amount_minor=250_000)

    assert await morning_plans(crm, datetime(2026, 12, 4, 4, 55, tzinfo=UTC)) == 0  # 08:55 Dubai
    assert await morning_plans(crm, datetime(2026, 12, 4, 5, 0, tzinfo=UTC)) == 1
    assert await morning_plans(crm, datetime(2026, 12, 4, 5, 5, tzinfo=UTC)) == 0
    (row,) = await outbox_rows(crm, "morning:")
    assert row.dedupe_key == f"morning:user:{rana.user_id}:2026-12-04@telegram:111"
    assert text(row) == (
        "☀️ Good morning, Rana! Your plan for Fri 4 Dec\n"
        "Today (1)\n"
        "• 11:00 Call Layla (Layla · Villa fit-out)\n"
        "Overdue (1)\n"
        "• Wed 2 Dec Send brochure\n"
        "Payments due (1)\n"
        "• INV-2026-0001 Omar: $2,500.00 due Fri 4 Dec"
    )


async def test_morning_plan_skips_days_off(crm, make_user):
    await make_user("Rana", identity=("telegram", "111"))
    assert await morning_plans(crm, datetime(2026, 12, 5, 9, 0, tzinfo=UTC)) == 0  # Saturday


async def plan_times(crm, start: datetime, hours: int) -> list[datetime]:
    """Run the morning scan every 5 minutes for `hours`; the times at which it queued a plan."""
    fired = []
    for step in range(hours * 12):
        at = start + timedelta(minutes=5 * step)
        if await morning_plans(crm, at):
            fired.append(at)
    return fired


async def test_dst_changes_neither_skip_nor_double_the_morning_plan(crm, make_user):
    rana = await make_user("Rana", tz="Europe/Berlin", identity=("telegram", "111"))
    await set_user(crm, rana, work_days="0,1,2,3,4,5,6")
    # Spring forward on Sunday 29 March 2026: 09:00 CEST = 07:00 UTC.
    assert await plan_times(crm, datetime(2026, 3, 28, 22, 0, tzinfo=UTC), 14) == [
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    ]
    # Fall back on Sunday 25 October 2026: 09:00 CET = 08:00 UTC.
    assert await plan_times(crm, datetime(2026, 10, 24, 22, 0, tzinfo=UTC), 14) == [
        datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    ]
    rows = await outbox_rows(crm, "morning:")
    assert [r.dedupe_key.split("@")[0] for r in rows] == [
        f"morning:user:{rana.user_id}:2026-03-29",
        f"morning:user:{rana.user_id}:2026-10-25",
    ]


# --- daily pipeline summary --------------------------------------------------------------------------


async def test_daily_summary_reports_the_team_pipeline_at_the_channel_time(crm, clock, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    outsider = await make_user("Zed")
    await add_team_channel(
        crm, "telegram:-100200", manager=boss, tz="Asia/Dubai", title="Dubai team"
    )
    yesterday = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    await add_deal(crm, rana, stage="new", value_minor=100_000, source="website", created=yesterday)
    await add_deal(
        crm,
        rana,
        stage="new",
        value_minor=50_000,
        source="referral",
        created=yesterday,
        touched=clock.now() - timedelta(days=3),
    )
    await add_deal(
        crm,
        boss,
        stage="proposal",
        value_minor=900_000,
        currency="EUR",
        source="website",
        created=yesterday,
    )
    await add_deal(crm, rana, stage="won", value_minor=700_000, closed=yesterday)
    await add_deal(crm, rana, stage="lost", value_minor=10_000, closed=yesterday)
    await add_deal(crm, outsider, stage="new", value_minor=999_999)  # another team: not counted
    await add_task(crm, rana, clock.now() - timedelta(days=1), title="Late call")
    paying = await add_deal(crm, rana, contact="Omar")
    await add_installment(
        crm, paying, date(2026, 12, 6), amount_minor=30_000, number="INV-2026-0001"
    )
    late = await add_deal(crm, rana, contact="Sami")
    await add_installment(
        crm, late, date(2026, 11, 30), amount_minor=20_000, number="INV-2026-0002"
    )

    assert await daily_summaries(crm, datetime(2026, 12, 4, 4, 55, tzinfo=UTC)) == 0
    assert await daily_summaries(crm, datetime(2026, 12, 4, 5, 0, tzinfo=UTC)) == 1  # 09:00 Dubai
    assert await daily_summaries(crm, datetime(2026, 12, 4, 5, 5, tzinfo=UTC)) == 0
    (row,) = await outbox_rows(crm, "summary:")
    assert row.address == "telegram:-100200"
    assert text(row) == (
        "📊 Dubai team: pipeline for Fri 4 Dec\n"
        "Open deals\n"
        "• New: 2 · $1,500.00\n"
        "• Proposal: 1 · €9,000.00\n"
        "New leads yesterday: 3 (website 2, referral 1)\n"
        "🏆 Won yesterday: 1 ($7,000.00)\n"
        "Lost yesterday: 1 ($100.00)\n"
        "🧊 Stalled deals: 1\n"
        "⏰ Overdue tasks: Rana 1\n"
        "💳 Collections due this week: 1 ($300.00)\n"
        "⚠️ Overdue payments: 1 ($200.00)"
    )


async def test_summary_is_skipped_on_weekends_and_when_switched_off(crm, make_user):
    await make_user("Rana")
    await add_team_channel(crm, "telegram:-1")
    await add_team_channel(crm, "telegram:-2", alert_summary=False)
    assert await daily_summaries(crm, datetime(2026, 12, 5, 9, 0, tzinfo=UTC)) == 0  # Saturday
    assert await daily_summaries(crm, datetime(2026, 12, 7, 9, 0, tzinfo=UTC)) == 1  # Monday
    (row,) = await outbox_rows(crm, "summary:")
    assert row.address == "telegram:-1" and "since Fri 4 Dec" in text(row)


# --- installments -------------------------------------------------------------------------------------


async def test_installment_reminders_before_on_the_day_and_escalation(crm, make_user):
    boss = await make_user("Maya", role="manager", identity=("telegram", "900"))
    rana = await make_user("Rana", manager=boss, identity=("telegram", "111"))
    await add_team_channel(crm, "telegram:-100200", manager=boss)
    deal = await add_deal(crm, rana, contact="Omar")
    inst = await add_installment(crm, deal, date(2026, 12, 10), amount_minor=100_000)

    async def on(day: int) -> list[str]:
        before = {r.dedupe_key for r in await outbox_rows(crm, "installment:")}
        await installment_reminders(crm, datetime(2026, 12, day, 10, 0, tzinfo=UTC))
        await installment_reminders(crm, datetime(2026, 12, day, 11, 0, tzinfo=UTC))  # rerun: no-op
        return sorted(
            r.dedupe_key.split(f"{inst.id}:2026-12-10:")[1]
            for r in await outbox_rows(crm, "installment:")
            if r.dedupe_key not in before
        )

    assert await on(6) == []
    assert await on(7) == ["before@telegram:111"]
    assert await on(9) == []
    assert await on(10) == ["due@telegram:111"]
    assert await on(11) == ["overdue:rep@telegram:111"]
    assert await on(12) == []
    assert await on(13) == ["overdue:manager@telegram:900"]
    assert await on(16) == []
    assert await on(17) == ["overdue:team@telegram:-100200"]
    assert await on(18) == []
    rows = {
        r.dedupe_key.split(":2026-12-10:")[1]: r for r in await outbox_rows(crm, "installment:")
    }
    assert (
        text(rows["before@telegram:111"]) == "💳 Omar pays $1,000.00 on Thu 10 Dec (INV-2026-0001)."
    )
    assert text(rows["overdue:manager@telegram:900"]) == (
        "⚠️ Rana's client Omar is 3 days late with $1,000.00 (INV-2026-0001)."
    )
    assert buttons(rows["due@telegram:111"]) == [
        f"go:pay:contract={inst.contract_id},invoice={inst.id}"
    ]


async def test_non_urgent_reminders_wait_out_quiet_hours(crm, make_user):
    rana = await make_user("Rana", tz="Asia/Dubai", identity=("telegram", "111"))
    await set_user(crm, rana, quiet_start=time(13, 0), quiet_end=time(14, 30))
    deal = await add_deal(crm, rana, contact="Omar")
    await add_installment(crm, deal, date(2026, 12, 7))
    await installment_reminders(crm, datetime(2026, 12, 4, 9, 15, tzinfo=UTC))  # 13:15 in Dubai
    (row,) = await outbox_rows(crm, "installment:")
    assert row.not_before == datetime(2026, 12, 4, 10, 30, tzinfo=UTC)  # 14:30 in Dubai


# --- housekeeping --------------------------------------------------------------------------------


async def test_housekeeping_prunes_old_delivered_rows_and_events_and_keeps_pending(crm, clock):
    """Sent and dead rows older than 30 days go, pending ones stay whatever their age; platform
    events are remembered for 7 days."""
    from conversations.messages import Reply
    from jobs.outbox import enqueue
    from jobs.scans import housekeeping

    async with crm.uow() as uow:
        for key in ("old-sent", "old-pending"):
            await enqueue(uow, key, ["telegram:1"], Reply.say(key), kind="test", not_before=uow.now)
        await uow.processed.seen("telegram", "u1", uow.now)
        await uow.commit()
    async with crm.uow() as uow:
        rows = {r.dedupe_key.split("@")[0]: r for r in await uow.outbox.matching("")}
        rows["old-sent"].status = "sent"
        await uow.commit()
    clock.advance(days=31)
    async with crm.uow() as uow:
        await enqueue(uow, "fresh", ["telegram:1"], Reply.say("fresh"), kind="test", not_before=uow.now)
        row = (await uow.outbox.matching("fresh"))[0]
        row.status = "sent"
        await uow.commit()
    assert await housekeeping(crm, clock.now()) == 0
    left = sorted(r.dedupe_key.split("@")[0] for r in await outbox_rows(crm))
    assert left == ["fresh", "old-pending"]
    async with crm.reader() as uow:
        assert not await uow.processed.exists("telegram", "u1")
