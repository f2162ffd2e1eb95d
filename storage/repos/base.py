"""Shared repository plumbing."""
from __future__ import annotations

from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    """A repository over one model; subclasses set `model` and add their queries."""

    model: type[M]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id_: int) -> M | None:
        return await self.session.get(self.model, id_)

    async def get_for_update(self, id_: int) -> M | None:
        # SQLite serialises writers with BEGIN IMMEDIATE; PostgreSQL locks the row.
        return await self.session.get(self.model, id_, with_for_update=True)

    def add(self, obj: M) -> M:
        self.session.add(obj)
        return obj

    async def add_and_flush(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj
