"""Users, their chat identities, and who sees whose records."""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select

from storage.enums import OPEN_STAGES, InstallmentStatus, Role, TaskStatus
from storage.models import Contact, Contract, Deal, Identity, Installment, Task, User
from storage.repos.base import Repository

# A contract is still open while any of its installments is neither paid nor void.
UNSETTLED = (InstallmentStatus.OPEN.value, InstallmentStatus.PARTIAL.value)


@dataclass(frozen=True)
class OwnedRecords:
    """What a person is working on: handed over as a whole when they leave."""

    deals: list[Deal]
    contacts: list[Contact]
    tasks: list[Task]
    contracts: list[Contract]


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
        return (await self.session.execute(select(func.count(User.id)))).scalar_one()

    async def visible_owner_ids(self, user: User) -> frozenset[int] | None:
        """Owners whose records `user` may see and change; None means everyone (admin)."""
        if user.role == Role.ADMIN:
            return None
        if user.role == Role.MANAGER:
            team = await self.session.execute(select(User.id).where(User.manager_id == user.id))
            return frozenset({user.id, *team.scalars()})
        return frozenset({user.id})

    async def count_active_admins(self) -> int:
        stmt = select(func.count(User.id)).where(User.active.is_(True), User.role == Role.ADMIN.value)
        return (await self.session.execute(stmt)).scalar_one()

    async def platforms_of(self, user_ids: Collection[int]) -> dict[int, list[str]]:
        """Each user's chat platforms, in the order they were added."""
        stmt = (
            select(Identity.user_id, Identity.platform)
            .where(Identity.user_id.in_(list(user_ids)))
            .order_by(Identity.id)
        )
        found: dict[int, list[str]] = {uid: [] for uid in user_ids}
        for user_id, platform in await self.session.execute(stmt):
            found[user_id].append(platform)
        return found

    async def open_deal_counts(self, user_ids: Collection[int]) -> dict[int, int]:
        stmt = (
            select(Deal.owner_id, func.count(Deal.id))
            .where(Deal.owner_id.in_(list(user_ids)), Deal.stage.in_([s.value for s in OPEN_STAGES]))
            .group_by(Deal.owner_id)
        )
        counts = {uid: 0 for uid in user_ids}
        counts.update({owner: n for owner, n in await self.session.execute(stmt)})
        return counts

    async def open_records_of(self, user_id: int) -> OwnedRecords:
        """Open deals, live contacts, open tasks and unsettled contracts owned by `user_id`."""
        deals = select(Deal).where(
            Deal.owner_id == user_id, Deal.stage.in_([s.value for s in OPEN_STAGES])
        )
        contacts = select(Contact).where(Contact.owner_id == user_id, Contact.deleted_at.is_(None))
        tasks = select(Task).where(Task.owner_id == user_id, Task.status == TaskStatus.OPEN.value)
        unsettled = (
            select(Installment.id)
            .where(Installment.contract_id == Contract.id, Installment.status.in_(UNSETTLED))
            .exists()
        )
        contracts = select(Contract).where(Contract.owner_id == user_id, unsettled)
        run = self.session.execute
        return OwnedRecords(
            deals=list((await run(deals.order_by(Deal.id))).scalars()),
            contacts=list((await run(contacts.order_by(Contact.id))).scalars()),
            tasks=list((await run(tasks.order_by(Task.id))).scalars()),
            contracts=list((await run(contracts.order_by(Contract.id))).scalars()),
        )
