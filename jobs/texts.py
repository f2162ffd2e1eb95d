"""The notifications' words and buttons: short, for a rep reading on a phone.

Buttons carry action strings the router understands (`task:done:42`, `go:log:deal=7` ...),
built with `action_value` so none exceeds Telegram's 64-byte callback limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from conversations.messages import Choice, Reply
from conversations.registry import action_value
from conversations.rich import Rich, bold
from handlers.values import format_money
from storage.enums import STAGE_INFO, Stage
from storage.models import Deal
from storage.repos.scans import DealRow, DueTask, InstallmentRow

SNOOZE_MINUTES = 60


def stage_label(stage: str) -> str:
    try:
        return STAGE_INFO[Stage(stage)].label
    except ValueError:
        return stage


def hhmm(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def go(flow: str, **params: object) -> str:
    """A flow-starter action: go:<flow>:<key>=<value>[,<key>=<value>]."""
    return action_value("go", flow, ",".join(f"{k}={v}" for k, v in params.items()))


def about(contact_name: str | None, deal_title: str | None) -> str:
    """ "Layla · Villa fit-out"; once when the deal is simply named after the contact."""
    if deal_title and contact_name and deal_title.startswith(contact_name):
        return deal_title
    return " · ".join(p for p in (contact_name, deal_title) if p)


def task_line(item: DueTask, tz: ZoneInfo) -> Rich:
    context = about(item.contact_name, item.deal_title)
    return Rich.of(f"• {hhmm(item.due, tz)} ", item.task.title, f" ({context})" if context else "")


def reminder(item: DueTask, tz: ZoneInfo) -> Reply:
    task = item.task
    context = about(item.contact_name, item.deal_title)
    buttons = [
        Choice("✅ Done", action_value("task", "done", task.id)),
        Choice("⏰ In 1 hour", action_value("task", "snooze", task.id, SNOOZE_MINUTES)),
        Choice("📅 Tomorrow 9:00", action_value("task", "tomorrow", task.id)),
    ]
    if task.deal_id:
        buttons.append(Choice("📞 Log a call", go("log", deal=task.deal_id)))
    elif task.contact_id:
        buttons.append(Choice("📞 Log a call", go("log", contact=task.contact_id)))
    return Reply.say(
        f"⏰ Follow-up due at {hhmm(item.due, tz)}: ",
        bold(task.title),
        f"\n{context}" if context else "",
        choices=buttons,
    )


def deal_buttons(deal: Deal) -> list[Choice]:
    return [
        Choice("📞 Log", go("log", deal=deal.id)),
        Choice("📅 Follow-up", go("followup", deal=deal.id)),
        Choice("➡️ Move", go("move", deal=deal.id)),
        Choice("❌ Lost", go("move", deal=deal.id, stage="lost")),
    ]


def neglect_reason(row: DealRow, now: datetime, stale: bool) -> str:
    days = (now - row.deal.last_touched_at).days
    if stale:
        return f"no touch for {days} day{'s' if days != 1 else ''} in {stage_label(row.deal.stage)}"
    return "no follow-up planned"


def nudge(row: DealRow, reason: str) -> Reply:
    return Reply.say(
        "👀 ",
        bold(about(row.contact_name, row.deal.title)),
        f" is going cold: {reason}. What's next?",
        choices=deal_buttons(row.deal),
    )


def manager_digest(by_rep: dict[str, list[tuple[DealRow, str]]]) -> Reply:
    total = sum(len(v) for v in by_rep.values())
    lines: list = [
        Rich.of("🧊 ", bold(f"{total} deal{'s' if total != 1 else ''} going cold"), " on your team")
    ]
    for rep, items in by_rep.items():
        lines.append(Rich.of(bold(f"{rep} ({len(items)})")))
        lines.extend(f"• {about(r.contact_name, r.deal.title)}: {why}" for r, why in items)
    return Reply(Rich.lines(lines))


def money(minor: int, currency: str, locale: str) -> str:
    return format_money(minor, currency, locale)


def installment_line(row: InstallmentRow, locale: str) -> str:
    inst = row.installment
    amount = money(row.remaining_minor, row.contract.currency, locale)
    return (
        f"• {inst.invoice_number} {row.contact_name or ''}: {amount} due {day_label(inst.due_date)}"
    )


def pay_button(row: InstallmentRow) -> Choice:
    return Choice(
        "💳 Record payment", go("pay", contract=row.contract.id, invoice=row.installment.id)
    )


def installment_notice(
    row: InstallmentRow, stage: str, today: date, locale: str, rep: str = ""
) -> Reply:
    """`stage` is "before", "due", or "overdue" (to the rep, manager or team channel)."""
    inst = row.installment
    amount = money(row.remaining_minor, row.contract.currency, locale)
    who = row.contact_name or "The client"
    late = (today - inst.due_date).days
    if stage == "before":
        head = f"💳 {who} pays {amount} on {day_label(inst.due_date)} ({inst.invoice_number})."
    elif stage == "due":
        head = f"💳 {who} pays {amount} today ({inst.invoice_number})."
    else:
        of = f"{rep}'s client " if rep else ""
        days = f"{late} day{'s' if late != 1 else ''}"
        head = f"⚠️ {of}{who} is {days} late with {amount} ({inst.invoice_number})."
    return Reply.say(head, choices=[pay_button(row)])


def morning_plan(
    name: str,
    today: date,
    due_today: Sequence[DueTask],
    overdue: Sequence[DueTask],
    installments: Sequence[InstallmentRow],
    tz: ZoneInfo,
    locale: str,
) -> Reply:
    lines: list = [Rich.of("☀️ Good morning, ", bold(name), f"! Your plan for {day_label(today)}")]
    if not (due_today or overdue or installments):
        lines.append("Nothing scheduled today: a good day to call your newest leads.")
    sections = (
        ("Today", [task_line(t, tz) for t in due_today]),
        (
            "Overdue",
            [
                Rich.of(f"• {day_label(t.due.astimezone(tz).date())} ", t.task.title)
                for t in overdue
            ],
        ),
        ("Payments due", [installment_line(r, locale) for r in installments]),
    )
    for title, items in sections:
        if items:
            lines.append(Rich.of(bold(f"{title} ({len(items)})")))
            lines.extend(items)
    return Reply(Rich.lines(lines))


def pipeline_summary(
    title: str,
    today: date,
    since: date,
    stages: Sequence[tuple[str, str, int, int]],
    new_by_source: Sequence[tuple[str | None, int]],
    closed: Sequence[tuple[str, str, int, int]],
    stalled: int,
    overdue_per_rep: Sequence[tuple[str, int]],
    due_this_week: Sequence[InstallmentRow],
    overdue_payments: Sequence[InstallmentRow],
    locale: str,
) -> Reply:
    lines: list = [Rich.of("📊 ", bold(f"{title}: pipeline for {day_label(today)}"))]
    lines.append(Rich.of(bold("Open deals")))
    if stages:
        order = {s.value: i for i, s in enumerate(Stage)}
        for stage, currency, count, value in sorted(
            stages, key=lambda r: (order.get(r[0], 99), r[1])
        ):
            lines.append(f"• {stage_label(stage)}: {count} · {money(value, currency, locale)}")
    else:
        lines.append("• none yet")
    period = "yesterday" if (today - since).days == 1 else f"since {day_label(since)}"
    new_total = sum(n for _, n in new_by_source)
    by_source = ", ".join(f"{source or 'unknown'} {n}" for source, n in new_by_source)
    lines.append(
        Rich.of(bold(f"New leads {period}: {new_total}"), f" ({by_source})" if by_source else "")
    )
    for stage, label in (("won", "🏆 Won"), ("lost", "Lost")):
        rows = [r for r in closed if r[0] == stage]
        count = sum(r[2] for r in rows)
        values = ", ".join(money(r[3], r[1], locale) for r in rows)
        lines.append(f"{label} {period}: {count}" + (f" ({values})" if values else ""))
    lines.append(f"🧊 Stalled deals: {stalled}")
    if overdue_per_rep:
        lines.append("⏰ Overdue tasks: " + ", ".join(f"{name} {n}" for name, n in overdue_per_rep))
    lines.append(f"💳 Collections due this week: {_totals(due_this_week, locale)}")
    lines.append(f"⚠️ Overdue payments: {_totals(overdue_payments, locale)}")
    return Reply(Rich.lines(lines))


def _totals(rows: Sequence[InstallmentRow], locale: str) -> str:
    if not rows:
        return "none"
    sums: dict[str, int] = {}
    for r in rows:
        sums[r.contract.currency] = sums.get(r.contract.currency, 0) + r.remaining_minor
    return f"{len(rows)} (" + ", ".join(money(v, c, locale) for c, v in sorted(sums.items())) + ")"
