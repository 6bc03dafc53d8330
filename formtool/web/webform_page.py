"""The web form: an audit tool as an HTML page, and what its browser posts back as answers.

A third format of the same definition beside the Word and Excel tools (issue 25): the page
follows the definition's order and wording (the immediate-concern question first, then the
pre-filled facts, the grading key and guidance, then each section), and the answers it posts
come back keyed exactly as the Word and Excel readers key them, so the same validation and
store take them. The routes (webform.py) call the three functions here; nothing here reads
the store.

Stages: a one-stage tool has one page ("audit"). A two-stage tool (seed 000) has a preparer's
page ("prepare": the worker's and supervisor's fields, role `preparer`, plus the fields every
stage fills) and an auditor's page ("audit": role `auditor` and the shared fields), where the
prepared answers are shown read-only. The status field is never a control: the page's
buttons set it. Validation at the audit stage also checks the prepared evidence, so the
route merges the prepared answers into what `posted_values` gives before validating.

Posted answers are cleaned, never trusted: only the stage's keys are kept, each text stripped,
its line endings made "\\n", control characters dropped (PostgreSQL refuses NUL) and cut to
its limit; a scale answer that is not one of the scale's choices is kept as typed, so
validation names it (bad-choice) rather than the answer silently vanishing; action rows are
read up to read/limits.py's MAX_ROWS, empty rows dropped and the rest renumbered from 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from starlette.datastructures import FormData

from formtool import clock
from formtool.definitions import Field, FormDefinition, Item, Section
from formtool.definitions.forms import (
    DESCRIPTORS_TITLE,
    Column,
    Indicators,
    heading_text,
    years_of,
)
from formtool.definitions.scales import FieldKind, parse_date
from formtool.errors import Issue, IssueCode, printable
from formtool.programme.weblinks import STAGES
from formtool.read.limits import MAX_ROWS
from formtool.read.validate import form_fields, two_stage

TEXT_LIMIT = 20_000  # one evidence or comment box: about 3,000 words
LINE_LIMIT = 500  # a one-line answer: a name, a date, a choice
ROW_MARK = "__ROW__"  # the row number in the <template> of an action row (webform.js)
#: Action columns that hold a name or a short mark: one-line inputs, not text boxes.
LINE_ROLES = ("responsible_role", "responsible_person", "sign_off")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline
#: Fixes that differ on the web form (the Word tool's wording names its status box).
WEB_FIXES = {
    IssueCode.missing_answer: "This needs an answer before you submit as final. Answer it, "
    "or choose Save draft and finish later.",
}


@dataclass(frozen=True)
class Choice:
    """One radio button of a scale."""

    id: str
    value: str
    checked: bool


@dataclass(frozen=True)
class Control:
    """One answerable place on the page: a radio group, a text box, a one-line box or a date."""

    key: str
    kind: str  # "radio", "text", "line" or "date"
    label: str
    value: str = ""
    choices: tuple[Choice, ...] = ()
    limit: int = LINE_LIMIT
    error: str = ""

    @property
    def id(self) -> str:
        return f"f-{self.key}"

    @property
    def error_id(self) -> str:
        return f"e-{self.key}"


@dataclass(frozen=True)
class Shown:
    """A prepared answer the auditor sees but does not change (two-stage tools)."""

    key: str
    label: str
    value: str

    @property
    def id(self) -> str:
        return f"p-{self.key}"


@dataclass(frozen=True)
class RowView:
    """One action row: a fieldset of its columns' controls."""

    key: str  # "<table>.<row>", as validation names a row
    number: str  # the row's number, or ROW_MARK in the template row
    controls: tuple[Control, ...]
    error: str = ""

    @property
    def id(self) -> str:
        return f"r-{self.key}"


@dataclass(frozen=True)
class TableView:
    key: str
    label: str
    rows: tuple[RowView, ...]
    blank: RowView  # the <template> row webform.js copies


@dataclass(frozen=True)
class ItemView:
    """A question or choice (a fieldset, its radios the answer), a text or date item, or an
    action table; with the item's guidance and any prepared answers shown read-only."""

    kind: str  # "question", "field" or "table"
    key: str
    legend: str
    guidance: tuple[str, ...] = ()
    answer: Control | None = None
    extras: tuple[Control, ...] = ()
    shown: tuple[Shown, ...] = ()
    table: TableView | None = None


@dataclass(frozen=True)
class SectionView:
    id: str
    title: str
    guidance: tuple[str, ...]
    indicators: tuple[Indicators, ...]
    items: tuple[ItemView, ...]
    part: str = ""  # a heading printed above the section ("Case File Audit Questions")
    joins: bool = False  # printed in the previous section's table on paper: no heading of its own


@dataclass(frozen=True)
class IssueView:
    """One line of the error summary: where (linked to the field when it is on the page)."""

    anchor: str  # an element id on the page, or ""
    where: str
    message: str
    warning: bool


# --- which keys a stage fills ----------------------------------------------------------------


def _fills(form: FormDefinition, stage: str, role: str) -> bool:
    """Whether a field with this role is filled on this stage's page."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {stage!r}")
    if not two_stage(form):  # cached: the property walks every field
        return stage == "audit"
    return not role or role == ("preparer" if stage == "prepare" else "auditor")


@cache
def editable_keys(form: FormDefinition, stage: str) -> frozenset[str]:
    """The answer keys this stage's page fills (header facts and the status excluded)."""
    return frozenset(
        f.key
        for f in form_fields(form)
        if f.key != form.judgements.status and _fills(form, stage, f.role)
    )


# --- reading what the browser posts ------------------------------------------------------------


def _line_field(form: FormDefinition, field: Field, column: Column | None = None) -> bool:
    if field.kind is not FieldKind.text:
        return True
    if column is not None:
        return column.role in LINE_ROLES
    return field.key == form.judgements.completed_by


def _clean(raw: object, limit: int) -> str:
    if not isinstance(raw, str):  # an uploaded file under an answer's name
        return ""
    raw = raw[: limit * 4]  # bounds the work below; CRLF and padding fit in it
    text = _CONTROL_CHARS.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    return text.strip()[:limit].strip()


def _posted_value(field: Field, raw: object, line: bool) -> str:
    value = _clean(raw, LINE_LIMIT if line else TEXT_LIMIT)
    if field.kind is FieldKind.choice and field.scale is not None and value:
        return field.scale.parse(value) or value  # kept as typed: validation names it
    return value


def _posted_rows(form: FormDefinition, item: Item, posted: Mapping[str, object]) -> dict[str, str]:
    """An action table's rows (up to MAX_ROWS), empty ones dropped, the rest renumbered from 1."""
    out: dict[str, str] = {}
    kept = 0
    for row in range(1, MAX_ROWS + 1):
        cells = {}
        for c in item.columns:
            raw = posted.get(item.cell_key(row, c))
            if raw:  # most of the MAX_ROWS rows are not there: no Field made for them
                field = item.cell_field(row, c)
                cells[c] = _posted_value(field, raw, _line_field(form, field, c))
            else:
                cells[c] = ""
        if any(cells.values()):
            kept += 1
            out.update({item.cell_key(kept, c): v for c, v in cells.items()})
    return out


def posted_values(
    form: FormDefinition, stage: str, posted: Mapping[str, str] | FormData
) -> dict[str, str]:
    """The answers a browser posted, keyed as the Word and Excel readers key them: every
    editable key outside action tables (an unchosen radio is ""), and the action rows."""
    keys = editable_keys(form, stage)
    values: dict[str, str] = {}
    for _, item in form.items():
        if item.kind == "table":
            if _fills(form, stage, item.role):
                values.update(_posted_rows(form, item, posted))
            continue
        for f in item.fields():
            if f.key in keys:
                values[f.key] = _posted_value(f, posted.get(f.key, ""), _line_field(form, f))
    return values


# --- the page ------------------------------------------------------------------------------------


def _box(form: FormDefinition, field: Field, column: Column | None) -> tuple[str, int]:
    """The control kind and length limit of a field that is not a choice."""
    if field.kind is FieldKind.date:
        return "date", LINE_LIMIT
    if _line_field(form, field, column):
        return "line", LINE_LIMIT
    return "text", TEXT_LIMIT


def _blank_row(form: FormDefinition, item: Item) -> RowView:
    """The row webform.js copies when the auditor adds one (ROW_MARK for its number)."""
    controls = []
    for c in item.columns:
        kind, limit = _box(form, item.cell_field(1, c), c)
        controls.append(Control(f"{item.key}.{ROW_MARK}.{c.id}", kind, c.label, limit=limit))
    return RowView(f"{item.key}.{ROW_MARK}", ROW_MARK, tuple(controls))


def _shown_value(field: Field, value: str) -> str:
    """A value as its control shows it: dates as <input type=date> wants them (ISO)."""
    if field.kind is FieldKind.date and value:
        day = parse_date(value)
        return day.isoformat() if day else value
    return value


class _Page:
    """Builds the views of one page; remembers which ids it made for the error summary."""

    def __init__(
        self,
        form: FormDefinition,
        stage: str,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        prepared: Mapping[str, str],
    ) -> None:
        self.form, self.stage, self.values = form, stage, values
        self.errors, self.prepared = errors, prepared
        self.ids: dict[str, str] = {}  # answer or row key -> the id of what shows it
        self.labels: dict[str, str] = {}

    def control(self, field: Field, label: str, column: Column | None = None) -> Control:
        value = _shown_value(field, self.values.get(field.key, ""))
        error = self.errors.get(field.key, "")
        if field.kind is FieldKind.choice and field.scale is not None:
            picked = field.scale.parse(value) if value else None
            choices = tuple(
                Choice(f"f-{field.key}-{n}", c, c == picked)
                for n, c in enumerate(field.scale.choices, start=1)
            )
            made = Control(field.key, "radio", label, value, choices, error=error)
        else:
            kind, limit = _box(self.form, field, column)
            made = Control(field.key, kind, label, value, limit=limit, error=error)
        self.ids[field.key], self.labels[field.key] = made.id, label
        return made

    def fills(self, field: Field) -> bool:
        return field.key != self.form.judgements.status and _fills(
            self.form, self.stage, field.role
        )

    def shown(self, field: Field, label: str) -> Shown | None:
        """A prepared answer, on the auditor's page of a two-stage tool."""
        if not (two_stage(self.form) and self.stage == "audit" and field.role == "preparer"):
            return None
        made = Shown(field.key, label, self.prepared.get(field.key, ""))
        self.ids[field.key], self.labels[field.key] = made.id, label
        return made

    def item(self, section: Section, item: Item) -> ItemView | None:
        if item.kind == "table":
            return self.table(item)
        legend = f"{item.number}. {item.label}" if item.number else item.label
        answer: Control | None = None
        extras: list[Control] = []
        shown: list[Shown] = []
        for f in item.fields():
            label = legend
            if f.key == item.evidence_key:
                label = item.evidence_label or section.evidence_label or "Evidence"
            elif f.key == item.comment_key:
                label = item.comment_label or "Comment"
            if self.fills(f):
                made = self.control(f, label)
                if f.key == item.key and item.kind in ("question", "choice"):
                    answer = made
                else:
                    extras.append(made)
            elif (found := self.shown(f, label)) is not None:
                shown.append(found)
        if answer is None and not extras and not shown:
            return None
        kind = "question" if item.kind in ("question", "choice") else "field"
        return ItemView(kind, item.key, legend, item.guidance, answer, tuple(extras), tuple(shown))

    def row(self, item: Item, number: int) -> RowView:
        key = f"{item.key}.{number}"
        self.ids[key], self.labels[key] = f"r-{key}", f"{item.label}, row {number}"
        controls = tuple(self.control(item.cell_field(number, c), c.label, c) for c in item.columns)
        return RowView(key, str(number), controls, self.errors.get(key, ""))

    def table(self, item: Item) -> ItemView | None:
        if not _fills(self.form, self.stage, item.role):
            return None
        filled = [
            r
            for r in range(1, MAX_ROWS + 1)
            if any(self.values.get(item.cell_key(r, c)) for c in item.columns)
        ]
        count = min(MAX_ROWS, max(item.rows, (filled[-1] if filled else 0) + 1))
        rows = tuple(self.row(item, r) for r in range(1, count + 1))
        view = TableView(item.key, item.label, rows, _blank_row(self.form, item))
        return ItemView("table", item.key, item.label, item.guidance, table=view)

    def section(self, section: Section) -> SectionView | None:
        items = tuple(v for v in (self.item(section, i) for i in section.items) if v is not None)
        if not items:
            return None
        return SectionView(
            section.id,
            section.title,
            section.guidance,
            section.indicators,
            items,
            section.part,
            section.joins_previous,
        )


def _target(form: FormDefinition, key: str) -> str:
    """The answer or row key an issue's field names: validation names action rows
    "<table>.<row>" and action dates "<table>.<row>.<column role>"."""
    if form.field_or_none(key) is not None:
        return key
    for table in form.tables():
        rest = key.removeprefix(table.key + ".")
        if rest == key:
            continue
        row, _, role = rest.partition(".")
        if not row.isdigit():
            continue
        column = next((c for c in table.columns if c.role == role), None)
        return table.cell_key(int(row), column) if column else f"{table.key}.{row}"
    return key


def issue_message(issue: Issue) -> str:
    """An issue in plain words for the auditor: without the file and field it names."""
    fix = WEB_FIXES.get(issue.code)
    if fix:
        return fix
    message = issue.message
    file, field = printable(issue.file), printable(issue.field)
    for prefix in (f"[{file} · {field}] ", f"[{file}] "):
        message = message.removeprefix(prefix)
    return message


def _field_errors(form: FormDefinition, issues: Sequence[Issue]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for issue in issues:
        if issue.field:
            found.setdefault(_target(form, issue.field), []).append(issue_message(issue))
    return {key: " ".join(messages) for key, messages in found.items()}


def _issue_views(form: FormDefinition, page: _Page, issues: Sequence[Issue]) -> list[IssueView]:
    views = []
    for issue in issues:
        target = _target(form, issue.field) if issue.field else ""
        where = page.labels.get(target, "")
        if len(where) > 90:
            where = where[:89] + "…"
        views.append(
            IssueView(page.ids.get(target, ""), where, issue_message(issue), issue.is_warning)
        )
    return views


def _fact_groups(
    form: FormDefinition, facts: Mapping[str, str]
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The pre-filled facts under the paper header's group headings, their placeholders
    filled as the Word tool fills them (`{column}`, `{column:years}`)."""

    def fact(column: str) -> str:
        return facts.get(column, facts.get(f"header.{column}", ""))

    def placeholder(column: str, modifier: str) -> str:
        return years_of(fact(column), clock.today()) if modifier == "years" else fact(column)

    return [
        (heading_text(heading, placeholder), [(h.label, fact(h.column)) for h in group])
        for heading, group in form.header_groups()
    ]


def form_context(
    form: FormDefinition,
    stage: str,
    facts: Mapping[str, str],
    values: Mapping[str, str],
    issues: Sequence[Issue] = (),
    prepared: Mapping[str, str] | None = None,
    amendment: str = "",
    saved_at: str = "",
) -> dict[str, object]:
    """What webform.html shows: `facts` by header column (read-only), `values` the current
    answers by key (a draft or a return), `issues` from validation (a summary linking to each
    field, and each message beside its field), `prepared` the prepared return's answers by
    key (two-stage tools, shown read-only on the auditor's page), `amendment` the reason an
    officer reopened the form."""
    page = _Page(form, stage, values, _field_errors(form, issues), prepared or {})
    concern_key = form.judgements.concern
    concern = next(
        (s for s in form.sections if concern_key and any(i.key == concern_key for i in s.items)),
        None,
    )
    concern_view = page.section(concern) if concern is not None else None
    sections = [page.section(s) for s in form.sections if s is not concern]
    grades = form.descriptors_scale
    shown_issues = _issue_views(form, page, issues)
    return {
        "form_title": form.title,
        "stage": stage,
        "two_stage": two_stage(form),
        "concern": concern_view,
        "facts": _fact_groups(form, facts),
        "grades_title": DESCRIPTORS_TITLE,
        "grades": [(c, grades.descriptors.get(c, "")) for c in grades.choices] if grades else [],
        "guidance": form.guidance,
        "sections": [s for s in sections if s is not None],
        "issues": shown_issues,
        "has_errors": any(not i.warning for i in shown_issues),
        "amendment": amendment,
        "saved_at": saved_at,
        "max_rows": MAX_ROWS,
    }
