"""SQLite's own tools for backup.py: the online backup API, to copy one consistent snapshot
out of a database others are writing to, and to copy a backup INTO a database others may have
open (see `copy_into`); and the checks that a file is a formtool database before it is opened
to write.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from formtool.store.copies import (
    SIDE_FILES,
    BackupError,
    fsync,
    not_formtool,
    schema_revision,
    table_rows,
)
from formtool.store.heartbeat import refuse_running, running_servers
from formtool.store.schema import server_heartbeat

#: SQLite: how long a restore waits for another program's write to finish before refusing.
LOCK_SECONDS = 5.0
#: SQLite's answers for a file that is not a database, or a damaged one.
_DAMAGED = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}


def check_source(path: Path) -> None:
    """Refuse to back up a file that is not there or empty, as opening the store does, before
    anything opens it (formtool's engine turns on WAL, which makes an empty file a database).
    `snapshot` refuses a database with no schema revision."""
    if not path.exists():
        raise BackupError(
            f"[{path}] there is no database here. Check --db or FORMTOOL_DB; nothing was changed."
        )
    if path.is_dir():
        raise BackupError(f"[{path}] is a folder, not a database. Check --db or FORMTOOL_DB.")
    if path.stat().st_size == 0:
        raise BackupError(
            f"[{path}] is an empty file (0 bytes), not a formtool database, so it was not "
            "backed up; it was left as it is. It may be a copy that failed: check --db or "
            "FORMTOOL_DB, or restore the database from a backup (`formtool restore BACKUP`)."
        )


def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _file(path: Path, mode: str, timeout: float = 60.0) -> sa.Engine:
    """An engine on one SQLite file that sets nothing as it connects (formtool's own engines
    turn on WAL, which writes) and keeps no connection open once it is done with it."""
    uri = _uri(path, mode)
    return sa.create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None),
        poolclass=sa.pool.NullPool,
    )


def _raw(conn: sa.Connection) -> sqlite3.Connection:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)  # an engine from _file
    return raw


def _reason(exc: BaseException) -> str:
    """The database's own words for an error, on one line."""
    return re.sub(r"\s+", " ", str(getattr(exc, "orig", None) or exc)).strip().rstrip(".")


def _damaged(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", exc), "sqlite_errorname", "") in _DAMAGED


def _fix(reason: str, again: str = "try again") -> str:
    if "full" in reason:
        return f"Free some space on the disk, then {again}."
    if "locked" in reason or "busy" in reason:
        return f"Another program kept the database busy: {again} once it has finished."
    return f"Check the disk (is it full, or was it removed?), then {again}."


def snapshot(source: Path, tmp: Path, final: Path) -> tuple[dict[str, int], str]:
    """Copy one snapshot of `source` into `tmp` with the online backup API; its rows per table
    and revision, counted in that same snapshot (a read transaction held across the copy).
    A database with no schema revision is refused before anything is copied."""
    engine = _file(source, "rw")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            tables = table_rows(conn)  # the first read fixes the snapshot
            revision = schema_revision(conn, tables)
            if not revision:
                raise not_formtool(f"[{source}]")
            copy = sqlite3.connect(tmp, isolation_level=None)
            try:
                _raw(conn).backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                copy.close()
    except (sa.exc.DBAPIError, sqlite3.Error) as exc:
        reason = _reason(exc)
        if _damaged(exc):
            raise BackupError(
                f"[{source}] is not a formtool database ({reason}), so it was not backed up; it "
                "was left as it is. Check --db or FORMTOOL_DB; if it is your database, it is "
                "damaged: restore the last good backup with `formtool restore BACKUP`."
            ) from None
        raise BackupError(
            f"[{source}] could not be backed up to {final}: {reason}. The database was not "
            f"changed, and the unfinished backup was removed. {_fix(reason)}"
        ) from None
    finally:
        engine.dispose()
    fsync(tmp)
    return tables, revision


def verify(path: Path, shown: Path | None = None) -> tuple[dict[str, int], str]:
    """Integrity check, then rows per table and revision; BackupError if damaged."""
    where = shown or path
    engine = _file(path, "ro")
    try:
        with engine.connect() as conn:
            problems = list(conn.exec_driver_sql("PRAGMA integrity_check").scalars())
            if problems != ["ok"]:
                raise BackupError(
                    f"[{where}] is damaged (integrity check: {problems[0]}): it cannot be used. "
                    "Use another backup."
                )
            tables = table_rows(conn)
            return tables, schema_revision(conn, tables)
    except sa.exc.DBAPIError as exc:
        reason = _reason(exc)
        if _damaged(exc):
            raise BackupError(
                f"[{where}] is damaged ({reason}): it cannot be used. Use another backup."
            ) from None
        raise BackupError(f"[{where}] cannot be read: {reason}. {_fix(reason)}") from None
    finally:
        engine.dispose()


def _in_use(target: str) -> BackupError:
    return BackupError(
        f"Another program is writing to {target} (a formtool import or send, or sqlite3) and "
        f"kept it busy for {LOCK_SECONDS:g} seconds: let it finish or stop it, then run restore "
        "again. Nothing was changed."
    )


def look(live: Path, target: str) -> str | None:
    """Refuse while a server's heartbeat in the live database is fresh. The reason it cannot
    be read if it is damaged or not a database at all (None: it was read). Read-only, so a
    damaged database's -wal file is never folded into it nor removed on closing."""
    engine = _file(live, "ro", LOCK_SECONDS)
    try:
        with engine.connect() as conn:
            refuse_running(running_servers(conn), target)
    except sa.exc.DBAPIError as exc:
        reason = _reason(exc)
        if _damaged(exc):
            return reason
        if "locked" in reason or "busy" in reason:
            raise _in_use(target) from None
        raise BackupError(
            f"{target} cannot be read ({reason}), so nothing was restored into it. "
            f"{_fix(reason, 'run restore again')}"
        ) from None
    finally:
        engine.dispose()
    return None


def working_copy(backup: Path, holds: tuple[dict[str, int], str], tmp: Path, live: Path) -> None:
    """The backup copied into the private file `tmp` and checked again: it must still hold
    what it held when it was inspected (rows per table, revision). Its heartbeats are removed:
    no server that ran when it was taken runs now."""
    try:
        source = sqlite3.connect(_uri(backup, "ro"), uri=True)
        copy = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        tables, revision = verify(tmp, shown=backup)
        if (tables, revision) != holds:
            raise BackupError(
                f"[{backup}] changed while it was being restored; nothing was changed."
            )
        copy = sqlite3.connect(tmp, isolation_level=None)
        try:
            if server_heartbeat.name in tables:
                copy.execute(f"DELETE FROM {server_heartbeat.name}")
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
        fsync(tmp)
    except (sqlite3.Error, OSError) as exc:
        reason = _reason(exc)
        raise BackupError(
            f"Restoring {backup} stopped while copying it beside the database: {reason}. "
            f"Nothing was changed: {live} is as it was, and the unfinished copy was removed. "
            f"{_fix(reason, 'run restore again')}"
        ) from None


def copy_into(tmp: Path, live: Path, aside: Path, backup: Path, target: str) -> Path | None:
    """Copy the checked `tmp` INTO the live database with the online backup API, the database
    it replaces copied to `aside` first: where it was kept (None: it was empty).

    Why this is safe with other programs holding the database open (SQLite's documentation of
    sqlite3_backup_step and _finish): from its first step to its last, the copy holds a write
    transaction on the destination (an exclusive one) and commits it once, through the
    destination's own -wal file or rollback journal, so other connections see the database as
    it was or as restored, never part of each; a copy that fails or is stopped is rolled back
    by backup_finish, and a crash part-way is undone as any transaction is. It changes the
    schema cookie, so other connections read the new schema. A writer that holds the database
    longer than LOCK_SECONDS makes a step answer SQLITE_BUSY: refused. No file is renamed, so
    the live file keeps its inode, mode and owner. In WAL mode source and destination must
    have the same page size, so the copy is given the live one's.

    The copy aside is exactly what the restore replaces, and a server's heartbeat is read in
    it once more: in WAL mode readers go on reading the last committed database while the
    copy holds its lock, so after the first page (a formtool database has many), when no other
    write can come, it is read there. In rollback-journal mode (or an empty file) readers wait
    for that lock, so it is copied before, and after the first page the file's header, which
    every commit changes, must be as it was then."""
    at = ["the lock"]  # the stage reached: the lock, the copy aside, the copy in
    made: list[Path] = []  # the copy aside, once written
    checked: list[bool] = []
    into = sqlite3.connect(_uri(live, "rw"), uri=True, timeout=LOCK_SECONDS, isolation_level=None)
    copy = sqlite3.connect(tmp, isolation_level=None)

    try:
        wal = into.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        header = b""
        if not wal:
            at[0] = "aside"
            with _reading(live) as conn:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()  # locked
                header = _header(live)  # so what the header says is what is copied
                made.extend(_copy_aside(conn, aside))
            at[0] = "the lock"

        def step(status: int, remaining: int, pages: int) -> None:
            if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _in_use(target)
            if checked:
                return
            at[0] = "aside"
            if wal:
                with _reading(live) as conn:
                    refuse_running(running_servers(conn), target)
                    made.extend(_copy_aside(conn, aside))
            elif _header(live) != header:
                raise BackupError(
                    f"{target} changed while {backup} was being restored into it; nothing was "
                    "changed. Run restore again."
                )
            elif made:
                with _reading(made[0], "ro") as conn:
                    refuse_running(running_servers(conn), target)
            checked.append(True)
            at[0] = "in"

        size = into.execute("PRAGMA page_size").fetchone()[0]
        if copy.execute("PRAGMA page_size").fetchone()[0] != size:
            copy.execute(f"PRAGMA page_size = {int(size)}")
            copy.execute("VACUUM")
        copy.backup(into, pages=1, progress=step)
    except BackupError:  # refused: the copy aside is not needed
        for path in made:
            _remove(path)
        raise
    except (sqlite3.Error, sa.exc.DBAPIError, OSError) as exc:
        if at[0] != "in":
            for path in made:
                _remove(path)
        raise _copy_failed(exc, at[0], backup, live, made[0] if made else aside) from None
    finally:
        into.close()
        copy.close()
    return made[0] if made else None


def _copy_failed(
    exc: BaseException, at: str, backup: Path, live: Path, aside: Path | None
) -> BackupError:
    reason = _reason(exc)
    fix = _fix(reason, "run restore again")
    if at == "in":
        also = f"; a copy of it is also kept as {aside}" if aside else ""
        return BackupError(
            f"Restoring {backup} stopped while copying it into {live}: {reason}. SQLite undid "
            f"the unfinished copy, so {live} holds the database as it was{also}. {fix}"
        )
    if at == "the lock" and _damaged(exc):
        return BackupError(
            f"[{live}] is damaged ({reason}); nothing was changed. Run restore again: a "
            "database that cannot be read is kept aside as it is."
        )
    where = f"while keeping a copy of the database it replaces as {aside}"
    return BackupError(
        f"Restoring {backup} stopped {'before copying anything' if at == 'the lock' else where}: "
        f"{reason}. Nothing was changed: {live} is as it was, and any unfinished copy was "
        f"removed. {fix}"
    )


@contextmanager
def _reading(path: Path, mode: str = "rw") -> Iterator[sa.Connection]:
    engine = _file(path, mode, LOCK_SECONDS)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _header(path: Path) -> bytes:
    """The first 100 bytes of a database file; in rollback-journal mode every commit changes
    them (the file change counter)."""
    with open(path, "rb") as file:
        return file.read(100)


def _copy_aside(conn: sa.Connection, aside: Path) -> list[Path]:
    """The database `conn` reads, as last committed (with what is in its -wal file), copied to
    `aside` (0600, one self-contained file): [aside], or [] for an empty database."""
    if not conn.exec_driver_sql("PRAGMA page_count").scalar():
        return []
    os.close(os.open(aside, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        copy = sqlite3.connect(aside, isolation_level=None)
        try:
            _raw(conn).backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
        fsync(aside)
    except BaseException:
        _remove(aside)
        raise
    return [aside]


def _remove(database: Path) -> None:
    for side in ("", *SIDE_FILES):
        Path(f"{database}{side}").unlink(missing_ok=True)


def replace_damaged(tmp: Path, live: Path, aside: Path, backup: Path) -> None:
    """A database that cannot be read is kept as it is: a second name for the file (a copy
    where the file system has no hard links), its -wal and -journal files moved beside it
    (never applied to the restored one), then one rename puts the checked copy, given the
    file's mode and owner, in its place. The path holds a file all the while."""
    try:
        try:
            os.link(live, aside)
        except FileExistsError:
            raise
        except OSError:
            _copy_file(live, aside)
        for side in ("-wal", "-journal"):
            if Path(f"{live}{side}").exists():
                os.replace(f"{live}{side}", f"{aside}{side}")
        Path(f"{live}-shm").unlink(missing_ok=True)
        was = live.stat()
        os.chmod(tmp, stat.S_IMODE(was.st_mode))
        with contextlib.suppress(OSError):  # only an administrator may give a file away
            os.chown(tmp, was.st_uid, was.st_gid)
        os.replace(tmp, live)
    except OSError as exc:
        raise BackupError(
            f"Restoring {backup} stopped while keeping the damaged database aside as {aside}: "
            f"{exc.strerror or exc}. {live} is still the damaged database (its -wal file, if "
            f"any, may be beside {aside}). {_fix(str(exc.strerror), 'run restore again')}"
        ) from None
    for side in ("", "-wal", "-journal"):
        if Path(f"{aside}{side}").exists():
            os.chmod(f"{aside}{side}", 0o600)
    fsync(live.parent)


def _copy_file(source: Path, target: Path) -> None:
    with open(source, "rb") as src:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with open(fd, "wb") as out:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())


def put_new(tmp: Path, live: Path, backup: Path) -> None:
    """Where there is no database yet: the checked copy gets the name, never over a file
    that appeared meanwhile."""
    appeared = BackupError(
        f"[{live}] appeared while {backup} was being restored into it; nothing was changed. "
        "Run restore again."
    )
    try:
        os.link(tmp, live)
    except FileExistsError:
        raise appeared from None
    except OSError:  # a file system without hard links
        if live.exists():
            raise appeared from None
        os.replace(tmp, live)
    fsync(live.parent)
