"""Unit of work: one transaction, the repositories that share it, and the audit context.

Repositories never commit; only a use case does, through `UnitOfWork.commit()`. Domain events
emitted during the work are handed to the `before_commit` hooks inside the same transaction
(the jobs layer turns them into outbox rows, so an alert is queued if and only if the change
lands).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repos.audit import AuditRepository
from storage.repos.base import Repository
from storage.repos.contacts import ContactRepository
from storage.repos.deals import DealRepository
from storage.repos.interactions import InteractionRepository
from storage.repos.tasks import TaskRepository
from storage.repos.contracts import ContractRepository
from storage.repos.channels import TeamChannelRepository
from storage.repos.invites import InviteRepository
from storage.repos.conversations import ConversationStateRepository
from storage.repos.outbox import OutboxRepository
from storage.repos.events import ProcessedEventRepository
from storage.repos.users import UserRepository


@dataclass(frozen=True)
class ChangeSource:
    """Who is acting and from where, stamped on every audit row of one action."""

    actor_id: int | None
    platform: str | None = None
    message_ref: str | None = None


@dataclass(frozen=True)
class DomainEvent:
    """Something other parts may react to: "lead_created", "deal_won", "payment_recorded" ..."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


BeforeCommitHook = Callable[["UnitOfWork", Sequence[DomainEvent]], Awaitable[None]]


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker,
        *,
        source: ChangeSource | None = None,
        action: str = "",
        hooks: Sequence[BeforeCommitHook] = (),
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._sessions = sessions
        self.source = source or ChangeSource(actor_id=None)
        self.action = action
        self.change_id = str(uuid.uuid4())
        self.pending_events: list[DomainEvent] = []
        self._hooks = hooks
        self._now = now
        self._committed = False

    async def __aenter__(self) -> "UnitOfWork":
        self.now: datetime = self._now()  # one timestamp for every row this change writes
        self.session: AsyncSession = self._sessions()
        self.users = UserRepository(self.session)
        self.audit = AuditRepository(self.session, self)
        self.contacts = ContactRepository(self.session)
        self.deals = DealRepository(self.session)
        self.interactions = InteractionRepository(self.session)
        self.tasks = TaskRepository(self.session)
        self.contracts = ContractRepository(self.session)
        self.channels = TeamChannelRepository(self.session)
        self.invites = InviteRepository(self.session)
        self.conversations = ConversationStateRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.processed = ProcessedEventRepository(self.session)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        # close() rolls back whatever was not committed without expiring loaded rows, so
        # results read in a unit of work stay usable after it ends.
        try:
            if exc_type is not None and not self._committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    def emit(self, name: str, **data: Any) -> None:
        self.pending_events.append(DomainEvent(name, data))

    async def flush(self) -> None:
        await self.session.flush()

    async def commit(self) -> None:
        await self.session.flush()
        # Hooks always run: some react to events (alerts), some to context (conversation state).
        for hook in self._hooks:
            await hook(self, tuple(self.pending_events))
        await self.session.commit()
        self._committed = True

    async def rollback(self) -> None:
        await self.session.rollback()


def new_change_id() -> str:
    return str(uuid.uuid4())


__all__ = ["UnitOfWork", "ChangeSource", "DomainEvent", "Repository", "new_change_id"]
