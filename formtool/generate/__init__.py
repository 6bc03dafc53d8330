"""Fillable forms out: one pre-filled .docx and/or .xlsx per case, plus a manifest.

Everything is checked and rendered in memory first and written to a staging folder that is
moved into place at the end, so a bad case list never leaves partial output behind.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from formtool import store
from formtool.definitions import FormDefinition, get_form
from formtool.definitions.identifiers import audit_file_name
from formtool.definitions.identity import Identity
from formtool.definitions.scales import parse_date
from formtool.errors import FormtoolError
from formtool.generate.docx import compile_docx, docx_values
from formtool.generate.xlsx import compile_xlsx, xlsx_values
from formtool.read.cases import Case, forms_in, load_cases
from formtool.settings import DEFAULT, Settings
from formtool.store import FORM, Store

FORMATS = ("docx", "xlsx")
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (
    "audit_id",
    "case_number",
    "auditor",
    "due_date",
    "form_id",
    "form_version",
    "checksum",
    "format",
    "file",
)


@dataclass(frozen=True)
class GeneratedForm:
    case: Case
    format: str
    path: Path

    def manifest_row(self, root: Path) -> dict[str, str]:
        return {
            "audit_id": self.case.audit_id,
            "case_number": self.case.case_number,
            "auditor": self.case.facts.get("auditor", ""),
            "due_date": _iso(self.case.facts.get("due_date", "")),
            "form_id": self.case.form_id,
            "form_version": str(self.case.form_version),
            "checksum": self.case.checksum,
            "format": self.format,
            "file": self.path.relative_to(root).as_posix(),
        }


def _iso(text: str) -> str:
    parsed = parse_date(text)
    return parsed.isoformat() if parsed else text


def identity_of(case: Case) -> Identity:
    return Identity(case.audit_id, case.form_id, case.form_version, case.checksum)


def render(form: FormDefinition, case: Case, fmt: str, settings: Settings = DEFAULT) -> bytes:
    """One case's filled-in form as file bytes."""
    identity = identity_of(case)
    fields = {**identity.__dict__, "visible": identity.visible()}
    lines = settings.print_lines()
    if fmt == "docx":
        return compile_docx(form).fill(docx_values(case.facts, fields, lines))
    if fmt == "xlsx":
        return compile_xlsx(form).fill(xlsx_values(form, case.facts, fields, lines))
    raise FormtoolError(f"Unknown format '{fmt}'. Use docx, xlsx or both.")


def formats_for(choice: str) -> tuple[str, ...]:
    if choice == "both":
        return FORMATS
    if choice not in FORMATS:
        raise FormtoolError(f"Unknown format '{choice}'. Use docx, xlsx or both.")
    return (choice,)


def generate(
    form_id: str | None,
    cases_path: str | Path,
    out_dir: str | Path,
    fmt: str = "docx",
    progress: Callable[[Iterable[Case]], Iterable[Case]] | None = None,
    db: Store | Callable[[], Store] | None = None,
    settings: Settings = DEFAULT,
    user: str = "",
) -> list[GeneratedForm]:
    """Generate forms for every case in the list; write them and manifest.csv to out_dir,
    and record each audit (state `allocated`) in the database if one is given (or a function
    opening it, called once the case list is checked: a bad list opens no database).

    Without a form id the list must have a `form` column (as `formtool allocate` writes).
    Raises FormtoolError (and writes nothing) if a form or the case list is unusable.
    """
    formats = formats_for(fmt)
    form_ids = [form_id] if form_id else forms_in(cases_path)
    batches = [(get_form(f), load_cases(cases_path, get_form(f))) for f in form_ids]
    if callable(db):
        db = db()
    produced = []
    for form, cases in batches:  # every batch checked above, before anything is written
        produced += write_forms(form, cases, Path(out_dir), formats, progress, db, settings, user)
    return produced


def audit_record(case: Case) -> store.AuditRecord:
    """The case as the store records an allocated audit."""
    due = parse_date(case.facts["due_date"])
    assert due is not None  # load_cases checked it
    return store.AuditRecord(
        case.audit_id,
        case.form_id,
        case.form_version,
        case.case_number,
        case.facts.get("auditor", ""),
        case.auditor_email,
        case.facts.get("team", ""),
        case.facts.get("worker", ""),
        case.facts.get("manager", ""),
        due,
        case.checksum,
        case.facts,
        case.preparer_email,
        case.form_format,
        case.checksum_scheme,
    )


def record_audits(db: Store, form: FormDefinition, cases: list[Case], user: str = "") -> int:
    """Add the cases to the database as allocated audits, with the definition that made
    their forms; returns how many were new."""
    return db.record_audits([form], map(audit_record, cases), user)


def keyed_for(db: Store, cases: list[Case]) -> list[Case]:
    """The cases with the database's identity key, so their forms carry a checksum only this
    database can mint; an audit issued before keying keeps its unkeyed checksum (its forms
    are with auditors) until it is closed."""
    key = db.identity_key()
    kept = db.checksum_schemes(c.audit_id for c in cases)
    return [
        c if kept.get(c.audit_id, "hmac") != "hmac" else replace(c, checksum_key=key) for c in cases
    ]


def write_forms(
    form: FormDefinition,
    cases: list[Case],
    out_dir: Path,
    formats: tuple[str, ...],
    progress: Callable[[Iterable[Case]], Iterable[Case]] | None = None,
    db: Store | None = None,
    settings: Settings = DEFAULT,
    user: str = "",
    record: Callable[[], object] | None = None,
) -> list[GeneratedForm]:
    """Write each case's forms: made in a staging folder beside `out_dir`, recorded (in the
    database `db`, or by `record`), and only then moved into place, so a form that cannot be
    made records nothing and nothing recorded lacks its form."""
    names = {c.audit_id: [audit_file_name(c.audit_id, f".{f}") for f in formats] for c in cases}
    if db is not None:
        cases = keyed_for(db, cases)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".formtool-", dir=out_dir))
    try:
        produced = []
        for case in (progress or iter)(cases):
            for fmt, name in zip(formats, names[case.audit_id], strict=True):
                path = staging / name
                path.write_bytes(render(form, case, fmt, settings))
                produced.append(GeneratedForm(case, fmt, out_dir / path.name))
        if db is not None:
            record_audits(db, form, cases, user)
        if record is not None:
            record()
        for item in produced:
            os.replace(staging / item.path.name, item.path)
        _append_manifest(out_dir, produced)
        if db is not None:  # tracked, so retention and erasure find them on disk
            ids = [c.audit_id for c in cases]
            db.record_files([p.path for p in produced], FORM, user=user, audit_ids=ids)
            db.record_files([out_dir / MANIFEST], FORM, user=user)  # names every case
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return produced


def regenerate(
    db: Store,
    month: str,
    out_dir: Path,
    formats: tuple[str, ...],
    settings: Settings = DEFAULT,
    audit_ids: Collection[str] | None = None,
) -> list[GeneratedForm]:
    """The month's forms again (or only those of `audit_ids`), from the facts and definition
    versions in the store: the same bytes `generate` made (generation is deterministic),
    wherever they went since."""
    rows = db.audit_rows([month], audit_ids=audit_ids)
    for row in rows:  # an id recorded before ids were checked names no file, not even the first
        audit_file_name(row.audit_id, "")
    forms = db.forms_of(rows, f"The forms for {month}")  # every one, or every missing one named
    key = db.identity_key()
    produced: list[GeneratedForm] = []
    for row in rows:
        form = forms[row.audit_id]
        case = Case(
            row.audit_id,
            form.id,
            form.version,
            store.audit_facts(row),
            0,
            row.auditor_email,
            row.preparer_email,
            row.form_format,
            key if row.checksum_scheme == "hmac" else None,
        )
        produced += write_forms(form, [case], out_dir, formats, settings=settings)
    return produced


def _append_manifest(out_dir: Path, produced: list[GeneratedForm]) -> None:
    """Merge into manifest.csv: rows for regenerated files replace their old rows."""
    path = out_dir / MANIFEST
    rows: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            rows = {r["file"]: r for r in csv.DictReader(handle)}
    for item in produced:
        row = item.manifest_row(out_dir)
        rows[row["file"]] = row
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows.values(), key=lambda r: r["file"]))
    path.write_text(buffer.getvalue(), encoding="utf-8")
