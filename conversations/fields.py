"""Field builders shared by the flows: each kind has one parser and one way to show a value.

Stored values are JSON-able: moments as ISO UTC strings, days as ISO dates, money as
{"minor", "currency"}, records as ids (their labels kept in the form's scratch data).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from conversations.amounts import EXAMPLES as AMOUNT_EXAMPLES
from conversations.amounts import parse_amount
from conversations.dates import format_day, format_when, parse_day, parse_when
from conversations.engine import ANSWER
from conversations.forms import (
    AMOUNT, CHOICE, CONTACT, CONTRACT, DAY, DEAL, EMAIL, FLOWS, NUMBER, PHONE, TEXT, WHEN,
    Field, FormContext, NeedChoice,
)
from conversations.messages import Choice
from handlers import contacts as contacts_uc
from handlers import contracts as contracts_uc
from handlers import deals as deals_uc
from handlers.errors import InvalidInput
from handlers.values import Money, format_money, normalize_email, normalize_phone, require_text
from storage.enums import STAGE_INFO, Stage

MAX_PICKS = 8


def _label_key(name: str) -> str:
    return f"label:{name}"


def remember_label(ctx: FormContext, name: str, label: str) -> None:
    ctx.data[_label_key(name)] = label


def _show_label(name: str) -> Callable[[FormContext, Any], str]:
    return lambda ctx, value: ctx.data.get(_label_key(name), f"#{value}")


# --- plain values ----------------------------------------------------------------------------


def text(name: str, label: str, prompt: str, *, limit: int = 200, optional: bool = False,
         multiline: bool = False, when=None, placeholder: str | None = None) -> Field:
    async def parse(ctx: FormContext, raw: str) -> str:
        return require_text(raw, label.lower(), limit, field=name)

    return Field(name, label, prompt, TEXT, parse=parse, optional=optional, when=when,
                 multiline=multiline, placeholder=placeholder)


def moment(name: str, label: str, prompt, *, optional: bool = False, when=None,
           quick: tuple[str, ...] = ("Tomorrow", "Next week", "In 2 weeks")) -> Field:
    """A future date and time ("tomorrow 3pm"), echoed back in the user's zone."""

    async def parse(ctx: FormContext, raw: str) -> str:
        at = parse_when(raw, now=ctx.now, tz=ctx.tz, language=ctx.turn.language)
        return at.astimezone(ctx.tz).isoformat()

    def show(ctx: FormContext, value: str) -> str:
        return format_when(datetime.fromisoformat(value), ctx.tz)

    return Field(name, label, prompt, WHEN, parse=parse, show=show, optional=optional, when=when,
                 quick=quick, placeholder="tomorrow 3pm, fri 10:30, next week")


def day(name: str, label: str, prompt: str, *, optional: bool = False, when=None,
        allow_past: bool = True, allow_future: bool = True, quick: tuple[str, ...] = ()) -> Field:
    async def parse(ctx: FormContext, raw: str) -> str:
        return parse_day(raw, now=ctx.now, tz=ctx.tz, language=ctx.turn.language,
                         allow_past=allow_past, allow_future=allow_future).isoformat()

    def show(ctx: FormContext, value: str) -> str:
        return format_day(date.fromisoformat(value))

    return Field(name, label, prompt, DAY, parse=parse, show=show, optional=optional, when=when,
                 quick=quick, placeholder="15 Dec, 2026-12-20, today")


def amount(name: str, label: str, prompt, *, optional: bool = False, when=None,
           quick: tuple[str, ...] = ()) -> Field:
    async def parse(ctx: FormContext, raw: str) -> dict:
        money = parse_amount(raw, ctx.data.get("currency") or ctx.settings.currency)
        return {"minor": money.minor, "currency": money.currency}

    def show(ctx: FormContext, value: dict) -> str:
        return format_money(value["minor"], value["currency"], ctx.turn.language)

    return Field(name, label, prompt, AMOUNT, parse=parse, show=show, optional=optional,
                 when=when, quick=quick, placeholder=AMOUNT_EXAMPLES)


def money_of(value: dict | None) -> Money | None:
    return Money(value["minor"], value["currency"]) if value else None


def phone(name: str = "phone", label: str = "Phone", prompt: str = "📞 Phone number?", *,
          optional: bool = True) -> Field:
    async def parse(ctx: FormContext, raw: str) -> str:
        return normalize_phone(raw, ctx.settings.phone_region)

    return Field(name, label, prompt, PHONE, parse=parse, optional=optional,
                 placeholder="+971 50 123 4567")


def email(name: str = "email", label: str = "Email", prompt: str = "✉️ Email address?", *,
          optional: bool = True) -> Field:
    async def parse(ctx: FormContext, raw: str) -> str:
        return normalize_email(raw)

    return Field(name, label, prompt, EMAIL, parse=parse, optional=optional,
                 placeholder="name@example.com")


def number(name: str, label: str, prompt: str, *, low: int, high: int, optional: bool = False,
           when=None, quick: tuple[str, ...] = ()) -> Field:
    async def parse(ctx: FormContext, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidInput(f"Type a whole number from {low} to {high}, e.g. {min(high, max(low, 3))}.")
        if not low <= value <= high:
            raise InvalidInput(f"Pick a number from {low} to {high}.")
        return value

    return Field(name, label, prompt, NUMBER, parse=parse, optional=optional, when=when,
                 quick=quick, placeholder=f"{low}–{high}")


def choice(name: str, label: str, prompt: str, options: list[tuple[str, str]] | Callable[[FormContext], Awaitable[list[Choice]]],
           *, optional: bool = False, when=None) -> Field:
    """Pick one of `options` ((label, value) pairs, or an async function of the context)."""
    if callable(options):
        opts = options
    else:
        fixed = [Choice(lbl, f"{ANSWER}{val}") for lbl, val in options]

        async def opts(ctx: FormContext) -> list[Choice]:
            return fixed

    def show(ctx: FormContext, value: str) -> str:
        return ctx.data.get(_label_key(name)) or str(value).replace("_", " ")

    return Field(name, label, prompt, CHOICE, options=opts, show=show, optional=optional, when=when)


# --- record pickers ------------------------------------------------------------------------------


def _id_of(raw: str) -> int | None:
    raw = raw.strip().removeprefix("#")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def contact(name: str = "contact", label: str = "Contact",
            prompt: str = "👤 Which contact? Type part of the name, company, email or the last 4+ digits of the phone.",
            *, when=None) -> Field:
    async def pick(ctx: FormContext, raw: str) -> int:
        cid = _id_of(raw)
        if cid is None:
            raise InvalidInput("Pick a contact from the list, or type part of its name.")
        found = await contacts_uc.get_contact(ctx.crm, ctx.actor, cid)
        remember_label(ctx, name, contacts_uc.contact_label(found))
        return found.id

    async def parse(ctx: FormContext, raw: str) -> int:
        if raw.strip().startswith("#") and _id_of(raw) is not None:
            return await pick(ctx, raw)
        matches = await contacts_uc.search_contacts(ctx.crm, ctx.actor, raw, limit=MAX_PICKS)
        if not matches:
            raise InvalidInput(
                f"No contact matches “{raw[:40]}”. Try part of the name, the last 4 digits of the "
                "phone, or add them with /newlead."
            )
        if len(matches) == 1:
            remember_label(ctx, name, contacts_uc.contact_label(matches[0]))
            return matches[0].id
        raise NeedChoice(
            f"{len(matches)} contacts match “{raw[:40]}”. Which one?",
            [Choice(contacts_uc.contact_label(c), f"{ANSWER}{c.id}") for c in matches],
        )

    async def options(ctx: FormContext) -> list[Choice]:
        recent = await contacts_uc.recent_contacts(ctx.crm, ctx.actor, limit=6)
        return [Choice(contacts_uc.contact_label(c), f"{ANSWER}{c.id}") for c in recent]

    return Field(name, label, prompt, CONTACT, parse=parse, pick=pick, options=options,
                 show=_show_label(name), when=when, placeholder="name, company or last 4 digits")


def deal_label(d) -> str:
    return f"{d.title} · {STAGE_INFO[Stage(d.stage)].label}"


def deal(name: str = "deal", label: str = "Deal",
         prompt: str = "💼 Which deal? Type part of its title or the client's name.",
         *, when=None, open_only: bool = True,
         contact_field: str | None = None) -> Field:
    """A deal picker; with `contact_field`, suggestions are that contact's deals."""

    async def pick(ctx: FormContext, raw: str) -> int:
        did = _id_of(raw)
        if did is None:
            raise InvalidInput("Pick a deal from the list, or type part of its title.")
        found = await deals_uc.get_deal(ctx.crm, ctx.actor, did)
        remember_label(ctx, name, deal_label(found))
        return found.id

    async def parse(ctx: FormContext, raw: str) -> int:
        if raw.strip().startswith("#") and _id_of(raw) is not None:
            return await pick(ctx, raw)
        matches = await deals_uc.list_deals(ctx.crm, ctx.actor, open_only=open_only, query=raw,
                                            contact_id=_contact_of(ctx, contact_field), limit=MAX_PICKS)
        if not matches:
            raise InvalidInput(f"No {'open ' if open_only else ''}deal matches “{raw[:40]}”. Try part of the title or the client's name.")
        if len(matches) == 1:
            remember_label(ctx, name, deal_label(matches[0]))
            return matches[0].id
        raise NeedChoice(f"{len(matches)} deals match. Which one?",
                         [Choice(deal_label(d), f"{ANSWER}{d.id}") for d in matches])

    async def options(ctx: FormContext) -> list[Choice]:
        found = await deals_uc.list_deals(ctx.crm, ctx.actor, open_only=open_only,
                                          contact_id=_contact_of(ctx, contact_field), limit=6)
        return [Choice(deal_label(d), f"{ANSWER}{d.id}") for d in found]

    return Field(name, label, prompt, DEAL, parse=parse, pick=pick, options=options,
                 show=_show_label(name), when=when, placeholder="deal title or client name")


def _contact_of(ctx: FormContext, contact_field: str | None) -> int | None:
    return ctx.answers.get(contact_field) if contact_field else None


def contract_label(view) -> str:
    balance = format_money(view.balance_minor, view.contract.currency)
    return f"{view.contract.number} · {view.contact_name} · due {balance}"


def contract(name: str = "contract", label: str = "Contract",
             prompt: str = "📄 Which contract? Type the client's name or the contract number.",
             *, when=None) -> Field:
    async def pick(ctx: FormContext, raw: str) -> int:
        cid = _id_of(raw)
        if cid is None:
            raise InvalidInput("Pick a contract from the list, or type the client's name.")
        view = await contracts_uc.contract_view(ctx.crm, ctx.actor, cid)
        if view.balance_minor <= 0:  # an old "💵 Pay" button on a contract paid since
            raise InvalidInput(f"{view.contract.number} is fully paid. Pick another contract, "
                               "or type the client's name.")
        remember_label(ctx, name, contract_label(view))
        ctx.data["currency"] = view.contract.currency
        return view.contract.id

    async def parse(ctx: FormContext, raw: str) -> int:
        if raw.strip().startswith("#") and _id_of(raw) is not None:
            return await pick(ctx, raw)
        views = await contracts_uc.list_contracts(ctx.crm, ctx.actor, open_only=True, query=raw, limit=MAX_PICKS)
        if not views:
            raise InvalidInput(f"No open contract matches “{raw[:40]}”. Try the client's name or a number like CTR-2026-0001.")
        if len(views) == 1:
            return await pick(ctx, str(views[0].contract.id))
        raise NeedChoice(f"{len(views)} contracts match. Which one?",
                         [Choice(contract_label(v), f"{ANSWER}{v.contract.id}") for v in views])

    async def options(ctx: FormContext) -> list[Choice]:
        views = await contracts_uc.list_contracts(ctx.crm, ctx.actor, open_only=True, limit=6)
        return [Choice(contract_label(v), f"{ANSWER}{v.contract.id}") for v in views]

    return Field(name, label, prompt, CONTRACT, parse=parse, pick=pick, options=options,
                 show=_show_label(name), when=when, placeholder="client name or CTR-2026-0001")


def picker_prefill(flow: str, field_name: str):
    """A flow's `prefill`: the command's text (`/log acme`) searches its record picker.

    One match answers the question; several are offered as its choices; none leaves the
    question to be asked with the reason (the engine shows the error as a note)."""

    async def prefill(ctx: FormContext, args: str) -> dict:
        fld = FLOWS[flow].field(field_name)
        try:
            return {fld.name: await fld.parse(ctx, args)}
        except NeedChoice as need:
            ctx.data["offered"] = [(c.label, c.value) for c in need.choices][:MAX_PICKS]
            return {}

    return prefill


def answered(*names: str):
    """A `when` condition: all of `names` have a (non-empty) answer."""

    async def check(ctx: FormContext) -> bool:
        return all(ctx.answers.get(n) not in (None, "") for n in names)

    return check


def equals(name: str, *values: Any):
    async def check(ctx: FormContext) -> bool:
        return ctx.answers.get(name) in values

    return check


async def never(ctx: FormContext) -> bool:
    """For fields only ever preset by a button (`go:log:deal=12`), never asked."""
    return False
