"""/move a deal through the pipeline, and /won: the contract wizard with its full schedule."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from conversations.messages import Inbound
from handlers.contacts import create_lead
from handlers.values import Money
from storage.models import ConversationState, Contract, Deal, Installment, StageChange
from tests.chat import all_rows, chat, count_rows, rana  # noqa: F401  (fixtures)


@pytest.fixture
async def acme(crm, rana):
    """Rana's open deal with Acme Trading, worth $12,000."""
    return await create_lead(crm, rana, name="Acme Trading", company="Acme", value=Money(12_000_00, "USD"),
                             next_step_at=crm.now() + timedelta(days=1))


async def deal_row(crm) -> Deal:
    [deal] = await all_rows(crm, Deal)
    return deal


# --- /move --------------------------------------------------------------------------------------


async def test_move_picks_the_deal_and_offers_the_other_stages(chat, crm, acme):
    await chat.say("/move")
    assert "Which deal?" in chat.last_text
    assert chat.labels == ["Acme Trading (Acme) · New"]
    await chat.say("acme")  # one match: no need to pick
    assert "Move it to which stage?" in chat.last_text
    assert chat.labels == ["Contacted", "Proposal", "Negotiation", "🎉 Won", "❌ Lost"]
    await chat.press("Proposal")
    assert chat.last_text == "➡️ Acme Trading (Acme) is now Proposal."
    deal = await deal_row(crm)
    assert deal.stage == "proposal"
    assert [(c.from_stage, c.to_stage) for c in await all_rows(crm, StageChange)][-1] == ("new", "proposal")


async def test_move_stage_typed_by_name_or_number_and_bad_input_reasked(chat, crm, acme):
    await chat.say("/move")
    await chat.say("nobody")
    assert "No open deal matches “nobody”" in chat.last_text and chat.asking == "deal"
    await chat.press("Acme Trading")
    await chat.say("Closed")
    assert "Please pick one of: Contacted, Proposal, Negotiation" in chat.last_text
    assert chat.asking == "stage"
    assert (await deal_row(crm)).stage == "new"
    await chat.say("3")  # the third option: Negotiation
    assert "is now Negotiation" in chat.last_text
    assert (await deal_row(crm)).stage == "negotiation"


async def test_move_to_lost_asks_a_reason(chat, crm, acme):
    await chat.say("/move Acme")  # the one deal matching is picked from the command
    assert chat.asking == "stage"
    await chat.say("lost")
    assert "Why was it lost?" in chat.last_text and chat.asking == "lost_reason"
    assert (await deal_row(crm)).stage == "new"
    await chat.say("skip")
    assert "This one is needed." in chat.last_text
    await chat.say("Went with a cheaper competitor")
    assert chat.last_text == "➡️ Acme Trading (Acme) is now Lost."
    deal = await deal_row(crm)
    assert (deal.stage, deal.lost_reason) == ("lost", "Went with a cheaper competitor")


async def test_move_back_and_cancel(chat, crm, acme):
    await chat.say("/move")
    await chat.say("Acme")
    await chat.say("lost")
    await chat.say("back")
    assert chat.asking == "stage"
    await chat.say("back")
    assert chat.asking == "deal"
    await chat.say("Acme")
    await chat.say("cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /move."
    assert (await deal_row(crm)).stage == "new"


async def test_move_to_won_hands_over_to_won_with_the_deal_chosen(chat, crm, acme):
    await chat.send(action=f"go:move:deal={acme.deal.id}")  # the ➡️ Move button on a card
    assert chat.asking == "stage"
    await chat.press("Won")
    assert chat.texts[0] == "🎉 Won! Let's set up the contract."
    assert "Contract total? Skip to use the deal value, $12,000.00." in chat.last_text
    assert chat.asking == "total"
    assert (await deal_row(crm)).stage == "new"  # not won until the contract is confirmed
    [state] = await all_rows(crm, ConversationState)
    assert (state.flow, state.answers) == ("won", {"deal": acme.deal.id})


# --- /won ---------------------------------------------------------------------------------------


async def test_won_shows_the_full_schedule_with_invoice_numbers_before_saving(chat, crm, acme):
    await chat.say("/won")
    await chat.say("Acme")
    await chat.say("skip")  # total: the deal value
    await chat.say("2000")  # down payment
    await chat.press("Monthly")
    await chat.press("3")  # quick answer: 3 installments
    await chat.say("15 Jan")
    assert chat.asking == "__confirm__"
    assert chat.last_text == "\n".join([
        "🎉 Acme Trading (Acme) — Acme Trading",
        "Contract CTR-2026-0001 · total $12,000.00",
        "• INV-2026-0001 · Fri 15 Jan 2027 · $2,000.00 (down payment)",
        "• INV-2026-0002 · Fri 15 Jan 2027 · $3,333.33",
        "• INV-2026-0003 · Mon 15 Feb 2027 · $3,333.33",
        "• INV-2026-0004 · Mon 15 Mar 2027 · $3,333.34",
        "Mark the deal won and create this schedule?",
    ])
    assert chat.labels == ["✅ Confirm", "⬅️ Back", "✖️ Cancel"]
    assert await count_rows(crm, Contract) == 0 and (await deal_row(crm)).stage == "new"

    await chat.press("Confirm")
    assert chat.last_text == "\n".join([
        "🏆 Deal won! Contract CTR-2026-0001 for Acme Trading created.",
        "4 invoices, balance $12,000.00",
        "Next due: INV-2026-0001 on 15 Jan 2027",
    ])
    assert chat.labels == ["💵 Record payment"]
    assert (await deal_row(crm)).stage == "won"
    [contract] = await all_rows(crm, Contract)
    assert (contract.number, contract.total_minor) == ("CTR-2026-0001", 12_000_00)
    rows = await all_rows(crm, Installment)
    assert [(i.invoice_number, i.due_date, i.amount_minor) for i in rows] == [
        ("INV-2026-0001", date(2027, 1, 15), 2_000_00),
        ("INV-2026-0002", date(2027, 1, 15), 3_333_33),
        ("INV-2026-0003", date(2027, 2, 15), 3_333_33),
        ("INV-2026-0004", date(2027, 3, 15), 3_333_34),
    ]


async def test_won_bad_input_at_every_step(chat, crm, acme):
    await chat.say("/won")
    await chat.say("Globex")
    assert "No open deal matches “Globex”" in chat.last_text and chat.asking == "deal"
    await chat.say("Acme")
    await chat.say("lots")
    assert "couldn't read “lots” as an amount" in chat.last_text and chat.asking == "total"
    await chat.say("0")
    assert "more than zero" in chat.last_text and chat.asking == "total"
    await chat.say("10k")
    await chat.say("-5")
    assert "more than zero" in chat.last_text and chat.asking == "down"
    await chat.say("skip")
    await chat.say("yearly")
    assert "Please pick one of: Monthly, Weekly, Every N days, Explicit dates" in chat.last_text
    await chat.say("weekly")
    await chat.say("many")
    assert "Type a whole number from 1 to 120, e.g. 3." in chat.last_text and chat.asking == "count"
    await chat.say("500")
    assert "Pick a number from 1 to 120." in chat.last_text and chat.asking == "count"
    await chat.say("4")
    await chat.say("5")
    assert "“5” is just a number. Try a day like 15 Dec" in chat.last_text and chat.asking == "first_due"
    await chat.say("yesterday")  # a schedule may start in the past (a late-recorded deal)
    assert chat.asking == "__confirm__"
    assert "• INV-2026-0001 · Thu 03 Dec 2026 · $2,500.00" in chat.last_text
    assert "• INV-2026-0004 · Thu 24 Dec 2026 · $2,500.00" in chat.last_text
    assert "total $10,000.00" in chat.last_text
    assert await count_rows(crm, Contract) == 0


async def test_won_down_payment_over_the_total_is_reasked_before_the_summary(chat, crm, acme):
    await chat.say("/won")
    await chat.say("Acme")
    await chat.say("1000")
    await chat.say("2000")  # more than the total: caught when the schedule is planned
    await chat.press("Monthly")
    await chat.press("1")
    await chat.say("15 Jan")
    assert "The down payment must be 0 or more and less than the total" in chat.last_text
    assert chat.asking == "down"
    await chat.say("250")
    assert chat.asking == "__confirm__"
    assert "• INV-2026-0002 · Fri 15 Jan 2027 · $750.00" in chat.last_text


async def test_won_explicit_dates_and_every_n_days(chat, crm, acme):
    await chat.say("/won")
    await chat.say("Acme")
    await chat.say("skip")
    await chat.say("skip")
    await chat.press("Explicit dates")
    await chat.say("15 Jan, someday")
    assert "couldn't read “someday” as a day" in chat.last_text and chat.asking == "dates"
    await chat.say("15 Jan, 15 Mar, 15 Jun")
    assert "• INV-2026-0003 · Tue 15 Jun 2027 · $4,000.00" in chat.last_text
    await chat.say("back")  # from the summary back to the dates
    assert chat.asking == "dates"
    await chat.say("back")
    assert chat.asking == "frequency"
    await chat.press("Every N days")
    await chat.say("2")
    await chat.say("10")  # every 10 days
    await chat.say("2026-12-10")
    assert "• INV-2026-0002 · Sun 20 Dec 2026 · $6,000.00" in chat.last_text
    await chat.say("maybe")
    assert "Tap ✅ Confirm to save, or type back or cancel." in chat.last_text
    await chat.say("yes")
    assert "🏆 Deal won!" in chat.last_text
    assert [i.due_date for i in await all_rows(crm, Installment)] == [date(2026, 12, 10), date(2026, 12, 20)]


async def test_won_cancel_at_the_summary_writes_nothing(chat, crm, acme):
    await chat.say("/won")
    await chat.say("Acme")
    for answer in ("skip", "skip", "monthly", "12", "eom"):
        await chat.say(answer)
    assert "• INV-2026-0012 · " in chat.last_text  # twelve invoices shown
    await chat.press("Cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /won."
    assert await count_rows(crm, Contract) == 0 and await count_rows(crm, Installment) == 0
    assert (await deal_row(crm)).stage == "new"


async def test_won_without_a_deal_value_needs_a_total(chat, crm, rana):
    await create_lead(crm, rana, name="Globex")  # no value
    await chat.say("/won Globex")
    assert "Contract total? (e.g. 12,000 or AED 45,000)" in chat.last_text
    for answer in ("skip", "skip", "monthly", "2", "1 Jan"):
        await chat.say(answer)
    assert chat.asking == "total"
    assert "The total must be more than zero" in chat.last_text
    await chat.say("AED 4,000")
    assert "• INV-2026-0002 · Mon 01 Feb 2027 · AED" in chat.last_text and "2,000.00" in chat.last_text
    await chat.say("/tasks")  # an instant command at the confirmation shows the summary again
    assert chat.asking == "__confirm__" and "Mark the deal won" in chat.last_text
    assert await count_rows(crm, Contract) == 0
    await chat.say("ok")
    [contract] = await all_rows(crm, Contract)
    assert (contract.total_minor, contract.currency) == (4_000_00, "AED")


async def test_won_deals_are_not_offered_again(chat, crm, acme):
    await chat.send(action=f"go:won:deal={acme.deal.id}")
    for answer in ("skip", "skip", "monthly", "1", "1 Jan", "yes"):
        await chat.say(answer)
    assert "🏆 Deal won!" in chat.last_text
    await chat.say("/won")
    assert chat.labels == []
    await chat.say("Acme")
    assert "No open deal matches “Acme”" in chat.last_text


async def test_a_whole_move_form_to_won_continues_with_won_in_the_chat(chat, crm, acme):
    """A Slack modal submits /move at once; winning still hands over to the /won questions."""
    msg = Inbound(platform="console", chat_id="u1", user_id="u1")
    result = await chat.router.submit_form(msg, "move", {"deal": f"#{acme.deal.id}", "stage": "won"})
    assert result.errors == {}
    assert result.replies[0].text.plain == "🎉 Won! Let's set up the contract."
    assert result.replies[-1].ask == "total"
    await chat.say("skip")
    assert chat.asking == "down"
