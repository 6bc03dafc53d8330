"""Backups a QA officer can take while `formtool serve` runs, and restore.

- SQLite: the online backup API copies one consistent snapshot of the database, the -wal file
  included, while others go on writing; the rows are counted inside that same snapshot.
- PostgreSQL: `pg_dump --format=custom` on a snapshot formtool exports, its rows counted in it
  (pgdump.py).

Only a formtool database is backed up: a missing or empty SQLite file, or a database with no
schema revision, is refused before anything opens it to write. A backup is written 0600 (it
holds children's data, password hashes and keys) under a temporary name beside the target,
verified (SQLite: integrity check; PostgreSQL: pg_restore reads the dump back; both: every
table's rows equal the database's), recorded in the access log, and only then renamed into
place.

A restore never puts a file over a live one, nor renames one that another program may have
open. SQLite: the backup is checked (integrity, a schema revision this formtool knows), copied
to a private temporary file and checked again, then copied INTO the live database with the
online backup API, as one write transaction on it (`sqlitecopy.copy_into` says why that is
safe): whoever has the database open sees it as it was or as restored, and the file keeps its
inode, mode and owner. Inside that
transaction, before anything is committed, a server's heartbeat is read once more and the
database being replaced is copied aside as `NAME.replaced-YYYYMMDD-HHMMSS` (0600). A database
that cannot be read at all is kept aside as it is (a second name for the file, with its -wal
file) and one rename puts the checked copy in its place. PostgreSQL: restore only fills an
empty database (`pg_restore --no-owner --single-transaction`), so nothing is ever dropped; the
officer points FORMTOOL_DB at it once `formtool status` shows it right.

Restore refuses while a server's heartbeat in the database is fresh (heartbeat.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formtool.clock import ENGLAND
from formtool.store import access, pgdump, sqlitecopy
from formtool.store.copies import SIDE_FILES, BackupError, fsync, table_rows
from formtool.store.engine import (
    HEAD,
    StoreError,
    database_url,
    engine_for,
    known_revisions,
    masked,
    now,
    open_store,
    transaction,
)
from formtool.store.protection import BACKUP, record_file
from formtool.store.schema import access_log, events, returns, server_heartbeat, stored_files

#: The names `formtool backup FOLDER` gives: formtool-2026-12-05-0300.db (.dump: PostgreSQL).
SUFFIXES = {"sqlite": ".db", "postgresql": ".dump"}
_NAMED = re.compile(r"^formtool-\d{4}-\d\d-\d\d-\d{4}(?:-\d+)?\.(?:db|dump)$")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class BackupReport:
    """A backup written and verified: where, how big, what it holds."""

    path: Path
    size: int
    backend: str  # sqlite or postgresql
    method: str  # how it was taken, in words
    source: str  # the database URL, password masked
    revision: str  # the schema revision it holds
    tables: dict[str, int]  # rows per table, equal in the database and the backup
    taken_at: dt.datetime  # UTC
    logged: bool = True  # recorded in the access log (databases before schema 0007 have none)
    removed: tuple[Path, ...] = ()  # older backups removed to keep the newest N

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "backend": self.backend,
            "method": self.method,
            "source": self.source,
            "revision": self.revision,
            "rows": self.rows,
            "tables": self.tables,
            "taken_at": self.taken_at.isoformat() + "Z",
            "verified": True,
            "logged": self.logged,
            "removed": [str(p) for p in self.removed],
        }


@dataclass(frozen=True)
class BackupInfo:
    """What a backup file holds, read without changing anything."""

    path: Path
    backend: str
    size: int
    revision: str
    tables: dict[str, int]
    written: dt.datetime  # the file's modification time, UTC

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, for the officer to confirm: the backup, the database it
    replaces (SQLite: where the replaced file will be kept) and anything to know first."""

    backup: BackupInfo
    target: str  # the database URL, password masked
    keep_as: Path | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoreReport:
    """A restore done: the database now holds the backup (upgraded to this formtool's schema)."""

    plan: RestorePlan
    revision: str  # after the upgrade on opening
    latest: dt.datetime | None  # the newest time recorded in it (UTC): it goes back to then

    def as_dict(self) -> dict[str, Any]:
        backup = self.plan.backup
        return {
            "backup": str(backup.path),
            "database": self.plan.target,
            "replaced_file_kept_as": str(self.plan.keep_as) if self.plan.keep_as else None,
            "backup_revision": backup.revision,
            "revision": self.revision,
            "rows": backup.rows,
            "tables": backup.tables,
            "latest": self.latest.isoformat() + "Z" if self.latest else None,
            "notes": list(self.plan.notes),
        }


# --- taking a backup ---------------------------------------------------------------------


def backup_database(
    url: str | None, target: Path, user: str, keep: int | None = None
) -> BackupReport:
    """`formtool backup`: a verified copy of the database at `url` (as --db gives it). The
    database is not upgraded first, so a backup taken before an upgrade holds it as it was."""
    return take_backup(engine_for(database_url(url)), target, user, keep)


def take_backup(
    engine: sa.Engine, target: Path, user: str, keep: int | None = None
) -> BackupReport:
    """A verified backup of the engine's database at `target`: a file, or a folder to put a
    dated one in (then `keep` leaves only the newest `keep` backups there)."""
    backend = engine.dialect.name
    target = target.absolute()  # as the access log names it
    if backend not in SUFFIXES:
        raise BackupError(f"formtool cannot back up a {backend} database; use its own tools.")
    source = _sqlite_file(engine) if backend == "sqlite" else None
    if source is not None:
        sqlitecopy.check_source(source)
    if keep is not None and not target.is_dir():
        if not target.exists():
            raise BackupError(
                f"[{target}] there is no such folder to keep the newest backups in (was it "
                "removed, or is it not mounted?)."
            )
        raise BackupError(f"[{target}] keeping the newest backups needs a folder, not a file.")
    final = _target_path(target, backend)
    taken_at = now()
    with _private_temp(final) as tmp:
        if source is not None:
            tables, revision = sqlitecopy.snapshot(source, tmp, final)
            method = "the SQLite online backup (safe while formtool serve runs)"
            found, found_revision = sqlitecopy.verify(tmp)
        else:
            pg_dump, version = pgdump.program("pg_dump", engine)
            tables, revision = pgdump.dump(engine, pg_dump, tmp, final)
            fsync(tmp)
            method = f"pg_dump --format=custom (PostgreSQL {version})"
            found, found_revision = pgdump.contents(pgdump.beside(pg_dump, "pg_restore"), tmp)
        if found != tables or found_revision != revision:
            raise BackupError(
                f"[{final}] the backup did not match the database ({_differences(tables, found)}"
                f"{'' if found_revision == revision else '; schema revision differs'}); it was "
                "removed. Try again; if it fails again, the database itself may be damaged."
            )
        detail = f"to {final} ({sum(tables.values())} rows in {len(tables)} tables, schema "
        detail += f"{revision}, verified)"
        logged = _log(engine, user, "backup taken", detail)
        os.replace(tmp, final)
        fsync(final.parent)
    removed = _keep_newest(final.parent, keep) if keep is not None else ()
    _track(engine, final, user, removed, keep)
    return BackupReport(
        final,
        final.stat().st_size,
        backend,
        method,
        masked(engine.url),
        revision,
        tables,
        taken_at,
        logged,
        removed,
    )


def _target_path(target: Path, backend: str) -> Path:
    if target.is_dir():
        stamp = dt.datetime.now(ENGLAND)  # real time: when the backup is taken
        base = f"formtool-{stamp:%Y-%m-%d-%H%M}"
        suffix = SUFFIXES[backend]
        final, n = target / f"{base}{suffix}", 1
        while final.exists():
            n += 1
            final = target / f"{base}-{n}{suffix}"
        return final
    if target.exists() or target.is_symlink():
        raise BackupError(
            f"[{target}] already exists; a backup never overwrites a file. Give a new file "
            "name, or a folder (then the backup is named by date and time)."
        )
    if not target.parent.is_dir():
        raise BackupError(f"[{target.parent}] there is no such folder. Create it first.")
    return target


@contextmanager
def _private_temp(final: Path) -> Iterator[Path]:
    """A new empty file beside `final`, readable by this user only from its creation; removed
    (with any SQLite journal of it) unless renamed into place."""
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        yield tmp
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{s}") for s in SIDE_FILES)):
            leftover.unlink(missing_ok=True)


def _sqlite_file(engine: sa.Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(
            f"{masked(engine.url)} is not an SQLite file; give --db the path of the file."
        )
    return Path(database)


def _log(engine: sa.Engine, user: str, action: str, detail: str) -> bool:
    """Record a backup or restore in the access log; False if the database has none yet."""
    with transaction(engine) as conn:
        if not sa.inspect(conn).has_table(access_log.name):
            return False
        access.add_entry(conn, user, action, address="command line", detail=detail)
    return True


def _track(
    engine: sa.Engine, final: Path, user: str, removed: tuple[Path, ...], keep: int | None
) -> None:
    """Track the verified backup for retention, and mark those `keep` removed (a database
    before schema 0015 tracks none)."""
    with transaction(engine) as conn:
        if not sa.inspect(conn).has_table(stored_files.name):
            return
        record_file(conn, final, BACKUP, user)
        gone = [str(p.resolve()) for p in removed]
        conn.execute(
            stored_files.update()
            .where(stored_files.c.path.in_(gone) & stored_files.c.removed_at.is_(None))
            .values(removed_at=now(), removed_why=f"only the newest {keep} backups are kept")
        )


def _differences(expected: dict[str, int], found: dict[str, int]) -> str:
    differ = [
        f"{name} {expected.get(name, 0)} in the database, {found.get(name, 0)} in the backup"
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]
    return "; ".join(differ[:3]) or "the tables match"


def _keep_newest(folder: Path, keep: int) -> tuple[Path, ...]:
    """Remove all but the newest `keep` backups `formtool backup` named in `folder`; nothing
    else there is touched."""
    named = sorted(
        (p for p in folder.iterdir() if _NAMED.match(p.name) and p.is_file()),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    old = named[: max(0, len(named) - keep)]
    for path in old:
        path.unlink(missing_ok=True)
    return tuple(old)


def recent_backup(folder: Path, within: dt.timedelta) -> Path | None:
    """The newest backup `formtool backup` named in `folder` if it was written within
    `within` (serve takes one when it starts unless there is one from the last day)."""
    if not folder.is_dir():
        return None
    named = [p for p in folder.iterdir() if _NAMED.match(p.name) and p.is_file()]
    newest = max(named, key=lambda p: p.stat().st_mtime, default=None)
    cutoff = time.time() - within.total_seconds()  # real time: files' modification times
    if newest is None or newest.stat().st_mtime < cutoff:
        return None
    return newest


# --- restoring ---------------------------------------------------------------------------


def inspect_backup(path: Path) -> BackupInfo:
    """Check a backup file without changing anything: what it is, that it is whole, and that
    its schema revision is one this formtool knows (an older one is upgraded once restored)."""
    if not path.is_file():
        raise BackupError(
            f"[{path}] there is no such file. Give the path of a backup made by formtool backup."
        )
    with open(path, "rb") as file:
        head = file.read(16)
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    if head == _SQLITE_MAGIC:
        backend = "sqlite"
        tables, revision = sqlitecopy.verify(path)
    elif head.startswith(_PG_MAGIC):
        backend = "postgresql"
        program = pgdump.reader()
        if program is None:
            raise BackupError(
                f"[{path}] is a PostgreSQL dump and pg_restore is not installed here: install "
                "the PostgreSQL client tools (e.g. apt install postgresql-client)."
            )
        tables, revision = pgdump.contents(program, path)
    else:
        raise BackupError(
            f"[{path}] is not a formtool backup (neither an SQLite database nor a "
            "pg_dump --format=custom file). Give the path of a backup made by formtool backup."
        )
    _check_revision(path, revision)
    return BackupInfo(path, backend, path.stat().st_size, revision, tables, written)


def _check_revision(path: Path, revision: str) -> None:
    if not revision:
        raise BackupError(
            f"[{path}] holds no formtool database (it has no schema revision); nothing was "
            "changed. Give the path of a backup made by formtool backup."
        )
    if revision == HEAD:
        return
    head, known = known_revisions()
    if revision not in known:
        raise BackupError(
            f"[{path}] was made by a newer formtool (schema {revision}; this formtool knows up "
            f"to {head}). Upgrade formtool before restoring it; nothing was changed."
        )


def restore_backup(
    path: Path,
    url: str | None,
    user: str,
    confirm: Callable[[RestorePlan], bool] | None = None,
) -> RestoreReport | None:
    """`formtool restore`: put the database at `url` back as it was in the backup at `path`.
    Everything is checked first; `confirm(plan)` then decides (None: go ahead). None if it
    said no. The restored database is upgraded to this formtool's schema and the restore
    recorded in its access log."""
    info = inspect_backup(path)
    resolved = database_url(url)
    backend = sa.make_url(resolved).get_backend_name()
    if backend != info.backend:
        raise BackupError(
            f"[{path}] is a backup of an {_NAMES[info.backend]} database and {masked(resolved)} "
            f"is {_NAMES.get(backend, backend)}; restore it into {_NAMES[info.backend]}."
        )
    engine = engine_for(resolved)
    if backend == "sqlite":
        return _restore_sqlite(info, engine, resolved, user, confirm)
    return _restore_postgresql(info, engine, resolved, user, confirm)


_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _restore_sqlite(
    info: BackupInfo,
    engine: sa.Engine,
    url: str,
    user: str,
    confirm: Callable[[RestorePlan], bool] | None,
) -> RestoreReport | None:
    live = _sqlite_file(engine).absolute()
    if live.exists() and live.samefile(info.path):
        raise BackupError(f"[{info.path}] is the database itself; give a backup of it.")
    if live.is_dir():
        raise BackupError(f"[{live}] is a folder, not a database. Check --db or FORMTOOL_DB.")
    engine.dispose()  # this process's idle connections to the database being replaced
    target = masked(url)
    exists = live.exists()
    empty = exists and live.stat().st_size == 0
    damage = sqlitecopy.look(live, target) if exists and not empty else None
    notes: tuple[str, ...] = ()
    if damage is not None:
        notes = (f"The database being replaced cannot be read ({damage}); it is kept as it is.",)
    elif empty:
        notes = ("The file there is empty (0 bytes): there is nothing to keep.",)
    aside = _aside_name(live)
    plan = RestorePlan(info, target, aside if exists and not empty else None, notes)
    if confirm is not None and not confirm(plan):
        return None
    with _private_temp(live) as tmp:
        sqlitecopy.working_copy(info.path, (info.tables, info.revision), tmp, live)
        if damage is not None:
            sqlitecopy.replace_damaged(tmp, live, aside, info.path)
        elif live.exists():
            plan = replace(plan, keep_as=sqlitecopy.copy_into(tmp, live, aside, info.path, target))
        else:
            sqlitecopy.put_new(tmp, live, info.path)
    return _restored(info, plan, engine, url, user)


def _aside_name(live: Path) -> Path:
    """Where the replaced database is kept: NAME.replaced-YYYYMMDD-HHMMSS, never one in use
    (nor its -wal, -shm or -journal)."""
    stamp = dt.datetime.now(ENGLAND)  # real time: when it was replaced
    base = f"{live.name}.replaced-{stamp:%Y%m%d-%H%M%S}"
    aside, n = live.with_name(base), 1
    while any(Path(f"{aside}{s}").exists() for s in ("", *SIDE_FILES)):
        n += 1
        aside = live.with_name(f"{base}-{n}")
    return aside


def _restore_postgresql(
    info: BackupInfo,
    engine: sa.Engine,
    url: str,
    user: str,
    confirm: Callable[[RestorePlan], bool] | None,
) -> RestoreReport | None:
    with engine.connect() as conn:
        existing = sa.inspect(conn).get_table_names()
    if existing:
        fresh = pgdump.libpq_url(engine.url, database="formtool_restored")
        raise BackupError(
            f"{masked(url)} already holds a database, and restore never overwrites one on "
            "PostgreSQL: create an empty database (createdb --owner=OWNER formtool_restored), "
            f"run formtool restore {info.path} --db '{fresh}', check it with formtool status "
            "--db on it, then stop formtool serve and point FORMTOOL_DB at it. Nothing was "
            "changed."
        )
    plan = RestorePlan(info, masked(url), None, ())
    if confirm is not None and not confirm(plan):
        return None
    pgdump.restore_into(engine, info.path)
    try:
        with transaction(engine) as conn:
            tables = table_rows(conn)
            if tables != info.tables:
                raise BackupError(
                    f"{plan.target} does not hold what {info.path} does after pg_restore "
                    f"({_differences(info.tables, tables)}); empty the database and restore "
                    "again."
                )
            if server_heartbeat.name in tables:  # a server running at backup time is not now
                conn.execute(server_heartbeat.delete())
    except sa.exc.SQLAlchemyError as exc:
        raise _restored_but(info, plan, "checking it", exc) from None
    return _restored(info, plan, engine, url, user)


def _restored(
    info: BackupInfo, plan: RestorePlan, engine: sa.Engine, url: str, user: str
) -> RestoreReport:
    """After the swap: open (and so upgrade) the restored database, say how far back it goes,
    and record the restore in its access log."""
    engine.dispose()
    try:
        db = open_store(url)
        with db.engine.connect() as conn:
            latest = max(
                (
                    at
                    for column in (access_log.c.at, events.c.at, returns.c.imported_at)
                    if (at := conn.execute(sa.select(sa.func.max(column))).scalar()) is not None
                ),
                default=None,
            )
        kept = f"; the replaced database kept as {plan.keep_as}" if plan.keep_as else ""
        detail = f"from {info.path.absolute()} (schema {info.revision}, {info.rows} rows){kept}"
        _log(db.engine, user, "database restored", detail)
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        raise _restored_but(info, plan, "opening it", exc) from None
    return RestoreReport(plan, HEAD, latest)


def _restored_but(info: BackupInfo, plan: RestorePlan, doing: str, exc: Exception) -> BackupError:
    """The restore is done, and what came after it failed: say so, and where everything is."""
    kept = f"; the database it replaced is kept as {plan.keep_as}" if plan.keep_as else ""
    reason = re.sub(r"\s+", " ", str(getattr(exc, "orig", None) or exc)).strip().rstrip(".")
    return BackupError(
        f"{plan.target} now holds the backup {info.path}{kept}, but {doing} failed: {reason}. "
        "Check it with formtool status --db before using it."
    )
