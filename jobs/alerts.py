"""Team alerts and welcomes, queued in the same transaction as the change that caused them.

`enqueue_alerts` is a unit-of-work before-commit hook (append it to `crm.hooks`): an alert is
in the outbox if and only if the change committed. Each kind can be switched off per team
channel (`TeamChannel.alert_new_lead`, `alert_won`, `alert_payment`).
"""

from __future__ import annotations

from collections.abc import Sequence

from conversations.messages import Choice, Reply
from conversations.registry import COMMANDS
from conversations.rich import Rich, bold
from jobs.outbox import enqueue, enqueue_dm
from jobs.texts import about, go, money
from storage.models import Contact, Contract, Deal, Payment, User
from storage.repos.scans import ScanRepository
from storage.uow import DomainEvent, UnitOfWork

WELCOME_COMMANDS = 6


async def enqueue_alerts(
    uow: UnitOfWork, events: Sequence[DomainEvent], locale: str = "en"
) -> None:
    """Turn lead_created / deal_won / payment_recorded / user_joined into outbox rows."""
    for event in events:
        handler = HANDLERS.get(event.name)
        if handler is not None:
            await handler(uow, event.data, locale)


async def _team_alert(
    uow: UnitOfWork, owner: User, switch: str, key: str, reply: Reply, kind: str
) -> None:
    channels = await ScanRepository(uow.session).channels_for_owner(owner)
    addresses = [c.address for c in channels if getattr(c, switch)]
    await enqueue(uow, key, addresses, reply, kind=kind)


async def _lead_created(uow: UnitOfWork, data: dict, locale: str) -> None:
    deal = await uow.session.get(Deal, data["deal_id"])
    owner = await uow.session.get(User, data.get("owner_id") or deal.owner_id)
    contact = await uow.session.get(Contact, data.get("contact_id") or deal.contact_id)
    name = contact.name or contact.company or contact.phone or contact.email or "New contact"
    company = f" ({contact.company})" if contact.company and contact.name else ""
    details = [deal.title] if not deal.title.startswith(name) else []
    if deal.value_minor:
        details.append(money(deal.value_minor, deal.currency, locale))
    if deal.source:
        details.append(deal.source)
    facts = " · ".join(details)
    headline = Rich.of(bold(name), company)
    lines = [
        Rich.of("🆕 New lead: ", headline),
        facts,
        Rich.of("Owner: ", bold(owner.display_name)),
    ]
    team = Reply(Rich.lines(line for line in lines if line))
    await _team_alert(uow, owner, "alert_new_lead", f"alert:lead:{deal.id}", team, "alert_lead")
    if owner.id != uow.source.actor_id:  # assigned by someone else or by the website form
        ways = " · ".join(w for w in (contact.phone, contact.email) if w)
        lines = [Rich.of("🆕 A new lead for you: ", headline)] + [
            line for line in (facts, ways) if line
        ]
        mine = Reply(
            Rich.lines(lines),
            choices=(
                Choice("📞 Log", go("log", deal=deal.id)),
                Choice("📅 Follow-up", go("followup", deal=deal.id)),
            ),
        )
        await enqueue_dm(uow, owner, f"lead:owner:{deal.id}", mine, kind="lead")


async def _deal_won(uow: UnitOfWork, data: dict, locale: str) -> None:
    deal = await uow.session.get(Deal, data["deal_id"])
    owner = await uow.session.get(User, deal.owner_id)
    contact = await uow.session.get(Contact, deal.contact_id)
    value = f" · {money(deal.value_minor, deal.currency, locale)}" if deal.value_minor else ""
    reply = Reply.say(
        "🏆 ",
        bold(owner.display_name),
        " won ",
        bold(about(contact.name, deal.title)),
        f"{value} 🎉",
    )
    await _team_alert(uow, owner, "alert_won", f"alert:won:{deal.id}", reply, "alert_won")


async def _payment_recorded(uow: UnitOfWork, data: dict, locale: str) -> None:
    payment = await uow.session.get(Payment, data["payment_id"])
    contract = await uow.session.get(Contract, data.get("contract_id") or payment.contract_id)
    deal = await uow.session.get(Deal, contract.deal_id)
    contact = await uow.session.get(Contact, deal.contact_id)
    owner = await uow.session.get(User, contract.owner_id)
    reply = Reply.say(
        "💰 Payment received: ",
        bold(money(payment.amount_minor, payment.currency, locale)),
        f" from {contact.name or contact.company or 'a client'} ({contract.number})",
    )
    await _team_alert(
        uow, owner, "alert_payment", f"alert:payment:{payment.id}", reply, "alert_payment"
    )


async def _user_joined(uow: UnitOfWork, data: dict, locale: str) -> None:
    user = await uow.session.get(User, data["user_id"])
    await enqueue_dm(
        uow, user, f"welcome:user:{user.id}", welcome(user), kind="welcome", urgent=True
    )


def welcome(user: User) -> Reply:
    """A short guided welcome listing the commands a member uses most (from the registry)."""
    commands = sorted(
        (c for c in COMMANDS.values() if not c.public and c.name != "help"),
        key=lambda c: (c.order, c.name),
    )
    lines: list = [Rich.of("👋 Welcome to ChatCRM, ", bold(user.display_name), "!")]
    if commands:
        lines.append("Here is what you will use most:")
        lines.extend(f"• /{c.name}: {c.help}" for c in commands[:WELCOME_COMMANDS])
    lines.append("Type /help any time to see everything. Start by adding your first lead!")
    return Reply(Rich.lines(lines))


HANDLERS = {
    "lead_created": _lead_created,
    "deal_won": _deal_won,
    "payment_recorded": _payment_recorded,
    "user_joined": _user_joined,
}
