"""Contracts and payments: a won deal becomes a contract whose schedule is a list of invoices;
payments go to the oldest open invoices first; balances are always derived from the rows.

Document numbers (CTR-2026-0001, INV-2026-0001) run per calendar year of the day they are
issued, in the acting rep's time zone, with no gaps.
"""
from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_name

from handlers.access import acting_user, can_see_owner, visible
from handlers.context import CRM, Actor
from handlers.errors import Conflict, InvalidInput, NotFound, PaymentExceedsBalance
from handlers.values import clean_text, format_money, require_text
from storage.enums import Frequency, InstallmentStatus, Stage
from storage.models import Allocation, Contract, Deal, Installment, Payment, User
from storage.repos.base import Repository
from storage.repos.contracts import UNPAID, InstallmentRow
from storage.uow import UnitOfWork

MAX_INSTALLMENTS = 120
MAX_EVERY_DAYS = 366
MAX_MINOR = 10**15  # far beyond any real contract, far below BigInteger
DATE_EXAMPLE = "2027-01-31"


# --- schedule planning (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class PlannedInstallment:
    seq: int  # 0 is the down payment
    due_date: date
    amount_minor: int


def plan_schedule(
    total_minor: int,
    *,
    count: int | None = None,
    frequency: Frequency | str,
    first_due: date | None = None,
    down_payment_minor: int = 0,
    down_payment_due: date | None = None,
    every_days: int | None = None,
    dates: Sequence[date] | None = None,
) -> list[PlannedInstallment]:
    """Split `total_minor` into a down payment (seq 0, if any) and `count` installments.

    Equal parts in integer minor units, the remainder on the LAST installment. Monthly keeps the
    day of month, clamped to the month's end (Jan 31 -> Feb 28 -> Mar 31); weekly adds 7 days;
    every_n_days adds `every_days`; explicit takes `dates` (strictly increasing).
    """
    freq = _frequency(frequency)
    if isinstance(total_minor, bool) or not isinstance(total_minor, int) or total_minor <= 0:
        raise InvalidInput("The total must be more than zero, for example 12000.", field="total")
    if total_minor > MAX_MINOR:
        raise InvalidInput("That total is too large to be real. Check the digits.", field="total")
    if not isinstance(down_payment_minor, int) or not 0 <= down_payment_minor < total_minor:
        raise InvalidInput(
            "The down payment must be 0 or more and less than the total, for example 2000 of 12000.",
            field="down_payment",
        )
    if freq is Frequency.EXPLICIT:
        due_dates = _explicit_dates(dates, count)
    else:
        due_dates = _regular_dates(freq, first_due, count, every_days)

    rest = total_minor - down_payment_minor
    if rest < len(due_dates):
        raise InvalidInput(
            f"What is left after the down payment is too small for {len(due_dates)} installments. "
            "Use fewer installments, for example 1.",
            field="count",
        )
    part = rest // len(due_dates)
    amounts = [part] * (len(due_dates) - 1) + [rest - part * (len(due_dates) - 1)]

    plan: list[PlannedInstallment] = []
    if down_payment_minor > 0:
        down_due = down_payment_due or first_due or due_dates[0]
        if down_due > due_dates[0]:
            raise InvalidInput(
                f"The down payment must be due on or before the first installment ({due_dates[0]}).",
                field="down_payment",
            )
        plan.append(PlannedInstallment(0, down_due, down_payment_minor))
    plan.extend(
        PlannedInstallment(seq, due, amount)
        for seq, (due, amount) in enumerate(zip(due_dates, amounts), start=1)
    )
    return plan


def _frequency(value: Frequency | str) -> Frequency:
    try:
        return Frequency(str(value).strip().lower())
    except ValueError:
        names = ", ".join(f.value for f in Frequency)
        raise InvalidInput(
            f"“{clean_text(str(value), 30)}” is not a schedule. Pick one of: {names}.", field="frequency"
        )


def _check_count(count: int | None) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_INSTALLMENTS:
        raise InvalidInput(
            f"Pick between 1 and {MAX_INSTALLMENTS} installments, for example 12.", field="count"
        )
    return count


def add_months(start: date, months: int) -> date:
    """`start` moved by whole months, the day clamped to the target month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _regular_dates(freq: Frequency, first_due: date | None, count: int | None, every_days: int | None) -> list[date]:
    n = _check_count(count)
    if not isinstance(first_due, date):
        raise InvalidInput(f"When is the first installment due? For example {DATE_EXAMPLE}.", field="first_due")
    if freq is Frequency.EVERY_N_DAYS:
        if isinstance(every_days, bool) or not isinstance(every_days, int) or not 1 <= every_days <= MAX_EVERY_DAYS:
            raise InvalidInput(
                f"Every how many days? A whole number from 1 to {MAX_EVERY_DAYS}, for example 14.",
                field="every_days",
            )
        step = timedelta(days=every_days)
    try:
        if freq is Frequency.MONTHLY:
            return [add_months(first_due, i) for i in range(n)]
        if freq is Frequency.WEEKLY:
            return [first_due + timedelta(weeks=i) for i in range(n)]
        return [first_due + step * i for i in range(n)]
    except (OverflowError, ValueError):
        raise InvalidInput(f"That first due date is too far away. Try {DATE_EXAMPLE}.", field="first_due")


def _explicit_dates(dates: Sequence[date] | None, count: int | None) -> list[date]:
    chosen = list(dates or [])
    if not chosen or not all(isinstance(d, date) for d in chosen):
        raise InvalidInput(f"List the due dates, for example {DATE_EXAMPLE}, 2027-02-28.", field="dates")
    _check_count(len(chosen))
    if count is not None and count != len(chosen):
        raise InvalidInput(
            f"You gave {len(chosen)} dates but asked for {count} installments. Give one date per installment.",
            field="count",
        )
    if any(later <= earlier for earlier, later in zip(chosen, chosen[1:])):
        raise InvalidInput(
            f"Due dates must go forward in time, each after the one before, for example {DATE_EXAMPLE}, 2027-02-28.",
            field="dates",
        )
    return chosen


# --- views ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceView:
    """One installment as an invoice: what was paid on it and its effective status (overdue when
    unpaid past its due date in the viewer's today)."""

    installment: Installment
    paid_minor: int
    outstanding_minor: int
    status: str
    currency: str = ""
    contract_number: str = ""
    owner_id: int = 0
    contact_name: str = ""

    @property
    def invoice_number(self) -> str:
        return self.installment.invoice_number


@dataclass(frozen=True)
class ContractView:
    contract: Contract
    deal_title: str
    contact_name: str
    owner_id: int
    installments: list[InvoiceView]
    paid_minor: int
    balance_minor: int
    overdue_minor: int
    next_due: InvoiceView | None


@dataclass(frozen=True)
class ContractPreview:
    deal: Deal
    contact_name: str
    total_minor: int
    currency: str
    installments: list[PlannedInstallment]
    invoice_numbers: list[str]  # next numbers of the series now; others invoicing first shift them
    contract_number: str = ""
    signed_on: date | None = None


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment
    allocations: list[tuple[str, int]]  # (invoice number, amount in minor units)
    balance_minor: int
    contract: ContractView


def effective_status(installment: Installment, paid_minor: int, today: date) -> str:
    if installment.status == InstallmentStatus.VOID:
        return InstallmentStatus.VOID.value
    if paid_minor >= installment.amount_minor:
        return InstallmentStatus.PAID.value
    if installment.due_date < today:
        return InstallmentStatus.OVERDUE.value
    return (InstallmentStatus.PARTIAL if paid_minor else InstallmentStatus.OPEN).value


def _invoice(row: InstallmentRow, today: date) -> InvoiceView:
    inst = row.installment
    outstanding = 0 if inst.status == InstallmentStatus.VOID else max(inst.amount_minor - row.paid_minor, 0)
    return InvoiceView(
        installment=inst,
        paid_minor=row.paid_minor,
        outstanding_minor=outstanding,
        status=effective_status(inst, row.paid_minor, today),
        currency=row.currency,
        contract_number=row.contract_number,
        owner_id=row.owner_id,
        contact_name=row.contact_name,
    )


async def _views(uow: UnitOfWork, contracts: Sequence[Contract], today: date) -> list[ContractView]:
    """Views of several contracts from two queries (installments with paid sums, and labels)."""
    ids = [c.id for c in contracts]
    by_contract: dict[int, list[InvoiceView]] = {cid: [] for cid in ids}
    for row in await uow.contracts.installments_of(ids):
        by_contract[row.installment.contract_id].append(_invoice(row, today))
    labels = await uow.contracts.labels(ids)
    views = []
    for contract in contracts:
        invoices = by_contract[contract.id]
        unpaid = [i for i in invoices if i.outstanding_minor > 0]
        views.append(
            ContractView(
                contract=contract,
                deal_title=labels[contract.id][0],
                contact_name=labels[contract.id][1] or f"Contact of deal #{contract.deal_id}",
                owner_id=contract.owner_id,
                installments=invoices,
                paid_minor=sum(i.paid_minor for i in invoices),
                balance_minor=sum(i.outstanding_minor for i in invoices),
                overdue_minor=sum(i.outstanding_minor for i in unpaid if i.status == InstallmentStatus.OVERDUE),
                next_due=unpaid[0] if unpaid else None,
            )
        )
    return views


async def _view(uow: UnitOfWork, contract: Contract, today: date) -> ContractView:
    return (await _views(uow, [contract], today))[0]


def today_for(crm: CRM, user: User) -> date:
    """Today's date where `user` is."""
    return crm.now().astimezone(ZoneInfo(user.timezone)).date()


async def _visible_for_update(uow: UnitOfWork, repo: Repository, id_: int, user: User, what: str):
    """Like `access.visible`, but locks the row (PostgreSQL) so concurrent changes queue."""
    obj = await repo.get_for_update(id_)
    if obj is None or not await can_see_owner(uow, user, obj.owner_id):
        raise NotFound(f"No {what} #{id_} that you can see.")
    return obj


# --- winning a deal with a contract --------------------------------------------------------


@dataclass(frozen=True)
class _Terms:
    total_minor: int
    currency: str
    down_payment_minor: int
    signed_on: date
    plan: list[PlannedInstallment]
    notes: str | None


def _currency(value: str | None, default: str) -> str:
    code = (value or default).strip().upper()
    if len(code) != 3 or get_currency_name(code) == code:
        raise InvalidInput(f"“{clean_text(value, 10)}” is not a currency code. Try USD or AED.", field="currency")
    return code


@dataclass(frozen=True)
class ContractTerms:
    """What a won deal's contract is made of, as `preview_contract` and
    `win_deal_with_contract` take it (keywords; an unknown one is a TypeError)."""

    frequency: Frequency | str
    count: int | None = None
    first_due: date | None = None
    total_minor: int | None = None  # None: the deal's value
    currency: str | None = None  # None: the deal's currency
    down_payment_minor: int = 0
    down_payment_due: date | None = None
    every_days: int | None = None
    dates: Sequence[date] | None = None
    signed_on: date | None = None  # None: today in the actor's zone
    notes: str | None = None


async def _terms(uow: UnitOfWork, crm: CRM, user: User, deal: Deal, args: ContractTerms) -> _Terms:
    """Check the deal can be won with a contract and validate the terms; writes nothing."""
    if deal.stage == Stage.LOST:
        raise Conflict(f"Deal #{deal.id} “{deal.title}” is lost. Reopen it before signing a contract.")
    existing = await uow.contracts.for_deal(deal.id)
    if existing is not None:
        raise Conflict(f"Deal #{deal.id} already has contract {existing.number}.")
    today = today_for(crm, user)
    signed_on = args.signed_on or today
    if signed_on > today:
        raise InvalidInput(f"The signing date can't be in the future. Today is {today}.", field="signed_on")
    total = deal.value_minor if args.total_minor is None else args.total_minor
    down = args.down_payment_minor or 0
    plan = plan_schedule(
        total,
        count=args.count,
        frequency=args.frequency,
        first_due=args.first_due,
        down_payment_minor=down,
        down_payment_due=args.down_payment_due,
        every_days=args.every_days,
        dates=args.dates,
    )
    notes = clean_text(args.notes) or None
    return _Terms(total, _currency(args.currency, deal.currency), down, signed_on, plan, notes)


async def preview_contract(
    crm: CRM,
    actor: Actor,
    deal_id: int,
    **terms,
) -> ContractPreview:
    """What `win_deal_with_contract` would create, without writing anything. `terms` are the
    fields of `ContractTerms`."""
    args = ContractTerms(**terms)
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        terms = await _terms(uow, crm, user, deal, args)
        year = today_for(crm, user).year
        contact = await uow.contacts.get(deal.contact_id)
        preview = ContractPreview(
            deal=deal,
            contact_name=(contact.name or contact.company or "") if contact else "",
            total_minor=terms.total_minor,
            currency=terms.currency,
            installments=terms.plan,
            invoice_numbers=await uow.contracts.peek_numbers("INV", year, len(terms.plan)),
            contract_number=(await uow.contracts.peek_numbers("CTR", year, 1))[0],
            signed_on=terms.signed_on,
        )
        return preview


async def win_deal_with_contract(
    crm: CRM,
    actor: Actor,
    deal_id: int,
    **terms,
) -> ContractView:
    """Mark the deal won and create its contract and invoices, all in one transaction.
    `terms` are the fields of `ContractTerms`."""
    args = ContractTerms(**terms)
    async with crm.uow(actor, action="win_deal_with_contract") as uow:
        user = await acting_user(uow, actor)
        deal = await _visible_for_update(uow, uow.deals, deal_id, user, "deal")
        terms = await _terms(uow, crm, user, deal, args)
        today = today_for(crm, user)

        if deal.stage != Stage.WON:
            await _mark_won(uow, deal, user)
        contract = Contract(
            deal_id=deal.id,
            number=(await uow.contracts.take_numbers("CTR", today.year, 1))[0],
            signed_on=terms.signed_on,
            total_minor=terms.total_minor,
            currency=terms.currency,
            down_payment_minor=terms.down_payment_minor,
            notes=terms.notes,
            owner_id=deal.owner_id,
            created_at=uow.now,
        )
        uow.contracts.add(contract)
        await uow.audit.created(contract)
        numbers = await uow.contracts.take_numbers("INV", today.year, len(terms.plan))
        for planned, number in zip(terms.plan, numbers):
            installment = Installment(
                contract_id=contract.id,
                seq=planned.seq,
                invoice_number=number,
                due_date=planned.due_date,
                amount_minor=planned.amount_minor,
                status=InstallmentStatus.OPEN.value,
            )
            uow.session.add(installment)
            await uow.audit.created(installment)
        uow.emit("contract_created", contract_id=contract.id)
        view = await _view(uow, contract, today)
        await uow.commit()
        return view


async def _mark_won(uow: UnitOfWork, deal: Deal, user: User) -> None:
    from_stage = deal.stage
    uow.audit.set(deal, "stage", Stage.WON.value)
    uow.audit.set(deal, "stage_changed_at", uow.now)
    uow.audit.set(deal, "closed_at", uow.now)
    uow.audit.set(deal, "last_touched_at", max(deal.last_touched_at, uow.now))
    await uow.deals.record_stage_change(deal, from_stage, Stage.WON.value, user.id, uow.now)
    uow.emit("deal_moved", deal_id=deal.id, from_stage=from_stage, to_stage=Stage.WON.value)
    uow.emit("deal_won", deal_id=deal.id)


# --- payments -------------------------------------------------------------------------------


def allocate_oldest_first(amount_minor: int, outstanding: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spread `amount_minor` over (key, outstanding) pairs in the given order, never more than
    each one owes. Returns (key, amount) for each touched pair; the caller checks the amount
    fits the total outstanding."""
    left, parts = amount_minor, []
    for key, owed in outstanding:
        if left == 0:
            break
        take = min(left, owed)
        if take > 0:
            parts.append((key, take))
            left -= take
    return parts


async def record_payment(
    crm: CRM,
    actor: Actor,
    *,
    contract_id: int,
    amount_minor: int,
    currency: str | None = None,
    paid_on: date | None = None,
    method: str | None = None,
    reference: str | None = None,
    installment_id: int | None = None,
) -> PaymentResult:
    """Record a payment on a contract, allocated to the oldest unpaid invoices first.

    With `installment_id` the whole payment goes to that invoice only, and more than it still
    owes is refused (pay the rest without choosing an invoice). A payment larger than what is
    outstanding is refused, never kept as credit.
    """
    async with crm.uow(actor, action="record_payment") as uow:
        user = await acting_user(uow, actor)
        contract = await _visible_for_update(uow, uow.contracts, contract_id, user, "contract")
        today = today_for(crm, user)

        def money(minor: int) -> str:
            return format_money(minor, contract.currency, user.language)

        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
            raise InvalidInput(f"The amount must be more than zero, for example {money(50000)}.", field="amount")
        if _currency(currency, contract.currency) != contract.currency:
            raise InvalidInput(
                f"Contract {contract.number} is in {contract.currency}. Record the payment in "
                f"{contract.currency}, for example {money(50000)}.",
                field="currency",
            )
        paid_on = paid_on or today
        if paid_on > today:
            raise InvalidInput(f"The payment date can't be in the future. Today is {today}.", field="paid_on")

        rows = await uow.contracts.installments_of([contract.id])
        open_rows = [
            (r.installment, r.installment.amount_minor - r.paid_minor)
            for r in rows
            if r.installment.status != InstallmentStatus.VOID and r.paid_minor < r.installment.amount_minor
        ]
        if installment_id is not None:
            open_rows = _chosen(rows, installment_id, contract, amount_minor, money)
        outstanding = sum(owed for _, owed in open_rows)
        if outstanding == 0:
            raise PaymentExceedsBalance(
                f"Contract {contract.number} is fully paid; nothing is outstanding.", field="amount"
            )
        if amount_minor > outstanding:
            raise PaymentExceedsBalance(
                f"That's more than what is left: contract {contract.number} has {money(outstanding)} "
                f"outstanding. Record {money(outstanding)} or less.",
                field="amount",
            )

        payment = Payment(
            contract_id=contract.id,
            amount_minor=amount_minor,
            currency=contract.currency,
            paid_on=paid_on,
            method=clean_text(method, 32) or None,
            reference=clean_text(reference, 120) or None,
            recorded_by_id=user.id,
            created_at=uow.now,
        )
        uow.session.add(payment)
        await uow.audit.created(payment)
        by_id = {inst.id: inst for inst, _ in open_rows}
        parts = allocate_oldest_first(amount_minor, [(inst.id, owed) for inst, owed in open_rows])
        for inst_id, part in parts:
            uow.session.add(Allocation(payment_id=payment.id, installment_id=inst_id, amount_minor=part))
        await refresh_statuses(uow, contract.id)
        uow.emit("payment_recorded", payment_id=payment.id, contract_id=contract.id)
        view = await _view(uow, contract, today)
        await uow.commit()
        return PaymentResult(
            payment=payment,
            allocations=[(by_id[i].invoice_number, part) for i, part in parts],
            balance_minor=view.balance_minor,
            contract=view,
        )


def _chosen(
    rows: list[InstallmentRow], installment_id: int, contract: Contract, amount: int, money
) -> list[tuple[Installment, int]]:
    """The single invoice a payment was aimed at, refusing more than it owes."""
    row = next((r for r in rows if r.installment.id == installment_id), None)
    if row is None:
        raise NotFound(f"Contract {contract.number} has no invoice #{installment_id}.", field="installment")
    inst = row.installment
    if inst.status == InstallmentStatus.VOID:
        raise Conflict(f"Invoice {inst.invoice_number} is void; pick another invoice.")
    owed = inst.amount_minor - row.paid_minor
    if owed <= 0:
        raise PaymentExceedsBalance(
            f"Invoice {inst.invoice_number} is already paid. Pick another invoice.", field="installment"
        )
    if amount > owed:
        raise PaymentExceedsBalance(
            f"Invoice {inst.invoice_number} has only {money(owed)} left to pay. Record {money(owed)} "
            "or less, or record the payment without choosing an invoice.",
            field="amount",
        )
    return [(inst, owed)]


async def refresh_statuses(uow: UnitOfWork, contract_id: int) -> None:
    """Bring each installment's stored status (open/partially_paid/paid) in line with its
    allocations, auditing what changes. The stored status only feeds the due-date index."""
    await uow.flush()
    for row in await uow.contracts.installments_of([contract_id]):
        inst = row.installment
        if inst.status == InstallmentStatus.VOID:
            continue
        if row.paid_minor >= inst.amount_minor:
            status = InstallmentStatus.PAID
        else:
            status = InstallmentStatus.PARTIAL if row.paid_minor else InstallmentStatus.OPEN
        uow.audit.set(inst, "status", status.value)


async def void_payment(crm: CRM, actor: Actor, payment_id: int, *, reason: str) -> ContractView:
    """Void a payment: it stays on record, its allocations stop counting, invoices reopen."""
    async with crm.uow(actor, action="void_payment") as uow:
        user = await acting_user(uow, actor)
        reason = require_text(reason, "reason for voiding", 500, field="reason")
        payment = await uow.contracts.payment(payment_id)
        if payment is None:
            raise NotFound(f"No payment #{payment_id} that you can see.")
        contract = await _visible_for_update(uow, uow.contracts, payment.contract_id, user, "contract")
        if payment.voided_at is not None:
            raise Conflict(f"Payment #{payment.id} was already voided ({payment.void_reason}).")
        uow.audit.set(payment, "voided_at", uow.now)
        uow.audit.set(payment, "voided_by_id", user.id)
        uow.audit.set(payment, "void_reason", reason)
        await refresh_statuses(uow, contract.id)
        uow.emit("payment_voided", payment_id=payment.id, contract_id=contract.id)
        view = await _view(uow, contract, today_for(crm, user))
        await uow.commit()
        return view


# --- reading --------------------------------------------------------------------------------


async def contract_view(crm: CRM, actor: Actor, contract_id: int) -> ContractView:
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        contract = await visible(uow, uow.contracts, contract_id, user, "contract")
        return await _view(uow, contract, today_for(crm, user))


async def contracts_for_deal(crm: CRM, actor: Actor, deal_id: int) -> list[ContractView]:
    """The deal's contract as a one-item list (empty when the deal has none yet)."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        deal = await visible(uow, uow.deals, deal_id, user, "deal")
        contract = await uow.contracts.for_deal(deal.id)
        return [] if contract is None else [await _view(uow, contract, today_for(crm, user))]


async def list_contracts(
    crm: CRM, actor: Actor, *, open_only: bool = True, query: str | None = None, limit: int = 20
) -> list[ContractView]:
    """Contracts the actor may see, newest first; `query` matches number, deal or contact."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        scope = await uow.users.visible_owner_ids(user)
        contracts = await uow.contracts.search(
            scope, open_only=open_only, query=clean_text(query, 100) or None, limit=max(1, min(limit, 200))
        )
        return await _views(uow, contracts, today_for(crm, user))


async def open_invoices(
    crm: CRM, actor: Actor, *, contract_id: int | None = None, due_before: date | None = None
) -> list[InvoiceView]:
    """Unpaid invoices the actor may see, earliest due first (due strictly before `due_before`)."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        if contract_id is not None:
            await visible(uow, uow.contracts, contract_id, user, "contract")
        rows = await uow.contracts.installments_by_status(
            UNPAID,
            due_before=due_before,
            owner_ids=await uow.users.visible_owner_ids(user),
            contract_id=contract_id,
        )
        today = today_for(crm, user)
        return [_invoice(r, today) for r in rows]


async def installments_due(
    crm: CRM, *, on_or_before: date, statuses: Sequence[str] = UNPAID
) -> list[InvoiceView]:
    """For jobs and reports (no actor): invoices in `statuses` due on or before a date.
    Effective statuses are judged by the team's today (`CRM_TIMEZONE`)."""
    async with crm.reader() as uow:
        rows = await uow.contracts.installments_by_status(statuses, due_on_or_before=on_or_before)
        today = crm.now().astimezone(crm.settings.tz).date()
        return [_invoice(r, today) for r in rows]
