"""The router: one entry point for everything a user does on any surface.

It serialises the messages of one conversation, drops platform re-deliveries, identifies the
user, loads the stored flow state, dispatches (command, flow answer, button, file, contact,
forwarded message), runs submits, and saves the state again. Surfaces only translate.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from conversations import engine
from conversations.commands import load_all as load_commands
from conversations.engine import FormState, Step
from conversations.flows import load_all as load_flows
from conversations.forms import FLOWS, Flow
from conversations.messages import Choice, Inbound, Reply
from conversations.registry import ACTIONS, COMMANDS, ProgressFn, Turn
from conversations.rich import Rich, bold, code
from handlers.context import CRM, Actor
from handlers.errors import DomainError
from handlers.values import clean_text
from handlers.users import adopt_platform_timezone
from storage.models import ConversationState, User

log = logging.getLogger(__name__)

FLOW_TTL = timedelta(hours=24)
MAX_INBOUND = 8000  # longer messages are cut; every field has its own, smaller cap
GO = "go:"  # "go:<flow>:<field>=<value>,<field>=<value>" starts a flow with answers preset

# The conversation whose stored state a successful submit clears, in the submit's own
# transaction (see `clear_state_on_commit`): a crash can never leave a submitted flow open.
_SUBMITTING: ContextVar[tuple[str, str, str] | None] = ContextVar("submitting", default=None)


async def clear_state_on_commit(uow, _events) -> None:
    """Unit-of-work hook: a use case committed during a submit also deletes the flow state."""
    key = _SUBMITTING.get()
    if key is not None:
        await uow.conversations.clear(*key)


@dataclass
class FormSpec:
    """A whole flow for surfaces that show forms at once (Slack modals)."""

    flow: Flow
    values: dict[str, str]  # prefilled display text per field
    options: dict[str, list[Choice]]  # choices per choice field / suggestions per picker
    shown: list[str]  # the fields the form shows
    private: str  # opaque state for the surface to hand back on submit (<= 3000 chars)


@dataclass
class FormResult:
    errors: dict[str, str] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)


_LOOK_UP = object()  # `_turn` default: read the user from the database


@dataclass
class _Snapshot:
    seen: bool = False
    user: User | None = None
    row: ConversationState | None = None


class _Locks:
    """One asyncio lock per conversation, forgotten when idle (bounded memory)."""

    def __init__(self, keep: int = 10_000) -> None:
        self._locks: OrderedDict[tuple, asyncio.Lock] = OrderedDict()
        self._keep = keep

    def get(self, key: tuple) -> asyncio.Lock:
        lock = self._locks.pop(key, None) or asyncio.Lock()
        self._locks[key] = lock
        while len(self._locks) > self._keep:
            oldest, old_lock = next(iter(self._locks.items()))
            if old_lock.locked():
                break
            self._locks.pop(oldest)
        return lock


class Router:
    def __init__(self, crm: CRM, *, rate_limiter=None) -> None:
        self.crm = crm
        self.rate_limiter = rate_limiter
        self._locks = _Locks()
        load_flows()
        load_commands()
        if clear_state_on_commit not in crm.hooks:
            crm.hooks.append(clear_state_on_commit)

    # --- entry points -------------------------------------------------------------------

    async def handle(self, msg: Inbound, progress: ProgressFn | None = None) -> list[Reply]:
        """Everything a user does goes through here; returns the replies to show them.

        `progress`, when the surface gives one, shows interim replies during long work."""
        key = (msg.platform, msg.chat_id, msg.user_id)
        async with self._locks.get(key):
            snap = await self._snapshot(msg)
            if snap.seen:
                return []
            try:
                return await self._handle(msg, snap, progress)
            except DomainError as err:
                return [Reply.say("⚠️ ", err.message)]

    async def form_spec(self, msg: Inbound, flow_name: str, args: str = "") -> FormSpec | list[Reply]:
        """The flow as one form, prefilled from `args` (a Slack modal)."""
        turn = await self._turn(msg)
        if turn.actor is None:
            return [self._stranger_reply(msg)]
        flow = FLOWS.get(flow_name)
        if flow is None:
            return [Reply.say("I don't know ", code(flow_name), ". Try ", code("help"), ".")]
        state = FormState(flow=flow.name)
        ctx = engine.context(state, turn)
        if args.strip() and flow.prefill:
            try:
                state.answers.update(await flow.prefill(ctx, args.strip()))
            except DomainError:
                pass
        values, options, shown = {}, {}, []
        for fld in flow.fields:
            if not await fld.applies(ctx):
                continue
            shown.append(fld.name)
            if fld.name in state.answers and state.answers[fld.name] is not None:
                values[fld.name] = fld.display(ctx, state.answers[fld.name])
            if fld.options is not None:
                options[fld.name] = list(await fld.options(ctx))
        private = json.dumps({"flow": flow.name, "shown": shown})
        return FormSpec(flow, values, options, shown, private[:3000])

    async def submit_form(self, msg: Inbound, flow_name: str, raw: dict[str, str], private: str = "") -> FormResult:
        """Validate and submit a whole form with the same validators as the step-by-step flow.

        Fields the form did not show (they only apply after earlier answers, like the
        duplicate check) continue as a conversation in `msg`'s chat.
        """
        turn = await self._turn(msg)
        if turn.actor is None:
            return FormResult(replies=[self._stranger_reply(msg)])
        flow = FLOWS[flow_name]
        try:
            shown = set(json.loads(private).get("shown", [])) if private else {f.name for f in flow.fields}
        except (ValueError, AttributeError):
            shown = {f.name for f in flow.fields}
        answers, errors = await engine.validate_all(flow, turn, raw)
        visible_errors = {k: v for k, v in errors.items() if k in shown}
        if visible_errors:
            return FormResult(errors=visible_errors)
        for name in errors:  # not shown in the form: ask them in the chat
            answers.pop(name, None)
        state = FormState(flow=flow.name, answers=answers, data={"order": list(answers)})
        key = (msg.platform, msg.chat_id, msg.user_id)
        async with self._locks.get(key):
            step = await engine.advance(state, turn)
            if step.submit or state.field == engine.CONFIRM:
                step = await self._submit(msg, turn, state)
            step = await self._hand_over(msg, turn, step)  # continues in the chat
            await self._save(msg, step.state)
        return FormResult(replies=step.replies)

    # --- dispatch -----------------------------------------------------------------------

    async def _handle(self, msg: Inbound, snap: "_Snapshot", progress: ProgressFn | None) -> list[Reply]:
        turn = await self._turn(msg, snap.user)
        turn.progress = progress
        # The console is the operator at the machine (and scripted sessions pipe many lines).
        if self.rate_limiter is not None and msg.platform != "console":
            wait = self.rate_limiter.check((msg.platform, msg.user_id))
            if wait is not None:
                return [Reply.say(f"Easy there — too many messages. Try again in {int(wait) + 1} s.")]
        state, notes = await self._restore(msg, snap.row)
        if turn.actor is None:
            return await self._stranger(msg, turn)

        step = await self._dispatch(msg, turn, state)
        if step.submit and step.state is not None:
            step = await self._submit(msg, turn, step.state, step.replies)
        step = await self._hand_over(msg, turn, step)
        await self._save(msg, step.state)
        return notes + step.replies

    async def _hand_over(self, msg: Inbound, turn: Turn, step: Step) -> Step:
        """A submit or a button may hand over to another flow (/move to won starts /won)."""
        if turn.start_flow is None:
            return step
        name, preset = turn.start_flow
        turn.start_flow = None
        started = await engine.start(FLOWS[name], turn, preset=preset)
        step = Step(started.state, step.replies + started.replies, started.submit)
        if step.submit and step.state is not None:
            step = await self._submit(msg, turn, step.state, step.replies)
        return step

    async def _dispatch(self, msg: Inbound, turn: Turn, state: FormState | None) -> Step:
        # Control characters never reach a parser, an echo or the database.
        text = clean_text(msg.text, limit=MAX_INBOUND)
        if msg.action:
            return await self._button(msg, turn, state, msg.action)
        if msg.contact is not None:
            return await self._shared_contact(msg, turn, state)
        if msg.forwarded is not None:
            return await self._forwarded(msg, turn, state)
        if msg.attachment is not None:
            return await self._attachment(msg, turn, state, text)
        if text.startswith("/"):
            return await self._command(msg, turn, state, text)
        if state is not None:
            return await engine.on_text(state, turn, text)
        if not text:
            return Step(None, [])
        if engine.is_verb(text):  # "yes" or "cancel" typed after the flow already ended
            return Step(None, [Reply.say("No question is open right now. /help lists what I can do.")])
        # Plain text outside a flow: the most useful reading is a search.
        return Step(None, await COMMANDS["find"].run(turn, text))

    async def _command(self, msg: Inbound, turn: Turn, state: FormState | None, text: str) -> Step:
        name, _, args = text[1:].partition(" ")
        name = name.split("@", 1)[0].lower()
        if name in ("cancel", "back", "skip") and state is not None:
            return await engine.on_text(state, turn, name)
        if name == "cancel":
            return Step(None, [Reply.say("Nothing to cancel. /help lists what I can do.")])
        notes: list[Reply] = []
        if state is not None and (name in FLOWS or name in COMMANDS):
            if name in FLOWS:
                notes.append(Reply.say(f"(Left /{state.flow} unfinished.)"))
            else:
                # An instant command keeps the flow: answer it, then repeat the question.
                replies = await self._run_command(msg, turn, name, args)
                again = await engine.advance(state, turn)
                return Step(again.state, replies + again.replies)
        if name in FLOWS:
            started = await engine.start(FLOWS[name], turn, args)
            return Step(started.state, notes + started.replies, started.submit)
        if name in COMMANDS:
            return Step(None, notes + await self._run_command(msg, turn, name, args))
        return Step(state, [Reply.say("I don't know /", name, ". /help lists what I can do.")])

    async def _run_command(self, msg: Inbound, turn: Turn, name: str, args: str) -> list[Reply]:
        cmd = COMMANDS[name]
        if msg.is_group and not cmd.group_ok:
            return [Reply.say(f"/{name} works in a private chat with me.")]
        return await cmd.run(turn, args.strip())

    async def _button(self, msg: Inbound, turn: Turn, state: FormState | None, value: str) -> Step:
        if value.startswith(("nav:", "ans:", "say:")):
            if state is None:
                return Step(None, [Reply.say("That question is closed. /help lists what I can do.")])
            return await engine.on_button(state, turn, value)
        if value.startswith(GO):
            flow_name, _, rest = value[len(GO):].partition(":")
            flow = FLOWS.get(flow_name)
            if flow is None:
                return Step(state, [Reply.say("That button is out of date.")])
            preset = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
            preset = {k: v for k, v in preset.items() if k in {f.name for f in flow.fields}}
            return await engine.start(flow, turn, preset=preset)
        prefix, _, rest = value.partition(":")
        handler = ACTIONS.get(prefix)
        if handler is None:
            return Step(state, [Reply.say("That button is out of date.")])
        replies = await handler(turn, rest.split(":") if rest else [])
        return Step(state, replies)

    async def _shared_contact(self, msg: Inbound, turn: Turn, state: FormState | None) -> Step:
        contact = msg.contact
        if state is not None and state.field and state.field != engine.CONFIRM:
            fld = state.spec.field(state.field)
            if fld.kind == "phone":
                if contact.name and "name" in {f.name for f in state.spec.fields}:
                    state.answers.setdefault("name", contact.name)
                return await engine.on_text(state, turn, contact.phone)
        preset = {"phone": contact.phone}
        if contact.name:
            preset["name"] = contact.name
        return await engine.start(FLOWS["newlead"], turn, preset=preset)

    async def _forwarded(self, msg: Inbound, turn: Turn, state: FormState | None) -> Step:
        fwd = msg.forwarded
        preset: dict[str, Any] = {"kind": "message", "summary": fwd.text or "(forwarded message)"}
        started = await engine.start(FLOWS["log"], turn, preset=preset)
        if fwd.sent_at is not None and started.state is not None:
            started.state.data["occurred_at"] = fwd.sent_at.isoformat()
        who = f" from {fwd.sender_name}" if fwd.sender_name else ""
        head = Reply.say("📨 Forwarded message", who, ". Log it to which contact?")
        return Step(started.state, [head] + started.replies, started.submit)

    async def _attachment(self, msg: Inbound, turn: Turn, state: FormState | None, caption: str) -> Step:
        att = msg.attachment
        if caption.startswith("/import") and "import" in COMMANDS:
            return Step(state, await COMMANDS["import"].run(turn, caption[len("/import"):].strip()))
        started = await engine.start(FLOWS["attach"], turn, preset={"note": caption} if caption else None)
        if started.state is not None:
            started.state.data["attachment"] = {
                "path": str(att.path), "filename": att.filename, "size": att.size,
            }
        head = Reply.say("📎 ", bold(att.filename), " received. Attach it to which contact?")
        return Step(started.state, [head] + started.replies, started.submit)

    async def _submit(self, msg: Inbound, turn: Turn, state: FormState, before: list[Reply] | None = None) -> Step:
        flow = state.spec
        ctx = engine.context(state, turn)
        token = _SUBMITTING.set((msg.platform, msg.chat_id, msg.user_id))
        try:
            replies = await flow.submit(ctx)
        except DomainError as err:
            blamed = engine.blamed_field(state, err)
            if blamed is None:  # nothing to ask again: the flow cannot go on
                return Step(None, (before or []) + [Reply.say("⚠️ ", err.message)])
            if blamed == err.field or flow.confirm is None:
                # Without a summary to show again, re-ask the last answer rather than leave the
                # flow silently retrying the same submit on every message.
                step = await engine.reask(state, turn, blamed, err.message)
                return Step(step.state, (before or []) + step.replies)
            state.field = None
            again = await engine.advance(state, turn, [Rich.of("⚠️ ", err.message)])
            return Step(again.state, (before or []) + again.replies)
        finally:
            _SUBMITTING.reset(token)
        return Step(None, (before or []) + replies)

    # --- strangers ----------------------------------------------------------------------

    async def _stranger(self, msg: Inbound, turn: Turn) -> list[Reply]:
        text = (msg.text or "").strip()
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            cmd = COMMANDS.get(name.split("@", 1)[0].lower())
            if cmd is not None and cmd.public and args.strip():
                return await cmd.run(turn, args.strip())
        return [self._stranger_reply(msg)]

    @staticmethod
    def _stranger_reply(msg: Inbound) -> Reply:
        return Reply.say(
            "👋 You're not on this team's ChatCRM yet. Your ",
            msg.platform.capitalize(), " id is ", code(msg.user_id),
            ": send it to your admin, or use ", code("/join <code>"), " from an invite.",
        )

    # --- state and identity -------------------------------------------------------------

    async def _snapshot(self, msg: Inbound) -> "_Snapshot":
        """One read for what every message needs: already processed? who is it? which flow?

        (The hot path: a typed answer costs this read, the use case, and one write.)"""
        async with self.crm.reader() as uow:
            if msg.event_key and await uow.processed.exists(msg.platform, msg.event_key):
                # Checked here, recorded with the state in `_save`: a crash in between lets the
                # platform's re-delivery through instead of losing the message.
                return _Snapshot(seen=True)
            user = await uow.users.by_identity(msg.platform, msg.user_id)
            row = await uow.conversations.find(msg.platform, msg.chat_id, msg.user_id)
        return _Snapshot(user=user if user is not None and user.active else None, row=row)

    async def _turn(self, msg: Inbound, user: User | None | object = _LOOK_UP) -> Turn:
        if user is _LOOK_UP:
            user = (await self._snapshot(msg)).user
        actor = None
        tz, language, role, name = self.crm.settings.tz, self.crm.settings.language, "rep", ""
        if user is not None:
            actor = Actor(user.id, msg.platform, msg.message_ref)
            if msg.timezone and not user.timezone_chosen and msg.timezone != user.timezone:
                user.timezone = await adopt_platform_timezone(self.crm, actor, msg.timezone)
            tz, language, role, name = ZoneInfo(user.timezone), user.language, user.role, user.display_name
        return Turn(
            crm=self.crm, actor=actor, inbound=msg, tz=tz, language=language, role=role,
            display_name=name,
        )

    async def _restore(self, msg: Inbound, row: ConversationState | None) -> tuple[FormState | None, list[Reply]]:
        if row is None:
            return None, []
        if row.flow not in FLOWS or self.crm.now() - row.updated_at > FLOW_TTL:
            await self._save(msg, None)
            if row.flow in FLOWS:
                return None, [Reply.say(f"(Your unfinished /{row.flow} expired after 24 hours.)")]
            return None, []
        return FormState(row.flow, dict(row.answers), row.field, dict(row.data)), []

    async def _save(self, msg: Inbound, state: FormState | None) -> None:
        async with self.crm.uow() as uow:
            if msg.event_key:
                await uow.processed.seen(msg.platform, msg.event_key, uow.now)
            if state is None:
                await uow.conversations.clear(msg.platform, msg.chat_id, msg.user_id)
            else:
                await uow.conversations.put(
                    msg.platform, msg.chat_id, msg.user_id, flow=state.flow,
                    answers=state.answers, field=state.field, data=state.data, now=uow.now,
                )
            await uow.commit()
