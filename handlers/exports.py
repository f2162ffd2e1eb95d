"""Exports to CSV (UTF-8 with BOM, so spreadsheet apps detect it) or XLSX, scoped by role.

Rows stream from a server-side cursor in batches straight into the file: memory stays flat
however big the table is. Headers use the names the importer recognises, so an export can be
imported again.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from handlers.access import acting_user
from handlers.context import CRM, Actor
from handlers.errors import InvalidInput
from handlers.values import minor_units, to_major
from storage.repos.reports import TransferRepository

EXPORTABLE = ("contacts", "deals", "interactions", "payments")
FORMATS = ("csv", "xlsx")
HEADERS = {
    "contacts": ("ID", "Name", "Company", "Phone", "Email", "Source", "Owner", "Tags", "Created"),
    "deals": (
        "ID", "Title", "Name", "Company", "Phone", "Email", "Stage", "Value", "Currency",
        "Source", "Owner", "Tags", "Created", "Closed", "Lost reason",
    ),
    "interactions": ("ID", "Date", "Contact", "Phone", "Kind", "Summary", "Outcome", "Deal", "Logged by"),
    "payments": ("ID", "Paid on", "Contract", "Amount", "Currency", "Method", "Reference", "Recorded by", "Voided"),
}
# Spreadsheet apps run a cell starting with these as a formula; a leading quote disarms it.
FORMULA_START = ("=", "@", "\t", "\r")


async def export(crm: CRM, actor: Actor, what: str, fmt: str = "csv") -> list[Path]:
    """Write `what` (contacts, deals, interactions, payments or all) the actor may see."""
    what, fmt = what.strip().lower(), fmt.strip().lower().lstrip(".")
    if what not in (*EXPORTABLE, "all"):
        raise InvalidInput(
            "I can export contacts, deals, interactions, payments or all, e.g. /export deals xlsx.",
            field="what",
        )
    if fmt not in FORMATS:
        raise InvalidInput("Choose csv or xlsx, e.g. /export deals xlsx.", field="format")
    folder = Path(crm.settings.data_dir) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = crm.now().strftime("%Y%m%d-%H%M%S")
    paths = []
    async with crm.reader() as uow:
        user = await acting_user(uow, actor)
        owners = await uow.users.visible_owner_ids(user)
        tz = ZoneInfo(user.timezone)
        repo = TransferRepository(uow.session)
        for kind in EXPORTABLE if what == "all" else (what,):
            path = folder / f"{kind}-{stamp}-u{user.id}.{fmt}"
            shape = _shaper(kind, tz, for_csv=fmt == "csv")
            batches = repo.stream(kind, owners)
            writer = _write_csv if fmt == "csv" else _write_xlsx
            try:
                await writer(path, kind, HEADERS[kind], batches, shape)
            except BaseException:
                # Cancelled or failed half-way: leave no partial file that looks like an export.
                for written in (*paths, path):
                    written.unlink(missing_ok=True)
                raise
            paths.append(path)
    return paths


async def _write_csv(path: Path, _sheet: str, headers: Sequence[str], batches, shape) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        async for batch in batches:
            writer.writerows(shape(row) for row in batch)


async def _write_xlsx(path: Path, sheet: str, headers: Sequence[str], batches, shape) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)  # rows go to a temp file as they come
    ws = book.create_sheet(sheet.title())
    ws.append(list(headers))
    async for batch in batches:
        for row in batch:
            ws.append(shape(row))
    book.save(path)


def _shaper(kind: str, tz: ZoneInfo, *, for_csv: bool) -> Callable[[tuple], list]:
    """Turn one SQL row into cells: local times, major-unit money, joined tags."""

    def when(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""

    def day(value: date | None) -> str:
        return value.isoformat() if value else ""

    def money(minor: int, currency: str):
        major = to_major(minor, currency).quantize(Decimal(1).scaleb(-minor_units(currency)))
        return str(major) if for_csv else major

    def text(value) -> str:
        value = "" if value is None else str(value)
        return "'" + value if value.startswith(FORMULA_START) else value

    def tags(value) -> str:
        return ", ".join(value or [])

    if kind == "contacts":
        return lambda r: [r[0], text(r[1]), text(r[2]), r[3] or "", r[4] or "", r[5] or "", text(r[7]),
                          text(tags(r[6])), when(r[8])]
    if kind == "deals":
        return lambda r: [r[0], text(r[1]), text(r[2]), text(r[3]), r[4] or "", r[5] or "", r[6],
                          money(r[7], r[8]), r[8], r[9] or "", text(r[10]), text(tags(r[11])),
                          when(r[12]), when(r[13]), text(r[14])]
    if kind == "interactions":
        return lambda r: [r[0], when(r[1]), text(r[2]), r[3] or "", r[4], text(r[5]), text(r[6]),
                          r[7] or "", text(r[8])]
    return lambda r: [r[0], day(r[1]), r[2], money(r[3], r[4]), r[4], text(r[5]), text(r[6]),
                      text(r[7]), when(r[8])]
