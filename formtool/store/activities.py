"""Runs of a programme's QA activities, as the database keeps them.

A run is one instance of an activity: a thematic audit on a theme, a month's dip samples,
observations or supervision audits. Its audits point at it (audits.run_id) and its report reads
it. A run's number is part of its audits' ids (TH3-C1001-202612), so runs are numbered under the
allocation lock (`next_run_id`) and recorded in the allocation's transaction, never by a
sequence that could hand out a number the ids did not use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool.store.audits import StateError
from formtool.store.engine import now
from formtool.store.schema import (
    COMPLETED,
    OUTSTANDING,
    AuditState,
    activity_runs,
    allocations,
    audits,
)

_r, _a = activity_runs.c, audits.c


@dataclass(frozen=True)
class RunRecord:
    """A run as an allocation (or `formtool activity start`) records it."""

    id: int
    activity: str
    kind: str
    name: str
    month: str
    due_date: dt.date
    theme: str = ""
    owner: str = ""
    chosen: str = ""  # how its subjects were chosen, in words
    review_of: int | None = None
    on_demand: bool = False


def next_run_id(conn: sa.Connection) -> int:
    """The number the next run takes (call under the allocation lock)."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(_r.id), 0))).scalar_one()) + 1


def record_runs(
    conn: sa.Connection,
    runs: Iterable[RunRecord],
    allocation_id: int,
    user: str,
    programme: tuple[str, int],
) -> None:
    stamp = now()
    for run in runs:
        conn.execute(
            activity_runs.insert().values(
                id=run.id,
                activity=run.activity,
                kind=run.kind,
                name=run.name,
                theme=run.theme,
                month=run.month,
                due_date=run.due_date,
                owner=run.owner,
                chosen=run.chosen,
                review_of=run.review_of,
                on_demand=run.on_demand,
                allocation_id=allocation_id,
                programme=programme[0],
                programme_version=programme[1],
                created_at=stamp,
                created_by=user,
            )
        )


def runs(
    conn: sa.Connection,
    activity: str | None = None,
    months: Collection[str] | None = None,
    ids: Collection[int] | None = None,
) -> list[Any]:
    """Runs with their audits counted (all, outstanding, exempted), newest first."""
    counts = (
        sa.select(
            _a.run_id,
            sa.func.count().label("audits"),
            sa.func.sum(sa.case((_a.state.in_([s.value for s in OUTSTANDING]), 1), else_=0)).label(
                "outstanding"
            ),
            sa.func.sum(sa.case((_a.state == AuditState.exempted.value, 1), else_=0)).label(
                "exempted"
            ),
        )
        .where(_a.run_id.is_not(None))
        .group_by(_a.run_id)
        .subquery()
    )
    query = sa.select(
        activity_runs,
        sa.func.coalesce(counts.c.audits, 0).label("audits"),
        sa.func.coalesce(counts.c.outstanding, 0).label("outstanding"),
        sa.func.coalesce(counts.c.exempted, 0).label("exempted"),
    ).outerjoin(counts, counts.c.run_id == _r.id)
    if activity is not None:
        query = query.where(_r.activity == activity)
    if months is not None:
        query = query.where(_r.month.in_(list(months)))
    if ids is not None:
        query = query.where(_r.id.in_(list(ids)))
    return list(conn.execute(query.order_by(_r.month.desc(), _r.id.desc())).all())


def run_row(conn: sa.Connection, run_id: int) -> Any:
    found = runs(conn, ids=[run_id])
    return found[0] if found else None


def require_run(conn: sa.Connection, run_id: int) -> Any:
    row = run_row(conn, run_id)
    if row is None:
        raise StateError(f"There is no activity run {run_id}. `formtool activity list` shows them.")
    return row


def set_run(
    conn: sa.Connection,
    run_id: int,
    user: str,
    theme: str | None = None,
    owner: str | None = None,
    findings: str | None = None,
) -> Any:
    """Change a run's theme, owner or the group's findings; returns the run as it is now."""
    require_run(conn, run_id)
    changes = {
        k: v
        for k, v in {"theme": theme, "owner": owner, "findings": findings}.items()
        if v is not None
    }
    if changes:
        conn.execute(
            activity_runs.update()
            .where(_r.id == run_id)
            .values(**changes, updated_at=now(), updated_by=user)
        )
    return run_row(conn, run_id)


#: How `subject_months` marks a subject whose audit is still with the auditor: last in turn.
IN_HAND = "9999-12"


def subject_months(conn: sa.Connection, activity: str) -> dict[str, str]:
    """For a rotation, which staff were done longest ago: each subject's latest month with a
    complete audit of the activity, or IN_HAND while one is still outstanding (an observation
    that never happened does not count as done; one in hand is not drawn twice)."""
    done = conn.execute(
        sa.select(_a.case_number, sa.func.max(_a.month))
        .where((_a.activity == activity) & _a.state.in_([s.value for s in COMPLETED]))
        .group_by(_a.case_number)
    ).all()
    open_ = conn.execute(
        sa.select(_a.case_number)
        .where((_a.activity == activity) & _a.state.in_([s.value for s in OUTSTANDING]))
        .distinct()
    ).scalars()
    return {case: month for case, month in done} | dict.fromkeys(open_, IN_HAND)


def month_case_file_audits(conn: sa.Connection, month: str) -> list[Any]:
    """The month's case-file audits (not exempted), for activities drawn from them
    (feedback from the families of audited children)."""
    return list(
        conn.execute(
            sa.select(audits)
            .where((_a.month == month) & (_a.activity == "") & (_a.state != "exempted"))
            .order_by(_a.audit_id)
        ).all()
    )


def drop_empty_runs(conn: sa.Connection, month: str) -> None:
    """Runs the month's allocations made that no audit points at any more (after
    `allocate --replace` dropped their unstarted audits)."""
    used = sa.select(_a.run_id).where(_a.run_id.is_not(None))
    batch = sa.select(allocations.c.id).where(allocations.c.month == month)
    conn.execute(
        activity_runs.delete().where(
            _r.allocation_id.in_(batch) & ~_r.on_demand & _r.id.not_in(used)
        )
    )


def run_subjects(conn: sa.Connection, run_ids: Collection[int]) -> list[tuple[int, str, str]]:
    """(run, subject, auditor) of every audit of these runs."""
    if not run_ids:
        return []
    rows = conn.execute(
        sa.select(_a.run_id, _a.case_number, _a.auditor)
        .where(_a.run_id.in_(list(run_ids)))
        .order_by(_a.audit_id)
    ).all()
    return [(int(r.run_id), r.case_number, r.auditor) for r in rows]
