"""The QA team's steps after a return comes in (seed 001, Appendix A): check it (accept, or
send it back for amendment within 3 working days), confirm the actions are signed off, close.

Each step is one state change in one transaction (`Store.move`, `move_once_signed_off`), conditional
on the state the step saw, so two people acting on one audit at once cannot both succeed: the
second gets a one-line refusal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.errors import FormtoolError
from formtool.periods import Month, show_date
from formtool.programme.policy import Policy
from formtool.settings import DEFAULT, Settings
from formtool.store import AuditState, Move, OpenActions, StateError, Store, audit_facts

S = AuditState


class WorkflowError(FormtoolError):
    """A step that cannot be taken: the message says why and what to do."""


@dataclass(frozen=True)
class StepResult:
    audit_id: str
    state: str
    previous_state: str
    amend_by: str | None = None  # ISO date, for an amendment request

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def check_audit(
    db: Store,
    audit_id: str,
    amend_reason: str | None = None,
    today: dt.date | None = None,
    user: str = "",
) -> StepResult:
    """Accept a complete return (state `checked`) or request an amendment."""
    if amend_reason is not None and not amend_reason.strip():
        raise WorkflowError('Say what needs amending (--amend "reason").')
    today = today or clock.today()
    if amend_reason is None:
        accept = Move(
            audit_id,
            (S.returned,),
            S.checked,
            "checked",
            "accepted",
            why="only a complete (Final) return can be accepted; import it first",
        )
        return StepResult(audit_id, S.checked.value, db.move(accept, user).value)
    due = _amendment_due(db, audit_id, today)
    by = f"amend by {show_date(due)}" if due else "amend (the programme sets no deadline)"
    amend = Move(
        audit_id,
        (S.returned,),
        S.amendment_requested,
        "amendment requested",
        f"{by}: {amend_reason.strip()}",
        why="only a returned audit can be sent back for amendment",
        due=due,  # the audit is due again on this day while it is with the auditor
    )
    before = db.move(amend, user)
    when = due.isoformat() if due else None
    return StepResult(audit_id, S.amendment_requested.value, before.value, when)


def _amendment_due(db: Store, audit_id: str, today: dt.date) -> dt.date | None:
    from formtool.programme.rules import active_policy, amendment_due_for

    row = db.require_audit(audit_id)
    return amendment_due_for(active_policy(db), row.form_id, row.month, today)


def sign_off_actions(db: Store, audit_id: str, user: str = "") -> StepResult:
    """Record that the audit's actions are signed off (every row the form asks a manager to
    sign off carries a sign-off in the current return)."""
    move = Move(
        audit_id,
        (S.checked, S.moderated),
        S.actions_signed_off,
        "actions signed off",
        why="accept (check) or moderate it first",
    )
    try:
        before = db.move_once_signed_off(move, user)
    except OpenActions as exc:
        raise UnsignedActions(db, audit_id, exc.rows) from None
    return StepResult(audit_id, S.actions_signed_off.value, before.value)


class UnsignedActions(WorkflowError):
    """Actions still lack a manager's sign-off: said in the form's words; `rows` are their
    keys (`table.row`), for `formtool signoff --action`."""

    def __init__(self, db: Store, audit_id: str, rows: list[str], then: str = "") -> None:
        self.audit_id, self.rows = audit_id, rows
        super().__init__(
            f"Audit {audit_id} has {len(rows)} action(s) without a manager's sign-off: "
            f"{'; '.join(action_names(db, audit_id, rows)[:5])}. Record each sign-off on the "
            f"audit's page, or import the return with the sign-offs filled in.{then}"
        )


def action_names(db: Store, audit_id: str, rows: list[str]) -> list[str]:
    """`table.row` keys as people say them: 'action 2 of Actions agreed'."""
    row = db.require_audit(audit_id)
    form = db.forms_of([row], f"Audit {audit_id}")[audit_id]
    titles = form.table_titles()
    named = []
    for key in rows:
        table, _, number = key.rpartition(".")
        named.append(f"action {number} of {titles.get(table, table)}")
    return named


def sign_off_action(
    db: Store,
    audit_id: str,
    action: str,
    signed_by: str,
    on: dt.date | str,
    user: str = "",
    today: dt.date | None = None,
) -> str:
    """Record the manager's sign-off of one action row (`table.row`, as `open_actions` names
    it): who signed it off and on which day (not after today). The row as people say it."""
    signed_by = signed_by.strip()
    if not signed_by or len(signed_by) > 200:
        raise WorkflowError("Say who signed the action off (their name, up to 200 characters).")
    day = _sign_off_day(on, today or clock.today())
    table, _, number = action.rpartition(".")
    waiting = db.open_actions(audit_id)
    if not table or not number.isdigit() or action not in waiting:
        keys = f" (waiting: {', '.join(waiting[:8])})" if waiting else " (none is waiting)"
        raise WorkflowError(
            f"Audit {audit_id} has no action '{action[:40]}' waiting for a sign-off{keys}. "
            "Reload the audit's page to see its actions."
        )
    named = action_names(db, audit_id, [action])[0]
    db.sign_off_action(audit_id, table, int(number), signed_by, day, user, named)
    return named


def _sign_off_day(on: dt.date | str, today: dt.date) -> dt.date:
    if isinstance(on, str):
        text = on.strip()
        try:
            on = dt.date.fromisoformat(text)
        except ValueError:
            raise WorkflowError(
                f"The sign-off date '{text[:20]}' is not a date: give it as YYYY-MM-DD."
            ) from None
    if on > today:
        raise WorkflowError(f"The sign-off date {show_date(on)} is after today.")
    return on


def close_audit(db: Store, audit_id: str, user: str = "") -> StepResult:
    """Close an audit whose actions are signed off (or that has none open)."""
    move = Move(
        audit_id,
        (S.checked, S.moderated, S.actions_signed_off),
        S.closed,
        "closed",
        why="only a checked, moderated or signed-off audit can close",
    )
    try:
        before = db.move_once_signed_off(move, user, check_in=(S.checked, S.moderated))
    except OpenActions as exc:
        raise UnsignedActions(db, audit_id, exc.rows, " Then close it.") from None
    return StepResult(audit_id, S.closed.value, before.value)


def exempt_audit(
    db: Store, audit_id: str, reason: str, agreed_by: str, user: str = "", who_agrees: str = ""
) -> StepResult:
    """Exempt an allocated audit, in exceptional circumstances, with the reason and who
    agreed (seed 001 App A paras 4-5): it is not done and counts against nobody's quota. A
    return arriving afterwards is kept as history, never current. `who_agrees`: the
    programme's words for who may agree one, for the message when nobody is named."""
    if not reason.strip():
        raise WorkflowError('Say why the audit is exempted (--reason "...").')
    if not agreed_by.strip():
        rule = f" ({who_agrees})" if who_agrees else ""
        raise WorkflowError(f"Say who agreed the exemption (--agreed-by NAME){rule}.")
    move = Move(
        audit_id,
        (S.allocated, S.sent, S.in_progress),
        S.exempted,
        "exempted",
        f"agreed by {agreed_by.strip()}: {reason.strip()}",
        why="only an audit not yet complete can be exempted",
    )
    return StepResult(audit_id, S.exempted.value, db.move(move, user).value)


@dataclass(frozen=True)
class Reassigned:
    audit_id: str
    auditor: str
    auditor_email: str
    copy: int
    files: list[str]  # the new copy's forms, ready for `formtool send`

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def reassign_audit(
    db: Store,
    audit_id: str,
    auditor: str,
    email: str,
    reason: str,
    out_dir: Path,
    user: str = "",
    settings: Settings = DEFAULT,
    form_format: str = "",
    team: str = "",
    policy: Policy | None = None,
) -> Reassigned:
    """Give an audit to another auditor (seed 001 App A paras 4-5): a new copy of its form
    (same definition version; its facts name the new auditor), written to `out_dir` for
    `formtool send`; the due date stays; the old copy, if it comes back, is held for an
    officer (`reassigned`). The yearly quotas follow the audit to its new auditor."""
    from formtool.generate import audit_record, write_forms
    from formtool.programme.mail import valid_address
    from formtool.programme.rules import active_policy
    from formtool.read.cases import Case
    from formtool.store import FORM

    policy = policy or active_policy(db)
    if not reason.strip():
        raise WorkflowError('Say why the audit is reassigned (--reason "...").')
    if not auditor.strip() or not valid_address(email):
        raise WorkflowError(
            f"Give the new auditor's name (--to) and email address (--email); "
            f"'{email}' is not an email address."
        )
    row = db.require_audit(audit_id)
    if row.auditor == auditor.strip():
        raise WorkflowError(f"Audit {audit_id} is already {auditor.strip()}'s.")
    form = db.forms_of([row], f"Audit {audit_id}")[audit_id]
    case = Case(
        audit_id,
        form.id,
        form.version,
        audit_facts(row) | {"auditor": auditor.strip()},
        0,
        email.strip(),
        row.preparer_email,
        form_format or row.form_format,
        db.identity_key(),
    )
    _check_new_auditor(db, policy, row, auditor.strip(), team.strip())
    record = replace(audit_record(case), month=row.month)
    copies: list[int] = []
    made = write_forms(
        form,
        [case],
        out_dir,
        # A web-format audit's email carries a link, made when it is sent; the Word form is
        # still written, for the record and for printing.
        (case.form_format if case.form_format != "web" else "docx",),
        settings=settings,
        record=lambda: copies.append(db.reassign(record, reason.strip(), user)),
    )
    db.record_files([m.path for m in made], FORM, user=user, audit_ids=[audit_id])  # retention
    return Reassigned(
        audit_id, auditor.strip(), email.strip(), copies[0], [str(m.path) for m in made]
    )


def _check_new_auditor(db: Store, policy: Policy, row: Any, auditor: str, team: str) -> None:
    """The programme's rules hold for the new auditor too: never a team the programme keeps
    them from (its samples of this tool all say `other`: not their own), and room in their
    yearly quota (the audit counts for them from now on)."""
    from formtool.programme.sampling import year_of

    rules = {s.team_rule(Month(row.month).number) for s in policy.samples if s.form == row.form_id}
    if team and rules == {"other"} and team == row.team:
        raise WorkflowError(
            f"{auditor} is in {row.team}, the case's own team, and under programme "
            f"'{policy.name}' auditors never audit their own team. Choose someone outside it."
        )
    cap = policy.auditors.per_year
    if cap is not None:
        first, last = year_of(policy, row.month)
        done = db.preview_allocation(
            lambda r: r.allocation_history(row.month, row.month, str(first), str(last))[1]
        )
        if int(done.get(auditor, 0)) >= cap:
            raise WorkflowError(
                f"{auditor} already has {cap} audits this {policy.auditors.year} year, the most "
                f"programme '{policy.name}' allows. Choose someone with room."
            )


@dataclass(frozen=True)
class Reopened:
    audit_id: str
    state: str
    previous_state: str
    promoted: int | None  # the return kept since acceptance that became current, if any

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def reopen_audit(db: Store, audit_id: str, reason: str, user: str = "") -> Reopened:
    """Reopen an accepted audit with a reason (see Store.reopen)."""
    if not reason.strip():
        raise WorkflowError('Say why the audit is reopened (--reason "...").')
    try:
        before, placed = db.reopen(audit_id, reason.strip(), user)
    except StateError as exc:
        raise WorkflowError(f"{exc}.") from None
    promoted = placed.return_id if placed is not None and placed.status != "history" else None
    state = placed.state if placed is not None and placed.state else S.returned
    return Reopened(audit_id, str(state), str(before), promoted)


def accept_held(db: Store, return_id: int, user: str = "") -> dict[str, object]:
    """An officer accepts a held return: what became of it."""
    try:
        stored = db.accept_held(return_id, user)
    except StateError as exc:
        raise WorkflowError(f"{exc}.") from None
    audit = db.return_audit(return_id)
    return {"return_id": return_id, "audit_id": audit, "status": stored.status}


def refuse_held(db: Store, return_id: int, reason: str, user: str = "") -> str:
    """An officer refuses a held return (with the reason); its audit id."""
    if not reason.strip():
        raise WorkflowError('Say why the return is refused (--reason "...").')
    try:
        return db.refuse_held(return_id, reason.strip(), user)
    except StateError as exc:
        raise WorkflowError(f"{exc}.") from None


@dataclass(frozen=True)
class Selection:
    """The month's prepared files: those picked for the auditor, and those filed as they are."""

    month: str
    selected: tuple[str, ...]
    filed: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"month": self.month, "selected": list(self.selected), "filed": list(self.filed)}


def select_prepared(
    db: Store, month: str, per_team: int = 1, seed: int = 0, user: str = ""
) -> Selection:
    """Seed 000, paras 10.2 and 12.1: from the files prepared for audit in the month, pick at
    least `per_team` per team (seeded) for the service manager or competent person to audit;
    the others are filed as prepared and not audited (and, like audited files, are not
    selected again for 12 months: they stay in the audit history)."""
    import random

    if per_team < 1:
        raise WorkflowError(
            "--per-team must be at least 1 (seed 000: at least one file per team is audited)."
        )
    rows = db.audit_rows([month], [S.prepared.value])
    teams: dict[str, list[str]] = {}
    for row in rows:
        teams.setdefault(row.team, []).append(row.audit_id)
    rng = random.Random(f"{month}:{seed}:select")
    selected = {
        a
        for team in sorted(teams)
        for a in rng.sample(sorted(teams[team]), min(per_team, len(teams[team])))
    }
    filed = tuple(sorted(set(a for ids in teams.values() for a in ids) - selected))
    db.move_all(
        [
            *(
                Move(
                    a,
                    (S.prepared,),
                    S.awaiting_audit,
                    "selected for audit",
                    f"{month}, seed {seed}",
                )
                for a in sorted(selected)
            ),
            *(
                Move(
                    a,
                    (S.prepared,),
                    S.filed_unaudited,
                    "filed unaudited",
                    "prepared for audit, not selected",
                )
                for a in filed
            ),
        ],
        user,
    )
    return Selection(month, tuple(sorted(selected)), filed)
