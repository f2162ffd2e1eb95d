"""Report charts as PNG files sized for a phone (1000x700 px, large type).

matplotlib is imported only inside the drawing code (it is slow to import and most processes
never draw), and drawing runs in a worker thread so the chat loop keeps answering.
"""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from handlers.context import CRM, Actor
from handlers.periods import Period
from handlers.reports import Amount, StageFigure, WonSeries, pipeline_figures, report_for, won_series
from handlers.values import to_major
from storage.enums import STAGE_INFO

SIZE_INCHES = (10, 7)
DPI = 100  # 10 x 7 inches at 100 dpi = 1000 x 700 px
FONT = 18
COLOURS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2")


async def report_charts(crm: CRM, actor: Actor, period: Period) -> list[tuple[Path, str]]:
    """The four report charts for a period: (PNG path, caption) each."""
    view = await report_for(crm, actor, period)
    series = await won_series(crm, actor, period)
    folder = _folder(crm)
    label = period.label
    jobs = [
        (draw_funnel, view.pipeline, "Pipeline by stage (now)"),
        (draw_won, series, f"Won per {series.unit} · {label}"),
        (draw_sources, view.new_leads, f"New leads by source · {label}"),
        (draw_collections, (view.due, view.collected, view.overdue), f"Collections · {label}"),
    ]
    out = []
    for draw, data, caption in jobs:
        path = folder / f"{draw.__name__.removeprefix('draw_')}-{actor.user_id}-{uuid.uuid4().hex[:8]}.png"
        await asyncio.to_thread(draw, data, caption, path)
        out.append((path, caption))
    return out


async def pipeline_chart(crm: CRM, actor: Actor) -> Path:
    """The open pipeline as a funnel image (the /pipeline button)."""
    figures = await pipeline_figures(crm, actor)
    path = _folder(crm) / f"pipeline-{actor.user_id}-{uuid.uuid4().hex[:8]}.png"
    await asyncio.to_thread(draw_funnel, figures, "Pipeline by stage", path)
    return path


def draw_funnel(figures: tuple[StageFigure, ...], title: str, path: Path) -> Path:
    """Horizontal bars, first stage on top, each labelled with its count and value."""
    fig, ax = _figure(title)
    if figures:
        labels = [STAGE_INFO[f.stage].label for f in figures][::-1]
        counts = [f.count for f in figures][::-1]
        bars = ax.barh(labels, counts, color=COLOURS[0])
        for bar, f in zip(bars, figures[::-1]):
            money = ", ".join(m.format() for m in f.amounts)
            ax.annotate(f" {f.count} · {money}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        va="center", fontsize=FONT - 2)
        ax.set_xlim(0, max(counts) * 1.9)
        ax.set_xlabel("Open deals")
    return _save(fig, ax, path, empty=not figures)


def draw_won(series: WonSeries, title: str, path: Path) -> Path:
    """Won value per bucket, one bar group per currency (currencies are never added up)."""
    fig, ax = _figure(title)
    buckets = sorted({b for b, _, _ in series.points})
    currencies = sorted({c for _, c, _ in series.points})
    width = 0.8 / max(len(currencies), 1)
    fmt = "%d %b" if series.unit == "week" else "%b %Y"
    for i, cur in enumerate(currencies):
        values = {b: float(to_major(v, cur)) for b, c, v in series.points if c == cur}
        xs = [j + i * width for j in range(len(buckets))]
        ax.bar(xs, [values.get(b, 0) for b in buckets], width, label=cur, color=COLOURS[i % len(COLOURS)])
    if buckets:
        ax.set_xticks([j + width * (len(currencies) - 1) / 2 for j in range(len(buckets))])
        ax.set_xticklabels([b.strftime(fmt) for b in buckets], rotation=30, ha="right")
        ax.legend(fontsize=FONT - 2)
        ax.set_ylabel("Won value")
    return _save(fig, ax, path, empty=not buckets)


def draw_sources(new_leads: tuple[tuple[str, int], ...], title: str, path: Path) -> Path:
    fig, ax = _figure(title)
    if new_leads:
        labels = [src for src, _ in new_leads][::-1]
        counts = [n for _, n in new_leads][::-1]
        bars = ax.barh(labels, counts, color=COLOURS[1])
        ax.bar_label(bars, padding=4, fontsize=FONT - 2)
        ax.set_xlim(0, max(counts) * 1.2)
        ax.set_xlabel("New leads")
    return _save(fig, ax, path, empty=not new_leads)


def draw_collections(data: tuple[tuple[Amount, ...], ...], title: str, path: Path) -> Path:
    """Due, collected and overdue side by side, per currency."""
    due, collected, overdue = data
    fig, ax = _figure(title)
    currencies = sorted({a.currency for group in data for a in group})
    width = 0.27
    for i, (name, group) in enumerate((("Due", due), ("Collected", collected), ("Overdue", overdue))):
        by_cur = {a.currency: float(to_major(a.minor, a.currency)) for a in group}
        xs = [j + i * width for j in range(len(currencies))]
        ax.bar(xs, [by_cur.get(c, 0) for c in currencies], width, label=name, color=COLOURS[i])
    if currencies:
        ax.set_xticks([j + width for j in range(len(currencies))])
        ax.set_xticklabels(currencies)
        ax.legend(fontsize=FONT - 2)
    return _save(fig, ax, path, empty=not currencies)


def _figure(title: str):
    from matplotlib.figure import Figure  # lazy: see the module docstring

    fig = Figure(figsize=SIZE_INCHES, dpi=DPI)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=FONT + 4, pad=16)
    ax.tick_params(labelsize=FONT)
    ax.xaxis.label.set_size(FONT)
    ax.yaxis.label.set_size(FONT)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _save(fig, ax, path: Path, *, empty: bool) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if empty:
        ax.text(0.5, 0.5, "Nothing in this period", ha="center", va="center", fontsize=FONT + 2,
                transform=ax.transAxes, color="#6b7280")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(path)
    return path


def _folder(crm: CRM) -> Path:
    folder = Path(crm.settings.data_dir) / "charts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
