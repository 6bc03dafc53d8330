"""Batch import of returned forms: read -> validate -> store, one transaction per file.

A bad file is rejected with its reasons and the batch goes on; a rejected file changes
nothing in the database. The identical file again is a no-op ("unchanged"); a changed return
of the same audit supersedes the previous one, which stays as history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from formtool import store
from formtool.errors import Issue, IssueCode
from formtool.read import READABLE, read_bytes
from formtool.read.ooxml import UnreadableFile
from formtool.read.validate import AuditReturn, ReadResult, check_return
from formtool.scales import parse_date

MAX_FILE_BYTES = 25 * 1024 * 1024  # email attachment limits are lower than this
RETURNED_FROM = (*store.OUTSTANDING_STATES, "returned")  # states a new return moves on
ACTION_COLUMNS = {  # form column id -> actions table column
    "recommendation": "recommendation",
    "action": "action",
    "responsible_role": "responsible_role",
    "responsible_person": "responsible_person",
    "by_whom": "responsible_person",
    "date_required": "due_date",
    "by_when": "due_date",
    "manager_sign_off": "sign_off",
    "sign_off_date": "sign_off_date",
    "manager_comments": "comments",
    "identified_by": "comments",
}


@dataclass
class ImportOutcome:
    file: str
    status: str  # imported / updated / unchanged / rejected
    audit_id: str = ""
    issues: list[Issue] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "audit_id": self.audit_id,
            "status": self.status,
            "issues": [i.as_dict() for i in self.issues],
        }


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, and every .docx/.xlsx under folders named (Office lock files skipped)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in (*READABLE, ".docm", ".xlsm")
                and not p.name.startswith("~$")
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _reject(file: str, reason: str, audit_id: str = "") -> ImportOutcome:
    return ImportOutcome(
        file, "rejected", audit_id, [Issue(IssueCode.unreadable, file, value=reason)]
    )


def import_file(engine: sa.Engine, path: Path, today: dt.date | None = None) -> ImportOutcome:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return _reject(
                name,
                f"is {size // 1_000_000} MB; a form is well under 1 MB. "
                "Ask the auditor to remove pasted images and save again.",
            )
        data = path.read_bytes()
    except OSError as exc:
        return _reject(name, f"cannot be read ({exc.strerror}). Check the path.")
    content_hash = hashlib.sha256(data).hexdigest()
    with engine.connect() as conn:
        seen = conn.execute(
            sa.select(store.returns.c.audit_id).where(store.returns.c.content_hash == content_hash)
        ).first()
    if seen:
        return ImportOutcome(name, "unchanged", seen.audit_id)
    try:
        raw = read_bytes(data, path.suffix)
    except UnreadableFile as exc:
        return _reject(name, str(exc))
    audit_id = raw.identity.audit_id
    with engine.connect() as conn:
        audit = conn.execute(
            sa.select(store.audits).where(store.audits.c.audit_id == audit_id)
        ).first()
    if audit is None:
        return ImportOutcome(
            name, "rejected", audit_id, [Issue(IssueCode.not_in_database, name, value=audit_id)]
        )
    if (audit.form_id, audit.form_version) != (raw.form.id, raw.identity.form_version):
        return ImportOutcome(
            name,
            "rejected",
            audit_id,
            [
                Issue(
                    IssueCode.wrong_form,
                    name,
                    audit_id,
                    value=f"{raw.form.id} v{raw.identity.form_version}",
                    fix=f"{audit.form_id} v{audit.form_version}",
                )
            ],
        )
    result = check_return(raw, name, store.audit_facts(audit), today)
    if not result.accepted:
        return ImportOutcome(name, "rejected", audit_id, result.issues)
    status = _store(engine, result, name, data, content_hash)
    return ImportOutcome(name, status, audit_id, result.issues)


def _store(engine: sa.Engine, result: ReadResult, name: str, data: bytes, content_hash: str) -> str:
    record = result.record
    assert record is not None
    warnings = json.dumps([i.message for i in result.issues])
    with store.transaction(engine) as conn:
        r = store.returns.c
        if conn.execute(sa.select(r.id).where(r.content_hash == content_hash)).first():
            return "unchanged"  # another import stored it while we were reading
        current = conn.execute(
            sa.select(r.id).where((r.audit_id == record.audit_id) & r.is_current)
        ).first()
        if current:
            conn.execute(store.returns.update().where(r.id == current.id).values(is_current=False))
        return_id = conn.execute(
            store.returns.insert().values(
                audit_id=record.audit_id,
                file_name=Path(name).name,
                content_hash=content_hash,
                content=data,
                imported_at=store.now(),
                supersedes=current.id if current else None,
                is_current=True,
                method=record.method,
                final=record.final,
                warnings=warnings,
            )
        ).inserted_primary_key[0]
        _store_answers(conn, return_id, record)
        _store_grade(conn, return_id, record)
        status = "updated" if current else "imported"
        conn.execute(
            store.audits.update()
            .where(
                (store.audits.c.audit_id == record.audit_id)
                & store.audits.c.state.in_(RETURNED_FROM)
            )
            .values(state="returned", updated_at=store.now())
        )
        store.record_event(
            conn,
            record.audit_id,
            "returned" if not current else "updated",
            f"{Path(name).name} ({'final' if record.final else 'draft'})",
        )
    return status


def _date(text: str) -> dt.date | None:
    return parse_date(text) if text else None


def _store_answers(conn: sa.Connection, return_id: int, record: AuditReturn) -> None:
    rows = [
        {"return_id": return_id, "key": k, "value": v, "comment": c}
        for k, (v, c) in record.answers.items()
    ]
    if rows:
        conn.execute(store.answers.insert(), rows)
    actions = []
    for row in record.actions:
        values = {"return_id": return_id, "table_key": row.table_key, "row": row.row}
        for column, value in row.values.items():
            target = ACTION_COLUMNS.get(column, "comments")
            values[target] = _date(value) if target.endswith("date") else value
        actions.append(values)
    if actions:
        conn.execute(
            store.actions.insert(),
            [
                {
                    "recommendation": "",
                    "action": "",
                    "responsible_role": "",
                    "responsible_person": "",
                    "due_date": None,
                    "sign_off": "",
                    "sign_off_date": None,
                    "comments": "",
                }
                | a
                for a in actions
            ],
        )


def _store_grade(conn: sa.Connection, return_id: int, record: AuditReturn) -> None:
    g = store.grades
    values = {"auditor_grade": record.grade, "return_id": return_id}
    if record.moderated_grade:
        values |= {
            "moderated_grade": record.moderated_grade,
            "moderated_by": "return form",
            "moderated_at": store.now(),
        }
    if conn.execute(sa.select(g.c.audit_id).where(g.c.audit_id == record.audit_id)).first():
        conn.execute(g.update().where(g.c.audit_id == record.audit_id).values(**values))
    else:
        conn.execute(g.insert().values(audit_id=record.audit_id, **values))


def import_paths(
    engine: sa.Engine,
    paths: Iterable[str | Path],
    today: dt.date | None = None,
    progress: Callable[[list[Path]], Iterator[Path]] | None = None,
) -> list[ImportOutcome]:
    """Import every file; each outcome says imported / updated / unchanged / rejected."""
    files = discover(paths)
    outcomes = []
    for path in (progress or iter)(files):
        if not path.exists():
            outcomes.append(_reject(str(path), "does not exist. Check the path."))
        elif path.suffix.lower() in (".docm", ".xlsm"):
            outcomes.append(
                _reject(
                    str(path),
                    "is macro-enabled. Save it as a plain "
                    f"{path.suffix[:-1]}x (no macros) and send it again.",
                )
            )
        else:
            outcomes.append(import_file(engine, path, today))
    return outcomes
