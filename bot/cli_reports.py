"""`python main.py report|export|import ...`: reports and data moves from the command line,
acting as the console admin."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from conversations.commands.reports import render_import_result, render_preview, render_report
from handlers.charts import report_charts
from handlers.context import CRM, Actor
from handlers.errors import DomainError
from handlers.exports import EXPORTABLE, FORMATS, export
from handlers.imports import apply_import, preview_import
from handlers.reports import BREAKDOWNS, report


def add_subcommands(subparsers) -> None:
    """Add `report`, `export` and `import` to main.py's argparse subparsers."""
    rep = subparsers.add_parser("report", help="figures for a period, e.g. --period 'last month'")
    rep.add_argument("--period", default="this month", help="today, last week, Q3, 'since 1 Nov' ...")
    rep.add_argument("--by", choices=BREAKDOWNS, help="break the figures down")
    rep.add_argument("--charts", action="store_true", help="also draw the charts and print their paths")

    exp = subparsers.add_parser("export", help="write contacts, deals, interactions, payments or all")
    exp.add_argument("what", choices=(*EXPORTABLE, "all"))
    exp.add_argument("--format", choices=FORMATS, default="csv")
    exp.add_argument("-o", "--output", type=Path, help="file to write (a folder for 'all')")

    imp = subparsers.add_parser("import", help="import contacts and deals from a CSV or XLSX")
    imp.add_argument("file", type=Path)
    imp.add_argument("--yes", action="store_true", help="import without stopping at the preview")


async def run(crm: CRM, actor: Actor, args: argparse.Namespace) -> int:
    """Carry out one of the subcommands; returns the process exit code."""
    try:
        if args.command == "report":
            return await _report(crm, actor, args)
        if args.command == "export":
            return await _export(crm, actor, args)
        return await _import(crm, actor, args)
    except DomainError as err:
        print(err, file=sys.stderr)
        return 1


async def _report(crm: CRM, actor: Actor, args) -> int:
    view = await report(crm, actor, args.period, args.by)
    print(render_report(view).plain)
    if args.charts:
        for path, caption in await report_charts(crm, actor, view.period):
            print(f"{caption}: {path}")
    return 0


async def _export(crm: CRM, actor: Actor, args) -> int:
    paths = await export(crm, actor, args.what, args.format)
    target = args.output
    if target is not None and len(paths) == 1 and not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        paths = [Path(shutil.move(paths[0], target))]
    elif target is not None:
        target.mkdir(parents=True, exist_ok=True)
        paths = [Path(shutil.move(p, target / p.name)) for p in paths]
    for path in paths:
        print(path)
    return 0


async def _import(crm: CRM, actor: Actor, args) -> int:
    if not args.file.is_file():
        print(f"No file at {args.file}.", file=sys.stderr)
        return 1
    preview = await preview_import(crm, actor, args.file)
    print(render_preview(preview).plain)
    if not args.yes:
        print(f"\nDry run: nothing changed. Run again with --yes to import {preview.new} new.")
        return 0

    async def progress(done: int, total: int) -> None:
        print(f"  {done}/{total}", file=sys.stderr)

    result = await apply_import(crm, actor, args.file, progress=progress)
    print(render_import_result(result).plain)
    return 0
