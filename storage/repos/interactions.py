"""Interactions: a contact's history, newest first."""
from __future__ import annotations

from sqlalchemy import and_, or_, select

from storage.models import Interaction
from storage.repos.base import Repository


class InteractionRepository(Repository[Interaction]):
    model = Interaction

    async def history(
        self, contact_id: int, *, limit: int, before: Interaction | None = None
    ) -> list[Interaction]:
        """The contact's interactions newest first; with `before`, the page that follows it.

        Ordered by (occurred_at, id) so entries logged for the same minute page stably.
        """
        stmt = select(Interaction).where(Interaction.contact_id == contact_id)
        if before is not None:
            stmt = stmt.where(
                or_(
                    Interaction.occurred_at < before.occurred_at,
                    and_(Interaction.occurred_at == before.occurred_at, Interaction.id < before.id),
                )
            )
        stmt = stmt.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())
