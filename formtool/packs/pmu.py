"""The Performance Management Unit pack: a Word/PDF report with charts and an Excel
workbook with native charts, for a month, quarter or year.

No child names, dates of birth or free text unless `include_names` is set; the workbook
identifies cases by case number only. Every text cell is written as text, so an auditor's
comment that starts with "=" can never run as a formula.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import sqlalchemy as sa

from formtool.packs import charts
from formtool.packs.figures import (
    GRADES,
    MET,
    PmuFigures,
    action_done,
    choice_keys,
    load_figures,
    period_for,
    prevalence_sentences,
)
from formtool.packs.render import Document, Part, Table, to_docx, to_pdf
from formtool.scales import format_date

REPORT_ROWS = 25  # longer lists belong in the workbook, not a report for senior managers


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _date(day: dt.date | None) -> str:
    return format_date(day) if day else ""


def report(f: PmuFigures) -> Document:
    """The report's content, shared by the Word and PDF renderings."""
    allocated, completed = len(f.audits), len(f.completed)
    graded = sum(f.grades.values())
    good = f.grades.get(GRADES[0], 0) + f.grades.get(GRADES[1], 0)
    summary = Part(
        "Summary",
        paragraphs=[
            f"{allocated} audits were allocated for {f.period.label} ({f.period.span}); "
            f"{completed} were completed ({_pct(completed, allocated)}) and {len(f.overdue)} are "
            f"overdue as of {_date(f.as_of)}.",
            f"Of {graded} graded audits, {good} ({_pct(good, graded)}) were good or better and "
            f"{f.grades.get('Inadequate', 0)} inadequate (moderated grades used where moderated).",
        ],
        tables=[
            Table(
                ("Team", "Allocated", "Completed", "Outstanding", "Overdue"),
                tuple(
                    (
                        team,
                        *(str(v[k]) for k in ("allocated", "completed", "outstanding", "overdue")),
                    )
                    for team, v in f.by_team.items()
                ),
                (0.4, 0.15, 0.15, 0.15, 0.15),
            )
        ],
    )
    grades = Part(
        "Grades",
        images=[charts.grade_distribution(f), charts.grades_by_team(f)],
        tables=[
            Table(
                ("Grade", "Audits", "Share"),
                tuple(
                    (g, str(f.grades.get(g, 0)), _pct(f.grades.get(g, 0), graded)) for g in GRADES
                ),
                (0.6, 0.2, 0.2),
            )
        ],
    )
    kss = Part(
        "Knowledge and Skills Statements",
        images=[charts.kss_met(f)] if f.kss else [],
        tables=[
            Table(
                ("Domain", *MET),
                tuple(
                    (f.kss_titles[d], *(str(c.get(m, 0)) for m in MET)) for d, c in f.kss.items()
                ),
                (0.58, 0.14, 0.14, 0.14),
            )
        ],
    )
    strongest, weakest = prevalence_sentences(f)
    prevalence = Part(
        "What the audits found",
        paragraphs=["Strongest practice:"] + ([] if strongest else ["None yet."]),
        bullets=strongest,
    )
    weak = Part(
        "", paragraphs=["Areas for development:"] + ([] if weakest else ["None."]), bullets=weakest
    )
    m = f.moderation
    moderation = Part(
        "Moderation",
        paragraphs=[
            f"{m['moderated']} of {m['completed']} completed audits were moderated "
            f"({_pct(m['moderated'], m['completed'])}; the framework asks for 10%). Moderators "
            f"agreed with the auditor's grade in {m['agreed']} "
            f"({_pct(m['agreed'], m['moderated'])}); {m['up']} grade(s) moved up and "
            f"{m['down']} down."
        ],
    )
    t = f.action_totals
    actions = Part(
        "Actions",
        paragraphs=[
            f"{t['raised']} actions were raised; {t['completed']} are signed off, {t['open']} "
            f"open and {t['overdue']} overdue."
        ],
    )
    shown = sorted(f.inadequate, key=lambda i: i["reaudit_by"])[:REPORT_ROWS]
    if not f.inadequate:
        note = "No audit was graded inadequate."
    elif len(f.inadequate) > REPORT_ROWS:
        note = (
            f"{len(f.inadequate)} audits were graded inadequate; the {REPORT_ROWS} with the "
            "earliest re-audit dates are listed, all of them on the workbook's Re-audits "
            "sheet."
        )
    else:
        note = f"{len(f.inadequate)} audit(s) were graded inadequate."
    rows = tuple(
        (
            i["case_number"],
            i["team"],
            _date(i["graded_on"]),
            _date(i["review_by"]),
            _date(i["reaudit_by"]),
        )
        for i in shown
    )
    inadequate = Part(
        "Inadequate cases: re-audit within two months, review at four weeks",
        paragraphs=[note],
        tables=[
            Table(
                ("Case number", "Team", "Graded", "Review by", "Re-audit by"),
                rows,
                (0.24, 0.28, 0.16, 0.16, 0.16),
            )
        ]
        if rows
        else [],
    )
    trend = Part(
        "Trend",
        images=[charts.trend(f)],
        tables=[
            Table(
                (
                    "Period",
                    "Audits",
                    "Graded",
                    "Good or better",
                    "Requires improvement",
                    "Inadequate",
                ),
                tuple(
                    (
                        p["period"],
                        str(p["audits"]),
                        str(p["graded"]),
                        f"{p['good_or_better']}%",
                        f"{p['requires_improvement']}%",
                        f"{p['inadequate']}%",
                    )
                    for p in f.trend
                ),
                (0.2, 0.12, 0.12, 0.18, 0.2, 0.18),
            )
        ],
    )
    return Document(
        f"Case file audit report: {f.period.label}",
        f"{f.period.span} · Performance Management Unit · as of {_date(f.as_of)}",
        [summary, grades, kss, prevalence, weak, moderation, actions, inadequate, trend],
        f"formtool PMU pack {f.period.label} · case numbers only, no names",
    )


# --- the workbook ------------------------------------------------------------------------


def workbook(f: PmuFigures, include_names: bool = False) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    book.set_properties(
        {
            "title": f"Case file audits {f.period.label}",
            "author": "formtool",
            "created": dt.datetime(2000, 1, 1),
        }
    )
    fmt = {
        "head": book.add_format({"bold": True, "bg_color": "#DCE3F0", "border": 1}),
        "date": book.add_format({"num_format": "dd/mm/yyyy"}),
        "title": book.add_format({"bold": True, "font_size": 14}),
    }
    _summary_sheet(book, f, fmt)
    _audits_sheet(book, f, fmt, include_names)
    _answers_sheet(book, f, fmt, include_names)
    _actions_sheet(book, f, fmt)
    _moderation_sheet(book, f, fmt)
    _noncompletion_sheet(book, f, fmt)
    _reaudit_sheet(book, f, fmt)
    book.close()
    return out.getvalue()


def _write_rows(sheet, fmt, headings, rows, widths=None, start: int = 0) -> int:
    """Headings and rows from `start`; text always as text, dates as dates. Returns next row."""
    for c, heading in enumerate(headings):
        sheet.write_string(start, c, heading, fmt["head"])
        if widths:
            sheet.set_column(c, c, widths[c] if c < len(widths) else widths[-1])
    for r, row in enumerate(rows, start=start + 1):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), fmt["date"])
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value)
            elif isinstance(value, int | float):
                sheet.write_number(r, c, value)
            elif value not in (None, ""):
                sheet.write_string(r, c, str(value))
    return start + len(rows) + 2


def _summary_sheet(book, f: PmuFigures, fmt) -> None:
    sheet = book.add_worksheet("Summary")
    sheet.write_string(0, 0, f"Case file audits {f.period.label} ({f.period.span})", fmt["title"])
    sheet.write_string(1, 0, f"As of {_date(f.as_of)}. Case numbers only; no names.")
    row = _write_rows(
        sheet,
        fmt,
        ("Grade", "Audits"),
        [(g, f.grades.get(g, 0)) for g in GRADES],
        (48, 12, 12, 12, 12),
        3,
    )
    chart = book.add_chart({"type": "column"})
    chart.add_series(
        {
            "name": "Audits",
            "categories": ["Summary", 4, 0, 8, 0],
            "values": ["Summary", 4, 1, 8, 1],
            "data_labels": {"value": True},
        }
    )
    chart.set_title({"name": "Grade distribution"})
    chart.set_legend({"none": True})
    sheet.insert_chart(3, 6, chart)
    kss_start = row
    row = _write_rows(
        sheet,
        fmt,
        ("Domain", *MET),
        [(f.kss_titles[d], *(c.get(m, 0) for m in MET)) for d, c in f.kss.items()],
        start=row,
    )
    if f.kss:
        bar = book.add_chart({"type": "bar", "subtype": "percent_stacked"})
        for i in range(1, len(MET) + 1):
            bar.add_series(
                {
                    "name": ["Summary", kss_start, i],
                    "categories": ["Summary", kss_start + 1, 0, kss_start + len(f.kss), 0],
                    "values": ["Summary", kss_start + 1, i, kss_start + len(f.kss), i],
                    "fill": {"color": ("#1a7f37", "#d4a72c", "#cf222e")[i - 1]},
                }
            )
        bar.set_title({"name": "KSS met / partially met / not met"})
        bar.set_y_axis({"reverse": True})
        sheet.insert_chart(kss_start, 6, bar)
    trend_start = max(row, kss_start + 18)
    _write_rows(
        sheet,
        fmt,
        ("Period", "Audits", "Good or better %", "Requires improvement %", "Inadequate %"),
        [
            (
                p["period"],
                p["audits"],
                p["good_or_better"],
                p["requires_improvement"],
                p["inadequate"],
            )
            for p in f.trend
        ],
        start=trend_start,
    )
    line = book.add_chart({"type": "line"})
    for i in (2, 3, 4):
        line.add_series(
            {
                "name": ["Summary", trend_start, i],
                "categories": ["Summary", trend_start + 1, 0, trend_start + len(f.trend), 0],
                "values": ["Summary", trend_start + 1, i, trend_start + len(f.trend), i],
                "marker": {"type": "circle"},
            }
        )
    line.set_title({"name": "Trend"})
    sheet.insert_chart(trend_start, 6, line)


def _audits_sheet(book, f: PmuFigures, fmt, include_names: bool) -> None:
    names = ("Family name", "Given names", "DOB", "Worker") if include_names else ()
    headings = (
        "Audit ID",
        "Form",
        "Case number",
        "Team",
        "Auditor",
        "Month",
        "Due",
        "State",
        "Auditor grade",
        "Moderated grade",
        "Grade",
        "Returned on",
        *names,
    )
    rows = [
        (
            a.audit_id,
            a.form_id,
            a.case_number,
            a.team,
            a.auditor,
            a.month,
            a.due_date,
            a.state,
            a.auditor_grade,
            a.moderated_grade,
            a.grade,
            a.returned_on,
            *(
                (
                    a.facts.get("family_name", ""),
                    a.facts.get("given_names", ""),
                    a.facts.get("dob", ""),
                    a.facts.get("worker", ""),
                )
                if include_names
                else ()
            ),
        )
        for a in f.audits
    ]
    sheet = book.add_worksheet("Audits")
    _write_rows(sheet, fmt, headings, rows, (24, 18, 14, 24, 24, 9, 11, 12, 22))
    sheet.autofilter(0, 0, len(rows), len(headings) - 1)
    sheet.freeze_panes(1, 0)


def _answers_sheet(book, f: PmuFigures, fmt, include_names: bool) -> None:
    """One row per audit and form; answers on the lists only (free text with names)."""
    sheet = book.add_worksheet("Answers")
    row = 0
    for form_id in sorted({a.form_id for a in f.completed}):
        keys = choice_keys(form_id)
        audits = [a for a in f.completed if a.form_id == form_id and a.return_id]
        comment_keys = [k for k in keys if include_names]
        headings = ("Audit ID", "Case number", *keys, *(f"{k} (evidence)" for k in comment_keys))
        rows = []
        for audit in audits:
            answers = f.answers.get(audit.return_id, {})
            rows.append(
                (
                    audit.audit_id,
                    audit.case_number,
                    *(answers.get(k, ("", ""))[0] for k in keys),
                    *(answers.get(k, ("", ""))[1] for k in comment_keys),
                )
            )
        row = _write_rows(sheet, fmt, headings, rows, (24, 14, 12), start=row)
    sheet.freeze_panes(1, 2)


def _actions_sheet(book, f: PmuFigures, fmt) -> None:
    rows = []
    for a in f.actions:
        done = action_done(a)
        overdue = bool(not done and a["due_date"] and a["due_date"] < f.as_of)
        rows.append(
            (
                a["audit_id"],
                a["table_key"],
                a["action"] or a["recommendation"],
                a["responsible_role"],
                a["responsible_person"],
                a["due_date"],
                "Signed off" if done else "Open",
                "Yes" if overdue else "No",
                a["sign_off_date"],
            )
        )
    sheet = book.add_worksheet("Action tracker")
    _write_rows(
        sheet,
        fmt,
        (
            "Audit ID",
            "From",
            "Action",
            "Responsible role",
            "Responsible person",
            "Due",
            "Status",
            "Overdue",
            "Signed off on",
        ),
        rows,
        (24, 20, 60, 18, 24, 11, 11, 9, 12),
    )
    sheet.autofilter(0, 0, len(rows), 8)


def _moderation_sheet(book, f: PmuFigures, fmt) -> None:
    rows = [
        (
            a.audit_id,
            a.case_number,
            a.team,
            a.auditor_grade,
            a.moderated_grade,
            a.moderated_by,
            "Agreed" if a.moderated_grade == a.auditor_grade else "Changed",
        )
        for a in f.audits
        if a.moderated_grade
    ]
    _write_rows(
        book.add_worksheet("Moderation log"),
        fmt,
        (
            "Audit ID",
            "Case number",
            "Team",
            "Auditor grade",
            "Moderated grade",
            "Moderated by",
            "Outcome",
        ),
        rows,
        (24, 14, 24, 30, 30, 24, 10),
    )


def _noncompletion_sheet(book, f: PmuFigures, fmt) -> None:
    rows = [
        (
            a.audit_id,
            a.case_number,
            a.team,
            a.auditor,
            a.due_date,
            a.state,
            (f.as_of - a.due_date).days if a.due_date < f.as_of else 0,
        )
        for a in f.audits
        if not a.completed
    ]
    _write_rows(
        book.add_worksheet("Non-completion"),
        fmt,
        ("Audit ID", "Case number", "Team", "Auditor", "Due", "State", "Days overdue"),
        rows,
        (24, 14, 24, 24, 11, 12, 12),
    )


def _reaudit_sheet(book, f: PmuFigures, fmt) -> None:
    rows = [
        (
            i["audit_id"],
            i["case_number"],
            i["team"],
            i["graded_on"],
            i["review_by"],
            i["reaudit_by"],
        )
        for i in sorted(f.inadequate, key=lambda i: i["reaudit_by"])
    ]
    _write_rows(
        book.add_worksheet("Re-audits"),
        fmt,
        (
            "Audit ID",
            "Case number",
            "Team",
            "Graded inadequate",
            "Review by (4 weeks)",
            "Re-audit by (2 months)",
        ),
        rows,
        (24, 14, 24, 18, 20, 22),
    )


# --- the command -------------------------------------------------------------------------


def pmu_pack(
    engine: sa.Engine,
    out_dir: Path,
    month: str | None = None,
    quarter: str | None = None,
    year: str | None = None,
    include_names: bool = False,
    as_of: dt.date | None = None,
) -> list[Path]:
    """Write the PMU report (.docx and .pdf) and workbook (.xlsx) for one period."""
    figures = load_figures(engine, period_for(month, quarter, year), as_of)
    document = report(figures)
    stem = f"pmu-{figures.period.label}"
    files = {
        f"{stem}.docx": to_docx(document),
        f"{stem}.pdf": to_pdf(document),
        f"{stem}.xlsx": workbook(figures, include_names),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    return written
