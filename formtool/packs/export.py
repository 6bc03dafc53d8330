"""`formtool export`: every current return's answers (with the question text) and action rows,
for analysts, as CSV (one table), Excel (both tables) or JSON (nested per audit).

Text auditors typed never becomes a formula in a spreadsheet (CSV injection): a cell that
starts like one is prefixed with an apostrophe, and the Excel writer writes text as text.

The workbook is an accessible document: its title set, and each sheet's header row marked
(`header_row`: printed at the top of every page, and named ColumnTitle, which screen readers
use to announce a cell's column heading).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formtool.definitions import ACTION_ROLES, FormDefinition
from formtool.errors import FormtoolError
from formtool.periods import iso_text
from formtool.store import Store

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
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
    "action",  # the action first: it is what an analyst filters on
    *(r for r in ACTION_ROLES if r != "action"),
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


def csv_safe(text: str) -> str:
    """Stop spreadsheet programs evaluating auditors' text as a formula (CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _json_value(value: Any) -> Any:
    return value if isinstance(value, bool | int) or value is None else iso_text(value)


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
        writer.writerows([csv_safe(iso_text(row[c])) for c in columns] for row in rows)
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


def header_row(book: Any, sheet: Any, columns: int) -> None:
    """Mark row 1 of an xlsxwriter sheet as its header row: repeated at the top of every
    printed page, and named ColumnTitle (a name scoped to the sheet) for screen readers."""
    from openpyxl.utils import get_column_letter

    sheet.repeat_rows(0)
    name = "'" + sheet.name.replace("'", "''") + "'"
    last = get_column_letter(max(1, columns))
    book.define_name(f"{name}!ColumnTitle", f"={name}!$A$1:${last}$1")


def text_workbook(out: io.BytesIO) -> Any:
    """An xlsxwriter workbook writing into `out` in which text stays text: never a formula,
    a URL or a number, whatever an answer starts with (the export's formula guard)."""
    import xlsxwriter

    return xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )


def _xlsx(data: Export) -> bytes:
    out = io.BytesIO()
    book = text_workbook(out)
    book.set_properties(
        {
            "title": "Answers and actions of every current return",
            "author": "formtool",
            "created": dt.datetime(2000, 1, 1),  # no time stamp: the same data, the same bytes
        }
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
        header_row(book, sheet, len(columns))
    book.close()
    return out.getvalue()
