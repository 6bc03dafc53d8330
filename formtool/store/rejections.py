"""Rejected returns on record: every file an import rejected, against its audit when the
identity it carries names an audit in the store (with a "return rejected" event on the audit,
in the same transaction), else as an unmatched file an officer marks dealt with.

One row per distinct file (its bytes): the same file rejected again is counted on its row
(times, the last time) and makes no second event. Every text is bounded here, whatever the
file held. A rejection against an audit is open until a later return for the audit is
stored; an unmatched one until an officer deals with it, or the same bytes are stored as a
return after all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool.errors import printable
from formtool.periods import show_date
from formtool.store.audits import StateError, new_id, record_event
from formtool.store.engine import actor, lock, now
from formtool.store.schema import REFUSED, audits, rejections, returns

#: The event a rejection against an audit adds to its history.
EVENT = "return rejected"
#: Characters kept of each text (the columns' sizes; a reason or note is Text, kept short).
FILE_CHARS, SENDER_CHARS, ID_CHARS, CODE_CHARS, USER_CHARS = 500, 400, 80, 40, 200
REASON_CHARS = NOTE_CHARS = 1000

_r = rejections.c


@dataclass(frozen=True)
class Rejection:
    """One rejected file as an import saw it. `audit_id`: the audit it is for when its
    identity was readable ('' if not, or if that audit is not in the store); `claimed_id`:
    the audit id the file claimed when it names none in the store."""

    fingerprint: str
    file_name: str
    code: str
    reason: str
    audit_id: str = ""
    claimed_id: str = ""
    sender: str = ""
    sent_at: dt.datetime | None = None
    received_on: dt.date | None = None


@dataclass(frozen=True)
class Recorded:
    """What recording a rejection did: its row, the audit it is against ('' unmatched),
    whether the file is new here (else counted again) and how many times it came."""

    id: int
    audit_id: str
    new: bool
    times: int


def _bounded(text: str, limit: int) -> str:
    return printable(text, limit)


def _newest_return(conn: sa.Connection, audit_id: str) -> int:
    r = returns.c
    newest = conn.execute(sa.select(sa.func.max(r.id)).where(r.audit_id == audit_id)).scalar()
    return int(newest or 0)


def record(conn: sa.Connection, rejection: Rejection, user: str = "") -> Recorded:
    """Record one rejected file (see the module's docstring); the audit's event goes in
    this transaction when the file is new, or newly matched to the audit."""
    lock(conn, "formtool rejections")  # two imports of the same file: one row, counted twice
    known = bool(rejection.audit_id) and (
        conn.execute(
            sa.select(audits.c.audit_id).where(audits.c.audit_id == rejection.audit_id)
        ).first()
        is not None
    )
    audit_id = rejection.audit_id if known else ""
    claimed = "" if known else (rejection.claimed_id or rejection.audit_id)
    reason = _bounded(rejection.reason, REASON_CHARS)
    user = _bounded(user or actor(), USER_CHARS)
    values: dict[str, Any] = {
        "file_name": _bounded(rejection.file_name, FILE_CHARS),
        "sender": _bounded(rejection.sender, SENDER_CHARS),
        "sent_at": rejection.sent_at,
        "code": _bounded(rejection.code, CODE_CHARS),
        "reason": reason,
        "last_at": now(),
        "received_on": rejection.received_on,
        "imported_by": user,
    }
    row = conn.execute(
        sa.select(_r.id, _r.audit_id, _r.times).where(_r.fingerprint == rejection.fingerprint)
    ).first()
    if row is None:
        rejection_id = new_id(
            conn.execute(
                rejections.insert().values(
                    fingerprint=rejection.fingerprint[:64],
                    audit_id=audit_id or None,
                    claimed_id=_bounded(claimed, ID_CHARS),
                    first_at=values["last_at"],
                    times=1,
                    returns_before=_newest_return(conn, audit_id) if audit_id else 0,
                    **values,
                )
            )
        )
        new, times = True, 1
    else:
        rejection_id, new, times = row.id, False, row.times + 1
        newly_matched = bool(audit_id) and row.audit_id != audit_id
        if newly_matched:  # the audit is in the store now: the file counts against it
            values |= {
                "audit_id": audit_id,
                "claimed_id": "",
                "returns_before": _newest_return(conn, audit_id),
            }
        conn.execute(rejections.update().where(_r.id == row.id).values(times=times, **values))
        if not newly_matched:
            audit_id = row.audit_id or ""
            return Recorded(rejection_id, audit_id, new, times)
    if audit_id:
        record_event(conn, audit_id, EVENT, reason, user)
    return Recorded(rejection_id, audit_id, new, times)


def _later_return() -> Any:
    """A return stored for the rejection's audit after it (one an officer refused aside)."""
    r = returns.c
    return sa.exists().where(
        (r.audit_id == _r.audit_id) & (r.id > _r.returns_before) & (r.held != REFUSED)
    )


def _stored_since() -> Any:
    """The very bytes of an unmatched file stored as a return after all."""
    return sa.exists().where(returns.c.content_hash == _r.fingerprint)


def rows(
    conn: sa.Connection,
    audit_id: str | None = None,
    open_only: bool = False,
    rejection_id: int | None = None,
) -> list[Any]:
    """Rejections newest first, each with its audit's state, team, auditor and month when
    it is against one in the store (`matched`), and whether a later return superseded it
    (`superseded`) or the same bytes were stored since (`stored_since`)."""
    a = audits.c
    matched = a.audit_id.is_not(None)
    later, stored = _later_return(), _stored_since()
    query = sa.select(
        rejections,
        matched.label("matched"),
        later.label("superseded"),
        stored.label("stored_since"),
        a.state,
        a.team,
        a.auditor,
        a.month,
    ).select_from(rejections.outerjoin(audits, a.audit_id == _r.audit_id))
    if audit_id is not None:
        query = query.where(_r.audit_id == audit_id)
    if rejection_id is not None:
        query = query.where(_r.id == rejection_id)
    if open_only:
        query = query.where(
            sa.or_(
                matched & ~later,
                ~matched & _r.dealt_at.is_(None) & ~stored,
            )
        )
    return list(conn.execute(query.order_by(_r.last_at.desc(), _r.id.desc())).all())


def deal_with(conn: sa.Connection, rejection_id: int, note: str, user: str = "") -> Any:
    """Mark an unmatched file dealt with (who, when, a note); its row after. StateError when
    there is no such file, it is against an audit (open until a good return), or it was
    dealt with already."""
    found = rows(conn, rejection_id=rejection_id)
    if not found:
        raise StateError(
            f"There is no rejected file {rejection_id}. The To chase list (or `formtool "
            "rejected`) gives each one's number."
        )
    row = found[0]
    if row.matched:
        raise StateError(
            f"Rejected file {rejection_id} is against audit {row.audit_id}: it stays open until "
            "a good return for that audit is imported, so there is nothing to mark."
        )
    if row.dealt_at is not None:
        raise StateError(
            f"Rejected file {rejection_id} was already dealt with by {row.dealt_by} on "
            f"{show_date(row.dealt_at)}: {row.dealt_note}"
        )
    conn.execute(
        rejections.update()
        .where((_r.id == rejection_id) & _r.dealt_at.is_(None))
        .values(
            dealt_at=now(),
            dealt_by=_bounded(user or actor(), USER_CHARS),
            dealt_note=_bounded(note, NOTE_CHARS),
        )
    )
    return rows(conn, rejection_id=rejection_id)[0]
