"""Where an audit stands in a report, each audit in exactly one place, so a headline's parts
add up to its total: completed (a Final return in and accepted into the cycle), outstanding
(the auditor or preparer still owes a return), prepared and waiting to be picked for audit,
prepared and filed without an audit (two-stage tools, seed 000), exempted (agreed not to be
done). `Tally` counts audits so; the PMU pack's figures and the activity reports share it,
and `charted`, whether a count reaches the minimum base a proportion is given or drawn from.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from formtool.store import COMPLETED, OUTSTANDING, AuditState

S = AuditState
COMPLETE = {s.value for s in COMPLETED}
OUTSTANDING_STATES = {s.value for s in OUTSTANDING}
#: Where an audit stands in a report, each in exactly one (see the module docstring).
STANDINGS = ("completed", "outstanding", "prepared", "filed", "exempted")
STANDING = {
    **dict.fromkeys(COMPLETE, "completed"),
    **dict.fromkeys(OUTSTANDING_STATES, "outstanding"),
    S.prepared.value: "prepared",  # two-stage: the worker's list is in, not yet picked
    S.filed_unaudited.value: "filed",  # two-stage: prepared, not picked: on file, not audited
    S.exempted.value: "exempted",  # agreed not to be done
}
#: Outstanding audits that came back, as a draft or sent back for amendment (the rest of the
#: outstanding are not yet returned).
STARTED = {S.in_progress.value, S.amendment_requested.value}


def charted(base: int, min_base: int) -> bool:
    """A proportion of `base` may be drawn or given: at least the minimum base."""
    return base >= max(min_base, 1)


class InState:
    """What an audit's state says of it in a report: where it stands (`STANDINGS`), complete,
    outstanding or exempted (the case-file figures' audits and an activity run's share them)."""

    state: str
    due_date: dt.date

    @property
    def standing(self) -> str:
        """One of STANDINGS; a state this code does not know is counted as outstanding, so
        an audit is never left out of a total."""
        return STANDING.get(self.state, "outstanding")

    @property
    def complete(self) -> bool:
        """A Final return is in, and not sent back: it counts as completed."""
        return self.standing == "completed"

    @property
    def outstanding(self) -> bool:
        """The auditor (or preparer) still owes a return."""
        return self.standing == "outstanding"

    @property
    def exempted(self) -> bool:
        """Agreed not to be done: neither complete nor outstanding, nor a non-completion."""
        return self.standing == "exempted"


@dataclass(frozen=True)
class Tally:
    """Audits counted by where they stand, each once: `allocated` is the sum of `completed`,
    `outstanding`, `prepared`, `filed` and `exempted`. Of the outstanding, `started` came back
    as a draft or were sent back for amendment (`not_returned`: the rest), and `overdue` are
    past their due date, of either kind."""

    allocated: int = 0
    completed: int = 0
    outstanding: int = 0
    prepared: int = 0
    filed: int = 0
    exempted: int = 0
    started: int = 0
    overdue: int = 0

    @property
    def due(self) -> int:
        """Audits to be done: neither exempted nor filed without an audit."""
        return self.allocated - self.exempted - self.filed

    @property
    def not_returned(self) -> int:
        return self.outstanding - self.started

    @property
    def not_completed(self) -> int:
        """Due and not complete: the non-completions."""
        return self.due - self.completed

    def parts(self) -> tuple[int, ...]:
        """The counts that add up to `allocated`, in STANDINGS order."""
        return tuple(getattr(self, name) for name in STANDINGS)

    def __getitem__(self, key: str) -> int:
        """A count by name, as the team dicts it replaces were read (`t["completed"]`)."""
        return int(getattr(self, key))


def tally(audits: Iterable[InState], as_of: dt.date) -> Tally:
    """Count `audits` by where they stand (see Tally); overdue as of `as_of`."""
    counts: Counter[str] = Counter()
    for audit in audits:
        where = audit.standing
        counts["allocated"] += 1
        counts[where] += 1
        if where == "outstanding":
            counts["started"] += audit.state in STARTED
            counts["overdue"] += audit.due_date < as_of
    return Tally(**counts)


__all__ = [
    "COMPLETE",
    "OUTSTANDING_STATES",
    "STANDING",
    "STANDINGS",
    "STARTED",
    "InState",
    "Tally",
    "charted",
    "tally",
]
