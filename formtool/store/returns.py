"""Storing returned forms: one transaction per file, serialised per audit, ordered by date.

A return's row, answers, actions and grade are written in one transaction while the audit's
row is locked, so imports of one audit queue instead of racing. The identical file again is
`unchanged`. Returns are ordered by the date the file says it was saved: a newer one becomes
current and the old one stays as history; an older one arriving late is kept as history only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from formtool.store.programmes import Concern, raise_concern
from formtool.store.schema import (
    ACCEPTED,
    HELD_CHANNEL,
    HELD_LOCKED,
    HELD_REASSIGNED,
    REFUSED,
    TRANSITIONS,
    AuditState,
    actions,
    answers,
    audits,
    events,
    grades,
    returns,
)

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
    received_on: dt.date | None = None  # the programme's today when it was imported

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
    concern: RaisedConcern | None = None  # the return answers Yes to the immediate concern


@dataclass(frozen=True)
class RaisedConcern:
    """What a return says of an immediate concern (who hears of it is the programme's, at
    sending)."""

    details: str
    told: str


@dataclass
class Stored:
    status: str  # imported / updated / history / held / unchanged
    return_id: int | None = None
    state: AuditState | None = None
    previous_date: dt.datetime | None = field(default=None)  # the newer current return's date
    previous_kind: str = ""  # what that date is: "saved", "sent" or "imported"
    held: str = ""  # why it is not current, when held (schema.HELD_*)
    concern: Concern | None = None  # the concern this return raised (None: none, or raised)


#: The method of a return given in the web form (read/web.py).
WEB_METHOD = "web"


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


def known_return(conn: sa.Connection, content_hash: str) -> Any:
    """The stored return with exactly these bytes (id, audit id, held), if any."""
    r = returns.c
    return conn.execute(
        sa.select(r.id, r.audit_id, r.held).where(r.content_hash == content_hash).order_by(r.id)
    ).first()


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
    hold: str = "",
) -> Stored:
    """Store one validated return (see the module docstring for the rules). A return the
    caller holds (`hold`, e.g. HELD_SENDER), or one arriving after an officer accepted the
    audit, is stored but not current until an officer releases it or reopens the audit."""
    with transaction(engine) as conn:
        stored = _store_in(conn, record, file, stage, two_stage, user, hold)
        raised = record.concern
        if raised is not None and stored.return_id is not None:
            # In the return's own transaction: a concern is never lost between the two. Any
            # stored return raises it, held or not: a child's safety does not wait on who sent it.
            stored.concern = raise_concern(
                conn,
                record.audit_id,
                "return",
                raised.details,
                raised.told,
                stored.return_id,
                user,
            )
        return stored


def _store_in(
    conn: sa.Connection,
    record: ReturnRecord,
    file: ReturnFile,
    stage: str,
    two_stage: bool,
    user: str,
    hold: str,
) -> Stored:
    r = returns.c
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
    # Who sent it is asked first: a stranger's return waits for an officer whatever the
    # audit's state; the auditor's own, for an accepted audit, waits for a reopen.
    if not hold and state is AuditState.exempted:
        hold = HELD_LOCKED  # exempted: never current, kept as the history it is
    elif not hold and state in ACCEPTED and not _only_sign_offs(conn, record, state):
        hold = HELD_LOCKED
    elif not hold and state is not AuditState.amendment_requested:
        hold = _other_channel(conn, record, stage)
    if hold:
        return_id = _insert_return(conn, record, file, stage, file.order_date, False, None)
        conn.execute(returns.update().where(r.id == return_id).values(held=hold))
        detail = f"{file.name}: " + (
            f"arrived after the audit was {state}; kept as history"
            if state is AuditState.exempted
            else f"arrived after the audit was {state}; kept until an officer reopens it"
            if hold == HELD_LOCKED
            else "a copy of the form from before the audit was reassigned; held for an officer "
            "to accept or refuse"
            if hold == HELD_REASSIGNED
            else f"a final return by {_channel(record.method, True)} came first; held for an "
            "officer to accept or refuse"
            if hold == HELD_CHANNEL
            else f"from {file.sender or 'an unknown sender'}, not the auditor; held for an "
            "officer to accept or refuse"
        )
        record_event(conn, record.audit_id, "kept as history", detail, user)
        return Stored("history" if hold == HELD_LOCKED else "held", return_id, state, held=hold)
    current = _current(conn, record.audit_id)
    order = file.order_date
    current_date = (current.saved_at or current.imported_at) if current else None
    newer = current_date is None or order >= current_date
    if not newer:
        return_id = _insert_return(conn, record, file, stage, order, False, None)
        record_event(
            conn,
            record.audit_id,
            "kept as history",
            f"{file.name} saved {show_time(order)}, before the current return",
            user,
        )
        return Stored("history", return_id, state, current_date, _dated(current))
    # Stored as the current return at once (one statement fewer than _make_current), the
    # one before it first made history: an audit has one current return at any moment.
    if current is not None:
        conn.execute(returns.update().where(r.id == current.id).values(is_current=False))
    return_id = _insert_return(
        conn, record, file, stage, order, True, current.id if current is not None else None
    )
    _store_grade(conn, record.audit_id, return_id, record.grade, record.moderated_grade)
    placed = Stored("updated" if current is not None else "imported", return_id)
    detail = f"{file.name} ({'final' if record.final else 'draft'})"
    return _moved(
        conn, record.audit_id, placed, state, _next_state(stage, record.final), detail, user
    )


def _channel(method: str, other: bool = False) -> str:
    """How a return came: the web form, or a returned file; `other`: the channel it did not."""
    web = (method == WEB_METHOD) != other
    return "the web form" if web else "a returned Word or Excel file"


def _other_channel(conn: sa.Connection, record: ReturnRecord, stage: str) -> str:
    """HELD_CHANNEL when the stage's current return is final and came by the other channel
    (the issue's "one channel per audit and stage": the first final return stands), else "".
    A return after an amendment request is never held for this (the caller checks)."""
    r = returns.c
    current = conn.execute(
        sa.select(r.method, r.final, r.stage).where((r.audit_id == record.audit_id) & r.is_current)
    ).first()
    if current is None or not current.final or current.stage != stage:
        return ""
    return HELD_CHANNEL if (current.method == WEB_METHOD) != (record.method == WEB_METHOD) else ""


#: Action columns a manager fills in after the QA check: a return that adds only these to
#: an accepted audit is the manager's sign-off, not a change to the audit.
SIGN_OFF_COLUMNS = ("sign_off", "sign_off_date", "comments")


def _only_sign_offs(conn: sa.Connection, record: ReturnRecord, state: AuditState) -> bool:
    """Whether a return for an accepted (checked or moderated) audit changes nothing but
    the action rows' sign-offs."""
    if state not in (AuditState.checked, AuditState.moderated):
        return False
    current = _current(conn, record.audit_id)
    if current is None or dict(record.answers) != return_answers(conn, current.id):
        return False

    def rows(found: Sequence[Mapping[str, Any]]) -> list[tuple[object, ...]]:
        kept = ("table_key", "row", *(c for c in ACTION_COLUMNS if c not in SIGN_OFF_COLUMNS))
        return sorted(tuple(str(a.get(c) or "") for c in kept) for a in found)

    stored = [row._asdict() for row in return_actions(conn, current.id)]
    return rows(record.actions) == rows(stored)


def _current(conn: sa.Connection, audit_id: str) -> Any:
    r = returns.c
    return conn.execute(
        sa.select(r.id, r.saved_at, r.sent_at, r.imported_at).where(
            (r.audit_id == audit_id) & r.is_current
        )
    ).first()


def _dated(row: Any) -> str:
    """What a stored return's order date is (returns.saved_at holds the saved date, else
    the sent date, else the import time)."""
    if row.saved_at == row.imported_at:
        return "imported"
    return "sent" if row.saved_at == row.sent_at else "saved"


def _make_current(
    conn: sa.Connection,
    audit_id: str,
    return_id: int,
    current: Any,
    grade: str,
    moderated_grade: str,
) -> Stored:
    """`return_id` becomes the audit's current return (the one before it history), and its
    grade the audit's."""
    r = returns.c
    if current is not None:
        conn.execute(returns.update().where(r.id == current.id).values(is_current=False))
    conn.execute(
        returns.update()
        .where(r.id == return_id)
        .values(is_current=True, held="", supersedes=current.id if current else None)
    )
    _store_grade(conn, audit_id, return_id, grade, moderated_grade)
    return Stored("updated" if current else "imported", return_id)


def _moved(
    conn: sa.Connection,
    audit_id: str,
    placed: Stored,
    state: AuditState,
    target: AuditState,
    detail: str,
    user: str,
) -> Stored:
    """Move the audit to `target` where the cycle allows (a return after the QA check leaves
    it as it is), with the event saying what came in."""
    event = "updated" if placed.status == "updated" else "returned"
    if target in TRANSITIONS[state]:
        move_state(conn, audit_id, [state], target, event, detail, user)
        state = target
    else:
        record_event(conn, audit_id, event, detail, user)
    placed.state = state
    return placed


@dataclass(frozen=True)
class HeldReturn:
    """A stored return waiting for an officer, as `formtool held` lists it."""

    return_id: int
    audit_id: str
    file_name: str
    sender: str
    auditor_email: str
    imported_at: dt.datetime
    held: str
    final: bool
    stage: str


def held_returns(conn: sa.Connection, reasons: Sequence[str]) -> list[HeldReturn]:
    r, a = returns.c, audits.c
    rows = conn.execute(
        sa.select(
            r.id,
            r.audit_id,
            r.file_name,
            r.sender,
            a.auditor_email,
            r.imported_at,
            r.held,
            r.final,
            r.stage,
        )
        .join(audits, a.audit_id == r.audit_id)
        .where(r.held.in_(list(reasons)))
        .order_by(r.imported_at, r.id)
    )
    return [HeldReturn(*row) for row in rows]


def held_return(conn: sa.Connection, return_id: int, reasons: Sequence[str]) -> Any:
    """The held return's row, read after locking its audit, so two officers deciding at
    once queue and the second finds it decided (None if no such return is held)."""
    r = returns.c
    audit_id = audit_of(conn, return_id)
    if audit_id is None:
        return None
    audit_state(conn, audit_id, for_update=True)
    return conn.execute(
        sa.select(r.id, r.audit_id, r.file_name, r.final, r.stage, r.saved_at, r.held).where(
            (r.id == return_id) & r.held.in_(list(reasons))
        )
    ).first()


def release_held(
    conn: sa.Connection,
    held: Any,
    grade: str,
    moderated_grade: str,
    user: str,
    why: str = "accepted from the held returns",
) -> Stored:
    """An officer accepts a held return: it takes its place by its saved date, as if it had
    just been imported (current if newest, else history)."""
    state = audit_state(conn, held.audit_id, for_update=True)
    if state in ACCEPTED and not _stored_sign_offs_only(conn, held, state):
        raise StateError(
            f"Audit {held.audit_id} is '{state}': reopen it (formtool reopen) before accepting "
            "a return for it."
        )
    if held.stage == PREPARED and state not in PREPARING:
        raise StateError(
            f"Audit {held.audit_id} has moved on to its auditor ('{state}'): this return of "
            "the preparers' stage can no longer be accepted; refuse it."
        )
    current = _current(conn, held.audit_id)
    current_date = (current.saved_at or current.imported_at) if current else None
    detail = f"{held.file_name}: {why}"
    if current_date is not None and held.saved_at < current_date:
        conn.execute(returns.update().where(returns.c.id == held.id).values(held=""))
        record_event(conn, held.audit_id, "kept as history", detail + ", older than current")
        return Stored("history", held.id, state, current_date, _dated(current))
    placed = _make_current(conn, held.audit_id, held.id, current, grade, moderated_grade)
    target = _next_state(held.stage, held.final)
    return _moved(conn, held.audit_id, placed, state, target, detail, user)


#: States in which a return of the preparers' stage (two-stage tools) may still come in.
PREPARING = frozenset(
    {AuditState.allocated, AuditState.sent, AuditState.prepared, AuditState.in_progress}
)


def _stored_sign_offs_only(conn: sa.Connection, held: Any, state: AuditState) -> bool:
    """Whether a stored (held) return changes nothing but the sign-offs of an accepted
    audit's current return: a manager's emailed sign-off."""
    record = ReturnRecord(
        held.audit_id,
        "",
        True,
        return_answers(conn, held.id),
        [row._asdict() for row in return_actions(conn, held.id)],
    )
    return _only_sign_offs(conn, record, state)


def audit_of(conn: sa.Connection, return_id: int) -> str | None:
    return conn.execute(sa.select(returns.c.audit_id).where(returns.c.id == return_id)).scalar()


def not_held(conn: sa.Connection, return_id: int) -> str:
    """Why a return an officer tried to accept or refuse is not waiting for that."""
    r = returns.c
    row = conn.execute(sa.select(r.audit_id, r.held).where(r.id == return_id)).first()
    if row is None:
        return f"There is no return {return_id}"
    if row.held == HELD_LOCKED:
        return (
            f"Return {return_id} arrived after audit {row.audit_id} was accepted: it "
            f"becomes current if the audit is reopened (formtool reopen {row.audit_id})"
        )
    if row.held == REFUSED:
        return f"Return {return_id} of audit {row.audit_id} was refused already"
    return f"Return {return_id} of audit {row.audit_id} is not held (accepted already)"


def refuse_held(conn: sa.Connection, held: Any, reason: str, user: str) -> None:
    conn.execute(returns.update().where(returns.c.id == held.id).values(held=REFUSED))
    record_event(conn, held.audit_id, "refused", f"{held.file_name}: {reason}", user)


#: Events an officer's decisions leave, which a reopen marks superseded.
DECISIONS = ("checked", "moderated", "actions signed off", "closed")


def reopen(conn: sa.Connection, audit_id: str, reason: str, user: str) -> tuple[AuditState, Any]:
    """An accepted audit goes back to `returned`: its moderation and sign-off events are kept
    but marked superseded, the moderated grade set aside, and the newest return kept since
    it was accepted (if any) is returned for the caller to place. (state before, that row)"""
    before = audit_state(conn, audit_id, for_update=True)
    if before not in ACCEPTED:
        raise StateError(
            f"Audit {audit_id} is '{before}'; only an accepted, moderated, signed-off or closed "
            "audit can be reopened"
        )
    conn.execute(
        audits.update()
        .where((audits.c.audit_id == audit_id) & (audits.c.state == before.value))
        .values(state=AuditState.returned.value, updated_at=now())
    )
    reopened = record_event(conn, audit_id, "reopened", f"was {before}: {reason}", user)
    e = events.c
    conn.execute(
        events.update()
        .where(
            (e.audit_id == audit_id)
            & e.event.in_(DECISIONS)
            & e.superseded_by.is_(None)
            & (e.id < reopened)
        )
        .values(superseded_by=reopened)
    )
    g = grades.c
    conn.execute(
        grades.update()
        .where(g.audit_id == audit_id)
        .values(moderated_grade="", moderated_by="", moderated_at=None)
    )
    r = returns.c
    waiting = conn.execute(
        sa.select(r.id, r.audit_id, r.file_name, r.final, r.stage, r.saved_at, r.held)
        .where((r.audit_id == audit_id) & (r.held == HELD_LOCKED))
        .order_by(r.saved_at.desc(), r.id.desc())
    ).first()
    if waiting is not None:  # older ones kept since acceptance are plain history now
        conn.execute(
            returns.update()
            .where((r.audit_id == audit_id) & (r.held == HELD_LOCKED) & (r.id != waiting.id))
            .values(held="")
        )
    return before, waiting


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
                received_on=file.received_on,
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


def _store_grade(
    conn: sa.Connection, audit_id: str, return_id: int, grade: str, moderated_grade: str
) -> None:
    g = grades.c
    values: dict[str, Any] = {"auditor_grade": grade, "return_id": return_id}
    if moderated_grade:
        values |= {
            "moderated_grade": moderated_grade,
            "moderated_by": "return form",
            "moderated_at": now(),
        }
    if conn.execute(sa.select(g.audit_id).where(g.audit_id == audit_id)).first():
        conn.execute(grades.update().where(g.audit_id == audit_id).values(**values))
    else:
        conn.execute(grades.insert().values(audit_id=audit_id, **values))


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


def sign_off_row(
    conn: sa.Connection, audit_id: str, table_key: str, row: int, signed_by: str, on: dt.date
) -> bool:
    """A manager's sign-off on one action row of the audit's current return, recorded by an
    officer (the return itself is kept as it came). False when there is no such row or it
    is signed off already: the update is conditional, so two officers cannot both sign."""
    current = current_return(conn, audit_id)
    if current is None:
        return False
    a = actions.c
    done = conn.execute(
        sa.update(actions)
        .where(
            (a.return_id == current.id)
            & (a.table_key == table_key)
            & (a.row == row)
            & (a.sign_off == "")
            & a.sign_off_date.is_(None)
        )
        .values(sign_off=signed_by, sign_off_date=on)
    )
    return done.rowcount == 1


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


def set_receipt(conn: sa.Connection, return_id: int, pdf: bytes) -> str:
    """Keep a web return's PDF beside it; its SHA-256."""
    digest = hashlib.sha256(pdf).hexdigest()
    conn.execute(
        returns.update().where(returns.c.id == return_id).values(receipt=pdf, receipt_hash=digest)
    )
    return digest


def receipt(conn: sa.Connection, return_id: int) -> bytes | None:
    """A web return's PDF (None: none kept, or removed by retention)."""
    found = conn.execute(sa.select(returns.c.receipt).where(returns.c.id == return_id)).scalar()
    return bytes(found) if found else None
