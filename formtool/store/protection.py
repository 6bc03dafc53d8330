"""Data protection's shared core: the files formtool wrote, anonymised period summaries,
removing an audit with everything held for it, redacting the access log, and the register of
data-protection requests. Retention (retention.py) and erasure (subjects.py) both remove
audits through `remove_audit`, so what "everything held for an audit" means is written once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formtool import clock
from formtool.store.access import add_entry
from formtool.store.engine import lock, now
from formtool.store.rewrite import Rewrite
from formtool.store.schema import (
    access_log,
    access_log_purging,
    actions,
    answers,
    audit_copies,
    audits,
    challenges,
    chosen_slots,
    concerns,
    data_requests,
    events,
    grades,
    outbox,
    outbox_claims,
    period_summaries,
    rejections,
    returns,
    stored_files,
)
from formtool.store.units import Units

# What a stored file is, for retention's schedule and subject access.
FORM = "form"
FILE_PACK = "file pack"
PMU_PACK = "pmu pack"
REPORT = "report"
EXPORT = "export"
EMAIL_DRAFT = "email draft"
BACKUP = "backup"
SUBJECT_ACCESS = "subject access"
FILE_KINDS = (FORM, FILE_PACK, PMU_PACK, REPORT, EXPORT, EMAIL_DRAFT, BACKUP, SUBJECT_ACCESS)

#: (month, form_id, team, measure, value): one anonymised count of a period summary.
Cell = tuple[str, str, str, str, str]
#: What an erased or removed value becomes where a record must stay (the access log).
ERASED = "[erased]"
#: The marker row that lets the access log's UPDATE trigger through (migration 0015).
REDACTING = 2

_f = stored_files.c
_p = period_summaries.c


def _digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def record_file(
    conn: sa.Connection,
    path: Path,
    kind: str,
    user: str,
    audit_id: str | None = None,
    case_number: str | None = None,
    month: str | None = None,
) -> int:
    """Track a file formtool just wrote (its absolute path, digest and size)."""
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown stored file kind {kind!r}")
    sha, size = _digest(path)
    row = conn.execute(
        stored_files.insert()
        .values(
            path=str(path.resolve())[:1000],
            kind=kind,
            audit_id=audit_id,
            case_number=case_number,
            month=month,
            sha256=sha,
            size=size,
            written_at=now(),
            written_on=clock.today(),
            written_by=user[:200],
        )
        .returning(_f.id)
    )
    return int(row.scalar_one())


def files(
    conn: sa.Connection,
    audit_ids: Collection[str] | None = None,
    case_number: str | None = None,
    kinds: Collection[str] | None = None,
    written_before: dt.date | None = None,
    include_removed: bool = False,
) -> list[Any]:
    query = sa.select(stored_files).order_by(_f.id)
    if audit_ids is not None:
        query = query.where(_f.audit_id.in_(list(audit_ids)))
    if case_number is not None:
        query = query.where(_f.case_number == case_number)
    if kinds is not None:
        query = query.where(_f.kind.in_(list(kinds)))
    if written_before is not None:
        query = query.where(_f.written_on < written_before)
    if not include_removed:
        query = query.where(_f.removed_at.is_(None))
    return list(conn.execute(query).all())


def fold_summary(conn: sa.Connection, cells: Counter[Cell]) -> None:
    """Add `cells` to the period summaries (serialised: two removals may share a cell)."""
    if not cells:
        return
    lock(conn, "period_summaries")
    at = now()
    for (month, form_id, team, measure, value), count in sorted(cells.items()):
        key = (
            (_p.month == month)
            & (_p.form_id == form_id)
            & (_p.team == team[:200])
            & (_p.measure == measure)
            & (_p.value == value[:200])
        )
        updated = conn.execute(
            period_summaries.update().where(key).values(count=_p.count + count, updated_at=at)
        )
        if not updated.rowcount:
            conn.execute(
                period_summaries.insert().values(
                    month=month,
                    form_id=form_id,
                    team=team[:200],
                    measure=measure,
                    value=value[:200],
                    count=count,
                    updated_at=at,
                )
            )


def summary_rows(conn: sa.Connection, months: Collection[str] | None = None) -> list[Any]:
    query = sa.select(period_summaries).order_by(_p.month, _p.form_id, _p.team, _p.measure)
    if months is not None:
        query = query.where(_p.month.in_(list(months)))
    return list(conn.execute(query.order_by(_p.value)).all())


def redact_log(
    conn: sa.Connection,
    values: Iterable[str],
    scope_ids: Collection[str] = (),
    *,
    forget_ids: bool = False,
    user_names: Collection[str] = (),
    everywhere: bool = False,
) -> int:
    """Take identifying text out of the access log, keeping every entry (who looked, when,
    from where, at what kind of thing). `values` and the audit ids `scope_ids` become ERASED,
    as whole words, in the entries about those audits (their audit id, or the id in their
    text), or in every entry with `everywhere` (a member of staff is named across audits):
    never inside another word or in an entry about someone else. `forget_ids` also clears the
    entries' audit id (the audit is gone); `user_names` become ERASED as the entry's user.
    The marker row lets the append-only trigger pass these UPDATEs, in this transaction
    only. How many entries changed."""
    values = list(values)
    erase = Rewrite(dict.fromkeys([*values, *scope_ids], ERASED))
    a = access_log.c
    if everywhere:
        near = sa.or_(*(a.detail.icontains(v, autoescape=True) for v in values if v.strip()))
    else:
        about = [a.detail.contains(i, autoescape=True) for i in scope_ids]
        near = sa.or_(a.audit_id.in_(list(scope_ids)), *about)
    conn.execute(access_log_purging.insert().values(id=REDACTING))
    changed: set[int] = set()
    if erase.pattern is not None and (everywhere or scope_ids):
        for row in conn.execute(sa.select(a.id, a.detail).where(near)).all():
            text = erase.text(row.detail)
            if text != row.detail:
                conn.execute(access_log.update().where(a.id == row.id).values(detail=text))
                changed.add(row.id)
    if forget_ids and scope_ids:
        forgotten = sa.select(a.id).where(a.audit_id.in_(list(scope_ids)))
        changed.update(conn.execute(forgotten).scalars())
        conn.execute(
            access_log.update().where(a.audit_id.in_(list(scope_ids))).values(audit_id=None)
        )
    if user_names:
        renamed = sa.select(a.id).where(a.user_name.in_(list(user_names)))
        changed.update(conn.execute(renamed).scalars())
        conn.execute(
            access_log.update().where(a.user_name.in_(list(user_names))).values(user_name=ERASED)
        )
    conn.execute(access_log_purging.delete().where(access_log_purging.c.id == REDACTING))
    return len(changed)


def _count(conn: sa.Connection, statement: Any) -> int:
    return int(conn.execute(statement).rowcount or 0)


def _remove_outbox(conn: sa.Connection, audit_id: str) -> dict[str, int]:
    """The audit's claims go; a message that was about it alone goes too; a message shared
    with other audits stays with the audit id taken out of its subject."""
    c = outbox_claims.c
    message_ids = set(conn.execute(sa.select(c.message_id).where(c.audit_id == audit_id)).scalars())
    claims = _count(conn, outbox_claims.delete().where(c.audit_id == audit_id))
    shared = set(
        conn.execute(sa.select(c.message_id).where(c.message_id.in_(list(message_ids)))).scalars()
    )
    alone = message_ids - shared
    o = outbox.c
    # A later message may name one of these as the message it superseded: not a key, cleared.
    conn.execute(outbox.update().where(o.superseded_by.in_(list(alone))).values(superseded_by=None))
    messages = _count(conn, outbox.delete().where(o.id.in_(list(alone))))
    conn.execute(
        outbox.update()
        .where(o.id.in_(list(shared)) & o.subject.contains(audit_id, autoescape=True))
        .values(subject=sa.func.replace(o.subject, audit_id, ERASED))
    )
    return {"outbox claims": claims, "outbox messages": messages}


def remove_audit_rows(conn: sa.Connection, audit_id: str) -> dict[str, int]:
    """Delete every row held for one audit, children first; counts per table."""
    return_ids = list(
        conn.execute(sa.select(returns.c.id).where(returns.c.audit_id == audit_id)).scalars()
    )
    removed = {
        "answers": _count(conn, answers.delete().where(answers.c.return_id.in_(return_ids))),
        "actions": _count(conn, actions.delete().where(actions.c.return_id.in_(return_ids))),
        "concerns": _count(conn, concerns.delete().where(concerns.c.audit_id == audit_id)),
        "challenges": _count(conn, challenges.delete().where(challenges.c.audit_id == audit_id)),
        "grades": _count(conn, grades.delete().where(grades.c.audit_id == audit_id)),
    }
    conn.execute(returns.update().where(returns.c.id.in_(return_ids)).values(supersedes=None))
    removed["returns"] = _count(conn, returns.delete().where(returns.c.id.in_(return_ids)))
    removed["events"] = _count(conn, events.delete().where(events.c.audit_id == audit_id))
    removed["copies"] = _count(
        conn, audit_copies.delete().where(audit_copies.c.audit_id == audit_id)
    )
    removed.update(_remove_outbox(conn, audit_id))
    r = rejections.c
    removed["rejections"] = _count(
        conn, rejections.delete().where((r.audit_id == audit_id) | (r.claimed_id == audit_id))
    )
    conn.execute(
        chosen_slots.update().where(chosen_slots.c.audit_id == audit_id).values(audit_id=None)
    )
    removed["audits"] = _count(conn, audits.delete().where(audits.c.audit_id == audit_id))
    removed["tracked files forgotten"] = forget_files(conn, _f.audit_id == audit_id)
    return removed


def forget_files(conn: sa.Connection, where: Any) -> int:
    """Tracked files matching `where` that are already removed from disk stop naming what they
    were about: no audit id or case number, and the file's name (which carries them) becomes
    ERASED in its folder. A file still on disk keeps its row, so it can still be found. How
    many."""
    gone = where & _f.removed_at.is_not(None)
    rows = conn.execute(sa.select(_f.id, _f.path).where(gone)).all()
    for row in rows:
        conn.execute(
            stored_files.update()
            .where(_f.id == row.id)
            .values(
                path=str(Path(row.path).parent / ERASED)[:1000], audit_id=None, case_number=None
            )
        )
    return len(rows)


def add_request(
    conn: sa.Connection,
    kind: str,
    user: str,
    subject: str = "",
    reference: str = "",
    reason: str = "",
    authorised_by: str = "",
    detail: dict[str, Any] | None = None,
) -> int:
    row = conn.execute(
        data_requests.insert()
        .values(
            kind=kind[:30],
            subject=subject[:30],
            reference=reference[:200],
            reason=reason,
            authorised_by=authorised_by[:200],
            done_by=user[:200],
            done_at=now(),
            done_on=clock.today(),
            detail=json.dumps(detail or {}, sort_keys=True),
        )
        .returning(data_requests.c.id)
    )
    return int(row.scalar_one())


class ProtectionStore(Units):
    """The Store's data-protection core (see the module docstring)."""

    def record_file(
        self,
        path: Path,
        kind: str,
        *,
        audit_id: str | None = None,
        case_number: str | None = None,
        month: str | None = None,
        user: str = "",
    ) -> int:
        """Track a file formtool just wrote to disk, so retention and erasure can find it."""
        with self._write() as conn:
            return record_file(conn, path, kind, user, audit_id, case_number, month)

    def stored_files(
        self,
        *,
        audit_ids: Collection[str] | None = None,
        case_number: str | None = None,
        kinds: Collection[str] | None = None,
        written_before: dt.date | None = None,
        include_removed: bool = False,
    ) -> list[Any]:
        """Tracked files, oldest first, filtered; removed ones only with `include_removed`."""
        with self._read() as conn:
            return files(conn, audit_ids, case_number, kinds, written_before, include_removed)

    def mark_files_removed(self, ids: Collection[int], why: str, user: str) -> None:
        """The files `ids` are gone from disk (retention or erasure removed them)."""
        if not ids:
            return
        with self._write() as conn:
            conn.execute(
                stored_files.update()
                .where(_f.id.in_(list(ids)) & _f.removed_at.is_(None))
                .values(removed_at=now(), removed_why=why[:200])
            )
            add_entry(conn, user, "files removed", detail=f"{len(ids)} file(s): {why}"[:2000])

    def remove_audit(
        self,
        audit_id: str,
        why: str,
        user: str,
        summary: Counter[Cell],
        redact: Sequence[str] = (),
        as_seen: tuple[str, dt.datetime] | None = None,
    ) -> dict[str, int]:
        """In one transaction: fold the audit's anonymised `summary` into the period
        summaries, delete every row held for it, take its id (and each of `redact`) out of
        the access log and out of its tracked files already removed from disk (remove them
        first: `formtool.protect.summary.remove_files`), and log the removal (without the
        audit id: it carries the case number). Counts per table; {} if the audit is not (or
        no longer) in the store, or no longer `as_seen` (its state and last change when
        `summary` was counted: it moved since, so it is left for the next run)."""
        with self._write() as conn:
            row = conn.execute(
                sa.select(audits.c.month, audits.c.form_id, audits.c.state, audits.c.updated_at)
                .where(audits.c.audit_id == audit_id)
                .with_for_update()
            ).first()
            if row is None or (as_seen is not None and (row.state, row.updated_at) != as_seen):
                return {}
            fold_summary(conn, summary)
            removed = remove_audit_rows(conn, audit_id)
            removed["access log entries redacted"] = redact_log(
                conn, redact, [audit_id], forget_ids=True
            )
            add_entry(
                conn,
                user,
                "audit removed",
                detail=f"an audit of {row.month} ({row.form_id}): {why}"[:2000],
            )
            return removed

    def redact_access_log(
        self, values: Sequence[str], user: str, why: str, user_names: Collection[str] = ()
    ) -> int:
        """Take `values` (whole words, in every entry) and the accounts `user_names` out of
        the access log, keeping the entries; the redaction itself is logged with `why`. How
        many entries changed."""
        with self._write() as conn:
            changed = redact_log(conn, values, user_names=user_names, everywhere=True)
            add_entry(conn, user, "access log redacted", detail=f"{changed} entries: {why}")
            return changed

    def add_data_request(
        self,
        kind: str,
        *,
        user: str,
        subject: str = "",
        reference: str = "",
        reason: str = "",
        authorised_by: str = "",
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record one piece of data-protection work in the register; its number."""
        with self._write() as conn:
            return add_request(conn, kind, user, subject, reference, reason, authorised_by, detail)

    def data_requests(self) -> list[Any]:
        """The register, oldest first."""
        with self._read() as conn:
            query = sa.select(data_requests).order_by(data_requests.c.id)
            return list(conn.execute(query).all())

    def period_summary(self, months: Collection[str] | None = None) -> list[Any]:
        """The anonymised counts kept for removed audits (month, form_id, team, measure,
        value, count)."""
        with self._read() as conn:
            return summary_rows(conn, months)
