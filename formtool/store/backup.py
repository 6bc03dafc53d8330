"""Backups a QA officer can take while `formtool serve` runs, and restore.

- SQLite: the online backup API copies one consistent snapshot of the database, the -wal file
  included, while others go on writing; the rows are counted inside that same snapshot.
- PostgreSQL: `pg_dump --format=custom` on a snapshot formtool exports, its rows counted in it.

A backup is written 0600 (it holds children's data, password hashes and keys) under a
temporary name beside the target, verified (SQLite: integrity check; PostgreSQL: pg_restore
reads the dump back; both: every table's rows equal the database's), recorded in the access
log, and only then renamed into place.

A restore never copies over a live file. SQLite: the backup is checked (integrity, a schema
revision this formtool knows), copied to a temporary file beside the database, the database
being replaced is taken for this process alone (refused while a server's heartbeat is fresh or
any other program has it open) and kept aside as `NAME.replaced-YYYYMMDD-HHMMSS` with its
-wal/-shm files, then the copy is renamed into place. PostgreSQL: restore only fills an empty
database (`pg_restore --no-owner --single-transaction`), so nothing is ever dropped; the
officer points FORMTOOL_DB at it once `formtool status` shows it right.

A running `formtool serve` keeps one `server_heartbeat` row fresh (every 30 s; removed when it
stops cleanly): that is how restore knows a server holds the database.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formtool.clock import ENGLAND
from formtool.store import access, pgdump
from formtool.store.engine import (
    HEAD,
    _revisions,
    database_url,
    engine_for,
    masked,
    now,
    open_store,
    transaction,
)
from formtool.store.pgdump import BackupError
from formtool.store.schema import access_log, events, returns, server_heartbeat

#: How long a server's heartbeat counts as running (serve refreshes it every 30 s).
FRESH = dt.timedelta(minutes=2)
#: The names `formtool backup FOLDER` gives: formtool-2026-12-05-0300.db (.dump: PostgreSQL).
SUFFIXES = {"sqlite": ".db", "postgresql": ".dump"}
_NAMED = re.compile(r"^formtool-\d{4}-\d\d-\d\d-\d{4}(?:-\d+)?\.(?:db|dump)$")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_MAGIC = b"PGDMP"
_SIDE_FILES = ("-wal", "-shm", "-journal")


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


# --- the running server's heartbeat ------------------------------------------------------


def beat(conn: sa.Connection, server: str, host: str, pid: int) -> None:
    """Say that server `server` (host, process) is running now; forget servers not seen for
    a day (stopped without a clean shutdown)."""
    at = now()
    h = server_heartbeat.c
    updated = conn.execute(
        server_heartbeat.update().where(h.server == server).values(seen_at=at)
    ).rowcount
    if not updated:
        conn.execute(
            server_heartbeat.insert().values(
                server=server, host=host[:200], pid=pid, started_at=at, seen_at=at
            )
        )
    conn.execute(server_heartbeat.delete().where(h.seen_at < at - dt.timedelta(days=1)))


def stopped(conn: sa.Connection, server: str) -> None:
    conn.execute(server_heartbeat.delete().where(server_heartbeat.c.server == server))


def running_servers(conn: sa.Connection) -> list[Any]:
    """The servers seen within FRESH: (server, host, pid, started_at, seen_at)."""
    h = server_heartbeat.c
    query = sa.select(server_heartbeat).where(h.seen_at >= now() - FRESH)
    return list(conn.execute(query.order_by(h.started_at, h.host, h.pid)).all())


def _refuse_running(servers: list[Any], target: str) -> None:
    if not servers:
        return
    first = servers[0]
    ago = max(0, int((now() - first.seen_at).total_seconds()))
    more = f" (and {len(servers) - 1} more)" if len(servers) > 1 else ""
    raise BackupError(
        f"A formtool server is using {target}: on {first.host}, process {first.pid}, running "
        f"since {first.started_at:%Y-%m-%d %H:%M} UTC, last seen {ago} s ago{more}. Stop it "
        "(Ctrl+C where it runs, or stop its service), then run restore again; a server that "
        f"stopped without a clean shutdown counts for {FRESH.seconds // 60} minutes after it "
        "was last seen. Nothing was changed."
    )


# --- taking a backup ---------------------------------------------------------------------


def backup_database(
    url: str | None, target: Path, user: str, keep: int | None = None
) -> BackupReport:
    """`formtool backup`: a verified copy of the database at `url` (as --db gives it). The
    database is not upgraded first, so a backup taken before an upgrade holds it as it was."""
    resolved = database_url(url)
    engine = engine_for(resolved)
    if engine.dialect.name == "sqlite":
        _sqlite_file(engine, must_exist=True)
    return take_backup(engine, target, user, keep)


def take_backup(
    engine: sa.Engine, target: Path, user: str, keep: int | None = None
) -> BackupReport:
    """A verified backup of the engine's database at `target`: a file, or a folder to put a
    dated one in (then `keep` leaves only the newest `keep` backups there)."""
    backend = engine.dialect.name
    target = target.absolute()  # as the access log names it
    if backend not in SUFFIXES:
        raise BackupError(f"formtool cannot back up a {backend} database; use its own tools.")
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
        if backend == "sqlite":
            tables, revision = _sqlite_snapshot(_sqlite_file(engine, must_exist=True), tmp)
            method = "the SQLite online backup (safe while formtool serve runs)"
            found, found_revision = _verify_sqlite(tmp)
        else:
            pg_dump, version = pgdump.program("pg_dump", engine)
            tables, revision = pgdump.dump(engine, pg_dump, tmp, final)
            _fsync(tmp)
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
        _sync_folder(final.parent)
    removed = _keep_newest(final.parent, keep) if keep is not None else ()
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
        for leftover in (tmp, *(Path(f"{tmp}{s}") for s in _SIDE_FILES)):
            leftover.unlink(missing_ok=True)


def _sqlite_file(engine: sa.Engine, must_exist: bool) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(
            f"{masked(engine.url)} is not an SQLite file; give --db the path of the file."
        )
    path = Path(database)
    if must_exist and not path.is_file():
        raise BackupError(
            f"[{path}] there is no database here. Check --db or FORMTOOL_DB; nothing was changed."
        )
    return path


def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_counts(conn: sqlite3.Connection) -> tuple[dict[str, int], str]:
    """Rows per table, and the schema revision ("" if the file has none)."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    tables = {n: conn.execute(f"SELECT count(*) FROM {_quote(n)}").fetchone()[0] for n in names}
    revision = ""
    if "alembic_version" in tables:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else ""
    return tables, revision


def _sqlite_snapshot(source: Path, tmp: Path) -> tuple[dict[str, int], str]:
    """Copy one snapshot of `source` into `tmp` with the online backup API; its rows per table
    and revision, counted in that same snapshot (a read transaction held across the copy)."""
    src = sqlite3.connect(_uri(source, "rw"), uri=True, timeout=60, isolation_level=None)
    try:
        src.execute("BEGIN")
        tables, revision = _sqlite_counts(src)  # the first read fixes the snapshot
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
        src.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"[{source}] cannot be backed up: {exc}. If the database is damaged, restore the "
            "last good backup with `formtool restore`."
        ) from None
    finally:
        src.close()
    _fsync(tmp)
    return tables, revision


def _verify_sqlite(path: Path, shown: Path | None = None) -> tuple[dict[str, int], str]:
    """Integrity check, then rows per table and revision; BackupError if damaged."""
    where = shown or path
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, isolation_level=None)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(
                    f"[{where}] is damaged (integrity check: {problems[0]}): it cannot be used. "
                    "Use another backup."
                )
            return _sqlite_counts(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"[{where}] is damaged ({exc}): it cannot be used. Use another backup."
        ) from None


def _log(engine: sa.Engine, user: str, action: str, detail: str) -> bool:
    """Record a backup or restore in the access log; False if the database has none yet."""
    with transaction(engine) as conn:
        if not sa.inspect(conn).has_table(access_log.name):
            return False
        access.add_entry(conn, user, action, address="command line", detail=detail)
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    if os.name == "posix":
        _fsync(folder)


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
        tables, revision = _verify_sqlite(path)
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
    head, known = _revisions()
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
    live = _sqlite_file(engine, must_exist=False).absolute()
    if live.exists() and live.samefile(info.path):
        raise BackupError(f"[{info.path}] is the database itself; give a backup of it.")
    engine.dispose()  # this process's idle connections to the file being replaced
    notes = []
    problem = _read_servers(live, masked(url))
    if problem:
        notes.append(f"The database being replaced cannot be read ({problem}); it is kept.")
    aside = _aside_name(live)
    plan = RestorePlan(info, masked(url), aside if live.exists() else None, tuple(notes))
    if confirm is not None and not confirm(plan):
        return None
    with _private_temp(live) as tmp:
        src = sqlite3.connect(_uri(info.path, "ro"), uri=True)
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        tables, revision = _verify_sqlite(tmp, shown=info.path)
        if (tables, revision) != (info.tables, info.revision):
            raise BackupError(
                f"[{info.path}] changed while it was being restored; nothing was changed."
            )
        copy = sqlite3.connect(tmp, isolation_level=None)
        try:  # a server running when the backup was taken is not running in it
            if server_heartbeat.name in tables:
                copy.execute(f"DELETE FROM {server_heartbeat.name}")
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
        _fsync(tmp)
        with _held_alone(live, masked(url)):
            for suffix in ("", *_SIDE_FILES):
                side = Path(f"{live}{suffix}")
                if side.exists():
                    os.replace(side, Path(f"{aside}{suffix}"))
                    os.chmod(Path(f"{aside}{suffix}"), 0o600)
            os.replace(tmp, live)
            _sync_folder(live.parent)
    return _restored(info, plan, engine, url, user)


def _aside_name(live: Path) -> Path:
    """Where the replaced database is kept: NAME.replaced-YYYYMMDD-HHMMSS, never one in use
    (nor its -wal, -shm or -journal)."""
    stamp = dt.datetime.now(ENGLAND)  # real time: when it was replaced
    base = f"{live.name}.replaced-{stamp:%Y%m%d-%H%M%S}"
    aside, n = live.with_name(base), 1
    while any(Path(f"{aside}{s}").exists() for s in ("", *_SIDE_FILES)):
        n += 1
        aside = live.with_name(f"{base}-{n}")
    return aside


def _read_servers(live: Path, target: str) -> str:
    """Refuse while a server's heartbeat in the live database is fresh; the reason the
    database cannot be read, if it cannot ("" when it was read, or is not there)."""
    if not live.exists():
        return ""
    try:
        conn = sqlite3.connect(_uri(live, "ro"), uri=True, timeout=5)
        try:
            _refuse_running(_sqlite_servers(conn), target)
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise _in_use(target) from None
        return str(exc)
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return ""


def _sqlite_servers(conn: sqlite3.Connection) -> list[Any]:
    known = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (server_heartbeat.name,)
    ).fetchone()
    if not known:
        return []
    found = []
    for row in conn.execute(
        f"SELECT server, host, pid, started_at, seen_at FROM {server_heartbeat.name}"
    ):
        seen = dt.datetime.fromisoformat(row[4])
        if seen >= now() - FRESH:
            found.append(_Server(row[1], row[2], dt.datetime.fromisoformat(row[3]), seen))
    return sorted(found, key=lambda s: s.started_at)


@dataclass(frozen=True)
class _Server:
    host: str
    pid: int
    started_at: dt.datetime
    seen_at: dt.datetime


def _in_use(target: str) -> BackupError:
    return BackupError(
        f"Another program has {target} open (a formtool serve, import or send, or sqlite3): "
        "stop it, then run restore again. Nothing was changed."
    )


@contextmanager
def _held_alone(live: Path, target: str) -> Iterator[None]:
    """The live SQLite database for this process alone while it is replaced (on POSIX; where
    an open file cannot be renamed, only checked): see `_take_alone`."""
    conn = _take_alone(live, target) if live.exists() else None
    try:
        if conn is not None and os.name != "posix":
            conn.close()
        yield
    finally:
        if conn is not None:
            conn.close()


def _take_alone(live: Path, target: str) -> sqlite3.Connection | None:
    """Leaving WAL mode needs every other connection closed (so one still open is refused)
    and folds the -wal file into the database file; an exclusive lock then keeps newcomers
    out, and a server's heartbeat is read once more. None for a database that cannot be read
    (damaged: there is nothing to lock; it is kept aside as it is)."""
    conn = sqlite3.connect(_uri(live, "rw"), uri=True, timeout=5, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        if mode != "delete":
            raise _in_use(target)
        conn.execute("BEGIN EXCLUSIVE")
        _refuse_running(_sqlite_servers(conn), target)
    except sqlite3.OperationalError as exc:
        conn.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise _in_use(target) from None
        return None
    except sqlite3.DatabaseError:
        conn.close()
        return None
    except BackupError:
        conn.close()
        raise
    return conn


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
    with transaction(engine) as conn:
        tables = pgdump.table_rows(conn)
        if tables != info.tables:
            raise BackupError(
                f"{plan.target} does not hold what {info.path} does after pg_restore "
                f"({_differences(info.tables, tables)}); empty the database and restore again."
            )
        if server_heartbeat.name in tables:  # a server running at backup time is not now
            conn.execute(server_heartbeat.delete())
    return _restored(info, plan, engine, url, user)


def _restored(
    info: BackupInfo, plan: RestorePlan, engine: sa.Engine, url: str, user: str
) -> RestoreReport:
    """After the swap: open (and so upgrade) the restored database, say how far back it goes,
    and record the restore in its access log."""
    engine.dispose()
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
    return RestoreReport(plan, HEAD, latest)
