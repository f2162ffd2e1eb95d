"""Inbound platform events already handled (dedupe of Telegram update_id, Slack event_id)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import ProcessedEvent
from storage.repos.base import Repository


class ProcessedEventRepository(Repository[ProcessedEvent]):
    model = ProcessedEvent

    async def seen(self, platform: str, key: str, at: datetime | None = None) -> bool:
        """Record the event `key` of `platform`; True if it had been recorded before.

        Atomic (INSERT ... ON CONFLICT DO NOTHING), so two processes receiving the same retry
        agree on which one handles it. `at` is bookkeeping for pruning only; callers with a
        unit of work pass `uow.now`.
        """
        when = at or datetime.now(timezone.utc)
        dialect = self.session.bind.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(ProcessedEvent)
            .values(platform=platform, event_key=str(key), at=when)
            .on_conflict_do_nothing(index_elements=["platform", "event_key"])
        )
        result = await self.session.execute(stmt)
        return result.rowcount == 0

    async def exists(self, platform: str, key: str) -> bool:
        """Whether the event `key` of `platform` was recorded (a read; no lock taken)."""
        stmt = select(ProcessedEvent.id).where(
            ProcessedEvent.platform == platform, ProcessedEvent.event_key == str(key)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def prune(self, before: datetime) -> int:
        """Forget events older than `before` (platforms stop retrying after minutes)."""
        stmt = delete(ProcessedEvent).where(ProcessedEvent.at < before)
        return (await self.session.execute(stmt)).rowcount
