"""One audit as the web workspace's audit page shows it: its facts, answers, actions, warnings,
every return it had, its events, its immediate concerns, and the QA steps open to it now (the
state machine decides). Also the original file of any stored return, for download, and the
concerns as the dashboard's banner and the concerns page list them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from formtool import store
from formtool.errors import FormtoolError, Issue
from formtool.periods import iso_text, show_date
from formtool.programme.concerns import as_dict as concern_dict
from formtool.programme.concerns import contacts, unsent
from formtool.programme.rejections import RejectionEntry, audit_rejections
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
    form_format: str  # docx or xlsx: the form it was sent as


@dataclass(frozen=True)
class AnswerRow:
    question: str
    answer: str  # as the auditor saw it: dates as dd/mm/yyyy
    evidence: str  # evidence and comment
    wide: bool = False  # free text: the answer takes the evidence column's room too


@dataclass(frozen=True)
class AnswerSection:
    title: str
    rows: list[AnswerRow]


@dataclass(frozen=True)
class ActionRow:
    table_key: str
    row: str
    table: str  # the table's title on the form
    needs_sign_off: bool  # in a table a manager signs off, and not signed off yet
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
    next_steps: list[str]  # accept, amend, moderate, signoff, close, reopen, exempt, reassign
    concerns: list[ConcernEntry] = field(default_factory=list)  # open first
    run: str = ""  # the activity run it belongs to ("": a case-file audit), in words
    subject_kind: str = "case"  # case, supervisor or practitioner
    #: Files rejected for this audit, newest first (programme/rejections.py).
    rejections: list[RejectionEntry] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "concerns": [c.as_dict() for c in self.concerns],
            "rejections": [r.as_dict() for r in self.rejections],
        }

    @property
    def open_concerns(self) -> list[ConcernEntry]:
        return [c for c in self.concerns if c.concern.open]


def _steps(state: str, graded: bool, actions: list[ActionRow]) -> list[str]:
    """The QA steps that can succeed now: the state machine allows them, and nothing they
    need is missing (an audit with an action still to sign off offers neither "actions
    signed off" nor "close"; one with no action to sign off goes straight to "close")."""
    state_ = S(state)
    waiting = any(a.needs_sign_off for a in actions)
    signed = any(a.sign_off or a.sign_off_date for a in actions)
    allowed = store.TRANSITIONS[state_]
    steps = []
    if S.checked in allowed:
        steps += ["accept", "amend"]
    if graded and (S.moderated in allowed or state_ in (S.actions_signed_off, S.closed)):
        steps.append("moderate")
    if S.actions_signed_off in allowed and signed and not waiting:
        steps.append("signoff")
    if S.closed in allowed and state_ is not S.returned and not waiting:
        steps.append("close")
    if state_ in store.ACCEPTED:
        steps.append("reopen")
    if S.exempted in allowed:
        steps.append("exempt")
    if state_ in store.REASSIGNABLE:
        steps.append("reassign")
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
    sections = _answer_sections(form, answers)
    file = row.file_name or ""
    warnings = (
        [
            Issue.from_data(w, file).as_dict() if w.get("code") else w
            for w in store.stored_warnings(row.warnings)
        ]
        if row.return_id
        else []
    )
    action_rows = _action_rows(form, actions)
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
        action_rows,
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
        _steps(row.state, bool(row.auditor_grade or row.moderated_grade), action_rows),
        concern_entries(db, audit_id=audit_id),
        _run_words(db, row.run_id),
        row.subject_kind,
        audit_rejections(db, audit_id),
    )


def _answer_sections(form: Any, answers: dict[str, tuple[str, str]]) -> list[AnswerSection]:
    """The answered sections, each question with its answer and evidence; dates as people
    write them; free text given the width of the row."""
    sections = []
    for section in form.sections if form else ():
        shown = []
        for item in section.items:
            if item.kind == "table":
                continue
            value, evidence = answers.get(item.key, ("", ""))
            comment = answers.get(item.comment_key, ("", ""))[0]
            said = "\n".join(p for p in (evidence, comment) if p)
            if item.kind == "date":
                value = show_date_text(value)
            shown.append(AnswerRow(item.label, value, said, item.kind == "text" and not said))
        if any(r.answer or r.evidence for r in shown):
            sections.append(AnswerSection(section.title, shown))
    return sections


def show_date_text(value: str) -> str:
    """An ISO date as dd/mm/yyyy; anything else as stored."""
    try:
        return show_date(dt.date.fromisoformat(value.strip()))
    except ValueError:
        return value


#: ActionRow's fields as the store holds them (the others are the form's).
_STORED_ACTION = tuple(
    f.name for f in fields(ActionRow) if f.name not in ("table", "needs_sign_off")
)


def _action_rows(form: Any, actions: list[Any]) -> list[ActionRow]:
    """The current return's actions, each with its table's title and whether a manager's
    sign-off is still wanted (in a table with a sign-off column, and none given)."""
    tables = form.tables() if form else []
    titles = form.table_titles() if form else {}
    signed = {t.key for t in tables if {"sign_off", "sign_off_date"} & {c.role for c in t.columns}}
    return [
        ActionRow(
            **{name: iso_text(getattr(a, name)) for name in _STORED_ACTION},
            table=titles.get(a.table_key, a.table_key),
            needs_sign_off=a.table_key in signed and not (a.sign_off or a.sign_off_date),
        )
        for a in actions
    ]


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
