"""/move a deal through the pipeline, and /won: deal won -> contract with installments."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date

from conversations import fields as F
from conversations.cards import money, stage_label
from conversations.engine import ANSWER
from conversations.forms import Field, Flow, FormContext, register_flow
from conversations.messages import Choice, Reply
from conversations.rich import Rich, bold
from handlers import contracts as contracts_uc
from handlers import deals as uc
from handlers.errors import DomainError, InvalidInput
from storage.enums import PIPELINE, Frequency, Stage


async def _stage_options(ctx: FormContext) -> list[Choice]:
    current = None
    if ctx.answers.get("deal"):
        current = (await uc.get_deal(ctx.crm, ctx.actor, int(ctx.answers["deal"]))).stage
    labels = {Stage.WON: "🎉 Won", Stage.LOST: "❌ Lost"}
    return [
        Choice(labels.get(info.stage, info.label), f"{ANSWER}{info.stage.value}")
        for info in PIPELINE
        if info.stage != current
    ]


async def submit_move(ctx: FormContext) -> list[Reply]:
    stage = ctx.answers["stage"]
    deal_id = int(ctx.answers["deal"])
    if stage == Stage.WON:
        # Winning creates the contract and its schedule: hand over to /won with the deal chosen.
        ctx.turn.start_flow = ("won", {"deal": str(deal_id)})
        return [Reply.say("🎉 Won! Let's set up the contract.")]
    deal = await uc.move_deal(ctx.crm, ctx.actor, deal_id, stage, lost_reason=ctx.answers.get("lost_reason"))
    return [Reply.say("➡️ ", bold(deal.title), " is now ", bold(stage_label(deal.stage)), ".")]


MOVE = register_flow(Flow(
    name="move",
    prefill=F.picker_prefill("move", "deal"),
    help="Move a deal to another stage (won, lost ...)",
    title="Move deal",
    order=40,
    submit=submit_move,
    fields=(
        F.deal(),
        F.choice("stage", "Stage", "Move it to which stage?", _stage_options),
        F.text("lost_reason", "Lost reason", "Why was it lost? (e.g. price, went with a competitor)",
               when=F.equals("stage", Stage.LOST.value), limit=500),
    ),
))


FREQUENCIES = [
    ("Monthly", Frequency.MONTHLY.value), ("Weekly", Frequency.WEEKLY.value),
    ("Every N days", Frequency.EVERY_N_DAYS.value), ("Explicit dates", Frequency.EXPLICIT.value),
]


async def _total_prompt(ctx: FormContext) -> Rich:
    deal = await uc.get_deal(ctx.crm, ctx.actor, int(ctx.answers["deal"]))
    ctx.data["currency"] = deal.currency
    value = money(deal.value_minor, deal.currency, ctx.turn.language)
    if deal.value_minor:
        return Rich.of("💰 Contract total? Skip to use the deal value, ", bold(value), ".")
    return Rich.of("💰 Contract total? (e.g. 12,000 or AED 45,000)")


async def _parse_dates(ctx: FormContext, raw: str) -> list[str]:
    from conversations.dates import parse_day

    parts = [p for p in raw.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise InvalidInput("List the due dates separated by commas, e.g. 15 Jan, 15 Mar, 15 Jun.")
    days = [parse_day(p, now=ctx.now, tz=ctx.tz, language=ctx.turn.language) for p in parts]
    return [d.isoformat() for d in days]


def _terms(ctx: FormContext) -> dict:
    a = ctx.answers
    explicit = a.get("frequency") == Frequency.EXPLICIT.value
    dates = [date.fromisoformat(d) for d in a.get("dates") or []]
    return dict(
        total_minor=a["total"]["minor"] if a.get("total") else None,
        currency=a["total"]["currency"] if a.get("total") else None,
        down_payment_minor=a["down"]["minor"] if a.get("down") else 0,
        count=len(dates) if explicit else a.get("count"),
        frequency=a["frequency"],
        first_due=None if explicit else date.fromisoformat(a["first_due"]),
        every_days=a.get("every_days"),
        dates=dates or None,
    )


# The use case names its inputs after the contract's columns; the form's questions differ.
_FORM_FIELD = {"down_payment": "down", "total": "total", "count": "count", "dates": "dates",
               "every_days": "every_days", "first_due": "first_due", "frequency": "frequency"}


@contextmanager
def _blame_form_fields():
    """Re-label a use case's error with the question that should be asked again."""
    try:
        yield
    except DomainError as err:
        err.field = _FORM_FIELD.get(err.field or "", err.field)
        raise


async def confirm_won(ctx: FormContext) -> Rich:
    with _blame_form_fields():
        preview = await contracts_uc.preview_contract(ctx.crm, ctx.actor, int(ctx.answers["deal"]), **_terms(ctx))
    cur, lang = preview.currency, ctx.turn.language
    lines = [
        Rich.of("🎉 ", bold(preview.deal.title), " — ", preview.contact_name),
        Rich.of("Contract ", bold(preview.contract_number), " · total ", bold(money(preview.total_minor, cur, lang))),
    ]
    for number, inst in zip(preview.invoice_numbers, preview.installments):
        tag = " (down payment)" if inst.seq == 0 else ""
        lines.append(Rich.of(f"• {number} · {inst.due_date:%a %d %b %Y} · ", money(inst.amount_minor, cur, lang), tag))
    lines.append(Rich.of("Mark the deal won and create this schedule?"))
    return Rich.lines(lines)


async def submit_won(ctx: FormContext) -> list[Reply]:
    with _blame_form_fields():
        view = await contracts_uc.win_deal_with_contract(ctx.crm, ctx.actor, int(ctx.answers["deal"]), **_terms(ctx))
    c = view.contract
    nxt = view.next_due
    lines = [
        Rich.of("🏆 Deal won! Contract ", bold(c.number), " for ", bold(view.contact_name), " created."),
        Rich.of(f"{len(view.installments)} invoices, balance ", money(view.balance_minor, c.currency, ctx.turn.language)),
    ]
    if nxt is not None:
        lines.append(Rich.of("Next due: ", nxt.installment.invoice_number, f" on {nxt.installment.due_date:%d %b %Y}"))
    pay = Choice("💵 Record payment", f"go:pay:contract={c.id}")
    return [Reply(text=Rich.lines(lines), choices=(pay,))]


async def _regular(ctx: FormContext) -> bool:
    return ctx.answers.get("frequency") not in (None, Frequency.EXPLICIT.value)


WON = register_flow(Flow(
    name="won",
    prefill=F.picker_prefill("won", "deal"),
    help="Deal won: create the contract and its installment schedule",
    title="Deal won",
    order=50,
    submit=submit_won,
    confirm=confirm_won,
    fields=(
        F.deal(prompt="🎉 Which deal was won? Type part of its title or the client's name."),
        F.amount("total", "Total", _total_prompt, optional=True),
        F.amount("down", "Down payment", "Down payment? (skip if none)", optional=True),
        F.choice("frequency", "Schedule", "How is the rest paid?", FREQUENCIES),
        F.number("count", "Installments", "How many installments?", low=1, high=120,
                 when=_regular, quick=("1", "3", "6", "12")),
        F.number("every_days", "Every N days", "Every how many days?", low=1, high=365,
                 when=F.equals("frequency", Frequency.EVERY_N_DAYS.value)),
        F.day("first_due", "First due", "📅 First installment due on? (e.g. 1 Jan, 2027-01-15)",
              when=_regular, quick=("Today", "Next week", "End of month")),
        Field("dates", "Due dates", "📅 List the due dates, separated by commas (e.g. 15 Jan, 15 Mar, 15 Jun).",
              "text", parse=_parse_dates, show=lambda ctx, v: ", ".join(v),
              when=F.equals("frequency", Frequency.EXPLICIT.value)),
    ),
))
