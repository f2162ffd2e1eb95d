"""The command and button-action registry every surface shares.

- A `Command` answers at once (`/pipeline`, `/report last month`, `/export deals`).
- A flow (`conversations/forms.py`) asks step by step; it registers itself as a command too.
- An action is a button press: its value is `"<prefix>:<arg>:<arg>..."` (<= 64 bytes), and the
  handler registered for the prefix gets the args. Action args are ids only; the handler must
  check authorization itself (values can be forged), through the use cases.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from conversations.messages import Inbound, Reply

if TYPE_CHECKING:
    from handlers.context import CRM, Actor


@dataclass
class Turn:
    """Everything a command or action handler may use for one inbound message."""

    crm: "CRM"
    actor: "Actor | None"  # None only for public commands run by a stranger
    inbound: Inbound
    tz: ZoneInfo  # the acting user's time zone
    language: str = "en"
    role: str = "rep"
    display_name: str = ""
    # Set by a handler to start a guided flow after it returns: (flow name, prefilled answers).
    start_flow: tuple[str, dict] | None = field(default=None)
    # Shows an interim reply while long work runs (an import); surfaces that can edit a message
    # replace the previous interim reply with the same `edit_key`. None: no interim replies.
    progress: "ProgressFn | None" = field(default=None)

    @property
    def now(self):
        return self.crm.now()


ProgressFn = Callable[[Reply], Awaitable[None]]
CommandFn = Callable[[Turn, str], Awaitable[list[Reply]]]
ActionFn = Callable[[Turn, list[str]], Awaitable[list[Reply]]]


@dataclass(frozen=True)
class Command:
    name: str  # without the slash
    help: str  # one line, shown in /help and in Telegram's command menu
    run: CommandFn  # (turn, argument text) -> replies
    group_ok: bool = False  # may be used in a group chat / channel
    order: int = 100  # position in /help
    public: bool = False  # may be used by someone who is not a user yet (/start, /join)


COMMANDS: dict[str, Command] = {}
ACTIONS: dict[str, ActionFn] = {}


def command(
    name: str, help: str, *, group_ok: bool = False, order: int = 100, public: bool = False
):
    """Decorator: register `fn(turn, args) -> list[Reply]` as `/name`."""

    def wrap(fn: CommandFn) -> CommandFn:
        if name in COMMANDS:
            raise ValueError(f"command /{name} registered twice")
        COMMANDS[name] = Command(name, help, fn, group_ok, order, public)
        return fn

    return wrap


def action(prefix: str):
    """Decorator: register `fn(turn, args) -> list[Reply]` for button values `prefix:...`."""

    def wrap(fn: ActionFn) -> ActionFn:
        if prefix in ACTIONS:
            raise ValueError(f"action {prefix!r} registered twice")
        ACTIONS[prefix] = fn
        return fn

    return wrap


def action_value(prefix: str, *args: object) -> str:
    """Build a button value; raises if it would not fit Telegram's 64-byte callback data."""
    value = ":".join([prefix, *map(str, args)])
    if len(value.encode()) > 64:
        raise ValueError(f"action value too long: {value!r}")
    return value
