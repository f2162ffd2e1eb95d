"""/newlead as a rep types it: step by step, with bad input, back, skip, cancel, prefilled
arguments and the duplicate check."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from handlers.contacts import create_lead
from handlers.values import Money
from storage.models import ConversationState, Contact, Deal, Task
from tests.chat import all_rows, chat, count_rows, rana  # noqa: F401  (fixtures)


async def nothing_saved(crm) -> bool:
    return (await count_rows(crm, Contact), await count_rows(crm, Deal), await count_rows(crm, Task)) == (0, 0, 0)


async def test_happy_path_step_by_step(chat, crm):
    await chat.say("/newlead")
    assert "What's the person's name?" in chat.last_text
    await chat.say("Rana Haddad")
    assert chat.replies[-1].answered == "Name: Rana Haddad"
    assert "Company?" in chat.last_text
    await chat.say("Acme Trading")
    assert "Phone number?" in chat.last_text
    await chat.say("050 123 4567")  # the team's region (AE) fills in the country code
    assert "Email address?" in chat.last_text
    await chat.say("Rana@Acme.ae")
    assert "Where did this lead come from?" in chat.last_text
    assert chat.labels[:2] == ["Website", "Referral"]
    await chat.press("Website")
    assert "Rough deal value?" in chat.last_text
    await chat.say("1.5k")
    assert "When is the next step?" in chat.last_text
    assert await nothing_saved(crm)  # nothing is written before the last answer

    await chat.say("tomorrow 3pm")
    assert "✅ Lead saved: Rana Haddad (Acme Trading)" in chat.last_text
    assert "Deal #1 · New · $1,500.00" in chat.last_text
    assert "Next step: Sat 5 Dec, 15:00 UTC" in chat.last_text
    assert chat.labels == ["📝 Log", "⏰ Follow-up", "➡️ Move"]

    [contact] = await all_rows(crm, Contact)
    assert (contact.name, contact.company, contact.phone, contact.email, contact.source) == (
        "Rana Haddad", "Acme Trading", "+971501234567", "rana@acme.ae", "website")
    [deal] = await all_rows(crm, Deal)
    assert (deal.contact_id, deal.stage, deal.value_minor, deal.currency) == (contact.id, "new", 150000, "USD")
    [task] = await all_rows(crm, Task)
    assert task.due_at == datetime(2026, 12, 5, 15, 0, tzinfo=timezone.utc)
    assert await count_rows(crm, ConversationState) == 0  # the finished flow is forgotten


async def test_bad_input_at_every_step_is_reasked_and_earlier_answers_kept(chat, crm):
    await chat.say("/newlead")
    await chat.say("x" * 201)
    assert chat.texts[0].startswith("⚠️ The name is too long (201 characters; at most 200).")
    assert chat.asking == "name"
    await chat.say("Rana Haddad")
    await chat.say("Acme Trading")

    await chat.say("12")
    assert chat.texts[0].startswith("⚠️ “12” is not a valid phone number. Try +971 50 123 4567.")
    assert chat.asking == "phone"
    await chat.say("+971 50 123 4567")

    await chat.say("rana at acme")
    assert chat.texts[0].startswith("⚠️ “rana at acme” is not an email address. Try name@example.com.")
    assert chat.asking == "email"
    await chat.say("rana@acme.ae")

    await chat.say("Billboard")
    assert chat.asking == "source"
    assert "Please pick one of: Website, Referral" in chat.last_text
    await chat.say("2")  # by number in the list: Referral

    for bad, why in (("lots", "couldn't read"), ("0", "more than zero"), ("-500", "more than zero")):
        await chat.say(bad)
        assert chat.asking == "value", bad
        assert why in chat.last_text and "1,500.50" in chat.last_text

    await chat.say("AED 20,000")

    await chat.say("5")
    assert chat.asking == "next_step_at"
    assert "just a number" in chat.last_text and "tomorrow 3pm" in chat.last_text
    await chat.say("yesterday")
    assert "is in the past" in chat.last_text and chat.asking == "next_step_at"
    await chat.say("blah blah")
    assert "couldn't read" in chat.last_text and chat.asking == "next_step_at"
    assert await nothing_saved(crm)

    await chat.say("next week")
    assert "Lead saved: Rana Haddad (Acme Trading)" in chat.last_text
    assert "Next step: Mon 7 Dec, 09:00 UTC" in chat.last_text
    [contact] = await all_rows(crm, Contact)
    assert (contact.phone, contact.email, contact.source) == ("+971501234567", "rana@acme.ae", "referral")
    [deal] = await all_rows(crm, Deal)
    assert (deal.value_minor, deal.currency) == (2_000_000, "AED")


async def test_prefilled_name_and_phone_skip_their_questions(chat, crm):
    await chat.say("/newlead Acme Trading +971501234567")
    assert chat.asking == "company"
    await chat.say("skip")
    assert chat.asking == "email"  # the phone was in the command
    await chat.say("skip")
    await chat.say("skip")  # source
    await chat.say("skip")  # value
    await chat.say("tomorrow")
    assert "Lead saved: Acme Trading" in chat.last_text
    [contact] = await all_rows(crm, Contact)
    assert (contact.name, contact.company, contact.phone, contact.email) == (
        "Acme Trading", None, "+971501234567", None)
    [deal] = await all_rows(crm, Deal)
    assert deal.value_minor == 0


async def test_prefilled_email_and_a_bad_phone_left_for_its_question(chat, crm):
    await chat.say("/newlead Omar info@omar.ae")
    assert chat.asking == "company"
    await chat.say("-")
    assert chat.asking == "phone"
    await chat.say("-")
    assert chat.asking == "source"  # email came with the command


async def test_back_goes_to_the_previous_question_and_forgets_its_answer(chat, crm):
    await chat.say("/newlead")
    await chat.say("Rana")
    await chat.say("Acme")
    assert chat.asking == "phone"
    await chat.say("back")
    assert chat.asking == "company"
    await chat.say("back")
    assert chat.asking == "name"
    await chat.say("back")
    assert "This is the first question." in chat.last_text and chat.asking == "name"
    await chat.say("Rana Haddad")
    await chat.say("Acme Trading")
    await chat.say("skip")
    await chat.say("skip")
    await chat.press("Skip")  # source
    await chat.press("Skip")  # value
    await chat.press("Tomorrow")
    [contact] = await all_rows(crm, Contact)
    assert (contact.name, contact.company) == ("Rana Haddad", "Acme Trading")


async def test_skip_works_on_optional_questions_only(chat, crm):
    await chat.say("/newlead")
    await chat.say("skip")  # no person's name: a company is enough
    await chat.say("Acme Trading")
    for _ in range(4):  # phone, email, source, value
        await chat.say("skip")
    assert chat.asking == "next_step_at"
    await chat.say("skip")
    assert "This one is needed." in chat.last_text and chat.asking == "next_step_at"
    assert "Skip" not in chat.labels  # no skip button on a required question
    await chat.say("in 2 weeks")
    assert "Next step: Fri 18 Dec, 09:00 UTC" in chat.last_text
    [contact] = await all_rows(crm, Contact)
    assert (contact.name, contact.company, contact.phone) == (None, "Acme Trading", None)


async def test_cancel_writes_nothing_and_ends_the_flow(chat, crm):
    await chat.say("/newlead")
    await chat.say("Rana Haddad")
    await chat.say("Acme Trading")
    await chat.say("cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /newlead."
    assert await nothing_saved(crm)
    assert await count_rows(crm, ConversationState) == 0
    await chat.say("/cancel")
    assert "Nothing to cancel" in chat.last_text


async def test_cancel_button_on_the_last_question(chat, crm):
    await chat.say("/newlead Acme Trading")
    for _ in range(5):
        await chat.say("skip")
    await chat.say("/cancel")
    assert "Cancelled" in chat.last_text
    assert await nothing_saved(crm)


async def existing_acme(crm, actor):
    return await create_lead(crm, actor, name="Acme Trading", phone="+971501234567",
                             value=Money(5_000_00, "USD"), next_step_at=crm.now() + timedelta(hours=2))


async def answer_up_to_duplicate(chat):
    await chat.say("/newlead Acme Trading +971 50 123 4567")
    await chat.say("skip")  # company
    await chat.say("skip")  # email
    assert chat.asking == "duplicate"


async def test_duplicate_use_the_existing_contact(chat, crm, rana):
    await existing_acme(crm, rana)
    await answer_up_to_duplicate(chat)
    assert "⚠️ Acme Trading already exists (owner: Rana" in chat.last_text
    assert chat.labels == ["Use Acme Trading", "Create anyway", "Cancel"]
    await chat.say("maybe")
    assert "Please pick one of: Use Acme Trading, Create anyway, Cancel" in chat.last_text
    assert chat.asking == "duplicate"
    await chat.press("Use Acme Trading")
    await chat.press("Referral")
    await chat.say("2000")
    await chat.say("fri 10:30")
    assert "Lead saved: Acme Trading" in chat.last_text
    assert "Next step: Fri 4 Dec, 10:30 UTC" in chat.last_text
    contacts = await all_rows(crm, Contact)
    deals = await all_rows(crm, Deal)
    assert len(contacts) == 1 and [d.contact_id for d in deals] == [contacts[0].id] * 2


async def test_duplicate_create_anyway_makes_a_second_contact(chat, crm, rana):
    await existing_acme(crm, rana)
    await answer_up_to_duplicate(chat)
    await chat.say("create anyway")  # answering by name works like the button
    for _ in range(2):
        await chat.say("skip")
    await chat.say("tomorrow")
    assert "Lead saved" in chat.last_text
    assert await count_rows(crm, Contact) == 2


async def test_duplicate_cancel_writes_nothing(chat, crm, rana):
    await existing_acme(crm, rana)
    await answer_up_to_duplicate(chat)
    await chat.press("Cancel")
    assert "Cancelled" in chat.last_text
    assert (await count_rows(crm, Contact), await count_rows(crm, Deal)) == (1, 1)


async def test_someone_elses_lead_is_named_but_cannot_be_used(chat, crm, make_user):
    omar = await make_user("Omar")
    await existing_acme(crm, omar)
    await answer_up_to_duplicate(chat)
    assert "already exists (owner: Omar" in chat.last_text
    assert chat.labels == ["Create anyway", "Cancel"]
    await chat.say("use:1")  # a forged answer for a contact Rana may not see
    assert chat.asking == "duplicate"
    assert await count_rows(crm, Deal) == 1
