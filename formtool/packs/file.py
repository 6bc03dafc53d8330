"""The pack for the child's file: one document per audit (Word and PDF), ready to place on the
record. Page one summarises it (case facts, overall and moderated grade, actions with owners
and dates); then every section as the tool asks it, long comments in the wide column; one
moderation block; and where the record came from (file, hash, form version).

A draft (a return not marked Final) is filed only when asked, and then says DRAFT on every
page. Characters no font can print are reported as warnings naming the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formtool import store
from formtool.definitions import FormDefinition, Item, Section
from formtool.definitions.identifiers import audit_file_name
from formtool.errors import Issue, IssueCode
from formtool.packs.figures import PackError
from formtool.packs.render import Document, Part, Table, to_docx, to_tagged_pdf, unprintable
from formtool.packs.tagged_pdf import TaggedPdf, merge
from formtool.periods import show_date, show_time
from formtool.settings import DEFAULT, Settings
from formtool.store import AuditRecords, Store, unknown_audit

S = store.AuditState
DRAFT_STATES = (S.in_progress.value, S.amendment_requested.value)


@dataclass
class AuditView:
    audit_id: str
    case_number: str
    form: FormDefinition
    facts: list[tuple[str, str]]
    parts: list[Part] = field(default_factory=list)
    draft: bool = False
    warnings: list[Issue] = field(default_factory=list)

    @property
    def case_label(self) -> str:
        return f"{self.audit_id} ({self.case_number})" if self.case_number else self.audit_id


def _display(value: str) -> str:
    try:
        return show_date(dt.date.fromisoformat(value))
    except ValueError:
        return value


def _load(db: Store, audit_id: str) -> AuditRecords:
    """What the database holds for the audit: its row (with the current return's file
    name, dates and fingerprint), the return's answers and action rows."""
    found = db.audit_records(audit_id)
    if found is None:
        raise unknown_audit(audit_id)
    if found.row.return_id is None:
        raise PackError(
            f"Audit {audit_id} has no imported return yet, so there is nothing "
            "to put on file. Import the completed form first."
        )
    return found


def audit_view(db: Store, audit_id: str, include_drafts: bool = False) -> AuditView:
    """Everything the file pack shows for one audit, from the database."""
    src = _load(db, audit_id)
    audit = src.row
    draft = audit.state in DRAFT_STATES or not src.row.final
    if draft and not include_drafts:
        raise PackError(
            f"Audit {audit_id} is a draft ({audit.state}): it is not complete. "
            "File it only if you must, with --include-drafts (it will say DRAFT "
            "on every page)."
        )
    form = db.form_for(audit.form_id, audit.form_version)
    if form is None:
        raise PackError(
            f"Audit {audit_id} was made with form {audit.form_id} "
            f"v{audit.form_version}, which this database does not hold."
        )
    facts_raw = store.audit_facts(audit)
    facts = [(h.label, facts_raw.get(h.column, "")) for h in form.header]
    view = AuditView(audit_id, audit.case_number, form, facts, draft=draft)
    view.parts.append(_summary(view, src))
    for section in form.sections:
        view.parts += _section_parts(form, section, src)
    view.parts.append(_record(view, src))
    view.warnings = _unprintable(view, src)
    return view


def _grade_lines(form: FormDefinition, src: AuditRecords) -> list[tuple[str, str]]:
    row = src.row
    lines = []
    if form.judgements.grade:
        grade_item = form.item(form.judgements.grade)
        lines.append(
            (grade_item.label if grade_item else "Overall grade", row.auditor_grade or "not graded")
        )
    if row.moderated_grade:
        who = row.moderated_by if row.moderated_by != "return form" else "on the form"
        when = f", {show_date(row.moderated_at)}" if row.moderated_at else ""
        lines.append(
            ("Grading after moderation", f"{row.moderated_grade} (moderated by {who}{when})")
        )
    return lines


def _summary(view: AuditView, src: AuditRecords) -> Part:
    actions = [
        (
            _what(a),
            _who(a),
            show_date(a.due_date) if a.due_date else "",
            "signed off" if (a.sign_off or a.sign_off_date) else "open",
        )
        for a in src.actions
    ]
    tables = [
        Table(("Detail", "Value"), tuple(view.facts + _grade_lines(view.form, src)), (0.35, 0.65))
    ]
    if actions:
        tables.append(
            Table(
                ("Action", "Responsible", "Due", "Status"), tuple(actions), (0.5, 0.26, 0.12, 0.12)
            )
        )
    return Part(
        "Summary",
        paragraphs=[
            f"{view.form.title} (audit {view.audit_id}). "
            + (f"{len(actions)} action(s) agreed." if actions else "No actions were recorded.")
        ],
        tables=tables,
    )


def _what(action: Any) -> str:
    return " — ".join(p for p in (action.recommendation, action.action) if p)


def _who(action: Any) -> str:
    return " / ".join(p for p in (action.responsible_role, action.responsible_person) if p)


def _section_parts(form: FormDefinition, section: Section, src: AuditRecords) -> list[Part]:
    if section.addition and section.id == form.judgements.status.split(".")[0]:
        return []  # the completion block is shown in the record at the end
    judged: list[tuple[str, str, str]] = []
    written: list[tuple[str, str]] = []
    parts: list[Part] = []
    for item in section.items:
        if item.kind == "table":
            parts += _action_part(section, item, src)
        elif item.kind in ("question", "choice"):
            value, evidence = src.answers.get(item.key, ("", ""))
            if item.key == form.judgements.moderated_grade and src.row.moderated_grade:
                value = src.row.moderated_grade  # the grade that counts
            comment = src.answers.get(item.comment_key, ("", ""))[0] if item.comment else ""
            judged.append((_label(item), value, "\n".join(p for p in (evidence, comment) if p)))
        else:
            written.append((_label(item), _display(src.answers.get(item.key, ("", ""))[0])))
    tables = []
    if judged:
        tables.append(
            Table(
                ("Question", "Answer", "Evidence and comments"), tuple(judged), (0.40, 0.14, 0.46)
            )
        )
    if written:
        tables.append(Table(("Item", "Response"), tuple(written), (0.30, 0.70)))
    return ([Part(section.title, tables=tables)] if tables else []) + parts


def _label(item: Item) -> str:
    return f"{item.number}. {item.label}" if item.number else item.label


def _action_part(section: Section, item: Item, src: AuditRecords) -> list[Part]:
    mine = [a for a in src.actions if a.table_key == item.key]
    if not mine:
        return []
    rows = tuple(
        (
            _what(a),
            _who(a),
            show_date(a.due_date) if a.due_date else "",
            " ".join(
                p for p in (a.sign_off, show_date(a.sign_off_date) if a.sign_off_date else "") if p
            ),
        )
        for a in mine
    )
    return [
        Part(
            f"{section.title}: {item.label}",
            tables=[
                Table(
                    ("Action", "Responsible", "Due", "Signed off"), rows, (0.46, 0.24, 0.12, 0.18)
                )
            ],
        )
    ]


def _record(view: AuditView, src: AuditRecords) -> Part:
    j = view.form.judgements
    ret = src.row
    value = lambda key: _display(src.answers.get(key, ("", ""))[0]) if key else ""  # noqa: E731
    rows = [
        ("Completed by", value(j.completed_by)),
        ("Date completed", value(j.completed_on)),
        ("Status", value(j.status) or "Draft"),
        ("Audit tool", f"{view.form.title}, version {view.form.version}"),
        ("Returned as", ret.file_name),
        ("Imported", f"{show_time(ret.imported_at)}"),
        ("Fingerprint of the returned file (SHA-256)", ret.content_hash),
    ]
    if ret.sender:
        rows.insert(4, ("Sent by", ret.sender))
    return Part(
        "Record of this audit", tables=[Table(("Detail", "Value"), tuple(rows), (0.3, 0.7))]
    )


def _unprintable(view: AuditView, src: AuditRecords) -> list[Issue]:
    texts = [
        (f"header.{h.column}", v) for h, (_, v) in zip(view.form.header, view.facts, strict=True)
    ]
    texts += [(k, f"{v} {c}") for k, (v, c) in src.answers.items()]
    return [
        Issue(IssueCode.unprintable, view.audit_id, key, value=missing)
        for key, text in texts
        if (missing := unprintable(text))
    ]


def as_document(view: AuditView, settings: Settings = DEFAULT) -> Document:
    return Document(
        view.form.title,
        f"Completed audit {view.audit_id} for the case record",
        view.parts,
        f"Audit {view.audit_id} · {view.form.title}, version {view.form.version}",
        settings.council,
        settings.marking,
        view.draft,
    )


# --- the command -----------------------------------------------------------------------


def month_audits(db: Store, month: str, include_drafts: bool = False) -> list[str]:
    """The month's audits of a child's (or carer's) case with a return on file: complete ones
    (and drafts, if asked). A supervision audit or an observation is about a member of staff,
    not a case: it is on no child's file."""
    wanted = {s.value for s in store.COMPLETED} | (set(DRAFT_STATES) if include_drafts else set())
    return [
        r.audit_id
        for r in db.audit_rows([month])
        if r.return_id and r.state in wanted and r.subject_kind == "case"
    ]


@dataclass
class FilePack:
    files: list[Path]
    warnings: list[Issue]

    def as_dict(self) -> dict[str, object]:
        return {
            "files": [str(p) for p in self.files],
            "warnings": [w.as_dict() for w in self.warnings],
        }


def file_pack(
    db: Store,
    audit_ids: list[str],
    out_dir: Path,
    formats: tuple[str, ...],
    bundle_name: str | None = None,
    include_drafts: bool = False,
    settings: Settings = DEFAULT,
    progress: Callable[[list[AuditView]], Iterable[AuditView]] | None = None,
) -> FilePack:
    """Write each audit's file pack; with bundle_name, also one PDF with a bookmark each."""
    rows = [row for a in audit_ids if (row := db.audit_row(a)) is not None]
    db.forms_of(rows, "The file pack")  # names every audit whose form is unknown, not the first
    views = [audit_view(db, a, include_drafts) for a in audit_ids]  # all checked first
    out_dir.mkdir(parents=True, exist_ok=True)
    written, pdfs = [], []
    for view in (progress or iter)(views):
        document = as_document(view, settings)
        if "docx" in formats:
            path = out_dir / audit_file_name(view.audit_id, "-file.docx")
            path.write_bytes(to_docx(document))
            written.append(path)
        if "pdf" in formats or bundle_name:
            pdf = to_tagged_pdf(document)
            pdfs.append((view, pdf))
            if "pdf" in formats:
                path = out_dir / audit_file_name(view.audit_id, "-file.pdf")
                path.write_bytes(pdf.data)
                written.append(path)
    if bundle_name and pdfs:
        path = out_dir / bundle_name
        path.write_bytes(bundle(pdfs, f"File packs for the case records ({len(pdfs)} audits)"))
        written.append(path)
    return FilePack(written, [w for v in views for w in v.warnings])


def bundle(pdfs: list[tuple[AuditView, TaggedPdf]], title: str = "File packs") -> bytes:
    """One tagged PDF of many audits, with a bookmark (outline entry) and a part of the
    structure tree per case."""
    return merge([(view.case_label, data) for view, data in pdfs], title)
