"""/pay: record a payment against a contract (oldest open invoices first, or a chosen one)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

from conversations import fields as F
from conversations.cards import money
from conversations.engine import ANSWER, summary_lines
from conversations.forms import Flow, FormContext, register_flow
from conversations.messages import Choice, Reply
from conversations.rich import Rich, bold
from handlers import contracts as uc
from handlers.errors import DomainError, InvalidInput

OLDEST_FIRST = "oldest"
METHODS = [("Bank transfer", "bank_transfer"), ("Cash", "cash"), ("Card", "card"),
           ("Cheque", "cheque"), ("Other", "other")]


async def _invoice_options(ctx: FormContext) -> list[Choice]:
    choices = [Choice("Oldest open first", f"{ANSWER}{OLDEST_FIRST}")]
    if not ctx.answers.get("contract"):  # a whole form at once (Slack modal): no contract yet
        return choices
    view = await uc.contract_view(ctx.crm, ctx.actor, int(ctx.answers["contract"]))
    ctx.data["currency"] = view.contract.currency
    lang = ctx.turn.language
    for inv in view.installments:
        if inv.outstanding_minor > 0 and inv.status != "void":
            i = inv.installment
            label = f"{i.invoice_number} · {i.due_date:%d %b} · {money(inv.outstanding_minor, view.contract.currency, lang)}"
            choices.append(Choice(label[:60], f"{ANSWER}{i.id}"))
    return choices[:13]


async def _pick_invoice(ctx: FormContext, raw: str) -> str:
    """An open invoice of the contract (or oldest-first), remembered by its label for the summary."""
    for option in await _invoice_options(ctx):
        if option.value == f"{ANSWER}{raw}":
            F.remember_label(ctx, "invoice", option.label)
            return raw
    raise InvalidInput("That invoice is not open any more. Pick one below.")


async def _amount_prompt(ctx: FormContext) -> Rich:
    view = await uc.contract_view(ctx.crm, ctx.actor, int(ctx.answers["contract"]))
    ctx.data["currency"] = view.contract.currency
    lang = ctx.turn.language
    parts = [Rich.of("💵 Amount received? Outstanding: ", bold(money(view.balance_minor, view.contract.currency, lang)))]
    if view.next_due is not None:
        parts.append(Rich.of(" · next due ", money(view.next_due.outstanding_minor, view.contract.currency, lang)))
    return Rich.of(*parts)


async def _parse_amount(ctx: FormContext, raw: str) -> dict:
    """An amount in the contract's currency, refused at once when it is more than is owed."""
    value = await AMOUNT.parse(ctx, raw)
    if not ctx.answers.get("contract"):
        return value
    view = await uc.contract_view(ctx.crm, ctx.actor, int(ctx.answers["contract"]))
    cur, lang = view.contract.currency, ctx.turn.language
    if value["currency"] != cur:
        raise InvalidInput(f"Contract {view.contract.number} is in {cur}. "
                           f"Type the amount in {cur}, for example {money(50000, cur, lang)}.")
    invoice = _chosen_invoice(ctx, view)
    owed = invoice.outstanding_minor if invoice else view.balance_minor
    where = f"Invoice {invoice.invoice_number}" if invoice else f"Contract {view.contract.number}"
    if owed <= 0:
        raise InvalidInput(f"{where} is already paid; nothing is outstanding.")
    if value["minor"] > owed:
        left = money(owed, cur, lang)
        raise InvalidInput(f"That's more than what is left: {where} has {left} outstanding. "
                           f"Record {left} or less.")
    return value


def _chosen_invoice(ctx: FormContext, view):
    invoice = ctx.answers.get("invoice")
    if not invoice or invoice == OLDEST_FIRST:
        return None
    return next((i for i in view.installments if i.installment.id == int(invoice)), None)


AMOUNT = F.amount("amount", "Amount", _amount_prompt)


def _terms(ctx: FormContext) -> dict:
    a = ctx.answers
    invoice = a.get("invoice")
    return dict(
        contract_id=int(a["contract"]),
        amount_minor=a["amount"]["minor"],
        currency=a["amount"]["currency"],
        paid_on=date.fromisoformat(a["paid_on"]) if a.get("paid_on") else None,
        method=a.get("method"),
        reference=a.get("reference"),
        installment_id=int(invoice) if invoice and invoice != OLDEST_FIRST else None,
    )


async def confirm(ctx: FormContext) -> Rich:
    return Rich.lines([Rich.of("Record this payment?"), summary_lines(ctx, PAY)])


# The use case's names for its inputs -> the question to ask again.
_FORM_FIELD = {"installment": "invoice", "currency": "amount", "amount": "amount", "paid_on": "paid_on"}


async def submit(ctx: FormContext) -> list[Reply]:
    try:
        result = await uc.record_payment(ctx.crm, ctx.actor, **_terms(ctx))
    except DomainError as err:
        err.field = _FORM_FIELD.get(err.field or "", err.field)
        raise
    cur, lang = result.payment.currency, ctx.turn.language
    lines = [Rich.of("✅ Payment of ", bold(money(result.payment.amount_minor, cur, lang)), " recorded on ",
                     result.contract.contract.number, ".")]
    for number, amount in result.allocations:
        lines.append(Rich.of(f"• {number}: ", money(amount, cur, lang)))
    lines.append(Rich.of("Remaining balance: ", bold(money(result.balance_minor, cur, lang))))
    return [Reply(text=Rich.lines(lines))]


PAY = register_flow(Flow(
    name="pay",
    prefill=F.picker_prefill("pay", "contract"),
    help="Record a payment on a contract",
    title="Record payment",
    order=60,
    submit=submit,
    confirm=confirm,
    fields=(
        F.contract(),
        replace(F.choice("invoice", "Apply to", "Apply it to which invoice?", _invoice_options),
                pick=_pick_invoice),
        replace(AMOUNT, parse=_parse_amount),
        F.day("paid_on", "Paid on", "📅 Paid on which day? (skip for today)", optional=True,
              allow_future=False, quick=("Today", "Yesterday")),
        F.choice("method", "Method", "How was it paid?", METHODS, optional=True),
        F.text("reference", "Reference", "Reference? (transfer id, cheque number; skip if none)",
               optional=True, limit=120),
    ),
))
