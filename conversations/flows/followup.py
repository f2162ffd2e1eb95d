"""/followup: the next step for a contact or deal — what, and when."""
from __future__ import annotations

from datetime import datetime

from conversations import fields as F
from conversations.dates import format_when
from conversations.flows.history import resolve_contact_and_deal
from conversations.forms import Field, Flow, FormContext, register_flow
from conversations.messages import Reply
from conversations.rich import bold
from handlers import contacts as contacts_uc
from handlers import tasks as uc
from handlers.errors import InvalidInput
from storage.enums import TaskStatus


async def _contact_needed(ctx: FormContext) -> bool:
    return not ctx.answers.get("deal")


async def submit(ctx: FormContext) -> list[Reply]:
    contact_id, deal_id = await resolve_contact_and_deal(ctx)
    contact = await contacts_uc.get_contact(ctx.crm, ctx.actor, contact_id)
    label = contacts_uc.contact_label(contact)
    task = await uc.create_task(
        ctx.crm, ctx.actor, title=ctx.answers.get("title") or f"Follow up with {label}",
        due_at=datetime.fromisoformat(ctx.answers["due"]), contact_id=contact_id, deal_id=deal_id,
    )
    return [Reply.say("⏰ Follow-up set for ", bold(label), ": ", task.title, " — ",
                      format_when(task.due_at, ctx.tz))]


FOLLOWUP = register_flow(Flow(
    name="followup",
    prefill=F.picker_prefill("followup", "contact"),
    help="Set the next step for a client: what and when",
    title="Follow-up",
    order=30,
    submit=submit,
    fields=(
        F.deal("deal", "Deal", "", when=F.never),
        F.contact(when=_contact_needed),
        F.text("title", "What", "What's the next step? (e.g. Send revised quote; skip for “Follow up”)",
               optional=True, limit=300),
        F.moment("due", "When", "⏰ When?", quick=("Tomorrow", "Next week", "End of month")),
    ),
))


async def _pick_task(ctx: FormContext, raw: str) -> int:
    task = await uc.get_task(ctx.crm, ctx.actor, int(raw) if raw.isdigit() else -1)
    if task.status != TaskStatus.OPEN:  # a button from an old /tasks list
        raise InvalidInput(f"“{task.title}” is already {task.status}. /tasks shows the open ones.")
    ctx.data["label:task"] = task.title
    return task.id


async def submit_reschedule(ctx: FormContext) -> list[Reply]:
    task = await uc.reschedule_task(ctx.crm, ctx.actor, int(ctx.answers["task"]),
                                    datetime.fromisoformat(ctx.answers["due"]))
    return [Reply.say("📅 ", bold(task.title), " moved to ", format_when(task.due_at, ctx.tz))]


async def _task_prompt(ctx: FormContext):
    from conversations.rich import Rich

    return Rich.of("📅 New time for ", bold(ctx.data.get("label:task", "this task")), "?")


RESCHEDULE = register_flow(Flow(
    name="reschedule",
    help="Move a follow-up to another time (from a task's button)",
    title="Reschedule",
    order=95,
    listed=False,
    submit=submit_reschedule,
    fields=(
        Field("task", "Task", "Which follow-up? Open /tasks and tap 📅 Reschedule under it.", "text",
              pick=_pick_task, parse=_pick_task,
              show=lambda ctx, v: ctx.data.get("label:task", f"#{v}")),
        F.moment("due", "When", _task_prompt, quick=("Tomorrow", "Next week")),
    ),
))
