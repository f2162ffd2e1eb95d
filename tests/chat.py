"""A tiny transcript driver for the router: say things, press buttons, read the answers.

    chat = Chat(router, platform="console", user_id="u1")
    await chat.say("/newlead")
    await chat.press("Website")       # the button labelled "Website" in the last replies
    assert "Lead saved" in chat.last_text
"""
from __future__ import annotations

from itertools import count

import pytest
from sqlalchemy import func, select

from conversations.messages import Choice, Inbound, Reply
from conversations.router import Router

_events = count(1)


class Chat:
    """One user in one chat, talking to a `Router`."""

    def __init__(self, router, *, platform: str = "console", user_id: str = "u1",
                 chat_id: str | None = None) -> None:
        self.router = router
        self.platform = platform
        self.user_id = user_id
        self.chat_id = chat_id or user_id
        self.replies: list[Reply] = []

    async def send(self, **fields) -> list[Reply]:
        """Send one `Inbound` with `fields` (text, action, event_key ...); keep the replies."""
        msg = Inbound(platform=self.platform, chat_id=self.chat_id, user_id=self.user_id, **fields)
        self.replies = await self.router.handle(msg)
        return self.replies

    async def say(self, text: str, **fields) -> list[Reply]:
        return await self.send(text=text, **fields)

    async def press(self, label: str) -> list[Reply]:
        """Press the button whose label is (or, failing that, contains) `label`."""
        return await self.send(action=self.button(label).value)

    def button(self, label: str) -> Choice:
        choices = self.choices
        exact = [c for c in choices if c.label == label]
        partial = [c for c in choices if label.lower() in c.label.lower()]
        found = exact or partial
        if len(found) != 1:
            labels = [c.label for c in choices]
            raise AssertionError(f"no single button {label!r} in the last replies: {labels}")
        return found[0]

    @property
    def choices(self) -> list[Choice]:
        return [c for reply in self.replies for c in reply.choices]

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.choices]

    @property
    def texts(self) -> list[str]:
        return [reply.text.plain for reply in self.replies]

    @property
    def last_text(self) -> str:
        """Every reply of the last turn, as plain text, one after the other."""
        return "\n".join(self.texts)

    @property
    def asking(self) -> str | None:
        """The field the bot is asking now (the last reply's `ask`)."""
        return self.replies[-1].ask if self.replies else None


def new_event_key() -> str:
    return f"evt-{next(_events)}"


async def count_rows(crm, model) -> int:
    """How many rows `model`'s table holds (to check nothing was written)."""
    async with crm.reader() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model))


async def all_rows(crm, model) -> list:
    async with crm.reader() as uow:
        return list((await uow.session.scalars(select(model).order_by(model.id))).all())


# --- fixtures (import them into a test module: `from tests.chat import chat, rana  # noqa: F401`)


@pytest.fixture
async def rana(make_user):
    """A rep on the console with the chat identity ("console", "u1")."""
    return await make_user("Rana", identity=("console", "u1"))


@pytest.fixture
def chat(crm, rana) -> Chat:
    """Rana's chat with a fresh router over the test database."""
    return Chat(Router(crm), user_id="u1")
