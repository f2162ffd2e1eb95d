"""The engine's promises, whatever the flow: state survives a restart, idle flows expire,
buttons are never trusted, strangers are told their id, re-deliveries are handled once."""
from __future__ import annotations

from datetime import timedelta

from conversations.router import Router
from handlers.context import CRM
from handlers.contacts import create_lead
from handlers.tasks import create_task
from handlers.values import Money
from storage.db import open_database
from storage.models import ConversationState, Contact, Deal, ProcessedEvent, Task
from tests.chat import Chat, all_rows, chat, count_rows, new_event_key, rana  # noqa: F401  (fixtures)


async def test_restart_resumes_at_the_same_step_with_earlier_answers(chat, crm, settings, clock):
    await chat.say("/newlead")
    await chat.say("Rana Haddad")
    await chat.say("Acme Trading")
    assert chat.asking == "phone"

    # A new process: its own database connection, its own router, nothing in memory.
    restarted = CRM(db=open_database(settings.database_url), settings=settings, clock=clock)
    try:
        again = Chat(Router(restarted), user_id="u1")
        await again.say("+971501234567")
        assert again.asking == "email"
        await again.say("back")
        assert again.asking == "phone"  # the order of earlier answers survived too
        await again.say("+971501234567")
        for _ in range(3):
            await again.say("skip")
        await again.say("tomorrow")
        assert "Lead saved: Rana Haddad (Acme Trading)" in again.last_text
    finally:
        await restarted.db.dispose()
    [contact] = await all_rows(crm, Contact)
    assert (contact.name, contact.company, contact.phone) == ("Rana Haddad", "Acme Trading", "+971501234567")


async def test_an_idle_flow_expires_after_24_hours_with_a_note(chat, crm, clock):
    await chat.say("/newlead")
    await chat.say("Rana Haddad")
    clock.advance(hours=23, minutes=59)
    await chat.say("Acme Trading")
    assert chat.asking == "phone"  # still alive just under a day later

    clock.advance(hours=24, minutes=1)
    await chat.say("+971501234567")
    assert chat.texts[0] == "(Your unfinished /newlead expired after 24 hours.)"
    assert await count_rows(crm, ConversationState) == 0
    assert await count_rows(crm, Contact) == 0
    await chat.say("Acme")  # plain text is a search again, not an answer
    assert "Nothing matches “Acme”" in chat.last_text


async def test_instant_commands_mid_flow_keep_the_flow(chat, crm):
    await chat.say("/newlead")
    await chat.say("Rana Haddad")
    await chat.say("/tasks")
    assert "No open follow-ups" in chat.texts[0]
    assert "Company?" in chat.texts[-1] and chat.asking == "company"
    await chat.say("/help")
    assert "/newlead" in chat.texts[0] and chat.asking == "company"
    await chat.say("Acme Trading")
    assert chat.asking == "phone"


async def test_starting_another_flow_leaves_the_first_one_with_a_note(chat, crm):
    await chat.say("/newlead")
    await chat.say("Rana Haddad")
    await chat.say("/followup")
    assert chat.texts[0] == "(Left /newlead unfinished.)"
    assert chat.asking == "contact"
    [state] = await all_rows(crm, ConversationState)
    assert (state.flow, state.answers) == ("followup", {})


async def test_a_redelivered_event_is_handled_once(chat, crm):
    key = new_event_key()
    await chat.say("/newlead", event_key=key)
    assert chat.asking == "name"
    assert await chat.say("/newlead", event_key=key) == []

    answer = new_event_key()
    await chat.say("Rana Haddad", event_key=answer)
    assert chat.asking == "company"
    assert await chat.say("Rana Haddad", event_key=answer) == []  # not taken as the company
    await chat.say("Acme Trading")
    [state] = await all_rows(crm, ConversationState)
    assert state.answers == {"name": "Rana Haddad", "company": "Acme Trading"}
    assert await count_rows(crm, ProcessedEvent) == 2


async def test_unknown_users_are_refused_with_their_id(crm, rana):
    stranger = Chat(Router(crm), user_id="U-stranger-42")
    for text in ("/newlead Acme", "hello", "/tasks"):
        await stranger.say(text)
        assert stranger.last_text == (
            "👋 You're not on this team's ChatCRM yet. Your Console id is U-stranger-42: "
            "send it to your admin, or use /join <code> from an invite."
        )
    await stranger.send(action="card:1")
    assert "Your Console id is U-stranger-42" in stranger.last_text
    assert await count_rows(crm, ConversationState) == 0


async def test_flow_buttons_without_a_flow_are_closed(chat):
    for value in ("ans:website", "nav:ok", "nav:back", "say:tomorrow"):
        await chat.send(action=value)
        assert chat.last_text == "That question is closed. /help lists what I can do."


async def test_forged_and_stale_buttons_change_nothing(chat, crm, make_user):
    omar = await make_user("Omar", identity=("console", "u2"))
    theirs = await create_lead(crm, omar, name="Omar's client", next_step_at=crm.now() + timedelta(days=1))
    task = await create_task(crm, omar, title="Call Omar's client", due_at=crm.now() + timedelta(hours=3),
                             contact_id=theirs.contact.id)

    for value in ("zzz:1", "card:abc", "go:nosuchflow:", "task:done:abc"):
        await chat.send(action=value)
        assert chat.last_text == "That button is out of date.", value
    await chat.send(action=f"card:{theirs.contact.id}")  # someone else's contact: not revealed
    assert chat.last_text == f"⚠️ No contact #{theirs.contact.id} that you can see."
    await chat.send(action=f"task:done:{task.id}")
    assert chat.last_text == f"⚠️ No task #{task.id} that you can see."
    await chat.send(action=f"go:move:deal={theirs.deal.id}")  # a preset that is not Rana's
    assert chat.texts[0].startswith(f"⚠️ No deal #{theirs.deal.id} that you can see.")
    assert chat.asking == "deal"
    await chat.say("cancel")
    [deal] = await all_rows(crm, Deal)
    assert deal.stage == "new"
    assert {t.status for t in await all_rows(crm, Task)} == {"open"}


async def test_a_forged_answer_to_a_choice_is_refused_and_reasked(chat, crm):
    await chat.say("/newlead Acme Trading")
    for _ in range(3):
        await chat.say("skip")
    assert chat.asking == "source"
    await chat.send(action="ans:carrier-pigeon")
    assert "That option is not available any more." in chat.last_text and chat.asking == "source"
    await chat.send(action="nav:ok")  # "confirm" before the confirm step just re-asks
    assert chat.asking == "source"
    await chat.press("Event")
    assert chat.asking == "value"


async def test_a_button_from_an_earlier_question_is_ignored_safely(chat, crm):
    await chat.say("/newlead Acme Trading")
    for _ in range(3):
        await chat.say("skip")
    stale_skip = chat.button("Skip").value
    await chat.press("Website")
    await chat.say("5000")
    assert chat.asking == "next_step_at"
    await chat.send(action=stale_skip)  # "skip" pressed on an old question: this one is required
    assert "This one is needed." in chat.last_text and chat.asking == "next_step_at"


async def test_prefilled_buttons_start_a_flow_with_answers(chat, crm, rana):
    lead = await create_lead(crm, rana, name="Acme Trading", value=Money(100000, "USD"),
                             next_step_at=crm.now() + timedelta(days=1))
    await chat.send(action=f"go:followup:deal={lead.deal.id}")
    assert chat.asking == "title"  # the deal implies the contact: no contact question
    await chat.say("Send the revised quote")
    await chat.say("tomorrow 3pm")
    assert "⏰ Follow-up set for Acme Trading: Send the revised quote — Sat 5 Dec, 15:00 UTC" in chat.last_text


async def test_answer_words_after_a_flow_ended_are_not_searched(chat, crm):
    for word in ("yes", "cancel", "skip", "back"):
        await chat.say(word)
        assert chat.last_text == "No question is open right now. /help lists what I can do."
    await chat.say("Acme")  # any other text is a search
    assert chat.last_text.startswith("🔎 Nothing matches “Acme”")


async def test_a_list_offered_before_a_restart_can_be_answered_by_number_after(chat, crm, rana, settings, clock):
    for name in ("Rana Haddad", "Sami Haddad"):
        await create_lead(crm, rana, name=name)
    await chat.say("/log Haddad")
    offered = chat.labels
    restarted = CRM(db=open_database(settings.database_url), settings=settings, clock=clock)
    try:
        again = Chat(Router(restarted), user_id="u1")
        await again.say("2")
        assert again.replies[-1].answered == f"Contact: {offered[1]}"
        assert again.asking == "kind"
    finally:
        await restarted.db.dispose()
