"""Contracts, installments (invoices), payments, allocations and gap-free document numbers.

What a contract has been paid is never stored: it is the sum of the allocations of its
non-voided payments, computed here in SQL.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.enums import InstallmentStatus
from storage.models import (
    Allocation,
    Contact,
    Contract,
    Deal,
    DocumentCounter,
    Installment,
    Payment,
)
from storage.repos.base import Repository

UNPAID = (InstallmentStatus.OPEN.value, InstallmentStatus.PARTIAL.value)


@dataclass(frozen=True)
class InstallmentRow:
    """An installment with what non-voided payments put on it, and its contract's labels."""

    installment: Installment
    paid_minor: int
    currency: str
    contract_number: str
    owner_id: int
    contact_name: str


def document_number(series: str, year: int, number: int) -> str:
    """`INV-2026-0001`: the printed form of a document number."""
    return f"{series}-{year}-{number:04d}"


def split_number(text: str) -> tuple[str, int, int]:
    """`INV-2026-0001` -> ("INV", 2026, 1)."""
    series, year, number = text.rsplit("-", 2)
    return series, int(year), int(number)


def _paid_on_installment():
    """Correlated SQL: allocations of non-voided payments on the installment of the outer row."""
    return (
        select(func.coalesce(func.sum(Allocation.amount_minor), 0))
        .join(Payment, Payment.id == Allocation.payment_id)
        .where(Allocation.installment_id == Installment.id, Payment.voided_at.is_(None))
        .scalar_subquery()
    )


def _contact_label():
    return func.coalesce(Contact.name, Contact.company, "")


class ContractRepository(Repository[Contract]):
    model = Contract

    # --- numbering ---------------------------------------------------------------------------

    async def take_numbers(self, series: str, year: int, count: int) -> list[str]:
        """Reserve the next `count` numbers of a series. The counter row stays locked until the
        transaction ends (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
        writers), and a rollback gives the numbers back, so the series has no gaps."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(DocumentCounter)
            .values(series=series, year=year, last_number=0)
            .on_conflict_do_nothing(index_elements=["series", "year"])
        )
        counter = (
            await self.session.execute(
                select(DocumentCounter)
                .where(DocumentCounter.series == series, DocumentCounter.year == year)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        first = counter.last_number + 1
        counter.last_number += count
        await self.session.flush()
        return [document_number(series, year, n) for n in range(first, first + count)]

    async def peek_numbers(self, series: str, year: int, count: int) -> list[str]:
        """The numbers `take_numbers` would hand out now (they may shift if others go first)."""
        last = (
            await self.session.execute(
                select(DocumentCounter.last_number).where(
                    DocumentCounter.series == series, DocumentCounter.year == year
                )
            )
        ).scalar_one_or_none() or 0
        return [document_number(series, year, n) for n in range(last + 1, last + 1 + count)]

    async def give_back_numbers(self, series: str, year: int, numbers: Sequence[int]) -> bool:
        """Return numbers to the series if they are its latest ones (so no gap appears).
        Returns False, changing nothing, when later numbers were issued meanwhile."""
        if not numbers:
            return True
        result = await self.session.execute(
            update(DocumentCounter)
            .where(
                DocumentCounter.series == series,
                DocumentCounter.year == year,
                DocumentCounter.last_number == max(numbers),
            )
            .values(last_number=min(numbers) - 1)
        )
        return result.rowcount == 1

    # --- contracts ---------------------------------------------------------------------------

    async def for_deal(self, deal_id: int) -> Contract | None:
        stmt = select(Contract).where(Contract.deal_id == deal_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def labels(self, contract_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
        """contract id -> (deal title, contact name) in one query."""
        ids = list(contract_ids)
        if not ids:
            return {}
        stmt = (
            select(Contract.id, Deal.title, _contact_label())
            .join(Deal, Deal.id == Contract.deal_id)
            .join(Contact, Contact.id == Deal.contact_id)
            .where(Contract.id.in_(ids))
        )
        return {cid: (title, name) for cid, title, name in await self.session.execute(stmt)}

    async def search(
        self,
        owner_ids: frozenset[int] | None,
        *,
        open_only: bool,
        query: str | None,
        limit: int,
    ) -> list[Contract]:
        """Contracts of the given owners (None: all), newest first; `open_only` keeps those with
        an unpaid installment; `query` matches number, deal title, contact name or company."""
        stmt = (
            select(Contract)
            .join(Deal, Deal.id == Contract.deal_id)
            .join(Contact, Contact.id == Deal.contact_id)
            .order_by(Contract.id.desc())
            .limit(limit)
        )
        if owner_ids is not None:
            stmt = stmt.where(Contract.owner_id.in_(owner_ids))
        if open_only:
            stmt = stmt.where(
                exists().where(
                    Installment.contract_id == Contract.id, Installment.status.in_(UNPAID)
                )
            )
        if query:
            pattern = f"%{query.lower()}%"
            stmt = stmt.where(
                or_(
                    func.lower(Contract.number).like(pattern),
                    func.lower(Deal.title).like(pattern),
                    func.lower(Contact.name).like(pattern),
                    func.lower(Contact.company).like(pattern),
                )
            )
        return list((await self.session.execute(stmt)).scalars())

    async def delete_with_installments(self, contract: Contract) -> None:
        """Remove a contract that has no payments, and its installments."""
        await self.session.execute(
            delete(Installment).where(Installment.contract_id == contract.id)
        )
        await self.session.delete(contract)
        await self.session.flush()

    # --- installments ------------------------------------------------------------------------

    def _installment_rows(self) -> Select:
        return (
            select(
                Installment,
                _paid_on_installment(),
                Contract.currency,
                Contract.number,
                Contract.owner_id,
                _contact_label(),
            )
            .join(Contract, Contract.id == Installment.contract_id)
            .join(Deal, Deal.id == Contract.deal_id)
            .join(Contact, Contact.id == Deal.contact_id)
        )

    async def _rows(self, stmt: Select) -> list[InstallmentRow]:
        result = await self.session.execute(stmt)
        return [InstallmentRow(inst, int(paid), cur, num, owner, name) for inst, paid, cur, num, owner, name in result]

    async def installments_of(self, contract_ids: Iterable[int]) -> list[InstallmentRow]:
        """Installments of these contracts with their paid amounts, by contract then due date."""
        ids = list(contract_ids)
        if not ids:
            return []
        stmt = (
            self._installment_rows()
            .where(Installment.contract_id.in_(ids))
            .order_by(Installment.contract_id, Installment.due_date, Installment.seq)
        )
        return await self._rows(stmt)

    async def installments_by_status(
        self,
        statuses: Sequence[str],
        *,
        due_on_or_before: date | None = None,
        due_before: date | None = None,
        owner_ids: frozenset[int] | None = None,
        contract_id: int | None = None,
    ) -> list[InstallmentRow]:
        """Installments in `statuses` by due date (uses the (status, due_date) index)."""
        stmt = self._installment_rows().where(Installment.status.in_(list(statuses)))
        if due_on_or_before is not None:
            stmt = stmt.where(Installment.due_date <= due_on_or_before)
        if due_before is not None:
            stmt = stmt.where(Installment.due_date < due_before)
        if owner_ids is not None:
            stmt = stmt.where(Contract.owner_id.in_(owner_ids))
        if contract_id is not None:
            stmt = stmt.where(Installment.contract_id == contract_id)
        stmt = stmt.order_by(Installment.due_date, Installment.contract_id, Installment.seq)
        return await self._rows(stmt)

    async def installment(self, installment_id: int) -> Installment | None:
        return await self.session.get(Installment, installment_id)

    # --- payments ----------------------------------------------------------------------------

    async def payment(self, payment_id: int) -> Payment | None:
        return await self.session.get(Payment, payment_id)

    async def payment_count(self, contract_id: int) -> int:
        """All payments of a contract, voided ones included."""
        stmt = select(func.count(Payment.id)).where(Payment.contract_id == contract_id)
        return (await self.session.execute(stmt)).scalar_one()

    async def allocations_of(self, payment_id: int) -> list[Allocation]:
        stmt = select(Allocation).where(Allocation.payment_id == payment_id).order_by(Allocation.id)
        return list((await self.session.execute(stmt)).scalars())
