"""Correcting a pre-filled fact about a child (a misspelt name, a wrong date of birth) across
everything formtool holds, under UK GDPR Article 16.

The corrected value replaces the old one in every audit of the case (its facts, and the
audit's own worker, manager or team column when it is one of those), in the earlier copies of
its forms, and wherever stored text quoted it: answers and evidence, action rows, events,
concerns, challenges, rejected files, the returns' names and warnings, and the emails'
subjects; access-log entries quoting it say "[erased]" instead (the log is never rewritten
otherwise). Each audit gets a "fact corrected" event naming the field, who and why, never the
old value; the register records the correction. The file packs formtool wrote for the case
are made again and the forms it wrote are made again with the corrected facts (same paths);
any other file formtool wrote that quotes the old value (a month's bundle, a PMU pack with
names, an email draft, a subject access copy) is removed, and the output says how to make it
again. The original bytes of returned forms are kept as received: they are the evidence of
what the auditor was sent and sent back. Backups are not changed.

A form already with an auditor still carries the old value; it is accepted when it comes
back, because the audit keeps the checksum of its facts as they were issued (a header whose
checksum is that one is the form as sent: read/batch.py `_as_issued`), and the corrected
facts stay the audit's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from formtool.definitions.scales import FieldKind, parse_date
from formtool.errors import FormtoolError, printable
from formtool.periods import show_date
from formtool.protect.subject_access import (
    Subject,
    SubjectError,
    check_reference,
    child,
    files_about,
    names_any,
)
from formtool.protect.summary import remove_files
from formtool.read.cases import Case, cell_text
from formtool.settings import DEFAULT, Settings
from formtool.store import (
    BACKUP,
    EMAIL_DRAFT,
    EXPORT,
    FILE_PACK,
    FORM,
    PMU_PACK,
    REPORT,
    SUBJECT_ACCESS,
    Store,
    audit_facts,
)

#: Facts that cannot be corrected here, and what to do instead.
NOT_HERE = {
    "case_number": (
        "The case number is part of each audit's id ({ids}), so it cannot be corrected in "
        "place. Erase the audits made under the wrong number (formtool erase) and allocate "
        "the case again under the right one."
    ),
    "auditor": (
        "Who audits a case is not a fact about the child: give the audit to another auditor "
        "with formtool reassign."
    ),
    "due_date": (
        "The due date is the programme's deadline, not a fact about the child: an amendment "
        "moves it (formtool check --amend)."
    ),
}
MAX_VALUE = 500
#: How to make a removed file again, by kind.
REMAKE = {
    FILE_PACK: "formtool pack file --month YYYY-MM",
    PMU_PACK: "formtool pack pmu",
    REPORT: "formtool activity report",
    EXPORT: "formtool export",
    EMAIL_DRAFT: "formtool send (or the audit's amendment email)",
    SUBJECT_ACCESS: "formtool subject-access (a new request)",
    FORM: "the audit's page or the allocate page of the web workspace (made from the store)",
}


def remake_hint(row: Any) -> str:
    """How to make a removed file again (a form of no audit is a case list or manifest)."""
    if row.kind == FORM and not row.audit_id:
        return "the next allocation (it was a case list or a forms manifest)"
    return REMAKE.get(row.kind, "")


@dataclass(frozen=True)
class Correction:
    """What a correction will change: the case's audits, the field, its old values (with
    their other spellings: a date's ISO form) and the new one."""

    case_number: str
    field: str
    new: str
    audit_ids: tuple[str, ...]
    terms: dict[str, str]

    @property
    def olds(self) -> list[str]:
        return list(self.terms)


@dataclass
class FileChange:
    path: str
    kind: str
    done: str  # "made again" or "removed"
    how: str = ""  # for a removed file: how to make it again

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Corrected:
    request: int
    case_number: str
    column: str
    audit_ids: list[str]
    rows: dict[str, int]
    files: list[FileChange] = field(default_factory=list)
    backups: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "case_number": self.case_number,
            "field": self.column,
            "audits": self.audit_ids,
            "rows_changed": self.rows,
            "files": [f.as_dict() for f in self.files],
            "backups_unchanged": self.backups,
        }


def _date_field(db: Store, rows: Iterable[Any], field: str) -> bool:
    forms = db.forms_of(list(rows), "The correction")
    return any(
        h.column == field and h.kind is FieldKind.date for f in forms.values() for h in f.header
    )


def _spellings(value: str, is_date: bool) -> list[str]:
    """A value as the facts give it and, for a date, as ISO text (answers and files)."""
    day = parse_date(value) if is_date else None
    return [value, day.isoformat()] if day else [value]


def plan_correction(db: Store, case_number: str, field_name: str, to: str) -> Correction:
    """The correction `field_name` := `to` for every audit of the case, checked (a field
    that cannot be corrected here, or is no fact of the case's audits, or already reads `to`
    everywhere, is refused with what to do)."""
    subject = child(case_number)
    ids = db.case_audit_ids(subject.case_number)
    if not ids:
        raise SubjectError(f"No records held for case {printable(case_number, 80)} in {db.url}.")
    column = field_name.strip()
    if column in NOT_HERE:
        raise SubjectError(f"[--field {column}] " + NOT_HERE[column].format(ids=", ".join(ids)))
    rows = db.audit_rows(audit_ids=ids)
    facts = {r.audit_id: audit_facts(r) for r in rows}
    known = sorted({k for f in facts.values() for k in f})
    if not any(column in f for f in facts.values()):
        raise SubjectError(
            f"[--field {printable(column, 40)}] case {subject.case_number}'s audits have no such "
            f"fact. Their facts: {', '.join(k for k in known if k not in NOT_HERE)}."
        )
    new = cell_text(to)
    is_date = _date_field(db, rows, column)
    if is_date:
        day = parse_date(new)
        if day is None:
            raise SubjectError(
                f"[--to '{printable(to, 40)}'] {column} is a date: give it as DD/MM/YYYY."
            )
        new = show_date(day)
    if not new or len(new) > MAX_VALUE:
        raise SubjectError(f"[--to] give the corrected {column}: 1 to {MAX_VALUE} characters.")
    olds = {f[column] for f in facts.values() if f.get(column) and f[column] != new}
    if not olds:
        raise SubjectError(
            f"Case {subject.case_number}'s {column} already reads '{printable(new, 80)}' in every "
            "audit: there is nothing to correct."
        )
    terms: dict[str, str] = {}
    for old in sorted(olds):
        terms.update(zip(_spellings(old, is_date), _spellings(new, is_date), strict=False))
    changed = tuple(a for a, f in facts.items() if f.get(column) in olds)
    return Correction(subject.case_number, column, new, changed, terms)


def check_reason(
    reason: str, subject: Subject, olds: Sequence[str] = (), what: str = "the old value"
) -> str:
    """A reason for the register and the events: given, and naming neither the person nor
    `olds` (what must leave no trace: the old value, or the erased child's identifiers)."""
    reason = " ".join(reason.split())
    if not reason:
        raise SubjectError('Say why (--reason "...": the request, who asked, what was wrong).')
    check_reference(reason, subject, "--reason")
    if names_any(reason, olds):
        raise SubjectError(
            f"[--reason] quotes {what}, which must leave no trace. Say why without it "
            '(e.g. "the family name was misspelt on the case list").'
        )
    return reason[:2000]


def correct(
    db: Store,
    case_number: str,
    field_name: str,
    to: str,
    reason: str,
    user: str,
    reference: str = "",
    settings: Settings = DEFAULT,
) -> Corrected:
    """Correct a pre-filled fact across the store and the files formtool wrote (see the
    module docstring)."""
    plan = plan_correction(db, case_number, field_name, to)
    subject = Subject(case_number=plan.case_number)
    why = check_reason(reason, subject, plan.olds)
    check_reference(reference, subject)
    request = {
        "reference": reference,
        "reason": why,
        "detail": {"field": plan.field, "audits": len(plan.audit_ids)},
    }
    rows, number = db.correct_fact(plan.audit_ids, plan.field, plan.terms, user, request)
    why = f"a fact was corrected (request {number})"
    own = db.stored_files(audit_ids=plan.audit_ids, kinds=list(MAKERS))
    files = remake_files(db, own, settings, user, why)
    markers = [*plan.audit_ids, plan.case_number]
    held = files_about(db, markers, plan.olds, plan.audit_ids, plan.case_number)
    # A file just made again holds the new value, which may contain the old ("Fictional" in
    # "Fictionalle"): it stays.
    remade = {f.path for f in files if f.done == "made again"}
    held = [(row, found) for row, found in held if str(row.path) not in remade]
    files += remove_found(db, held, user, f"it quoted a corrected fact (request {number})")
    backups = len(db.stored_files(kinds=[BACKUP]))
    return Corrected(
        number, plan.case_number, plan.field, list(plan.audit_ids), rows, files, backups
    )


# --- the files formtool wrote --------------------------------------------------------------


def _replace(path: Path, data: bytes) -> None:
    """Write `data` at `path` in one step (a reader never sees half a file)."""
    staging = path.with_name(f".{path.name}.formtool-new")
    staging.write_bytes(data)
    os.replace(staging, path)


def _pack_bytes(db: Store, audit_id: str, suffix: str, settings: Settings) -> bytes:
    from formtool.packs.file import as_document, audit_view
    from formtool.packs.render import to_docx, to_pdf

    document = as_document(audit_view(db, audit_id), settings)
    return to_docx(document) if suffix == ".docx" else to_pdf(document)


def _form_bytes(db: Store, audit_id: str, suffix: str, settings: Settings) -> bytes:
    from formtool.generate import render

    row = db.require_audit(audit_id)
    form = db.forms_of([row], f"Audit {audit_id}")[audit_id]
    key = db.identity_key() if row.checksum_scheme == "hmac" else None
    case = Case(
        audit_id,
        form.id,
        form.version,
        audit_facts(row),
        0,
        row.auditor_email,
        row.preparer_email,
        row.form_format,
        key,
    )
    return render(form, case, suffix.lstrip("."), settings)


#: The files formtool can make again from the store: an audit's file pack and its form.
MAKERS = {FILE_PACK: _pack_bytes, FORM: _form_bytes}


def remake_files(
    db: Store, rows: Iterable[Any], settings: Settings, user: str, why: str
) -> list[FileChange]:
    """Make again, at the same paths, these tracked file packs and forms (from the store as
    it is now); one that cannot be made now (the audit is back with its auditor) is removed
    instead."""
    changes = []
    for row in rows:
        path = Path(row.path)
        try:
            data = MAKERS[row.kind](db, row.audit_id, path.suffix.lower(), settings)
        except FormtoolError as exc:
            remove_files(db, [row], f"{why}; not made again: {exc}"[:200], user)
            changes.append(FileChange(str(path), row.kind, "removed", remake_hint(row)))
            continue
        if not path.parent.is_dir():
            db.mark_files_removed([row.id], f"{why}; its folder is gone", user)
            continue
        _replace(path, data)
        db.mark_files_removed([row.id], f"made again: {why}"[:200], user)
        db.record_file(
            path,
            row.kind,
            audit_id=row.audit_id,
            case_number=row.case_number,
            month=row.month,
            user=user,
        )
        changes.append(FileChange(str(path), row.kind, "made again"))
    return changes


def remove_found(
    db: Store, found: list[tuple[Any, set[str]]], user: str, why: str
) -> list[FileChange]:
    """Remove the tracked files found (see subject_access.files_about) from disk."""
    changes = [FileChange(str(row.path), row.kind, "removed", remake_hint(row)) for row, _ in found]
    remove_files(db, [row for row, _ in found], why[:200], user)
    return changes
