"""/log an interaction and /followup: find the contact by name, phone digits or the recent
list; kind, summary, outcome; the next step and when."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conversations.messages import Attachment, Forwarded
from conversations.router import Router
from handlers.contacts import create_lead
from handlers.values import Money
from storage.models import Interaction, Task
from tests.chat import Chat, all_rows, chat, count_rows, rana  # noqa: F401  (fixtures)


@pytest.fixture
async def leads(crm, rana):
    """Two clients named Haddad (one with a phone) and one Omar, each with an open deal."""
    soon = crm.now() + timedelta(days=2)
    made = {}
    for key, name, phone in (("rana", "Rana Haddad", "+971501234567"), ("sami", "Sami Haddad", None),
                             ("omar", "Omar Aziz", "+971559876543")):
        made[key] = await create_lead(crm, rana, name=name, phone=phone, value=Money(1000_00, "USD"),
                                      next_step_at=soon)
    return made


async def test_log_a_call_with_a_follow_up(chat, crm, leads):
    await chat.say("/log")
    assert "Which contact?" in chat.last_text
    assert len(chat.labels) == 3  # the recent contacts as buttons
    await chat.say("Omar")
    assert "What happened?" in chat.last_text
    assert chat.labels == ["📞 Call", "💬 Message", "🤝 Meeting", "✉️ Email", "🗒 Note", "🧾 Quote"]
    await chat.press("Call")
    await chat.say("Called about the quote; wants 10% off")
    await chat.say("interested")
    assert "Next follow-up? (skip if none)" in chat.last_text
    assert await count_rows(crm, Interaction) == 0
    await chat.say("mon 11am")
    assert chat.texts[-1].startswith("✅ Logged call with Omar Aziz.\nFollow-up set: Mon 7 Dec, 11:00 UTC")
    assert chat.labels == ["📝 Log", "⏰ Follow-up", "➡️ Move"]  # his one open deal's actions
    [item] = await all_rows(crm, Interaction)
    assert (item.contact_id, item.deal_id, item.kind, item.summary, item.outcome) == (
        leads["omar"].contact.id, leads["omar"].deal.id, "call", "Called about the quote; wants 10% off",
        "interested")
    follow = [t for t in await all_rows(crm, Task) if t.due_at == datetime(2026, 12, 7, 11, 0, tzinfo=timezone.utc)]
    assert len(follow) == 1


async def test_log_finds_the_contact_by_the_last_phone_digits(chat, crm, leads):
    await chat.say("/log")
    await chat.say("4567")
    assert chat.asking == "kind"
    await chat.say("note")
    await chat.say("Left a voicemail")
    await chat.say("skip")
    await chat.say("skip")
    assert "✅ Logged note with Rana Haddad." in chat.last_text
    [item] = await all_rows(crm, Interaction)
    assert item.contact_id == leads["rana"].contact.id and item.outcome is None


async def test_several_matches_are_offered_as_a_list(chat, crm, leads):
    await chat.say("/log")
    await chat.say("Haddad")
    assert "2 contacts match “Haddad”. Which one?" in chat.last_text
    assert sorted(chat.labels) == ["Rana Haddad", "Sami Haddad"]
    picked = chat.labels.index("Sami Haddad") + 1
    await chat.say(str(picked))  # answered by its number in the list
    assert chat.asking == "kind"
    await chat.press("Meeting")
    await chat.say("Site visit")
    await chat.say("-")
    await chat.say("-")
    [item] = await all_rows(crm, Interaction)
    assert item.contact_id == leads["sami"].contact.id


async def test_a_contact_with_several_open_deals_is_asked_which_one(chat, crm, rana, leads):
    second = (await create_lead(crm, rana, existing_contact_id=leads["omar"].contact.id,
                                title="Omar: warehouse fit-out")).deal
    await chat.say("/log")
    await chat.say("Omar")
    assert "Which of their deals is this about?" in chat.last_text
    await chat.press("warehouse")
    await chat.press("Quote")
    await chat.say("Sent the fit-out quote")
    await chat.say("skip")
    await chat.say("skip")
    [item] = await all_rows(crm, Interaction)
    assert item.deal_id == second.id


async def test_the_command_text_searches_the_contact(chat, crm, leads):
    await chat.say("/log Haddad")  # two match: offered as the question's choices
    assert chat.asking == "contact" and sorted(chat.labels) == ["Rana Haddad", "Sami Haddad"]
    await chat.press("Sami Haddad")
    assert chat.asking == "kind"
    await chat.say("/followup Zed")  # none: the question explains and asks
    assert "⚠️ No contact matches “Zed”" in chat.last_text and chat.asking == "contact"
    await chat.say("/followup 4567")  # the last phone digits
    assert chat.asking == "title"
    await chat.say("back")
    assert chat.asking == "contact"


async def test_log_bad_input_at_every_step_keeps_earlier_answers(chat, crm, leads):
    await chat.say("/log")
    await chat.say("Zed")
    assert "No contact matches “Zed”" in chat.last_text and "/newlead" in chat.last_text
    assert chat.asking == "contact"
    await chat.say("Omar")
    await chat.say("dance")
    assert "Please pick one of: 📞 Call, 💬 Message" in chat.last_text and chat.asking == "kind"
    await chat.say("1")
    await chat.say("   ")
    assert chat.texts[0].startswith("⚠️ The summary cannot be empty.") and chat.asking == "summary"
    await chat.say("x" * 2001)
    assert "2000" in chat.last_text and chat.asking == "summary"
    await chat.say("Asked for a discount")
    await chat.say("call back")
    await chat.say("7")
    assert "just a number" in chat.last_text and chat.asking == "follow_up"
    await chat.say("last friday")
    assert "is in the past" in chat.last_text and chat.asking == "follow_up"
    assert await count_rows(crm, Interaction) == 0
    await chat.press("Next week")
    [item] = await all_rows(crm, Interaction)
    assert (item.kind, item.summary, item.outcome) == ("call", "Asked for a discount", "call back")


async def test_log_back_skip_and_cancel(chat, crm, leads):
    await chat.say("/log")
    await chat.say("Omar")
    await chat.press("Email")
    await chat.say("back")
    assert chat.asking == "kind"
    await chat.press("Message")
    await chat.say("WhatsApp about the visit")
    await chat.press("Skip")  # outcome
    assert chat.asking == "follow_up"
    await chat.say("cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /log."
    assert await count_rows(crm, Interaction) == 0


async def test_log_without_a_next_step_reminds_the_rep(chat, crm, rana):
    await create_lead(crm, rana, name="Lina Saad")  # no next step
    await chat.say("/log Lina")
    await chat.press("Call")
    await chat.say("No answer")
    await chat.say("skip")
    await chat.say("skip")
    assert "⚠️ No next step for this client yet — add a follow-up?" in chat.last_text


async def test_a_forwarded_message_is_logged_to_the_contact_picked(chat, crm, leads):
    sent = datetime(2026, 12, 3, 16, 30, tzinfo=timezone.utc)
    await chat.send(forwarded=Forwarded(sender_name="Omar Aziz", sent_at=sent, text="Can you do 10% off?"))
    assert chat.texts[0] == "📨 Forwarded message from Omar Aziz. Log it to which contact?"
    await chat.say("Omar")
    assert chat.asking == "outcome"  # kind and summary came with the message
    await chat.say("skip")
    await chat.say("skip")
    [item] = await all_rows(crm, Interaction)
    assert (item.kind, item.summary, item.occurred_at) == ("message", "Can you do 10% off?", sent)


# --- /followup ------------------------------------------------------------------------------------


async def test_followup_what_and_when(chat, crm, leads):
    before = await count_rows(crm, Task)
    await chat.say("/followup")
    await chat.say("Rana")
    assert "What's the next step?" in chat.last_text
    await chat.say("Send the revised quote")
    assert "When?" in chat.last_text and chat.labels == ["Tomorrow", "Next week", "End of month"]
    await chat.press("End of month")
    assert chat.last_text == "⏰ Follow-up set for Rana Haddad: Send the revised quote — Thu 31 Dec, 09:00 UTC"
    assert await count_rows(crm, Task) == before + 1
    task = (await all_rows(crm, Task))[-1]
    assert (task.title, task.contact_id, task.deal_id, task.status) == (
        "Send the revised quote", leads["rana"].contact.id, leads["rana"].deal.id, "open")


async def test_followup_skipping_what_uses_a_default_title(chat, crm, leads):
    await chat.say("/followup")
    await chat.say("Sami")
    await chat.say("skip")
    await chat.say("tomorrow 3pm")
    assert chat.last_text == "⏰ Follow-up set for Sami Haddad: Follow up with Sami Haddad — Sat 5 Dec, 15:00 UTC"


async def test_followup_bad_dates_are_reasked_and_nothing_is_saved(chat, crm, leads):
    before = await count_rows(crm, Task)
    await chat.say("/followup")
    await chat.say("Sami")
    await chat.say("Call again")
    for bad, why in (("42", "just a number"), ("yesterday 5pm", "is in the past"),
                     ("when pigs fly", "couldn't read")):
        await chat.say(bad)
        assert why in chat.last_text and chat.asking == "due", bad
        assert "tomorrow 3pm" in chat.last_text  # an example of what works
    await chat.say("back")
    assert chat.asking == "title"
    await chat.say("cancel")
    assert await count_rows(crm, Task) == before


async def test_followup_in_the_users_time_zone(crm, make_user, leads):
    dana = await make_user("Dana", tz="Asia/Dubai", identity=("console", "dubai"))
    await create_lead(crm, dana, name="Layla Nasser")
    chat = Chat(Router(crm), user_id="dubai")
    await chat.say("/followup")
    assert chat.labels == ["Layla Nasser"]  # Dana sees only her own contacts
    await chat.say("Layla")
    await chat.say("skip")
    await chat.say("tomorrow")
    assert chat.last_text.endswith("Follow up with Layla Nasser — Sat 5 Dec, 09:00 Asia/Dubai")
    task = (await all_rows(crm, Task))[-1]
    assert task.due_at == datetime(2026, 12, 5, 5, 0, tzinfo=timezone.utc)


# --- a file sent in the chat ------------------------------------------------------------------------


async def test_a_file_is_attached_to_the_contact_picked(chat, crm, leads, tmp_path, settings):
    sent = tmp_path / "inbox-quote.pdf"
    sent.write_bytes(b"%PDF-1.4 quote")
    await chat.send(attachment=Attachment(sent, "Quote v2.pdf", sent.stat().st_size))
    assert chat.texts[0] == "📎 Quote v2.pdf received. Attach it to which contact?"
    await chat.say("Omar")
    assert chat.asking == "note"
    await chat.say("Revised prices")
    assert chat.last_text == "📎 Attached Quote v2.pdf to Omar Aziz's history."
    [item] = await all_rows(crm, Interaction)
    assert (item.kind, item.summary, item.attachment_name) == ("file", "Revised prices", "Quote v2.pdf")
    assert Path(item.attachment_path).read_bytes() == b"%PDF-1.4 quote"
    assert Path(item.attachment_path).is_relative_to(settings.data_dir.resolve())


async def test_cancelling_an_attachment_saves_nothing(chat, crm, leads, tmp_path):
    sent = tmp_path / "photo.jpg"
    sent.write_bytes(b"jpeg")
    await chat.send(attachment=Attachment(sent, "photo.jpg", 4), text="site visit")
    await chat.say("Nobody at all")
    assert "No contact matches" in chat.last_text and chat.asking == "contact"
    await chat.say("cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /attach."
    assert await count_rows(crm, Interaction) == 0
