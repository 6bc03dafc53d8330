"""What follows a grade that calls for it (the scale's `follow_up` answers, e.g. Inadequate),
as the programme policy's `reaudit` rule says: a review meeting `review_weeks` after the grade,
a re-audit within `within_months`, and, when the case is graded so in a second audit, a
meeting with the Head of Service (seed 001, Appendix A para 25, transcribed in hull.yaml).

The meetings are recorded steps (`formtool followup AUDIT --review-held DATE`, or
`--hos-meeting DATE`): an event on the audit, the date held first in its detail. The re-audit
is the case's next audit, done when its Final return is in. `follow_ups` works out, for graded
audits, what is due when and what has happened; the PMU pack prints it, "late" where a step
is past its date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from formtool import clock
from formtool.errors import FormtoolError, printable
from formtool.periods import show_date
from formtool.programme.deadlines import add_months
from formtool.programme.policy import Policy, Reaudit
from formtool.programme.rules import active_policy
from formtool.store import COMPLETED, Store, received_on

REVIEW = "review meeting held"
HEAD_OF_SERVICE = "head of service meeting held"
STEPS = (REVIEW, HEAD_OF_SERVICE)
STEP_NAMES = {REVIEW: "review meeting", HEAD_OF_SERVICE: "Head of Service meeting"}
MAX_NOTE = 500  # a line for the audit's history, not the minutes
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_COMPLETE = {s.value for s in COMPLETED}
_NUMBERS = (
    "one", "two", "three", "four", "five", "six",
    "seven", "eight", "nine", "ten", "eleven", "twelve",
)  # fmt: skip


class FollowUpError(FormtoolError):
    """A follow-up step that cannot be recorded: unknown audit, bad date, a step not due."""


@dataclass(frozen=True)
class Graded:
    """One audit as the follow-up sees it: its grade counts only once it is complete."""

    audit_id: str
    case_number: str
    month: str
    grade: str = ""  # the grade that counts (moderated first); "" until complete
    graded_on: dt.date | None = None  # when its Final return came in
    follow_up: bool = False  # the grade is one of its scale's follow-up grades


@dataclass(frozen=True)
class FollowUp:
    """One audit graded with a follow-up grade: the dates its steps are due (None: the
    programme sets none) and when each happened (None: not yet)."""

    audit_id: str
    case_number: str
    grade: str
    graded_on: dt.date
    review_by: dt.date | None
    reaudit_by: dt.date | None
    head_of_service: bool = False  # the case was graded so in an earlier audit too
    review_held: dt.date | None = None
    hos_held: dt.date | None = None
    reaudit_id: str = ""  # the case's next audit, once there is one
    reaudited_on: dt.date | None = None  # when that audit's Final return came in

    def review(self, as_of: dt.date) -> str:
        return step_state(self.review_by, self.review_held, as_of)

    def reaudit(self, as_of: dt.date) -> str:
        return step_state(self.reaudit_by, self.reaudited_on, as_of)

    def hos(self, as_of: dt.date) -> str:
        """The Head of Service meeting: "-" when not due; the policy gives it no date."""
        return step_state(None, self.hos_held, as_of) if self.head_of_service else "-"

    def as_dict(self, as_of: dt.date) -> dict[str, Any]:
        days = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in vars(self).items()}
        return days | {
            "review": self.review(as_of),
            "reaudit": self.reaudit(as_of),
            "hos": self.hos(as_of),
        }


def step_state(due: dt.date | None, done: dt.date | None, as_of: dt.date) -> str:
    """A step in a word or a date: "12/01/2027", "14/01/2027, late" (done after its date),
    "late" (not done, its date passed) or "not yet"."""
    if done is not None:
        return show_date(done) + (", late" if due is not None and done > due else "")
    return "late" if due is not None and as_of > due else "not yet"


def number_words(count: int, unit: str) -> str:
    """ "four weeks", "one month", "13 months": how a report says a policy's interval."""
    said = _NUMBERS[count - 1] if 1 <= count <= len(_NUMBERS) else str(count)
    return f"{said} {unit}" + ("" if count == 1 else "s")


def follow_ups(
    audits: Iterable[Graded],
    rule: Reaudit | None,
    held: Mapping[str, Mapping[str, dt.date]] | None = None,
) -> dict[str, FollowUp]:
    """Audit id -> its follow-up, for every complete audit graded with a follow-up grade.
    `held`: audit id -> step event -> the date it was held (the first, if several were)."""
    held = held or {}
    by_case: defaultdict[str, list[Graded]] = defaultdict(list)
    for audit in audits:
        by_case[audit.case_number].append(audit)
    found: dict[str, FollowUp] = {}
    for case in by_case.values():
        case.sort(key=lambda a: (a.month, a.graded_on or dt.date.max, a.audit_id))
        for i, audit in enumerate(case):
            if audit.follow_up and audit.graded_on is not None:
                found[audit.audit_id] = _follow_up(audit, case[:i], case[i + 1 :], rule, held)
    return found


def _follow_up(
    audit: Graded,
    before: list[Graded],
    after: list[Graded],
    rule: Reaudit | None,
    held: Mapping[str, Mapping[str, dt.date]],
) -> FollowUp:
    graded = audit.graded_on
    assert graded is not None  # complete
    later = [a for a in after if a.month > audit.month]  # the re-audit falls in a later month
    done = next((a for a in later if a.graded_on is not None), None)
    reaudit = done or (later[0] if later else None)
    steps = held.get(audit.audit_id, {})
    return FollowUp(
        audit.audit_id,
        audit.case_number,
        audit.grade,
        graded,
        graded + dt.timedelta(weeks=rule.review_weeks) if rule else None,
        add_months(graded, rule.within_months) if rule else None,
        rule is not None and any(a.follow_up for a in before),
        steps.get(REVIEW),
        steps.get(HEAD_OF_SERVICE),
        reaudit.audit_id if reaudit else "",
        done.graded_on if done else None,
    )


# --- from the database ------------------------------------------------------------------


@dataclass
class CaseFollowUps:
    """The follow-ups of some cases under a policy, as the database holds them."""

    policy: Policy
    follow_ups: dict[str, FollowUp] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)  # audit id -> its row


def load_follow_ups(
    db: Store,
    policy: Policy,
    audit_ids: Collection[str],
    case_numbers: Collection[str] | None = None,
    known: tuple[Collection[str], list[Any]] | None = None,
) -> CaseFollowUps:
    """The follow-ups of the cases of these audits (`case_numbers`: their cases, when the
    caller knows them): every audit of those cases is read (an earlier grade makes a second
    one; a later audit is the re-audit). `known`: some months and every audit of them the
    caller has read already (`graded_rows`), so only the cases' other months are asked for."""
    if case_numbers is not None:
        cases = set(case_numbers)
    else:
        rows = db.audit_rows(audit_ids=audit_ids, brief=True) if audit_ids else []
        cases = {r.case_number for r in rows}
    if not cases:
        mine = []
    elif known is None:
        mine = db.graded_rows(case_numbers=cases, facts=False)
    else:
        months, rows = known
        elsewhere = db.graded_rows(case_numbers=cases, facts=False, other_than=months)
        mine = sorted(
            [*(r for r in rows if r.case_number in cases), *elsewhere], key=lambda r: r.audit_id
        )
    if not mine:
        return CaseFollowUps(policy)
    forms = db.forms_of(mine, "The follow-up of graded audits")
    graded = [_graded(row, forms[row.audit_id]) for row in mine]
    flagged = [g.audit_id for g in graded if g.follow_up]
    found = follow_ups(graded, policy.reaudit, _held(db, flagged))
    return CaseFollowUps(policy, found, {r.audit_id: r for r in mine})


def _graded(row: Any, form: Any) -> Graded:
    if row.state not in _COMPLETE:
        return Graded(row.audit_id, row.case_number, row.month)
    grade = row.moderated_grade or row.auditor_grade or ""
    scale = form.grade_scale
    return Graded(
        row.audit_id,
        row.case_number,
        row.month,
        grade,
        received_on(row),
        bool(grade) and scale is not None and grade in scale.follow_up,
    )


def _held(db: Store, audit_ids: list[str]) -> dict[str, dict[str, dt.date]]:
    """Audit id -> step -> the first date it was held, from the steps' events (only audits
    with one are read in full: few are)."""
    held: dict[str, dict[str, dt.date]] = {}
    for audit_id in db.events_named(audit_ids, STEPS):
        records = db.audit_records(audit_id)
        for event in records.events if records else []:
            day = _held_on(event.detail) if event.event in STEPS else None
            if day is not None:
                steps = held.setdefault(audit_id, {})
                steps[event.event] = min(day, steps.get(event.event, day))
    return held


def _held_on(detail: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(detail[:10])
    except ValueError:
        return None


# --- recording a step -------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """The steps recorded on an audit now, and its follow-up after them."""

    audit_id: str
    steps: list[tuple[str, dt.date]]
    follow_up: FollowUp

    def lines(self, as_of: dt.date) -> list[str]:
        said = [f"{self.audit_id}: {step} on {show_date(day)}." for step, day in self.steps]
        return said + describe(self.follow_up, as_of)


def parse_day(text: str, option: str) -> dt.date:
    """A YYYY-MM-DD date given for `option`, or FollowUpError saying how to write it."""
    text = text.strip()
    try:
        if _DAY.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise FollowUpError(
        f"{option} '{printable(text, 40)}' is not a date. Write it as YYYY-MM-DD, e.g. 2027-01-15."
    )


def record_steps(
    db: Store,
    audit_id: str,
    review_held: dt.date | None = None,
    hos_meeting: dt.date | None = None,
    note: str = "",
    user: str = "",
) -> Recorded:
    """Record the review meeting and/or the Head of Service meeting held for an audit, once
    each step is checked: due for the audit, its date between the grade and today. A step
    already recorded for that date is not recorded again."""
    chosen = [(s, day) for s, day in ((REVIEW, review_held), (HEAD_OF_SERVICE, hos_meeting)) if day]
    if not chosen:
        raise FollowUpError("Say which step was held: --review-held DATE or --hos-meeting DATE.")
    before = audit_follow_up(db, audit_id)
    for step, day in chosen:
        _check_step(before, step, day)
    tail = f": {printable(note.strip(), MAX_NOTE)}" if note.strip() else ""
    new = [(s, day) for s, day in chosen if (s, day) not in _recorded(db, audit_id)]
    db.record_events([(audit_id, s, f"{day.isoformat()}{tail}") for s, day in new], user)
    return Recorded(audit_id, chosen, audit_follow_up(db, audit_id))


def _recorded(db: Store, audit_id: str) -> set[tuple[str, dt.date | None]]:
    records = db.audit_records(audit_id)
    events = records.events if records else []
    return {(e.event, _held_on(e.detail)) for e in events if e.event in STEPS}


def audit_follow_up(db: Store, audit_id: str) -> FollowUp:
    """The audit's follow-up under the active policy; FollowUpError when the audit is
    unknown or its grade calls for none."""
    policy = active_policy(db)
    row = db.require_audit(audit_id)
    if policy.reaudit is None:
        raise FollowUpError(
            f"The programme '{policy.name}' sets no review or re-audit after a grade: "
            "there is no follow-up step to record."
        )
    loaded = load_follow_ups(db, policy, [audit_id])
    found = loaded.follow_ups.get(audit_id)
    if found is not None:
        return found
    full = loaded.rows[audit_id]
    grade = (full.moderated_grade or full.auditor_grade) if full.state in _COMPLETE else ""
    form = db.form_for(row.form_id, row.form_version)
    scale = form.grade_scale if form else None
    grades = " or ".join(scale.follow_up) if scale and scale.follow_up else "a follow-up grade"
    why = f"is graded {grade}" if grade else "has no complete, graded return"
    source = f" ({policy.reaudit.source})" if policy.reaudit.source else ""
    raise FollowUpError(
        f"Audit {audit_id} {why}: no review meeting or Head of Service meeting is due for it. "
        f"They follow a grade of {grades}{source}."
    )


def _check_step(follow_up: FollowUp, step: str, day: dt.date) -> None:
    what = STEP_NAMES[step]
    if step == HEAD_OF_SERVICE and not follow_up.head_of_service:
        raise FollowUpError(
            f"Audit {follow_up.audit_id} is case {follow_up.case_number}'s first "
            f"{follow_up.grade} grade: a Head of Service meeting follows a second one. "
            "Record it on the later audit."
        )
    today = clock.today()
    if day > today:
        raise FollowUpError(
            f"The {what} date {show_date(day)} is after today ({show_date(today)}): record "
            "a meeting once it has been held."
        )
    if day < follow_up.graded_on:
        raise FollowUpError(
            f"The {what} date {show_date(day)} is before audit {follow_up.audit_id} was "
            f"graded ({show_date(follow_up.graded_on)}). Check the date."
        )


def describe(follow_up: FollowUp, as_of: dt.date) -> list[str]:
    """The follow-up in lines, as `formtool followup AUDIT` prints it."""
    f = follow_up

    def due(day: dt.date | None) -> str:
        return f"due {show_date(day)}" if day else "no date set"

    lines = [
        f"{f.audit_id}: case {f.case_number} graded {f.grade} on {show_date(f.graded_on)}.",
        f"  review meeting ({due(f.review_by)}): {f.review(as_of)}",
        f"  re-audit ({due(f.reaudit_by)}): {f.reaudit(as_of)}"
        + (f" ({f.reaudit_id})" if f.reaudit_id else ""),
    ]
    if f.head_of_service:
        lines.append(f"  Head of Service meeting (as soon as possible): {f.hos(as_of)}")
    return lines
