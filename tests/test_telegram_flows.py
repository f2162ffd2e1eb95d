"""Every guided flow on Telegram, end to end: the real PTB Application polls the fake Bot API,
the real Router runs the flows on a real database. Each test reads like the chat on a phone."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from handlers import contacts as contacts_uc
from handlers import tasks as tasks_uc
from handlers.values import Money
from storage.models import Contact, Contract, Deal, Interaction, Payment, Task
from tests.fakes.telegram_api import FakeTelegramAPI, running_bot

CHAT = 123


@pytest.fixture
async def api():
    async with FakeTelegramAPI() as server:
        yield server


@pytest.fixture
async def tg(crm, api):
    async with running_bot(crm, api, chat_id=CHAT) as driver:
        yield driver
    assert api.pushed and api.unanswered() == []  # every button press got its answer


@pytest.fixture
async def rana(make_user):
    return await make_user("Rana", identity=("telegram", str(CHAT)))


def said(calls) -> str:
    """Everything the bot sent (new messages and edits) while handling one update."""
    return "\n".join(c.params.get("text") or c.params.get("caption") or "" for c in calls
                     if c.method in ("sendMessage", "editMessageText", "sendPhoto", "sendDocument")
                     and c.status == 200)


async def rows(crm, model, *where):
    async with crm.reader() as uow:
        return list((await uow.session.execute(select(model).where(*where))).scalars())


async def lead(crm, actor, name, value=None, company=None):
    made = await contacts_uc.create_lead(crm, actor, name=name, company=company,
                                         value=Money(value, "USD") if value else None)
    return made


async def test_newlead_with_typed_answers_buttons_and_a_shared_contact(tg, api, crm, rana):
    assert "name" in said(await tg.say("/newlead"))

    calls = await tg.say("Layla Nasser")
    # The question turns into a clean log line and loses its keyboard.
    [edit] = [c for c in calls if c.method == "editMessageText"]
    assert edit.params["text"] == "✅ Name: Layla Nasser" and "reply_markup" not in edit.params
    assert "Company?" in said(calls)

    assert "✅ Company: skipped" in said(await tg.tap("Skip"))
    keyboard = api.sent_to(CHAT)[-1].params["reply_markup"]["keyboard"]
    assert keyboard[0][0]["request_contact"] is True

    calls = await tg.say(contact={"phone_number": "971501234567", "first_name": "Layla",
                                  "last_name": "Nasser", "user_id": 999})
    # Logged in a new message, which also takes the share-contact keyboard away.
    assert calls[0].params["text"] == "✅ Phone: +971501234567"
    assert calls[0].params["reply_markup"] == {"remove_keyboard": True}
    await tg.say("layla@acme.ae")
    await tg.tap("Referral")
    await tg.say("5k")
    calls = await tg.tap("Tomorrow")
    assert "Lead saved: <b>Layla Nasser</b>" in said(calls)
    assert [c.method for c in calls][-1] == "editMessageReplyMarkup"  # no stale buttons left

    [contact] = await rows(crm, Contact, Contact.name == "Layla Nasser")
    assert (contact.phone, contact.email, contact.source) == ("+971501234567", "layla@acme.ae", "referral")
    [deal] = await rows(crm, Deal, Deal.contact_id == contact.id)
    assert (deal.value_minor, deal.currency, deal.stage) == (500_000, "USD", "new")
    [task] = await rows(crm, Task, Task.deal_id == deal.id)
    assert task.due_at == datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


async def test_back_and_cancel_keep_nothing(tg, api, crm, rana):
    await tg.say("/newlead")
    await tg.say("Layla Nasser")
    calls = await tg.say("back")
    assert "What's the person's name?" in said(calls)
    calls = await tg.say("cancel")
    assert "Cancelled. Nothing was saved from /newlead." in said(calls)
    assert [c.method for c in calls][-1] == "editMessageReplyMarkup"  # the question's buttons go
    assert await rows(crm, Contact) == []


async def test_a_contact_shared_outside_a_flow_starts_a_lead_with_name_and_phone(tg, crm, rana):
    calls = await tg.say(contact={"phone_number": "+971 50 765 4321", "first_name": "Omar"})
    assert "Company?" in said(calls)
    for answer in ("skip", "skip", "skip", "skip", "tomorrow 10am"):
        calls = await tg.say(answer)
    assert "Lead saved: <b>Omar</b>" in said(calls)
    [contact] = await rows(crm, Contact, Contact.name == "Omar")
    assert contact.phone == "+971507654321"


async def test_log_an_interaction_typed_and_with_buttons(tg, crm, rana):
    made = await lead(crm, rana, "Layla Nasser")
    calls = await tg.say("/log")
    assert "Which contact?" in said(calls)
    assert "What happened?" in said(await tg.say("layla"))
    await tg.tap("Call")
    await tg.say("Called about the <quote> & terms")
    await tg.say("interested")
    calls = await tg.tap("Skip")
    assert "Logged call with <b>Layla Nasser</b>" in said(calls)
    [item] = await rows(crm, Interaction, Interaction.contact_id == made.contact.id)
    assert (item.kind, item.summary, item.outcome, item.deal_id) == (
        "call", "Called about the <quote> & terms", "interested", made.deal.id)


async def test_an_ambiguous_name_offers_a_list_and_only_the_newest_question_has_buttons(tg, api, crm, rana):
    await lead(crm, rana, "Layla Nasser")
    other = await lead(crm, rana, "Layla Haddad")
    await tg.say("/log")
    first_question = api.sent_to(CHAT)[-1]
    calls = await tg.say("layla")
    assert "2 contacts match" in said(calls)
    [drop] = [c for c in calls if c.method == "editMessageReplyMarkup"]
    assert int(drop.params["message_id"]) in api.messages[str(CHAT)]
    assert "reply_markup" not in api.messages[str(CHAT)][int(drop.params["message_id"])]
    assert first_question.keyboard  # it had suggestions before
    calls = await tg.tap("Layla Haddad")
    assert "✅ Contact: Layla Haddad" in said(calls) and "What happened?" in said(calls)
    await tg.tap("Meeting")
    await tg.say("Showroom visit")
    await tg.tap("Skip")
    await tg.tap("Skip")
    [item] = await rows(crm, Interaction, Interaction.contact_id == other.contact.id)
    assert (item.kind, item.summary) == ("meeting", "Showroom visit")


async def test_followup_picked_by_button_with_a_typed_time(tg, crm, rana):
    made = await lead(crm, rana, "Layla Nasser")
    await tg.say("/followup")
    await tg.tap("Layla Nasser")  # a recent-contact suggestion
    await tg.say("Send revised quote")
    calls = await tg.say("monday 10am")
    assert "Send revised quote" in said(calls) or "Follow-up" in said(calls)
    [task] = await rows(crm, Task, Task.contact_id == made.contact.id, Task.title == "Send revised quote")
    assert task.due_at == datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


async def test_move_a_deal_to_lost_with_a_reason(tg, crm, rana):
    made = await lead(crm, rana, "Layla Nasser")
    await tg.say("/move")
    await tg.say("Layla")
    assert "Why was it lost?" in said(await tg.tap("Lost"))
    calls = await tg.say("price")
    assert "is now <b>Lost</b>" in said(calls)
    [deal] = await rows(crm, Deal, Deal.id == made.deal.id)
    assert (deal.stage, deal.lost_reason) == ("lost", "price")


async def test_won_creates_the_contract_then_pay_records_a_payment(tg, crm, rana):
    made = await lead(crm, rana, "Layla Nasser", value=1_200_000)
    await tg.say("/won")
    await tg.say("Layla")
    await tg.tap("Skip")  # total: the deal's value
    await tg.say("2000")  # down payment
    await tg.tap("Monthly")
    await tg.say("2")
    calls = await tg.tap("Next week")
    assert "Contract <b>CTR-" in said(calls) and "Confirm" in str(calls[-1].keyboard)
    calls = await tg.tap("Confirm")
    assert "Deal won! Contract" in said(calls)
    [contract] = await rows(crm, Contract, Contract.deal_id == made.deal.id)
    assert (contract.total_minor, contract.currency) == (1_200_000, "USD")

    await tg.tap("Record payment")  # the button under the won message starts /pay
    await tg.tap("Oldest open first")
    await tg.say("2,000")
    await tg.tap("Today")
    await tg.tap("Cash")
    assert "Record this payment?" in said(await tg.tap("Skip"))
    calls = await tg.tap("Confirm")
    assert "Payment of <b>$2,000.00</b> recorded" in said(calls)
    [payment] = await rows(crm, Payment, Payment.contract_id == contract.id)
    assert (payment.amount_minor, payment.method) == (200_000, "cash")


async def test_find_and_tasks_with_a_done_button_that_edits_the_card(tg, api, crm, rana):
    made = await lead(crm, rana, "Layla Nasser")
    task = await tasks_uc.create_task(crm, rana, title="Call Layla", due_at=crm.now() - timedelta(hours=1),
                                      contact_id=made.contact.id)
    assert "<b>Layla Nasser</b>" in said(await tg.say("/find layla"))
    calls = await tg.say("/tasks")
    assert "Overdue 1" in said(calls)
    card = next(c for c in api.sent_to(CHAT) if "Call Layla" in c.params["text"])
    calls = await tg.tap("Done")
    [edit] = [c for c in calls if c.method == "editMessageText"]
    card_id = [m for m, msg in api.messages[str(CHAT)].items() if msg.get("text", "").startswith("✅ Done")]
    assert edit.params["text"] == "✅ Done: Call Layla" and len(card_id) == 1
    assert "reply_markup" not in api.messages[str(CHAT)][card_id[0]]
    [row] = await rows(crm, Task, Task.id == task.id)
    assert row.status == "done"
    assert card.params["text"] != edit.params["text"]


async def test_a_forwarded_message_is_logged_with_its_original_date(tg, crm, rana):
    made = await lead(crm, rana, "Layla Nasser")
    sent = datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc)
    origin = {"type": "user", "date": int(sent.timestamp()),
              "sender_user": {"id": 999, "is_bot": False, "first_name": "Layla", "last_name": "Nasser"}}
    calls = await tg.say("Can you send the quote by Friday?", forward_origin=origin)
    assert "Forwarded message from Layla Nasser" in said(calls)
    await tg.say("layla")
    await tg.tap("Skip")  # outcome
    calls = await tg.tap("Skip")  # follow-up
    assert "Logged message with <b>Layla Nasser</b>" in said(calls)
    [item] = await rows(crm, Interaction, Interaction.contact_id == made.contact.id)
    assert (item.kind, item.summary, item.occurred_at) == ("message", "Can you send the quote by Friday?", sent)


async def test_a_photo_is_saved_and_attached_to_a_contact(tg, api, crm, rana, data_dir):
    made = await lead(crm, rana, "Layla Nasser")
    api.add_file("ph1", b"\x89PNG signed contract", "photos/file_7.jpg")
    photo = [{"file_id": "ph1", "file_unique_id": "uq1", "width": 800, "height": 600}]
    calls = await tg.say(None, photo=photo, caption="signed contract")
    assert "photo_uq1.jpg</b> received" in said(calls)
    [saved] = list((data_dir / "inbox").iterdir())
    assert saved.read_bytes() == b"\x89PNG signed contract"
    calls = await tg.say("layla")
    assert "Attached" in said(calls)
    [item] = await rows(crm, Interaction, Interaction.contact_id == made.contact.id)
    assert (item.kind, item.summary, item.attachment_name) == ("file", "signed contract", "photo_uq1.jpg")


async def test_an_error_mid_flow_keeps_the_answers(crm, api, rana):
    from conversations.router import Router

    router = Router(crm)
    real = router.handle
    broken = []

    async def flaky(inbound, progress=None):
        if inbound.text == "Acme" and not broken:
            broken.append(inbound)
            raise RuntimeError("database hiccup")
        return await real(inbound, progress)

    router.handle = flaky
    async with running_bot(crm, api, router=router, chat_id=CHAT) as tg:
        await tg.say("/newlead")
        await tg.say("Layla Nasser")
        assert "Something went wrong; your answers are kept" in said(await tg.say("Acme"))
        calls = await tg.say("Acme")
        assert "✅ Company: Acme" in said(calls) and "Phone" in said(calls)


async def test_a_long_import_shows_progress_in_one_edited_message(tg, api, crm, rana):
    """/import with a CSV: the preview's message turns into progress, then into the result."""
    lines = ["Name,Phone,Company"] + [f"Client {i},+9715{i:08d},Co {i}" for i in range(1, 1201)]
    api.add_file("csv1", ("\n".join(lines) + "\n").encode(), "documents/clients.csv")
    document = {"file_id": "csv1", "file_unique_id": "c1", "file_name": "clients.csv"}
    preview = await tg.say(None, document=document, caption="/import")
    assert "1,200 new" in said(preview) or "1200 new" in said(preview)
    calls = await tg.tap("Import 1200 new")
    edits = [c.params["text"] for c in calls if c.method == "editMessageText"]
    assert any("Importing… 500 of 1,200 rows" in t for t in edits), edits
    assert "Importing" not in edits[-1]  # the same message ends with the result
    assert len({c.params["message_id"] for c in calls if c.method == "editMessageText"}) == 1
    assert len(await rows(crm, Contact)) == 1200
