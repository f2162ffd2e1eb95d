"""The instant commands: /help, /start, /find and its card, /tasks and their buttons, /pipeline."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from conversations.commands.basics import menu
from conversations.forms import FLOWS
from conversations.registry import COMMANDS
from handlers.contacts import create_lead
from handlers.contracts import win_deal_with_contract
from handlers.interactions import log_interaction
from handlers.tasks import complete_task, create_task
from handlers.values import Money
from storage.models import Task
from tests.chat import all_rows, chat, rana  # noqa: F401  (fixtures)


async def test_help_lists_every_command_with_one_line(chat):
    await chat.say("/help")
    text = chat.last_text
    listed = [f for f in FLOWS.values() if f.listed] + list(COMMANDS.values())
    for item in listed:
        assert f"/{item.name} — {item.help}" in text, item.name
    for hidden in (f for f in FLOWS.values() if not f.listed):
        assert f"/{hidden.name} " not in text  # started from buttons only
    assert text.index("/newlead") < text.index("/log") < text.index("/won") < text.index("/pay")
    assert "back, skip or cancel" in text
    assert len(menu()) == len(listed)


async def test_start_welcomes_a_known_user_with_buttons(chat):
    await chat.say("/start")
    assert chat.last_text.startswith("👋 Hi Rana!")
    assert chat.labels == ["🆕 New lead", "✅ My tasks", "📊 Pipeline"]
    await chat.press("New lead")
    assert chat.asking == "name"


async def test_find_shows_the_contact_card(chat, crm, rana):
    lead = await create_lead(crm, rana, name="Rana Haddad", company="Acme Trading", phone="+971501234567",
                             email="rana@acme.ae", source="website", value=Money(5_000_00, "USD"),
                             next_step_at=datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc),
                             next_step="Send the proposal")
    await log_interaction(crm, rana, contact_id=lead.contact.id, deal_id=lead.deal.id, kind="call",
                          summary="Intro call, wants a proposal")
    await chat.say("/find 4567")
    assert chat.last_text == "\n".join([
        "👤 Rana Haddad (Acme Trading)",
        "+971501234567 · rana@acme.ae",
        "Owner: Rana · Source: website",
        "💼 Rana Haddad (Acme Trading) · New · $5,000.00",
        "Next steps",
        "☐ Send the proposal — Mon 7 Dec, 09:00 UTC",
        "Latest",
        "• 04 Dec call: Intro call, wants a proposal",
    ])
    assert chat.labels == ["📝 Log", "⏰ Follow-up", "➡️ Move"]
    await chat.press("Log")
    assert chat.asking == "kind"  # the contact came with the button
    await chat.say("cancel")

    await chat.say("acme")  # plain text outside a flow is a search too
    assert chat.texts[0].startswith("👤 Rana Haddad (Acme Trading)")


async def test_find_with_several_matches_lists_them_and_a_card_shows_the_balance(chat, crm, rana):
    soon = crm.now() + timedelta(days=1)
    one = await create_lead(crm, rana, name="Sami Haddad", value=Money(3_000_00, "USD"), next_step_at=soon)
    await create_lead(crm, rana, name="Rana Haddad", next_step_at=soon)
    # 1 Nov and 1 Dec are overdue on 4 Dec
    await win_deal_with_contract(crm, rana, one.deal.id, count=3, frequency="monthly", first_due=date(2026, 11, 1))
    await chat.say("/find Haddad")
    assert chat.texts[0] == "🔎 2 matches for “Haddad”:"
    await chat.press("Sami Haddad")
    assert "💼 Sami Haddad · Won · $3,000.00" in chat.last_text
    assert "📄 CTR-2026-0001 · balance $3,000.00 · overdue $2,000.00" in chat.last_text
    assert chat.labels == ["📝 Log", "⏰ Follow-up", "💵 Pay"]  # a won deal cannot be moved
    await chat.say("/find Nobody")
    assert chat.last_text == "🔎 Nothing matches “Nobody”. Add it with /newlead Nobody?"
    await chat.say("/find")
    assert sorted(chat.labels) == ["Rana Haddad", "Sami Haddad"]


async def tasks_fixture(crm, rana):
    lead = await create_lead(crm, rana, name="Acme Trading")
    overdue = await create_task(crm, rana, title="Chase the deposit", due_at=crm.now() - timedelta(hours=3),
                                contact_id=lead.contact.id)
    today = await create_task(crm, rana, title="Call Acme", due_at=crm.now() + timedelta(hours=4),
                              contact_id=lead.contact.id)
    later = await create_task(crm, rana, title="Quarterly review", due_at=crm.now() + timedelta(days=10),
                              contact_id=lead.contact.id)
    return overdue, today, later


async def test_tasks_lists_overdue_today_and_upcoming_with_buttons(chat, crm, rana):
    await chat.say("/tasks")
    assert chat.last_text == "🎉 No open follow-ups. Add one with /followup."
    overdue, today, later = await tasks_fixture(crm, rana)
    await chat.say("/tasks")
    assert chat.texts == [
        "🔥 Overdue 1 · 📅 Today 1 · 🗓 Upcoming 1",
        "🔥 ☐ Chase the deposit — Fri 4 Dec, 06:00 UTC",
        "📅 ☐ Call Acme — Fri 4 Dec, 13:00 UTC",
        "Upcoming\n☐ Quarterly review — Mon 14 Dec, 09:00 UTC",
    ]
    assert [c.label for c in chat.replies[1].choices] == ["✅ Done", "💤 1 h", "🌅 Tomorrow", "📅 Reschedule"]


async def test_task_buttons_done_snooze_tomorrow_and_reschedule(chat, crm, rana):
    overdue, today, _ = await tasks_fixture(crm, rana)
    await chat.say("/tasks")
    done = chat.replies[1].choices[0].value
    snooze = chat.replies[2].choices[1].value
    await chat.send(action=done)
    assert chat.last_text == "✅ Done: Chase the deposit"
    await chat.send(action=snooze)
    assert chat.last_text == "💤 Call Acme — moved to Fri 4 Dec, 10:00 UTC"
    await chat.press("Tomorrow")
    assert chat.last_text == "💤 Call Acme — moved to Sat 5 Dec, 09:00 UTC"
    await chat.press("Reschedule")
    assert chat.last_text.startswith("📅 New time for Call Acme?")
    await chat.say("5")
    assert "just a number" in chat.last_text and chat.asking == "due"
    await chat.say("mon 2pm")
    assert chat.last_text == "📅 Call Acme moved to Mon 7 Dec, 14:00 UTC"
    rows = {t.title: t for t in await all_rows(crm, Task)}
    assert rows["Chase the deposit"].status == "done"
    assert rows["Call Acme"].due_at == datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)

    await chat.send(action=done)  # pressing ✅ Done twice
    assert chat.last_text == "⚠️ This task is already done."


async def test_pipeline_counts_and_values_per_stage_and_stalled_deals(chat, crm, rana, clock):
    await create_lead(crm, rana, name="Acme Trading", value=Money(5_000_00, "USD"))
    await create_lead(crm, rana, name="Globex", value=Money(1_500_00, "USD"))
    clock.advance(days=3)  # both have rested past the "new" stage's one day
    await chat.say("/pipeline")
    assert chat.last_text.startswith("\n".join([
        "📊 Your pipeline",
        "New: 2 · $6,500.00",
        "Contacted: 0 · —",
        "Proposal: 0 · —",
        "Negotiation: 0 · —",
        "Open total: $6,500.00",
        "",
        "⏳ Stalled (2)",
    ]))
    assert "• Acme Trading · New · 3 d idle" in chat.last_text
    assert chat.labels[0] == "📈 Chart"
    assert sorted(chat.labels[1:]) == ["⏰ Acme Trading", "⏰ Globex"]
    await chat.press("⏰ Globex")
    assert chat.asking == "title"  # a follow-up for that deal, its contact implied


async def test_rescheduling_a_task_done_meanwhile_says_so_and_can_be_left(chat, crm, rana):
    task = await create_task(crm, rana, title="Call Acme", due_at=crm.now() + timedelta(hours=2))
    await chat.say("/tasks")
    await chat.press("Reschedule")
    await complete_task(crm, rana, task.id)  # done from another device meanwhile
    await chat.say("tomorrow")
    assert chat.texts[0].startswith("⚠️ This task is already done.")
    assert chat.asking == "due" and "cancel" in chat.last_text
    await chat.say("cancel")
    assert chat.last_text == "Cancelled. Nothing was saved from /reschedule."


async def test_an_old_reschedule_button_of_a_done_task_is_refused_at_once(chat, crm, rana):
    task = await create_task(crm, rana, title="Call Acme", due_at=crm.now() + timedelta(hours=2))
    await chat.say("/tasks")
    reschedule = chat.button("Reschedule").value
    await complete_task(crm, rana, task.id)
    await chat.send(action=reschedule)
    assert chat.texts[0].startswith("⚠️ “Call Acme” is already done. /tasks shows the open ones.")
