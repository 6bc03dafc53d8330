"""Storing returned forms: one transaction per file, serialised per audit, ordered by date.

A return's row, answers, actions and grade are written in one transaction while the audit's
row is locked, so imports of one audit queue instead of racing. The identical file again is
`unchanged`. Returns are ordered by the date the file says it was saved: a newer one becomes
current and the old one stays as history; an older one arriving late is kept as history only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from formtool.definitions import AUDIT, PREPARED
from formtool.errors import FormtoolError
from formtool.periods import show_time
from formtool.store.audits import (
    StateError,
    audit_row,
    audit_state,
    move_state,
    new_id,
    record_event,
)
from formtool.store.catalog import UnknownVersionsError, form_in
from formtool.store.engine import now, transaction
from formtool.store.schema import TRANSITIONS, AuditState, actions, answers, grades, returns

# What an action row holds: the actions table's columns after id, return_id, table_key, row.
ACTION_COLUMNS = tuple(c.name for c in actions.columns)[4:]


@dataclass(frozen=True)
class ReturnFile:
    """The file a return came in, and what its envelope says about it."""

    name: str  # as shown to people, e.g. "reply.msg › CSC-A1-202611.docx"
    content: bytes
    content_hash: str
    saved_at: dt.datetime | None = None  # when the file says it was saved (UTC)
    sender: str = ""
    sent_at: dt.datetime | None = None  # the email's sent date, when it came by email
    message_name: str = ""

    @property
    def order_date(self) -> dt.datetime:
        """What orders returns of one audit: saved date, else sent date, else now."""
        return self.saved_at or self.sent_at or now()


@dataclass(frozen=True)
class ReturnRecord:
    """A validated return, ready to store: answers by key, action rows by store column."""

    audit_id: str
    method: str
    final: bool
    answers: Mapping[str, tuple[str, str]]  # key -> (value, comment)
    actions: Sequence[Mapping[str, Any]] = ()  # table_key, row, and ACTION_COLUMNS
    grade: str = ""
    moderated_grade: str = ""
    warnings: Sequence[Mapping[str, str]] = ()  # issue data (code, field, value, ...)


@dataclass
class Stored:
    status: str  # imported / updated / history / unchanged
    return_id: int | None = None
    state: AuditState | None = None
    previous_date: dt.datetime | None = field(default=None)  # the newer current return's date


def return_stage(conn: sa.Connection, audit_id: str, two_stage: bool) -> str:
    """Which stage a return of this audit would be now: `prepared` while a two-stage
    audit is still with its preparers, else `audit`."""
    if not two_stage:
        return AUDIT
    state = audit_state(conn, audit_id)
    if state in (AuditState.allocated, AuditState.sent, AuditState.prepared):
        return PREPARED
    if state is AuditState.in_progress:
        prepared = conn.execute(
            sa.select(returns.c.id).where(
                (returns.c.audit_id == audit_id) & (returns.c.stage == PREPARED)
            )
        ).first()
        return AUDIT if prepared else PREPARED
    return AUDIT


def known_content(conn: sa.Connection, content_hash: str) -> str | None:
    """The audit id of a stored return with exactly these bytes, if any."""
    return conn.execute(
        sa.select(returns.c.audit_id).where(returns.c.content_hash == content_hash)
    ).scalar()


def _next_state(stage: str, final: bool) -> AuditState:
    if not final:
        return AuditState.in_progress
    return AuditState.prepared if stage == PREPARED else AuditState.returned


def store_return(
    engine: sa.Engine,
    record: ReturnRecord,
    file: ReturnFile,
    stage: str,
    two_stage: bool = False,
    user: str = "",
) -> Stored:
    """Store one validated return (see the module docstring for the rules)."""
    r = returns.c
    with transaction(engine) as conn:
        state = audit_state(conn, record.audit_id, for_update=True)
        if conn.execute(
            sa.select(r.id).where(
                (r.audit_id == record.audit_id) & (r.content_hash == file.content_hash)
            )
        ).first():
            return Stored("unchanged", state=state)
        if return_stage(conn, record.audit_id, two_stage) != stage:
            raise StateError(
                f"Audit {record.audit_id} moved on while this file was read; import it again."
            )
        current = conn.execute(
            sa.select(r.id, r.saved_at, r.imported_at).where(
                (r.audit_id == record.audit_id) & r.is_current
            )
        ).first()
        order = file.order_date
        current_date = (current.saved_at or current.imported_at) if current else None
        newer = current_date is None or order >= current_date
        if newer and current is not None:
            conn.execute(returns.update().where(r.id == current.id).values(is_current=False))
        return_id = _insert_return(
            conn, record, file, stage, order, newer, current.id if newer and current else None
        )
        if not newer:
            record_event(
                conn,
                record.audit_id,
                "kept as history",
                f"{file.name} saved {show_time(order)}, before the current return",
                user,
            )
            return Stored("history", return_id, state, current_date)
        _store_grade(conn, record, return_id)
        target = _next_state(stage, record.final)
        detail = f"{file.name} ({'final' if record.final else 'draft'})"
        event = "updated" if current else "returned"
        if target in TRANSITIONS[state]:  # e.g. a return after the QA check leaves it as is
            move_state(conn, record.audit_id, [state], target, event, detail, user)
            state = target
        else:
            record_event(conn, record.audit_id, event, detail, user)
        return Stored("updated" if current else "imported", return_id, state)


def _insert_return(
    conn: sa.Connection,
    record: ReturnRecord,
    file: ReturnFile,
    stage: str,
    order: dt.datetime,
    current: bool,
    supersedes: int | None,
) -> int:
    return_id = new_id(
        conn.execute(
            returns.insert().values(
                audit_id=record.audit_id,
                file_name=_text(file.name, 500),
                content_hash=file.content_hash,
                content=file.content,
                imported_at=now(),
                supersedes=supersedes,
                is_current=current,
                method=record.method,
                final=record.final,
                warnings=json.dumps(list(record.warnings)),
                saved_at=order,
                sender=_text(file.sender, 400),
                sent_at=file.sent_at,
                message_name=_text(file.message_name, 500),
                stage=stage,
            )
        )
    )
    rows = [
        {"return_id": return_id, "key": k, "value": v, "comment": c}
        for k, (v, c) in record.answers.items()
    ]
    if rows:
        conn.execute(answers.insert(), rows)
    if record.actions:
        blank = dict.fromkeys(ACTION_COLUMNS, "") | {"due_date": None, "sign_off_date": None}
        conn.execute(
            actions.insert(), [blank | dict(a) | {"return_id": return_id} for a in record.actions]
        )
    return return_id


def _text(value: str, limit: int) -> str:
    """Text a database column can hold: PostgreSQL refuses NUL characters in text."""
    return value.replace("\x00", "")[:limit]


def _store_grade(conn: sa.Connection, record: ReturnRecord, return_id: int) -> None:
    g = grades.c
    values: dict[str, Any] = {"auditor_grade": record.grade, "return_id": return_id}
    if record.moderated_grade:
        values |= {
            "moderated_grade": record.moderated_grade,
            "moderated_by": "return form",
            "moderated_at": now(),
        }
    if conn.execute(sa.select(g.audit_id).where(g.audit_id == record.audit_id)).first():
        conn.execute(grades.update().where(g.audit_id == record.audit_id).values(**values))
    else:
        conn.execute(grades.insert().values(audit_id=record.audit_id, **values))


def current_return(conn: sa.Connection, audit_id: str) -> Any:
    r = returns.c
    return conn.execute(sa.select(returns).where((r.audit_id == audit_id) & r.is_current)).first()


def return_answers(conn: sa.Connection, return_id: int) -> dict[str, tuple[str, str]]:
    a = answers.c
    return {
        row.key: (row.value, row.comment)
        for row in conn.execute(
            sa.select(a.key, a.value, a.comment).where(a.return_id == return_id).order_by(a.id)
        )
    }


def return_actions(conn: sa.Connection, return_id: int) -> list[Any]:
    return list(
        conn.execute(
            sa.select(actions).where(actions.c.return_id == return_id).order_by(actions.c.id)
        ).all()
    )


def stored_warnings(text: str) -> list[dict[str, str]]:
    """Warnings as stored: issue data; old databases stored rendered messages."""
    return [
        w if isinstance(w, dict) else {"code": "", "message": str(w)}
        for w in json.loads(text or "[]")
    ]


class OpenActions(FormtoolError):
    """An audit still has action rows a manager must sign off."""

    def __init__(self, audit_id: str, rows: list[str]) -> None:
        super().__init__(f"Audit {audit_id} has action(s) without a sign-off: {', '.join(rows)}")
        self.audit_id, self.rows = audit_id, rows


def open_actions(conn: sa.Connection, audit_id: str) -> list[str]:
    """Action rows of the current return that need a manager's sign-off and lack one (the
    tables whose columns include a sign-off, in the form version the audit was made from)."""
    audit = audit_row(conn, audit_id)
    current = current_return(conn, audit_id) if audit is not None else None
    if current is None:
        return []
    form = form_in(conn, audit.form_id, audit.form_version)
    if form is None:  # no table is known to need a sign-off: refuse rather than guess none
        missing = {(audit.form_id, audit.form_version): [audit_id]}
        raise UnknownVersionsError(missing, f"The actions of audit {audit_id}")
    signed_tables = {
        t.key for t in form.tables() if {"sign_off", "sign_off_date"} & {c.role for c in t.columns}
    }
    return [
        f"{row.table_key}.{row.row}"
        for row in return_actions(conn, current.id)
        if row.table_key in signed_tables and not (row.sign_off or row.sign_off_date)
    ]
