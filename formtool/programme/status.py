"""What the database says: the month's status (by state, team and auditor, and which audits
are outstanding or overdue), and exports of answers and actions for analysts.

`status` is the one source of the month's figures: `formtool status`, its `--json` and the
web dashboard all print what it returns.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from formtool import clock, store
from formtool.definitions import FormDefinition
from formtool.errors import FormtoolError
from formtool.store import StateError, Store

S = store.AuditState
DONE = store.COMPLETED | {S.filed_unaudited}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TALLIES = ("audits", "returned", "outstanding", "overdue")


@dataclass(frozen=True)
class Outstanding:
    audit_id: str
    case_number: str
    form_id: str
    auditor: str
    team: str
    state: str
    due: dt.date
    days_overdue: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"due": self.due.isoformat()}


@dataclass
class StatusReport:
    month: str  # YYYY-MM or "all"
    today: dt.date
    audits: int
    by_state: dict[str, int]
    teams: dict[str, dict[str, int]]
    auditors: dict[str, dict[str, int]]
    outstanding: list[Outstanding] = field(default_factory=list)

    @property
    def overdue(self) -> list[Outstanding]:
        return [o for o in self.outstanding if o.days_overdue > 0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "today": self.today.isoformat(),
            "audits": self.audits,
            "by_state": self.by_state,
            "teams": self.teams,
            "auditors": self.auditors,
            "outstanding": [o.as_dict() for o in self.outstanding],
            "overdue": [o.audit_id for o in self.overdue],
        }


def _tally(rows: list[Any], key: str, today: dt.date) -> dict[str, dict[str, int]]:
    groups: dict[str, Counter[str]] = {}
    for row in rows:
        tally = groups.setdefault(getattr(row, key), Counter())
        state = S(row.state)
        tally["audits"] += 1
        tally["returned"] += state in DONE
        tally["outstanding"] += state in store.OUTSTANDING
        tally["overdue"] += state in store.OUTSTANDING and row.due_date < today
    return {name: {t: tally[t] for t in TALLIES} for name, tally in sorted(groups.items())}


def audit_list(db: Store, month: str, state: str | None = None) -> list[Any]:
    """The month's audits (in one state, if given), in audit id order."""
    return db.audit_rows([month], [state] if state else None)


def status(db: Store, month: str | None = None, today: dt.date | None = None) -> StatusReport:
    """Audits by state; returned / outstanding / overdue per team and auditor; the list of
    outstanding audits, most overdue first."""
    today = today or clock.today()
    rows = db.audit_rows([month] if month else None)
    by_state = Counter(row.state for row in rows)
    outstanding = sorted(
        (
            Outstanding(
                r.audit_id,
                r.case_number,
                r.form_id,
                r.auditor,
                r.team,
                r.state,
                r.due_date,
                max(0, (today - r.due_date).days),
            )
            for r in rows
            if S(r.state) in store.OUTSTANDING
        ),
        key=lambda o: (-o.days_overdue, o.due, o.audit_id),
    )
    return StatusReport(
        month or "all",
        today,
        len(rows),
        {s.value: by_state[s.value] for s in S if by_state.get(s.value)},
        _tally(rows, "team", today),
        _tally(rows, "auditor", today),
        outstanding,
    )


# --- export --------------------------------------------------------------------------------

AUDIT_COLUMNS = (
    "audit_id",
    "form_id",
    "form_version",
    "case_number",
    "team",
    "auditor",
    "month",
    "due_date",
    "state",
    "file_name",
    "imported_at",
    "final",
)
ANSWER_COLUMNS = (*AUDIT_COLUMNS, "section", "key", "question", "value", "comment")
ACTION_COLUMNS = (
    "audit_id",
    "form_id",
    "case_number",
    "team",
    "table",
    "row",
    "action",
    "recommendation",
    "responsible_role",
    "responsible_person",
    "due_date",
    "sign_off",
    "sign_off_date",
    "comments",
)
TABLES = ("answers", "actions")


@dataclass
class Export:
    """Every current return's answers (with question text) and action rows."""

    answers: list[dict[str, Any]]
    actions: list[dict[str, Any]]


def _labels(form: FormDefinition | None) -> dict[str, tuple[str, str]]:
    """key -> (section title, question text) for a form's answers and tables."""
    if form is None:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for section, item in form.items():
        found[item.key] = (section.title, item.label)
        if item.comment:
            found[item.comment_key] = (
                section.title,
                item.comment_label or f"{item.label} (comment)",
            )
    return found


def export_data(db: Store) -> Export:
    answer_rows, audit_list, actions = db.export_rows()
    audits = {r.audit_id: r for r in audit_list}
    labels: dict[tuple[str, int], dict[str, tuple[str, str]]] = {}
    answers = []
    for row in answer_rows:
        key = (row.form_id, row.form_version)
        if key not in labels:
            labels[key] = _labels(db.form_for(*key))
        section, question = labels[key].get(row.key, ("", ""))
        answers.append(
            {c: getattr(row, c) for c in AUDIT_COLUMNS}
            | {
                "section": section,
                "key": row.key,
                "question": question,
                "value": row.value,
                "comment": row.comment,
            }
        )
    action_rows = []
    for row in actions:
        audit = audits[row.audit_id]
        section = labels.get((audit.form_id, audit.form_version), {}).get(row.table_key, ("", ""))[
            0
        ]
        action_rows.append(
            {
                "audit_id": row.audit_id,
                "form_id": audit.form_id,
                "case_number": audit.case_number,
                "team": audit.team,
                "table": section or row.table_key,
                "row": row.row,
                **{c: getattr(row, c) for c in ACTION_COLUMNS[6:]},
            }
        )
    return Export(answers, action_rows)


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def _csv_safe(text: str) -> str:
    """Stop spreadsheet programs evaluating auditors' text as a formula (CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _json_value(value: Any) -> Any:
    return value if isinstance(value, bool | int) or value is None else _text(value)


def _nested(data: Export) -> list[dict[str, Any]]:
    """One object per audit: its details, answers by key and action rows."""
    audits: dict[str, dict[str, Any]] = {}
    for row in data.answers:
        audit = audits.setdefault(
            row["audit_id"],
            {**{c: _json_value(row[c]) for c in AUDIT_COLUMNS}, "answers": [], "actions": []},
        )
        audit["answers"].append(
            {k: row[k] for k in ("section", "key", "question", "value", "comment")}
        )
    for row in data.actions:
        if row["audit_id"] in audits:
            audits[row["audit_id"]]["actions"].append(
                {
                    k: _json_value(v)
                    for k, v in row.items()
                    if k not in ("audit_id", "form_id", "case_number", "team")
                }
            )
    return list(audits.values())


def write_export(data: Export, fmt: str, out: Path | None, table: str = "answers") -> bytes:
    """The export as CSV (one table), XLSX (both tables) or JSON (nested per audit)."""
    if fmt == "json":
        payload = json.dumps(_nested(data), indent=2, ensure_ascii=False).encode("utf-8")
    elif fmt == "csv":
        if table not in TABLES:
            raise FormtoolError(f"Unknown table '{table}'. Use answers or actions.")
        columns = ANSWER_COLUMNS if table == "answers" else ACTION_COLUMNS
        rows = data.answers if table == "answers" else data.actions
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_csv_safe(_text(row[c])) for c in columns] for row in rows)
        payload = buffer.getvalue().encode("utf-8-sig")  # BOM: Excel then reads UTF-8 right
    elif fmt == "xlsx":
        payload = _xlsx(data)
    else:
        raise FormtoolError(f"Unknown export format '{fmt}'. Use csv, xlsx or json.")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(payload)
    return payload


WIDTHS = {
    "audit_id": 24,
    "form_id": 18,
    "case_number": 14,
    "team": 24,
    "auditor": 24,
    "section": 30,
    "question": 60,
    "value": 22,
    "comment": 60,
    "action": 50,
    "recommendation": 40,
    "table": 30,
    "comments": 40,
    "file_name": 30,
}


def _xlsx(data: Export) -> bytes:
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
    head = book.add_format(
        {"bold": True, "bg_color": "#DCE3F0", "border": 1, "text_wrap": True, "valign": "top"}
    )
    date = book.add_format({"num_format": "dd/mm/yyyy", "valign": "top"})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    for name, columns, rows in (
        ("Answers", ANSWER_COLUMNS, data.answers),
        ("Actions", ACTION_COLUMNS, data.actions),
    ):
        sheet = book.add_worksheet(name)
        for c, column in enumerate(columns):
            sheet.write_string(0, c, column, head)
            sheet.set_column(c, c, WIDTHS.get(column, 12), wrap)
        for r, row in enumerate(rows, start=1):
            for c, column in enumerate(columns):
                value = row[column]
                if isinstance(value, dt.datetime | dt.date):
                    value = (
                        value
                        if isinstance(value, dt.datetime)
                        else dt.datetime.combine(value, dt.time())
                    )
                    sheet.write_datetime(r, c, value, date)
                elif isinstance(value, bool):
                    sheet.write_boolean(r, c, value)
                elif isinstance(value, int):
                    sheet.write_number(r, c, value)
                elif value not in (None, ""):
                    sheet.write_string(r, c, str(value))  # text stays text, never a formula
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(1, len(rows)), len(columns) - 1)
    book.close()
    return out.getvalue()


# --- one audit ---------------------------------------------------------------------------


@dataclass
class AuditDetail:
    """Everything about one audit, as the web workspace's audit page shows it."""

    audit: dict[str, Any]  # id, form, version, case, auditor, team, month, due, state, grades
    facts: list[tuple[str, str]]  # (printed label, value)
    sections: list[dict[str, Any]]  # title, rows of (question, answer, evidence/comment)
    actions: list[dict[str, Any]]
    warnings: list[dict[str, str]]  # issue data with message
    returns: list[dict[str, Any]]  # every return, newest first (no bytes)
    events: list[dict[str, Any]]
    next_steps: list[str]  # what can be done now: accept, amend, moderate, signoff, close

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _steps(state: str, graded: bool) -> list[str]:
    """The QA steps open to an audit in this state (the state machine decides)."""
    state_ = S(state)
    allowed = store.TRANSITIONS[state_]
    steps = []
    if S.checked in allowed:
        steps += ["accept", "amend"]
    if graded and (S.moderated in allowed or state_ in (S.actions_signed_off, S.closed)):
        steps.append("moderate")
    if S.actions_signed_off in allowed:
        steps.append("signoff")
    if S.closed in allowed and state_ is not S.returned:
        steps.append("close")
    return steps


def audit_detail(db: Store, audit_id: str) -> AuditDetail:
    from formtool.errors import Issue

    found = db.audit_records(audit_id)
    if found is None:
        raise StateError(
            f"Audit {audit_id} is not in the database. Check the id "
            "(`formtool status` lists the month's audits)."
        )
    row, answers, actions = found.row, found.answers, found.actions
    history, events = found.history, found.events
    form = db.form_for(row.form_id, row.form_version)
    facts_raw = store.audit_facts(row)
    facts = (
        [(h.label, facts_raw.get(h.column, "")) for h in form.header]
        if form
        else sorted(facts_raw.items())
    )
    sections = []
    for section in form.sections if form else ():
        shown = [
            (
                i.label,
                answers.get(i.key, ("", ""))[0],
                "\n".join(
                    p
                    for p in (
                        answers.get(i.key, ("", ""))[1],
                        answers.get(i.comment_key, ("", ""))[0],
                    )
                    if p
                ),
            )
            for i in section.items
            if i.kind != "table"
        ]
        if any(a or e for _, a, e in shown):
            sections.append({"title": section.title, "rows": shown})
    file = row.file_name or ""
    warnings = (
        [
            Issue.from_data(w, file).as_dict() if w.get("code") else w
            for w in store.stored_warnings(row.warnings)
        ]
        if row.return_id
        else []
    )
    audit = {
        k: _text(getattr(row, k))
        for k in (
            "audit_id",
            "form_id",
            "form_version",
            "case_number",
            "auditor",
            "team",
            "month",
            "due_date",
            "state",
            "auditor_grade",
            "moderated_grade",
            "moderated_by",
        )
    }
    audit["title"] = form.title if form else row.form_id
    return AuditDetail(
        audit,
        facts,
        sections,
        [
            {
                c: _text(getattr(a, c))
                for c in (
                    "table_key",
                    "row",
                    "action",
                    "recommendation",
                    "responsible_person",
                    "due_date",
                    "sign_off",
                    "sign_off_date",
                )
            }
            for a in actions
        ],
        warnings,
        [
            {
                "id": r.id,
                "file_name": r.file_name,
                "saved_at": _text(r.saved_at),
                "imported_at": _text(r.imported_at),
                "current": r.is_current,
                "final": r.final,
                "stage": r.stage,
                "sender": r.sender,
            }
            for r in history
        ],
        [
            {"at": _text(e.at), "event": e.event, "detail": e.detail, "user": e.user_name}
            for e in events
        ],
        _steps(row.state, bool(row.auditor_grade or row.moderated_grade)),
    )


@dataclass(frozen=True)
class ReturnFileData:
    """A stored return's original file: its audit, its name (as returned) and its bytes."""

    audit_id: str
    name: str
    data: bytes


def return_file(db: Store, return_id: int) -> ReturnFileData:
    """A stored return's original file: its audit, name (as returned) and bytes."""
    found = None
    if 0 < return_id < 2**31:  # ids are 32-bit: a longer number is simply not there
        found = db.return_content(return_id)
    if found is None:
        raise FormtoolError(f"Return {return_id} is not in the database.")
    return ReturnFileData(found.audit_id, found.file_name.split(" › ")[-1], bytes(found.content))
