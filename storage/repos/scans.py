"""Read-only queries behind the periodic jobs (reminders, nudges, plans, summaries).

Owner scopes are `None` (everyone) or a collection of user ids, like `visible_owner_ids`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, exists, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from storage.types import UTCDateTime
from storage.enums import InstallmentStatus, Stage, TaskStatus
from storage.models import (
    Allocation,
    Contact,
    Contract,
    Deal,
    Installment,
    Payment,
    Task,
    TeamChannel,
    User,
)

Owners = Collection[int] | None
UNPAID = (InstallmentStatus.OPEN.value, InstallmentStatus.PARTIAL.value)


@dataclass(frozen=True)
class DueTask:
    task: Task
    due: datetime  # snoozed_until when snoozed, else due_at
    contact_name: str | None
    deal_title: str | None


@dataclass(frozen=True)
class DealRow:
    deal: Deal
    contact_name: str | None
    has_open_task: bool


@dataclass(frozen=True)
class InstallmentRow:
    installment: Installment
    contract: Contract
    contact_name: str | None
    remaining_minor: int


def _effective_due():
    return type_coerce(func.coalesce(Task.snoozed_until, Task.due_at), UTCDateTime)


def _owned(column, owners: Owners):
    return column.in_(list(owners)) if owners is not None else True


class ScanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tasks_due_between(self, after: datetime, until: datetime) -> list[DueTask]:
        """Open tasks whose (snoozed) due time is in (after, until]."""
        due = _effective_due()
        stmt = (
            select(Task, due, Contact.name, Deal.title)
            .outerjoin(Contact, Contact.id == Task.contact_id)
            .outerjoin(Deal, Deal.id == Task.deal_id)
            .where(Task.status == TaskStatus.OPEN.value, due > after, due <= until)
            .order_by(due, Task.id)
        )
        rows = await self.session.execute(stmt)
        return [DueTask(t, d, c, dt) for t, d, c, dt in rows.all()]

    async def open_tasks_of(self, owner_id: int, before: datetime) -> list[DueTask]:
        """`owner_id`'s open tasks due before `before`, earliest first."""
        due = _effective_due()
        stmt = (
            select(Task, due, Contact.name, Deal.title)
            .outerjoin(Contact, Contact.id == Task.contact_id)
            .outerjoin(Deal, Deal.id == Task.deal_id)
            .where(Task.owner_id == owner_id, Task.status == TaskStatus.OPEN.value, due < before)
            .order_by(due, Task.id)
        )
        rows = await self.session.execute(stmt)
        return [DueTask(t, d, c, dt) for t, d, c, dt in rows.all()]

    async def neglected_deals(
        self, stale_before: dict[str, datetime], untasked_before: datetime, owners: Owners = None
    ) -> list[DealRow]:
        """Open deals untouched since their stage's cut-off (`stale_before[stage]`), or with no
        open task and untouched since `untasked_before`."""
        open_task = exists().where(Task.deal_id == Deal.id, Task.status == TaskStatus.OPEN.value)
        stale = or_(
            *(
                and_(Deal.stage == stage, Deal.last_touched_at < cut)
                for stage, cut in stale_before.items()
            )
        )
        stmt = (
            select(Deal, Contact.name, open_task)
            .join(Contact, Contact.id == Deal.contact_id)
            .where(
                Deal.stage.in_(list(stale_before)),
                _owned(Deal.owner_id, owners),
                or_(stale, and_(~open_task, Deal.last_touched_at < untasked_before)),
            )
            .order_by(Deal.owner_id, Deal.last_touched_at, Deal.id)
        )
        rows = await self.session.execute(stmt)
        return [DealRow(d, c, bool(has)) for d, c, has in rows.all()]

    async def unpaid_installments(
        self, due_from: date | None, due_to: date, owners: Owners = None
    ) -> list[InstallmentRow]:
        """Open or part-paid installments due in [due_from, due_to], with what is still owed."""
        paid = (
            select(func.coalesce(func.sum(Allocation.amount_minor), 0))
            .join(Payment, Payment.id == Allocation.payment_id)
            .where(Allocation.installment_id == Installment.id, Payment.voided_at.is_(None))
            .scalar_subquery()
        )
        stmt = (
            select(Installment, Contract, Contact.name, Installment.amount_minor - paid)
            .join(Contract, Contract.id == Installment.contract_id)
            .join(Deal, Deal.id == Contract.deal_id)
            .join(Contact, Contact.id == Deal.contact_id)
            .where(
                Installment.status.in_(UNPAID),
                Installment.due_date <= due_to,
                Installment.due_date >= due_from if due_from else True,
                _owned(Contract.owner_id, owners),
            )
            .order_by(Installment.due_date, Installment.id)
        )
        rows = await self.session.execute(stmt)
        return [InstallmentRow(i, c, n, int(r)) for i, c, n, r in rows.all() if r > 0]

    async def pipeline_by_stage(self, owners: Owners) -> list[tuple[str, str, int, int]]:
        """(stage, currency, deal count, total value) of open deals."""
        stmt = (
            select(Deal.stage, Deal.currency, func.count(Deal.id), func.sum(Deal.value_minor))
            .where(
                Deal.stage.notin_([Stage.WON.value, Stage.LOST.value]),
                _owned(Deal.owner_id, owners),
            )
            .group_by(Deal.stage, Deal.currency)
        )
        return [(s, c, n, int(v or 0)) for s, c, n, v in (await self.session.execute(stmt)).all()]

    async def new_deals_by_source(
        self, start: datetime, end: datetime, owners: Owners
    ) -> list[tuple[str | None, int]]:
        stmt = (
            select(Deal.source, func.count(Deal.id))
            .where(Deal.created_at >= start, Deal.created_at < end, _owned(Deal.owner_id, owners))
            .group_by(Deal.source)
            .order_by(func.count(Deal.id).desc())
        )
        return [(s, n) for s, n in (await self.session.execute(stmt)).all()]

    async def closed_between(
        self, start: datetime, end: datetime, owners: Owners
    ) -> list[tuple[str, str, int, int]]:
        """(stage won/lost, currency, count, value) of deals closed in [start, end)."""
        stmt = (
            select(Deal.stage, Deal.currency, func.count(Deal.id), func.sum(Deal.value_minor))
            .where(
                Deal.stage.in_([Stage.WON.value, Stage.LOST.value]),
                Deal.closed_at >= start,
                Deal.closed_at < end,
                _owned(Deal.owner_id, owners),
            )
            .group_by(Deal.stage, Deal.currency)
        )
        return [(s, c, n, int(v or 0)) for s, c, n, v in (await self.session.execute(stmt)).all()]

    async def overdue_tasks_per_owner(self, now: datetime, owners: Owners) -> list[tuple[str, int]]:
        """(owner's name, number of open tasks past due), most first."""
        stmt = (
            select(User.display_name, func.count(Task.id))
            .join(User, User.id == Task.owner_id)
            .where(
                Task.status == TaskStatus.OPEN.value,
                _effective_due() < now,
                _owned(Task.owner_id, owners),
            )
            .group_by(User.id, User.display_name)
            .order_by(func.count(Task.id).desc(), User.display_name)
        )
        return [(name, n) for name, n in (await self.session.execute(stmt)).all()]

    async def summary_channels(self) -> list[TeamChannel]:
        stmt = (
            select(TeamChannel).where(TeamChannel.alert_summary.is_(True)).order_by(TeamChannel.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def channels_for_owner(self, owner: User) -> list[TeamChannel]:
        """Team channels that hear about `owner`'s records: company-wide ones, their manager's,
        and their own if they are a manager."""
        teams = [owner.id] + ([owner.manager_id] if owner.manager_id else [])
        stmt = (
            select(TeamChannel)
            .where(or_(TeamChannel.manager_id.is_(None), TeamChannel.manager_id.in_(teams)))
            .order_by(TeamChannel.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def channel_scope(self, channel: TeamChannel) -> list[int] | None:
        """Owner ids a team channel reports on: None (everyone) or the manager and their team."""
        if channel.manager_id is None:
            return None
        team = await self.session.execute(
            select(User.id).where(User.manager_id == channel.manager_id)
        )
        return [channel.manager_id, *team.scalars()]

    async def active_users(self, roles: Collection[str]) -> list[User]:
        stmt = (
            select(User).where(User.active.is_(True), User.role.in_(list(roles))).order_by(User.id)
        )
        return list((await self.session.execute(stmt)).scalars())
