"""Exports (CSV with BOM, XLSX) scoped by role; imports previewed, applied all-or-nothing,
and round-tripping with exports; bad files refused with clear messages."""
from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import delete, func, select

from conversations.messages import Attachment, Inbound
from conversations.registry import ACTIONS, COMMANDS, Turn
from handlers.errors import InvalidInput
from handlers.exports import export
from handlers.imports import apply_import, preview_import
from storage.models import (
    Allocation,
    AuditEntry,
    Contact,
    Contract,
    Deal,
    Installment,
    Interaction,
    Payment,
    StageChange,
)
from tests.test_reports import seed_dataset, seed_team

LEADS = """Full name,Mobile,E-mail,Company,Stage,Amount,Currency,Source,Owner,Tags,Notes
Omar Haddad,+971 50 123 4501,omar@example.com,Haddad Trading,Proposal,"1,500.00",USD,Website,Rana,"vip, gulf",Wants a demo
Lena Vogel,050 123 4502,LENA@example.com,,won,2000,EUR,referral,Raj,,
Yusuf Ali,+971501234503,,Ali & Sons,contacted,750.5,AED,ads,,,
Aisha Khan,,aisha@example.com,,,,,,Mia,,
Noor Saleh,+971501234505,noor@example.com,Saleh Co,Negotiation,300,USD,event,Ada,,Call after 5
"""


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


async def count(crm, model) -> int:
    async with crm.reader() as uow:
        return (await uow.session.execute(select(func.count()).select_from(model))).scalar_one()


async def deal_rows(crm) -> set[tuple]:
    async with crm.reader() as uow:
        from storage.models import User

        rows = await uow.session.execute(
            select(Contact.name, Contact.phone, Contact.email, Contact.company, Contact.source, Contact.tags,
                   Deal.stage, Deal.value_minor, Deal.currency, User.display_name)
            .join(Deal, Deal.contact_id == Contact.id).join(User, User.id == Deal.owner_id)
        )
        return {(*r[:5], tuple(r[5]), *r[6:]) for r in rows}


async def wipe(crm) -> None:
    async with crm.uow() as uow:
        for model in (Allocation, Payment, Installment, Contract, Interaction, StageChange, Deal, Contact):
            await uow.session.execute(delete(model))
        await uow.commit()


# --- exports -------------------------------------------------------------------------------


async def test_csv_export_has_a_bom_and_is_scoped_by_role(crm, make_user, data_dir):
    team = await seed_dataset(crm, make_user)

    [everything] = await export(crm, team.ada, "deals", "csv")
    [own] = await export(crm, team.rana, "deals", "csv")

    assert everything.parent == data_dir / "exports"
    assert everything.read_bytes().startswith(b"\xef\xbb\xbf")
    with everything.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7
    omar = next(r for r in rows if r["Name"] == "Omar")
    assert (omar["Stage"], omar["Value"], omar["Currency"], omar["Owner"], omar["Phone"]) == (
        "won", "1000.00", "USD", "Rana", "+971501234501")
    with own.open(encoding="utf-8-sig", newline="") as f:
        assert sorted(r["Name"] for r in csv.DictReader(f)) == ["Karim", "Lena", "Omar"]


async def test_export_all_as_xlsx_writes_one_workbook_per_table(crm, make_user):
    team = await seed_dataset(crm, make_user)

    paths = await export(crm, team.ada, "all", "xlsx")

    assert [p.name.split("-")[0] for p in paths] == ["contacts", "deals", "interactions", "payments"]
    sizes = {}
    for path in paths:
        book = openpyxl.load_workbook(path, read_only=True)
        sizes[path.name.split("-")[0]] = len(list(book.worksheets[0].iter_rows())) - 1
        book.close()
    assert sizes == {"contacts": 7, "deals": 7, "interactions": 7, "payments": 3}


async def test_export_refuses_unknown_tables_and_formats(crm, make_user):
    team = await seed_team(make_user)

    with pytest.raises(InvalidInput, match="/export deals xlsx"):
        await export(crm, team.ada, "invoices", "csv")
    with pytest.raises(InvalidInput, match="csv or xlsx"):
        await export(crm, team.ada, "deals", "pdf")


async def test_cells_that_look_like_formulas_are_disarmed(crm, make_user):
    team = await seed_team(make_user)
    path = Path(crm.settings.data_dir) / "formula.csv"
    path.write_text('Name,Company\n"=HYPERLINK(""http://x"")",@evil\n', encoding="utf-8")
    await apply_import(crm, team.ada, path)

    [out] = await export(crm, team.ada, "contacts", "csv")

    with out.open(encoding="utf-8-sig", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["Name"] == "'=HYPERLINK(\"http://x\")" and row["Company"] == "'@evil"


# --- import preview and apply ----------------------------------------------------------------


async def test_preview_maps_synonyms_and_counts_without_writing(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    path = write(tmp_path, "leads.csv", LEADS + "Omar again,+971501234501,,,,,,,,,\n"
                 "Bad phone,12ab,,,,,,,,,\nBad stage,,x@example.com,,hot,,,,,,\nNobody,,,,,,,,Zed,,\n")

    preview = await preview_import(crm, team.ada, path)

    assert preview.total_rows == 9
    assert (preview.new, preview.duplicates_existing, preview.duplicates_in_file) == (5, 0, 1)
    assert preview.errors == (
        "row 8: phone invalid (“12ab”)",
        "row 9: stage “hot” unknown (use New, Contacted, Proposal, Negotiation, Won, Lost)",
        "row 10: owner “Zed” is not a ChatCRM user",
    )
    assert dict(preview.columns)["Full name"] == "name" and dict(preview.columns)["E-mail"] == "email"
    assert await count(crm, Contact) == 0


async def test_apply_creates_contacts_deals_history_in_one_audited_change(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    path = write(tmp_path, "leads.csv", LEADS)
    seen = []

    async def progress(done, total):
        seen.append((done, total))

    result = await apply_import(crm, team.ada, path, progress=progress)

    assert (result.created, result.skipped_duplicates, result.skipped_errors) == (5, 0, 0)
    assert seen == [(5, 5)]
    assert await deal_rows(crm) == {
        ("Omar Haddad", "+971501234501", "omar@example.com", "Haddad Trading", "website", ("vip", "gulf"),
         "proposal", 150000, "USD", "Rana"),
        ("Lena Vogel", "+971501234502", "lena@example.com", None, "referral", (), "won", 200000, "EUR", "Raj"),
        ("Yusuf Ali", "+971501234503", None, "Ali & Sons", "ads", (), "contacted", 75050, "AED", "Ada"),
        ("Aisha Khan", None, "aisha@example.com", None, None, (), "new", 0, "USD", "Mia"),
        ("Noor Saleh", "+971501234505", "noor@example.com", "Saleh Co", "event", (), "negotiation", 30000, "USD", "Ada"),
    }
    assert await count(crm, StageChange) == 5
    assert await count(crm, Interaction) == 2  # the two notes
    async with crm.reader() as uow:
        changes = (await uow.session.execute(select(func.count(func.distinct(AuditEntry.change_id))))).scalar_one()
        audited = (await uow.session.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
        won = (await uow.session.execute(select(Deal.closed_at).where(Deal.stage == "won"))).scalar_one()
    assert (changes, audited) == (1, 10)
    assert won == crm.now()

    again = await preview_import(crm, team.ada, path)
    assert (again.new, again.duplicates_existing) == (0, 5)


async def test_owner_may_be_named_by_chat_identity(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    await make_user("Tariq", "rep", manager=team.mia, identity=("telegram", "555"))
    path = write(tmp_path, "owners.csv", "Name,Owner\nOne,telegram:555\nTwo,  tariq \n")

    await apply_import(crm, team.mia, path)

    assert {r[-1] for r in await deal_rows(crm)} == {"Tariq"}


async def test_a_rep_cannot_give_imported_leads_to_others(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    path = write(tmp_path, "mine.csv", "Name,Owner\nOne,Rana\nTwo,Raj\nThree,\n")

    preview = await preview_import(crm, team.rana, path)

    assert preview.new == 2
    assert preview.errors == ("row 3: you can't give leads to Raj",)


async def test_a_failure_mid_import_leaves_the_database_as_it_was(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    rows = "".join(f"Lead {i},lead{i}@example.com\n" for i in range(1200))
    path = write(tmp_path, "big.csv", "Name,Email\n" + rows)
    calls = []

    async def failing_progress(done, total):
        calls.append((done, total))
        raise RuntimeError("the chat went away")

    with pytest.raises(RuntimeError):
        await apply_import(crm, team.ada, path, progress=failing_progress)

    assert calls == [(500, 1200)]  # the first batch was written before the failure
    for model in (Contact, Deal, StageChange, AuditEntry):
        assert await count(crm, model) == 0

    done = []

    async def progress(n, total):
        done.append(n)

    result = await apply_import(crm, team.ada, path, progress=progress)
    assert result.created == 1200 and done == [500, 1000, 1200]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_exports_round_trip_through_import(crm, make_user, tmp_path, fmt):
    team = await seed_team(make_user)
    await apply_import(crm, team.ada, write(tmp_path, "leads.csv", LEADS))
    before = await deal_rows(crm)
    [exported] = await export(crm, team.ada, "deals", fmt)

    duplicates = await preview_import(crm, team.ada, exported)
    await wipe(crm)
    preview = await preview_import(crm, team.ada, exported)
    result = await apply_import(crm, team.ada, exported)

    assert (duplicates.new, duplicates.duplicates_existing) == (0, 5)
    assert preview.error_count == 0 and "ID" in preview.ignored
    assert result.created == 5
    assert await deal_rows(crm) == before


# --- bad files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("leads.pdf", b"%PDF-1.4", "I can import .csv or .xlsx files"),
        ("old.xls", b"\xd0\xcf\x11\xe0", "save as .xlsx"),
        ("empty.csv", b"", "The file is empty"),
        ("blank.csv", b"\n ,, \n\n", "The file is empty"),
        ("headers.csv", b"Name,Phone\n", "no rows to import"),
        ("unknown.csv", b"Colour,Size\nred,XL\n", "Name, Phone, Email, Company"),
        ("latin1.csv", "Name,Company\nJosé,Café\n".encode("cp1252"), "line 2 is not UTF-8"),
        ("broken.xlsx", b"PK\x03\x04 not really a workbook", "looks damaged"),
    ],
)
async def test_bad_files_get_clear_messages(crm, make_user, tmp_path, name, content, message):
    team = await seed_team(make_user)

    with pytest.raises(InvalidInput, match=message):
        await preview_import(crm, team.ada, write(tmp_path, name, content))
    with pytest.raises(InvalidInput, match=message):
        await apply_import(crm, team.ada, write(tmp_path, name, content))
    assert await count(crm, Contact) == 0


async def test_more_than_100000_rows_is_refused(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    path = write(tmp_path, "huge.csv", "Name\n" + "".join(f"L{i}\n" for i in range(100_001)))

    with pytest.raises(InvalidInput, match="more than 100,000 rows"):
        await preview_import(crm, team.ada, path)


async def test_semicolon_csv_and_utf16_are_read(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    semicolons = write(tmp_path, "eu.csv", "Name;Value;Currency\nJosé;1.500,50;EUR\nShort\n")
    utf16 = write(tmp_path, "u16.csv", "Name,Company\nZoë,Ünal\n".encode("utf-16"))

    await apply_import(crm, team.ada, semicolons)
    await apply_import(crm, team.ada, utf16)

    rows = await deal_rows(crm)
    assert ("José", None, None, None, None, (), "new", 150050, "EUR", "Ada") in rows
    assert any(r[0] == "Zoë" and r[3] == "Ünal" for r in rows)


# --- chat commands -------------------------------------------------------------------------


def turn_for(crm, actor, *, attachment=None, text=None) -> Turn:
    inbound = Inbound("telegram", "42", "42", text=text, attachment=attachment)
    return Turn(crm=crm, actor=actor, inbound=inbound, tz=ZoneInfo("UTC"))


async def test_import_in_chat_previews_then_applies_on_the_button(crm, make_user, tmp_path):
    team = await seed_team(make_user)
    path = write(tmp_path, "upload-123.csv", LEADS)
    attachment = Attachment(path=path, filename="leads.csv", size=path.stat().st_size)

    [explain] = await COMMANDS["import"].run(turn_for(crm, team.ada), "")
    [preview] = await COMMANDS["import"].run(turn_for(crm, team.ada, attachment=attachment), "")

    assert "with /import as its caption" in explain.text.plain
    assert "leads.csv · 5 rows" in preview.text.plain and "5 new" in preview.text.plain
    go, cancel = preview.choices
    assert go.label == "Import 5 new" and go.value.startswith("imp:go:")
    [forged] = await ACTIONS["imp"](turn_for(crm, team.rana), go.value.split(":")[1:])
    assert "expired" in forged.text.plain
    [done] = await ACTIONS["imp"](turn_for(crm, team.ada), go.value.split(":")[1:])
    assert done.text.plain == "✅ Imported 5 contacts with their deals."
    [again] = await ACTIONS["imp"](turn_for(crm, team.ada), go.value.split(":")[1:])
    assert "expired" in again.text.plain
    assert await count(crm, Contact) == 5


async def test_export_in_chat_sends_files(crm, make_user):
    team = await seed_dataset(crm, make_user)

    [ask] = await COMMANDS["export"].run(turn_for(crm, team.mia), "")
    [reply] = await COMMANDS["export"].run(turn_for(crm, team.mia), "deals xlsx")
    [bad] = await COMMANDS["export"].run(turn_for(crm, team.mia), "invoices")

    assert "/export deals xlsx" in ask.text.plain and len(ask.choices) == 5
    assert reply.file is not None and reply.file.filename.endswith(".xlsx")
    assert "contacts, deals, interactions, payments or all" in bad.text.plain


# --- command line ----------------------------------------------------------------------------


def cli_args(*argv: str):
    import argparse

    from bot.cli_reports import add_subcommands

    root = argparse.ArgumentParser()
    add_subcommands(root.add_subparsers(dest="command"))
    return root.parse_args(argv)


async def test_cli_report_export_and_import(crm, make_user, tmp_path, capsys):
    from bot.cli_reports import run

    team = await seed_dataset(crm, make_user)
    out = tmp_path / "out" / "deals.xlsx"

    assert await run(crm, team.ada, cli_args("report", "--period", "last month", "--by", "rep")) == 0
    assert "November 2026" in capsys.readouterr().out
    assert await run(crm, team.ada, cli_args("report", "--period", "someday")) == 1
    assert "can't read “someday”" in capsys.readouterr().err
    assert await run(crm, team.ada, cli_args("export", "deals", "--format", "xlsx", "-o", str(out))) == 0
    assert out.is_file() and capsys.readouterr().out.strip() == str(out)

    leads = write(tmp_path, "leads.csv", LEADS)
    assert await run(crm, team.ada, cli_args("import", str(leads))) == 0
    assert "Dry run: nothing changed" in capsys.readouterr().out
    assert await count(crm, Contact) == 7
    assert await run(crm, team.ada, cli_args("import", str(leads), "--yes")) == 0
    # Omar's phone is already in the CRM, so 4 of the 5 rows are new.
    assert "Imported 4 contacts with their deals. Skipped 1 (1 duplicate, 0 with errors)." in capsys.readouterr().out
    assert await count(crm, Contact) == 11
