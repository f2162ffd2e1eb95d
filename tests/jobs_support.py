"""Rows, a collecting channel and a virtual monotonic clock for the jobs and outbox tests."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from conversations.messages import Address, Reply
from handlers.context import CRM, Actor
from storage.models import (
    Contact,
    Contract,
    Deal,
    Identity,
    Installment,
    OutboxMessage,
    Task,
    TeamChannel,
    User,
)


class VirtualTime:
    """A monotonic clock and a sleep that only moves it: pacing is checked, nobody waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class FakeChannel:
    """Collects sends as (address, reply, virtual time); `fail[address]` queues exceptions."""

    def __init__(self, platform: str = "telegram", vt: VirtualTime | None = None) -> None:
        self.platform = platform
        self.vt = vt
        self.sent: list[tuple[str, Reply, float]] = []
        self.fail: dict[str, deque] = {}

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, address: Address, reply: Reply) -> str:
        await asyncio.sleep(0)  # a real channel awaits the network: let other sends interleave
        queued = self.fail.get(str(address))
        if queued:
            raise queued.popleft()
        self.sent.append((str(address), reply, self.vt.now if self.vt else 0.0))
        return f"msg-{len(self.sent)}"

    async def edit(self, address: Address, message_ref: str, reply: Reply) -> None: ...

    def texts(self, address: str | None = None) -> list[str]:
        return [r.text.plain for a, r, _ in self.sent if address is None or a == address]


async def add_identity(crm: CRM, actor: Actor, platform: str, pid: str) -> str:
    async with crm.uow() as uow:
        uow.session.add(
            Identity(
                user_id=actor.user_id,
                platform=platform,
                platform_user_id=pid,
                dm_address=f"{platform}:{pid}",
                created_at=crm.now(),
            )
        )
        await uow.commit()
    return f"{platform}:{pid}"


async def set_user(crm: CRM, actor: Actor, **fields) -> None:
    async with crm.uow() as uow:
        user = await uow.session.get(User, actor.user_id)
        for name, value in fields.items():
            setattr(user, name, value)
        await uow.commit()


async def add_deal(
    crm: CRM,
    owner: Actor,
    *,
    title: str = "Villa fit-out",
    contact: str = "Layla Haddad",
    stage: str = "new",
    value_minor: int = 500_000,
    currency: str = "USD",
    source: str | None = "website",
    touched: datetime | None = None,
    created: datetime | None = None,
    closed: datetime | None = None,
) -> Deal:
    async with crm.uow() as uow:
        person = Contact(name=contact, owner_id=owner.user_id, tags=[], created_at=crm.now())
        uow.session.add(person)
        await uow.flush()
        deal = Deal(
            contact_id=person.id,
            title=title,
            value_minor=value_minor,
            currency=currency,
            stage=stage,
            owner_id=owner.user_id,
            source=source,
            created_at=created or crm.now(),
            stage_changed_at=crm.now(),
            last_touched_at=touched or crm.now(),
            closed_at=closed,
        )
        uow.session.add(deal)
        await uow.commit()
        return deal


async def add_task(
    crm: CRM,
    owner: Actor,
    due: datetime,
    *,
    title: str = "Call about the quote",
    deal: Deal | None = None,
    status: str = "open",
    snoozed_until: datetime | None = None,
) -> Task:
    async with crm.uow() as uow:
        task = Task(
            title=title,
            due_at=due,
            owner_id=owner.user_id,
            status=status,
            snoozed_until=snoozed_until,
            deal_id=deal.id if deal else None,
            contact_id=deal.contact_id if deal else None,
            created_at=crm.now(),
        )
        uow.session.add(task)
        await uow.commit()
        return task


async def add_installment(
    crm: CRM,
    deal: Deal,
    due: date,
    *,
    amount_minor: int = 100_000,
    number: str = "INV-2026-0001",
) -> Installment:
    """A one-installment contract on `deal` (which is marked won)."""
    async with crm.uow() as uow:
        row = await uow.session.get(Deal, deal.id)
        row.stage = "won"
        contract = Contract(
            deal_id=deal.id,
            number=number.replace("INV", "CTR"),
            signed_on=due - timedelta(days=30),
            total_minor=amount_minor,
            currency=deal.currency,
            owner_id=deal.owner_id,
            created_at=crm.now(),
        )
        uow.session.add(contract)
        await uow.flush()
        inst = Installment(
            contract_id=contract.id,
            seq=1,
            invoice_number=number,
            due_date=due,
            amount_minor=amount_minor,
            status="open",
        )
        uow.session.add(inst)
        await uow.commit()
        return inst


async def add_team_channel(
    crm: CRM,
    address: str = "telegram:-100200",
    *,
    manager: Actor | None = None,
    tz: str = "UTC",
    summary_time: time = time(9, 0),
    title: str = "Sales",
    **switches,
) -> TeamChannel:
    async with crm.uow() as uow:
        channel = TeamChannel(
            address=address,
            platform=address.split(":")[0],
            title=title,
            manager_id=manager.user_id if manager else None,
            timezone=tz,
            summary_time=summary_time,
            created_at=crm.now(),
            **switches,
        )
        uow.session.add(channel)
        await uow.commit()
        return channel


async def outbox_rows(crm: CRM, key_prefix: str = "") -> list[OutboxMessage]:
    async with crm.reader() as uow:
        stmt = select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith(key_prefix))
        rows = list((await uow.session.execute(stmt.order_by(OutboxMessage.id))).scalars())
        uow.session.expunge_all()  # keep them loaded: leaving a reader rolls back and expires
        return rows
