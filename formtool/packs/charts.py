"""Charts for the Word/PDF report, drawn with matplotlib (no screen needed) as PNG bytes.

Each chart takes plain data (labels and numbers), so the figures module decides what is
counted and this one only how it looks. Colours are the Okabe-Ito colour-blind-safe palette,
ordered best to worst for ordered scales; bars carry hatching and lines carry markers and dash
patterns as well, so a chart printed in black and white still reads. Counts have whole-number
axes. The same data gives the same PNG bytes (no version or time stamp).

`*_figure` builds the matplotlib Figure (tests inspect its axes); `*_chart` returns the PNG;
`*_alt` the chart's alternative text, which says what it shows for a reader who cannot see it
(the table after each chart in the report gives every figure).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

ORDERED = ("#0072B2", "#56B4E9", "#F0E442", "#E69F00", "#D55E00")  # best → worst
EXTRA = ("#009E73", "#CC79A7", "#999999", "#000000")
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "+++", "---", "ooo")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES: tuple[str | tuple[int, tuple[int, ...]], ...] = (
    "-",
    "--",
    ":",
    "-.",
    (0, (5, 1, 1, 1, 1, 1)),
    (0, (1, 3)),
    (0, (8, 2)),
    (0, (3, 1, 1, 1)),
)
EDGE, GRID, INK = "#333333", "#D9D9D9", "#1A1A1A"
LINES = ("#0072B2", "#E69F00", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#000000")
WIDTH, DPI = 7.0, 150  # inches (the text width of an A4 page with 16 mm margins), dots


def palette(n: int) -> list[str]:
    """n colour-blind-safe colours; up to five spread across best → worst."""
    if n <= 1:
        return list(ORDERED[:1])
    if n <= len(ORDERED):
        return [ORDERED[round(i * (len(ORDERED) - 1) / (n - 1))] for i in range(n)]
    colours = ORDERED + EXTRA
    return [colours[i % len(colours)] for i in range(n)]


def wrap(label: str, width: int = 18) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(
        out, format="png", dpi=DPI, facecolor="white", metadata={"Software": None}
    )  # no version stamp: stable bytes
    return out.getvalue()


def headless_figure(height: float) -> Figure:
    """A Figure the text width wide and `height` inches tall, drawn by Agg, matplotlib's
    raster renderer, which needs no display (CI and servers have none).

    The canvas is given to each figure rather than set with `matplotlib.use("Agg")`, which
    would switch the backend of the whole process, for anyone using pyplot alongside formtool.
    """
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(height: float, title: str) -> tuple[Figure, Axes]:
    fig = headless_figure(height)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold", color=INK)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors=INK)
    ax.set_axisbelow(True)
    return fig, ax


def _legend(fig: Figure) -> None:
    """Beside the plot, never over the bars or lines."""
    fig.legend(
        loc="outside right upper", fontsize=7.5, frameon=False, handlelength=2.6, handleheight=1.4
    )


# --- grades: one bar per category -----------------------------------------------------------


def grade_figure(categories: list[str], counts: list[int], title: str) -> Figure:
    fig, ax = _axes(3.0, title)
    bars = ax.bar(
        range(len(categories)),
        counts,
        color=palette(len(categories)),
        edgecolor=EDGE,
        linewidth=0.6,
        width=0.65,
    )
    ax.bar_label(bars, padding=2, fontsize=8, color=INK)
    ax.set_xticks(range(len(categories)), [wrap(c, 16) for c in categories])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, max([1, *counts]) * 1.18)
    ax.set_ylabel("Audits", fontsize=8)
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    return fig


def grade_chart(categories: list[str], counts: list[int], title: str) -> bytes:
    """Bars, one per category (e.g. grades best → worst), with their counts."""
    return png(grade_figure(categories, counts, title))


def grade_alt(categories: Sequence[str], counts: Sequence[int], title: str) -> str:
    """The bar chart's alternative text: each category with its count."""
    shown = ", ".join(f"{c} {n}" for c, n in zip(categories, counts, strict=True))
    return f"Bar chart, {title}: {shown}."


# --- stacked bars: one per group ------------------------------------------------------------


def _shares(
    groups: Sequence[str], categories: Sequence[str], counts: dict[str, list[int]], percent: bool
) -> dict[str, list[float]]:
    values = {c: [float(v) for v in counts.get(c, [0] * len(groups))] for c in categories}
    if not percent:
        return values
    totals = [sum(values[c][g] for c in categories) for g in range(len(groups))]
    return {
        c: [100 * v / t if t else 0.0 for v, t in zip(values[c], totals, strict=True)]
        for c in categories
    }


def stacked_figure(
    groups: list[str],
    categories: list[str],
    counts: dict[str, list[int]],
    title: str,
    percent: bool = False,
) -> Figure:
    labels = [wrap(g, 38) for g in groups]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig, ax = _axes(1.0 + 0.3 * max(1, lines) + 0.1 * len(groups), title)
    values = _shares(groups, categories, counts, percent)
    left = [0.0] * len(groups)
    widest = max([sum(values[c][g] for c in categories) for g in range(len(groups))] + [1.0])
    for k, (category, colour) in enumerate(zip(categories, palette(len(categories)), strict=True)):
        row = values[category]
        bars = ax.barh(
            range(len(groups)),
            row,
            left=left,
            color=colour,
            edgecolor=EDGE,
            linewidth=0.5,
            hatch=HATCHES[k % len(HATCHES)],
            label=wrap(category, 22),
            height=0.62,
        )
        shown = [
            (f"{v:.0f}%" if percent else f"{v:.0f}") if v >= 0.07 * widest else "" for v in row
        ]
        ax.bar_label(
            bars,
            shown,
            label_type="center",
            fontsize=7,
            color=INK,
            bbox={
                "boxstyle": "round,pad=0.15",
                "facecolor": "white",
                "alpha": 0.85,
                "linewidth": 0,
            },
        )
        left = [a + b for a, b in zip(left, row, strict=True)]
    for g in (g for g, total in enumerate(left) if not total):
        ax.text(0.01 * widest, g, "none recorded", va="center", fontsize=7, color="#666666")
    ax.set_yticks(range(len(groups)), labels)
    ax.invert_yaxis()  # the first group on top
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    if percent:
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_xlabel("Share of audits", fontsize=8)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0, widest * 1.02)
        ax.set_xlabel("Audits", fontsize=8)
    _legend(fig)
    return fig


def stacked_by_group(
    groups: list[str],
    categories: list[str],
    counts: dict[str, list[int]],
    title: str,
    percent: bool = False,
) -> bytes:
    """Horizontal stacked bars, one per group (team or domain), categories in their order;
    counts[category][i] belongs to groups[i]. With `percent`, each bar is shares of 100%."""
    return png(stacked_figure(groups, categories, counts, title, percent))


def stacked_alt(
    groups: Sequence[str], categories: Sequence[str], title: str, percent: bool = False
) -> str:
    """The stacked bar chart's alternative text: its bars and what each is split into."""
    split = "shares of its audits" if percent else "its audits"
    return (
        f"Stacked bar chart, {title}: one bar each for {', '.join(groups)}, {split} split into "
        f"{', '.join(categories)} in that order; the table that follows gives the figures."
    )


# --- trend: one line per series -------------------------------------------------------------


def trend_figure(
    periods: list[str],
    series: dict[str, list[float | None]],
    title: str,
    ylabel: str,
    gaps: Sequence[str] | None = None,
) -> Figure:
    fig, ax = _axes(3.0, title)
    gaps = gaps or ["no audits"] * len(periods)
    empty = [all(values[i] is None for values in series.values()) for i in range(len(periods))]
    for i in (i for i, e in enumerate(empty) if e):
        ax.axvspan(i - 0.4, i + 0.4, color="#EFEFEF", linewidth=0)  # a period with no share
    spread = 0.05 * (len(series) - 1)
    for k, (name, values) in enumerate(series.items()):
        nudge = k * 0.05 - spread / 2  # equal lines side by side, not on top of each other
        ax.plot(
            [i + nudge for i in range(len(periods))],
            [math.nan if v is None else v for v in values],  # NaN: a gap, not a zero
            color=LINES[k % len(LINES)],
            marker=MARKERS[k % len(MARKERS)],
            linestyle=DASHES[k % len(DASHES)],
            linewidth=1.6,
            markersize=5,
            markeredgecolor=EDGE,
            markeredgewidth=0.5,
            label=wrap(name, 22),
            clip_on=False,
        )
    ax.set_xticks(
        range(len(periods)),
        [
            f"{wrap(p, 12)}\n({wrap(gap, 14)})" if e else wrap(p, 12)
            for p, e, gap in zip(periods, empty, gaps, strict=True)
        ],
    )
    ax.set_xlim(-0.6, max(0, len(periods) - 1) + 0.6)
    if "%" in ylabel:
        ax.set_ylim(0, 100)
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(axis="y", color=GRID, linewidth=0.6)
    _legend(fig)
    return fig


def trend_chart(
    periods: list[str],
    series: dict[str, list[float | None]],
    title: str,
    ylabel: str,
    gaps: Sequence[str] | None = None,
) -> bytes:
    """A line per series across periods; None is a period without a share: a gap, labelled
    with `gaps`' words for it (default "no audits")."""
    return png(trend_figure(periods, series, title, ylabel, gaps))


def trend_alt(periods: Sequence[str], series: Sequence[str], title: str, ylabel: str) -> str:
    """The line chart's alternative text: its lines and the periods they cross."""
    span = f"from {periods[0]} to {periods[-1]}" if periods else "with no periods"
    return (
        f"Line chart, {title}: {ylabel}, one line each for {', '.join(series)}, {span}; the "
        "table that follows gives the figures."
    )
