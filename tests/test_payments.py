"""Payments: oldest-first allocation, refusals that write nothing, voids, derived balances."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from handlers.contracts import (
    contract_view,
    installments_due,
    list_contracts,
    open_invoices,
    record_payment,
    void_payment,
)
from handlers.errors import Conflict, InvalidInput, NotFound, PaymentExceedsBalance
from storage.models import Allocation
from tests.contract_support import collect_events, installment_statuses, new_contract, new_deal, row_counts
from handlers.contracts import win_deal_with_contract


async def test_payment_goes_to_the_oldest_open_invoices_first(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)  # 3 x $1,000.00 due 10 Dec, 10 Jan, 10 Feb
    events = collect_events(crm)

    result = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=150_000,
                                  method="bank transfer", reference="TT-88")

    assert result.allocations == [("INV-2026-0001", 100_000), ("INV-2026-0002", 50_000)]
    assert result.balance_minor == 150_000
    assert (result.payment.paid_on, result.payment.method, result.payment.currency) == (date(2026, 12, 4), "bank transfer", "USD")
    assert [i.status for i in result.contract.installments] == ["paid", "partially_paid", "open"]
    assert [i.outstanding_minor for i in result.contract.installments] == [0, 50_000, 100_000]
    assert result.contract.next_due.invoice_number == "INV-2026-0002"
    assert await installment_statuses(crm, view.contract.id) == ["paid", "partially_paid", "open"]
    assert events == [("payment_recorded", {"payment_id": result.payment.id, "contract_id": view.contract.id})]


async def test_exact_payment_settles_the_contract(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=100_000)
    result = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=200_000)
    assert result.allocations == [("INV-2026-0002", 100_000), ("INV-2026-0003", 100_000)]
    assert (result.balance_minor, result.contract.paid_minor, result.contract.next_due) == (0, 300_000, None)
    assert await installment_statuses(crm, view.contract.id) == ["paid", "paid", "paid"]
    assert await list_contracts(crm, rana) == []  # open only by default
    assert [v.contract.number for v in await list_contracts(crm, rana, open_only=False)] == ["CTR-2026-0001"]
    with pytest.raises(PaymentExceedsBalance, match="fully paid"):
        await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=1)


async def test_overpayment_is_refused_with_the_balance_and_nothing_written(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=120_000)
    before = await row_counts(crm)

    with pytest.raises(PaymentExceedsBalance) as err:
        await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=180_001)

    assert str(err.value) == (
        "That's more than what is left: contract CTR-2026-0001 has $1,800.00 outstanding. "
        "Record $1,800.00 or less."
    )
    assert err.value.field == "amount"
    assert await row_counts(crm) == before
    assert await installment_statuses(crm, view.contract.id) == ["paid", "partially_paid", "open"]


@pytest.mark.parametrize(
    "kwargs, field, text",
    [
        (dict(amount_minor=10_000, currency="EUR"), "currency", "is in USD"),
        (dict(amount_minor=10_000, currency="ZZZ"), "currency", "not a currency code"),
        (dict(amount_minor=0), "amount", "more than zero, for example $500.00"),
        (dict(amount_minor=-100), "amount", "more than zero"),
        (dict(amount_minor=10_000, paid_on=date(2026, 12, 5)), "paid_on", "can't be in the future"),
    ],
)
async def test_bad_payments_are_refused_and_write_nothing(crm, make_user, kwargs, field, text):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    before = await row_counts(crm)
    with pytest.raises(InvalidInput) as err:
        await record_payment(crm, rana, contract_id=view.contract.id, **kwargs)
    assert err.value.field == field and text in str(err.value)
    assert await row_counts(crm) == before


async def test_a_chosen_invoice_takes_the_whole_payment_and_no_more_than_it_owes(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    third = view.installments[2].installment.id

    result = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=40_000, installment_id=third)
    assert result.allocations == [("INV-2026-0003", 40_000)]
    assert await installment_statuses(crm, view.contract.id) == ["open", "open", "partially_paid"]

    before = await row_counts(crm)
    with pytest.raises(PaymentExceedsBalance, match="INV-2026-0003 has only \\$600.00 left"):
        await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=60_001, installment_id=third)
    with pytest.raises(NotFound, match="no invoice #9999"):
        await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=100, installment_id=9999)
    assert await row_counts(crm) == before


async def test_void_reopens_what_the_payment_paid(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    first = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=150_000)
    await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=20_000)
    events = collect_events(crm)

    after = await void_payment(crm, rana, first.payment.id, reason="Cheque bounced")

    assert after.paid_minor == 20_000 and after.balance_minor == 280_000
    # the later payment keeps its own allocation (it went to the second invoice); nothing moves
    assert await installment_statuses(crm, view.contract.id) == ["open", "partially_paid", "open"]
    assert [i.paid_minor for i in after.installments] == [0, 20_000, 0]
    assert events == [("payment_voided", {"payment_id": first.payment.id, "contract_id": view.contract.id})]
    async with crm.reader() as uow:
        payment = await uow.contracts.payment(first.payment.id)
        assert (payment.voided_at, payment.voided_by_id, payment.void_reason) == (crm.now(), rana.user_id, "Cheque bounced")
        # the allocations stay on record; they just stop counting
        kept = (await uow.session.execute(select(Allocation).where(Allocation.payment_id == payment.id))).scalars()
        assert sorted(a.amount_minor for a in kept) == [50_000, 100_000]

    with pytest.raises(Conflict, match="already voided"):
        await void_payment(crm, rana, first.payment.id, reason="again")
    with pytest.raises(InvalidInput) as err:
        await void_payment(crm, rana, first.payment.id + 1, reason="  ")
    assert err.value.field == "reason"
    # now a payment the voided one used to cover fits again
    again = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=280_000)
    assert again.balance_minor == 0


async def test_balances_and_overdue_follow_the_clock(crm, make_user, clock):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)  # due 10 Dec, 10 Jan, 10 Feb
    await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=30_000)
    assert (await contract_view(crm, rana, view.contract.id)).overdue_minor == 0

    clock.advance(days=7)  # 11 Dec: the first invoice is a day late
    late = await contract_view(crm, rana, view.contract.id)
    assert [i.status for i in late.installments] == ["overdue", "open", "open"]
    assert (late.paid_minor, late.balance_minor, late.overdue_minor) == (30_000, 270_000, 70_000)
    assert late.next_due.invoice_number == "INV-2026-0001"

    clock.advance(days=31)  # 11 Jan
    later = await contract_view(crm, rana, view.contract.id)
    assert [i.status for i in later.installments] == ["overdue", "overdue", "open"]
    assert later.overdue_minor == 170_000
    due = await installments_due(crm, on_or_before=date(2027, 1, 10))
    assert [(i.invoice_number, i.outstanding_minor, i.status, i.contract_number) for i in due] == [
        ("INV-2026-0001", 70_000, "overdue", "CTR-2026-0001"),
        ("INV-2026-0002", 100_000, "overdue", "CTR-2026-0001"),
    ]
    assert await installments_due(crm, on_or_before=date(2027, 1, 10), statuses=("paid",)) == []


async def test_overdue_is_judged_in_the_viewers_time_zone(crm, make_user, clock):
    from datetime import datetime, timezone

    rana = await make_user("Rana")
    boss = await make_user("Kenji", role="admin", tz="Asia/Tokyo")
    view = await new_contract(crm, rana)  # first due 10 Dec
    clock.set(datetime(2026, 12, 10, 20, 0, tzinfo=timezone.utc))  # 11 Dec 05:00 in Tokyo
    assert (await contract_view(crm, rana, view.contract.id)).installments[0].status == "open"
    assert (await contract_view(crm, boss, view.contract.id)).installments[0].status == "overdue"


async def test_open_invoices_and_contract_search_respect_visibility(crm, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    sami = await make_user("Sami")
    mine = await new_contract(crm, rana)
    deal_id = await new_deal(crm, sami, title="Warehouse racks", contact_name="Noor Trading")
    theirs = await win_deal_with_contract(crm, sami, deal_id, total_minor=90_000, count=2, frequency="weekly",
                                          first_due=date(2026, 12, 7))

    assert [i.invoice_number for i in await open_invoices(crm, rana)] == ["INV-2026-0001", "INV-2026-0002", "INV-2026-0003"]
    assert [i.invoice_number for i in await open_invoices(crm, rana, due_before=date(2027, 1, 10))] == ["INV-2026-0001"]
    assert [i.invoice_number for i in await open_invoices(crm, sami)] == ["INV-2026-0004", "INV-2026-0005"]
    with pytest.raises(NotFound):
        await open_invoices(crm, sami, contract_id=mine.contract.id)
    assert [v.contract.number for v in await list_contracts(crm, boss)] == ["CTR-2026-0001"]
    assert [v.contract.number for v in await list_contracts(crm, sami, query="noor")] == [theirs.contract.number]
    assert await list_contracts(crm, sami, query="villa") == []

    for call in (
        record_payment(crm, sami, contract_id=mine.contract.id, amount_minor=100),
        contract_view(crm, sami, mine.contract.id),
    ):
        with pytest.raises(NotFound, match="No contract"):
            await call
    paid = await record_payment(crm, boss, contract_id=mine.contract.id, amount_minor=100)
    with pytest.raises(NotFound):
        await void_payment(crm, sami, paid.payment.id, reason="not mine")
    assert (await void_payment(crm, boss, paid.payment.id, reason="typo")).paid_minor == 0


async def test_payment_dates_default_to_the_reps_today(crm, make_user, clock):
    from datetime import datetime, timezone

    clock.set(datetime(2026, 12, 4, 22, 30, tzinfo=timezone.utc))  # already 5 Dec in Dubai
    omar = await make_user("Omar", tz="Asia/Dubai")
    view = await new_contract(crm, omar)
    result = await record_payment(crm, omar, contract_id=view.contract.id, amount_minor=100,
                                  paid_on=None)
    assert result.payment.paid_on == date(2026, 12, 5)
    back = await record_payment(crm, omar, contract_id=view.contract.id, amount_minor=100,
                                paid_on=date(2026, 12, 5) - timedelta(days=30))
    assert back.payment.paid_on == date(2026, 11, 5)


async def test_concurrent_payments_cannot_overpay_together(crm, make_user):
    """Two reps record the full balance at the same moment: exactly one succeeds."""
    import asyncio

    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    view = await new_contract(crm, rana)
    results = await asyncio.gather(
        record_payment(crm, rana, contract_id=view.contract.id, amount_minor=300_000),
        record_payment(crm, boss, contract_id=view.contract.id, amount_minor=300_000),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["PaymentExceedsBalance", "PaymentResult"]
    final = await contract_view(crm, rana, view.contract.id)
    assert (final.paid_minor, final.balance_minor) == (300_000, 0)
