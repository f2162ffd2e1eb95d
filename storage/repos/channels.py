"""Team channels that receive alerts."""
from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import or_, select

from storage.models import TeamChannel
from storage.repos.base import Repository


class TeamChannelRepository(Repository[TeamChannel]):
    model = TeamChannel

    async def by_address(self, address: str) -> TeamChannel | None:
        stmt = select(TeamChannel).where(TeamChannel.address == address)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def listed(self, manager_ids: Collection[int] | None = None) -> list[TeamChannel]:
        """Every channel (`manager_ids` None), or those of these managers plus company-wide."""
        stmt = select(TeamChannel).order_by(TeamChannel.id)
        if manager_ids is not None:
            stmt = stmt.where(
                or_(TeamChannel.manager_id.is_(None), TeamChannel.manager_id.in_(list(manager_ids)))
            )
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, channel: TeamChannel) -> None:
        await self.session.delete(channel)
