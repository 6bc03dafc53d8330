"""The audit list a manager works with: audits searched, filtered, sorted, counted and paged
in SQL (COUNT, then ORDER BY with LIMIT/OFFSET), so a page stays quick at 100,000 audits.

A search looks at the audit id and case number, and (for roles that see names) at the
child's or member of staff's name in the audit's pre-filled facts, read with the database's
own JSON functions. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool.store.schema import OUTSTANDING, audits, concerns, grades, returns

_a, _g, _r, _c = audits.c, grades.c, returns.c, concerns.c

#: The facts holding a subject's name: a child's (case-file tools) or staff member's.
NAME_FACTS = ("given_names", "family_name", "staff_name")
_GRADE = sa.func.coalesce(sa.func.nullif(_g.moderated_grade, ""), _g.auditor_grade, "")
#: What the list sorts by: a column's name on the page -> the expression. Ties go by audit id.
SORTS: dict[str, Any] = {
    "audit": _a.audit_id,
    "case": _a.case_number,
    "tool": _a.form_id,
    "team": _a.team,
    "auditor": _a.auditor,
    "month": _a.month,
    "state": _a.state,
    "due": _a.due_date,
    "grade": _GRADE,
}


@dataclass(frozen=True)
class ListFilter:
    """Which audits a list shows. Empty or None: no filter of that kind."""

    first_month: str | None = None  # YYYY-MM, inclusive
    last_month: str | None = None
    states: tuple[str, ...] | None = None  # () shows nothing: no state was left
    team: str = ""
    auditor: str = ""
    form_id: str = ""
    overdue_on: dt.date | None = None  # only audits still owed and due before this day
    warnings: bool = False  # only audits whose current return carries warnings
    concern: str = ""  # "open": with a concern no action was recorded for; "any": with one
    search: str = ""  # part of the audit id or case number (any case)
    names: bool = False  # the search looks at the subject's name too
    hidden_activities: tuple[str, ...] = ()  # staff audits of these activities are left out


@dataclass(frozen=True)
class ListPage:
    """One page of the list, and how many audits match in all."""

    rows: list[Any]
    total: int


def _fact(conn: sa.Connection, key: str) -> Any:
    """One pre-filled fact as text ('' when the audit has none)."""
    if conn.dialect.name == "postgresql":
        found = sa.func.json_extract_path_text(sa.cast(_a.facts, sa.JSON), key)
    else:
        found = sa.func.json_extract(_a.facts, f"$.{key}")
    return sa.func.coalesce(found, "", type_=sa.String)


def _contains(expression: Any, text: str) -> Any:
    lowered = sa.func.lower(expression, type_=sa.String)
    return lowered.contains(text.lower(), autoescape=True)


def _search(conn: sa.Connection, text: str, names: bool) -> Any:
    places = [_a.audit_id, _a.case_number]
    if names:
        given, family, staff = (_fact(conn, k) for k in NAME_FACTS)
        places += [given + " " + family, family + " " + given, staff]
    return sa.or_(*(_contains(p, text) for p in places))


def _where(conn: sa.Connection, f: ListFilter) -> list[Any]:
    clauses: list[Any] = []
    if f.first_month:
        clauses.append(_a.month >= f.first_month)
    if f.last_month:
        clauses.append(_a.month <= f.last_month)
    if f.states is not None:
        clauses.append(_a.state.in_(list(f.states)))
    for column, value in ((_a.team, f.team), (_a.auditor, f.auditor), (_a.form_id, f.form_id)):
        if value:
            clauses.append(column == value)
    if f.overdue_on is not None:
        clauses += [_a.state.in_([s.value for s in OUTSTANDING]), _a.due_date < f.overdue_on]
    if f.warnings:
        clauses.append(_r.warnings.not_in(["[]", ""]))
    if f.concern:
        raised = sa.select(_c.id).where(_c.audit_id == _a.audit_id)
        if f.concern == "open":
            raised = raised.where(_c.action_taken == "")
        clauses.append(raised.exists())
    if f.search:
        clauses.append(_search(conn, f.search, f.names))
    if f.hidden_activities:
        clauses.append((_a.subject_kind == "case") | _a.activity.not_in(list(f.hidden_activities)))
    return clauses


def _joined(grade: bool = True, current: bool = True) -> Any:
    """The audits with their grades and current return (each left out when not needed)."""
    joined: Any = audits
    if grade:
        joined = joined.outerjoin(grades, _g.audit_id == _a.audit_id)
    if current:
        joined = joined.outerjoin(returns, (_r.audit_id == _a.audit_id) & _r.is_current)
    return joined


def audit_list(
    conn: sa.Connection,
    f: ListFilter,
    sort: str = "audit",
    descending: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> ListPage:
    """The audits `f` lets through, sorted by the column `sort` (a key of SORTS), `limit`
    of them from `offset` (every one with None), and how many there are in all."""
    where = _where(conn, f)
    counted = _joined(grade=False, current=f.warnings)
    total = conn.execute(sa.select(sa.func.count()).select_from(counted).where(*where))
    key = SORTS[sort]
    order = (key.desc() if descending else key.asc(), _a.audit_id.asc())
    # The page's audits are chosen first, from the audits alone where the filter and sort
    # allow (an index does it), and only those few are joined to grades, returns, concerns.
    page = (
        sa.select(_a.audit_id)
        .select_from(_joined(grade=sort == "grade", current=f.warnings))
        .where(*where)
        .order_by(*order)
        .offset(offset)
        .limit(limit)
        .subquery()
    )
    open_concerns = (
        sa.select(sa.func.count(_c.id))
        .where((_c.audit_id == _a.audit_id) & (_c.action_taken == ""))
        .scalar_subquery()
    )
    query = (
        sa.select(
            _a.audit_id,
            _a.case_number,
            _a.form_id,
            _a.team,
            _a.auditor,
            _a.month,
            _a.state,
            _a.due_date,
            _a.original_due_date,
            _a.facts,
            _a.subject_kind,
            _GRADE.label("grade"),
            _r.id.label("return_id"),
            _r.final,
            _r.warnings,
            open_concerns.label("open_concerns"),
        )
        .select_from(_joined().join(page, page.c.audit_id == _a.audit_id))
        .order_by(*order)
    )
    return ListPage(list(conn.execute(query).all()), int(total.scalar_one()))


def list_choices(conn: sa.Connection, f: ListFilter) -> tuple[list[str], list[str]]:
    """The teams and auditors of the audits `f` lets through, for the list's filter."""
    where = _where(conn, f)
    found = []
    for column in (_a.team, _a.auditor):
        query = (
            sa.select(column)
            .select_from(_joined(grade=False, current=f.warnings))
            .where(*where, column != "")
            .distinct()
            .order_by(column)
        )
        found.append(list(conn.execute(query).scalars()))
    return found[0], found[1]


def staff_activities(conn: sa.Connection) -> list[str]:
    """The activities with audits about a member of staff (whose results are staff data)."""
    query = (
        sa.select(_a.activity)
        .where((_a.subject_kind != "case") & (_a.activity != ""))
        .distinct()
        .order_by(_a.activity)
    )
    return list(conn.execute(query).scalars())
