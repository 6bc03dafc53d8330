"""The PMU summary's figures in words, and its team table, shared by the report and the
workbook so the two say the same; every sentence adds up to its total (figures.py's Tally):
allocated is completed, outstanding, prepared, filed and exempted; completed is graded and
not graded (with why); a chart's place says when its base is too small to draw it.
"""

from __future__ import annotations

from collections.abc import Sequence

from formtool.definitions.scales import OUTCOMES
from formtool.packs.activity_figures import listed
from formtool.packs.figures import PmuFigures, pct
from formtool.packs.standing import charted
from formtool.periods import show_date

ALL_TEAMS = "All teams"
#: The team table's columns after the team: figures.Tally's fields and their headings.
TEAM_COLUMNS = (
    ("allocated", "Allocated"),
    ("completed", "Completed"),
    ("outstanding", "Outstanding"),
    ("prepared", "Prepared, to be picked for audit"),
    ("filed", "Filed unaudited"),
    ("exempted", "Exempted"),
    ("overdue", "Overdue (of outstanding)"),
)
OPTIONAL_COLUMNS = ("prepared", "filed", "exempted")  # shown when the period has any
EXEMPTED = "exempted (agreed not to be done)"
FILED = "prepared and filed without an audit (not picked for audit)"
PREPARED = "prepared and waiting to be picked for audit"


def team_table(f: PmuFigures) -> tuple[tuple[str, ...], list[tuple[str | int, ...]]]:
    """Headings and rows, the last "All teams": the summary's headline. Completed,
    Outstanding and the kinds the period has add up to Allocated; Overdue is a part of
    Outstanding."""
    shown = [
        (key, heading)
        for key, heading in TEAM_COLUMNS
        if key not in OPTIONAL_COLUMNS or getattr(f.totals, key)
    ]
    rows: list[tuple[str | int, ...]] = [
        (team, *(getattr(t, key) for key, _ in shown))
        for team, t in (*f.by_team.items(), (ALL_TEAMS, f.totals))
    ]
    return ("Team", *(heading for _, heading in shown)), rows


def _are(count: int) -> str:
    return "is" if count == 1 else "are"


def allocation_line(f: PmuFigures) -> str:
    """The headline: every audit of the period counted once, as the team table's total row.
    Exempted audits and prepared files filed without an audit are not due, so the completion
    rate leaves them out."""
    t = f.totals
    text = f"{t.allocated} audits were allocated for {f.period.label} ({f.period.span})"
    not_due = [(n, words) for n, words in ((t.exempted, EXEMPTED), (t.filed, FILED)) if n]
    if len(not_due) == 1:
        text += f" and {not_due[0][0]} of them {not_due[0][1]}"
    elif not_due:
        each = [f"{n} {words}" for n, words in not_due]
        text += f" and {t.allocated - t.due} of them are not due: {listed(each, 'and')}"
    if not_due:
        done = f"{t.completed} of the {t.due} due were completed ({pct(t.completed, t.due)})"
    else:
        done = f"{t.completed} were completed ({pct(t.completed, t.allocated)})"
    owed = f"{t.outstanding} {_are(t.outstanding)} outstanding"
    if t.outstanding:
        owed += (
            f" ({t.not_returned} not yet returned and {t.started} in progress or back with the "
            f"auditor for amendment; {t.overdue} of them overdue as of {show_date(f.as_of)})"
        )
    parts = [done, owed]
    if t.prepared:
        parts.append(f"{t.prepared} {_are(t.prepared)} {PREPARED}")
    return f"{text}; {listed(parts, 'and')}."


def grades_line(f: PmuFigures) -> str | None:
    """The completed audits' grades on the main scale, every band with its count (a share
    only from the minimum base), and those not graded on it with why; None before any
    audit is complete."""
    completed = len(f.completed)
    if not completed:
        return None
    ungraded = f.ungraded()
    why = listed(
        [f"{n} {tool} ({reason})" for (tool, reason), n in sorted(ungraded.items())], "and"
    )
    scale = f.main_scale
    if scale is None:
        return f"None of the {completed} completed audits was graded: {why}."
    counts = f.grades[scale.id]
    total = sum(counts.values())
    shown = charted(total, f.min_base)
    bands = [(sum(counts[g] for g in getattr(scale, o)), scale.band_label(o)) for o in OUTCOMES]
    each = [f"{n}{f' ({pct(n, total)})' if shown else ''} {label.lower()}" for n, label in bands]
    other = total - sum(n for n, _ in bands)
    if other:
        each.append(f"{other} with a grade in no band")
    text = (
        f"Of the {completed} completed audits, {total} were graded (moderated grades used "
        f"where moderated): {listed(each, 'and')}"
    )
    if not shown:
        text += f", too few to give a proportion (at least {f.min_base} needed)"
    if scale.follow_up and set(scale.follow_up) != set(scale.unfavourable):
        flagged = sum(counts[g] for g in scale.follow_up)
        text += f"; {flagged} graded {' or '.join(scale.follow_up)} need a follow-up"
    if ungraded:
        count = sum(ungraded.values())
        text += f"; {count} {'was' if count == 1 else 'were'} not graded on this scale: {why}"
    return text + ". Drafts and returns sent back for amendment are not counted."


def too_few_to_chart(what: str, chart: str, count: int, min_base: int) -> str:
    """What stands where a chart of too small a base would have been: "Too few Supported
    Lodgings audits were completed to chart the domains judged (2; at least 5 needed)"."""
    return (
        f"Too few {what} to chart {chart} ({count}; at least {min_base} needed): the table "
        "gives the counts."
    )


def trend_too_few(min_base: int) -> str:
    """Where the trend chart would have been when no period has the minimum base graded."""
    return (
        f"Too few audits were graded in any period to chart the trend (at least {min_base} "
        "needed in a period): the table gives the counts."
    )


def not_charted(what: str, left_out: Sequence[tuple[str, int]], min_base: int) -> str:
    """The groups a chart leaves out for too small a base, with their counts."""
    named = ", ".join(f"{label} ({n})" for label, n in left_out)
    return (
        f"Not charted, too few {what} (at least {min_base} needed): {named}. The table gives "
        "the counts."
    )


def trend_gap(point: dict[str, object]) -> str:
    """Why a trend point has no share: no audits, none graded, or too few graded (below
    the minimum base)."""
    if not point["audits"]:
        return "no audits"
    return "too few graded" if point["graded"] else "none graded"


__all__ = [
    "ALL_TEAMS",
    "allocation_line",
    "grades_line",
    "not_charted",
    "team_table",
    "too_few_to_chart",
    "trend_gap",
    "trend_too_few",
]
