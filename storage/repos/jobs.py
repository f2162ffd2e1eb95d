"""Bookkeeping of the jobs layer: last run of each periodic job, and intake API answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Deal, IdempotencyRecord, JobRun, User


class JobRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_runs(self) -> dict[str, datetime]:
        rows = await self.session.execute(select(JobRun.name, JobRun.last_run_at))
        return dict(rows.all())

    async def last_run(self, name: str) -> datetime | None:
        return await self.session.scalar(select(JobRun.last_run_at).where(JobRun.name == name))

    async def record(self, name: str, at: datetime) -> None:
        row = await self.session.get(JobRun, name, with_for_update=True)
        if row is None:
            self.session.add(JobRun(name=name, last_run_at=at))
        elif row.last_run_at < at:
            row.last_run_at = at


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> IdempotencyRecord | None:
        return await self.session.get(IdempotencyRecord, key)

    def add(self, key: str, response: dict, at: datetime) -> None:
        self.session.add(IdempotencyRecord(key=key, response=response, created_at=at))


class IntakeRepository:
    """What the lead intake API needs to pick an owner by round robin."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_intake_owner(self, action: str) -> int | None:
        """The owner of the deal most recently created by the intake `action`."""
        stmt = (
            select(Deal.owner_id)
            .join(AuditEntry, AuditEntry.entity_id == Deal.id)
            .where(AuditEntry.action == action, AuditEntry.entity == Deal.__tablename__)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def active_ids_with_role(self, role: str) -> list[int]:
        stmt = select(User.id).where(User.active.is_(True), User.role == role).order_by(User.id)
        return list((await self.session.execute(stmt)).scalars())
