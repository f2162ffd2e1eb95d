"""Cards: the compact views of a contact, deal or contract that replies and notifications show,
with the action buttons a rep needs next."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from conversations.dates import format_when
from conversations.messages import Choice, Reply
from conversations.registry import action_value
from conversations.rich import Rich, bold, italic
from handlers.contacts import ContactCard, contact_label
from handlers.values import format_money
from storage.enums import STAGE_INFO, Stage


def stage_label(stage: str) -> str:
    return STAGE_INFO[Stage(stage)].label


def money(minor: int, currency: str, language: str = "en") -> str:
    return format_money(minor, currency, language)


def deal_line(deal, language: str = "en") -> Rich:
    return Rich.of(
        "💼 ", bold(deal.title), f" · {stage_label(deal.stage)} · ",
        money(deal.value_minor, deal.currency, language),
    )


def task_line(task, tz: ZoneInfo) -> Rich:
    return Rich.of("☐ ", task.title, " — ", format_when(task.due_at, tz))


def deal_actions(deal_id: int) -> tuple[Choice, ...]:
    return (
        Choice("📝 Log", action_value("go", "log", f"deal={deal_id}")),
        Choice("⏰ Follow-up", action_value("go", "followup", f"deal={deal_id}")),
        Choice("➡️ Move", action_value("go", "move", f"deal={deal_id}")),
    )


def contact_card_reply(card: ContactCard, tz: ZoneInfo, language: str, balances: list[Rich]) -> Reply:
    c = card.contact
    lines: list = [Rich.of("👤 ", bold(contact_label(c)))]
    details = [x for x in (c.phone, c.email) if x]
    if details:
        lines.append(Rich.of(" · ".join(details)))
    lines.append(Rich.of(italic(f"Owner: {card.owner_name}" + (f" · Source: {c.source}" if c.source else ""))))
    for d in card.deals:
        lines.append(deal_line(d, language))
    for b in balances:
        lines.append(b)
    if card.open_tasks:
        lines.append(Rich.of(bold("Next steps")))
        lines.extend(task_line(t, tz) for t in card.open_tasks[:3])
    else:
        lines.append(Rich.of("⚠️ No next step yet — add a follow-up."))
    if card.last_interactions:
        lines.append(Rich.of(bold("Latest")))
        for i in card.last_interactions[:5]:
            when = i.occurred_at.astimezone(tz)
            lines.append(Rich.of(f"• {when:%d %b} {i.kind}: ", i.summary[:120]))
    choices = [
        Choice("📝 Log", action_value("go", "log", f"contact={c.id}")),
        Choice("⏰ Follow-up", action_value("go", "followup", f"contact={c.id}")),
    ]
    open_deals = [d for d in card.deals if d.stage not in (Stage.WON, Stage.LOST)]
    if open_deals:
        choices.append(Choice("➡️ Move", action_value("go", "move", f"deal={open_deals[0].id}")))
    if card.contract_ids:
        choices.append(Choice("💵 Pay", action_value("go", "pay", f"contract={card.contract_ids[0]}")))
    return Reply(text=Rich.lines(lines), choices=tuple(choices), edit_key=f"contact:{c.id}")


def when_text(moment: datetime | None, tz: ZoneInfo) -> str:
    return format_when(moment, tz) if moment else "—"
