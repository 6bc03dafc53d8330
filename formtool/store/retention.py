"""Retention: tracking the files formtool writes, reading what each record kind holds for the
retention plan (formtool/protect/retention.py), and removing what is past its period where
that is not a whole audit (the shared core's `remove_audit` removes those): the bytes of
original return files, outbox rows, access-log entries and dated backup files. Every removal
is one transaction and records itself in the access log."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formtool.store.access import add_entry, purge_access_log
from formtool.store.backup import _NAMED
from formtool.store.engine import now
from formtool.store.protection import forget_files, record_file
from formtool.store.schema import (
    access_log,
    audits,
    outbox,
    outbox_claims,
    returns,
    stored_files,
)
from formtool.store.units import Units

_r, _a, _o, _c, _f = returns.c, audits.c, outbox.c, outbox_claims.c, stored_files.c
#: The date in a name `formtool backup FOLDER` gives: formtool-2026-12-05-1730.db.
_BACKUP_DAY = re.compile(r"^formtool-(\d{4}-\d\d-\d\d)-")
#: Rows changed per statement: a long IN list is split so no database refuses it.
_CHUNK = 500


def _chunks(ids: Collection[int]) -> Iterable[list[int]]:
    items = sorted(ids)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _audit_of(name: str, audit_ids: Collection[str]) -> str | None:
    """The audit a file is named after (`CSC-P1-202611-file.pdf`): the longest id its name
    starts with, followed by '-' or '.'."""
    named = [a for a in audit_ids if name.startswith(a) and name[len(a) : len(a) + 1] in "-."]
    return max(named, key=len, default=None)


def _replaced(conn: sa.Connection, path: Path) -> None:
    """A file written again where a tracked one was: the older row is history now."""
    conn.execute(
        stored_files.update()
        .where((_f.path == str(path.resolve())[:1000]) & _f.removed_at.is_(None))
        .values(removed_at=now(), removed_why="written again at the same path")
    )


class RetentionStore(Units):
    """The Store's methods for retention (see the module docstring)."""

    def record_files(
        self,
        paths: Iterable[Path],
        kind: str,
        *,
        user: str = "",
        audit_ids: Collection[str] = (),
        month: str | None = None,
    ) -> list[int]:
        """Track files formtool just wrote, in one transaction: a file named after one of
        `audit_ids` (its name starts with the id) is recorded with that audit and its case
        number; when `audit_ids` names one audit, every file is about it (an email draft)."""
        paths = list(paths)
        with self._write() as conn:
            cases = dict(
                conn.execute(
                    sa.select(_a.audit_id, _a.case_number).where(_a.audit_id.in_(list(audit_ids)))
                ).all()
            )
            one = next(iter(audit_ids)) if len(audit_ids) == 1 else None
            ids = []
            for path in paths:
                _replaced(conn, path)
                audit_id = one or _audit_of(path.name, audit_ids)
                case = cases.get(audit_id) if audit_id else None
                ids.append(record_file(conn, path, kind, user, audit_id, case, month))
            return ids

    def retention_audits(self) -> list[Any]:
        """Every audit's id, month and state (what the audits' period is counted from)."""
        with self._read() as conn:
            query = sa.select(_a.audit_id, _a.month, _a.state).order_by(_a.month, _a.audit_id)
            return list(conn.execute(query).all())

    def retention_returns(self) -> list[Any]:
        """The returns still holding their original file: id, audit id, the audit's state,
        and when it came in (received_on: the programme's date; imported_at otherwise)."""
        with self._read() as conn:
            query = (
                sa.select(_r.id, _r.audit_id, _a.state, _r.received_on, _r.imported_at)
                .join(audits, _a.audit_id == _r.audit_id)
                .where(_r.content_removed_at.is_(None))
                .order_by(_r.id)
            )
            return list(conn.execute(query).all())

    def retention_outbox(self) -> list[tuple[Any, list[tuple[str, str]]]]:
        """Every outbox message (id, created_at, state) with the audits it still claims and
        their states."""
        with self._read() as conn:
            messages = conn.execute(sa.select(_o.id, _o.created_at, _o.state).order_by(_o.id)).all()
            claims: dict[int, list[tuple[str, str]]] = {}
            query = sa.select(_c.message_id, _c.audit_id, _a.state).join(
                audits, _a.audit_id == _c.audit_id
            )
            for message_id, audit_id, state in conn.execute(query):
                claims.setdefault(message_id, []).append((audit_id, state))
            return [(m, claims.get(m.id, [])) for m in messages]

    def remove_return_files(self, ids: Collection[int], why: str, user: str) -> int:
        """Empty the original files of the returns `ids` (their answers, warnings and the
        file's name and digest stay), in one transaction, each logged against its audit.
        How many were emptied (one already emptied is not counted again)."""
        removed = 0
        with self._write() as conn:
            at = now()
            for chunk in _chunks(ids):
                rows = conn.execute(
                    sa.select(_r.id, _r.audit_id)
                    .where(_r.id.in_(chunk) & _r.content_removed_at.is_(None))
                    .order_by(_r.id)
                ).all()
                conn.execute(
                    returns.update()
                    .where(_r.id.in_([r.id for r in rows]))
                    .values(content=b"", receipt=None, content_removed_at=at)
                )
                for row in rows:
                    detail = f"the original file of return {row.id}: {why}"
                    add_entry(conn, user, "return file removed", row.audit_id, detail=detail)
                removed += len(rows)
        return removed

    def remove_outbox_messages(self, ids: Collection[int], why: str, user: str) -> int:
        """Delete the outbox messages `ids` and their claims, in one transaction (a later
        message naming one as the one it superseded forgets it); logged. How many went."""
        removed = 0
        with self._write() as conn:
            for chunk in _chunks(ids):
                conn.execute(outbox_claims.delete().where(_c.message_id.in_(chunk)))
                conn.execute(
                    outbox.update().where(_o.superseded_by.in_(chunk)).values(superseded_by=None)
                )
                removed += int(conn.execute(outbox.delete().where(_o.id.in_(chunk))).rowcount)
            add_entry(conn, user, "outbox rows removed", detail=f"{removed} message(s): {why}")
        return removed

    def access_log_due(self, before: dt.datetime) -> tuple[int, dt.datetime | None]:
        """How many access-log entries are older than `before`, and the oldest one's time."""
        with self._read() as conn:
            count, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(access_log.c.at)).where(
                    access_log.c.at < before
                )
            ).one()
            return int(count), oldest

    def purge_access_log_before(self, before: dt.datetime, user: str) -> int:
        """Remove access-log entries older than `before` (the log's one delete path, which
        records itself)."""
        with self._write() as conn:
            return purge_access_log(conn, before, user)

    def forget_removed_files(self) -> int:
        """Tracked files already removed whose audit (or, for a file about a case, every
        audit of the case) is gone stop naming it: no audit id or case number, and the file's
        name (which carries them) replaced by ERASED. How many."""
        with self._write() as conn:
            audit_gone = _f.audit_id.is_not(None) & ~sa.exists().where(_a.audit_id == _f.audit_id)
            case_gone = (
                _f.audit_id.is_(None)
                & _f.case_number.is_not(None)
                & ~sa.exists().where(_a.case_number == _f.case_number)
            )
            return forget_files(conn, audit_gone | case_gone)

    @staticmethod
    def dated_backups(folders: Iterable[Path]) -> list[tuple[Path, dt.date]]:
        """The backups `formtool backup FOLDER` named in `folders`, with the day in each
        name, oldest first; a folder that is gone holds none."""
        found: set[tuple[Path, dt.date]] = set()
        for folder in folders:
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for path in entries:
                day = _BACKUP_DAY.match(path.name)
                if _NAMED.match(path.name) and day and path.is_file():
                    try:
                        found.add((path.resolve(), dt.date.fromisoformat(day[1])))
                    except ValueError:
                        continue  # formtool-2026-13-40-...: not a date formtool wrote
        return sorted(found, key=lambda item: (item[1], str(item[0])))
