"""The audit log: one row per changed field, grouped by the unit of work's change id."""
from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, inspect, or_, select, update

from storage.models import AuditEntry, Base, StageChange, User
from storage.repos.base import Repository

if TYPE_CHECKING:
    from storage.uow import UnitOfWork

CREATED = "*created"
DELETED = "*deleted"
UNDO = "undo"


def encode_value(value: Any) -> str | None:
    """JSON text for an audited value; dates and times as ISO strings."""
    if value is None:
        return None
    if isinstance(value, (datetime, date, time)):
        return json.dumps(value.isoformat())
    return json.dumps(value, default=str)


def decode_value(obj: Base, field: str, text: str | None) -> Any:
    """The inverse of `encode_value`, using the column's Python type."""
    if text is None:
        return None
    raw = json.loads(text)
    column_type = inspect(type(obj)).columns[field].type
    # a TypeDecorator (UTCDateTime) reports its Python type through the type it wraps
    python_type = getattr(column_type, "impl_instance", column_type).python_type
    if python_type is datetime:
        return datetime.fromisoformat(raw)
    if python_type is date:
        return date.fromisoformat(raw)
    if python_type is time:
        return time.fromisoformat(raw)
    return raw


class AuditRepository(Repository[AuditEntry]):
    model = AuditEntry

    def __init__(self, session, uow: "UnitOfWork") -> None:
        super().__init__(session)
        self._uow = uow

    def _row(self, entity: str, entity_id: int, field: str, old: str | None, new: str | None):
        src = self._uow.source
        from storage.models import AuditEntry as Row

        self.session.add(
            Row(
                change_id=self._uow.change_id,
                action=self._uow.action or "change",
                actor_id=src.actor_id,
                platform=src.platform,
                message_ref=src.message_ref,
                entity=entity,
                entity_id=entity_id,
                field=field,
                old_value=old,
                new_value=new,
                at=self._uow.now,
            )
        )

    async def created(self, obj: Base) -> None:
        """Record that `obj` was created by this change (flushes to get its id)."""
        await self.session.flush()
        self._row(obj.__tablename__, obj.id, CREATED, None, None)

    def set(self, obj: Base, field: str, new: Any) -> bool:
        """Set `obj.field = new` and audit it if it changed. Returns whether it changed."""
        old = getattr(obj, field)
        if old == new:
            return False
        setattr(obj, field, new)
        self._row(obj.__tablename__, obj.id, field, encode_value(old), encode_value(new))
        return True

    def note(self, entity: str, entity_id: int, field: str, old: Any, new: Any) -> None:
        """Audit a change that is not a plain column update (e.g. a payment voided)."""
        self._row(entity, entity_id, field, encode_value(old), encode_value(new))

    async def last_change_of(self, actor_id: int) -> list[AuditEntry]:
        """Rows of the actor's most recent change that has not been undone."""
        latest = await self.session.execute(
            select(AuditEntry.change_id)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.undone_at.is_(None))
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        change_id = latest.scalar_one_or_none()
        if change_id is None:
            return []
        rows = await self.session.execute(
            select(AuditEntry).where(AuditEntry.change_id == change_id).order_by(AuditEntry.id)
        )
        return list(rows.scalars())

    async def trail(self, entity: str, entity_id: int, limit: int = 50) -> list[AuditEntry]:
        rows = await self.session.execute(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        return list(rows.scalars())

    # --- undo and history ------------------------------------------------------------------

    async def latest_change(self, actor_id: int) -> list[AuditEntry]:
        """Every row of the actor's most recent change (undone or not), ignoring undos.
        The rows stay locked (PostgreSQL), so two undos at once cannot both reverse it."""
        latest = await self.session.execute(
            select(AuditEntry.change_id)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.action != UNDO)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        change_id = latest.scalar_one_or_none()
        if change_id is None:
            return []
        rows = await self.session.execute(
            select(AuditEntry)
            .where(AuditEntry.change_id == change_id)
            .order_by(AuditEntry.id)
            .with_for_update()
        )
        return list(rows.scalars())

    async def touched_later(self, rows: list[AuditEntry]) -> list[AuditEntry]:
        """Rows of later changes, not undone, about any entity that `rows` touched."""
        if not rows:
            return []
        entities = {(r.entity, r.entity_id) for r in rows}
        stmt = (
            select(AuditEntry)
            .where(
                AuditEntry.id > rows[0].id,
                AuditEntry.change_id != rows[0].change_id,
                AuditEntry.undone_at.is_(None),
                or_(*(and_(AuditEntry.entity == e, AuditEntry.entity_id == i) for e, i in entities)),
            )
            .order_by(AuditEntry.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_undone(self, change_id: str, at: datetime) -> None:
        await self.session.execute(
            update(AuditEntry).where(AuditEntry.change_id == change_id).values(undone_at=at)
        )

    async def trail_with_names(
        self, entity: str, entity_id: int, limit: int
    ) -> list[tuple[AuditEntry, str | None]]:
        """The entity's rows, newest first, each with the acting user's display name."""
        stmt = (
            select(AuditEntry, User.display_name)
            .outerjoin(User, User.id == AuditEntry.actor_id)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
        return [(row, name) for row, name in await self.session.execute(stmt)]

    async def references_to(self, table: str, id_: int) -> int:
        """How many rows anywhere point at `table`.`id_` through a foreign key."""
        total = 0
        for other in Base.metadata.sorted_tables:
            for fk in other.foreign_keys:
                if fk.column.table.name == table:
                    stmt = select(func.count()).select_from(other).where(fk.parent == id_)
                    total += (await self.session.execute(stmt)).scalar_one()
        return total

    async def remove(self, obj: Base) -> None:
        await self.session.delete(obj)
        await self.session.flush()

    async def drop_stage_changes(self, deal_id: int, at: datetime, to_stage: str | None = None) -> None:
        """Forget the stage history rows a change wrote for a deal (they share its timestamp)."""
        stmt = delete(StageChange).where(StageChange.deal_id == deal_id, StageChange.at == at)
        if to_stage is not None:
            stmt = stmt.where(StageChange.to_stage == to_stage)
        await self.session.execute(stmt)
