"""One audit as the web workspace's audit page shows it: its facts, answers, actions, warnings,
every return it had, its events, its immediate concerns, and the QA steps open to it now (the
state machine decides). Also the original file of any stored return, for download, and the
concerns as the dashboard's banner and the concerns page list them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from formtool import store
from formtool.errors import FormtoolError, Issue
from formtool.periods import iso_text
from formtool.programme.concerns import as_dict as concern_dict
from formtool.programme.concerns import contacts, unsent
from formtool.programme.rules import active_policy
from formtool.store import Concern, Store, unknown_audit

S = store.AuditState


@dataclass(frozen=True)
class AuditSummary:
    """The audit's own record: who, what, when, where it stands and its grades (as text)."""

    audit_id: str
    form_id: str
    form_version: str
    title: str
    case_number: str
    auditor: str
    team: str
    month: str
    due_date: str  # ISO
    state: str
    auditor_grade: str
    moderated_grade: str
    moderated_by: str


@dataclass(frozen=True)
class AnswerSection:
    title: str
    rows: list[tuple[str, str, str]]  # (question, answer, evidence and comment)


@dataclass(frozen=True)
class ActionRow:
    table_key: str
    row: str
    action: str
    recommendation: str
    responsible_person: str
    due_date: str
    sign_off: str
    sign_off_date: str


@dataclass(frozen=True)
class ReturnEntry:
    """One return the audit had (the file itself is fetched separately: `return_file`)."""

    id: int
    file_name: str
    saved_at: str
    imported_at: str
    current: bool
    final: bool
    stage: str
    sender: str
    held: str = ""  # why it is not current: store.HELD_SENDER, HELD_LOCKED or REFUSED


@dataclass(frozen=True)
class EventEntry:
    at: str
    event: str
    detail: str
    user: str
    superseded: bool = False  # an officer's decision set aside when the audit was reopened


@dataclass(frozen=True)
class ConcernEntry:
    """An immediate concern as a page shows it: its record, and whether its email has gone
    (one not yet gone is said loudly until it has)."""

    concern: Concern
    emailed: bool
    to: tuple[str, ...] = ()  # who hears of it under the programme

    @property
    def source(self) -> str:
        return "from the auditor's return" if self.concern.source == "return" else "by an officer"

    def as_dict(self) -> dict[str, Any]:
        """The concern without its own words (as `formtool concerns --json`)."""
        return concern_dict(self.concern, self.emailed, self.to)


def concern_entries(
    db: Store, open_only: bool = False, audit_id: str | None = None
) -> list[ConcernEntry]:
    """Concerns with whether each was emailed: open ones first, each group oldest first (the
    one waiting longest for action leads)."""
    found = db.concerns(open_only, audit_id)
    waiting = {c.id for c in unsent(db, found)}
    ordered = sorted(found, key=lambda c: not c.open)  # stable: raised order within each
    policy = active_policy(db)
    return [ConcernEntry(c, c.id not in waiting, contacts(policy, c)) for c in ordered]


@dataclass
class AuditDetail:
    """Everything about one audit, as the web workspace's audit page shows it."""

    audit: AuditSummary
    facts: list[tuple[str, str]]  # (printed label, value)
    sections: list[AnswerSection]
    actions: list[ActionRow]
    warnings: list[dict[str, str]]  # issue data with its message
    returns: list[ReturnEntry]  # newest first
    events: list[EventEntry]
    next_steps: list[str]  # accept, amend, moderate, signoff, close, reopen, exempt
    concerns: list[ConcernEntry] = field(default_factory=list)  # open first
    run: str = ""  # the activity run it belongs to ("": a case-file audit), in words
    subject_kind: str = "case"  # case, supervisor or practitioner

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"concerns": [c.as_dict() for c in self.concerns]}

    @property
    def open_concerns(self) -> list[ConcernEntry]:
        return [c for c in self.concerns if c.concern.open]


def _steps(state: str, graded: bool) -> list[str]:
    """The QA steps open to an audit in this state (the state machine decides)."""
    state_ = S(state)
    allowed = store.TRANSITIONS[state_]
    steps = []
    if S.checked in allowed:
        steps += ["accept", "amend"]
    if graded and (S.moderated in allowed or state_ in (S.actions_signed_off, S.closed)):
        steps.append("moderate")
    if S.actions_signed_off in allowed:
        steps.append("signoff")
    if S.closed in allowed and state_ is not S.returned:
        steps.append("close")
    if state_ in store.ACCEPTED:
        steps.append("reopen")
    if S.exempted in allowed:
        steps.append("exempt")
    return steps


def audit_detail(db: Store, audit_id: str) -> AuditDetail:
    found = db.audit_records(audit_id)
    if found is None:
        raise unknown_audit(audit_id)
    row, answers, actions = found.row, found.answers, found.actions
    history, events = found.history, found.events
    form = db.form_for(row.form_id, row.form_version)
    facts_raw = store.audit_facts(row)
    facts = (
        [(h.label, facts_raw.get(h.column, "")) for h in form.header]
        if form
        else sorted(facts_raw.items())
    )
    sections = []
    for section in form.sections if form else ():
        shown = [
            (
                i.label,
                answers.get(i.key, ("", ""))[0],
                "\n".join(
                    p
                    for p in (
                        answers.get(i.key, ("", ""))[1],
                        answers.get(i.comment_key, ("", ""))[0],
                    )
                    if p
                ),
            )
            for i in section.items
            if i.kind != "table"
        ]
        if any(a or e for _, a, e in shown):
            sections.append(AnswerSection(section.title, shown))
    file = row.file_name or ""
    warnings = (
        [
            Issue.from_data(w, file).as_dict() if w.get("code") else w
            for w in store.stored_warnings(row.warnings)
        ]
        if row.return_id
        else []
    )
    summary = AuditSummary(
        **{
            f.name: iso_text(getattr(row, f.name))
            for f in fields(AuditSummary)
            if f.name != "title"
        },
        title=form.title if form else row.form_id,
    )
    return AuditDetail(
        summary,
        facts,
        sections,
        [
            ActionRow(**{f.name: iso_text(getattr(a, f.name)) for f in fields(ActionRow)})
            for a in actions
        ],
        warnings,
        [
            ReturnEntry(
                r.id,
                r.file_name,
                iso_text(r.saved_at),
                iso_text(r.imported_at),
                r.is_current,
                r.final,
                r.stage,
                r.sender,
                r.held,
            )
            for r in history
        ],
        [
            EventEntry(iso_text(e.at), e.event, e.detail, e.user_name, e.superseded_by is not None)
            for e in events
        ],
        _steps(row.state, bool(row.auditor_grade or row.moderated_grade)),
        concern_entries(db, audit_id=audit_id),
        _run_words(db, row.run_id),
        row.subject_kind,
    )


def _run_words(db: Store, run_id: int | None) -> str:
    if run_id is None:
        return ""
    run = db.require_run(run_id)
    return f"{run.name} (run {run.id})"


@dataclass(frozen=True)
class ReturnFileData:
    """A stored return's original file: its audit, its name (as returned) and its bytes."""

    audit_id: str
    name: str
    data: bytes


def return_file(db: Store, return_id: int) -> ReturnFileData:
    """A stored return's original file: its audit, name (as returned) and bytes."""
    found = None
    if 0 < return_id < 2**31:  # ids are 32-bit: a longer number is simply not there
        found = db.return_content(return_id)
    if found is None:
        raise FormtoolError(f"Return {return_id} is not in the database.")
    return ReturnFileData(found.audit_id, found.file_name.split(" › ")[-1], bytes(found.content))
