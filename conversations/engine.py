"""The form engine: given a flow, its state and what the user did, decide the next step.

It talks to no chat platform and stores nothing: the router loads and saves `FormState` and
runs the submit intent. Next question = the first applicable field without an answer (as in
Rasa forms). Verbs at every step: cancel, back, skip (optional fields).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import TYPE_CHECKING, Any

from conversations.forms import CHOICE, FLOWS, Field, Flow, FormContext, NeedChoice
from conversations.messages import Choice, Reply
from conversations.rich import Rich, bold, italic
from handlers.errors import DomainError, InvalidInput

if TYPE_CHECKING:
    from conversations.registry import Turn

NAV_BACK, NAV_SKIP, NAV_CANCEL, NAV_OK = "nav:back", "nav:skip", "nav:cancel", "nav:ok"
ANSWER = "ans:"  # a button answering the current field: "ans:<value>"
SAY = "say:"  # a quick-answer button, treated as if the text were typed: "say:tomorrow"
CONFIRM = "__confirm__"  # the pseudo-field of the confirmation step
MAX_CHOICES = 24  # keep keyboards usable on a phone

_CANCEL_WORDS = {"cancel", "/cancel", "stop", "quit", "exit"}
_BACK_WORDS = {"back", "/back"}
_SKIP_WORDS = {"skip", "/skip", "-", "none", "no"}
_YES_WORDS = {"yes", "y", "ok", "okay", "confirm", "save", "go", "👍"}


@dataclass
class FormState:
    """Plain, JSON-able state of one user's flow: survives a restart when stored."""

    flow: str
    answers: dict[str, Any] = dc_field(default_factory=dict)
    field: str | None = None  # the field being asked (CONFIRM for the confirmation step)
    data: dict[str, Any] = dc_field(default_factory=dict)  # "order": answered fields; "offered"

    @property
    def spec(self) -> Flow:
        return FLOWS[self.flow]


@dataclass
class Step:
    """The engine's decision: replies to send, the state to keep (None: flow over), and
    whether the router should now run the flow's submit."""

    state: FormState | None
    replies: list[Reply]
    submit: bool = False


def context(state: FormState, turn: "Turn") -> FormContext:
    return FormContext(turn=turn, answers=state.answers, data=state.data)


async def start(flow: Flow, turn: "Turn", args: str = "", preset: dict | None = None) -> Step:
    """Begin `flow`; answers found in the command's arguments (or `preset`) are used."""
    state = FormState(flow=flow.name)
    ctx = context(state, turn)
    notes: list[Rich] = []
    if preset:
        for name, raw in preset.items():
            await _accept_preset(state, ctx, flow.field(name), str(raw), notes)
    if args.strip() and flow.prefill:
        try:
            found = await flow.prefill(ctx, args.strip())
        except DomainError as err:
            found = {}
            notes.append(Rich.of("⚠️ ", err.message))
        for name, value in found.items():
            _remember(state, name, value)
    return await advance(state, turn, notes)


async def _accept_preset(state, ctx, fld: Field, raw: str, notes: list[Rich]) -> None:
    try:
        value = await _accept_button(ctx, fld, raw)
    except (DomainError, NeedChoice) as err:
        notes.append(Rich.of("⚠️ ", str(err)))
        return
    _remember(state, fld.name, value)


def _remember(state: FormState, name: str, value: Any) -> None:
    state.answers[name] = value
    order = state.data.setdefault("order", [])
    if name in order:
        order.remove(name)
    order.append(name)
    state.data.pop("offered", None)


async def next_field(state: FormState, turn: "Turn") -> Field | None:
    ctx = context(state, turn)
    for fld in state.spec.fields:
        if fld.name not in state.answers and await fld.applies(ctx):
            return fld
    return None


async def advance(state: FormState, turn: "Turn", notes: list[Rich] | None = None, answered: str | None = None) -> Step:
    """Ask the next question, the confirmation, or hand over to submit."""
    fld = await next_field(state, turn)
    head = Rich.lines(notes or []) + ("\n\n" if notes else "")
    if fld is not None:
        state.field = fld.name
        return Step(state, [await ask(state, turn, fld, head, answered=answered)])
    flow = state.spec
    # A flow with a confirm step is only ever submitted by an explicit yes (`on_text`,
    # `on_button`): anything else at the confirmation shows the summary again.
    if flow.confirm is not None:
        try:
            summary = await flow.confirm(context(state, turn))
        except DomainError as err:
            # The answers fit one by one but not together (a down payment over the total).
            return await reask(state, turn, blamed_field(state, err), err.message)
        state.field = CONFIRM
        return Step(
            state,
            [
                Reply(
                    text=head + summary,
                    choices=(
                        Choice("✅ Confirm", NAV_OK),
                        Choice("⬅️ Back", NAV_BACK),
                        Choice("✖️ Cancel", NAV_CANCEL),
                    ),
                    ask=CONFIRM,
                    kind="confirm",
                    answered=answered,
                )
            ],
        )
    return Step(state, [Reply(text=head)] if notes else [], submit=True)


async def ask(state: FormState, turn: "Turn", fld: Field, head: Rich | None = None, answered: str | None = None) -> Reply:
    ctx = context(state, turn)
    prompt = await fld.prompt_text(ctx)
    choices: list[Choice] = []
    offered = state.data.get("offered")
    if offered:
        choices = [Choice(label, value) for label, value in offered]
    elif fld.options is not None:
        choices = list(await fld.options(ctx))[:MAX_CHOICES]
    choices += [Choice(q, f"{SAY}{q.lower()}") for q in fld.quick]
    hints = []
    if fld.optional:
        choices.append(Choice("Skip", NAV_SKIP))
        hints.append("skip")
    if state.data.get("order"):
        hints.append("back")
    hints.append("cancel")
    text = Rich.of(head or "", prompt, "\n", italic(f"({', '.join(hints)})"))
    return Reply(text=text, choices=tuple(choices), ask=fld.name, kind=fld.kind, answered=answered)


async def on_text(state: FormState, turn: "Turn", text: str) -> Step:
    """The user typed `text` while `state` was asking a field."""
    word = text.strip().lower()
    if word in _CANCEL_WORDS:
        return cancel(state)
    if word in _BACK_WORDS:
        return await back(state, turn)
    if state.field == CONFIRM:
        if word in _YES_WORDS:
            return Step(state, [], submit=True)
        return await advance(state, turn, [Rich.of("Tap ✅ Confirm to save, or type back or cancel.")])
    fld = await _current(state, turn)
    if fld is None:
        return await advance(state, turn)
    # "skip" on a required field says it is needed instead of trying to parse the word.
    if word in ("skip", "/skip") or (word in _SKIP_WORDS and fld.optional):
        return await skip(state, turn)
    ctx = context(state, turn)
    try:
        value = await _parse_typed(ctx, state, fld, text)
    except NeedChoice as need:
        state.data["offered"] = [(c.label, c.value) for c in need.choices][:MAX_CHOICES]
        return Step(state, [await ask(state, turn, fld, need.text + "\n\n")])
    except DomainError as err:
        return Step(state, [await ask(state, turn, fld, Rich.of("⚠️ ", err.message, "\n\n"))])
    _remember(state, fld.name, value)
    return await advance(state, turn, answered=f"{fld.label}: {fld.display(ctx, value)}")


async def on_button(state: FormState, turn: "Turn", value: str) -> Step:
    """The user pressed a button of the flow (`nav:*`, `ans:*`, `say:*`)."""
    if value == NAV_CANCEL:
        return cancel(state)
    if value == NAV_BACK:
        return await back(state, turn)
    if value == NAV_SKIP:
        return await skip(state, turn)
    if value == NAV_OK:
        if state.field == CONFIRM:
            return Step(state, [], submit=True)
        return await advance(state, turn)
    if value.startswith(SAY):
        return await on_text(state, turn, value[len(SAY):])
    if not value.startswith(ANSWER):
        return await advance(state, turn, [Rich.of("That button belongs to another question.")])
    fld = await _current(state, turn)
    if fld is None:
        return await advance(state, turn)
    ctx = context(state, turn)
    try:
        picked = await _accept_button(ctx, fld, value[len(ANSWER):])
    except NeedChoice as need:
        state.data["offered"] = [(c.label, c.value) for c in need.choices][:MAX_CHOICES]
        return Step(state, [await ask(state, turn, fld, need.text + "\n\n")])
    except DomainError as err:
        return Step(state, [await ask(state, turn, fld, Rich.of("⚠️ ", err.message, "\n\n"))])
    _remember(state, fld.name, picked)
    return await advance(state, turn, answered=f"{fld.label}: {fld.display(ctx, picked)}")


async def _accept_button(ctx: FormContext, fld: Field, raw: str) -> Any:
    """A value that arrived by button (or a preset): checked, never trusted."""
    if fld.kind == CHOICE and fld.pick is None:
        return await _pick_choice(ctx, fld, raw)
    if fld.pick is not None:
        return await fld.pick(ctx, raw)
    if fld.parse is not None:
        return await fld.parse(ctx, raw)
    return raw


async def _current(state: FormState, turn: "Turn") -> Field | None:
    if state.field and state.field != CONFIRM:
        try:
            fld = state.spec.field(state.field)
        except KeyError:
            return await next_field(state, turn)
        if fld.name not in state.answers:
            return fld
    return await next_field(state, turn)


async def _parse_typed(ctx: FormContext, state: FormState, fld: Field, text: str) -> Any:
    stripped = text.strip()
    offered = state.data.get("offered")
    if offered and stripped.isdigit() and 1 <= int(stripped) <= len(offered):
        value = offered[int(stripped) - 1][1]
        return await (fld.pick or fld.parse)(ctx, value.removeprefix(ANSWER))
    if fld.kind == CHOICE and fld.options is not None:
        options = await fld.options(ctx)
        match = _match_option(options, stripped)
        if match is not None:
            return await (fld.pick(ctx, match) if fld.pick else _pick_choice(ctx, fld, match))
        if fld.parse is None:
            names = ", ".join(c.label for c in options[:8])
            raise InvalidInput(f"Please pick one of: {names} (tap a button or type its number).")
    if fld.parse is None:
        return stripped
    return await fld.parse(ctx, stripped)


def _match_option(options: list[Choice], text: str) -> str | None:
    """An option by its number in the list, its label, or its value (case-insensitive)."""
    low = text.lower()
    if low.isdigit() and 1 <= int(low) <= len(options):
        return options[int(low) - 1].value.removeprefix(ANSWER)
    for option in options:
        label = option.label.lower()
        bare = "".join(ch for ch in label if ch.isalnum() or ch == " ").strip()
        if low in (label, bare, option.value.removeprefix(ANSWER).lower()):
            return option.value.removeprefix(ANSWER)
    return None


async def _pick_choice(ctx: FormContext, fld: Field, raw: str) -> str:
    options = await fld.options(ctx) if fld.options else []
    allowed = {c.value.removeprefix(ANSWER) for c in options}
    if raw not in allowed:
        match = _match_option(options, raw)
        if match is None:
            raise InvalidInput("That option is not available any more. Pick one below.")
        raw = match
    return raw


def is_verb(text: str) -> bool:
    """Whether `text` is one of the words that answer a question (cancel, back, skip, yes)."""
    return text.strip().lower() in _CANCEL_WORDS | _BACK_WORDS | _SKIP_WORDS | _YES_WORDS


def cancel(state: FormState) -> Step:
    return Step(None, [Reply.say("Cancelled. Nothing was saved from /", state.flow, ".")])


async def back(state: FormState, turn: "Turn") -> Step:
    order = state.data.get("order", [])
    state.data.pop("offered", None)
    if not order:
        fld = await _current(state, turn)
        if fld is None:
            return await advance(state, turn)
        return Step(state, [await ask(state, turn, fld, Rich.of("This is the first question.\n\n"))])
    last = order.pop()
    state.answers.pop(last, None)
    state.field = None
    return await advance(state, turn)


async def skip(state: FormState, turn: "Turn") -> Step:
    fld = await _current(state, turn)
    if fld is None:
        return await advance(state, turn)
    if not fld.optional:
        return Step(state, [await ask(state, turn, fld, Rich.of("This one is needed.\n\n"))])
    _remember(state, fld.name, None)
    return await advance(state, turn, answered=f"{fld.label}: skipped")


def blamed_field(state: FormState, err: DomainError) -> str | None:
    """The field an error is about: its own, else the last one answered."""
    names = {f.name for f in state.spec.fields}
    if err.field in names:
        return err.field
    order = state.data.get("order") or []
    return order[-1] if order else None


async def reask(state: FormState, turn: "Turn", field_name: str, message: str) -> Step:
    """After a failed submit: forget `field_name`'s answer and ask it again with `message`."""
    state.answers.pop(field_name, None)
    order = state.data.get("order", [])
    if field_name in order:
        order.remove(field_name)
    state.field = None
    return await advance(state, turn, [Rich.of("⚠️ ", message)])


async def validate_all(flow: Flow, turn: "Turn", raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a whole form at once (a Slack modal): the same parsers, errors keyed by field.

    Fields are visited in order so conditions see earlier answers. A picker text that matches
    several records is an error asking to be more specific.
    """
    state = FormState(flow=flow.name)
    ctx = context(state, turn)
    errors: dict[str, str] = {}
    for fld in flow.fields:
        if not await fld.applies(ctx):
            continue
        text = (raw.get(fld.name) or "").strip()
        if not text:
            if fld.optional:
                state.answers[fld.name] = None
            else:
                errors[fld.name] = "This one is needed."
            continue
        try:
            if fld.kind == CHOICE and fld.pick is None and fld.parse is None:
                value = await _pick_choice(ctx, fld, text)
            else:
                value = await _parse_typed(ctx, state, fld, text)
        except NeedChoice as need:
            names = ", ".join(c.label for c in need.choices[:5])
            errors[fld.name] = f"Several match ({names}). Type more of the name."
            continue
        except DomainError as err:
            errors[fld.name] = err.message
            continue
        state.answers[fld.name] = value
    return state.answers, errors


def summary_lines(ctx: FormContext, flow: Flow) -> Rich:
    """"Label: value" for every answered field, in form order."""
    lines = []
    for fld in flow.fields:
        if fld.name in ctx.answers and ctx.answers[fld.name] is not None:
            lines.append(Rich.of(bold(fld.label + ": "), fld.display(ctx, ctx.answers[fld.name])))
    return Rich.lines(lines)
