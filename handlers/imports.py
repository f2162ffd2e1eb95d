"""Import contacts (each with a deal) from the CSV or XLSX the team is leaving behind.

`preview_import` is a dry run: how columns map, how many rows are new, duplicates (of existing
contacts, by normalised phone or email, or repeated in the file) and which rows have errors.
`apply_import` re-reads the file and writes every new row in ONE transaction with one audit
change id: a failure anywhere leaves the database as it was.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from babel.numbers import get_currency_name

from handlers.access import acting_user
from handlers.context import CRM, Actor
from handlers.errors import InvalidInput
from handlers.values import clean_text, normalize_email, normalize_phone, to_minor
from storage.enums import STAGE_INFO, CLOSED_STAGES, Stage
from storage.models import Contact, Deal, Interaction, StageChange, User
from storage.repos.reports import TransferRepository
from storage.uow import UnitOfWork

MAX_ROWS = 100_000
BATCH = 500  # rows written per flush, and how often `progress` is called
MAX_ERRORS_SHOWN = 10
MAX_VALUE = Decimal(10) ** 12
FIELDS = {  # field -> header synonyms, compared without case, spaces or punctuation
    "name": ("name", "fullname", "contact", "contactname", "client", "clientname"),
    "phone": ("phone", "mobile", "phonenumber", "mobilenumber", "tel", "telephone", "cell"),
    "email": ("email", "emailaddress", "mail"),
    "company": ("company", "companyname", "organisation", "organization", "business"),
    "stage": ("stage", "dealstage", "status"),
    "value": ("value", "amount", "dealvalue", "price"),
    "currency": ("currency",),
    "source": ("source", "leadsource", "channel"),
    "owner": ("owner", "rep", "salesrep", "assignedto"),
    "tags": ("tags", "tag", "labels"),
    "notes": ("notes", "note", "comment", "comments"),
    "title": ("title", "dealtitle", "dealname"),
}
ACCEPTED = "Name, Phone, Email, Company, Stage, Value, Currency, Source, Owner, Tags, Notes, Title"
IDENTIFYING = ("name", "phone", "email", "company")
SYNONYMS = {synonym: name for name, synonyms in FIELDS.items() for synonym in synonyms}

Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class ImportPreview:
    filename: str
    total_rows: int
    new: int
    duplicates_existing: int
    duplicates_in_file: int
    error_count: int
    errors: tuple[str, ...]  # the first few, e.g. "row 7: phone invalid (“12ab”)"
    columns: tuple[tuple[str, str], ...]  # (header in the file, field)
    ignored: tuple[str, ...]  # headers not imported


@dataclass(frozen=True)
class ImportResult:
    created: int
    skipped_duplicates: int
    skipped_errors: int
    change_id: str


@dataclass(slots=True)
class Row:
    """One valid line of the file, normalised."""

    number: int  # spreadsheet row number (the header is row 1)
    name: str
    company: str | None
    phone: str | None
    email: str | None
    stage: Stage
    value_minor: int
    currency: str
    source: str | None
    owner_id: int
    tags: list[str]
    notes: str | None
    title: str
    status: str = "new"  # new / existing / repeated


@dataclass
class Plan:
    filename: str
    rows: list[Row]
    total: int
    errors: list[str]
    columns: list[tuple[str, str]]
    ignored: list[str]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


async def preview_import(crm: CRM, actor: Actor, path: Path, *, filename: str | None = None) -> ImportPreview:
    """Dry run: nothing is written."""
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        plan = await _plan(crm, uow, user, Path(path), filename)
    return ImportPreview(
        filename=plan.filename,
        total_rows=plan.total,
        new=plan.count("new"),
        duplicates_existing=plan.count("existing"),
        duplicates_in_file=plan.count("repeated"),
        error_count=len(plan.errors),
        errors=tuple(plan.errors[:MAX_ERRORS_SHOWN]),
        columns=tuple(plan.columns),
        ignored=tuple(plan.ignored),
    )


async def apply_import(
    crm: CRM, actor: Actor, path: Path, *, skip_duplicates: bool = True, progress: Progress | None = None
) -> ImportResult:
    """Create a contact, a deal and its first stage change for every new row, all or nothing."""
    async with crm.uow(actor, action="import_contacts") as uow:
        user = await acting_user(uow, actor)
        plan = await _plan(crm, uow, user, Path(path), None)
        wanted = ("new",) if skip_duplicates else ("new", "existing")
        rows = [r for r in plan.rows if r.status in wanted]
        for start in range(0, len(rows), BATCH):
            await _write_batch(uow, user, rows[start : start + BATCH])
            if progress:
                await progress(min(start + BATCH, len(rows)), len(rows))
        await uow.commit()
        return ImportResult(
            created=len(rows),
            skipped_duplicates=len(plan.rows) - len(rows),
            skipped_errors=len(plan.errors),
            change_id=uow.change_id,
        )


async def _write_batch(uow: UnitOfWork, user: User, rows: list[Row]) -> None:
    """Contacts, deals, first stage changes, notes and audit rows for one batch, in bulk."""
    repo = TransferRepository(uow.session)
    now = uow.now
    contact_ids = await repo.insert_numbered(Contact, [
        {"name": r.name, "company": r.company, "phone": r.phone, "email": r.email, "source": r.source,
         "tags": r.tags, "owner_id": r.owner_id, "created_at": now}
        for r in rows
    ])
    deal_ids = await repo.insert_numbered(Deal, [
        {"contact_id": cid, "title": r.title, "value_minor": r.value_minor, "currency": r.currency,
         "stage": r.stage.value, "owner_id": r.owner_id, "source": r.source, "created_at": now,
         "stage_changed_at": now, "last_touched_at": now,
         "closed_at": now if r.stage in CLOSED_STAGES else None}
        for r, cid in zip(rows, contact_ids)
    ])
    await repo.insert_many(StageChange, [
        {"deal_id": did, "from_stage": None, "to_stage": r.stage.value, "actor_id": user.id, "at": now}
        for r, did in zip(rows, deal_ids)
    ])
    await repo.insert_many(Interaction, [
        {"contact_id": cid, "deal_id": did, "kind": "note", "summary": r.notes, "occurred_at": now,
         "logged_by_id": user.id, "created_at": now}
        for r, cid, did in zip(rows, contact_ids, deal_ids)
        if r.notes
    ])
    source = uow.source
    for entity, ids in (("contacts", contact_ids), ("deals", deal_ids)):
        await repo.audit_created(entity, ids, change_id=uow.change_id, action=uow.action, actor_id=source.actor_id,
                                 platform=source.platform, message_ref=source.message_ref, at=now)


# --- reading and checking the file ---------------------------------------------------------


async def _plan(crm: CRM, uow: UnitOfWork, user: User, path: Path, filename: str | None) -> Plan:
    filename = filename or path.name
    headers, lines = _read_table(path, filename)
    columns = _map_headers(headers)
    repo = TransferRepository(uow.session)
    directory = await repo.owner_directory()
    scope = await uow.users.visible_owner_ids(user)
    rows: list[Row] = []
    errors: list[str] = []
    total = 0
    for number, cells in lines:
        total += 1
        if total > MAX_ROWS:
            raise InvalidInput(
                f"That file has more than {MAX_ROWS:,} rows. Split it into smaller files and send them one by one."
            )
        try:
            rows.append(_parse_row(crm, number, cells, columns, directory, scope, user))
        except InvalidInput as err:
            errors.append(f"row {number}: {err}")
    if total == 0:
        raise InvalidInput("The file has a header row but no rows to import.")
    existing = await repo.existing_contact_keys(
        (r.phone for r in rows if r.phone), (r.email for r in rows if r.email)
    )
    seen: set[str] = set()
    for r in rows:
        keys = {k for k in (r.phone, r.email) if k}
        if keys & existing:
            r.status = "existing"
        elif keys & seen:
            r.status = "repeated"
        seen |= keys
    mapped = [(headers[i], field) for i, field in sorted(columns.items())]
    ignored = [h for i, h in enumerate(headers) if i not in columns and h]
    return Plan(filename, rows, total, errors, mapped, ignored)


def _read_table(path: Path, filename: str) -> tuple[list[str], Iterator[tuple[int, list]]]:
    """Headers and (row number, cells) of the first sheet; blank rows are skipped."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix == ".xlsx":
        rows = _xlsx_rows(path)
    else:
        hint = " Old .xls files: open and save as .xlsx first." if suffix == ".xls" else ""
        raise InvalidInput(
            f"I can import .csv or .xlsx files; “{clean_text(filename, 80)}” is neither.{hint} "
            "In your spreadsheet app use Save as → CSV UTF-8 or Excel workbook."
        )
    numbered = ((n, cells) for n, cells in enumerate(rows, start=1) if any(_cell(c) for c in cells))
    first = next(numbered, None)
    if first is None:
        raise InvalidInput(f"The file is empty. Send a sheet with a header row like: {ACCEPTED}.")
    return [_cell(h) for h in first[1]], numbered


def _csv_rows(path: Path) -> Iterator[list[str]]:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise InvalidInput(
                f"I can't read this file's text (line {line} is not UTF-8). In Excel use "
                "Save as → “CSV UTF-8 (comma delimited)”, or send the .xlsx instead."
            ) from None
    if "\x00" in text:
        raise InvalidInput("This doesn't look like a CSV file (it contains binary data). Send a CSV or .xlsx.")
    # Spreadsheets in comma-decimal locales write ";"; pick what the header line uses most.
    header = text.lstrip("\r\n").partition("\n")[0]
    delimiter = max(",;\t", key=header.count)
    return _checked_csv(csv.reader(io.StringIO(text), delimiter=delimiter))


def _checked_csv(reader) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as err:
        raise InvalidInput(f"The CSV is broken near line {reader.line_num} ({err}). Save it again and resend.") from None


def _xlsx_rows(path: Path) -> Iterator[list]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError):
        raise InvalidInput("I can't open this .xlsx: it looks damaged. Save it again in Excel, or send a CSV.") from None
    try:
        for row in book.worksheets[0].iter_rows(values_only=True):
            yield list(row)
    finally:
        book.close()


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    return text[1:] if text.startswith("'") else text  # undo the export's formula guard


def _map_headers(headers: list[str]) -> dict[int, str]:
    columns: dict[int, str] = {}
    for i, header in enumerate(headers):
        field = SYNONYMS.get(re.sub(r"[^a-z0-9]", "", header.lower()))
        if field and field not in columns.values():
            columns[i] = field
    if not set(columns.values()) & set(IDENTIFYING):
        raise InvalidInput(f"I don't recognise the column names. The first row should have headers like: {ACCEPTED}.")
    return columns


def _parse_row(crm: CRM, number: int, cells: list, columns: dict[int, str], directory, scope, user: User) -> Row:
    typed = {field: cells[i] if i < len(cells) else None for i, field in columns.items()}
    raw = {field: _cell(cell) for field, cell in typed.items()}
    name = clean_text(raw.get("name"), 200) or None
    company = clean_text(raw.get("company"), 200) or None
    phone = _optional(raw.get("phone"), lambda p: normalize_phone(p, crm.settings.phone_region), "phone")
    email = _optional(raw.get("email"), normalize_email, "email")
    if not (name or company or phone or email):
        raise InvalidInput("no name, company, phone or email")
    currency = _currency(raw.get("currency"), crm.settings.currency)
    return Row(
        number=number,
        name=name or company or phone or email,
        company=company,
        phone=phone,
        email=email,
        stage=_stage(raw.get("stage")),
        value_minor=_value(typed.get("value"), currency),  # XLSX numbers arrive as numbers
        currency=currency,
        source=clean_text(raw.get("source"), 32).lower() or None,
        owner_id=_owner(raw.get("owner"), directory, scope, user),
        tags=[t for t in (clean_text(t, 40) for t in re.split(r"[,;]", raw.get("tags", ""))) if t],
        notes=clean_text(raw.get("notes")) or None,
        title=clean_text(raw.get("title"), 200) or company or name or phone or email,
    )


def _optional(text: str | None, normalise, what: str) -> str | None:
    if not text:
        return None
    try:
        return normalise(text)
    except InvalidInput:
        raise InvalidInput(f"{what} invalid (“{clean_text(text, 40)}”)") from None


def _stage(text: str | None) -> Stage:
    if not text:
        return Stage.NEW
    for stage, info in STAGE_INFO.items():
        if text.lower() in (stage.value, info.label.lower()):
            return stage
    names = ", ".join(info.label for info in STAGE_INFO.values())
    raise InvalidInput(f"stage “{clean_text(text, 30)}” unknown (use {names})")


def _currency(text: str | None, default: str) -> str:
    if not text:
        return default
    code = text.strip().upper()
    if len(code) != 3 or get_currency_name(code) == code:
        raise InvalidInput(f"currency “{clean_text(text, 10)}” unknown (use a code like USD)")
    return code


def _value(raw, currency: str) -> int:
    """Minor units from 1500, "1,500.00", "1.500,00", "$ 1 500"; blank is 0."""
    if raw is None or raw == "":
        return 0
    if isinstance(raw, (int, float, Decimal)):
        number = Decimal(str(raw))
    else:
        text = re.sub(r"[^\d,.\-]", "", _cell(raw))
        if "," in text and "." in text:
            thousands = "," if text.rfind(",") < text.rfind(".") else "."
            text = text.replace(thousands, "").replace(",", ".")
        elif "," in text:
            # "1,500" is thousands; "12,5" is a decimal comma
            text = text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text) else text.replace(",", ".")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(f"value “{clean_text(str(raw), 20)}” is not a number (e.g. 1500.00)") from None
    if number < 0 or number >= MAX_VALUE:
        raise InvalidInput(f"value “{clean_text(str(raw), 20)}” is out of range (e.g. 1500.00)")
    return to_minor(number, currency)


def _owner(text: str | None, directory: dict[str, int], scope, user: User) -> int:
    if not text:
        return user.id
    owner_id = directory.get(text.strip().lower())
    if owner_id is None:
        raise InvalidInput(f"owner “{clean_text(text, 40)}” is not a ChatCRM user")
    if scope is not None and owner_id not in scope:
        raise InvalidInput(f"you can't give leads to {clean_text(text, 40)}")
    return owner_id
