"""Report aggregates, export streams and import look-ups: all the SQL behind reports.

Every figure is a GROUP BY in the database; Python only formats the handful of rows that come
back. `owners` is the set of owner ids in the actor's scope, or None for everyone (admin).
Durations are computed per dialect (julianday on SQLite, epoch seconds on PostgreSQL).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import Interval, Select, case, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import CLOSED_STAGES, OPEN_STAGES, PIPELINE, Stage
from storage.models import (
    Allocation,
    AuditEntry,
    Contact,
    Contract,
    Deal,
    Identity,
    Installment,
    Interaction,
    Payment,
    StageChange,
    User,
)
from storage.repos.audit import CREATED
from storage.types import UTCDateTime

Owners = frozenset[int] | None
# Funnel order of the stages a deal moves forward through ("lost" is not a step).
FUNNEL = tuple(info.stage for info in PIPELINE if info.stage != Stage.LOST)
EXPORT_BATCH = 1000
LOOKUP_CHUNK = 500


def _breakdown_key(by: str | None):
    """The deals column a breakdown groups by ("rep", "source", "stage"); a constant for none."""
    if by is None:
        return literal("")
    return {"rep": Deal.owner_id, "source": func.coalesce(Deal.source, ""), "stage": Deal.stage}[by]


def _in_scope(column, owners: Owners):
    return literal(True) if owners is None else column.in_(sorted(owners))


class ReportRepository:
    """Aggregates for `handlers/reports.py` and `handlers/charts.py`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    async def _rows(self, stmt: Select) -> list[tuple]:
        return [tuple(r) for r in (await self.session.execute(stmt)).all()]

    def _days(self, later, earlier):
        """`later - earlier` in (fractional) days, for either dialect."""
        if self.sqlite:
            return func.julianday(later) - func.julianday(earlier)
        return func.extract("epoch", later - earlier) / 86400.0

    # --- deals ---------------------------------------------------------------------------

    async def new_leads(self, start: datetime, end: datetime, owners: Owners, by: str | None = None):
        """(key, count) of deals created in [start, end), per `by` (default: per source)."""
        key = _breakdown_key(by or "source")
        stmt = (
            select(key, func.count(Deal.id))
            .where(Deal.created_at >= start, Deal.created_at < end, _in_scope(Deal.owner_id, owners))
            .group_by(key)
            .order_by(func.count(Deal.id).desc(), key)
        )
        return await self._rows(stmt)

    async def closed(self, start: datetime, end: datetime, owners: Owners, by: str | None = None):
        """(key, stage, currency, count, value) of deals won or lost in [start, end)."""
        key = _breakdown_key(by)
        stmt = (
            select(key, Deal.stage, Deal.currency, func.count(Deal.id), func.sum(Deal.value_minor))
            .where(
                Deal.stage.in_([s.value for s in CLOSED_STAGES]),
                Deal.closed_at >= start,
                Deal.closed_at < end,
                _in_scope(Deal.owner_id, owners),
            )
            .group_by(key, Deal.stage, Deal.currency)
            .order_by(key, Deal.stage, Deal.currency)
        )
        return await self._rows(stmt)

    async def average_days_to_close(self, start: datetime, end: datetime, owners: Owners):
        """Mean days from creation to winning, over deals won in [start, end); None if none."""
        stmt = select(func.avg(self._days(Deal.closed_at, Deal.created_at))).where(
            Deal.stage == Stage.WON.value,
            Deal.closed_at >= start,
            Deal.closed_at < end,
            _in_scope(Deal.owner_id, owners),
        )
        value = (await self.session.execute(stmt)).scalar_one()
        return None if value is None else float(value)

    async def open_pipeline(self, owners: Owners, by: str | None = None):
        """(key, stage, currency, count, value) of open deals now."""
        key = _breakdown_key(by)
        stmt = (
            select(key, Deal.stage, Deal.currency, func.count(Deal.id), func.sum(Deal.value_minor))
            .where(Deal.stage.in_([s.value for s in OPEN_STAGES]), _in_scope(Deal.owner_id, owners))
            .group_by(key, Deal.stage, Deal.currency)
            .order_by(key, Deal.stage, Deal.currency)
        )
        return await self._rows(stmt)

    async def won_per_bucket(
        self, start: datetime, end: datetime, owners: Owners, unit: str, utc_offset: timedelta
    ):
        """(bucket first day, currency, value) of deals won, per local week or month."""
        if self.sqlite:
            local = func.datetime(Deal.closed_at, f"{int(utc_offset.total_seconds() // 60):+d} minutes")
            modifiers = ("start of month",) if unit == "month" else ("weekday 0", "-6 days")
            bucket = func.date(local, *modifiers)
        else:
            local = Deal.closed_at + literal(utc_offset, Interval())
            bucket = func.date_trunc(unit, local)
        stmt = (
            select(bucket, Deal.currency, func.sum(Deal.value_minor))
            .where(
                Deal.stage == Stage.WON.value,
                Deal.closed_at >= start,
                Deal.closed_at < end,
                _in_scope(Deal.owner_id, owners),
            )
            .group_by(bucket, Deal.currency)
            .order_by(bucket, Deal.currency)
        )
        rows = await self._rows(stmt)
        return [(_as_date(b), cur, int(v)) for b, cur, v in rows]

    # --- stage history -------------------------------------------------------------------

    async def stage_reach(self, start: datetime, end: datetime, owners: Owners):
        """For each funnel stage: (stage, deals that reached it, deals that went further).

        The cohort is the deals moved during [start, end); a deal "reached" every funnel stage
        up to the furthest one it was moved to before `end` (skipped stages count as passed)."""
        order = case(
            {stage.value: i for i, stage in enumerate(FUNNEL)}, value=StageChange.to_stage, else_=None
        )
        moved = select(StageChange.deal_id).where(StageChange.at >= start, StageChange.at < end)
        furthest = (
            select(func.max(order).label("furthest"))
            .join(Deal, Deal.id == StageChange.deal_id)
            .where(
                StageChange.deal_id.in_(moved),
                StageChange.at < end,
                _in_scope(Deal.owner_id, owners),
            )
            .group_by(StageChange.deal_id)
            .subquery()
        )
        columns = []
        for i in range(len(FUNNEL)):
            columns.append(func.sum(case((furthest.c.furthest >= i, 1), else_=0)))
            columns.append(func.sum(case((furthest.c.furthest > i, 1), else_=0)))
        row = (await self.session.execute(select(*columns))).one()
        return [
            (stage, int(row[2 * i] or 0), int(row[2 * i + 1] or 0))
            for i, stage in enumerate(FUNNEL)
        ]

    async def days_in_stage(self, start: datetime, end: datetime, cutoff: datetime, owners: Owners):
        """(stage, stays, average days) for open-stage stays overlapping [start, cutoff).

        A stay runs from a move into the stage to the deal's next move; one still running is
        counted up to `cutoff` (the period end, or now if that is earlier). Two disjoint parts
        keep this off the whole history: deals moved since `start` (their moves, windowed), and
        deals sitting in an open stage since before `start` (one stay each, from the deals row).
        """
        open_values = [s.value for s in OPEN_STAGES]
        bound = literal(cutoff, UTCDateTime())
        moved_since = select(StageChange.deal_id).where(StageChange.at >= start)
        next_at = func.lead(StageChange.at).over(
            partition_by=StageChange.deal_id, order_by=(StageChange.at, StageChange.id)
        )
        moves = (
            select(StageChange.to_stage, StageChange.at, next_at.label("next_at"))
            .join(Deal, Deal.id == StageChange.deal_id)
            .where(
                StageChange.deal_id.in_(moved_since),
                StageChange.at < cutoff,
                _in_scope(Deal.owner_id, owners),
            )
            .subquery()
        )
        stay_end = case(
            (or_(moves.c.next_at.is_(None), moves.c.next_at > bound), bound), else_=moves.c.next_at
        )
        recent = select(
            moves.c.to_stage.label("stage"), self._days(stay_end, moves.c.at).label("days")
        ).where(
            moves.c.to_stage.in_(open_values),
            or_(moves.c.next_at.is_(None), moves.c.next_at >= start),
        )
        resting = select(
            Deal.stage.label("stage"), self._days(bound, Deal.stage_changed_at).label("days")
        ).where(
            Deal.stage.in_(open_values), Deal.stage_changed_at < start, _in_scope(Deal.owner_id, owners)
        )
        stays = recent.union_all(resting).subquery()
        stmt = select(stays.c.stage, func.count(), func.avg(stays.c.days)).group_by(stays.c.stage)
        return [(stage, int(n), float(avg)) for stage, n, avg in await self._rows(stmt)]

    # --- activity ------------------------------------------------------------------------

    async def interactions_per_rep(self, start: datetime, end: datetime, owners: Owners):
        """(user id, name, count) of interactions logged in [start, end), busiest first."""
        per_user = (
            select(Interaction.logged_by_id.label("user_id"), func.count().label("n"))
            .where(
                Interaction.occurred_at >= start,
                Interaction.occurred_at < end,
                _in_scope(Interaction.logged_by_id, owners),
            )
            .group_by(Interaction.logged_by_id)
            .subquery()
        )
        stmt = (
            select(User.id, User.display_name, per_user.c.n)
            .join(per_user, per_user.c.user_id == User.id)
            .order_by(per_user.c.n.desc(), User.display_name)
        )
        return await self._rows(stmt)

    async def user_names(self, ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(ids))
        if not ids:
            return {}
        rows = await self._rows(select(User.id, User.display_name).where(User.id.in_(ids)))
        return dict(rows)

    # --- collections ---------------------------------------------------------------------

    async def due(self, first: date, end_day: date, owners: Owners):
        """(currency, count, amount) of installments due on local days [first, end_day)."""
        stmt = (
            select(Contract.currency, func.count(Installment.id), func.sum(Installment.amount_minor))
            .join(Contract, Contract.id == Installment.contract_id)
            .where(
                Installment.due_date >= first,
                Installment.due_date < end_day,
                Installment.status != "void",
                _in_scope(Contract.owner_id, owners),
            )
            .group_by(Contract.currency)
            .order_by(Contract.currency)
        )
        return await self._rows(stmt)

    async def collected(self, first: date, end_day: date, owners: Owners):
        """(currency, count, amount) of payments (not voided) paid on [first, end_day)."""
        stmt = (
            select(Payment.currency, func.count(Payment.id), func.sum(Payment.amount_minor))
            .join(Contract, Contract.id == Payment.contract_id)
            .where(
                Payment.paid_on >= first,
                Payment.paid_on < end_day,
                Payment.voided_at.is_(None),
                _in_scope(Contract.owner_id, owners),
            )
            .group_by(Payment.currency)
            .order_by(Payment.currency)
        )
        return await self._rows(stmt)

    async def overdue(self, as_of: date, owners: Owners):
        """(currency, count, unpaid) of installments due before `as_of` and not fully paid
        by then (paid = allocations of payments not voided, paid before `as_of`)."""
        paid = (
            select(Allocation.installment_id, func.sum(Allocation.amount_minor).label("paid"))
            .join(Payment, Payment.id == Allocation.payment_id)
            .where(Payment.voided_at.is_(None), Payment.paid_on < as_of)
            .group_by(Allocation.installment_id)
            .subquery()
        )
        unpaid = Installment.amount_minor - func.coalesce(paid.c.paid, 0)
        stmt = (
            select(Contract.currency, func.count(Installment.id), func.sum(unpaid))
            .join(Contract, Contract.id == Installment.contract_id)
            .outerjoin(paid, paid.c.installment_id == Installment.id)
            .where(
                Installment.due_date < as_of,
                Installment.status != "void",
                unpaid > 0,
                _in_scope(Contract.owner_id, owners),
            )
            .group_by(Contract.currency)
            .order_by(Contract.currency)
        )
        return await self._rows(stmt)


class TransferRepository:
    """Streams for exports and look-ups for imports."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stream(self, what: str, owners: Owners) -> AsyncIterator[list[tuple]]:
        """Batches of export rows (server-side cursor; never the whole table in memory)."""
        stmt = EXPORT_QUERIES[what](owners).execution_options(yield_per=EXPORT_BATCH)
        result = await self.session.stream(stmt)
        async for batch in result.partitions(EXPORT_BATCH):
            yield [tuple(row) for row in batch]

    async def existing_contact_keys(self, phones: Iterable[str], emails: Iterable[str]) -> set[str]:
        """The phones and emails among the given ones that a live contact already has."""
        found: set[str] = set()
        for column, values in ((Contact.phone, sorted(set(phones))), (Contact.email, sorted(set(emails)))):
            for i in range(0, len(values), LOOKUP_CHUNK):
                chunk = values[i : i + LOOKUP_CHUNK]
                stmt = select(column).where(column.in_(chunk), Contact.deleted_at.is_(None))
                found.update((await self.session.execute(stmt)).scalars())
        return found

    async def insert_numbered(self, model, rows: list[dict]) -> list[int]:
        """Insert `rows` in ONE multi-row INSERT and return their ids in row order.

        Both databases number the rows of one INSERT in the order given (SQLite: max rowid + 1
        under the write lock; PostgreSQL: one sequence, rows processed in order), so the
        sorted ids line up with `rows`. Much faster than the ORM's row-at-a-time RETURNING."""
        ids = sorted((await self.session.execute(insert(model.__table__).values(rows).returning(model.id))).scalars())
        if len(ids) != len(rows):
            raise RuntimeError(f"inserted {len(ids)} {model.__tablename__} rows, expected {len(rows)}")
        return ids

    async def insert_many(self, model, rows: list[dict]) -> None:
        """Insert rows whose ids nobody needs back (batched executemany)."""
        if rows:
            await self.session.execute(insert(model.__table__), rows)

    async def audit_created(self, entity: str, ids: list[int], *, change_id: str, action: str,
                            actor_id: int | None, platform: str | None, message_ref: str | None, at: datetime) -> None:
        """The audit rows `uow.audit.created` would write, for many new rows at once."""
        await self.insert_many(AuditEntry, [
            {"change_id": change_id, "action": action, "actor_id": actor_id, "platform": platform,
             "message_ref": message_ref, "entity": entity, "entity_id": i, "field": CREATED,
             "old_value": None, "new_value": None, "at": at}
            for i in ids
        ])

    async def owner_directory(self) -> dict[str, int]:
        """Lower-cased display names and `platform:id` identities of active users -> user id."""
        names = await self.session.execute(
            select(User.display_name, User.id).where(User.active.is_(True))
        )
        directory = {name.strip().lower(): uid for name, uid in names}
        idents = await self.session.execute(
            select(Identity.platform, Identity.platform_user_id, Identity.user_id)
            .join(User, User.id == Identity.user_id)
            .where(User.active.is_(True))
        )
        for platform, pid, uid in idents:
            directory[f"{platform}:{pid}".lower()] = uid
        return directory


def _contacts(owners: Owners) -> Select:
    return (
        select(
            Contact.id, Contact.name, Contact.company, Contact.phone, Contact.email,
            Contact.source, Contact.tags, User.display_name, Contact.created_at,
        )
        .join(User, User.id == Contact.owner_id)
        .where(Contact.deleted_at.is_(None), _in_scope(Contact.owner_id, owners))
        .order_by(Contact.id)
    )


def _deals(owners: Owners) -> Select:
    return (
        select(
            Deal.id, Deal.title, Contact.name, Contact.company, Contact.phone, Contact.email,
            Deal.stage, Deal.value_minor, Deal.currency, Deal.source, User.display_name,
            Contact.tags, Deal.created_at, Deal.closed_at, Deal.lost_reason,
        )
        .join(Contact, Contact.id == Deal.contact_id)
        .join(User, User.id == Deal.owner_id)
        .where(Contact.deleted_at.is_(None), _in_scope(Deal.owner_id, owners))
        .order_by(Deal.id)
    )


def _interactions(owners: Owners) -> Select:
    return (
        select(
            Interaction.id, Interaction.occurred_at, Contact.name, Contact.phone, Interaction.kind,
            Interaction.summary, Interaction.outcome, Interaction.deal_id, User.display_name,
        )
        .join(Contact, Contact.id == Interaction.contact_id)
        .join(User, User.id == Interaction.logged_by_id)
        .where(
            Contact.deleted_at.is_(None),
            or_(_in_scope(Contact.owner_id, owners), _in_scope(Interaction.logged_by_id, owners)),
        )
        .order_by(Interaction.id)
    )


def _payments(owners: Owners) -> Select:
    return (
        select(
            Payment.id, Payment.paid_on, Contract.number, Payment.amount_minor, Payment.currency,
            Payment.method, Payment.reference, User.display_name, Payment.voided_at,
        )
        .join(Contract, Contract.id == Payment.contract_id)
        .join(User, User.id == Payment.recorded_by_id)
        .where(_in_scope(Contract.owner_id, owners))
        .order_by(Payment.id)
    )


EXPORT_QUERIES = {
    "contacts": _contacts,
    "deals": _deals,
    "interactions": _interactions,
    "payments": _payments,
}


def _as_date(value) -> date:
    """A bucket start from either dialect (SQLite: 'YYYY-MM-DD'; PostgreSQL: a timestamp)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


__all__ = ["ReportRepository", "TransferRepository", "FUNNEL", "Owners"]
