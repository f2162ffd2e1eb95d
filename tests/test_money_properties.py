"""Properties of the money rules: schedules always add up, allocation never over-pays or loses a
cent, and balances always equal total minus paid."""
import contextlib
from datetime import date

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.contracts import (
    allocate_oldest_first,
    contract_view,
    plan_schedule,
    record_payment,
    void_payment,
)
from handlers.errors import Conflict, InvalidInput, PaymentExceedsBalance
from storage.models import Allocation, Installment, Payment
from tests.contract_support import new_contract, row_counts

FREQUENCIES = st.sampled_from(["monthly", "weekly", "every_n_days"])


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(1, 10**13),
    count=st.integers(1, 120),
    down_share=st.floats(0, 0.99),
    frequency=FREQUENCIES,
    first_due=st.dates(date(2020, 1, 1), date(2040, 12, 31)),
)
def test_installments_always_sum_to_the_total_with_the_remainder_last(total, count, down_share, frequency, first_due):
    down = int(total * down_share)
    kwargs = dict(count=count, frequency=frequency, first_due=first_due, down_payment_minor=down, every_days=10)
    if total - down < count:
        with pytest.raises(InvalidInput) as err:
            plan_schedule(total, **kwargs)
        assert err.value.field == "count"
        return
    plan = plan_schedule(total, **kwargs)

    assert sum(p.amount_minor for p in plan) == total
    assert all(p.amount_minor >= 0 for p in plan)
    regular = [p for p in plan if p.seq > 0]
    assert [p.seq for p in regular] == list(range(1, count + 1))
    if down:
        assert (plan[0].seq, plan[0].amount_minor) == (0, down)
    else:
        assert plan[0].seq == 1
    part = (total - down) // count
    assert all(p.amount_minor == part for p in regular[:-1])
    assert 0 <= regular[-1].amount_minor - part < count  # only the last carries the remainder
    assert all(a.due_date < b.due_date for a, b in zip(regular, regular[1:]))


@given(
    owed=st.lists(st.integers(0, 10**9), min_size=1, max_size=30),
    share=st.floats(0, 1),
)
def test_allocation_fills_oldest_first_and_never_beyond_what_is_owed(owed, share):
    amount = int(sum(owed) * share)
    parts = allocate_oldest_first(amount, list(enumerate(owed)))
    assert sum(p for _, p in parts) == amount
    assert all(0 < p <= owed[i] for i, p in parts)
    touched = [i for i, _ in parts]
    assert touched == sorted(touched)
    # every invoice before the last one touched is paid in full
    for i, p in parts[:-1]:
        assert p == owed[i]


PAY = st.tuples(st.just("pay"), st.integers(1, 400_000), st.none())
PAY_CHOSEN = st.tuples(st.just("pay"), st.integers(1, 150_000), st.integers(0, 3))
VOID = st.tuples(st.just("void"), st.integers(0, 9), st.none())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    total=st.integers(4, 500_000),
    down=st.integers(0, 3),
    steps=st.lists(st.one_of(PAY, PAY_CHOSEN, VOID), min_size=1, max_size=8),
)
async def test_random_payment_sequences_keep_every_cent(crm, make_user, total, down, steps):
    down_payment = down * 7
    assume(total - down_payment >= 3)
    rana = await make_user("Rana")
    view = await new_contract(crm, rana, total_minor=total, down_payment_minor=down_payment,
                              down_payment_due=date(2026, 12, 1))
    contract_id = view.contract.id
    invoices = [i.installment.id for i in view.installments]
    payments: list[int] = []

    for kind, number, chosen in steps:
        if kind == "void":
            if payments:
                with contextlib.suppress(Conflict):  # voiding twice is refused
                    await void_payment(crm, rana, payments[number % len(payments)], reason="property test")
            continue
        before = await row_counts(crm)
        target = invoices[chosen % len(invoices)] if chosen is not None else None
        try:
            result = await record_payment(crm, rana, contract_id=contract_id, amount_minor=number, installment_id=target)
        except PaymentExceedsBalance:
            assert await row_counts(crm) == before
            continue
        payments.append(result.payment.id)
        assert sum(a for _, a in result.allocations) == number

    async with crm.reader() as uow:
        live = Payment.voided_at.is_(None)
        paid_total = (await uow.session.execute(
            select(func.coalesce(func.sum(Payment.amount_minor), 0)).where(Payment.contract_id == contract_id, live)
        )).scalar_one()
        allocated = (await uow.session.execute(
            select(func.coalesce(func.sum(Allocation.amount_minor), 0))
            .join(Payment, Payment.id == Allocation.payment_id)
            .where(Payment.contract_id == contract_id, live)
        )).scalar_one()
        per_invoice = (await uow.session.execute(
            select(Installment.amount_minor, func.coalesce(func.sum(Allocation.amount_minor), 0))
            .outerjoin(Allocation, Allocation.installment_id == Installment.id)
            .outerjoin(Payment, Payment.id == Allocation.payment_id)
            .where(Installment.contract_id == contract_id, (Payment.id.is_(None)) | live)
            .group_by(Installment.id, Installment.amount_minor)
        )).all()
    assert allocated == paid_total  # not a cent lost or invented
    assert all(on <= amount for amount, on in per_invoice)  # never over-paid
    final = await contract_view(crm, rana, contract_id)
    assert final.paid_minor == paid_total
    assert final.balance_minor == total - paid_total
    assert [i.status == "paid" for i in final.installments] == [i.outstanding_minor == 0 for i in final.installments]
