"""Writing audits: records from a case list or an allocation, state changes, events.

Every change of an audit's state goes through `move_state`, which checks the move against
the state machine in schema.py and makes it conditional on the state the caller saw, so two
people acting on one audit at once cannot both succeed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool.errors import FormtoolError, printable
from formtool.periods import Month
from formtool.store.engine import actor, now
from formtool.store.schema import (
    TRANSITIONS,
    AuditState,
    allocations,
    audits,
    events,
    grades,
    outbox,
    outbox_claims,
)

#: The allocations row of a run an officer started (`formtool activity start`).
ACTIVITY_MODE = "activity"


class StateError(FormtoolError):
    """An audit is not in a state the step applies to (or it changed under the caller)."""


def record_event(
    conn: sa.Connection, audit_id: str, name: str, detail: str = "", user: str = ""
) -> int:
    """An event on the audit, by `user` or, when the caller names nobody, by whoever the
    command or web request acts for (engine.actor): no event is without a user. Its id."""
    return new_id(
        conn.execute(
            events.insert().values(
                audit_id=audit_id, at=now(), event=name, detail=detail, user_name=user or actor()
            )
        )
    )


def audit_state(conn: sa.Connection, audit_id: str, for_update: bool = False) -> AuditState:
    """The audit's state; with for_update, the audit row stays locked until commit
    (PostgreSQL), so changes to one audit queue instead of interleaving."""
    query = sa.select(audits.c.state).where(audits.c.audit_id == audit_id)
    if for_update:
        query = query.with_for_update()
    state = conn.execute(query).scalar()
    if state is None:
        raise unknown_audit(audit_id)
    return AuditState(state)


def unknown_audit(audit_id: str) -> StateError:
    """The one error for an audit id the database does not hold."""
    return StateError(
        f"Audit {printable(audit_id, 80)} is not in the database. Check the id "
        "(`formtool status` lists the month's audits)."
    )


def move_state(
    conn: sa.Connection,
    audit_id: str,
    allowed_from: Iterable[AuditState],
    to: AuditState,
    event: str,
    detail: str = "",
    user: str = "",
    why: str = "",
) -> AuditState:
    """Move an audit to `to` if it is in one of `allowed_from`; returns the state it left.

    The update is conditional on the state, so if another process moved the audit first this
    one fails with a one-line StateError instead of overwriting the other's decision.
    """
    allowed = {s for s in allowed_from if to in TRANSITIONS[s]}
    current = audit_state(conn, audit_id)
    if current not in allowed:
        raise StateError(
            f"Audit {audit_id} is '{current}'; "
            + (why or f"it cannot move to '{to}' from there")
            + "."
        )
    done = conn.execute(
        audits.update()
        .where((audits.c.audit_id == audit_id) & (audits.c.state == current.value))
        .values(state=to.value, updated_at=now())
    ).rowcount
    if done != 1:  # another transaction moved it after we read the state
        latest = audit_state(conn, audit_id)
        raise StateError(
            f"Audit {audit_id} changed to '{latest}' while this command ran; "
            "nothing was recorded. Check it and run the command again if needed."
        )
    record_event(conn, audit_id, event, detail, user)
    return current


@dataclass(frozen=True)
class AuditRecord:
    """An audit as generate/allocate record it (state `allocated`)."""

    audit_id: str
    form_id: str
    form_version: int
    case_number: str
    auditor: str
    auditor_email: str
    team: str
    worker: str
    manager: str
    due_date: dt.date
    checksum: str
    facts: Mapping[str, str]
    preparer_email: str = ""
    form_format: str = "docx"
    checksum_scheme: str = "sha256"  # "hmac" when the form was made with the database's key
    month: str = ""  # the audit month, when not the due date's (a tool due the next month)
    activity: str = ""  # the programme activity ("": the monthly case-file audit)
    run_id: int | None = None  # its run in activity_runs
    subject_kind: str = "case"  # case, supervisor or practitioner

    def values(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "form_id": self.form_id,
            "form_version": self.form_version,
            "case_number": self.case_number,
            "auditor": self.auditor,
            "auditor_email": self.auditor_email,
            "team": self.team,
            "worker": self.worker,
            "manager": self.manager,
            "month": self.month or str(Month.of(self.due_date)),
            "due_date": self.due_date,
            "checksum": self.checksum,
            "facts": json.dumps(dict(self.facts), ensure_ascii=False),
            "preparer_email": self.preparer_email,
            "form_format": self.form_format,
            # The column's default is left to the database, so a schema from before it
            # (as upgrade tests build) still takes unkeyed records.
            **(
                {"checksum_scheme": self.checksum_scheme}
                if self.checksum_scheme != "sha256"
                else {}
            ),
            # Likewise left to the defaults for a case-file audit.
            **(
                {
                    "activity": self.activity,
                    "run_id": self.run_id,
                    "subject_kind": self.subject_kind,
                }
                if self.activity
                else {}
            ),
        }


def upsert_audits(
    conn: sa.Connection,
    records: Iterable[AuditRecord],
    allocation_id: int | None = None,
    user: str = "",
) -> int:
    """Insert new audits as allocated, or refresh the facts of ones not yet returned.
    Returns how many were new."""
    new = 0
    for record in records:
        values = record.values()
        existing = conn.execute(
            sa.select(audits.c.checksum, audits.c.state)
            .where(audits.c.audit_id == record.audit_id)
            .with_for_update()
        ).first()
        stamp = now()
        if existing is None:
            conn.execute(
                audits.insert().values(
                    **values,
                    state=AuditState.allocated.value,
                    allocation_id=allocation_id,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            record_event(conn, record.audit_id, "allocated", user=user)
            new += 1
        elif existing.checksum != record.checksum:
            conn.execute(
                audits.update()
                .where(audits.c.audit_id == record.audit_id)
                .values({**values, "checksum_scheme": record.checksum_scheme, "updated_at": stamp})
            )
            record_event(conn, record.audit_id, "regenerated", "pre-filled facts changed", user)
    return new


def new_id(result: sa.CursorResult[Any]) -> int:
    """The primary key an INSERT made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def audit_row(conn: sa.Connection, audit_id: str) -> Any:
    return conn.execute(sa.select(audits).where(audits.c.audit_id == audit_id)).first()


def audit_facts(row: Any) -> dict[str, str]:
    return json.loads(row.facts)


def received_on(row: Any) -> dt.date | None:
    """The programme's date a row's return came in: the date recorded with it, else (a
    return stored before that was kept) the day it was stored; None: no return."""
    if getattr(row, "received_on", None):
        return row.received_on
    return row.imported_at.date() if getattr(row, "imported_at", None) else None


# --- allocation batches ----------------------------------------------------------------


def month_allocations(conn: sa.Connection, month: str) -> list[Any]:
    return list(
        conn.execute(
            sa.select(allocations).where(allocations.c.month == month).order_by(allocations.c.id)
        ).all()
    )


def drop_unstarted(conn: sa.Connection, month: str) -> int:
    """Delete the month's allocated audits that nothing has happened to yet (for
    `allocate --replace`); audits already sent or returned stay, and so do those with an
    email in the outbox that did not fail (drafts written may have been sent from Outlook).
    Returns how many went."""
    a = audits.c
    # Runs an officer started (`formtool activity start`) are not the month's allocation.
    batch = sa.select(allocations.c.id).where(
        (allocations.c.month == month) & (allocations.c.mode != ACTIVITY_MODE)
    )
    emailed = (
        sa.select(outbox_claims.c.audit_id)
        .join(outbox, outbox.c.id == outbox_claims.c.message_id)
        .where(outbox.c.state != "failed")
    )
    ids = list(
        conn.execute(
            sa.select(a.audit_id).where(
                a.allocation_id.in_(batch)
                & (a.state == AuditState.allocated.value)
                & a.audit_id.not_in(emailed)
            )
        ).scalars()
    )
    if ids:
        conn.execute(outbox_claims.delete().where(outbox_claims.c.audit_id.in_(ids)))
        conn.execute(events.delete().where(events.c.audit_id.in_(ids)))
        conn.execute(grades.delete().where(grades.c.audit_id.in_(ids)))
        conn.execute(audits.delete().where(a.audit_id.in_(ids)))
    return len(ids)


def record_allocation(
    conn: sa.Connection,
    month: str,
    mode: str,
    seed: int,
    records: list[AuditRecord],
    replaced: int,
    user: str = "",
    programme: tuple[str, int] = ("", 0),
    before_audits: Callable[[int], None] | None = None,
) -> int:
    """Record an allocation and its audits; `before_audits(allocation_id)` records what the
    audits point at (their activity runs) first."""
    allocation_id = new_id(
        conn.execute(
            allocations.insert().values(
                month=month,
                mode=mode,
                seed=seed,
                audits=len(records),
                replaced=replaced,
                created_at=now(),
                # Left to the column defaults without a programme, so a schema from before
                # them (as upgrade tests build) still takes the row.
                **(
                    {"programme": programme[0], "programme_version": programme[1]}
                    if programme[0]
                    else {}
                ),
            )
        )
    )
    if before_audits is not None:
        before_audits(int(allocation_id))
    upsert_audits(conn, records, allocation_id, user)
    return int(allocation_id)


def set_due(conn: sa.Connection, audit_id: str, due: dt.date) -> None:
    """Move the audit's due date (an amendment is due back), keeping the one it was
    allocated with in original_due_date."""
    a = audits.c
    conn.execute(
        audits.update()
        .where(a.audit_id == audit_id)
        .values(original_due_date=sa.func.coalesce(a.original_due_date, a.due_date), due_date=due)
    )


def counted(counting: Collection[str] = ()) -> sa.ColumnElement[bool]:
    """Audits that count toward an auditor's quota: case-file audits, and the activities
    the policy says count (`counting`)."""
    a = audits.c
    return (a.activity == "") | a.activity.in_(list(counting))


def auditor_months(
    conn: sa.Connection, first: str, last: str, counting: Collection[str] = ()
) -> list[tuple[str, str]]:
    """(auditor, month) for every month first..last in which an auditor had an audit that
    counts (case-file, or an activity in `counting`) and was not exempted."""
    a = audits.c
    rows = conn.execute(
        sa.select(a.auditor, a.month)
        .where((a.month >= first) & (a.month <= last) & (a.state != AuditState.exempted.value))
        .where(counted(counting))
        .distinct()
        .order_by(a.auditor, a.month)
    ).all()
    return [(r.auditor, r.month) for r in rows]


def allocation_history(
    conn: sa.Connection,
    since: str,
    until: str,
    year_from: str,
    year_to: str,
    counting: Collection[str] = (),
) -> tuple[set[str], Counter[str]]:
    """Cases with a case-file audit in months since..until (an activity's look at a case,
    a dip sample, does not keep it out of the random sample), and audits that count per
    auditor (`counted`) in the year year_from..year_to."""
    a = audits.c
    recent = set(
        conn.execute(
            sa.select(a.case_number).where(
                (a.month >= since) & (a.month <= until) & (a.activity == "")
            )
        ).scalars()
    )
    counts: Counter[str] = Counter(
        dict(
            conn.execute(
                sa.select(a.auditor, sa.func.count())
                .where((a.month >= year_from) & (a.month <= year_to))
                .where(a.state != AuditState.exempted.value)  # counts against nobody
                .where(counted(counting))
                .group_by(a.auditor)
            ).all()
        )
    )
    return recent, counts


def record_moderation(conn: sa.Connection, audit_id: str, grade: str, by: str) -> str:
    """Store a moderated grade; returns the auditor's grade it sits beside ("" if none)."""
    g = grades.c
    values = {"moderated_grade": grade, "moderated_by": by, "moderated_at": now()}
    before = conn.execute(sa.select(g.auditor_grade).where(g.audit_id == audit_id)).first()
    if before is None:
        conn.execute(grades.insert().values(audit_id=audit_id, **values))
        return ""
    conn.execute(grades.update().where(g.audit_id == audit_id).values(**values))
    return str(before.auditor_grade or "")


def unkeyed_open(conn: sa.Connection) -> int:
    """Audits not yet closed whose forms carry the unkeyed (pre-HMAC) checksum."""
    a = audits.c
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(audits)
            .where((a.checksum_scheme != "hmac") & (a.state != AuditState.closed.value))
        ).scalar_one()
    )


def checksum_schemes(conn: sa.Connection, audit_ids: list[str]) -> dict[str, str]:
    a = audits.c
    found: dict[str, str] = {}
    for start in range(0, len(audit_ids), 500):  # bound the IN list
        chunk = audit_ids[start : start + 500]
        rows = conn.execute(sa.select(a.audit_id, a.checksum_scheme).where(a.audit_id.in_(chunk)))
        found.update({row.audit_id: row.checksum_scheme for row in rows})
    return found
