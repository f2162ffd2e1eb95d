"""/pay: pick a contract, apply the money oldest-first or to one invoice, see what is left."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from handlers.contacts import create_lead
from handlers.contracts import record_payment, win_deal_with_contract
from handlers.values import Money
from storage.models import Allocation, Payment
from tests.chat import all_rows, chat, count_rows, rana  # noqa: F401  (fixtures)


@pytest.fixture
async def contract(crm, rana):
    """$9,000 in three monthly invoices of $3,000: 15 Nov (overdue), 15 Dec, 15 Jan."""
    lead = await create_lead(crm, rana, name="Acme Trading", value=Money(9_000_00, "USD"),
                             next_step_at=crm.now() + timedelta(days=1))
    view = await win_deal_with_contract(crm, rana, lead.deal.id, count=3, frequency="monthly",
                                        first_due=date(2026, 11, 15))
    return view.contract


async def nothing_paid(crm) -> bool:
    return await count_rows(crm, Payment) == 0 and await count_rows(crm, Allocation) == 0


async def test_pay_oldest_first_shows_the_allocation_and_the_remaining_balance(chat, crm, contract):
    await chat.say("/pay")
    assert "Which contract?" in chat.last_text
    assert chat.labels == ["CTR-2026-0001 · Acme Trading · due $9,000.00"]
    await chat.say("acme")
    assert "Apply it to which invoice?" in chat.last_text
    assert chat.labels == [
        "Oldest open first",
        "INV-2026-0001 · 15 Nov · $3,000.00",
        "INV-2026-0002 · 15 Dec · $3,000.00",
        "INV-2026-0003 · 15 Jan · $3,000.00",
    ]
    await chat.press("Oldest open first")
    assert "💵 Amount received? Outstanding: $9,000.00 · next due $3,000.00" in chat.last_text
    await chat.say("4,500")
    assert "Paid on which day? (skip for today)" in chat.last_text
    await chat.press("Skip")
    await chat.press("Bank transfer")
    await chat.say("TRX-981")
    assert chat.last_text.startswith("Record this payment?\nContract: CTR-2026-0001 · Acme Trading")
    assert "Apply to: Oldest open first" in chat.last_text
    assert "Amount: $4,500.00" in chat.last_text and "Method: bank transfer" in chat.last_text
    assert await nothing_paid(crm)

    await chat.press("Confirm")
    assert chat.last_text == "\n".join([
        "✅ Payment of $4,500.00 recorded on CTR-2026-0001.",
        "• INV-2026-0001: $3,000.00",
        "• INV-2026-0002: $1,500.00",
        "Remaining balance: $4,500.00",
    ])
    [payment] = await all_rows(crm, Payment)
    assert (payment.amount_minor, payment.paid_on, payment.method, payment.reference) == (
        4_500_00, date(2026, 12, 4), "bank_transfer", "TRX-981")
    assert sorted(a.amount_minor for a in await all_rows(crm, Allocation)) == [1_500_00, 3_000_00]


async def test_overpayment_is_refused_in_the_chat_with_the_balance(chat, crm, contract):
    await chat.say("/pay acme")
    assert chat.asking == "invoice"
    await chat.say("1")  # oldest open first, by number
    await chat.say("10k")
    assert chat.texts[0].startswith(
        "⚠️ That's more than what is left: Contract CTR-2026-0001 has $9,000.00 outstanding. "
        "Record $9,000.00 or less.")
    assert chat.asking == "amount"
    await chat.say("9000")
    assert chat.asking == "paid_on"
    assert await nothing_paid(crm)


async def test_paying_one_invoice_refuses_more_than_it_owes(chat, crm, contract):
    await chat.say("/pay")
    await chat.say("Acme")
    await chat.press("INV-2026-0002")
    await chat.say("3500")
    assert "Invoice INV-2026-0002 has $3,000.00 outstanding. Record $3,000.00 or less." in chat.last_text
    await chat.say("3000")
    await chat.press("Yesterday")
    await chat.press("Cash")
    await chat.say("skip")
    assert "Apply to: INV-2026-0002 · 15 Dec · $3,000.00" in chat.last_text
    assert "Paid on: Thu 3 Dec 2026" in chat.last_text
    await chat.say("yes")
    assert "• INV-2026-0002: $3,000.00" in chat.last_text
    assert "Remaining balance: $6,000.00" in chat.last_text
    [payment] = await all_rows(crm, Payment)
    assert (payment.paid_on, payment.method, payment.reference) == (date(2026, 12, 3), "cash", None)


async def test_pay_bad_input_at_every_step_keeps_earlier_answers(chat, crm, contract):
    await chat.say("/pay")
    await chat.say("Globex")
    assert "No open contract matches “Globex”" in chat.last_text and chat.asking == "contract"
    await chat.say("CTR-2026-0001")
    await chat.say("the big one")
    assert "Please pick one of: Oldest open first" in chat.last_text and chat.asking == "invoice"
    await chat.press("Oldest open first")
    for bad, why in (("abc", "couldn't read “abc” as an amount"), ("0", "more than zero"),
                     ("AED 500", "Contract CTR-2026-0001 is in USD. Type the amount in USD, for example $500.00.")):
        await chat.say(bad)
        assert why in chat.last_text and chat.asking == "amount", bad
    await chat.say("1000")
    await chat.say("tomorrow")
    assert "Sat 5 Dec 2026 is in the future. Pick today or an earlier day." in chat.last_text
    await chat.say("next week")
    assert "is in the future" in chat.last_text and chat.asking == "paid_on"
    await chat.say("today")
    await chat.say("bitcoin")
    assert "Please pick one of: Bank transfer, Cash, Card, Cheque, Other" in chat.last_text
    await chat.say("card")
    await chat.say("skip")
    assert chat.asking == "__confirm__"
    assert "Contract: CTR-2026-0001 · Acme Trading · due $9,000.00" in chat.last_text
    assert "Amount: $1,000.00" in chat.last_text and "Method: card" in chat.last_text
    assert await nothing_paid(crm)


async def test_back_from_the_confirmation_and_cancel(chat, crm, contract):
    await chat.send(action=f"go:pay:contract={contract.id}")  # 💵 Record payment on a card
    assert chat.asking == "invoice"
    await chat.press("Oldest open first")
    await chat.say("500")
    for _ in range(3):
        await chat.say("skip")
    assert chat.asking == "__confirm__"
    await chat.press("Back")
    assert chat.asking == "reference"
    await chat.say("Cheque 0042")
    assert "Reference: Cheque 0042" in chat.last_text
    await chat.press("Cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /pay."
    assert await nothing_paid(crm)


async def test_a_fully_paid_contract_is_not_offered(chat, crm, contract):
    await chat.say("/pay")
    await chat.say("Acme")
    await chat.press("Oldest open first")
    await chat.say("9000")
    for _ in range(3):
        await chat.say("skip")
    await chat.say("yes")
    assert "Remaining balance: $0.00" in chat.last_text
    await chat.say("/pay")
    assert chat.labels == []
    await chat.say("Acme")
    assert "No open contract matches “Acme”" in chat.last_text


async def test_an_old_pay_button_on_a_paid_contract_says_so(chat, crm, rana, contract):
    await record_payment(crm, rana, contract_id=contract.id, amount_minor=9_000_00)
    await chat.send(action=f"go:pay:contract={contract.id}")
    assert chat.texts[0].startswith("⚠️ CTR-2026-0001 is fully paid. Pick another contract")
    assert chat.asking == "contract"
    assert await count_rows(crm, Payment) == 1
