"""Reading the store: the rows status, export, mail, moderation, allocation and packs need.

Each function takes an open connection and returns plain rows; callers decide what the rows
mean. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any

import sqlalchemy as sa

from formtool.definitions import PREPARED
from formtool.store.schema import actions, answers, audits, events, grades, returns

_a, _g, _r = audits.c, grades.c, returns.c


def audit_rows(
    conn: sa.Connection,
    months: Collection[str] | None = None,
    states: Collection[str] | None = None,
    overdue_on: dt.date | None = None,
    audit_ids: Collection[str] | None = None,
    run_id: int | None = None,
    case_numbers: Collection[str] | None = None,
    brief: bool = False,
) -> list[Any]:
    """Audits with their grades and current return (id, file, dates), in audit id order
    (`audit_ids` or else `case_numbers`: only those; `brief`: without the pre-filled facts,
    the longest column, for callers that only count)."""
    columns = [c for c in audits.c if c.name != "facts"] if brief else [audits]
    query = (
        sa.select(
            *columns,
            _g.auditor_grade,
            _g.moderated_grade,
            _g.moderated_by,
            _g.moderated_at,
            _r.id.label("return_id"),
            _r.file_name,
            _r.imported_at,
            _r.received_on,
            _r.saved_at,
            _r.final,
            _r.stage,
            _r.content_hash,
            _r.warnings,
            _r.method,
            _r.sender,
            _r.sent_at,
        )
        .outerjoin(grades, _g.audit_id == _a.audit_id)
        .outerjoin(returns, (_r.audit_id == _a.audit_id) & _r.is_current)
    )
    if months is not None:
        query = query.where(_a.month.in_(list(months)))
    if states is not None:
        query = query.where(_a.state.in_(list(states)))
    if overdue_on is not None:
        query = query.where(_a.due_date < overdue_on)
    if run_id is not None:
        query = query.where(_a.run_id == run_id)
    if audit_ids is None and case_numbers is None:
        return list(conn.execute(query.order_by(_a.audit_id)).all())
    # Long lists are asked for a chunk at a time (SQLite limits a statement's parameters).
    column, wanted = (
        (_a.audit_id, audit_ids) if audit_ids is not None else (_a.case_number, case_numbers)
    )
    assert wanted is not None
    found: list[Any] = []
    for chunk in _chunks(sorted(set(wanted))):
        found += conn.execute(query.where(column.in_(chunk))).all()
    return sorted(found, key=lambda row: row.audit_id)


def graded_rows(
    conn: sa.Connection,
    months: Collection[str] | None = None,
    case_numbers: Collection[str] | None = None,
    facts: bool = True,
    other_than: Collection[str] = (),
) -> list[Any]:
    """The audits (of `months`, or of `case_numbers` outside the months `other_than`) with
    only what figures and follow-ups
    read: tool, case, team, auditor, month, due date, state, grades, the current return's id
    and when it came in, the activity, and (`facts`) the pre-filled facts; audit id order.
    A year's figures read 100,000 of these, so no column more."""
    columns = [
        *(_a.audit_id, _a.form_id, _a.form_version, _a.case_number, _a.team, _a.auditor),
        *(_a.month, _a.due_date, _a.state, _a.activity, _a.run_id, _a.subject_kind),
        *((_a.facts,) if facts else ()),
        *(_g.auditor_grade, _g.moderated_grade, _g.moderated_by),
        *(_r.id.label("return_id"), _r.received_on, _r.imported_at),
    ]
    query = (
        sa.select(*columns)
        .outerjoin(grades, _g.audit_id == _a.audit_id)
        .outerjoin(returns, (_r.audit_id == _a.audit_id) & _r.is_current)
    )
    if months is not None:
        query = query.where(_a.month.in_(list(months)))
    if other_than:
        query = query.where(_a.month.not_in(list(other_than)))
    if case_numbers is None:
        return list(conn.execute(query.order_by(_a.audit_id)).all())
    found: list[Any] = []
    for chunk in _chunks(sorted(set(case_numbers))):
        found += conn.execute(query.where(_a.case_number.in_(chunk))).all()
    return sorted(found, key=lambda row: row.audit_id)


def audit_facts(conn: sa.Connection, audit_ids: Iterable[str]) -> dict[str, str]:
    """Audit id -> its pre-filled facts as stored (JSON), for many audits."""
    found: dict[str, str] = {}
    for chunk in _chunks(list(audit_ids)):
        rows = conn.execute(sa.select(_a.audit_id, _a.facts).where(_a.audit_id.in_(chunk)))
        found.update(rows.all())
    return found


def answers_by_return(
    conn: sa.Connection, return_ids: Iterable[int]
) -> dict[int, dict[str, tuple[str, str]]]:
    """Return id -> key -> (value, comment), for many returns in one query."""
    ids = [i for i in return_ids if i is not None]
    found: dict[int, dict[str, tuple[str, str]]] = defaultdict(dict)
    for chunk in _chunks(ids):
        rows = conn.execute(
            sa.select(answers.c.return_id, answers.c.key, answers.c.value, answers.c.comment)
            .where(answers.c.return_id.in_(chunk))
            .order_by(answers.c.id)
        )
        for return_id, key, value, comment in rows.all():  # at once: a year's are millions
            found[return_id][key] = (value, comment)
    return dict(found)


def _case_file_returns(months: Collection[str], states: Collection[str]) -> Any:
    """The current returns of the case-file audits (no programme activity) of these months in
    these states: what the PMU figures count (a draft or a return sent back is not current
    or its audit is not in a complete state)."""
    return (
        sa.and_(
            _r.is_current,
            _a.month.in_(list(months)),
            _a.state.in_(list(states)),
            _a.activity == "",
        ),
        returns.join(audits, _a.audit_id == _r.audit_id),
    )


def answer_counts(
    conn: sa.Connection, months: Collection[str], states: Collection[str], keys: Collection[str]
) -> list[Any]:
    """How many of those audits gave each answer to each of `keys`: (form_id, key, value, n),
    counted by the database (GROUP BY), not by reading every answer into Python."""
    where, joined = _case_file_returns(months, states)
    if not keys:
        return []
    query = (
        sa.select(_a.form_id, answers.c.key, answers.c.value, sa.func.count().label("n"))
        .select_from(joined.join(answers, answers.c.return_id == _r.id))
        .where(where, answers.c.key.in_(sorted(keys)))
        .group_by(_a.form_id, answers.c.key, answers.c.value)
    )
    return list(conn.execute(query).all())


def action_counts(
    conn: sa.Connection, months: Collection[str], states: Collection[str], as_of: dt.date
) -> dict[str, int]:
    """Those audits' action rows: raised, signed off, and open past their due date."""
    where, joined = _case_file_returns(months, states)
    c = actions.c
    done = (c.sign_off != "") | c.sign_off_date.is_not(None)
    late = sa.and_(sa.not_(done), c.due_date.is_not(None), c.due_date < as_of)
    row = conn.execute(
        sa.select(
            sa.func.count().label("raised"),
            sa.func.coalesce(sa.func.sum(sa.case((done, 1), else_=0)), 0).label("completed"),
            sa.func.coalesce(sa.func.sum(sa.case((late, 1), else_=0)), 0).label("overdue"),
        )
        .select_from(joined.join(actions, c.return_id == _r.id))
        .where(where)
    ).one()
    raised, completed = int(row.raised), int(row.completed)
    return {
        "raised": raised,
        "completed": completed,
        "open": raised - completed,
        "overdue": int(row.overdue),
    }


def status_counts(conn: sa.Connection, months: Collection[str] | None, today: dt.date) -> list[Any]:
    """The audits (of `months`, or all) counted by team, auditor, state and whether due
    before `today`: (team, auditor, state, late, n), for the month's status."""
    late = _a.due_date < today
    query = sa.select(
        _a.team, _a.auditor, _a.state, late.label("late"), sa.func.count().label("n")
    ).group_by(_a.team, _a.auditor, _a.state, late)
    if months is not None:
        query = query.where(_a.month.in_(list(months)))
    return list(conn.execute(query).all())


def grade_counts(conn: sa.Connection, months: Collection[str]) -> list[Any]:
    """The case-file audits of these months counted by tool, version, state and grades:
    (form_id, form_version, state, auditor_grade, moderated_grade, n), for the trend."""
    a = _a
    auditor = sa.func.coalesce(_g.auditor_grade, "").label("auditor_grade")
    moderated = sa.func.coalesce(_g.moderated_grade, "").label("moderated_grade")
    query = (
        sa.select(
            a.form_id, a.form_version, a.state, auditor, moderated, sa.func.count().label("n")
        )
        .select_from(audits.outerjoin(grades, _g.audit_id == a.audit_id))
        .where(a.month.in_(list(months)), a.activity == "")
        .group_by(a.form_id, a.form_version, a.state, auditor, moderated)
    )
    return list(conn.execute(query).all())


def action_total(conn: sa.Connection, return_ids: Iterable[int]) -> int:
    """How many action rows these returns hold (what `actions_by_return` would give)."""
    total = 0
    for chunk in _chunks([i for i in return_ids if i is not None]):
        query = sa.select(sa.func.count()).where(actions.c.return_id.in_(chunk))
        total += int(conn.execute(query).scalar_one())
    return total


def actions_by_return(conn: sa.Connection, return_ids: Iterable[int]) -> list[Any]:
    """Action rows of many returns, each with its audit id, in audit and row order."""
    ids = [i for i in return_ids if i is not None]
    rows: list[Any] = []
    for chunk in _chunks(ids):
        rows += conn.execute(
            sa.select(actions, _r.audit_id)
            .join(returns, _r.id == actions.c.return_id)
            .where(actions.c.return_id.in_(chunk))
        ).all()
    return sorted(rows, key=lambda row: (row.audit_id, row.id))


def _chunks(ids: list[Any], size: int = 5000) -> Iterable[list[Any]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def return_history(conn: sa.Connection, audit_id: str) -> list[Any]:
    """Every return of an audit, newest first (without the file bytes)."""
    columns = [c for c in returns.c if c.name not in ("content", "receipt")]
    return list(
        conn.execute(
            sa.select(*columns)
            .where(_r.audit_id == audit_id)
            .order_by(_r.saved_at.desc(), _r.id.desc())
        ).all()
    )


def return_content(conn: sa.Connection, return_id: int) -> Any:
    """A stored return's original file: name and bytes."""
    return conn.execute(
        sa.select(_r.audit_id, _r.file_name, _r.content, _r.stage).where(_r.id == return_id)
    ).first()


def prepared_return(conn: sa.Connection, audit_id: str) -> Any:
    """The newest prepared-stage return of a two-stage audit."""
    return conn.execute(
        sa.select(returns)
        .where((_r.audit_id == audit_id) & (_r.stage == PREPARED))
        .order_by(_r.saved_at.desc(), _r.id.desc())
    ).first()


def audit_events(conn: sa.Connection, audit_id: str) -> list[Any]:
    return list(
        conn.execute(
            sa.select(events).where(events.c.audit_id == audit_id).order_by(events.c.id)
        ).all()
    )


def graded_before(conn: sa.Connection, month: str) -> list[Any]:
    """Case-file audits of earlier months with a grade and a current return, for re-audit
    planning (an activity's judgement, a dip sample's, never schedules a re-audit)."""
    grade = sa.func.coalesce(sa.func.nullif(_g.moderated_grade, ""), _g.auditor_grade)
    return list(
        conn.execute(
            sa.select(
                _a.audit_id,
                _a.case_number,
                _a.form_id,
                _a.form_version,
                _a.month,
                _a.team,
                _a.facts,
                _a.state,
                grade.label("grade"),
                _r.imported_at,
                _r.received_on,
            )
            .join(grades, _g.audit_id == _a.audit_id)
            .join(returns, (_r.audit_id == _a.audit_id) & _r.is_current)
            .where((_a.month < month) & (grade != "") & (_a.activity == ""))
        ).all()
    )


def case_months(conn: sa.Connection) -> list[Any]:
    """(case, month) of every case-file audit."""
    return list(conn.execute(sa.select(_a.case_number, _a.month).where(_a.activity == "")).all())


def export_answer_rows(conn: sa.Connection) -> list[Any]:
    """Every answer of every current return, with its audit's details."""
    return list(
        conn.execute(
            sa.select(
                _a.audit_id,
                _a.form_id,
                _a.form_version,
                _a.case_number,
                _a.team,
                _a.auditor,
                _a.month,
                _a.due_date,
                _a.state,
                _r.file_name,
                _r.imported_at,
                _r.final,
                answers.c.key,
                answers.c.value,
                answers.c.comment,
            )
            .join(returns, _r.audit_id == _a.audit_id)
            .join(answers, answers.c.return_id == _r.id)
            .where(_r.is_current)
            .order_by(_a.audit_id, answers.c.id)
        ).all()
    )
