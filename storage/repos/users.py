"""Users, their chat identities, and who sees whose records."""
from __future__ import annotations

from sqlalchemy import select

from storage.enums import Role
from storage.models import Identity, User
from storage.repos.base import Repository


class UserRepository(Repository[User]):
    model = User

    async def by_identity(self, platform: str, platform_user_id: str) -> User | None:
        stmt = (
            select(User)
            .join(Identity, Identity.user_id == User.id)
            .where(Identity.platform == platform, Identity.platform_user_id == str(platform_user_id))
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def identity(self, platform: str, platform_user_id: str) -> Identity | None:
        stmt = select(Identity).where(
            Identity.platform == platform, Identity.platform_user_id == str(platform_user_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def identities_of(self, user_id: int) -> list[Identity]:
        stmt = select(Identity).where(Identity.user_id == user_id).order_by(Identity.id)
        return list((await self.session.execute(stmt)).scalars())

    async def active(self) -> list[User]:
        stmt = select(User).where(User.active.is_(True)).order_by(User.id)
        return list((await self.session.execute(stmt)).scalars())

    async def team_of(self, manager_id: int) -> list[User]:
        stmt = select(User).where(User.manager_id == manager_id).order_by(User.id)
        return list((await self.session.execute(stmt)).scalars())

    async def count(self) -> int:
        from sqlalchemy import func

        return (await self.session.execute(select(func.count(User.id)))).scalar_one()

    async def visible_owner_ids(self, user: User) -> frozenset[int] | None:
        """Owners whose records `user` may see and change; None means everyone (admin)."""
        if user.role == Role.ADMIN:
            return None
        if user.role == Role.MANAGER:
            team = await self.session.execute(select(User.id).where(User.manager_id == user.id))
            return frozenset({user.id, *team.scalars()})
        return frozenset({user.id})
