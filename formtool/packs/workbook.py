"""The PMU workbook (XlsxWriter): Summary with native charts, Activities (when the programme's
other QA activities had audits in the period: a row of counts per activity, never a person),
Audits, Answers (long form: one row per audit and question), Action tracker, Moderation log,
Non-completion (never an exempted audit nor a prepared file filed without an audit: the Audits
sheet lists those as such), Re-audits.
Every sheet but Activities is case-file audits alone. The aggregate workbook (for the web
workspace's viewers) is the Summary and Activities: every other sheet lists audits.

The list sheets (Audits, Answers, ...) are streamed as worksheet XML after XlsxWriter has
written the rest (sheet_stream.py: a year's answers are millions of rows), the answers read a
chunk of audits at a time. A sheet longer than an Excel sheet holds (a region's year of answers)
goes to a CSV file beside the workbook (`write_workbook`), or keeps its first rows where there is
no folder to write to (`workbook`, the web workspace's download); the Summary says which.

The Summary says what the report's summary says (summary.py): the headline, the team table
with its "All teams" total; a chart of fewer audits than the minimum base is not drawn, a note
in its place says so. Charts and notes are anchored below one another from computed sizes,
right of the widest table, so none covers another or a table; columns are as wide as their
text; every sheet prints landscape, one page wide, with its header row repeated and the
council and protective marking on every page.

Accessible too: the title set; each list sheet's header row named ColumnTitle for screen
readers (export.header_row); every chart with alternative text (charts.py's words), and no
chart telling its series apart by colour alone (the domains' bars patterned and labelled,
their legend below in the order they stack; the trend's lines with their own markers and
dashes).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from formtool.definitions.scales import OUTCOMES
from formtool.packs import charts as words
from formtool.packs import sheet_stream
from formtool.packs.export import header_row
from formtool.packs.figures import (
    AuditFacts,
    PmuFigures,
    _before,
    action_done,
    concerns_line,
)
from formtool.packs.sheet_stream import LongSheet, Row, splice
from formtool.packs.standing import charted
from formtool.packs.summary import (
    allocation_line,
    not_charted,
    team_table,
    too_few_to_chart,
    trend_too_few,
)
from formtool.periods import show_date
from formtool.settings import DEFAULT, Settings

ROW_PX = 20  # XlsxWriter's default row height in pixels
CHART_W, CHART_H = 560, 300  # pixels
CHART_COLUMN = 7  # charts sit from column H, or right of a wider Summary table
NOTE_H = 2 * ROW_PX  # a note where a chart was not drawn
COLOURS = ("#1a7f37", "#57ab5a", "#d4a72c", "#e36209", "#cf222e", "#6e7781")
#: Fill patterns of a stacked chart's series after the first (solid): no series by colour alone.
PATTERNS = ("wide_upward_diagonal", "small_check", "wide_downward_diagonal", "dotted_grid")
Rows = Sequence[Sequence[Any]]
ANSWER_CHUNK = 2_000  # complete audits whose answers are read at a time


class _Book:
    """One workbook and its formats, with helpers that keep text as text."""

    def __init__(self, settings: Settings) -> None:
        import xlsxwriter

        self.out = io.BytesIO()
        # constant_memory: each row goes to a temporary file as soon as the next one starts
        # (every sheet is therefore written top to bottom), and XlsxWriter's text stays in its
        # cells, so the shared strings are the streamed sheets' alone (sheet_stream.py).
        self.book = xlsxwriter.Workbook(
            self.out,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self.settings = settings
        self.widths: dict[tuple[str, int], float] = {}  # the widest text each column holds
        self.fmt = {
            "head": self.book.add_format(
                {
                    "bold": True,
                    "bg_color": "#DCE3F0",
                    "border": 1,
                    "text_wrap": True,
                    "valign": "top",
                }
            ),
            "date": self.book.add_format({"num_format": "dd/mm/yyyy", "valign": "top"}),
            "text": self.book.add_format({"text_wrap": True, "valign": "top"}),
            "title": self.book.add_format({"bold": True, "font_size": 14}),
        }
        self.long: list[LongSheet] = []  # streamed into their placeholders on close

    def sheet(self, name: str) -> Any:
        sheet = self.book.add_worksheet(name)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)  # one page wide, as many tall as needed
        marking = self.settings.marking.replace("&", "&&")
        council = self.settings.print_lines()["council"].replace("&", "&&")
        sheet.set_header(f'&L{council}&C&"Arial,Bold"{marking}&R{name}')
        sheet.set_footer(f"&L{self.settings.marking}&RPage &P of &N")
        return sheet

    def table(
        self,
        sheet: Any,
        headings: Sequence[str],
        rows: Rows,
        start: int = 0,
        wide: dict[int, int] | None = None,
        filter_: bool = True,
    ) -> int:
        """Headings and rows from row `start`; columns sized to their text; text as text,
        dates as dates. Returns the next free row."""
        for c, heading in enumerate(headings):
            sheet.write_string(start, c, heading, self.fmt["head"])
        for r, row in enumerate(rows, start=start + 1):
            for c, value in enumerate(row):
                self._cell(sheet, r, c, value)
        for c, heading in enumerate(headings):
            longest = max([len(heading), *(len(_shown(row[c])) for row in rows if c < len(row))])
            width = max(
                self.widths.get((sheet.name, c), 0),
                min((wide or {}).get(c, 60), max(9, longest + 2)),
            )
            self.widths[(sheet.name, c)] = width  # tables sharing a column keep the widest
            sheet.set_column(c, c, width, self.fmt["text"])
        if filter_ and start == 0:
            sheet.autofilter(0, 0, max(1, len(rows)), len(headings) - 1)
            sheet.freeze_panes(1, 0)
            header_row(self.book, sheet, len(headings))
        return start + len(rows) + 2

    def _cell(self, sheet: Any, r: int, c: int, value: Any) -> None:
        if type(value) is str:  # most cells: the fast path first
            if value:
                sheet.write_string(r, c, value)
        elif isinstance(value, dt.date):
            sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), self.fmt["date"])
        elif isinstance(value, bool):
            sheet.write_string(r, c, "Yes" if value else "No")
        elif isinstance(value, int | float):
            sheet.write_number(r, c, value)
        elif value not in (None, ""):
            sheet.write_string(r, c, str(value))

    def long_table(self, long: LongSheet) -> None:
        """A list sheet streamed after XlsxWriter has written the rest (sheet_stream.py):
        here, its placeholder with the header row, filter, frozen pane and print setup."""
        sheet = self.sheet(long.name)
        for c, heading in enumerate(long.headings):
            sheet.write_string(0, c, heading, self.fmt["head"])
            sheet.set_column(c, c, 9, self.fmt["text"])  # widths: from the rows, when streamed
        sheet.autofilter(0, 0, max(1, long.count), len(long.headings) - 1)
        sheet.freeze_panes(1, 0)
        header_row(self.book, sheet, len(long.headings))
        self.long.append(long)

    def close(self) -> bytes:
        # The styles the streamed cells name: registered now, numbered once the book closes.
        date, text = self.fmt["date"], self.fmt["text"]
        date._get_xf_index()
        text._get_xf_index()
        self.book.close()
        if not self.long:
            return self.out.getvalue()
        return splice(self.out.getvalue(), self.long, date.xf_index, text.xf_index)


def _shown(value: Any) -> str:
    return "dd/mm/yyyy" if isinstance(value, dt.date) else "" if value is None else str(value)


class _Charts:
    """Charts on the Summary sheet, each anchored below the last: they cannot overlap."""

    def __init__(self, book: _Book, sheet: Any, column: int = CHART_COLUMN, row: int = 3) -> None:
        self.book, self.sheet, self.row, self.column = book, sheet, row, column

    def add(
        self,
        kind: dict[str, str],
        title: str,
        series: list[dict[str, Any]],
        alt: str,
        options: dict[str, Any] | None = None,
    ) -> None:
        """A chart below the last one, `alt` its alternative text."""
        chart = self.book.book.add_chart(kind)
        for item in series:
            chart.add_series(item)
        chart.set_title({"name": title, "name_font": {"size": 11}})
        chart.set_size({"width": CHART_W, "height": CHART_H})
        for method, value in (options or {}).items():
            getattr(chart, method)(value)
        self.sheet.insert_chart(
            self.row, self.column, chart, {"object_position": 3, "description": alt}
        )
        self.row += math.ceil(CHART_H / ROW_PX) + 1

    def note(self, text: str) -> None:
        """Words where a chart is not drawn (a text box: with constant_memory, a cell above
        the rows already written could not be written)."""
        self.sheet.insert_textbox(
            self.row,
            self.column,
            text,
            {"width": CHART_W, "height": NOTE_H, "object_position": 3, "font": {"size": 10}},
        )
        self.row += math.ceil(NOTE_H / ROW_PX) + 1


def _summary(book: _Book, f: PmuFigures, aggregate_only: bool, notes: Sequence[str] = ()) -> None:
    sheet = book.sheet("Summary")
    sheet.write_string(
        0, 0, f"Case file audits {f.period.label} ({f.period.span})", book.fmt["title"]
    )
    scope = (
        "Figures only; case-level detail is in the officers' pack."
        if aggregate_only
        else "Case numbers only; no names."
    )
    sheet.write_string(1, 0, f"As of {show_date(f.as_of)}. {scope} {concerns_line(f)}")
    sheet.write_string(2, 0, allocation_line(f))
    for row, note in enumerate(notes, start=3):  # rows not in the workbook: where they are
        sheet.write_string(row, 0, note)
    headings, rows = team_table(f)
    top = 3 + len(notes)
    charts = _Charts(book, sheet, max(CHART_COLUMN, len(headings) + 1), top)
    row = book.table(sheet, headings, rows, top, filter_=False)
    for sid, counts in f.grades.items():
        scale = f.scales[sid]
        start = row
        row = book.table(
            sheet,
            ("Grade", "Audits"),
            [(g, counts.get(g, 0)) for g in scale.choices],
            start,
            filter_=False,
        )
        total = sum(counts.values())
        if not charted(total, f.min_base):
            chart = "the grades" if len(f.grades) == 1 else f"the {scale.label} grades"
            charts.note(too_few_to_chart("audits were graded", chart, total, f.min_base))
            continue
        named = f"Grades ({scale.label})"
        charts.add(
            {"type": "column"},
            named,
            [
                {
                    "name": "Audits",
                    "categories": ["Summary", start + 1, 0, start + len(scale.choices), 0],
                    "values": ["Summary", start + 1, 1, start + len(scale.choices), 1],
                    "data_labels": {"value": True},
                    "points": [{"fill": {"color": c}} for c in COLOURS],
                }
            ],
            words.grade_alt(scale.choices, [counts.get(g, 0) for g in scale.choices], named),
            {"set_legend": {"none": True}},
        )
    for tool in f.domains:
        row = _domains(book, sheet, charts, f, tool, row)
    _trend(book, sheet, charts, f, row)


def _domains(book: _Book, sheet: Any, charts: _Charts, f: PmuFigures, tool: str, row: int) -> int:
    """A tool's domain judgements: the charted domains' table and their chart, then those
    judged in too few audits to chart, in a table of their own. Returns the next free row."""
    domains = f.domains[tool]
    choices = domains[0][2]
    audits = next((t.audits for t in f.findings if t.name == tool), 0)
    tool_charted = charted(audits, f.min_base)
    drawn = [d for d in domains if tool_charted and charted(sum(d[1].values()), f.min_base)]
    left_out = [d for d in domains if d not in drawn]
    start = row
    if drawn:
        row = book.table(
            sheet,
            (f"{tool}: domain", *choices),
            [(label, *(c.get(x, 0) for x in choices)) for label, c, _ in drawn],
            start,
            filter_=False,
        )
        named = f"{tool}: domains"
        charts.add(
            {"type": "bar", "subtype": "percent_stacked"},
            named,
            [
                {
                    "name": ["Summary", start, i],
                    "categories": ["Summary", start + 1, 0, start + len(drawn), 0],
                    "values": ["Summary", start + 1, i, start + len(drawn), i],
                    **_stacked_fill(i - 1, COLOURS[(0, 2, 4)[i - 1] if i <= 3 else 5]),
                    "data_labels": {"value": True},
                }
                for i in range(1, len(choices) + 1)
            ],
            words.stacked_alt([label for label, _, _ in drawn], choices, named, percent=True),
            {"set_y_axis": {"reverse": True}, "set_legend": {"position": "bottom"}},
        )
    if not tool_charted:
        what = f"{tool} audits were completed"
        charts.note(too_few_to_chart(what, "the domains judged", audits, f.min_base))
    elif left_out:
        judged = [(label, sum(c.values())) for label, c, _ in left_out]
        charts.note(not_charted(f"{tool} audits judged, N/A left out", judged, f.min_base))
    if left_out:
        row = book.table(
            sheet,
            (f"{tool}: domain, not charted", *choices),
            [(label, *(c.get(x, 0) for x in choices)) for label, c, _ in left_out],
            row,
            filter_=False,
        )
    return row


def _stacked_fill(index: int, colour: str) -> dict[str, Any]:
    """The first series solid, the others patterned in their colour on white."""
    if index == 0:
        return {"fill": {"color": colour}}
    pattern = PATTERNS[(index - 1) % len(PATTERNS)]
    return {"pattern": {"pattern": pattern, "fg_color": colour, "bg_color": "#FFFFFF"}}


def _trend(book: _Book, sheet: Any, charts: _Charts, f: PmuFigures, row: int) -> None:
    scale = f.main_scale
    labels = [scale.band_label(o) if scale else o for o in OUTCOMES]
    start = row
    book.table(
        sheet,
        ("Period", "Audits", *(f"{label} %" for label in labels), "Graded"),
        [(p["period"], p["audits"], *(p[o] for o in OUTCOMES), p["graded"]) for p in f.trend],
        start,
        filter_=False,
    )
    if all(p[o] is None for p in f.trend for o in OUTCOMES):
        charts.note(trend_too_few(f.min_base))
        return
    named = f"Trend (blank: no audits, or fewer than {f.min_base} graded)"
    periods = [str(p["period"]) for p in f.trend]
    charts.add(
        {"type": "line"},
        named,
        [
            {
                "name": ["Summary", start, 2 + i],
                "categories": ["Summary", start + 1, 0, start + len(f.trend), 0],
                "values": ["Summary", start + 1, 2 + i, start + len(f.trend), 2 + i],
                "marker": {"type": ("circle", "square", "triangle")[i], "size": 7},
                "line": {"dash_type": ("solid", "dash", "round_dot")[i]},
            }
            for i in range(len(OUTCOMES))
        ],
        words.trend_alt(periods, [f"{label} %" for label in labels], named, "% of graded audits"),
        {"show_blanks_as": "gap", "set_y_axis": {"min": 0, "max": 100}},
    )


def _audit_row(a: AuditFacts, known: dict[str, str], facts: tuple[str, ...]) -> Row:
    """One audit as the Audits sheet lists it (`facts`: the named columns, from `known`)."""
    return (
        a.audit_id,
        a.form.name,
        a.case_number,
        a.team,
        a.auditor,
        a.month,
        a.due_date,
        a.state,
        _complete_words(a.standing),
        a.auditor_grade,
        a.moderated_grade,
        a.grade,
        a.returned_on,
        *(known.get(fact, "") for fact in facts),
    )


def _audits(f: PmuFigures, include_names: bool) -> LongSheet:
    names = ("Family name", "Given names", "DOB", "Worker") if include_names else ()
    facts = ("family_name", "given_names", "dob", "worker") if include_names else ()

    def rows() -> Iterator[Row]:
        for start in range(0, len(f.audits), ANSWER_CHUNK):
            chunk = f.audits[start : start + ANSWER_CHUNK]
            known = f.facts_of(chunk) if include_names else {}
            yield from (_audit_row(a, known.get(a.audit_id, {}), facts) for a in chunk)

    headings = (
        "Audit ID",
        "Tool",
        "Case number",
        "Team",
        "Auditor",
        "Month",
        "Due",
        "State",
        "Complete",
        "Auditor grade",
        "Moderated grade",
        "Grade",
        "Returned on",
        *names,
    )
    return LongSheet("Audits", headings, len(f.audits), rows)


def _complete_words(standing: str) -> str:
    """The Audits sheet's Complete column: where the audit stands, in a word or two."""
    return {"completed": "Yes", "exempted": "Exempted", "filed": "Filed unaudited"}.get(
        standing, "No"
    )


def _answers(f: PmuFigures, include_names: bool) -> LongSheet:
    """One row per complete audit and question: filterable and pivotable across tools. The
    answers are read a chunk of audits at a time (a year's do not fit in memory)."""
    done = f.completed
    questions: dict[int, list[_Question]] = {}  # by id(form): each version its own
    for audit in done:
        if id(audit.form) not in questions:
            questions[id(audit.form)] = [
                _Question(section.label, item)
                for section, item in audit.form.items()
                if item.kind in ("question", "choice")
            ]

    def rows() -> Iterator[Row]:
        for start in range(0, len(done), ANSWER_CHUNK):
            chunk = done[start : start + ANSWER_CHUNK]
            answers = f.answers_for([a.return_id for a in chunk if a.return_id is not None])
            for audit in chunk:
                given = answers.get(audit.return_id or -1, {})
                head = (audit.audit_id, audit.form.name, audit.case_number, audit.team)
                for q in questions[id(audit.form)]:
                    value, evidence = given.get(q.key, ("", ""))
                    yield (
                        *head,
                        q.section,
                        q.label,
                        q.key,
                        value,
                        q.outcome(value),
                        *((evidence,) if include_names else ()),
                    )

    headings = (
        "Audit ID",
        "Tool",
        "Case number",
        "Team",
        "Section",
        "Question",
        "Key",
        "Answer",
        "Counts as",
        *(("Evidence",) if include_names else ()),
    )
    count = sum(len(questions[id(a.form)]) for a in done)
    return LongSheet("Answers", headings, count, rows, {5: 70, 9: 70}, frozenset({9}))


class _Question:
    """A question of the Answers sheet, what each answer counts as worked out once."""

    def __init__(self, section: str, item: Any) -> None:
        self.section, self.label, self.key, self.item = section, item.label, item.key, item
        self.outcomes: dict[str, str] = {}

    def outcome(self, value: str) -> str:
        found = self.outcomes.get(value)
        if found is None:
            found = self.outcomes[value] = self.item.outcome(value) or ""
        return found


def _actions(f: PmuFigures) -> LongSheet:
    tables: dict[int, dict[str, str]] = {}  # by id(form): table key -> "Section: table"
    forms = {}
    for audit in f.completed:
        forms[audit.audit_id] = audit.form
        if id(audit.form) not in tables:
            tables[id(audit.form)] = {
                item.key: f"{section.title}: {item.label}"
                for section, item in audit.form.items()
                if item.kind == "table"
            }

    def section(a: dict[str, Any]) -> Any:
        form = forms.get(str(a["audit_id"]))
        named = tables[id(form)].get(str(a["table_key"])) if form is not None else None
        return named or a["table_key"]

    def rows() -> Iterator[Row]:
        for a in f.iter_actions():
            done = action_done(a)
            yield (
                a["audit_id"],
                section(a),
                a["action"] or a["recommendation"],
                a["responsible_role"],
                a["responsible_person"],
                a["due_date"],
                "Signed off" if done else "Open",
                "Yes" if not done and _before(a["due_date"], f.as_of) else "No",
                a["sign_off_date"],
            )

    headings = (
        "Audit ID",
        "Section",
        "Action",
        "Responsible role",
        "Responsible person",
        "Due",
        "Status",
        "Overdue",
        "Signed off on",
    )
    return LongSheet(
        "Action tracker", headings, f.action_count, rows, {1: 40, 2: 60}, frozenset({2})
    )


def _logs(f: PmuFigures) -> list[LongSheet]:
    moderated = _listed(
        "Moderation log",
        (
            "Audit ID",
            "Tool",
            "Case number",
            "Team",
            "Auditor grade",
            "Moderated grade",
            "Moderated by",
            "Outcome",
        ),
        [
            (
                a.audit_id,
                a.form.name,
                a.case_number,
                a.team,
                a.auditor_grade,
                a.moderated_grade,
                a.moderated_by,
                "Agreed" if a.moderated_grade == a.auditor_grade else "Changed",
            )
            for a in f.graded
            if a.moderated_grade
        ],
    )
    not_completed = _listed(
        "Non-completion",
        ("Audit ID", "Tool", "Case number", "Team", "Auditor", "Due", "State", "Days overdue"),
        [
            (
                a.audit_id,
                a.form.name,
                a.case_number,
                a.team,
                a.auditor,
                a.due_date,
                a.state,
                max(0, (f.as_of - a.due_date).days),
            )
            for a in f.not_completed  # exempted and filed unaudited: as such on Audits
        ],
    )
    rule = f.policy.reaudit
    review = f" ({rule.review_weeks} weeks)" if rule else ""
    within = f" ({rule.within_months} months)" if rule else ""
    reaudits = _listed(
        "Re-audits",
        (
            "Audit ID",
            "Case number",
            "Tool",
            "Team",
            "Grade",
            "Graded",
            f"Review by{review}",
            "Review held",
            f"Re-audit by{within}",
            "Re-audit",
            "Re-audited",
            "Head of Service meeting",
        ),
        [
            (
                i["audit_id"],
                i["case_number"],
                i["tool"],
                i["team"],
                i["grade"],
                i["graded_on"],
                i["review_by"],
                i["review"] if rule else "",
                i["reaudit_by"],
                i["reaudit_id"],
                i["reaudit"] if rule else "",
                i["hos"] if rule else "",
            )
            for i in sorted(f.follow_up, key=lambda i: str(i["reaudit_by"]))
        ],
    )
    return [moderated, not_completed, reaudits]


def _listed(name: str, headings: Sequence[str], rows: list[Row]) -> LongSheet:
    return LongSheet(name, headings, len(rows), lambda: rows)


def _activities(book: _Book, f: PmuFigures) -> None:
    """A row of counts per activity with audits in the period (the report's figures)."""
    if not f.activities:
        return
    # Complete, Outstanding, the two-stage kinds when any, and Exempted add up to Allocated
    kinds = [("completed", "Complete"), ("outstanding", "Outstanding")]
    kinds += [
        (key, heading)
        for key, heading in (("prepared", "Prepared, to be picked"), ("filed", "Filed unaudited"))
        if any(getattr(a.counts, key) for a in f.activities)
    ]
    kinds.append(("exempted", "Exempted"))
    book.table(
        book.sheet("Activities"),
        (
            "Activity",
            "Kind",
            "Runs",
            "Subjects",
            "Allocated",
            *(heading for _, heading in kinds),
            "Completion %",
            "Concerns raised",
        ),
        [
            (
                a.name,
                a.kind.replace("_", " "),
                len(a.runs),
                a.subjects,
                a.counts.allocated,
                *(getattr(a.counts, key) for key, _ in kinds),
                round(100 * a.counts.completed / a.due, 1) if a.due else None,
                a.concerns["raised"],
            )
            for a in f.activities
        ],
    )


def workbook(
    f: PmuFigures,
    settings: Settings = DEFAULT,
    include_names: bool = False,
    aggregate_only: bool = False,
) -> bytes:
    """The workbook; `aggregate_only` (which overrides `include_names`): the Summary alone.
    A sheet longer than Excel holds keeps its first rows, and the Summary says so."""
    return _build(f, settings, include_names, aggregate_only, None)[0]


def write_workbook(
    f: PmuFigures,
    path: Path,
    settings: Settings = DEFAULT,
    include_names: bool = False,
    aggregate_only: bool = False,
) -> list[Path]:
    """The workbook at `path` and, beside it, a CSV file of each sheet longer than an Excel
    sheet holds (a year's answers of a region), named on the Summary and in that sheet's
    place. Returns the files written, the workbook first."""
    beside = [_csv_beside(path, long.name) for long in _long_sheets(f, include_names, False)]
    for csv_path in beside:  # an earlier, longer pack's: this one writes its own or none
        csv_path.unlink(missing_ok=True)
    try:
        data, written = _build(f, settings, include_names, aggregate_only, path)
        path.write_bytes(data)
    except BaseException:
        for csv_path in beside:  # never a CSV of children's answers left behind untracked
            csv_path.unlink(missing_ok=True)
        raise
    return [path, *written]


def _long_sheets(f: PmuFigures, include_names: bool, aggregate_only: bool) -> list[LongSheet]:
    """The list sheets, streamed (none in a pack of figures alone)."""
    if aggregate_only:
        return []
    return [_audits(f, include_names), _answers(f, include_names), _actions(f), *_logs(f)]


def _csv_beside(path: Path, sheet: str) -> Path:
    """Where a sheet too long for Excel goes: pmu-2026-27-answers.csv beside the workbook."""
    return path.with_name(f"{path.stem}-{sheet.lower().replace(' ', '-')}.csv")


def _build(
    f: PmuFigures,
    settings: Settings,
    include_names: bool,
    aggregate_only: bool,
    path: Path | None,
) -> tuple[bytes, list[Path]]:
    book = _Book(settings)
    book.book.set_properties(
        {
            "title": f"Case file audits {f.period.label}",
            "author": "formtool",
            "created": dt.datetime(2000, 1, 1),
        }
    )
    longs = _long_sheets(f, include_names, aggregate_only)
    notes: list[str] = []
    elsewhere: dict[str, str] = {}  # sheet name -> where its rows are instead
    written: list[Path] = []
    for i, long in enumerate(longs):
        fits = sheet_stream.MAX_ROWS - 1  # below the header row
        if long.count <= fits:
            continue
        if path is None:
            notes.append(
                f"The {long.name} sheet holds the first {fits:,} of its {long.count:,} rows"
                " (an Excel sheet holds no more): `formtool pack pmu` writes them all to a CSV"
                " file beside the workbook."
            )
            longs[i] = _first_rows(long, fits)
            continue
        csv_path = _csv_beside(path, long.name)
        sheet_stream.write_csv(long, csv_path)
        written.append(csv_path)
        elsewhere[long.name] = (
            f"The {long.name} sheet's {long.count:,} rows are in {csv_path.name} beside this"
            f" workbook: an Excel sheet holds at most {fits:,}."
        )
        notes.append(elsewhere[long.name])
    _summary(book, f, aggregate_only, notes)
    _activities(book, f)
    for long in longs:
        if long.name in elsewhere:
            book.sheet(long.name).write_string(0, 0, elsewhere[long.name], book.fmt["title"])
        else:
            book.long_table(long)
    return book.close(), written


def _first_rows(long: LongSheet, count: int) -> LongSheet:
    return LongSheet(
        long.name,
        long.headings,
        count,
        lambda: itertools.islice(long.rows(), count),
        long.wide,
        long.free_text,
    )
