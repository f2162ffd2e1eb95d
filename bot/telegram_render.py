"""Neutral replies -> Telegram messages: HTML with every span escaped, texts split to fit,
inline keyboards from choices, and the share-contact keyboard for phone steps."""
from __future__ import annotations

import html
from dataclasses import dataclass

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from conversations.messages import Choice, OutFile, Reply
from conversations.rich import Rich, Span

MAX_TEXT = 4096
MAX_CAPTION = 1024
SHARE_CONTACT = "📱 Share contact"
SHORT_LABEL = 12

_STYLES = {
    "plain": "{}",
    "bold": "<b>{}</b>",
    "italic": "<i>{}</i>",
    "code": "<code>{}</code>",
}
# Buttons whose meaning can be typed, so they still work on a reply keyboard (phone steps).
_TYPED_EQUIVALENT = {"nav:skip": "skip", "nav:back": "back", "nav:cancel": "cancel"}


def to_html(text: Rich) -> str:
    """Telegram HTML for `text`; user-supplied strings are escaped span by span."""
    return text.render(_escape, _STYLES, _link)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _link(label: str, url: str) -> str:
    return f'<a href="{html.escape(url, quote=True)}">{label}</a>'


def visible_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units of the text after parsing)."""
    return len(text.encode("utf-16-le")) // 2


def split(text: Rich, limit: int = MAX_TEXT) -> list[Rich]:
    """Split `text` into pieces of at most `limit` visible characters, at line boundaries
    where possible (a single longer line is cut inside). Styling is kept on each piece."""
    pieces: list[list[Span]] = [[]]
    size = 0
    for line in _lines(text):
        length = sum(visible_length(s.text) for s in line)
        if size and size + length > limit:
            pieces.append([])
            size = 0
        while length > limit:  # one line longer than a whole message
            head, line = _cut(line, limit - size)
            pieces[-1].extend(head)
            pieces.append([])
            size = 0
            length = sum(visible_length(s.text) for s in line)
        pieces[-1].extend(line)
        size += length
    out = [_strip_newlines(Rich(tuple(p))) for p in pieces]
    return [p for p in out if p] or [Rich()]


def _lines(text: Rich) -> list[list[Span]]:
    """Spans grouped by line; every line but the last keeps its trailing newline."""
    lines: list[list[Span]] = [[]]
    for span in text.spans:
        parts = span.text.split("\n")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            chunk = part if last else part + "\n"
            if chunk:
                lines[-1].append(Span(chunk, span.style, span.url))
            if not last:
                lines.append([])
    return lines


def _cut(line: list[Span], room: int) -> tuple[list[Span], list[Span]]:
    """Split `line` after `room` visible characters."""
    head: list[Span] = []
    for i, span in enumerate(line):
        length = visible_length(span.text)
        if length <= room:
            head.append(span)
            room -= length
            continue
        cut = _utf16_prefix(span.text, room)
        head.append(Span(span.text[:cut], span.style, span.url))
        rest = [Span(span.text[cut:], span.style, span.url)] + line[i + 1:]
        return head, rest
    return head, []


def _utf16_prefix(text: str, units: int) -> int:
    """How many characters of `text` fit in `units` UTF-16 code units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return index
    return len(text)


def _strip_newlines(text: Rich) -> Rich:
    """Drop newlines at the cut (a piece neither starts nor ends with blank lines)."""
    spans = list(text.spans)
    while spans and not spans[-1].text.rstrip("\n"):
        spans.pop()
    if spans:
        last = spans[-1]
        spans[-1] = Span(last.text.rstrip("\n"), last.style, last.url)
    while spans and not spans[0].text.lstrip("\n"):
        spans.pop(0)
    if spans:
        first = spans[0]
        spans[0] = Span(first.text.lstrip("\n"), first.style, first.url)
    return Rich(tuple(spans))


def inline_keyboard(choices: tuple[Choice, ...]) -> InlineKeyboardMarkup | None:
    """One button per choice; short labels share a row so a phone shows more at once."""
    if not choices:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for choice in choices:
        button = InlineKeyboardButton(choice.label, callback_data=choice.value)
        if rows and _shares_row(rows[-1], choice.label):
            rows[-1].append(button)
        else:
            rows.append([button])
    return InlineKeyboardMarkup(rows)


def _shares_row(row: list[InlineKeyboardButton], label: str) -> bool:
    """Up to three short labels ("Skip", "Tomorrow") fit side by side on a phone."""
    return len(row) < 3 and all(len(text) <= SHORT_LABEL for text in [label, *(b.text for b in row)])


def contact_keyboard(choices: tuple[Choice, ...]) -> ReplyKeyboardMarkup:
    """A one-time keyboard for phone steps: share the contact, or a typed verb (Skip ...)."""
    # The button sends its text as a message, so it carries the word the flow understands.
    typed = [KeyboardButton(_TYPED_EQUIVALENT[c.value].capitalize())
             for c in choices if c.value in _TYPED_EQUIVALENT]
    rows = [[KeyboardButton(SHARE_CONTACT, request_contact=True)]]
    if typed:
        rows.append(typed)
    return ReplyKeyboardMarkup(rows, one_time_keyboard=True, resize_keyboard=True)


@dataclass(frozen=True)
class Outgoing:
    """One Telegram message to send: HTML text, or a photo/document with an HTML caption."""

    text: str
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None = None
    photo: OutFile | None = None
    document: OutFile | None = None


def messages_for(reply: Reply) -> list[Outgoing]:
    """The Telegram messages a reply becomes, in order; the keyboard goes on the last one."""
    markup = (
        contact_keyboard(reply.choices) if reply.kind == "phone" else inline_keyboard(reply.choices)
    )
    out: list[Outgoing] = []
    media = reply.image or reply.file
    text = reply.text
    if media is not None:
        caption = text if text else Rich.of(media.caption or "")
        fits = visible_length(caption.plain) <= MAX_CAPTION
        out.append(
            Outgoing(
                text=to_html(caption) if fits else "",
                photo=reply.image,
                document=reply.file if reply.image is None else None,
            )
        )
        text = Rich() if fits else caption
    if text:
        out.extend(Outgoing(text=to_html(piece)) for piece in split(text))
    if reply.image is not None and reply.file is not None:
        out.append(Outgoing(text="", document=reply.file))
    if not out:
        return []
    last = out[-1]
    out[-1] = Outgoing(last.text, markup, last.photo, last.document)
    return out
