"""The neutral vocabulary between the chat surfaces (`bot/`) and the CRM: what a user sent,
what the bot answers, and where a message goes. No SDK is imported here."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from conversations.rich import Rich

# Callback data on Telegram is limited to 64 bytes; action values are kept under that everywhere.
MAX_ACTION_BYTES = 64


@dataclass(frozen=True)
class Address:
    """Where a message goes: `telegram:<chat_id>` or `slack:<channel>[:<user>]`, `console:<name>`.

    It round-trips through a string so it can be stored on a row (outbox, team channel).
    """

    platform: str
    chat_id: str
    user_id: str | None = None

    def __str__(self) -> str:
        parts = [self.platform, self.chat_id] + ([self.user_id] if self.user_id else [])
        return ":".join(parts)

    @classmethod
    def parse(cls, text: str) -> "Address":
        platform, _, rest = text.partition(":")
        chat_id, _, user_id = rest.partition(":")
        if not platform or not chat_id:
            raise ValueError(f"not an address: {text!r}")
        return cls(platform, chat_id, user_id or None)


@dataclass(frozen=True)
class Attachment:
    """A file the user sent, already saved locally by the channel."""

    path: Path
    filename: str
    size: int
    mime_type: str | None = None


@dataclass(frozen=True)
class SharedContact:
    """A phone contact shared with the bot (Telegram's "share contact")."""

    phone: str
    name: str | None = None


@dataclass(frozen=True)
class Forwarded:
    """A message the user forwarded from a client, with its original date."""

    sender_name: str | None
    sent_at: datetime | None
    text: str


@dataclass(frozen=True)
class Inbound:
    """One thing a user did: typed text, pressed a button (`action`), or sent a file/contact."""

    platform: str
    chat_id: str
    user_id: str
    text: str | None = None
    action: str | None = None
    display_name: str | None = None
    message_ref: str | None = None  # the platform's id of this message (audit, edits)
    event_key: str | None = None  # dedupe key (Telegram update_id, Slack event_id)
    is_group: bool = False
    attachment: Attachment | None = None
    contact: SharedContact | None = None
    forwarded: Forwarded | None = None
    timezone: str | None = None  # the platform's idea of the user's zone (Slack profile)

    @property
    def address(self) -> Address:
        return Address(self.platform, self.chat_id)


@dataclass(frozen=True)
class Choice:
    """A button / list option. `value` is an opaque action string (<= 64 bytes)."""

    label: str
    value: str

    def __post_init__(self) -> None:
        if len(self.value.encode()) > MAX_ACTION_BYTES:
            raise ValueError(f"action value over {MAX_ACTION_BYTES} bytes: {self.value!r}")


@dataclass(frozen=True)
class OutFile:
    path: Path
    filename: str
    caption: str | None = None


@dataclass(frozen=True)
class Reply:
    """One message from the bot.

    - `choices` render as buttons (Telegram inline keyboard, Slack buttons/select) or as a
      numbered list in the console; answering by number or label works everywhere.
    - `image` is a PNG (charts), `file` any document (exports).
    - `ask` names the form field being asked ("phone", "due" ...) and `kind` its kind
      ("phone", "date", "choice", ...), so a surface may add a native widget (share-contact
      button, date quick buttons).
    - `edit_key` lets a surface edit an earlier message (a card updated after a button press)
      instead of sending a new one, where it can.
    - `answered` is "Label: value" of the step just answered, so a surface can edit the
      previous question to show the answer (the chat then reads like a clean log).
    """

    text: Rich
    choices: tuple[Choice, ...] = ()
    image: OutFile | None = None
    file: OutFile | None = None
    ask: str | None = None
    kind: str | None = None
    edit_key: str | None = None
    answered: str | None = None

    @classmethod
    def say(cls, *parts, choices=(), **kw) -> "Reply":
        return cls(text=Rich.of(*parts), choices=tuple(choices), **kw)
