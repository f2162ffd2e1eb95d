"""The console: the whole CRM in a terminal (or a pipe), as the first admin.

Choices print as a numbered list and can be answered by number or by name. Notifications from
the scheduler print inline. With piped input it reads one message per line and exits at the
end of input, so a session can be scripted.
"""
from __future__ import annotations

import asyncio
import sys
import unicodedata
from typing import TextIO

from conversations.messages import Address, Inbound, Reply
from conversations.rich import Rich
from handlers.users import CONSOLE_PLATFORM, CONSOLE_USER_ID

# Kinds whose typed numbers are answers (an amount, a count), never picks from the list.
# Dates are not among them: a bare number is never a date, so "1" picks the first quick answer.
_VALUE_KINDS = {"text", "amount", "phone", "email", "number"}


def _clean(text: str) -> str:
    """Drop control characters a hostile string could use to repaint the terminal."""
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )


def render(reply: Reply) -> str:
    """A reply as plain terminal text, choices numbered."""
    out = [_clean(reply.text.plain)] if reply.text else []
    if reply.choices:
        out.append("   " + "   ".join(f"[{i}] {_clean(c.label)}" for i, c in enumerate(reply.choices, 1)))
    for attachment, icon in ((reply.image, "🖼"), (reply.file, "📄")):
        if attachment is not None:
            caption = f" — {_clean(attachment.caption)}" if attachment.caption else ""
            out.append(f"{icon} saved: {attachment.path}{caption}")
    return "\n".join(out)


class ConsoleChannel:
    """A `bot.base.Channel` on standard input/output."""

    platform = CONSOLE_PLATFORM

    def __init__(self, router, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.router = router
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.address = Address(CONSOLE_PLATFORM, CONSOLE_USER_ID)
        self._last_choices: list = []
        self._last_kind: str | None = None
        self._counter = 0
        self._interactive = self.stdin.isatty()

    async def start(self) -> None:
        """Nothing to connect; `run` is the loop."""

    async def stop(self) -> None:
        self.stdout.flush()

    async def send(self, address: Address, reply: Reply) -> str:
        self._print("🔔 " + render(reply))
        self._counter += 1
        return f"console-{self._counter}"

    async def edit(self, address: Address, message_ref: str, reply: Reply) -> None:
        self._print("✏️ " + render(reply))

    async def run(self) -> None:
        """Read messages until end of input (Ctrl-D) or /quit."""
        self._print("ChatCRM console — /help lists commands, /quit leaves.")
        loop = asyncio.get_running_loop()
        while True:
            if self._interactive:
                self.stdout.write("> ")
                self.stdout.flush()
            line = await loop.run_in_executor(None, self.stdin.readline)
            if not line:
                break
            text = line.rstrip("\n")
            if text.strip() in ("/quit", "/exit"):
                break
            if not text.strip():
                continue
            if not self._interactive:
                self._print(f"> {text}")
            for reply in await self.router.handle(self._inbound(text), self._progress):
                self._show(reply)

    def _inbound(self, text: str) -> Inbound:
        self._counter += 1
        base = dict(platform=CONSOLE_PLATFORM, chat_id=CONSOLE_USER_ID, user_id=CONSOLE_USER_ID,
                    message_ref=f"console-{self._counter}", display_name="You")
        picked = self._picked(text.strip())
        if picked is not None:
            return Inbound(action=picked, **base)
        return Inbound(text=text, **base)

    def _picked(self, text: str) -> str | None:
        """The choice a typed number or label refers to, if the last reply offered choices."""
        if not self._last_choices or text.startswith("/"):
            return None
        if text.isdigit() and self._last_kind not in _VALUE_KINDS:
            index = int(text)
            if 1 <= index <= len(self._last_choices):
                return self._last_choices[index - 1].value
        low = text.lower()
        for choice in self._last_choices:
            if choice.label.lower() == low:
                return choice.value
        return None

    async def _progress(self, reply: Reply) -> None:
        self._print(render(reply))

    def _show(self, reply: Reply) -> None:
        self._print(render(reply))
        self._last_choices = list(reply.choices)
        self._last_kind = reply.kind

    def _print(self, text: str) -> None:
        self.stdout.write(text + "\n\n")
        self.stdout.flush()
