"""A guided flow is a form: data, not code paths. Each surface renders the same form its own way
(Telegram and DMs one field at a time, a Slack modal all at once)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from conversations.messages import Choice, Reply
from conversations.rich import Rich

if TYPE_CHECKING:
    from config import Settings
    from conversations.registry import Turn
    from handlers.context import CRM, Actor

# Field kinds. Surfaces may render some natively (date pickers, share-contact button, selects).
TEXT, CHOICE, WHEN, DAY, AMOUNT, PHONE, EMAIL, NUMBER = (
    "text", "choice", "when", "day", "amount", "phone", "email", "number",
)
CONTACT, DEAL, CONTRACT, INVOICE = "contact", "deal", "contract", "invoice"
PICKER_KINDS = (CONTACT, DEAL, CONTRACT, INVOICE)


@dataclass
class FormContext:
    """What a field's functions see: the turn (who, where, when) and the answers so far."""

    turn: "Turn"
    answers: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)  # flow scratch, stored with the state

    @property
    def crm(self) -> "CRM":
        return self.turn.crm

    @property
    def actor(self) -> "Actor":
        return self.turn.actor

    @property
    def tz(self) -> ZoneInfo:
        return self.turn.tz

    @property
    def settings(self) -> "Settings":
        return self.turn.crm.settings

    @property
    def now(self):
        return self.turn.crm.now()


class NeedChoice(Exception):
    """Raised by a parse function when the text matched several records: ask the user to pick.

    The choices' values are what a button press sends back to the field's `pick`.
    """

    def __init__(self, message: str | Rich, choices: list[Choice]) -> None:
        super().__init__(message if isinstance(message, str) else message.plain)
        self.text = message if isinstance(message, Rich) else Rich.of(message)
        self.choices = choices


ParseFn = Callable[[FormContext, str], Awaitable[Any]]
PromptFn = Callable[[FormContext], Awaitable[Rich]]
OptionsFn = Callable[[FormContext], Awaitable[list[Choice]]]
WhenFn = Callable[[FormContext], Awaitable[bool]]
ShowFn = Callable[[FormContext, Any], str]


@dataclass(frozen=True)
class Field:
    """One question.

    - `parse(ctx, text)` turns typed text into the stored (JSON-able) value, or raises
      `InvalidInput` (re-asked with its message) or `NeedChoice`.
    - `pick(ctx, value)` accepts a button press (defaults: choice fields check the options;
      other kinds run `parse`). Values can be forged, so pick re-checks through the use cases.
    - `options(ctx)` lists choices (choice fields) or suggestions (pickers: recent records).
    - `when(ctx)` decides whether the field applies, from the answers so far.
    - `show(ctx, value)` is the human form of a stored value (echo, summaries).
    - `quick` are shortcut answers shown as buttons ("Today", "Tomorrow").
    """

    name: str
    label: str
    prompt: str | PromptFn
    kind: str = TEXT
    parse: ParseFn | None = None
    pick: ParseFn | None = None
    optional: bool = False
    when: WhenFn | None = None
    options: OptionsFn | None = None
    show: ShowFn | None = None
    multiline: bool = False
    placeholder: str | None = None
    quick: tuple[str, ...] = ()

    async def prompt_text(self, ctx: FormContext) -> Rich:
        if isinstance(self.prompt, str):
            return Rich.of(self.prompt)
        return await self.prompt(ctx)

    async def applies(self, ctx: FormContext) -> bool:
        return True if self.when is None else await self.when(ctx)

    def display(self, ctx: FormContext, value: Any) -> str:
        if value is None:
            return "—"
        return self.show(ctx, value) if self.show else str(value)


SubmitFn = Callable[[FormContext], Awaitable[list[Reply]]]
PrefillFn = Callable[[FormContext, str], Awaitable[dict[str, Any]]]
SummaryFn = Callable[[FormContext], Awaitable[Rich]]


@dataclass(frozen=True)
class Flow:
    """A guided flow: `/name` asks `fields` in order (first missing applicable one next),
    optionally shows `confirm(ctx)` as a summary to approve, then runs `submit(ctx)`.

    `submit` calls use cases; a `DomainError` with a `field` re-asks that field with the
    error's message and keeps every other answer.
    """

    name: str
    help: str
    title: str  # short title (<= 24 characters: a Slack modal title)
    fields: tuple[Field, ...]
    submit: SubmitFn
    prefill: PrefillFn | None = None
    confirm: SummaryFn | None = None
    order: int = 100
    listed: bool = True  # shown in /help and command menus (False: started from buttons)

    def __post_init__(self) -> None:
        if len(self.title) > 24:
            raise ValueError(f"flow title over 24 characters: {self.title!r}")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


FLOWS: dict[str, Flow] = {}


def register_flow(flow: Flow) -> Flow:
    if flow.name in FLOWS:
        raise ValueError(f"flow {flow.name} registered twice")
    FLOWS[flow.name] = flow
    return flow
