"""What every chat surface provides to the rest of ChatCRM."""
from __future__ import annotations

from typing import Protocol

from conversations.messages import Address, Reply


# What a user sees when handling their message failed unexpectedly (every surface says the same).
SORRY = "Something went wrong; your answers are kept — try again."


class Unreachable(Exception):
    """The address cannot receive messages (user blocked the bot, channel archived)."""


class RetryLater(Exception):
    """The platform asked us to slow down or failed transiently; try again after `retry_after`."""

    def __init__(self, retry_after: float, reason: str = "") -> None:
        super().__init__(reason or f"retry after {retry_after}s")
        self.retry_after = retry_after


class Channel(Protocol):
    """A chat surface. `send` delivers one reply and returns the platform's message reference
    (so it can be edited later); it raises `Unreachable` or `RetryLater`, nothing else."""

    platform: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, address: Address, reply: Reply) -> str: ...

    async def edit(self, address: Address, message_ref: str, reply: Reply) -> None: ...
