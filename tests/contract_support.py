"""Rows the contract, payment and undo tests start from, written directly through a unit of
work so these tests do not depend on the lead and deal use cases."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from handlers.context import CRM, Actor
from handlers.contracts import ContractView, win_deal_with_contract
from storage.models import (
    Allocation,
    AuditEntry,
    Contact,
    Contract,
    Deal,
    DocumentCounter,
    Installment,
    Payment,
    StageChange,
)

COUNTED = (Contract, Installment, Payment, Allocation, StageChange, AuditEntry, DocumentCounter)


async def new_deal(
    crm: CRM,
    owner: Actor,
    *,
    title: str = "Villa fit-out",
    value_minor: int = 1_200_000,
    currency: str = "USD",
    stage: str = "negotiation",
    contact_name: str = "Layla Haddad",
) -> int:
    """A contact and an open deal owned by `owner`; returns the deal id."""
    async with crm.uow() as uow:
        contact = Contact(name=contact_name, owner_id=owner.user_id, tags=[], created_at=crm.now())
        uow.session.add(contact)
        await uow.flush()
        deal = Deal(
            contact_id=contact.id,
            title=title,
            value_minor=value_minor,
            currency=currency,
            stage=stage,
            owner_id=owner.user_id,
            created_at=crm.now(),
            stage_changed_at=crm.now(),
            last_touched_at=crm.now(),
        )
        uow.session.add(deal)
        await uow.commit()
        return deal.id


async def new_contract(
    crm: CRM, owner: Actor, *, total_minor: int = 300_000, count: int = 3, first_due: date = date(2026, 12, 10), **terms
) -> ContractView:
    """A won deal with a monthly contract (default: 3 x $1,000.00 from 10 Dec 2026)."""
    deal_id = await new_deal(crm, owner)
    return await win_deal_with_contract(
        crm, owner, deal_id, total_minor=total_minor, count=count, frequency="monthly", first_due=first_due, **terms
    )


async def row_counts(crm: CRM) -> dict[str, int]:
    """How many rows each money-related table holds (to show a refusal wrote nothing)."""
    async with crm.reader() as uow:
        return {
            model.__tablename__: (await uow.session.execute(select(func.count()).select_from(model))).scalar_one()
            for model in COUNTED
        }


async def installment_statuses(crm: CRM, contract_id: int) -> list[str]:
    async with crm.reader() as uow:
        rows = await uow.session.execute(
            select(Installment.status).where(Installment.contract_id == contract_id).order_by(Installment.seq)
        )
        return list(rows.scalars())


def collect_events(crm: CRM) -> list[tuple[str, dict]]:
    """Record every committed domain event as (name, data)."""
    seen: list[tuple[str, dict]] = []

    async def hook(_uow, events):
        seen.extend((e.name, e.data) for e in events)

    crm.hooks.append(hook)
    return seen
