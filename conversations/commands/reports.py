"""/report, /export, /import and the chart buttons; plus the text renderers the CLI shares."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from conversations.messages import Choice, OutFile, Reply
from conversations.registry import Turn, action, action_value, command
from conversations.rich import Rich, bold
from handlers.charts import pipeline_chart, report_charts
from handlers.errors import DomainError
from handlers.exports import EXPORTABLE, export
from handlers.imports import ImportPreview, ImportResult, apply_import, preview_import
from handlers.periods import Period, period_from_days
from handlers.reports import Amount, ReportView, report
from handlers.values import Money
from storage.enums import STAGE_INFO

BY = re.compile(r"(?:^|\s+)by\s+(\S+)\s*$", re.IGNORECASE)
IMPORT_TOKEN_BYTES = 6


# --- rendering (shared with bot/cli_reports.py) ----------------------------------------------


def render_report(view: ReportView) -> Rich:
    """A report compact enough to read on a phone: one figure per line."""
    lang = view.language
    lines: list[Rich | str] = [Rich.of(bold(f"📊 {view.period.label}"), f" · {view.scope}")]
    leads = ", ".join(f"{src} {n}" for src, n in view.new_leads)
    lines.append(f"New leads {view.new_lead_count}" + (f": {leads}" if leads else ""))
    if view.won or view.lost:
        lines.append(f"Won {view.won_count}: {_amounts(view.won, lang)}" if view.won else "Won 0")
        lines.append(f"Lost {view.lost_count}: {_amounts(view.lost, lang)}" if view.lost else "Lost 0")
        rate = f"Close rate {view.close_rate:.0%}"
        if view.average_days_to_close is not None:
            rate += f" · {view.average_days_to_close:.1f} days to close"
        lines.append(rate)
    else:
        lines.append("No deals closed in this period.")
    lines.append(bold("Pipeline now"))
    for fig in view.pipeline:
        lines.append(f"  {STAGE_INFO[fig.stage].label} {fig.count}: {_money(fig.amounts, lang)}")
    if view.forecast:
        lines.append(f"Forecast {_money(view.forecast, lang)}")
    else:
        lines.append("  No open deals.")
    steps = [
        f"{STAGE_INFO[c.stage].label} {c.rate:.0%}" for c in view.conversion if c.rate is not None
    ]
    if steps:
        lines.append("Moved on: " + " · ".join(steps))
    if view.time_in_stage:
        slowest = max(view.time_in_stage, key=lambda t: t.average_days)
        lines.append(
            "Days in stage: "
            + " · ".join(f"{STAGE_INFO[t.stage].label} {t.average_days:.1f}" for t in view.time_in_stage)
            + f" (slowest: {STAGE_INFO[slowest.stage].label})"
        )
    if view.interactions:
        lines.append("Logged: " + " · ".join(f"{name} {n}" for name, n in view.interactions))
    lines.append(bold("Collections"))
    lines.append(f"  Due {_amounts(view.due, lang) or '0'}")
    lines.append(f"  Collected {_amounts(view.collected, lang) or '0'}")
    as_of = f"{view.overdue_as_of.day} {view.overdue_as_of.strftime('%b %Y')}"
    lines.append(f"  Overdue ({as_of}) {_amounts(view.overdue, lang) or '0'}")
    if view.breakdown:
        lines.append(bold(f"By {view.by}"))
        for row in view.breakdown:
            parts = [f"{row.new_leads} new", f"{row.won_count} won"]
            if row.won:
                parts[-1] += f" {_money(row.won, lang)}"
            if row.pipeline:
                parts.append(f"open {_money(row.pipeline, lang)}")
            if row.interactions is not None:
                parts.append(f"{row.interactions} logged")
            lines.append(Rich.of("  ", bold(row.label), ": " + " · ".join(parts)))
    return Rich.lines(lines)


def render_preview(preview: ImportPreview) -> Rich:
    """The dry run: what would be imported, what is skipped, and why."""
    lines: list[Rich | str] = [
        Rich.of(bold(f"📥 {preview.filename}"), f" · {preview.total_rows} rows"),
        f"{preview.new} new",
    ]
    if preview.duplicates_existing:
        lines.append(f"{_plural(preview.duplicates_existing, 'duplicate')} of existing contacts (skipped)")
    if preview.duplicates_in_file:
        lines.append(f"{preview.duplicates_in_file} repeated within the file (skipped)")
    if preview.error_count:
        lines.append(f"{preview.error_count} rows with errors (skipped):")
        lines.extend(f"  {e}" for e in preview.errors)
        if preview.error_count > len(preview.errors):
            lines.append(f"  … and {preview.error_count - len(preview.errors)} more")
    lines.append("Columns: " + ", ".join(f"{h} → {f}" for h, f in preview.columns))
    if preview.ignored:
        lines.append("Ignored: " + ", ".join(preview.ignored))
    return Rich.lines(lines)


def render_import_result(result: ImportResult) -> Rich:
    skipped = result.skipped_duplicates + result.skipped_errors
    text = f"✅ Imported {result.created} contacts with their deals."
    if skipped:
        text += (
            f" Skipped {skipped} ({_plural(result.skipped_duplicates, 'duplicate')},"
            f" {result.skipped_errors} with errors)."
        )
    return Rich.of(text)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _money(items: tuple[Money, ...], lang: str) -> str:
    return ", ".join(m.format(lang) for m in items)


def _amounts(items: tuple[Amount, ...], lang: str) -> str:
    return _money(tuple(a.money for a in items), lang)


# --- /report and charts --------------------------------------------------------------------


@command("report", "Figures for a period: /report last month by rep", group_ok=True, order=60)
async def report_command(turn: Turn, args: str) -> list[Reply]:
    by = None
    if match := BY.search(args or ""):
        by, args = match.group(1).lower(), args[: match.start()]
    try:
        view = await report(turn.crm, turn.actor, args.strip(), by)
    except DomainError as err:
        return [Reply.say(str(err))]
    charts = Choice("📈 Charts", action_value("rpt", "charts", *_days(view.period)))
    return [Reply(text=render_report(view), choices=(charts,))]


@action("rpt")
async def report_action(turn: Turn, args: list[str]) -> list[Reply]:
    """`rpt:charts:<first day>:<end day>`: the report's charts as images."""
    if len(args) != 3 or args[0] != "charts":
        return [Reply.say("That button has expired. Try /report again.")]
    try:
        first, end = (datetime.strptime(a, "%Y%m%d").date() for a in args[1:])
    except ValueError:
        return [Reply.say("That button has expired. Try /report again.")]
    period = period_from_days(first, end, turn.tz)
    try:
        paths = await report_charts(turn.crm, turn.actor, period)
    except DomainError as err:
        return [Reply.say(str(err))]
    return [_image(path, caption) for path, caption in paths]


@action("chart")
async def chart_action(turn: Turn, args: list[str]) -> list[Reply]:
    """`chart:pipeline`: the open pipeline as a funnel image (offered on /pipeline)."""
    if args != ["pipeline"]:
        return [Reply.say("I can draw the pipeline: press the chart button under /pipeline.")]
    try:
        path = await pipeline_chart(turn.crm, turn.actor)
    except DomainError as err:
        return [Reply.say(str(err))]
    return [_image(path, "Pipeline by stage")]


def _image(path: Path, caption: str) -> Reply:
    return Reply.say(caption, image=OutFile(path, path.name, caption))


def _days(period: Period) -> tuple[str, str]:
    return period.first_day.strftime("%Y%m%d"), period.end_day.strftime("%Y%m%d")


# --- /export -------------------------------------------------------------------------------


@command("export", "Download data: /export deals xlsx", order=62)
async def export_command(turn: Turn, args: str) -> list[Reply]:
    words = (args or "").lower().split()
    if not words:
        return [
            Reply.say(
                "What should I export? e.g. /export deals xlsx",
                choices=[Choice(w.title(), action_value("exp", w, "csv")) for w in (*EXPORTABLE, "all")],
            )
        ]
    return await _export(turn, words[0], words[1] if len(words) > 1 else "csv")


@action("exp")
async def export_action(turn: Turn, args: list[str]) -> list[Reply]:
    if len(args) != 2:
        return [Reply.say("That button has expired. Try /export deals.")]
    return await _export(turn, args[0], args[1])


async def _export(turn: Turn, what: str, fmt: str) -> list[Reply]:
    try:
        paths = await export(turn.crm, turn.actor, what, fmt)
    except DomainError as err:
        return [Reply.say(str(err))]
    return [Reply.say(f"📤 {p.name}", file=OutFile(p, p.name, p.stem)) for p in paths]


# --- /import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingImport:
    path: Path
    user_id: int


# Previews waiting for a button press, keyed by a short token (button values stay < 64 bytes).
# In memory on purpose: after a restart the user simply sends the file again.
PENDING: dict[str, PendingImport] = {}


@command("import", "Import contacts: send a CSV/XLSX with /import as caption", order=64)
async def import_command(turn: Turn, args: str) -> list[Reply]:
    attachment = turn.inbound.attachment
    if attachment is None:
        return [
            Reply.say(
                "Send me a CSV or Excel (.xlsx) file with /import as its caption. "
                "Columns I know: Name, Phone, Email, Company, Stage, Value, Currency, Source, Owner, Tags, Notes."
            )
        ]
    try:
        preview = await preview_import(turn.crm, turn.actor, attachment.path, filename=attachment.filename)
    except DomainError as err:
        return [Reply.say(str(err))]
    if not preview.new:
        return [Reply(text=render_preview(preview) + "\nNothing new to import.")]
    for stale in [t for t, p in PENDING.items() if p.user_id == turn.actor.user_id]:
        del PENDING[stale]  # one waiting preview per user: the newest file wins
    token = secrets.token_urlsafe(IMPORT_TOKEN_BYTES)
    PENDING[token] = PendingImport(attachment.path, turn.actor.user_id)
    buttons = (
        Choice(f"Import {preview.new} new", action_value("imp", "go", token)),
        Choice("Cancel", action_value("imp", "no", token)),
    )
    return [Reply(text=render_preview(preview), choices=buttons)]


@action("imp")
async def import_action(turn: Turn, args: list[str]) -> list[Reply]:
    """`imp:go:<token>` applies a previewed import; `imp:no:<token>` forgets it."""
    verb, token = (args + ["", ""])[:2]
    pending = PENDING.get(token)
    if pending is None or pending.user_id != turn.actor.user_id:
        return [Reply.say("That import has expired. Send the file again with /import.")]
    del PENDING[token]
    if verb != "go":
        return [Reply.say("Import cancelled. Nothing was changed.")]
    key = f"import:{token}"

    async def progress(done: int, total: int) -> None:
        if turn.progress is not None:
            await turn.progress(Reply.say(f"⏳ Importing… {done:,} of {total:,} rows", edit_key=key))

    try:
        result = await apply_import(turn.crm, turn.actor, pending.path, progress=progress)
    except DomainError as err:
        return [Reply.say(f"{err} Nothing was imported.", edit_key=key)]
    return [Reply(text=render_import_result(result), edit_key=key)]


__all__ = ["render_report", "render_preview", "render_import_result"]
