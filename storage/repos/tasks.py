"""Tasks and follow-ups."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage.enums import TaskStatus
from storage.models import Task
from storage.repos.base import Repository

OPEN = TaskStatus.OPEN.value


class TaskRepository(Repository[Task]):
    model = Task

    async def _all(self, stmt) -> list[Task]:
        return list((await self.session.execute(stmt)).scalars())

    async def open_of_owner(self, owner_id: int, *, due_before: datetime) -> list[Task]:
        """The owner's open tasks due before `due_before`, earliest first (owner/status/due index)."""
        stmt = (
            select(Task)
            .where(Task.owner_id == owner_id, Task.status == OPEN, Task.due_at < due_before)
            .order_by(Task.due_at, Task.id)
        )
        return await self._all(stmt)

    async def due(self, *, until: datetime, limit: int) -> list[Task]:
        """Every open task due at or before `until`, earliest first (status/due index)."""
        stmt = (
            select(Task)
            .where(Task.status == OPEN, Task.due_at <= until)
            .order_by(Task.due_at, Task.id)
            .limit(limit)
        )
        return await self._all(stmt)

    async def open_of_deal(self, deal_id: int) -> list[Task]:
        stmt = (
            select(Task)
            .where(Task.deal_id == deal_id, Task.status == OPEN)
            .order_by(Task.due_at, Task.id)
        )
        return await self._all(stmt)

    async def open_of_contact(self, contact_id: int) -> list[Task]:
        stmt = (
            select(Task)
            .where(Task.contact_id == contact_id, Task.status == OPEN)
            .order_by(Task.due_at, Task.id)
        )
        return await self._all(stmt)
