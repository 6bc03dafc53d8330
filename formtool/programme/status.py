"""The month's status: audits by state, team and auditor, and which are outstanding or overdue.

`status` is the one source of the month's figures: `formtool status`, its `--json` and the
web dashboard all print what it returns.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from formtool import clock, store
from formtool.store import Store

S = store.AuditState
DONE = store.COMPLETED | {S.filed_unaudited}
TALLIES = ("audits", "returned", "outstanding", "overdue")


@dataclass(frozen=True)
class Outstanding:
    audit_id: str
    case_number: str
    form_id: str
    auditor: str
    team: str
    state: str
    due: dt.date
    days_overdue: int
    original_due: dt.date | None = None  # the allocated due date, when an amendment moved it

    def as_dict(self) -> dict[str, Any]:
        first = self.original_due.isoformat() if self.original_due else None
        return asdict(self) | {"due": self.due.isoformat(), "original_due": first}


@dataclass
class StatusReport:
    month: str  # YYYY-MM or "all"
    today: dt.date
    audits: int
    by_state: dict[str, int]
    teams: dict[str, dict[str, int]]
    auditors: dict[str, dict[str, int]]
    outstanding: list[Outstanding] = field(default_factory=list)
    held: int = 0  # returns from strangers' addresses waiting for an officer (every month)
    unkeyed: int = 0  # open audits whose forms carry the checksum used before keying
    #: Chosen slots the allocation left for auditors to name, not yet named (auditor, sample).
    choices: list[dict[str, str]] = field(default_factory=list)
    concerns: int = 0  # immediate concerns with no action recorded (every month)

    @property
    def overdue(self) -> list[Outstanding]:
        return [o for o in self.outstanding if o.days_overdue > 0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "today": self.today.isoformat(),
            "audits": self.audits,
            "by_state": self.by_state,
            "teams": self.teams,
            "auditors": self.auditors,
            "outstanding": [o.as_dict() for o in self.outstanding],
            "overdue": [o.audit_id for o in self.overdue],
            "held_returns": self.held,
            "unkeyed_audits": self.unkeyed,
            "missing_choices": self.choices,
            "open_concerns": self.concerns,
        }


def _tally(counts: list[Any], key: str) -> dict[str, dict[str, int]]:
    """Returned, outstanding and overdue by team or auditor, from the database's counts."""
    groups: dict[str, Counter[str]] = {}
    for row in counts:
        tally = groups.setdefault(getattr(row, key), Counter())
        state = S(row.state)
        tally["audits"] += row.n
        tally["returned"] += row.n * (state in DONE)
        tally["outstanding"] += row.n * (state in store.OUTSTANDING)
        tally["overdue"] += row.n * (state in store.OUTSTANDING and bool(row.late))
    return {name: {t: tally[t] for t in TALLIES} for name, tally in sorted(groups.items())}


def audits_in_month(db: Store, month: str, state: str | None = None) -> list[Any]:
    """The month's audits (in one state, if given), in audit id order."""
    return db.audit_rows([month], [state] if state else None)


def status(db: Store, month: str | None = None, today: dt.date | None = None) -> StatusReport:
    """Audits by state; returned / outstanding / overdue per team and auditor; the list of
    outstanding audits, most overdue first."""
    today = today or clock.today()
    months = [month] if month else None
    counts = db.status_counts(months, today)  # counted by the database: a region's month
    by_state: Counter[str] = Counter()
    for row in counts:
        by_state[row.state] += row.n
    owed = [s.value for s in store.OUTSTANDING]
    rows = db.audit_rows(months, owed, brief=True)  # only the outstanding are listed
    outstanding = sorted(
        (
            Outstanding(
                r.audit_id,
                r.case_number,
                r.form_id,
                r.auditor,
                r.team,
                r.state,
                r.due_date,
                max(0, (today - r.due_date).days),
                r.original_due_date,
            )
            for r in rows
            if S(r.state) in store.OUTSTANDING
        ),
        key=lambda o: (-o.days_overdue, o.due, o.audit_id),
    )
    return StatusReport(
        month or "all",
        today,
        sum(by_state.values()),
        {s.value: by_state[s.value] for s in S if by_state.get(s.value)},
        _tally(counts, "team"),
        _tally(counts, "auditor"),
        outstanding,
        len(db.held_returns()),
        db.unkeyed_audits(),
        [
            {"month": c.month, "auditor": c.auditor, "sample": c.sample, "form": c.form_id}
            for c in db.open_choices(month)
        ],
        len(db.concerns(open_only=True)),
    )
