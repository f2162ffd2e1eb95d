"""Contracts: schedules, winning a deal with a contract, gap-free invoice numbers, visibility."""
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from handlers.contracts import (
    PlannedInstallment,
    contract_view,
    contracts_for_deal,
    plan_schedule,
    preview_contract,
    win_deal_with_contract,
)
from handlers.errors import Conflict, InvalidInput, NotFound
from storage.models import Deal, StageChange
from tests.contract_support import collect_events, new_contract, new_deal, row_counts


def amounts(plan):
    return [p.amount_minor for p in plan]


def dues(plan):
    return [p.due_date for p in plan]


# --- schedules ----------------------------------------------------------------------------


def test_monthly_keeps_the_day_clamped_to_month_end():
    plan = plan_schedule(400_00, count=4, frequency="monthly", first_due=date(2027, 1, 31))
    assert dues(plan) == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]
    leap = plan_schedule(200_00, count=2, frequency="monthly", first_due=date(2027, 12, 31))
    assert dues(leap) == [date(2027, 12, 31), date(2028, 1, 31)]
    assert dues(plan_schedule(300, count=3, frequency="monthly", first_due=date(2028, 1, 30))) == [
        date(2028, 1, 30), date(2028, 2, 29), date(2028, 3, 30),
    ]


def test_weekly_every_n_days_and_explicit_dates():
    weekly = plan_schedule(300, count=3, frequency="weekly", first_due=date(2026, 12, 28))
    assert dues(weekly) == [date(2026, 12, 28), date(2027, 1, 4), date(2027, 1, 11)]
    fortnightly = plan_schedule(300, count=3, frequency="every_n_days", every_days=14, first_due=date(2026, 12, 1))
    assert dues(fortnightly) == [date(2026, 12, 1), date(2026, 12, 15), date(2026, 12, 29)]
    chosen = [date(2027, 1, 5), date(2027, 3, 1), date(2027, 7, 20)]
    explicit = plan_schedule(1000, frequency="explicit", dates=chosen)
    assert dues(explicit) == chosen and [p.seq for p in explicit] == [1, 2, 3]


def test_remainder_goes_to_the_last_installment_and_down_payment_is_seq_zero():
    plan = plan_schedule(1000_00, count=3, frequency="monthly", first_due=date(2027, 1, 10),
                         down_payment_minor=100_01, down_payment_due=date(2026, 12, 20))
    assert plan[0] == PlannedInstallment(0, date(2026, 12, 20), 100_01)
    assert amounts(plan) == [100_01, 299_99, 299_99, 300_01]
    assert sum(amounts(plan)) == 1000_00
    no_down_due = plan_schedule(1000, count=2, frequency="weekly", first_due=date(2027, 1, 10), down_payment_minor=100)
    assert no_down_due[0].due_date == date(2027, 1, 10)


@pytest.mark.parametrize(
    "total, kwargs, field",
    [
        (0, dict(count=3, frequency="monthly", first_due=date(2027, 1, 1)), "total"),
        (-5, dict(count=3, frequency="monthly", first_due=date(2027, 1, 1)), "total"),
        (1000, dict(count=3, frequency="monthly", first_due=date(2027, 1, 1), down_payment_minor=1000), "down_payment"),
        (1000, dict(count=3, frequency="monthly", first_due=date(2027, 1, 1), down_payment_minor=-1), "down_payment"),
        (1000, dict(count=0, frequency="monthly", first_due=date(2027, 1, 1)), "count"),
        (1000, dict(count=121, frequency="monthly", first_due=date(2027, 1, 1)), "count"),
        (2, dict(count=3, frequency="monthly", first_due=date(2027, 1, 1)), "count"),
        (1000, dict(count=3, frequency="yearly", first_due=date(2027, 1, 1)), "frequency"),
        (1000, dict(count=3, frequency="monthly"), "first_due"),
        (1000, dict(count=3, frequency="every_n_days", first_due=date(2027, 1, 1)), "every_days"),
        (1000, dict(count=3, frequency="every_n_days", every_days=0, first_due=date(2027, 1, 1)), "every_days"),
        (1000, dict(frequency="explicit", dates=[]), "dates"),
        (1000, dict(frequency="explicit", dates=[date(2027, 2, 1), date(2027, 1, 1)]), "dates"),
        (1000, dict(frequency="explicit", dates=[date(2027, 1, 1), date(2027, 1, 1)]), "dates"),
        (1000, dict(count=3, frequency="explicit", dates=[date(2027, 1, 1)]), "count"),
        (1000, dict(count=2, frequency="monthly", first_due=date(2027, 1, 1), down_payment_minor=10,
                    down_payment_due=date(2027, 1, 2)), "down_payment"),
    ],
)
def test_bad_schedules_are_refused_with_the_field_named(total, kwargs, field):
    with pytest.raises(InvalidInput) as err:
        plan_schedule(total, **kwargs)
    assert err.value.field == field


# --- winning a deal with a contract ----------------------------------------------------------


async def test_win_creates_contract_invoices_and_stage_history(crm, make_user):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana, value_minor=1_200_000)
    events = collect_events(crm)

    view = await win_deal_with_contract(
        crm, rana, deal_id, count=3, frequency="monthly", first_due=date(2027, 1, 31),
        down_payment_minor=300_000, notes="Signed at the site office",
    )

    assert view.contract.number == "CTR-2026-0001"
    assert view.contract.total_minor == 1_200_000 and view.contract.currency == "USD"
    assert view.contract.signed_on == date(2026, 12, 4)
    assert [(i.invoice_number, i.installment.due_date, i.installment.amount_minor, i.status) for i in view.installments] == [
        ("INV-2026-0001", date(2027, 1, 31), 300_000, "open"),
        ("INV-2026-0002", date(2027, 1, 31), 300_000, "open"),
        ("INV-2026-0003", date(2027, 2, 28), 300_000, "open"),
        ("INV-2026-0004", date(2027, 3, 31), 300_000, "open"),
    ]
    assert (view.deal_title, view.contact_name, view.owner_id) == ("Villa fit-out", "Layla Haddad", rana.user_id)
    assert (view.paid_minor, view.balance_minor, view.overdue_minor) == (0, 1_200_000, 0)
    assert view.next_due.invoice_number == "INV-2026-0001"
    async with crm.reader() as uow:
        deal = await uow.session.get(Deal, deal_id)
        assert deal.stage == "won" and deal.closed_at == crm.now() and deal.stage_changed_at == crm.now()
        history = (await uow.session.execute(select(StageChange).where(StageChange.deal_id == deal_id))).scalars()
        assert [(h.from_stage, h.to_stage, h.actor_id) for h in history] == [("negotiation", "won", rana.user_id)]
    contract_id = view.contract.id
    assert ("deal_won", {"deal_id": deal_id}) in events
    assert ("deal_moved", {"deal_id": deal_id, "from_stage": "negotiation", "to_stage": "won"}) in events
    assert ("contract_created", {"contract_id": contract_id}) in events


async def test_preview_shows_the_numbers_the_contract_then_gets_and_writes_nothing(crm, make_user):
    rana = await make_user("Rana")
    await new_contract(crm, rana)  # takes CTR-2026-0001 and INV-2026-0001..0003
    deal_id = await new_deal(crm, rana, title="Office chairs", value_minor=100_000)
    before = await row_counts(crm)

    preview = await preview_contract(crm, rana, deal_id, count=2, frequency="weekly", first_due=date(2026, 12, 11))

    assert await row_counts(crm) == before
    assert preview.invoice_numbers == ["INV-2026-0004", "INV-2026-0005"]
    assert preview.contract_number == "CTR-2026-0002"
    assert (preview.total_minor, preview.currency, preview.contact_name) == (100_000, "USD", "Layla Haddad")
    assert amounts(preview.installments) == [50_000, 50_000]
    view = await win_deal_with_contract(crm, rana, deal_id, count=2, frequency="weekly", first_due=date(2026, 12, 11))
    assert [i.invoice_number for i in view.installments] == preview.invoice_numbers


async def test_invoice_numbers_have_no_gaps_after_a_failed_transaction_and_restart_each_year(crm, make_user, clock):
    rana = await make_user("Rana")
    await new_contract(crm, rana, count=2)

    async def broken_outbox(_uow, _events):
        raise RuntimeError("outbox unavailable")

    deal_id = await new_deal(crm, rana, title="Lost in transit")
    crm.hooks.append(broken_outbox)
    with pytest.raises(RuntimeError):
        await win_deal_with_contract(crm, rana, deal_id, count=3, frequency="monthly", first_due=date(2027, 1, 1))
    crm.hooks.remove(broken_outbox)

    after_failure = await win_deal_with_contract(crm, rana, deal_id, count=1, frequency="monthly", first_due=date(2027, 1, 1))
    assert after_failure.contract.number == "CTR-2026-0002"
    assert [i.invoice_number for i in after_failure.installments] == ["INV-2026-0003"]

    clock.set(datetime(2027, 1, 2, 10, 0, tzinfo=timezone.utc))
    next_year = await new_contract(crm, rana, count=2, first_due=date(2027, 2, 1))
    assert next_year.contract.number == "CTR-2027-0001"
    assert [i.invoice_number for i in next_year.installments] == ["INV-2027-0001", "INV-2027-0002"]


async def test_numbers_follow_the_reps_own_new_year(crm, make_user, clock):
    """At 21:00 UTC on 31 Dec it is already 1 Jan in Dubai: a Dubai rep issues 2027 numbers."""
    clock.set(datetime(2026, 12, 31, 21, 0, tzinfo=timezone.utc))
    dubai = await make_user("Omar", tz="Asia/Dubai")
    view = await new_contract(crm, dubai, first_due=date(2027, 1, 15))
    assert view.contract.number == "CTR-2027-0001" and view.contract.signed_on == date(2027, 1, 1)


async def test_already_won_deal_gets_a_contract_without_a_second_stage_change(crm, make_user):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana, stage="won")
    events = collect_events(crm)
    view = await win_deal_with_contract(crm, rana, deal_id, count=1, frequency="monthly", first_due=date(2026, 12, 20))
    assert view.contract.deal_id == deal_id
    async with crm.reader() as uow:
        assert (await uow.session.execute(select(StageChange))).scalars().all() == []
    assert [name for name, _ in events] == ["contract_created"]


async def test_lost_deal_or_second_contract_is_a_conflict_and_writes_nothing(crm, make_user):
    rana = await make_user("Rana")
    lost = await new_deal(crm, rana, stage="lost")
    before = await row_counts(crm)
    with pytest.raises(Conflict, match="is lost"):
        await win_deal_with_contract(crm, rana, lost, count=2, frequency="monthly", first_due=date(2027, 1, 1))
    assert await row_counts(crm) == before

    view = await new_contract(crm, rana)
    before = await row_counts(crm)
    with pytest.raises(Conflict, match="already has contract CTR-2026-0001"):
        await win_deal_with_contract(crm, rana, view.contract.deal_id, count=2, frequency="monthly", first_due=date(2027, 1, 1))
    assert await row_counts(crm) == before


async def test_bad_terms_leave_the_deal_open_and_no_rows(crm, make_user):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana)
    before = await row_counts(crm)
    cases = [
        (dict(count=0, frequency="monthly", first_due=date(2027, 1, 1)), "count"),
        (dict(count=2, frequency="monthly", first_due=date(2027, 1, 1), currency="XYZ"), "currency"),
        (dict(count=2, frequency="monthly", first_due=date(2027, 1, 1), signed_on=date(2026, 12, 5)), "signed_on"),
        (dict(count=2, frequency="monthly", first_due=date(2027, 1, 1), total_minor=0), "total"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as err:
            await win_deal_with_contract(crm, rana, deal_id, **kwargs)
        assert err.value.field == field
    assert await row_counts(crm) == before
    async with crm.reader() as uow:
        assert (await uow.session.get(Deal, deal_id)).stage == "negotiation"


async def test_zero_value_deal_needs_a_total(crm, make_user):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana, value_minor=0)
    with pytest.raises(InvalidInput) as err:
        await preview_contract(crm, rana, deal_id, count=2, frequency="monthly", first_due=date(2027, 1, 1))
    assert err.value.field == "total"
    view = await win_deal_with_contract(crm, rana, deal_id, total_minor=5000, currency="aed", count=2,
                                        frequency="monthly", first_due=date(2027, 1, 1))
    assert (view.contract.total_minor, view.contract.currency) == (5000, "AED")


async def test_reps_see_only_their_contracts_and_managers_their_team(crm, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    sami = await make_user("Sami")
    view = await new_contract(crm, rana)
    deal_id = view.contract.deal_id

    for call in (
        contract_view(crm, sami, view.contract.id),
        contracts_for_deal(crm, sami, deal_id),
        preview_contract(crm, sami, await new_deal(crm, rana), count=1, frequency="monthly", first_due=date(2027, 1, 1)),
    ):
        with pytest.raises(NotFound):
            await call
    other_deal = await new_deal(crm, rana, title="Second")
    with pytest.raises(NotFound, match="No deal"):
        await win_deal_with_contract(crm, sami, other_deal, count=1, frequency="monthly", first_due=date(2027, 1, 1))

    assert (await contract_view(crm, boss, view.contract.id)).balance_minor == 300_000
    assert [v.contract.number for v in await contracts_for_deal(crm, rana, deal_id)] == ["CTR-2026-0001"]
    assert await contracts_for_deal(crm, rana, other_deal) == []


async def test_concurrent_contracts_get_consecutive_numbers(crm, make_user):
    """Several reps signing at once: every invoice number is used exactly once, no gaps."""
    import asyncio

    reps = [await make_user(f"Rep {i}") for i in range(4)]
    deals = [await new_deal(crm, rep, title=f"Deal {i}") for i, rep in enumerate(reps)]
    views = await asyncio.gather(*(
        win_deal_with_contract(crm, rep, deal_id, count=3, frequency="weekly", first_due=date(2026, 12, 11))
        for rep, deal_id in zip(reps, deals)
    ))
    assert sorted(v.contract.number for v in views) == [f"CTR-2026-000{n}" for n in range(1, 5)]
    numbers = sorted(i.invoice_number for v in views for i in v.installments)
    assert numbers == [f"INV-2026-{n:04d}" for n in range(1, 13)]
    for view in views:  # each contract's invoices are one consecutive block
        mine = [int(i.invoice_number[-4:]) for i in view.installments]
        assert mine == list(range(mine[0], mine[0] + 3))
