"""The pack for the child's file: one document per audit (Word and PDF) laying out the
completed audit as the seed tool does, plus who completed it, the form version and the
source file's hash so the record can be traced to the return it came from."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.errors import FormtoolError
from formtool.packs.render import Document, Part, Table, to_docx, to_pdf
from formtool.scales import format_date
from formtool.store import queries


@dataclass(frozen=True)
class Row:
    label: str
    answer: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Block:
    title: str
    kind: str  # "questions" (label/answer/evidence), "fields" (label/value), "table"
    rows: tuple[Row, ...] = ()
    headings: tuple[str, ...] = ()
    cells: tuple[tuple[str, ...], ...] = ()  # for kind == "table"


@dataclass
class AuditView:
    audit_id: str
    title: str
    facts: list[tuple[str, str]]
    blocks: list[Block] = field(default_factory=list)
    trace: list[tuple[str, str]] = field(default_factory=list)

    @property
    def case_label(self) -> str:
        case = dict(self.facts).get("Case Number", "")
        return f"{self.audit_id} ({case})" if case else self.audit_id


class PackError(FormtoolError):
    """A pack cannot be made (unknown audit, nothing returned, empty period)."""


def audit_view(engine: sa.Engine, audit_id: str) -> AuditView:
    """Everything the file pack shows for one audit, from the database."""
    with engine.connect() as conn:
        audit = store.audit_row(conn, audit_id)
        if audit is None:
            raise PackError(
                f"Audit {audit_id} is not in the database. Check the id "
                "(`formtool status` lists the month's audits)."
            )
        ret = store.current_return(conn, audit_id)
        if ret is None:
            raise PackError(
                f"Audit {audit_id} has no imported return yet, so there is "
                "nothing to put on file. Import the completed form first."
            )
        answers = store.return_answers(conn, ret.id)
        actions = store.return_actions(conn, ret.id)
        [row] = queries.audit_rows(conn, audit_ids=[audit_id])
        grade = row if row.moderated_by else None
    form = get_form(audit.form_id)
    facts = json.loads(audit.facts)
    view = AuditView(
        audit_id, form.title, [(h.label, facts.get(h.column, "")) for h in form.header]
    )
    for section in form.sections:
        view.blocks += _section_blocks(section, answers, actions)
    if grade is not None and grade.moderated_by and grade.moderated_by != "return form":
        view.blocks.append(
            Block(
                "Moderation recorded in formtool",
                "fields",
                (
                    Row("Grading after moderation", grade.moderated_grade),
                    Row("Moderated by", grade.moderated_by),
                    Row(
                        "Moderated on",
                        grade.moderated_at.strftime("%d/%m/%Y %H:%M") if grade.moderated_at else "",
                    ),
                ),
            )
        )
    view.trace = [
        ("Completed by", answers.get("completion.completed_by", ("", ""))[0]),
        ("Date completed", _display(answers.get("completion.completed_on", ("", ""))[0])),
        ("Status", answers.get("completion.status", ("", ""))[0] or "Draft"),
        ("Form", f"{form.id} version {audit.form_version}"),
        ("Source file", ret.file_name),
        ("Imported", ret.imported_at.strftime("%d/%m/%Y %H:%M")),
        ("SHA-256 of source file", ret.content_hash),
    ]
    return view


def _display(value: str) -> str:
    try:
        return format_date(dt.date.fromisoformat(value))
    except ValueError:
        return value


def _section_blocks(section, answers, actions) -> list[Block]:
    if section.id == "completion":
        return []  # shown in the trace block at the end
    blocks = []
    rows = []
    for item in section.items:
        if item.kind == "table":
            mine = [a for a in actions if a.table_key == item.key]
            if mine:
                blocks.append(
                    Block(
                        f"{section.title}: {item.label}",
                        "table",
                        headings=("Action", "Responsible", "Due", "Sign-off"),
                        cells=tuple(_action_cells(a) for a in mine),
                    )
                )
            continue
        value, comment = answers.get(item.key, ("", ""))
        label = f"{item.number}. {item.label}" if item.number else item.label
        rows.append(Row(label, _display(value), comment))
    if rows:
        kind = "questions" if section.questions else "fields"
        blocks.insert(0, Block(section.title, kind, tuple(rows)))
    return blocks


def _action_cells(action) -> tuple[str, ...]:
    what = " — ".join(p for p in (action.recommendation, action.action) if p)
    who = " / ".join(p for p in (action.responsible_role, action.responsible_person) if p)
    due = format_date(action.due_date) if action.due_date else ""
    signed = " ".join(
        p
        for p in (
            action.sign_off,
            format_date(action.sign_off_date) if action.sign_off_date else "",
        )
        if p
    )
    return (what, who, due, signed)


# --- rendering --------------------------------------------------------------------------


def as_document(view: AuditView) -> Document:
    parts = [Part(tables=[Table(("Detail", "Value"), tuple(view.facts), (0.35, 0.65))])]
    for block in view.blocks:
        if block.kind == "questions":
            table = Table(
                ("Question", "Answer", "Evidence / comment"),
                tuple((r.label, r.answer, r.comment) for r in block.rows),
                (0.42, 0.14, 0.44),
            )
        elif block.kind == "fields":
            table = Table(
                ("Item", "Answer"), tuple((r.label, r.answer) for r in block.rows), (0.4, 0.6)
            )
        else:
            table = Table(block.headings, block.cells, (0.45, 0.25, 0.12, 0.18))
        parts.append(Part(block.title, tables=[table]))
    parts.append(
        Part(
            "Record of this audit",
            tables=[Table(("Detail", "Value"), tuple(view.trace), (0.3, 0.7))],
        )
    )
    footer = f"Audit {view.audit_id} · {view.trace[3][1]} · file hash {view.trace[-1][1][:16]}"
    return Document(
        view.title, f"Completed audit {view.audit_id} — for the case record", parts, footer
    )


def render_docx(view: AuditView) -> bytes:
    return to_docx(as_document(view))


def render_pdf(view: AuditView) -> bytes:
    return to_pdf(as_document(view))


# --- the command -----------------------------------------------------------------------


def month_audits(engine: sa.Engine, month: str) -> list[str]:
    """Audits of the month that have a current return, in id order."""
    with engine.connect() as conn:
        return [r.audit_id for r in queries.audit_rows(conn, [month]) if r.return_id]


def file_pack(
    engine: sa.Engine,
    audit_ids: list[str],
    out_dir: Path,
    formats: tuple[str, ...],
    bundle_name: str | None = None,
) -> list[Path]:
    """Write each audit's file pack; with bundle_name, also one PDF with a bookmark each."""
    views = [audit_view(engine, a) for a in audit_ids]  # all checked before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    written, pdfs = [], []
    for view in views:
        if "docx" in formats:
            path = out_dir / f"{view.audit_id}-file.docx"
            path.write_bytes(render_docx(view))
            written.append(path)
        if "pdf" in formats or bundle_name:
            pdf = render_pdf(view)
            pdfs.append((view, pdf))
            if "pdf" in formats:
                path = out_dir / f"{view.audit_id}-file.pdf"
                path.write_bytes(pdf)
                written.append(path)
    if bundle_name and pdfs:
        path = out_dir / bundle_name
        path.write_bytes(bundle(pdfs))
        written.append(path)
    return written


def bundle(pdfs: list[tuple[AuditView, bytes]]) -> bytes:
    """One PDF of many audits, with a bookmark (outline entry) per case."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for view, data in pdfs:
        start = len(writer.pages)
        writer.append(PdfReader(io.BytesIO(data)))
        writer.add_outline_item(title=view.case_label, page_number=start)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
