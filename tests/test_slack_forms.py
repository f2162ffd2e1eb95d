"""`/crm <verb>` on Slack: help, and each flow as a modal with the validators' errors inline."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from handlers.contacts import create_lead, search_contacts
from handlers.values import Money
from storage.models import Contact, Contract, Deal, Interaction, Payment, Task
from tests.fakes import slack_requests as sr
from tests.fakes.slack_harness import slack, slack_api  # noqa: F401  (fixtures)


def typed(text: str) -> dict:
    return {"type": "plain_text_input", "value": text}


def chosen(value: str) -> dict:
    return {"type": "static_select", "selected_option": {"value": value}}


def blocks_of(view: dict) -> dict[str, dict]:
    return {b["block_id"]: b for b in view["blocks"]}


async def count(crm, model) -> int:
    async with crm.reader() as uow:
        return (await uow.session.execute(select(func.count()).select_from(model))).scalar_one()


async def a_lead(crm, actor, name="Acme Trading", value=5_000_00):
    return await create_lead(crm, actor, name=name, phone="+971501234567", value=Money(value, "USD"),
                             next_step_at=crm.now() + timedelta(days=1))


async def test_crm_alone_and_help_list_the_verbs(slack, make_user):
    await make_user("Rana", identity=("slack", "U1"))
    for text in ("", "help"):
        answer = slack.ack_json(await slack.command("U1", text))
        listing = answer["blocks"][0]["text"]["text"]
        assert "`/crm newlead` — Add a lead" in listing
        assert "`/crm pay`" in listing and "`/crm tasks`" in listing
    assert slack.api.called("views.open") == []


async def test_newlead_modal_shows_inline_errors_then_saves(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    await slack.command("U1", "newlead Acme Trading")

    view = slack.last_modal()
    assert view["title"]["text"] == "New lead"
    fields = blocks_of(view)
    assert fields["name"]["element"]["initial_value"] == "Acme Trading"
    assert fields["source"]["element"]["type"] == "static_select"
    assert fields["next_step_at"]["optional"] is False

    answers = {"name": typed("Acme Trading"), "phone": typed("12"), "next_step_at": typed("tomorrow 10am"),
               "source": chosen("ans:referral")}
    refused = slack.ack_json(await slack.submit("U1", answers))
    assert refused["response_action"] == "errors"
    assert list(refused["errors"]) == ["phone"]
    assert await count(crm, Contact) == 0

    answers["phone"] = typed("050 123 4567")
    assert (await slack.submit("U1", answers)).body == ""
    saved = await search_contacts(crm, rana, "Acme")
    assert [(c.name, c.phone, c.source) for c in saved] == [("Acme Trading", "+971501234567", "referral")]
    assert "Lead saved: Acme Trading" in slack.texts("D1")[-1]
    buttons = slack.last_post("D1")["blocks"][-1]["elements"]
    assert [b["text"]["text"] for b in buttons][:3] == ["📝 Log", "⏰ Follow-up", "➡️ Move"]


async def test_log_modal_picks_a_recent_contact(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    await slack.command("U1", "log")

    fields = blocks_of(slack.last_modal())
    recent = fields["contact__pick"]["element"]["options"]
    assert [o["text"]["text"] for o in recent] == ["Acme Trading"]
    assert fields["summary"]["element"]["multiline"] is True

    missing = slack.ack_json(await slack.submit("U1", {"contact__pick": chosen(recent[0]["value"]),
                                                      "kind": chosen("ans:call")}))
    assert missing == {"response_action": "errors", "errors": {"summary": "This one is needed."}}
    assert await count(crm, Interaction) == 0

    await slack.submit("U1", {"contact__pick": chosen(recent[0]["value"]), "kind": chosen("ans:call"),
                              "summary": typed("Wants 10% off <!channel>")})
    async with crm.reader() as uow:
        logged = (await uow.session.execute(select(Interaction))).scalar_one()
    assert (logged.contact_id, logged.kind, logged.summary) == (lead.contact.id, "call", "Wants 10% off <!channel>")


async def test_followup_modal_refuses_an_unreadable_time(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    await a_lead(crm, rana)
    tasks_before = await count(crm, Task)
    await slack.command("U1", "followup")

    answers = {"contact": typed("Acme"), "title": typed("Send the revised quote"), "due": typed("whenever")}
    refused = slack.ack_json(await slack.submit("U1", answers))
    assert list(refused["errors"]) == ["due"]
    assert await count(crm, Task) == tasks_before

    answers["due"] = typed("tomorrow 3pm")
    await slack.submit("U1", answers)
    assert await count(crm, Task) == tasks_before + 1
    assert "Follow-up set for" in slack.texts("D1")[-1]
    assert "Sat 5 Dec, 15:00" in slack.texts("D1")[-1]


async def test_move_modal_moves_the_deal(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    await slack.command("U1", "move")

    stages = blocks_of(slack.last_modal())["stage"]["element"]["options"]
    assert "ans:contacted" in [o["value"] for o in stages]
    unknown = slack.ack_json(await slack.submit("U1", {"deal": typed("Nobody"), "stage": chosen("ans:contacted")}))
    assert list(unknown["errors"]) == ["deal"]

    await slack.submit("U1", {"deal": typed("Acme"), "stage": chosen("ans:contacted")})
    async with crm.reader() as uow:
        deal = await uow.session.get(Deal, lead.deal.id)
    assert deal.stage == "contacted"
    assert "is now Contacted" in slack.texts("D1")[-1]


async def test_won_modal_continues_in_the_dm_for_the_schedule(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    await a_lead(crm, rana)
    await slack.command("U1", "won")

    fields = blocks_of(slack.last_modal())
    assert "count" not in fields  # depends on the schedule: asked in the DM after the modal
    await slack.submit("U1", {"deal": typed("Acme"), "frequency": chosen("ans:monthly")})
    assert "How many installments?" in slack.texts("D1")[-1]

    await slack.press("U1", "say:3")
    assert "First installment due on?" in slack.texts("D1")[-1]
    question = slack.last_post("D1")
    await slack.dispatch(sr.datepicker_body("U1", "2027-01-15", message_ts=question["ts"]))
    assert slack.api.called("chat.update")[-1]["text"] == "✓ First due: Fri 15 Jan 2027"
    assert "Mark the deal won" in slack.texts("D1")[-1]
    await slack.press("U1", "nav:ok")
    assert "Deal won! Contract" in slack.texts("D1")[-1]
    assert await count(crm, Contract) == 1


async def test_pay_modal_records_a_payment(slack, make_user, crm):
    rana = await make_user("Rana", identity=("slack", "U1"))
    lead = await a_lead(crm, rana)
    from handlers.contracts import win_deal_with_contract

    view = await win_deal_with_contract(crm, rana, lead.deal.id, count=2, frequency="monthly",
                                        first_due=crm.now().date() + timedelta(days=3))
    await slack.command("U1", f"pay {view.contract.number}")
    fields = blocks_of(slack.last_modal())
    assert "amount" in fields

    answers = {"contract": typed(view.contract.number), "invoice": chosen("ans:oldest"), "amount": typed("lots")}
    refused = slack.ack_json(await slack.submit("U1", answers))
    assert list(refused["errors"]) == ["amount"]
    assert await count(crm, Payment) == 0

    answers["amount"] = typed("1,000")
    await slack.submit("U1", answers)
    assert "Payment of $1,000.00 recorded" in slack.texts("D1")[-1]
    assert await count(crm, Payment) == 1


async def test_a_stranger_gets_a_private_answer_instead_of_a_form(slack):
    await slack.command("U9", "newlead Acme")
    assert slack.api.called("views.open") == []
    [answer] = slack.api.responses
    assert "not on this team's ChatCRM yet" in answer["text"] and "`U9`" in answer["blocks"][0]["text"]["text"]


async def test_a_failed_save_keeps_the_modal_open_with_a_note(slack, make_user, monkeypatch):
    await make_user("Rana", identity=("slack", "U1"))
    await slack.command("U1", "newlead")

    async def broken(*args, **kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr(slack.channel.router, "submit_form", broken)
    answer = slack.ack_json(await slack.submit("U1", {"name": typed("Acme"), "next_step_at": typed("tomorrow")}))
    assert answer == {"response_action": "errors",
                      "errors": {"name": "Sorry, that didn't save. Please press Save again in a moment."}}
