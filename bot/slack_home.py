"""The App Home tab's content, computed with the core use cases: my overdue and today's tasks,
my pipeline by stage, contract balances due this week, and quick-action buttons."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.slack_blocks import escape, home_view
from conversations.dates import format_day, format_when
from conversations.forms import FLOWS
from conversations.messages import Choice
from conversations.registry import COMMANDS, action_value
from handlers.contracts import open_invoices, today_for
from handlers.context import CRM, Actor
from handlers.deals import pipeline
from handlers.tasks import task_board, user_zone
from handlers.values import format_money

# Quick actions, shown when the flow / command is registered: (name, button label).
QUICK_FORMS = (("newlead", "➕ New lead"), ("log", "📝 Log"), ("followup", "⏰ Follow-up"), ("pay", "💵 Payment"))
QUICK_COMMANDS = (("tasks", "📋 My tasks"), ("pipeline", "📊 Pipeline"))
DUE_WINDOW_DAYS = 7
MAX_TASKS = 10  # per list: the tab stays under Slack's 100 blocks

STRANGER_NOTE = (
    "Hi! You're not set up in ChatCRM yet. Ask your manager for an invite code, "
    "then type `/crm join <code>` (for example `/crm join K7P2QX`)."
)


def _task_lines(tasks, zone: ZoneInfo) -> list:
    """A line per task with a Done button (the same `task:done:<id>` action as in chat)."""
    lines: list = [
        (f"• {escape(t.title)} — {escape(format_when(t.due_at, zone))}", Choice("✅ Done", action_value("task", "done", t.id)))
        for t in tasks[:MAX_TASKS]
    ]
    if len(tasks) > MAX_TASKS:
        lines.append(f"_…and {len(tasks) - MAX_TASKS} more: `/crm tasks`_")
    return lines


async def home_for(crm: CRM, actor: Actor | None) -> dict:
    """The `views.publish` view for `actor` (a short how-to-join note for a stranger)."""
    if actor is None:
        return home_view([], [], [], note=STRANGER_NOTE)
    async with crm.reader() as uow:
        user = await uow.users.get(actor.user_id)
    zone = user_zone(user, crm.settings.timezone)
    board = await task_board(crm, actor)
    stages = (await pipeline(crm, actor)).stages
    until = today_for(crm, user) + timedelta(days=DUE_WINDOW_DAYS + 1)
    invoices = await open_invoices(crm, actor, due_before=until)
    by_stage = [
        f"• {escape(s.label)}: {s.count} — "
        + escape(", ".join(format_money(v, cur, user.language) for cur, v in sorted(s.value.items())))
        for s in stages if s.count
    ]
    balances = [
        f"• {escape(i.invoice_number)} · {escape(i.contact_name)} · "
        f"{escape(format_money(i.outstanding_minor, i.currency, user.language))} "
        f"due {escape(format_day(i.installment.due_date))}" + (" *(overdue)*" if i.status == "overdue" else "")
        for i in invoices
    ]
    sections = [
        ("⚠️ Overdue tasks", _task_lines(board.overdue, zone)),
        ("📅 Today", _task_lines(board.today, zone)),
        ("📊 My pipeline", by_stage),
        ("💵 Due in the next 7 days", balances),
    ]
    forms = [(name, label) for name, label in QUICK_FORMS if name in FLOWS]
    commands = [(name, label) for name, label in QUICK_COMMANDS if name in COMMANDS]
    return home_view(sections, forms, commands)

