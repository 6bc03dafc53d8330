"""Rejected returns as an officer works with them, and the "To chase" list.

Every file an import rejects is on record (store/rejections.py): against its audit when its
identity names one, else as an unmatched file. `rejected` lists them (`formtool rejected`),
`deal_with` marks an unmatched file dealt with, `audit_rejections` gives an audit's page its
rejected files, and `to_chase` gathers what an officer chases: overdue audits across every
month (most overdue first, with when each was last chased and whether it ever went out),
audits whose latest file was rejected with no good return since, and unmatched files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from formtool import clock
from formtool.errors import FormtoolError
from formtool.periods import iso_text
from formtool.programme.activities import hidden_audits
from formtool.programme.deadlines import DRAFTS_EVENT, SENT_EVENTS, distribution_date
from formtool.programme.status import status
from formtool.store import OUTSTANDING, AuditState, Store

CHASED = "chased"  # the event a chase records on each audit it names (programme/mail.py)


class RejectionError(FormtoolError):
    """A rejected file that cannot be marked dealt with; the message says why and the fix."""


@dataclass(frozen=True)
class RejectionEntry:
    """One rejected file: what came (as shown), when (the last time, and how many times),
    from whom, why (the issue code and its one-line message), who imported it, and where it
    stands. `audit_id` is the audit it is against ('' for an unmatched file, which keeps the
    id it claimed, if any, in `claimed_id`). Dates and times are ISO text ('' when not
    known): `received_on` is the programme's date it came (formtool's clock, as deadlines
    count), `at` and `first_at` the time stamps of the last and first time (real time)."""

    id: int
    file_name: str
    received_on: str
    at: str
    first_at: str
    times: int
    sender: str
    sent_at: str
    code: str
    reason: str
    imported_by: str
    audit_id: str
    claimed_id: str
    superseded: bool  # a later return for its audit was stored
    stored_since: bool = False  # an unmatched file whose very bytes were stored since
    dealt_at: str = ""  # an unmatched file marked dealt with: when, by whom, the note
    dealt_by: str = ""
    dealt_note: str = ""
    state: str = ""  # its audit's state now ('' unmatched)

    @property
    def open(self) -> bool:
        """Still to do: against an audit, until a later return; unmatched, until dealt with
        (or stored after all)."""
        if self.audit_id:
            return not self.superseded
        return not self.dealt_at and not self.stored_since

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"open": self.open}


def _entry(row: Any) -> RejectionEntry:
    matched = bool(row.matched)
    return RejectionEntry(
        row.id,
        row.file_name,
        iso_text(row.received_on or row.last_at.date()),
        iso_text(row.last_at),
        iso_text(row.first_at),
        row.times,
        row.sender,
        iso_text(row.sent_at),
        row.code,
        row.reason,
        row.imported_by,
        row.audit_id if matched else "",
        row.claimed_id or ("" if matched else row.audit_id or ""),
        matched and bool(row.superseded),
        not matched and bool(row.stored_since),
        iso_text(row.dealt_at),
        row.dealt_by,
        row.dealt_note,
        row.state if matched else "",
    )


def audit_rejections(db: Store, audit_id: str) -> list[RejectionEntry]:
    """The audit's rejected files, newest first."""
    return [_entry(r) for r in db.rejected_files(audit_id)]


@dataclass(frozen=True)
class RejectedFiles:
    """`formtool rejected`: rejected files against audits and unmatched files, newest first
    (open ones only, unless every one was asked for)."""

    against_audits: list[RejectionEntry]
    unmatched: list[RejectionEntry]

    def as_dict(self) -> dict[str, Any]:
        return {
            "against_audits": [r.as_dict() for r in self.against_audits],
            "unmatched": [r.as_dict() for r in self.unmatched],
        }


def rejected(db: Store, every: bool = False) -> RejectedFiles:
    """The open rejected files (with `every`: those superseded or dealt with too)."""
    entries = [_entry(r) for r in db.rejected_files(open_only=not every)]
    return RejectedFiles([e for e in entries if e.audit_id], [e for e in entries if not e.audit_id])


def deal_with(db: Store, rejection_id: int, note: str, user: str) -> RejectionEntry:
    """An officer marks an unmatched file dealt with, saying what was done with it."""
    if not note.strip():
        raise RejectionError(
            "Say what was done with the file, in a sentence: e.g. 'Sent to the right team' or "
            "'Not a return: a photo'."
        )
    if not 0 < rejection_id < 2**31:  # ids are 32-bit: a longer number is simply not there
        raise RejectionError(
            f"There is no rejected file {rejection_id}. The To chase list (or `formtool "
            "rejected`) gives each one's number."
        )
    return _entry(db.deal_with_rejection(rejection_id, note.strip(), user))


# --- the "To chase" list ---------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueAudit:
    """An overdue audit to chase: who has it, how late, when it went out (None: never, so
    send it first) and when it was last chased (None: never)."""

    audit_id: str
    month: str
    team: str
    auditor: str
    state: str
    due: dt.date
    days_overdue: int
    sent_on: dt.date | None
    last_chased: dt.date | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "due": self.due.isoformat(),
            "sent_on": iso_text(self.sent_on),
            "last_chased": iso_text(self.last_chased),
        }


@dataclass(frozen=True)
class ToChase:
    """What an officer chases: overdue audits (most overdue first), audits whose latest
    file was rejected with no good return since (newest first) and unmatched files."""

    overdue: list[OverdueAudit] = field(default_factory=list)
    rejected: list[RejectionEntry] = field(default_factory=list)
    unmatched: list[RejectionEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overdue": [o.as_dict() for o in self.overdue],
            "rejected": [r.as_dict() for r in self.rejected],
            "unmatched": [r.as_dict() for r in self.unmatched],
        }


def _overdue(db: Store, today: dt.date) -> list[OverdueAudit]:
    late = status(db, None, today).overdue
    months = {r.audit_id: r.month for r in db.audit_rows(audit_ids=[o.audit_id for o in late])}
    events = db.events_named([o.audit_id for o in late], {*SENT_EVENTS, DRAFTS_EVENT, CHASED})
    found = []
    for o in late:
        mine = events.get(o.audit_id, [])
        chased = [at for at, name in mine if name == CHASED]
        found.append(
            OverdueAudit(
                o.audit_id,
                months.get(o.audit_id, ""),
                o.team,
                o.auditor,
                o.state,
                o.due,
                o.days_overdue,
                distribution_date(mine),
                max(chased).date() if chased else None,
            )
        )
    return found


def to_chase(db: Store, roles: Collection[str], today: dt.date | None = None) -> ToChase:
    """The "To chase" list as these roles may see it: audits whose results the programme
    keeps from them are left out (staff data)."""
    overdue = _overdue(db, today or clock.today())
    files = [_entry(r) for r in db.rejected_files(open_only=True)]
    latest: dict[str, RejectionEntry] = {}
    for entry in files:  # newest first: the first of each audit is its latest file
        if entry.audit_id:
            latest.setdefault(entry.audit_id, entry)
    rows = db.audit_rows(audit_ids=list(latest))
    owing = {r.audit_id for r in rows if AuditState(r.state) in OUTSTANDING}  # still to come
    months = {o.month for o in overdue} | {r.month for r in rows}
    hidden = hidden_audits(db, sorted(months), roles) if months else set()
    return ToChase(
        [o for o in overdue if o.audit_id not in hidden],
        [e for a, e in latest.items() if a in owing and a not in hidden],
        [e for e in files if not e.audit_id],
    )


def chase_refusal(db: Store, audit_id: str, today: dt.date | None = None) -> str:
    """Why the audit cannot be chased now, in a sentence ('' when it can): not overdue, never
    sent, or chased already today (a chase round is the day, as `formtool chase` counts it)."""
    from formtool.programme.mail import CHASE

    today = today or clock.today()
    row = db.require_audit(audit_id)
    if AuditState(row.state) not in OUTSTANDING or row.due_date >= today:
        return "It is not overdue."
    sent = db.events_named([audit_id], {*SENT_EVENTS, DRAFTS_EVENT}).get(audit_id, [])
    if distribution_date(sent) is None:
        return "It was never sent, so it cannot be chased: send it from the Allocate page."
    if db.held_claims([audit_id], [CHASE], today.isoformat()).get((audit_id, CHASE)):
        return "It was chased today already; the next chase can go tomorrow."
    return ""
