"""/log an interaction, and attaching a received file to a contact's history."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from conversations import fields as F
from conversations.cards import deal_actions
from conversations.dates import format_when
from conversations.forms import Flow, FormContext, register_flow
from conversations.messages import Reply
from conversations.rich import Rich, bold
from handlers import contacts as contacts_uc
from handlers import deals as deals_uc
from handlers import interactions as uc
from storage.enums import InteractionKind

KINDS = [
    ("📞 Call", "call"), ("💬 Message", "message"), ("🤝 Meeting", "meeting"),
    ("✉️ Email", "email"), ("🗒 Note", "note"), ("🧾 Quote", "quote"),
]


async def _contact_needed(ctx: FormContext) -> bool:
    return not ctx.answers.get("deal")


async def _deal_choice_needed(ctx: FormContext) -> bool:
    """Ask which deal only when the contact has several open ones."""
    if ctx.answers.get("deal") or not ctx.answers.get("contact"):
        return False
    deals = await deals_uc.list_deals(ctx.crm, ctx.actor, open_only=True,
                                      contact_id=ctx.answers["contact"], limit=3)
    return len(deals) > 1


async def resolve_contact_and_deal(ctx: FormContext) -> tuple[int, int | None]:
    """The contact and deal the answers point at: a preset deal implies its contact; a contact
    with exactly one open deal implies that deal."""
    deal_id = ctx.answers.get("deal") or ctx.answers.get("deal_pick")
    if deal_id:
        deal = await deals_uc.get_deal(ctx.crm, ctx.actor, int(deal_id))
        return deal.contact_id, deal.id
    contact_id = int(ctx.answers["contact"])
    deals = await deals_uc.list_deals(ctx.crm, ctx.actor, open_only=True, contact_id=contact_id, limit=2)
    return contact_id, deals[0].id if len(deals) == 1 else None


async def submit_log(ctx: FormContext) -> list[Reply]:
    a = ctx.answers
    contact_id, deal_id = await resolve_contact_and_deal(ctx)
    occurred = ctx.data.get("occurred_at")
    follow = datetime.fromisoformat(a["follow_up"]) if a.get("follow_up") else None
    item = await uc.log_interaction(
        ctx.crm, ctx.actor, contact_id=contact_id, deal_id=deal_id, kind=a["kind"],
        summary=a["summary"], outcome=a.get("outcome"),
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
        follow_up_at=follow,
    )
    contact = await contacts_uc.get_contact(ctx.crm, ctx.actor, contact_id)
    lines = [Rich.of("✅ Logged ", item.kind, " with ", bold(contacts_uc.contact_label(contact)), ".")]
    if follow:
        lines.append(Rich.of("Follow-up set: ", format_when(follow, ctx.tz)))
    elif not await _has_open_task(ctx, contact_id):
        lines.append(Rich.of("⚠️ No next step for this client yet — add a follow-up?"))
    return [Reply(text=Rich.lines(lines), choices=deal_actions(deal_id) if deal_id else ())]


async def _has_open_task(ctx: FormContext, contact_id: int) -> bool:
    card = await contacts_uc.contact_card(ctx.crm, ctx.actor, contact_id)
    return bool(card.open_tasks)


LOG = register_flow(Flow(
    name="log",
    prefill=F.picker_prefill("log", "contact"),
    help="Log a call, message, meeting, email or note",
    title="Log interaction",
    order=20,
    submit=submit_log,
    fields=(
        F.deal("deal", "Deal", "", when=F.never),
        F.contact(when=_contact_needed),
        F.deal("deal_pick", "Deal", "💼 Which of their deals is this about?", when=_deal_choice_needed,
               contact_field="contact"),
        F.choice("kind", "Type", "What happened?", KINDS),
        F.text("summary", "Summary", "📝 Short summary? (e.g. Called about the quote; wants 10% off)", limit=2000, multiline=True,
               placeholder="Called about the quote; wants 10% off"),
        F.text("outcome", "Outcome", "🎯 Outcome? (e.g. interested, call back, not now)", optional=True),
        F.moment("follow_up", "Follow-up", "⏰ Next follow-up? (skip if none)", optional=True),
    ),
))


async def submit_attach(ctx: FormContext) -> list[Reply]:
    att = ctx.data.get("attachment")
    if not att:
        return [Reply.say("The file is no longer here. Send it again, please.")]
    contact_id = int(ctx.answers["contact"])
    deals = await deals_uc.list_deals(ctx.crm, ctx.actor, open_only=True, contact_id=contact_id, limit=2)
    item = await uc.log_interaction(
        ctx.crm, ctx.actor, contact_id=contact_id, deal_id=deals[0].id if len(deals) == 1 else None,
        kind=InteractionKind.FILE, summary=ctx.answers.get("note") or att["filename"],
        attachment_path=Path(att["path"]), attachment_name=att["filename"],
    )
    contact = await contacts_uc.get_contact(ctx.crm, ctx.actor, contact_id)
    return [Reply.say("📎 Attached ", bold(item.attachment_name or att["filename"]), " to ",
                      bold(contacts_uc.contact_label(contact)), "'s history.")]


ATTACH = register_flow(Flow(
    name="attach",
    help="Attach a file you sent to a contact's history",
    title="Attach file",
    order=90,
    listed=False,
    submit=submit_attach,
    fields=(
        F.contact(),
        F.text("note", "Note", "🗒 A note about the file? (skip if none)", optional=True),
    ),
))
