"""The notification outbox: enqueue once (by dedupe key), claim under a lease, mark sent/dead.

Claiming uses `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several senders share the queue
without waiting on each other; SQLite ignores it and serialises claimers with BEGIN IMMEDIATE.
Either way a claimed row carries `claimed_by` + `claimed_until` (a lease): a sender that dies
mid-burst leaves rows that another sender re-claims once the lease has run out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.enums import OutboxStatus
from storage.models import OutboxMessage
from storage.repos.base import Repository

MAX_ERROR = 500


class OutboxRepository(Repository[OutboxMessage]):
    model = OutboxMessage

    async def enqueue(
        self,
        *,
        dedupe_key: str,
        address: str,
        kind: str,
        payload: dict,
        not_before: datetime,
        now: datetime,
    ) -> bool:
        """Add a message unless one with `dedupe_key` exists. Returns whether it was added."""
        values = dict(
            dedupe_key=dedupe_key,
            address=address,
            kind=kind,
            payload=payload,
            status=OutboxStatus.PENDING.value,
            not_before=not_before,
            attempts=0,
            created_at=now,
        )
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(OutboxMessage)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        result = await self.session.execute(stmt)
        return result.rowcount == 1

    async def claim(
        self,
        worker_id: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        platforms: Sequence[str] | None = None,
    ) -> list[OutboxMessage]:
        """Take up to `limit` due rows (oldest first) that nobody holds a live lease on."""
        stmt = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING.value,
                OutboxMessage.not_before <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            )
            .order_by(OutboxMessage.not_before, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if platforms is not None:
            stmt = stmt.where(or_(*(OutboxMessage.address.startswith(f"{p}:") for p in platforms)))
        rows = list((await self.session.execute(stmt)).scalars())
        for row in rows:
            row.claimed_by = worker_id
            row.claimed_until = lease_until
        return rows

    async def mark_sent(
        self, id_: int, worker_id: str, *, now: datetime, message_ref: str | None
    ) -> bool:
        """Record a delivery; False if the lease was lost to another sender meanwhile."""
        return await self._update_claimed(
            id_,
            worker_id,
            status=OutboxStatus.SENT.value,
            sent_at=now,
            message_ref=message_ref,
            attempts=OutboxMessage.attempts + 1,
            claimed_until=None,
        )

    async def mark_dead(self, id_: int, worker_id: str, *, error: str) -> bool:
        """Give up on a row (unreachable address, or retried too often)."""
        return await self._update_claimed(
            id_,
            worker_id,
            status=OutboxStatus.DEAD.value,
            last_error=error[:MAX_ERROR],
            attempts=OutboxMessage.attempts + 1,
            claimed_until=None,
        )

    async def retry_at(
        self,
        id_: int,
        worker_id: str,
        *,
        not_before: datetime,
        error: str | None,
        count_attempt: bool = True,
    ) -> bool:
        """Release a claimed row to be tried again at `not_before`."""
        values: dict = dict(not_before=not_before, claimed_by=None, claimed_until=None)
        if count_attempt:
            values["attempts"] = OutboxMessage.attempts + 1
        if error is not None:
            values["last_error"] = error[:MAX_ERROR]
        return await self._update_claimed(id_, worker_id, **values)

    async def by_key(self, dedupe_key: str) -> OutboxMessage | None:
        stmt = select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def matching(self, key_prefix: str) -> list[OutboxMessage]:
        """Rows whose dedupe key starts with `key_prefix`, oldest first (reports and tests)."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.dedupe_key.startswith(key_prefix))
            .order_by(OutboxMessage.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def prune(self, before: datetime) -> int:
        """Forget delivered or dead rows created before `before` (pending ones always stay)."""
        stmt = delete(OutboxMessage).where(
            OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.DEAD)),
            OutboxMessage.created_at < before,
        )
        return (await self.session.execute(stmt)).rowcount

    async def counts_by_status(self) -> dict[str, int]:
        stmt = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        return {status: n for status, n in (await self.session.execute(stmt)).all()}

    async def _update_claimed(self, id_: int, worker_id: str, **values) -> bool:
        stmt = (
            update(OutboxMessage)
            .where(
                OutboxMessage.id == id_,
                OutboxMessage.claimed_by == worker_id,
                OutboxMessage.status == OutboxStatus.PENDING.value,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).rowcount == 1

    @property
    def _dialect(self) -> str:
        return self.session.bind.dialect.name
