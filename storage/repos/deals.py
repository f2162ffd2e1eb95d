"""Deals, their stage history, and the pipeline aggregates."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from storage.enums import OPEN_STAGES
from storage.models import Contact, Contract, Deal, StageChange
from storage.repos.base import Repository
from storage.repos.contacts import like_patterns, matches_any, owned_by

STALLED_LIMIT = 200


@dataclass(frozen=True)
class StageTotal:
    """One row of the pipeline aggregate: deals of one stage in one currency."""

    stage: str
    currency: str
    count: int
    value_minor: int


class DealRepository(Repository[Deal]):
    model = Deal

    async def find(
        self,
        *,
        owner_ids: Collection[int] | None,
        open_only: bool = True,
        contact_id: int | None = None,
        stage: str | None = None,
        text: str | None = None,
        limit: int = 20,
    ) -> list[Deal]:
        """Deals in scope, most recently touched first. `text` narrows to deals whose title or
        contact name/company shares a word fragment with it (the caller ranks them)."""
        stmt = select(Deal)
        scope = owned_by(Deal.owner_id, owner_ids)
        if scope is not None:
            stmt = stmt.where(scope)
        if open_only:
            stmt = stmt.where(Deal.stage.in_([s.value for s in OPEN_STAGES]))
        if contact_id is not None:
            stmt = stmt.where(Deal.contact_id == contact_id)
        if stage is not None:
            stmt = stmt.where(Deal.stage == stage)
        if text:
            stmt = stmt.join(Contact, Contact.id == Deal.contact_id).where(
                matches_any((Deal.title, Contact.name, Contact.company), like_patterns(text))
            )
        stmt = stmt.order_by(Deal.last_touched_at.desc(), Deal.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def of_contact(self, contact_id: int) -> list[Deal]:
        stmt = select(Deal).where(Deal.contact_id == contact_id).order_by(Deal.id)
        return list((await self.session.execute(stmt)).scalars())

    async def contact_labels(self, contact_ids: Collection[int]) -> dict[int, str]:
        """Contact id -> "name (company)" for showing deals in lists."""
        if not contact_ids:
            return {}
        stmt = select(Contact.id, Contact.name, Contact.company).where(
            Contact.id.in_(sorted(contact_ids))
        )
        labels = {}
        for cid, name, company in await self.session.execute(stmt):
            labels[cid] = f"{name} ({company})" if name and company else (name or company or "")
        return labels

    async def stage_totals(self, *, owner_ids: Collection[int] | None) -> list[StageTotal]:
        """Count and value of open deals per (stage, currency), aggregated in SQL."""
        stmt = (
            select(Deal.stage, Deal.currency, func.count(Deal.id), func.sum(Deal.value_minor))
            .where(Deal.stage.in_([s.value for s in OPEN_STAGES]))
            .group_by(Deal.stage, Deal.currency)
        )
        scope = owned_by(Deal.owner_id, owner_ids)
        if scope is not None:
            stmt = stmt.where(scope)
        rows = await self.session.execute(stmt)
        return [StageTotal(s, c, int(n), int(v or 0)) for s, c, n, v in rows]

    async def untouched_since(
        self, cutoffs: Mapping[str, datetime], *, owner_ids: Collection[int] | None,
        limit: int = STALLED_LIMIT,
    ) -> list[Deal]:
        """Deals in each given stage last touched before that stage's cutoff, oldest first.
        One (stage, last_touched_at) range per stage: the ix_deals_stage_last_touched index."""
        if not cutoffs:
            return []
        stmt = select(Deal).where(
            or_(*(and_(Deal.stage == s, Deal.last_touched_at < t) for s, t in cutoffs.items()))
        )
        scope = owned_by(Deal.owner_id, owner_ids)
        if scope is not None:
            stmt = stmt.where(scope)
        stmt = stmt.order_by(Deal.last_touched_at, Deal.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def has_contract(self, deal_id: int) -> bool:
        stmt = select(Contract.id).where(Contract.deal_id == deal_id).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def stage_history(self, deal_id: int) -> list[StageChange]:
        stmt = select(StageChange).where(StageChange.deal_id == deal_id).order_by(StageChange.id)
        return list((await self.session.execute(stmt)).scalars())

    async def record_stage_change(
        self, deal: Deal, from_stage: str | None, to_stage: str, actor_id: int | None, at: datetime
    ) -> StageChange:
        return await self.add_and_flush(
            StageChange(deal_id=deal.id, from_stage=from_stage, to_stage=to_stage,
                        actor_id=actor_id, at=at)
        )
