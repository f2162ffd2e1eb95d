"""History and undo: each kind of change reversed, the 10-minute window, others' changes win."""
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.audit import history_of, undo_last
from handlers.contacts import create_lead
from handlers.contracts import contract_view, record_payment, void_payment, win_deal_with_contract
from handlers.deals import move_deal, update_deal
from handlers.errors import Conflict, InvalidInput, NotFound
from handlers.interactions import log_interaction
from handlers.tasks import complete_task, create_task
from handlers.values import Money
from storage.models import AuditEntry, Contact, Deal, Interaction, StageChange, Task
from tests.contract_support import installment_statuses, new_contract, new_deal, row_counts


async def rows_of(crm, model, **where):
    async with crm.reader() as uow:
        stmt = select(model).filter_by(**where).order_by(model.id)
        found = list((await uow.session.execute(stmt)).scalars())
        uow.session.expunge_all()
        return found


async def get(crm, model, id_):
    found = await rows_of(crm, model, id=id_)
    return found[0] if found else None


# --- history ----------------------------------------------------------------------------------


async def test_history_shows_who_changed_what(crm, make_user):
    rana = await make_user("Rana", identity=("telegram", "111"))
    sami = await make_user("Sami")
    deal_id = await new_deal(crm, rana)
    await move_deal(crm, rana, deal_id, "proposal")

    lines = await history_of(crm, rana, "deal", deal_id)

    stage = next(line for line in lines if line.field == "stage")
    assert (stage.actor_name, stage.platform, stage.action, stage.old, stage.new) == (
        "Rana", "telegram", "move_deal", "negotiation", "proposal",
    )
    assert stage.at == crm.now()
    with pytest.raises(NotFound):
        await history_of(crm, sami, "deal", deal_id)
    with pytest.raises(InvalidInput) as err:
        await history_of(crm, rana, "spaceship", 1)
    assert err.value.field == "entity"


async def test_history_of_a_payment_and_its_contract(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    paid = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=100)
    await void_payment(crm, rana, paid.payment.id, reason="typo")
    lines = await history_of(crm, rana, "payment", paid.payment.id)
    assert [(line.action, line.field, line.new) for line in reversed(lines)] == [
        ("record_payment", "*created", None),
        ("void_payment", "voided_at", crm.now().isoformat()),
        ("void_payment", "voided_by_id", str(rana.user_id)),
        ("void_payment", "void_reason", "typo"),
    ]
    assert [(line.action, line.field) for line in await history_of(crm, rana, "contract", view.contract.id)] == [
        ("win_deal_with_contract", "*created")
    ]


# --- undo: the rules --------------------------------------------------------------------------


async def test_undo_a_stage_move_restores_the_deal_and_its_history(crm, make_user):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana)
    await move_deal(crm, rana, deal_id, "lost", lost_reason="went with a competitor")

    result = await undo_last(crm, rana)

    assert result.action == "move_deal"
    assert result.description == (
        "Undone (move deal): deal #1 lost reason back to empty; deal #1 stage back to negotiation."
    )
    deal = await get(crm, Deal, deal_id)
    assert (deal.stage, deal.closed_at, deal.lost_reason) == ("negotiation", None, None)
    assert await rows_of(crm, StageChange, deal_id=deal_id) == []
    originals = await rows_of(crm, AuditEntry, action="move_deal")
    assert originals and all(r.undone_at == crm.now() for r in originals)
    assert {r.field for r in await rows_of(crm, AuditEntry, action="undo")} >= {"stage", "closed_at", "lost_reason"}

    with pytest.raises(Conflict, match="already undone"):
        await undo_last(crm, rana)


async def test_nothing_to_undo(crm, make_user):
    rana = await make_user("Rana")
    with pytest.raises(Conflict, match="nothing of yours to undo"):
        await undo_last(crm, rana)


async def test_undo_works_for_ten_minutes_only(crm, make_user, clock):
    rana = await make_user("Rana")
    first, second = await new_deal(crm, rana), await new_deal(crm, rana, title="Second")
    await move_deal(crm, rana, first, "proposal")
    clock.advance(minutes=10)
    await undo_last(crm, rana)
    assert (await get(crm, Deal, first)).stage == "negotiation"

    await move_deal(crm, rana, second, "proposal")
    clock.advance(minutes=10, seconds=1)
    before = await row_counts(crm)
    with pytest.raises(Conflict, match="10 minutes ago; undo only works for 10 minutes"):
        await undo_last(crm, rana)
    assert await row_counts(crm) == before
    assert (await get(crm, Deal, second)).stage == "proposal"


async def test_someone_elses_later_change_to_the_same_field_blocks_undo(crm, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    deal_id = await new_deal(crm, rana)
    await move_deal(crm, rana, deal_id, "proposal")
    await move_deal(crm, boss, deal_id, "contacted")
    before = await row_counts(crm)

    with pytest.raises(Conflict, match="Maya changed deal #1 after you \\(move deal\\)"):
        await undo_last(crm, rana)

    assert await row_counts(crm) == before
    assert (await get(crm, Deal, deal_id)).stage == "contacted"


async def test_a_later_change_to_other_fields_does_not_block_undo(crm, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    deal_id = await new_deal(crm, rana)
    await update_deal(crm, rana, deal_id, value=Money(900_000, "USD"))
    await update_deal(crm, boss, deal_id, title="Villa fit-out, phase 1")

    await undo_last(crm, rana)

    deal = await get(crm, Deal, deal_id)
    assert (deal.value_minor, deal.title) == (1_200_000, "Villa fit-out, phase 1")


# --- undo: each kind of change ------------------------------------------------------------


async def test_undo_a_new_lead_removes_its_contact_deal_and_task(crm, make_user, clock):
    rana = await make_user("Rana")
    lead = await create_lead(crm, rana, name="Karim Aziz", phone="+971 50 123 4567", value=Money(500_000, "USD"),
                             next_step="Send the brochure", next_step_at=clock.now() + timedelta(days=1))

    result = await undo_last(crm, rana)

    assert result.action == "create_lead"
    assert "contact Karim Aziz removed" in result.description
    assert await get(crm, Contact, lead.contact.id) is None
    assert await get(crm, Deal, lead.deal.id) is None
    assert await rows_of(crm, Task) == [] and await rows_of(crm, StageChange) == []


async def test_undo_a_lead_for_an_existing_contact_keeps_the_contact(crm, make_user):
    rana = await make_user("Rana")
    first = await create_lead(crm, rana, name="Karim Aziz", value=Money(500_000, "USD"))
    second = await create_lead(crm, rana, existing_contact_id=first.contact.id, title="Second villa",
                               value=Money(700_000, "USD"))
    await undo_last(crm, rana)
    assert await get(crm, Deal, second.deal.id) is None
    assert (await get(crm, Contact, first.contact.id)).deleted_at is None
    assert await get(crm, Deal, first.deal.id) is not None


async def test_undo_a_logged_call_deletes_it_its_file_and_cancels_the_follow_up(crm, make_user, clock, tmp_path):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana)
    contact_id = (await get(crm, Deal, deal_id)).contact_id
    touched_before = (await get(crm, Contact, contact_id)).last_touched_at
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(b"%PDF-1.4 quote")
    clock.advance(hours=1)
    call = await log_interaction(crm, rana, contact_id=contact_id, deal_id=deal_id, kind="call",
                                 summary="Talked about tiles", attachment_path=quote,
                                 follow_up_at=clock.now() + timedelta(days=2))
    stored = Path(call.attachment_path)
    assert stored.exists()

    result = await undo_last(crm, rana)

    assert await get(crm, Interaction, call.id) is None
    assert not stored.exists() and quote.exists()
    [task] = await rows_of(crm, Task)
    assert task.status == "cancelled"
    assert (await get(crm, Contact, contact_id)).last_touched_at == touched_before
    assert "cancelled" in result.description and "call #1 removed" in result.description


async def test_undo_a_new_task_cancels_it_unless_someone_completed_it(crm, make_user, clock):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    task = await create_task(crm, rana, title="Call Karim", due_at=clock.now() + timedelta(hours=3))
    await undo_last(crm, rana)
    assert (await get(crm, Task, task.id)).status == "cancelled"

    other = await create_task(crm, rana, title="Visit site", due_at=clock.now() + timedelta(hours=3))
    await complete_task(crm, boss, other.id)
    with pytest.raises(Conflict, match="Maya changed task"):
        await undo_last(crm, rana)
    assert (await get(crm, Task, other.id)).status == "done"


async def test_undo_a_payment_voids_it_and_reopens_the_invoices(crm, make_user):
    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    paid = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=150_000)

    result = await undo_last(crm, rana)

    assert result.description == f"Undone (record payment): payment #{paid.payment.id} voided."
    assert await installment_statuses(crm, view.contract.id) == ["open", "open", "open"]
    assert (await contract_view(crm, rana, view.contract.id)).balance_minor == 300_000


async def test_undo_a_void_counts_the_payment_again_unless_that_would_overpay(crm, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    view = await new_contract(crm, rana)
    paid = await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=100_000)
    await void_payment(crm, rana, paid.payment.id, reason="wrong contract")
    result = await undo_last(crm, rana)
    assert f"payment #{paid.payment.id} counts again" in result.description
    assert await installment_statuses(crm, view.contract.id) == ["paid", "open", "open"]

    await void_payment(crm, rana, paid.payment.id, reason="bounced")
    await record_payment(crm, boss, contract_id=view.contract.id, amount_minor=300_000)
    before = await row_counts(crm)
    with pytest.raises(Conflict, match="over-pay"):
        await undo_last(crm, rana)
    assert await row_counts(crm) == before
    assert (await contract_view(crm, rana, view.contract.id)).paid_minor == 300_000


async def test_undo_a_contract_removes_it_and_gives_its_numbers_back(crm, make_user):
    rana = await make_user("Rana")
    deal_id = await new_deal(crm, rana)
    await win_deal_with_contract(crm, rana, deal_id, count=2, frequency="monthly", first_due=date(2027, 1, 1))

    result = await undo_last(crm, rana)

    assert "contract CTR-2026-0001 and its 2 invoices removed" in result.description
    deal = await get(crm, Deal, deal_id)
    assert (deal.stage, deal.closed_at) == ("negotiation", None)
    assert await rows_of(crm, StageChange, deal_id=deal_id) == []
    again = await win_deal_with_contract(crm, rana, deal_id, count=1, frequency="monthly", first_due=date(2027, 1, 1))
    assert again.contract.number == "CTR-2026-0001"
    assert [i.invoice_number for i in again.installments] == ["INV-2026-0001"]


async def test_undo_a_contract_refused_once_paid_or_numbered_past(crm, make_user):
    boss = await make_user("Maya", role="manager")
    rana = await make_user("Rana", manager=boss)
    paid_view = await new_contract(crm, rana)
    await record_payment(crm, boss, contract_id=paid_view.contract.id, amount_minor=100)
    with pytest.raises(Conflict, match="already has payments"):
        await undo_last(crm, rana)

    sami = await make_user("Sami", manager=boss)
    await new_contract(crm, sami)  # CTR-2026-0002
    await new_contract(crm, boss)  # CTR-2026-0003: numbered after Sami's
    before = await row_counts(crm)
    with pytest.raises(Conflict, match="gap in the invoice numbers"):
        await undo_last(crm, sami)
    assert await row_counts(crm) == before


async def test_two_undos_at_once_reverse_the_change_once(crm, make_user):
    import asyncio

    rana = await make_user("Rana")
    view = await new_contract(crm, rana)
    await record_payment(crm, rana, contract_id=view.contract.id, amount_minor=100_000)
    results = await asyncio.gather(undo_last(crm, rana), undo_last(crm, rana), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "UndoResult"]
    assert "already undone" in str(next(r for r in results if isinstance(r, Conflict)))
    assert (await contract_view(crm, rana, view.contract.id)).paid_minor == 0
