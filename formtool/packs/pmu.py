"""The Performance Management Unit pack: a Word/PDF report with charts and an Excel workbook
with native charts, for a month, quarter or financial year.

No child names, dates of birth or free text unless `include_names` is set; the workbook
identifies cases by case number only. With `aggregate_only` (the web workspace's viewers) the
report and workbook carry figures alone: every list of audits, cases or actions is left out,
not blanked, and one line says the case-level detail is in the officers' pack. Every text
cell is written as text, so an auditor's comment that starts with "=" can never run as a
formula. Council name and protective marking head every page and sheet.

The case-file figures count case-file audits alone; the programme's other QA activities follow
under "Other QA activities", a part per activity that had audits in the period (its runs,
counts, completion and findings: seed 004's prevalence sentences, counts for family feedback;
for supervision audits and observations, whose results about a member of staff are staff data
and never named here, judgements and themes only from the activity's minimum base).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from formtool.definitions.scales import OUTCOMES
from formtool.packs import charts
from formtool.packs.figures import (
    FAVOURABLE,
    UNFAVOURABLE,
    ActivityFigures,
    Feedback,
    PmuFigures,
    ToolFindings,
    concerns_line,
    load_figures,
    pct,
    prevalence,
)
from formtool.packs.render import Document, Part, Table, to_docx, to_pdf
from formtool.packs.standing import charted
from formtool.packs.summary import (
    EXEMPTED,
    FILED,
    PREPARED,
    allocation_line,
    grades_line,
    not_charted,
    team_table,
    too_few_to_chart,
    trend_gap,
    trend_too_few,
)
from formtool.packs.workbook import write_workbook
from formtool.periods import period_for, show_date
from formtool.programme.followup import number_words
from formtool.programme.moderation import target_words
from formtool.settings import DEFAULT, Settings
from formtool.store import Store

REPORT_ROWS = 25  # longer lists belong in the workbook, not a report for senior managers
OFFICERS_PACK = (
    "Figures only: case numbers, re-audit dates and the action tracker are in the officers' pack."
)


def _date(day: object) -> str:
    return f"{show_date(day)}" if isinstance(day, dt.date) else ""


def _summary(f: PmuFigures, aggregate_only: bool) -> Part:
    lines = [allocation_line(f), concerns_line(f), *_elsewhere(f)]
    if f.exempted and not aggregate_only:
        shown = [a.audit_id for a in f.exempted[:REPORT_ROWS]]
        more = f" and {len(f.exempted) - REPORT_ROWS} more" if len(f.exempted) > REPORT_ROWS else ""
        lines.append(f"Exempted, not counted as due: {', '.join(shown)}{more}.")
    graded = grades_line(f)
    if graded:
        lines.append(graded)
    if aggregate_only:
        lines.append(OFFICERS_PACK)
    headings, rows = team_table(f)
    return Part(
        "Summary",
        paragraphs=lines,
        tables=[
            Table(
                headings,
                tuple(tuple(str(v) for v in row) for row in rows),
                numeric=tuple(range(1, len(headings))),
            )
        ],
    )


def _grades(f: PmuFigures) -> list[Part]:
    parts = []
    for sid, counts in f.grades.items():
        scale = f.scales[sid]
        total = sum(counts.values())
        title = "Grades" if len(f.grades) == 1 else f"Grades ({scale.label})"
        tools = sorted(t for t, c in f.grades_by_tool.items() if set(c) <= set(scale.choices))
        by_team = {  # this scale's grades of each team that has any
            t: on
            for t, c in sorted(f.grades_by_team.items())
            if (on := Counter({g: c[g] for g in scale.choices if c.get(g)}))
        }
        images, alts, notes = [], [], []
        if charted(total, f.min_base):
            drawn = [counts.get(g, 0) for g in scale.choices]
            named = f"Grades, all tools ({total} graded audits)"
            images.append(charts.grade_chart(list(scale.choices), drawn, named))
            alts.append(charts.grade_alt(scale.choices, drawn, named))
        else:
            notes.append(too_few_to_chart("audits were graded", "the grades", total, f.min_base))
        image, alt, note = _by_team(by_team, scale.choices, f.min_base)
        images += image
        alts += alt
        notes += note
        shown = charted(total, f.min_base)  # a share only from the minimum base
        parts.append(
            Part(
                title,
                paragraphs=notes,
                images=images,
                alts=alts,
                tables=[
                    Table(
                        ("Grade", "Audits", *(("Share",) if shown else ())),
                        tuple(
                            (
                                g,
                                str(counts.get(g, 0)),
                                *((pct(counts.get(g, 0), total),) if shown else ()),
                            )
                            for g in scale.choices
                        ),
                        numeric=(1, 2) if shown else (1,),
                    ),
                    _counts_table("Tool", tools, f.grades_by_tool, scale.choices),
                    _counts_table("Team", list(by_team), by_team, scale.choices),
                ],
            )
        )
    return parts


def _counts_table(
    what: str, names: list[str], grades: dict[str, Counter[str]], choices: tuple[str, ...]
) -> Table:
    """Grades by tool or team: counts for every base, so nothing a chart leaves out is lost."""
    return Table(
        (what, *choices, "Graded"),
        tuple(
            (
                name,
                *(str(grades[name].get(g, 0)) for g in choices),
                str(sum(grades[name].values())),
            )
            for name in names
        ),
        numeric=tuple(range(1, len(choices) + 2)),
    )


#: The tallest grades-by-team chart (inches, as charts.stacked_figure sizes it): a region's
#: database holds a hundred teams, drawn in as many charts as keep each within the page.
CHART_INCHES = 8.5


def _by_team(
    by_team: dict[str, Counter[str]], choices: tuple[str, ...], min_base: int
) -> tuple[list[bytes], list[str], list[str]]:
    """The grades-by-team chart of the teams with at least the minimum base graded, its
    alternative text, and a line naming those left out."""
    graded = {t: sum(c.values()) for t, c in by_team.items()}
    drawn = [t for t in by_team if charted(graded[t], min_base)]
    left_out = [(t, graded[t]) for t in by_team if t not in drawn]
    notes = [not_charted("graded audits in a team", left_out, min_base)] if left_out else []
    images, alts = [], []
    parts = _pages_of(drawn)
    for n, teams in enumerate(parts, 1):
        title = "Grades by team" + (f" ({n} of {len(parts)})" if len(parts) > 1 else "")
        images.append(
            charts.stacked_by_group(
                teams,
                list(choices),
                {g: [by_team[t].get(g, 0) for t in teams] for g in choices},
                title,
            )
        )
        alts.append(charts.stacked_alt(teams, choices, title))
    return images, alts, notes


def _pages_of(teams: list[str]) -> list[list[str]]:
    """The teams in runs that each fit one chart on a page (charts.stacked_figure: 1 inch, and
    0.3 a label line and 0.1 a bar)."""
    runs: list[list[str]] = [[]] if teams else []
    inches = 1.0
    for team in teams:
        needs = 0.3 * (charts.wrap(team, 38).count("\n") + 1) + 0.1
        if runs[-1] and inches + needs > CHART_INCHES:
            runs.append([])
            inches = 1.0
        runs[-1].append(team)
        inches += needs
    return runs


def _domains(f: PmuFigures) -> list[Part]:
    completed = {t.name: t.audits for t in f.findings}
    parts = []
    for tool, domains in f.domains.items():
        choices = domains[0][2]
        drawn = [d for d in domains if charted(sum(d[1].values()), f.min_base)]
        audits = completed.get(tool, 0)
        notes, images, alts = [], [], []
        if not charted(audits, f.min_base):
            what = f"{tool} audits were completed"
            notes.append(too_few_to_chart(what, "the domains judged", audits, f.min_base))
        elif not drawn:
            notes.append(
                f"No domain of the {tool} tool was judged (N/A left out) in at least "
                f"{f.min_base} audits: too few to chart; the table gives the counts."
            )
        else:
            left_out = [(d[0], sum(d[1].values())) for d in domains if d not in drawn]
            if left_out:
                notes.append(not_charted("audits judged, N/A left out", left_out, f.min_base))
            named = f"{tool}: {' / '.join(choices).lower()}"
            images.append(
                charts.stacked_by_group(
                    [d[0] for d in drawn],
                    list(choices),
                    {c: [d[1].get(c, 0) for d in drawn] for c in choices},
                    named,
                    percent=True,
                )
            )
            alts.append(charts.stacked_alt([d[0] for d in drawn], choices, named, percent=True))
        parts.append(
            Part(
                f"{tool}: domains judged",
                paragraphs=notes,
                images=images,
                alts=alts,
                tables=[
                    Table(
                        ("Domain", *choices, "Judged"),
                        tuple(
                            (label, *(str(c.get(x, 0)) for x in choices), str(sum(c.values())))
                            for label, c, _ in domains
                        ),
                        numeric=tuple(range(1, len(choices) + 2)),
                    )
                ],
            )
        )
    return parts


def _findings(tool: ToolFindings, base: int) -> list[str]:
    if tool.audits < base:
        return [
            f"Too few {tool.name} audits were completed ({tool.audits}; at least {base} "
            "are needed) to report findings."
        ]
    strong = [f.sentence(FAVOURABLE) for f in tool.strongest()]
    weak = [f.sentence("unfavourable") for f in tool.weakest()]
    return ([f"Strengths ({tool.name}, {tool.audits} audits):", *strong] if strong else []) + (
        [f"Areas for development ({tool.name}):", *weak] if weak else []
    )


def _prevalence(f: PmuFigures) -> Part:
    bullets = [line for tool in f.findings for line in _findings(tool, f.min_base)]
    return Part(
        "What the audits found",
        paragraphs=[
            "Findings are per tool, from complete audits only, and respect each question's "
            "favourable answer; N/A and neutral questions are left out of the counts."
        ],
        bullets=bullets or ["No complete audits in this period."],
    )


def _moderation_part(f: PmuFigures) -> Part:
    m = f.moderation
    return Part(
        "Moderation",
        paragraphs=[
            f"{m['moderated']} of {m['graded']} graded audits were moderated "
            f"({pct(m['moderated'], m['graded'])} achieved; {target_words(f.policy)}). "
            f"Moderators agreed with the auditor's grade in {m['agreed']} "
            f"({pct(m['agreed'], m['moderated'])}); {m['up']} grade(s) moved up and {m['down']} "
            + (
                f"down, and {m['other']} changed on a scale that is not ranked."
                if m.get("other")
                else "down."
            )
        ],
    )


#: The follow-up table's columns after case number, tool, team and graded, with the
#: figures' keys they show: each step's date and what happened (held, "not yet", "late").
_STEPS = (
    ("Review by", "review_by"),
    ("Review held", "review"),
    ("Re-audit by", "reaudit_by"),
    ("Re-audited", "reaudit"),
    ("Head of Service meeting", "hos"),
)


def _follow_up(f: PmuFigures, aggregate_only: bool) -> Part:
    scale = f.main_scale
    names = " or ".join(scale.follow_up) if scale else "a follow-up grade"
    rule = f.policy.reaudit
    # aggregate: the count alone, as the list names cases
    shown = [] if aggregate_only else sorted(f.follow_up, key=lambda i: str(i["reaudit_by"]))
    if not f.follow_up:
        note = f"No complete audit was graded {names.lower()}."
    elif len(f.follow_up) > REPORT_ROWS and not aggregate_only:
        note = (
            f"{len(f.follow_up)} audits were graded {names.lower()}; the {REPORT_ROWS} with "
            "the earliest re-audit dates are listed, all of them on the workbook's "
            "Re-audits sheet."
        )
    else:
        note = f"{len(f.follow_up)} audit(s) were graded {names.lower()}."
    steps = _STEPS if rule else ()
    rows = tuple(
        (
            str(i["case_number"]),
            str(i["tool"]),
            str(i["team"]),
            _date(i["graded_on"]),
            *(_date(i[key]) or str(i[key]) for _, key in steps),
        )
        for i in shown[:REPORT_ROWS]
    )
    heading = f"Graded {names}"
    if rule:
        heading += (
            f": review at {number_words(rule.review_weeks, 'week')}, re-audit within "
            f"{number_words(rule.within_months, 'month')}"
        )
    headings = ("Case number", "Tool", "Team", "Graded", *(h for h, _ in steps))
    return Part(
        heading,
        paragraphs=[note, *_late(f)] if rule else [note, _NO_FOLLOW_UP],
        tables=[Table(headings, rows)] if rows else [],
    )


_NO_FOLLOW_UP = "The programme sets no review meeting or re-audit after such a grade."


def _late(f: PmuFigures) -> list[str]:
    """How many steps are late as of the pack's date: a count, so viewers see it too."""
    reviews = sum(str(i["review"]).endswith("late") for i in f.follow_up)
    reaudits = sum(str(i["reaudit"]).endswith("late") for i in f.follow_up)
    if not (reviews or reaudits):
        return []
    return [
        f"Late as of {_date(f.as_of)}: {reviews} review meeting(s) and {reaudits} re-audit(s) "
        "(held or done after their date, or not yet and past it)."
    ]


def _share(value: object) -> float | None:
    """A trend point's percentage; None for a period without audits (a gap, not 0%)."""
    return float(value) if isinstance(value, int | float) else None


def _trend(f: PmuFigures) -> Part:
    scale = f.main_scale
    labels = [scale.band_label(o) if scale else o for o in OUTCOMES]
    series = {
        label: [_share(p[o]) for p in f.trend] for label, o in zip(labels, OUTCOMES, strict=True)
    }

    def shown(point: dict[str, object], value: object) -> str:
        return trend_gap(point) if value is None else f"{value}%"

    notes, images, alts = [], [], []
    if any(v is not None for values in series.values() for v in values):
        gaps = [trend_gap(p) for p in f.trend]
        periods = [str(p["period"]) for p in f.trend]
        title, ylabel = "Trend against previous periods", "% of graded audits"
        images.append(charts.trend_chart(periods, series, title, ylabel, gaps))
        alts.append(charts.trend_alt(periods, list(series), title, ylabel))
    else:
        notes.append(trend_too_few(f.min_base))
    if any(p["graded"] and p[OUTCOMES[0]] is None for p in f.trend):  # graded, too few
        notes.append(f"A period's shares are given only from {f.min_base} graded audits.")
    return Part(
        "Trend",
        paragraphs=notes,
        images=images,
        alts=alts,
        tables=[
            Table(
                ("Period", "Audits", "Graded", *labels),
                tuple(
                    (
                        str(p["period"]),
                        str(p["audits"]),
                        str(p["graded"]),
                        *(shown(p, p[o]) for o in OUTCOMES),
                    )
                    for p in f.trend
                ),
                numeric=tuple(range(1, 3 + len(labels))),
            )
        ],
    )


def _revisions(f: PmuFigures, aggregate_only: bool) -> Part:
    """Why this pack may differ from one produced before: audits reopened after acceptance."""
    count = len({audit_id for audit_id, _ in f.reopened})
    text = (
        f"This report is revised: {count} audit(s) of the period were reopened after they had "
        "been accepted, so their answers, grades or moderation may differ from a report "
        "produced before."
    )
    listed = [] if aggregate_only else [f"{a}: reopened {_date(at.date())}" for a, at in f.reopened]
    return Part("Revisions", paragraphs=[text], bullets=listed)


# --- the programme's other QA activities ----------------------------------------------------

ACTIVITIES = "Other QA activities"
FINDINGS_SHOWN = 3  # strengths and areas for development per tool, as for case-file audits


def _elsewhere(f: PmuFigures) -> list[str]:
    """The summary's word on the activity audits its figures leave out (none in silence)."""
    if not f.activity_audits:
        return []
    each = ", ".join(f"{a.name}: {len(a.audits)}" for a in f.activities)
    return [
        f"A further {len(f.activity_audits)} audit(s) of the programme's other QA activities "
        f"({each}) are not counted in these figures: see {ACTIVITIES}."
    ]


def _activity_parts(f: PmuFigures) -> list[Part]:
    """The programme's other activities: what the policy names, then a part for each that had
    audits in the period; nothing when none had (the pack is then the case-file audit's)."""
    if not f.activities:
        return []
    named = [a.name for a in f.policy.activities]
    ran = {a.id for a in f.activities}
    idle = [a.name for a in f.policy.activities if a.id not in ran]
    intro = [
        (
            f"Besides the monthly case file audit, the programme ({f.policy.name}) names "
            f"{len(named)} QA activit{'y' if len(named) == 1 else 'ies'}: {', '.join(named)}."
            if named
            else f"The programme ({f.policy.name}) names no QA activity besides the monthly "
            "case file audit; these audits were made under an earlier version of it."
        ),
        "Their audits are counted here, apart from the case file audit figures above. Results "
        "about a member of staff (supervision audits, observations) are staff data: no one "
        "is named, and judgements and themes are given only from the minimum base.",
    ]
    if idle:
        intro.append(f"Not run in {f.period.label}: {', '.join(idle)}.")
    return [Part(ACTIVITIES, paragraphs=intro), *(_activity_part(a) for a in f.activities)]


def _activity_part(a: ActivityFigures) -> Part:
    t = a.counts
    kinds = ((t.prepared, PREPARED), (t.filed, FILED), (t.exempted, EXEMPTED))
    counts = (
        f"{t.allocated} audit(s) of {_subject_words(a)} were allocated: {t.completed} "
        f"complete, {t.outstanding} outstanding"
        + "".join(f", {n} {words}" for n, words in kinds if n)
        + f". Completion: {t.completed} of the {t.due} due ({pct(t.completed, t.due)})."
    )
    raised = a.concerns["raised"]
    lines = [
        f"Runs: {'; '.join(a.runs)}." if a.runs else "Runs: none recorded.",
        counts,
        f"Immediate concerns raised: {raised}"
        + (f" ({a.concerns['open']} without action recorded)." if a.concerns["open"] else "."),
    ]
    tables = [_judgements(a)] if a.grades and a.scale else []
    judged = sum(a.grades.values())
    if a.staff and tables and judged < a.min_base:  # a member of staff's own result, nearly
        tables = []
        lines.append(
            f"Overall judgements are not shown for fewer than {a.min_base} members of staff "
            f"({judged} judged): one person's result could be read from them."
        )
    bullets: list[str] = []
    for feedback in a.feedback:
        lines.append(_feedback_words(feedback))
        tables += _feedback_tables(feedback)
    for tool in a.findings:
        bullets += _activity_findings(tool, a.min_base)
    if not a.completed:
        lines.append("No audit is complete yet, so nothing found to report.")
    return Part(a.name, paragraphs=lines, tables=tables, bullets=bullets)


def _subject_words(a: ActivityFigures) -> str:
    """ "7 cases" or "4 practitioners": members of staff are counted, never named."""
    kinds = {x.subject_kind for x in a.audits if x.subject_kind != "case"}
    noun = kinds.pop() if len(kinds) == 1 else "member of staff" if kinds else "case"
    if a.subjects != 1:
        noun = "members of staff" if noun == "member of staff" else f"{noun}s"
    return f"{a.subjects} {noun}"


def _judgements(a: ActivityFigures) -> Table:
    """The overall judgements of the complete audits: a share only from the minimum base."""
    assert a.scale is not None
    total = sum(a.grades.values())
    shown = total >= a.min_base
    return Table(
        ("Overall judgement", "Audits", *(("Share",) if shown else ())),
        tuple(
            (g, str(a.grades[g]), *((pct(a.grades[g], total),) if shown else ()))
            for g in a.scale.choices
        ),
        numeric=(1, 2) if shown else (1,),
    )


def _activity_findings(tool: ToolFindings, base: int) -> list[str]:
    """Seed 004's prevalence sentences: the strongest and weakest answers across the cases."""
    if not tool.findings:
        return [f"No question of the {tool.name} tool was answered in a complete audit."]
    noun = tool.noun
    strong = [prevalence(x, FAVOURABLE, base, noun) for x in tool.strongest(FINDINGS_SHOWN)]
    weak = [prevalence(x, UNFAVOURABLE, base, noun) for x in tool.weakest(FINDINGS_SHOWN)]
    head = f"({tool.name}, {tool.audits} {noun[0] if tool.audits == 1 else noun[1]})"
    return ([f"Strengths {head}:", *strong] if strong else []) + (
        [f"Areas for development {head}:", *weak] if weak else []
    )


def _feedback_words(feedback: Feedback) -> str:
    return (
        f"{feedback.records} feedback record(s) complete ({feedback.form.name}); in "
        f"{feedback.gave} of them the child/young person or family gave their views."
    )


def _feedback_tables(feedback: Feedback) -> list[Table]:
    """Who gave feedback and how (a table each), then the questions' answers, one table for
    each scale the questions share."""
    tables = [
        Table((label, "Records"), tuple((k, str(n)) for k, n in counts), numeric=(1,))
        for label, counts in feedback.facts
    ]
    groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for label, counts in feedback.answers:
        answers = tuple(k for k, _ in counts)
        groups.setdefault(answers, []).append((label, *(str(n) for _, n in counts)))
    for answers, rows in groups.items():
        numeric = tuple(range(1, len(answers) + 1))
        tables.append(Table(("Question", *answers), tuple(rows), numeric=numeric))
    return tables


def pmu_document(
    f: PmuFigures, settings: Settings = DEFAULT, aggregate_only: bool = False
) -> Document:
    """The report's content, shared by the Word and PDF renderings. `aggregate_only`: figures
    without a case number (for the web workspace's viewers)."""
    t = f.action_totals
    actions = Part(
        "Actions",
        paragraphs=[
            f"{t['raised']} actions were raised in complete audits: {t['completed']} signed off "
            f"and {t['open']} open ({t['overdue']} of them overdue as of {_date(f.as_of)})."
        ],
    )
    scope = (
        "figures only, no case-level detail" if aggregate_only else "case numbers only, no names"
    )
    parts = [
        _summary(f, aggregate_only),
        *_grades(f),
        *_domains(f),
        _prevalence(f),
        _moderation_part(f),
        actions,
        _follow_up(f, aggregate_only),
        _trend(f),
        *_activity_parts(f),
    ]
    revised = " (revised)" if f.reopened else ""
    if f.reopened:
        parts.insert(1, _revisions(f, aggregate_only))
    return Document(
        f"Case file audit report: {f.period.label}{revised}",
        f"{f.period.span} · Performance Management Unit · as of {_date(f.as_of)}",
        parts,
        f"PMU pack {f.period.label} · {scope}",
        settings.council,
        settings.marking,
    )


def pmu_pack(
    db: Store,
    out_dir: Path,
    month: str | None = None,
    quarter: str | None = None,
    year: str | None = None,
    include_names: bool = False,
    as_of: dt.date | None = None,
    settings: Settings = DEFAULT,
    aggregate_only: bool = False,
) -> list[Path]:
    """Write the PMU report (.docx and .pdf) and workbook (.xlsx) for one period, and a CSV
    beside the workbook of a sheet too long for Excel (the answers of a region's year);
    `aggregate_only`: figures alone, no case numbers (see the module docstring)."""
    figures = load_figures(db, period_for(month, quarter, year), as_of, min_base=settings.min_base)
    document = pmu_document(figures, settings, aggregate_only)
    stem = f"pmu-{figures.period.label}"
    files = {f"{stem}.docx": to_docx(document), f"{stem}.pdf": to_pdf(document)}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    # the workbook, and a CSV beside it of any sheet too long for Excel (a year's answers)
    book = out_dir / f"{stem}.xlsx"
    return written + write_workbook(figures, book, settings, include_names, aggregate_only)
