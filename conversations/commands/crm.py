"""/find, /tasks, /pipeline and the buttons on tasks and cards."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from conversations.cards import contact_card_reply, money, stage_label, task_line
from conversations.dates import format_when
from conversations.messages import Choice, Reply
from conversations.registry import COMMANDS, Turn, action, action_value, command
from conversations.rich import Rich, bold, italic
from handlers import contacts as contacts_uc
from handlers import contracts as contracts_uc
from handlers import deals as deals_uc
from handlers import tasks as tasks_uc
from handlers.values import format_money

MAX_LISTED = 10


def _number(arg: str) -> int | None:
    """A button argument as a positive int; None for anything else (values can be forged)."""
    return int(arg) if re.fullmatch(r"[0-9]{1,9}", arg or "") else None


@command("find", "Search contacts by name, company, email or phone digits", order=70)
async def find(turn: Turn, args: str) -> list[Reply]:
    query = args.strip()
    if not query:
        recent = await contacts_uc.recent_contacts(turn.crm, turn.actor, limit=8)
        if not recent:
            return [Reply.say("No contacts yet. Add one with /newlead.")]
        return [Reply(text=Rich.of("🔎 Type a name, company, email or the last 4+ digits of a phone. Recent:"),
                      choices=tuple(Choice(contacts_uc.contact_label(c)[:60], action_value("card", c.id))
                                    for c in recent))]
    found = await contacts_uc.search_contacts(turn.crm, turn.actor, query, limit=8)
    if not found:
        return [Reply.say("🔎 Nothing matches “", query[:60], "”. Add it with /newlead ", query[:40], "?")]
    if len(found) == 1:
        return [await card(turn, found[0].id)]
    return [Reply(text=Rich.of(f"🔎 {len(found)} matches for “", query[:60], "”:"),
                  choices=tuple(Choice(contacts_uc.contact_label(c)[:60], action_value("card", c.id))
                                for c in found))]


async def card(turn: Turn, contact_id: int) -> Reply:
    data = await contacts_uc.contact_card(turn.crm, turn.actor, contact_id)
    balances = []
    for cid in data.contract_ids:
        view = await contracts_uc.contract_view(turn.crm, turn.actor, cid)
        cur = view.contract.currency
        line = Rich.of("📄 ", view.contract.number, " · balance ", bold(money(view.balance_minor, cur, turn.language)))
        if view.overdue_minor:
            line = line + Rich.of(" · overdue ", bold(money(view.overdue_minor, cur, turn.language)))
        balances.append(line)
    return contact_card_reply(data, turn.tz, turn.language, balances)


@action("card")
async def card_action(turn: Turn, args: list[str]) -> list[Reply]:
    contact_id = _number(args[0]) if args else None
    if contact_id is None:
        return [Reply.say("That button is out of date.")]
    return [await card(turn, contact_id)]


def _task_choices(task_id: int) -> tuple[Choice, ...]:
    return (
        Choice("✅ Done", action_value("task", "done", task_id)),
        Choice("💤 1 h", action_value("task", "snooze", task_id, 60)),
        Choice("🌅 Tomorrow", action_value("task", "tomorrow", task_id)),
        Choice("📅 Reschedule", action_value("go", "reschedule", f"task={task_id}")),
    )


def task_reply(task, turn: Turn, head: str = "") -> Reply:
    text = Rich.of(head, task_line(task, turn.tz))
    return Reply(text=text, choices=_task_choices(task.id), edit_key=f"task:{task.id}")


@command("tasks", "Your overdue, today's and upcoming follow-ups", order=80)
async def tasks(turn: Turn, args: str) -> list[Reply]:
    board = await tasks_uc.task_board(turn.crm, turn.actor)
    if not (board.overdue or board.today or board.upcoming):
        return [Reply.say("🎉 No open follow-ups. Add one with /followup.")]
    replies = [Reply.say(f"🔥 Overdue {len(board.overdue)} · 📅 Today {len(board.today)} · "
                         f"🗓 Upcoming {len(board.upcoming)}")]
    for head, items in (("🔥 ", board.overdue), ("📅 ", board.today)):
        replies += [task_reply(t, turn, head) for t in items[:MAX_LISTED]]
    if board.upcoming:
        lines = [Rich.of(bold("Upcoming"))] + [task_line(t, turn.tz) for t in board.upcoming[:MAX_LISTED]]
        replies.append(Reply(text=Rich.lines(lines)))
    return replies


@action("task")
async def task_action(turn: Turn, args: list[str]) -> list[Reply]:
    """task:done:<id>, task:snooze:<id>:<minutes>, task:tomorrow:<id> (from lists and reminders)."""
    task_id = _number(args[1]) if len(args) >= 2 else None
    if task_id is None:
        return [Reply.say("That button is out of date.")]
    verb = args[0]
    if verb == "done":
        task = await tasks_uc.complete_task(turn.crm, turn.actor, task_id)
        return [Reply(text=Rich.of("✅ Done: ", task.title), edit_key=f"task:{task_id}")]
    if verb == "snooze":
        minutes = (_number(args[2]) if len(args) > 2 else None) or 60
        until = turn.now + timedelta(minutes=max(5, min(minutes, 7 * 24 * 60)))
    elif verb == "tomorrow":
        local = turn.now.astimezone(turn.tz).date() + timedelta(days=1)
        until = datetime.combine(local, time(9, 0), tzinfo=turn.tz)
    else:
        return [Reply.say("That button is out of date.")]
    task = await tasks_uc.snooze_task(turn.crm, turn.actor, task_id, until)
    return [Reply(text=Rich.of("💤 ", task.title, " — moved to ", format_when(task.due_at, turn.tz)),
                  choices=_task_choices(task.id), edit_key=f"task:{task_id}")]


@action("cmd")
async def command_button(turn: Turn, args: list[str]) -> list[Reply]:
    """A button that runs an instant command with no arguments (cmd:tasks, cmd:pipeline)."""
    cmd = COMMANDS.get(args[0]) if args else None
    if cmd is None:
        return [Reply.say("That button is out of date.")]
    return await cmd.run(turn, "")


@command("pipeline", "Deals per stage with their value, and the stalled ones", order=85)
async def pipeline(turn: Turn, args: str) -> list[Reply]:
    view = await deals_uc.pipeline(turn.crm, turn.actor)
    scope = {"admin": "Everyone's", "manager": "Your team's"}.get(turn.role, "Your")
    lines = [Rich.of("📊 ", bold(f"{scope} pipeline"))]
    for row in view.stages:
        values = ", ".join(format_money(v, cur, turn.language) for cur, v in sorted(row.value.items())) or "—"
        lines.append(Rich.of(f"{row.label}: ", bold(str(row.count)), f" · {values}"))
    totals = ", ".join(format_money(v, c, turn.language) for c, v in sorted(view.totals.items()))
    if totals:
        lines.append(Rich.of("Open total: ", bold(totals)))
    if view.stalled:
        lines.append(Rich.of("\n", bold(f"⏳ Stalled ({len(view.stalled)})")))
        for deal in view.stalled[:MAX_LISTED]:
            idle = (turn.now - deal.last_touched_at).days
            lines.append(Rich.of("• ", deal.title, f" · {stage_label(deal.stage)} · ", italic(f"{idle} d idle")))
    choices = [Choice("📈 Chart", "chart:pipeline")]
    choices += [Choice(f"⏰ {d.title}"[:40], action_value("go", "followup", f"deal={d.id}")) for d in view.stalled[:3]]
    return [Reply(text=Rich.lines(lines), choices=tuple(choices))]
