"""Direct messages with the Slack app step through the same flows as Telegram, with buttons
that act in place."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from handlers.contacts import create_lead, search_contacts
from handlers.contracts import win_deal_with_contract
from handlers.values import Money
from storage.models import Deal, Interaction, Payment, Task
from tests.fakes.slack_harness import slack, slack_api  # noqa: F401  (fixtures)


async def a_lead(crm, actor, name="Acme Trading"):
    return await create_lead(crm, actor, name=name, phone="+971501234567", value=Money(5_000_00, "USD"),
                             next_step_at=crm.now() + timedelta(hours=2))


def buttons(post: dict) -> dict[str, str]:
    """label -> value of every button on a posted message."""
    return {e["text"]["text"]: e["value"] for b in post["blocks"] if b["type"] == "actions"
            for e in b["elements"] if e["type"] == "button"}


async def test_newlead_step_by_step_with_buttons(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    await slack.dm("U1", "/newlead")
    assert "What's the person's name?" in slack.texts()[-1]
    await slack.dm("U1", "Rana Haddad")
    # The answered question becomes a clean log line without buttons.
    update = slack.api.called("chat.update")[-1]
    assert update["text"] == "✓ Name: Rana Haddad" and all(b["type"] == "section" for b in update["blocks"])

    assert "Company?" in slack.texts()[-1]
    await slack.press("U1", buttons(slack.last_post("D1"))["Skip"])
    await slack.dm("U1", "+971 50 765 4321")
    await slack.press("U1", buttons(slack.last_post("D1"))["Skip"])  # email
    assert "Where did this lead come from?" in slack.texts()[-1]
    source_question = slack.last_post("D1")
    await slack.press("U1", buttons(source_question)["Website"])
    pressed = slack.api.called("chat.update")[-1]
    assert (pressed["ts"], pressed["text"]) == (source_question["ts"], "✓ Source: website")
    await slack.dm("U1", "5k")
    await slack.dm("U1", "tomorrow 10am")

    assert "Lead saved: Rana Haddad" in slack.texts()[-1]
    [contact] = await search_contacts(crm, rana, "Haddad")
    assert (contact.phone, contact.source) == ("+971507654321", "website")


async def test_log_and_followup_from_the_card_buttons(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    await slack.dm("U1", "Acme")  # plain text is a search: the contact's card
    card = slack.last_post("D1")
    assert "Acme Trading" in card["text"]

    await slack.dm("U1", "/log")
    await slack.dm("U1", "acme")
    await slack.press("U1", buttons(slack.last_post("D1"))["📞 Call"])
    await slack.dm("U1", "Asked for a discount")
    await slack.press("U1", buttons(slack.last_post("D1"))["Skip"])  # outcome
    await slack.press("U1", buttons(slack.last_post("D1"))["Skip"])  # follow-up
    assert "Logged call with Acme Trading" in slack.texts()[-1]
    async with crm.reader() as uow:
        logged = (await uow.session.execute(select(Interaction))).scalar_one()
    assert (logged.deal_id, logged.kind) == (lead.deal.id, "call")

    await slack.press("U1", buttons(slack.last_post("D1"))["⏰ Follow-up"])
    await slack.dm("U1", "Send the quote")
    await slack.dm("U1", "monday 9am")
    assert "Follow-up set for" in slack.texts()[-1]
    async with crm.reader() as uow:
        titles = (await uow.session.execute(select(Task.title))).scalars().all()
    assert "Send the quote" in titles


async def test_move_won_and_pay_in_the_dm(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    await slack.dm("U1", "/move")
    await slack.dm("U1", "acme")
    await slack.press("U1", buttons(slack.last_post("D1"))["Proposal"])
    async with crm.reader() as uow:
        assert (await uow.session.get(Deal, lead.deal.id)).stage == "proposal"

    view = await win_deal_with_contract(crm, rana, lead.deal.id, count=2, frequency="monthly",
                                        first_due=crm.now().date() + timedelta(days=3))
    await slack.dm("U1", "/pay")
    await slack.dm("U1", view.contract.number)
    await slack.press("U1", buttons(slack.last_post("D1"))["Oldest open first"])
    await slack.dm("U1", "1000")
    await slack.press("U1", buttons(slack.last_post("D1"))["Today"])
    for _ in range(2):  # method and reference
        await slack.press("U1", buttons(slack.last_post("D1"))["Skip"])
    await slack.press("U1", buttons(slack.last_post("D1"))["✅ Confirm"])
    assert "Payment of $1,000.00 recorded" in slack.texts()[-1]
    async with crm.reader() as uow:
        assert (await uow.session.execute(select(Payment.amount_minor))).scalar_one() == 1000_00


async def test_tasks_buttons_update_the_task_in_place(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    await slack.dm("U1", "/tasks")
    task_message = slack.last_post("D1")
    assert lead.task.title in task_message["text"]

    await slack.press("U1", buttons(task_message)["✅ Done"])
    update = slack.api.called("chat.update")[-1]
    assert update["ts"] == task_message["ts"]
    assert update["text"].startswith("✅ Done:")
    async with crm.reader() as uow:
        assert (await uow.session.get(Task, lead.task.id)).status == "done"


async def test_find_answers_with_the_contact(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    await a_lead(crm, rana, name="Zed Motors")
    await slack.dm("U1", "/find zed")
    assert "Zed Motors" in slack.texts()[-1]


async def test_a_stranger_is_told_how_to_join(slack):
    await slack.dm("U9", "hello")
    assert "not on this team's ChatCRM yet" in slack.texts("D9")[-1]
    assert "`U9`" in slack.last_post("D9")["blocks"][0]["text"]["text"]


async def test_a_file_sent_in_the_dm_is_saved_and_attached(slack, make_user, crm, settings):
    from tests.fakes import slack_requests as sr

    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    slack.api.files["F77"] = b"%PDF quote"
    shared = {"id": "F77", "name": "quote.pdf", "mimetype": "application/pdf", "size": 10,
              "url_private_download": slack.api.file_url("F77")}
    await slack.dispatch(sr.event_body(sr.dm_event("U1", "", files=[shared])))
    assert "quote.pdf received. Attach it to which contact?" in "\n".join(slack.texts()[-2:])
    [saved] = (settings.data_dir / "inbox").iterdir()
    assert saved.read_bytes() == b"%PDF quote"

    await slack.dm("U1", "acme")
    await slack.dm("U1", "Signed quote")
    assert "Attached quote.pdf to" in slack.texts()[-1]
    async with crm.reader() as uow:
        attached = (await uow.session.execute(select(Interaction))).scalar_one()
    assert (attached.contact_id, attached.kind, attached.attachment_name) == (lead.contact.id, "file", "quote.pdf")
