"""Who changed what (history) and `undo`: a user reverses their own last change, within 10 minutes.

Undo works from the audit rows of that change: changed fields get their old values back, and
created rows are removed or neutralised (a task cancelled, an interaction deleted, a payment
voided, a lead's deal and contact deleted, a contract without payments deleted with its numbers
given back). It refuses, changing nothing, when someone else changed the same things since.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from handlers.access import acting_user, can_see_owner
from handlers.context import CRM, Actor
from handlers.contracts import refresh_statuses
from handlers.errors import Conflict, InvalidInput, NotFound
from storage.enums import TaskStatus
from storage.models import AuditEntry, Base, Contract, Installment, Interaction, Payment, Task, User
from storage.repos.audit import CREATED, DELETED, decode_value
from storage.repos.contracts import split_number
from storage.uow import UnitOfWork

UNDO_WINDOW = timedelta(minutes=10)
# Recomputed from allocations after an undo, never restored from the log.
DERIVED = {("installments", "status")}
# Only ever moves forward: restored only when nobody touched the record since.
FORWARD_ONLY = {"last_touched_at"}
# Bookkeeping fields that need no mention in the undo summary.
QUIET = {"last_touched_at", "stage_changed_at", "closed_at", "voided_by_id", "void_reason", "status"}

MODELS: dict[str, type[Base]] = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers}
ENTITY_NAMES = {
    "contact": "contacts", "deal": "deals", "task": "tasks", "interaction": "interactions",
    "contract": "contracts", "payment": "payments", "invoice": "installments",
    "installment": "installments", "user": "users",
}


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor_name: str | None
    platform: str | None
    action: str
    field: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class UndoResult:
    action: str
    description: str


# --- history --------------------------------------------------------------------------------


def _table(entity: str) -> str:
    name = (entity or "").strip().lower()
    table = ENTITY_NAMES.get(name, name)
    if table not in ENTITY_NAMES.values():
        raise InvalidInput(
            f"I keep history for contacts, deals, tasks, interactions, contracts, payments and "
            f"invoices, not “{name[:30]}”. Try: history deal 12.",
            field="entity",
        )
    return table


async def _owner_of(uow: UnitOfWork, table: str, entity_id: int) -> int | None:
    """The user whose scope decides who may see this record (None: it does not exist)."""
    obj = await uow.session.get(MODELS[table], entity_id)
    if obj is None:
        return None
    if table == "users":
        return obj.id
    if isinstance(obj, Interaction):
        contact = await uow.contacts.get(obj.contact_id)
        return contact.owner_id
    if isinstance(obj, (Payment, Installment)):
        contract = await uow.contracts.get(obj.contract_id)
        return contract.owner_id
    return obj.owner_id


def _display(text: str | None) -> str | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, str) else json.dumps(value)


async def history_of(crm: CRM, actor: Actor, entity: str, entity_id: int, limit: int = 30) -> list[AuditLine]:
    """The record's audit trail, newest first, if the actor may see the record."""
    table = _table(entity)
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        owner = await _owner_of(uow, table, entity_id)
        if owner is None or not await can_see_owner(uow, user, owner):
            raise NotFound(f"No {table.rstrip('s')} #{entity_id} that you can see.")
        rows = await uow.audit.trail_with_names(table, entity_id, max(1, min(limit, 200)))
        return [
            AuditLine(
                row.at, name, row.platform, row.action, row.field,
                _display(row.old_value), _display(row.new_value),
            )
            for row, name in rows
        ]


# --- undo -----------------------------------------------------------------------------------


def _label(action: str) -> str:
    return action.replace("_", " ")


def _overlaps(mine: AuditEntry, theirs: AuditEntry) -> bool:
    """Whether a later row touches what `mine` changed (a created row: anything about it)."""
    if (theirs.entity, theirs.field) in DERIVED or theirs.field in FORWARD_ONLY:
        return False
    return mine.field in (CREATED, DELETED) or theirs.field in (mine.field, CREATED, DELETED)


async def undo_last(crm: CRM, actor: Actor) -> UndoResult:
    """Reverse the actor's own last change if it is at most 10 minutes old."""
    async with crm.uow(actor, action="undo") as uow:
        user = await acting_user(uow, actor)
        rows = await uow.audit.latest_change(user.id)
        if not rows:
            raise Conflict("There is nothing of yours to undo yet.")
        action = rows[0].action
        if any(r.undone_at for r in rows):
            raise Conflict(f"Your last change ({_label(action)}) was already undone.")
        age = uow.now - rows[0].at
        if age > UNDO_WINDOW:
            minutes = int(age.total_seconds() // 60)
            raise Conflict(
                f"Your last change ({_label(action)}) was {minutes} minutes ago; undo only works "
                "for 10 minutes. Change it back by hand instead."
            )
        later = await uow.audit.touched_later(rows)
        for mine in rows:
            same = (mine.entity, mine.entity_id)
            clash = next((t for t in later if (t.entity, t.entity_id) == same and _overlaps(mine, t)), None)
            if clash is not None:
                who = await uow.users.get(clash.actor_id) if clash.actor_id else None
                raise Conflict(
                    f"{who.display_name if who else 'Someone'} changed {mine.entity.rstrip('s')} "
                    f"#{mine.entity_id} after you ({_label(clash.action)}), so I won't undo over their change."
                )

        undo = _Undo(uow, user, rows, later)
        await undo.restore_fields()
        await undo.reverse_creations()
        for contract_id in undo.contracts_to_refresh:
            await _refresh_and_check(uow, contract_id)
        await uow.audit.mark_undone(rows[0].change_id, uow.now)
        await uow.commit()
    for path in undo.files:  # only once the rows are gone for good
        await asyncio.to_thread(Path(path).unlink, missing_ok=True)
    parts = "; ".join(undo.parts) or "nothing left to change"
    return UndoResult(action, f"Undone ({_label(action)}): {parts}.")


async def _refresh_and_check(uow: UnitOfWork, contract_id: int) -> None:
    """After an undo re-counts or drops payments, refuse if an invoice would be over-paid."""
    await refresh_statuses(uow, contract_id)
    for row in await uow.contracts.installments_of([contract_id]):
        if row.paid_minor > row.installment.amount_minor:
            raise Conflict(
                f"Invoice {row.installment.invoice_number} was paid again since, so counting that "
                "payment again would over-pay it. Void one of the payments instead."
            )


class _Undo:
    """The reversal of one change; collects what it did for the summary."""

    def __init__(self, uow: UnitOfWork, user: User, rows: list[AuditEntry], later: list[AuditEntry]) -> None:
        self.uow, self.user, self.rows, self.later = uow, user, rows, later
        self.created = {(r.entity, r.entity_id) for r in rows if r.field == CREATED}
        self.contracts_to_refresh: set[int] = set()
        self.parts: list[str] = []
        self.files: list[str] = []

    async def restore_fields(self) -> None:
        """Give every changed field of a record that still exists its old value (newest first)."""
        for row in reversed(self.rows):
            if row.field == DELETED:
                raise Conflict(f"Your last change ({_label(row.action)}) removed a record; undo can't bring it back.")
            created_here = (row.entity, row.entity_id) in self.created
            if row.field == CREATED or created_here or (row.entity, row.field) in DERIVED:
                continue
            model = MODELS.get(row.entity)
            obj = await self.uow.session.get(model, row.entity_id) if model else None
            if obj is None or row.field not in model.__table__.columns:
                raise Conflict(f"Your last change ({_label(row.action)}) can't be undone here.")
            unchanged = getattr(obj, row.field) == decode_value(obj, row.field, row.new_value)
            if row.field in FORWARD_ONLY and (not unchanged or any(
                (t.entity, t.entity_id, t.field) == (row.entity, row.entity_id, row.field) for t in self.later
            )):
                continue  # touched again since: the later touch stands
            if not unchanged:
                what = row.entity.rstrip("s").capitalize()
                raise Conflict(f"{what} #{row.entity_id} changed since, so I won't undo.")
            old = decode_value(obj, row.field, row.old_value)
            self.uow.audit.set(obj, row.field, old)
            if row.entity == "deals" and row.field == "stage":
                new_stage = decode_value(obj, "stage", row.new_value)
                await self.uow.audit.drop_stage_changes(obj.id, row.at, to_stage=new_stage)
            if row.entity == "payments":
                self.contracts_to_refresh.add(obj.contract_id)
                if row.field == "voided_at":
                    self.parts.append(f"payment #{obj.id} counts again")
            if row.field not in QUIET:
                shown = _display(row.old_value)
                field = row.field.replace("_", " ")
                self.parts.append(f"{row.entity.rstrip('s')} #{row.entity_id} {field} back to {shown or 'empty'}")

    async def reverse_creations(self) -> None:
        """Remove or neutralise the rows the change created, newest first (children first)."""
        for row in reversed(self.rows):
            if row.field != CREATED or row.entity == "installments":
                continue  # installments go with their contract
            handler = getattr(self, f"_created_{row.entity}", None)
            model = MODELS.get(row.entity)
            obj = await self.uow.session.get(model, row.entity_id) if model else None
            if handler is None:
                raise Conflict(f"Your last change ({_label(row.action)}) can't be undone here.")
            if obj is not None:
                await handler(obj, row)

    async def _created_tasks(self, task: Task, row: AuditEntry) -> None:
        if ("deals", task.deal_id) in self.created or ("contacts", task.contact_id) in self.created:
            self.uow.audit.note("tasks", task.id, DELETED, None, None)
            await self.uow.audit.remove(task)  # it goes with the lead it was made for
            return
        self.uow.audit.set(task, "status", TaskStatus.CANCELLED.value)
        self.parts.append(f"task “{task.title}” cancelled")

    async def _created_interactions(self, interaction: Interaction, row: AuditEntry) -> None:
        if interaction.attachment_path:
            self.files.append(interaction.attachment_path)
        self.uow.audit.note("interactions", interaction.id, DELETED, None, None)
        await self.uow.audit.remove(interaction)
        self.parts.append(f"{interaction.kind} #{interaction.id} removed")

    async def _created_deals(self, deal, row: AuditEntry) -> None:
        await self.uow.audit.drop_stage_changes(deal.id, row.at)
        await self.uow.flush()
        if await self.uow.audit.references_to("deals", deal.id):
            raise Conflict(f"Deal “{deal.title}” has other records attached since, so I won't remove it.")
        self.uow.audit.note("deals", deal.id, DELETED, None, None)
        await self.uow.audit.remove(deal)
        self.parts.append(f"deal “{deal.title}” removed")

    async def _created_contacts(self, contact, row: AuditEntry) -> None:
        await self.uow.flush()
        label = contact.name or contact.company or f"#{contact.id}"
        if await self.uow.audit.references_to("contacts", contact.id):
            self.uow.audit.set(contact, "deleted_at", self.uow.now)  # others point at it: hide it
        else:
            self.uow.audit.note("contacts", contact.id, DELETED, None, None)
            await self.uow.audit.remove(contact)
        self.parts.append(f"contact {label} removed")

    async def _created_payments(self, payment: Payment, row: AuditEntry) -> None:
        self.uow.audit.set(payment, "voided_at", self.uow.now)
        self.uow.audit.set(payment, "voided_by_id", self.user.id)
        self.uow.audit.set(payment, "void_reason", "Undone")
        self.contracts_to_refresh.add(payment.contract_id)
        self.parts.append(f"payment #{payment.id} voided")

    async def _created_contracts(self, contract: Contract, row: AuditEntry) -> None:
        if await self.uow.contracts.payment_count(contract.id):
            raise Conflict(
                f"Contract {contract.number} already has payments, so I won't remove it. "
                "Void its payments first."
            )
        invoices = [r.installment.invoice_number for r in await self.uow.contracts.installments_of([contract.id])]
        for (series, year), numbers in _by_series([contract.number, *invoices]).items():
            if not await self.uow.contracts.give_back_numbers(series, year, numbers):
                raise Conflict(
                    f"Newer invoices were numbered after contract {contract.number}; removing it would "
                    "leave a gap in the invoice numbers, so I won't."
                )
        self.uow.audit.note("contracts", contract.id, DELETED, None, None)
        await self.uow.contracts.delete_with_installments(contract)
        self.parts.append(f"contract {contract.number} and its {len(invoices)} invoices removed")


def _by_series(numbers: list[str]) -> dict[tuple[str, int], list[int]]:
    grouped: dict[tuple[str, int], list[int]] = {}
    for text in numbers:
        series, year, n = split_number(text)
        grouped.setdefault((series, year), []).append(n)
    return grouped
