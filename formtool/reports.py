"""What the database says: audit status by state, auditor and team; and flat exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formtool import store
from formtool.errors import FormtoolError

OUTSTANDING = store.OUTSTANDING_STATES
EXPORT_COLUMNS = (
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
    "key",
    "value",
    "comment",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def status(
    engine: sa.Engine, month: str | None = None, today: dt.date | None = None
) -> dict[str, Any]:
    """Audits by state; returned / outstanding / overdue per auditor and per team."""
    today = today or dt.date.today()
    a = store.audits.c
    query = sa.select(a.audit_id, a.auditor, a.team, a.state, a.due_date, a.month)
    if month:
        query = query.where(a.month == month)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(a.audit_id)).all()
    by_state = Counter(r.state for r in rows)
    groups: dict[str, dict[str, dict[str, Any]]] = {"auditors": {}, "teams": {}}
    overdue_ids = []
    for row in rows:
        overdue = row.state in OUTSTANDING and row.due_date < today
        if overdue:
            overdue_ids.append(row.audit_id)
        for group, name in (("auditors", row.auditor), ("teams", row.team)):
            tally = groups[group].setdefault(name, defaultdict(int))
            tally["audits"] += 1
            tally["outstanding" if row.state in OUTSTANDING else "returned"] += 1
            tally["overdue"] += overdue
    return {
        "month": month or "all",
        "today": today.isoformat(),
        "audits": len(rows),
        "by_state": {s: by_state.get(s, 0) for s in store.STATES if by_state.get(s)},
        "auditors": {k: dict(v) for k, v in sorted(groups["auditors"].items())},
        "teams": {k: dict(v) for k, v in sorted(groups["teams"].items())},
        "overdue": overdue_ids,
    }


def export_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every answer of every current return, one row each, with its audit's metadata."""
    a, r, ans = store.audits.c, store.returns.c, store.answers.c
    query = (
        sa.select(
            a.audit_id,
            a.form_id,
            a.form_version,
            a.case_number,
            a.team,
            a.auditor,
            a.month,
            a.due_date,
            a.state,
            r.file_name,
            r.imported_at,
            r.final,
            ans.key,
            ans.value,
            ans.comment,
        )
        .join(store.returns, r.audit_id == a.audit_id)
        .join(store.answers, ans.return_id == r.id)
        .where(r.is_current)
        .order_by(a.audit_id, ans.id)
    )
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def _csv_safe(text: str) -> str:
    """Stop spreadsheet programs evaluating auditors' text as a formula (CSV injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def write_export(rows: list[dict[str, Any]], fmt: str, out: Path | None) -> bytes:
    """The rows as CSV, XLSX or JSON bytes (also written to `out` if given)."""
    if fmt == "json":
        data = json.dumps(
            [
                {k: _text(v) if not isinstance(v, bool | int) else v for k, v in row.items()}
                for row in rows
            ],
            indent=2,
            ensure_ascii=False,
        ).encode("utf-8")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        writer.writerows([_csv_safe(_text(row[c])) for c in EXPORT_COLUMNS] for row in rows)
        data = buffer.getvalue().encode("utf-8-sig")  # BOM: Excel then reads UTF-8 correctly
    elif fmt == "xlsx":
        data = _xlsx(rows)
    else:
        raise FormtoolError(f"Unknown export format '{fmt}'. Use csv, xlsx or json.")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return data


def _xlsx(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Answers")
    sheet.append(list(EXPORT_COLUMNS))
    for row in rows:
        cells = []
        for column in EXPORT_COLUMNS:
            value = row[column]
            cell = WriteOnlyCell(
                sheet, value=value if isinstance(value, dt.date | int) else _text(value)
            )
            if isinstance(cell.value, str):
                cell.data_type = "s"  # auditors' text is never a formula
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
