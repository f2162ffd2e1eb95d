"""/newlead: a contact and its deal, with the duplicate check before saving."""
from __future__ import annotations

import re
from datetime import datetime

from conversations import fields as F
from conversations.cards import deal_actions, money
from conversations.dates import format_when
from conversations.engine import ANSWER, NAV_CANCEL
from conversations.forms import CHOICE, Field, Flow, FormContext, register_flow
from conversations.messages import Choice, Reply
from conversations.rich import Rich, bold
from handlers import contacts as uc
from handlers.errors import DomainError, Duplicate

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


async def prefill(ctx: FormContext, args: str) -> dict:
    """`/newlead Acme Trading +971501234567 info@acme.ae`: name, phone and email from the line.

    Parts that do not validate are left for the questions (which explain what is wrong)."""
    found: dict = {}
    rest = args
    email_match = _EMAIL.search(rest)
    if email_match:
        try:
            found["email"] = uc.optional_email(email_match.group(0))
            rest = rest.replace(email_match.group(0), " ")
        except DomainError:
            pass
    phone_match = _PHONE.search(rest)
    if phone_match:
        try:
            found["phone"] = uc.optional_phone(ctx.crm, phone_match.group(0))
            rest = rest.replace(phone_match.group(0), " ")
        except DomainError:
            pass
    name = " ".join(rest.split())
    if name:
        found["name"] = name[:200]
    return found


def _signature(ctx: FormContext) -> str:
    a = ctx.answers
    return "|".join(str(a.get(k) or "") for k in ("name", "company", "phone", "email"))


async def _duplicates(ctx: FormContext) -> list[dict]:
    """Candidates for the answers so far, cached in the form data until those answers change."""
    cached = ctx.data.get("dupes")
    if cached is not None and cached.get("sig") == _signature(ctx):
        return cached["items"]
    matches = await uc.find_duplicates(
        ctx.crm, ctx.actor, name=ctx.answers.get("name"), company=ctx.answers.get("company"),
        phone=ctx.answers.get("phone"), email=ctx.answers.get("email"),
    )
    items = [
        {"id": m.contact.id, "label": uc.contact_label(m.contact), "owner": m.owner_name,
         "reason": m.reason, "mine": await _visible(ctx, m.contact.id)}
        for m in matches
    ]
    ctx.data["dupes"] = {"sig": _signature(ctx), "items": items}
    return items


async def _visible(ctx: FormContext, contact_id: int) -> bool:
    """Whether the rep may add a deal to this contact (someone else's lead is only named)."""
    try:
        await uc.get_contact(ctx.crm, ctx.actor, contact_id)
    except DomainError:
        return False
    return True


async def _has_duplicates(ctx: FormContext) -> bool:
    if not any(ctx.answers.get(k) for k in ("name", "company", "phone", "email")):
        return False
    if "email" not in ctx.answers:  # check once the identifying answers are in
        return False
    return bool(await _duplicates(ctx))


async def _duplicate_prompt(ctx: FormContext) -> Rich:
    items = await _duplicates(ctx)
    first = items[0]
    lines = [Rich.of("⚠️ ", bold(first["label"]), f" already exists (owner: {first['owner']}; {first['reason']}).")]
    for other in items[1:4]:
        lines.append(Rich.of("• ", other["label"], f" (owner: {other['owner']}; {other['reason']})"))
    lines.append(Rich.of("Use the existing contact, create a new one anyway, or cancel?"))
    return Rich.lines(lines)


async def _duplicate_options(ctx: FormContext) -> list[Choice]:
    items = await _duplicates(ctx)
    choices = [Choice(f"Use {i['label']}"[:60], f"{ANSWER}use:{i['id']}") for i in items[:3] if i.get("mine")]
    return choices + [Choice("Create anyway", f"{ANSWER}new"), Choice("Cancel", NAV_CANCEL)]


def _show_duplicate(ctx: FormContext, value: str) -> str:
    return "create a new contact" if value == "new" else "use the existing contact"


async def _sources(ctx: FormContext) -> list[Choice]:
    return [Choice(s.capitalize(), f"{ANSWER}{s}") for s in ctx.settings.lead_sources]


async def submit(ctx: FormContext) -> list[Reply]:
    a = ctx.answers
    dup = a.get("duplicate") or ""
    existing = int(dup.split(":", 1)[1]) if dup.startswith("use:") else None
    next_at = datetime.fromisoformat(a["next_step_at"]) if a.get("next_step_at") else None
    try:
        made = await uc.create_lead(
            ctx.crm, ctx.actor, name=a.get("name"), company=a.get("company"),
            phone=a.get("phone"), email=a.get("email"), source=a.get("source"),
            value=F.money_of(a.get("value")), next_step_at=next_at,
            existing_contact_id=existing, allow_duplicate=dup == "new",
        )
    except Duplicate as err:
        # Someone added a look-alike since we checked: ask again with the fresh candidates.
        ctx.data.pop("dupes", None)
        raise DomainError(err.message, field="duplicate") from None
    deal = made.deal
    lines = [
        Rich.of("✅ Lead saved: ", bold(uc.contact_label(made.contact))),
        Rich.of(f"Deal #{deal.id} · New · ", money(deal.value_minor, deal.currency, ctx.turn.language)),
    ]
    if made.task is not None:
        lines.append(Rich.of("Next step: ", format_when(made.task.due_at, ctx.tz)))
    return [Reply(text=Rich.lines(lines), choices=deal_actions(deal.id))]


NEWLEAD = register_flow(Flow(
    name="newlead",
    help="Add a lead: contact and deal, with a next step",
    title="New lead",
    order=10,
    prefill=prefill,
    submit=submit,
    fields=(
        F.text("name", "Name", "🆕 New lead. What's the person's name? (skip if you only have a company)",
               optional=True, placeholder="Rana Haddad"),
        F.text("company", "Company", "🏢 Company?", optional=True, placeholder="Acme Trading"),
        F.phone(),
        F.email(),
        Field("duplicate", "Duplicate", _duplicate_prompt, CHOICE, options=_duplicate_options,
              show=_show_duplicate, when=_has_duplicates),
        F.choice("source", "Source", "📣 Where did this lead come from?", _sources, optional=True),
        F.amount("value", "Value", "💰 Rough deal value? (e.g. 5000, 1.5k, AED 20,000)", optional=True),
        F.moment("next_step_at", "Next step", "⏰ When is the next step? Every lead needs one."),
    ),
))
