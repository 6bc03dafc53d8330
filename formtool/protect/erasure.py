"""Erasing a child's records where the law allows (UK GDPR Article 17), and a member of
staff's personal data, with a reason and who authorised it.

A child (a case): every audit of the case is removed with everything held for it (the shared
core's `remove_audit`: answers, actions, grades, events, returns and their original bytes,
copies, concerns, challenges, rejected files, email claims), its anonymised counts kept in the
period summary so the figures already reported do not change; the files formtool wrote about
it are deleted from disk (its forms, file packs and email drafts, and every file of no single
audit that names it: a month's bundle, a PMU pack, a subject access copy); rejected files
naming the case go; the access log keeps its entries with the case, the audit ids, the names
and the date of birth taken out. Nothing that identifies the child is kept, not even in the
register (its reference is a request number). Backups are not changed: each holds the
child's records until retention removes it, and a restore from one brings them back, so an
erasure is done again after a restore (the register lists them).

A member of staff: their name, addresses and account become a pseudonym ("Former staff member
3", the same in every table, so their work still reads as one person's) in audits, earlier
copies, actions, answers, events, moderation, concerns, challenges, emails, rejected files,
chosen samples and runs; their account is renamed and deactivated, never deleted (its
sessions end, its password and second factor go); the access log keeps their entries with
their name taken out. The audits stay: a child's record is not the staff member's to erase.
The file packs and forms of those audits are made again with the pseudonym; other files
naming them are removed. The original returned forms are kept as they were received: they
are the child's evidence, and may still name them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from formtool.errors import printable
from formtool.protect.correction import (
    MAKERS,
    FileChange,
    check_reason,
    remake_files,
    remove_found,
)
from formtool.protect.subject_access import (
    Subject,
    SubjectError,
    check_reference,
    files_about,
    holdings,
)
from formtool.protect.summary import summary_cells
from formtool.settings import DEFAULT, Settings
from formtool.store import BACKUP, OUTSTANDING, Store

#: The facts that identify the person a case is about (taken out of the access log).
IDENTIFYING = (
    "case_number",
    "family_name",
    "given_names",
    "full_name",
    "name_of_user",
    "dob",
    "lcs_number",
    "carer_names",
    "children_placed",
    "provider_names",
    "staff_name",
)
#: Shorter texts are not looked for in the access log: they are inside too many words.
MIN_REDACT = 3


@dataclass
class Plan:
    """What an erasure will do, for the dry run and the confirmation page."""

    subject: Subject
    audits: list[dict[str, Any]]  # audit_id, form_id, month, state
    rows: dict[str, int]
    identifiers: list[str]
    files: list[tuple[Any, set[str]]]
    backups: int
    accounts: list[str] = field(default_factory=list)
    auditing: list[str] = field(default_factory=list)  # staff: audits still with them
    named: list[str] = field(default_factory=list)  # staff: every audit a row names them in

    @property
    def audit_ids(self) -> list[str]:
        return [str(a["audit_id"]) for a in self.audits]

    @property
    def open_audits(self) -> list[str]:
        """A child's audits still with an auditor (a return that comes now is rejected)."""
        states = {s.value for s in OUTSTANDING}
        return [str(a["audit_id"]) for a in self.audits if a["state"] in states]

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject.kind,
            "audits": self.audits,
            "rows": self.rows,
            "files": [{"path": str(r.path), "kind": r.kind} for r, _ in self.files],
            "backups_unchanged": self.backups,
            "accounts": self.accounts,
            "still_auditing": self.auditing,
        }


@dataclass
class Erased:
    request: int
    subject: str
    audits: list[str]
    rows: dict[str, int]
    files: list[FileChange]
    left: dict[str, int]  # tables still holding an identifier afterwards (none, normally)
    files_left: list[str]
    backups: int
    pseudonym: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "subject": self.subject,
            "audits": self.audits,
            "rows": self.rows,
            "files": [f.as_dict() for f in self.files],
            "still_found_in_tables": self.left,
            "still_found_in_files": self.files_left,
            "backups_unchanged": self.backups,
            "pseudonym": self.pseudonym,
        }


def identifiers(subject: Subject, audits: Sequence[dict[str, Any]]) -> list[str]:
    """The case number and each identifying fact of its audits, with a date also in ISO form
    and names also as full names; longest first."""
    found = {subject.case_number}
    for audit in audits:
        facts = json.loads(audit.get("facts") or "{}")
        found.update(str(facts.get(k, "")) for k in IDENTIFYING)
        given, family = str(facts.get("given_names", "")), str(facts.get("family_name", ""))
        if given and family:
            found.update({f"{given} {family}", f"{family}, {given}", f"{family} {given}"})
        dob = str(facts.get("dob", ""))
        if dob.count("/") == 2:
            day, month, year = dob.split("/")
            found.add(f"{year}-{month}-{day}")
    return sorted((v for v in found if len(v.strip()) >= MIN_REDACT), key=len, reverse=True)


def _named_audits(held: Any) -> list[str]:
    """Every audit a row about a member of staff belongs to (their files may name them)."""
    return sorted(
        {str(r["audit_id"]) for rows in held.tables.values() for r in rows if r.get("audit_id")}
    )


def plan_erasure(db: Store, subject: Subject) -> Plan:
    """What erasing `subject` removes (a child) or pseudonymises (staff), without doing it:
    the files are searched here, once (`erase_child` and `erase_staff` act on the plan, so
    make it just before)."""
    held = holdings(db, subject)
    if not held.tables:
        raise SubjectError(f"No records held for {subject.label} in {db.url}: nothing to erase.")
    subject = held.subject  # the case number as the records spell it
    backups = len(db.stored_files(kinds=[BACKUP]))
    rows = held.tables.get("audits", [])
    audits = [{k: a[k] for k in ("audit_id", "form_id", "month", "state")} for a in rows]
    if subject.kind == "child":
        ids, found = held.audit_ids, identifiers(subject, rows)
        # searched for what is the child's alone (a given name may be another child's too)
        distinct = [*ids, subject.case_number, *(v for v in found if " " in v)]
        files = files_about(db, distinct, (), ids, subject.case_number)
        return Plan(subject, audits, held.counts(), found, files, backups)
    names = [*subject.names, *subject.emails]
    named = _named_audits(held)
    folded = {n.casefold() for n in subject.names}
    still = {s.value for s in OUTSTANDING}
    auditing = [
        str(a["audit_id"])
        for a in rows
        if str(a["auditor"]).casefold() in folded and a["state"] in still
    ]
    # refused until those are reassigned: the files are searched once it can go ahead
    files = [] if auditing else files_about(db, names, (), named, search_own=True)
    accounts = [str(u["name"]) for u in held.tables.get("users", [])]
    return Plan(subject, audits, held.counts(), names, files, backups, accounts, auditing, named)


def _checked(subject: Subject, plan: Plan, reason: str, authorised_by: str, ref: str) -> str:
    who = " ".join(authorised_by.split())
    if not who:
        raise SubjectError(
            "Say who authorised the erasure (--authorised-by: the Data Protection Officer "
            "or the person the council's policy names)."
        )
    check_reference(ref, subject)
    check_reference(who, subject, "--authorised-by")
    return check_reason(reason, subject, plan.identifiers, "what identifies them")


def erase_child(
    db: Store, plan: Plan, reason: str, authorised_by: str, user: str, reference: str = ""
) -> Erased:
    """Erase a child's records (see the module docstring): each audit in its own
    transaction, then the files, what is left naming the case, and the register."""
    subject = plan.subject
    why = _checked(subject, plan, reason, authorised_by, reference)
    ids = plan.audit_ids
    cells = summary_cells(db, ids)
    rows: Counter[str] = Counter()
    rows["web form drafts"] = db.drop_web_drafts(ids)  # their links go with the audits
    for audit_id in ids:
        rows.update(
            db.remove_audit(
                audit_id, f"erasure: {why}", user, cells.get(audit_id, Counter()), plan.identifiers
            )
        )
    files = remove_found(db, plan.files, user, f"erasure: {why}")
    rows.update(db.clear_case(subject.case_number, ids, plan.identifiers))
    request = {
        "reference": reference,
        "reason": why,
        "authorised_by": " ".join(authorised_by.split()),
        "detail": {"audits": len(ids), "files": len(files), **dict(rows)},
    }
    number = db.record_request("erasure", "child", user, request, line="a child's records")
    # Checked with what is the child's alone (a given name or a date of birth may be another
    # child's too): the case number, its audit ids and the full names.
    left = db.holding([*ids, subject.case_number, *(v for v in plan.identifiers if " " in v)])
    still = [*db.stored_files(audit_ids=ids), *db.stored_files(case_number=subject.case_number)]
    files_left = list(dict.fromkeys(str(r.path) for r in still))  # each file once
    counts = {k: v for k, v in rows.items() if v}
    return Erased(number, "child", ids, counts, files, left, files_left, plan.backups)


def erase_staff(
    db: Store,
    plan: Plan,
    reason: str,
    authorised_by: str,
    user: str,
    reference: str = "",
    settings: Settings = DEFAULT,
) -> Erased:
    """Pseudonymise a member of staff (see the module docstring); the audits stay."""
    subject = plan.subject
    why = _checked(subject, plan, reason, authorised_by, reference)
    if plan.auditing:
        raise SubjectError(
            f"{subject.label} still audits {', '.join(plan.auditing[:5])}: give those audits "
            "to another auditor first (formtool reassign), then erase."
        )
    admins = set(db.active_admins())
    if admins and admins <= set(plan.accounts):
        raise SubjectError(
            f"Account {printable(plan.accounts[0], 80)} is the last active admin: add another "
            "admin first (formtool users add NAME --role admin), then erase."
        )
    request = {
        "reference": reference,
        "reason": why,
        "authorised_by": " ".join(authorised_by.split()),
    }
    pseudonym, rows, number = db.pseudonymise_staff(
        subject.names, subject.emails, subject.logins, user, request
    )
    why_files = f"a member of staff was erased (request {number})"
    remade = [r for r, _ in plan.files if r.audit_id and r.kind in MAKERS]
    files = remake_files(db, remade, settings, user, why_files)
    made = {r.id for r in remade}
    files += remove_found(db, [f for f in plan.files if f[0].id not in made], user, why_files)
    left = db.holding([*subject.names, *subject.emails])
    files_left: list[str] = []  # every file that named them was made again or removed
    return Erased(
        number, "staff", plan.audit_ids, rows, files, left, files_left, plan.backups, pseudonym
    )
