"""Charts for the Word/PDF report, drawn with matplotlib (no screen needed) as PNG bytes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display
import matplotlib.pyplot as plt

from formtool.packs.figures import GRADES, MET, PmuFigures

GRADE_COLOURS = ("#1a7f37", "#57ab5a", "#d4a72c", "#e36209", "#cf222e")
MET_COLOURS = ("#1a7f37", "#d4a72c", "#cf222e")
SHORT = {
    "Requires Improvement with elements of good practice": "RI with elements\nof good practice",
    "Requires Improvement": "Requires\nImprovement",
}


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(
        out, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None}
    )  # no version stamp: stable bytes
    plt.close(fig)
    return out.getvalue()


def grade_distribution(f: PmuFigures) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3))
    counts = [f.grades.get(g, 0) for g in GRADES]
    ax.bar([SHORT.get(g, g) for g in GRADES], counts, color=GRADE_COLOURS)
    ax.set_ylabel("Audits")
    ax.set_title(f"Grades, all teams ({sum(counts)} graded audits)")
    ax.tick_params(axis="x", labelsize=8)
    for i, n in enumerate(counts):
        ax.annotate(str(n), (i, n), ha="center", va="bottom", fontsize=8)
    return _png(fig)


def grades_by_team(f: PmuFigures) -> bytes:
    teams = sorted(f.grades_by_team)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * max(1, len(teams))))
    left = [0] * len(teams)
    for grade, colour in zip(GRADES, GRADE_COLOURS, strict=True):
        values = [f.grades_by_team[t].get(grade, 0) for t in teams]
        ax.barh(teams, values, left=left, color=colour, label=SHORT.get(grade, grade))
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("Audits")
    ax.set_title("Grades by team")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, not over, bars
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def kss_met(f: PmuFigures) -> bytes:
    domains = list(f.kss)
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.35 * max(1, len(domains))))
    labels = [d.upper().replace("KSS", "KSS ") for d in domains]
    left = [0.0] * len(domains)
    for judgement, colour in zip(MET, MET_COLOURS, strict=True):
        shares = [
            100 * f.kss[d].get(judgement, 0) / max(1, sum(f.kss[d].values())) for d in domains
        ]
        ax.barh(labels, shares, left=left, color=colour, label=judgement)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of audits")
    ax.set_title("Knowledge and Skills Statements: met / partially met / not met")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, not over, bars
    return _png(fig)


def trend(f: PmuFigures) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 2.8))
    labels = [p["period"] for p in f.trend]
    for key, label, colour in (
        ("good_or_better", "Good or better", GRADE_COLOURS[1]),
        ("requires_improvement", "Requires improvement", GRADE_COLOURS[3]),
        ("inadequate", "Inadequate", GRADE_COLOURS[4]),
    ):
        ax.plot(labels, [p[key] for p in f.trend], marker="o", color=colour, label=label)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of graded audits")
    ax.set_title("Trend against previous periods")
    ax.legend(fontsize=7)
    return _png(fig)
