"""Opening the store: database URLs, engines, migrations under a lock, one-line errors.

SQLite file by default (`./formtool.db`, no set-up); PostgreSQL (`pip install
'formtool[postgres]'`) for a team. The schema is created and upgraded only by the Alembic
migrations in formtool/migrations, under a lock, so any number of processes may open a fresh or
old database at once. On SQLite, write transactions start with BEGIN IMMEDIATE (the database
write lock) and reads with a plain BEGIN, so readers never wait for writers (WAL).

A command that only reads opens the store with mode="read": a missing SQLite file is refused
(a mistyped --db never becomes a new database), and a read-only file or folder is opened
read-only (`mode=ro`, or `immutable=1` when its folder cannot hold the -wal and -shm files),
without migrations. Either mode refuses an empty file (a copy that failed), and a write that
waits for another process's lock says so after LOCK_NOTICE_SECONDS. Every failure is told in
one line saying what was saved: each write transaction is counted in the current `Work` (a
command, or a web request), and events are recorded under its user when a caller names none.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy import event

from formtool.errors import FormtoolError

if TYPE_CHECKING:
    from formtool.store.facade import Store

DEFAULT_URL = "sqlite:///formtool.db"
ENV_VAR = "FORMTOOL_DB"
_WRITE = "formtool_write"  # execution option marking a write transaction

#: SQLite: how long a write waits for another process's write lock in all, and after how long
#: it says it is waiting (module values, so tests can make them short).
LOCK_WAIT_SECONDS = 60.0
LOCK_NOTICE_SECONDS = 2.0
#: An empty file is looked at again after this long before it is refused: another formtool
#: may be creating it this instant (SQLite writes the first page right after the file).
EMPTY_RECHECK_SECONDS = 0.1

Mode = Literal["read", "write"]
Notify = Callable[[str], None]


class StoreError(FormtoolError):
    """The database cannot be opened, upgraded or used; the message is one line."""


def database_url(option: str | None = None) -> str:
    """--db, else $FORMTOOL_DB, else ./formtool.db. A bare path means an SQLite file, and
    `postgresql://` means formtool's PostgreSQL driver (psycopg 3)."""
    url = option or os.environ.get(ENV_VAR) or DEFAULT_URL
    if "://" not in url:
        return f"sqlite:///{url}"
    return re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", url)


def masked(url: str | sa.URL) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", str(url))
    return parsed.render_as_string(hide_password=True)


def now() -> dt.datetime:
    """The time stored in the database: UTC, naive, whole seconds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)  # real time


def _one_line(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip().rstrip(".")


# --- who is acting, and what this command or request has saved -----------------------------


def os_user() -> str:
    """The operating-system login as events and the access log name it: `cli:LOGIN`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@dataclass
class Work:
    """One command or web request: who acts (recorded with every event whose caller names
    nobody), how many write transactions it committed, and whether the last one failed while
    committing (on a server that went away, it may or may not have been saved)."""

    user: str
    saved: int = 0
    in_doubt: bool = False


_WORK: ContextVar[Work | None] = ContextVar("formtool_work", default=None)


def current_work() -> Work:
    """This command's or request's `Work`; one for the operating-system user if none was
    started (library use)."""
    work = _WORK.get()
    if work is None:
        work = Work(os_user())
        _WORK.set(work)
    return work


def start_work(user: str) -> Work:
    """A new `Work` for the rest of this context: a command starts one as it opens the store."""
    work = Work(user)
    _WORK.set(work)
    return work


@contextmanager
def acting_as(user: str) -> Iterator[Work]:
    """A `Work` for `user` for the length of the block (a web request)."""
    work = Work(user)
    token = _WORK.set(work)
    try:
        yield work
    finally:
        _WORK.reset(token)


def actor() -> str:
    """Who is acting now (see `Work`)."""
    return current_work().user


# --- what went wrong, in one line ------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A database error told plainly: a title (a web page's heading), which database, the
    database's own reason and what to do. `outage`: the database is unreachable, full, damaged,
    busy or read-only (the web answers 503), not a mistake in formtool's use of it (500)."""

    title: str
    where: str
    reason: str
    fix: str
    outage: bool

    def text(self) -> str:
        return f"The database {self.where} failed: {self.reason}. {self.fix}."


def _sqlite_file(url: str | sa.URL) -> str | None:
    """The SQLite file a URL names (None for PostgreSQL or an in-memory database)."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return unquote(database.removeprefix("file:")) if database.startswith("file:") else database


def shown(url: str | sa.URL) -> str:
    """The database as messages name it: an SQLite file's absolute path, else the URL with
    any password masked."""
    file = _sqlite_file(url)
    return str(Path(file).absolute()) if file else masked(url)


_FULL = ("database or disk is full", "no space left on device", "disk full")
_READ_ONLY = ("readonly database", "read-only", "read only")
RESTORE = "restore it from a backup with `formtool restore BACKUP`"


def failure(exc: BaseException, url: str | sa.URL) -> Failure:
    """What a database error means for the person at the keyboard (password masked)."""
    reason = _one_line(getattr(exc, "orig", None) or exc)
    said = reason.lower()
    file = _sqlite_file(url)
    where = shown(url)
    unreachable = isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False)
    )

    def told(title: str, fix: str, outage: bool = True) -> Failure:
        return Failure(title, where, reason, fix, outage)

    if "database disk image is malformed" in said:
        return told("The database is damaged", f"It is damaged: {RESTORE}")
    if "file is not a database" in said:
        return told(
            "This is not a formtool database",
            f"Check --db or FORMTOOL_DB; if it is your database it is damaged: {RESTORE}",
        )
    if any(f in said for f in _FULL):
        return told(
            "The database's disk is full",
            "The disk that holds it is full: free some space, then try again",
        )
    if file is None:
        return told(
            "The database is unreachable" if unreachable else "The database refused",
            "Check --db or FORMTOOL_DB and that the database server is running",
            unreachable or isinstance(exc, sa.exc.TimeoutError),
        )
    if any(r in said for r in _READ_ONLY):
        return told(
            "The database is read-only",
            "Its file or folder may not be written here: copy it to a folder you may write "
            "to, or use a command that only reads (status, pack pmu)",
        )
    if "locked" in said or "busy" in said:
        return told(
            "The database is busy",
            f"Another formtool kept it busy for over {LOCK_WAIT_SECONDS:g} seconds: wait "
            "for it to finish, then try again",
        )
    return told(
        "The database cannot be read" if unreachable else "The database refused",
        "Check --db or FORMTOOL_DB, and the disk or network drive that holds the file",
        unreachable,
    )


def saved_so_far(work: Work) -> str:
    """What a command had saved when it failed, as a sentence that is true."""
    if work.saved == 0 and not work.in_doubt:
        return "Nothing was changed by this command."
    kept = (
        f"{work.saved} change(s) this command made before the failure were saved, each complete"
        if work.saved
        else "Nothing before it was saved"
    )
    last = (
        "the change it was making may or may not have been saved (the database stopped "
        "answering while saving it)"
        if work.in_doubt
        else "the change it was making was not saved"
    )
    return f"{kept}; {last}."


def describe(exc: BaseException, url: str | sa.URL, work: Work | None = None) -> str:
    """A database error as formtool's one-line message, password masked; with the command's
    `Work`, it also says what the command had saved."""
    told = failure(exc, url).text()
    return f"{told} {saved_so_far(work)}" if work is not None else told


# --- engines -------------------------------------------------------------------------------


@dataclass
class _Notices:
    """Where an engine's notices go (the command line's standard error), said once each."""

    notify: Notify | None = None
    waited: bool = False


_NOTICES: dict[int, _Notices] = {}
_NOTICES_LOCK = threading.Lock()


def _notice(engine: sa.Engine, text: str) -> None:
    with _NOTICES_LOCK:
        notices = _NOTICES.get(id(engine))
        if notices is None or notices.notify is None or notices.waited:
            return
        notices.waited = True
    notices.notify(text)


def _busy_timeout(connection: sa.Connection, seconds: float) -> None:
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None  # a connection in use has one
    dbapi.execute(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")


def _locked(exc: sa.exc.OperationalError) -> bool:
    said = str(exc.orig).lower()
    return "locked" in said or "busy" in said


def _sqlite_locking(engine: sa.Engine, read_only: bool) -> None:
    """WAL, a generous busy timeout, and BEGIN IMMEDIATE for writes only. A write that waits
    for another process's lock longer than LOCK_NOTICE_SECONDS says so (once), then waits on
    to LOCK_WAIT_SECONDS in all."""
    file = _sqlite_file(engine.url)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the begin event below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")
        if not read_only:  # a read-only file keeps the journal mode it was made with
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        if not connection.get_execution_options().get(_WRITE):
            connection.exec_driver_sql("BEGIN")
            return
        first = min(LOCK_NOTICE_SECONDS, LOCK_WAIT_SECONDS)
        _busy_timeout(connection, first)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except sa.exc.OperationalError as exc:
            if not _locked(exc) or first >= LOCK_WAIT_SECONDS:
                raise
        finally:
            _busy_timeout(connection, LOCK_WAIT_SECONDS)
        _notice(engine, f"Waiting for another formtool to finish writing to {file}…")
        _busy_timeout(connection, LOCK_WAIT_SECONDS - first)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            _busy_timeout(connection, LOCK_WAIT_SECONDS)


def engine_for(url: str) -> sa.Engine:
    """One engine per database per process. A relative SQLite path is made absolute first:
    the same text names another file once the process changes folder."""
    return _engine_for(_absolute_sqlite(url))


def _absolute_sqlite(url: str) -> str:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return url  # _engine_for says what is wrong with it
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    absolute = parsed.set(database=str(Path(database).resolve()))
    return absolute.render_as_string(hide_password=False)


@cache
def _engine_for(url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except ImportError:
        raise StoreError(
            f"Cannot use database URL '{masked(url)}': its driver is not installed. For "
            "PostgreSQL run pip install 'formtool[postgres]'."
        ) from None
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"Cannot use database URL '{masked(url)}': {_one_line(exc)}. Use a file path, "
            "sqlite:///formtool.db or postgresql://user@host/database."
        ) from None
    if engine.dialect.name == "sqlite":
        read_only = engine.url.query.get("mode") == "ro"
        database = engine.url.database
        if database and database != ":memory:" and not read_only:
            Path(database.removeprefix("file:")).parent.mkdir(parents=True, exist_ok=True)
        _sqlite_locking(engine, read_only)
    return engine


def migrations_dir() -> str:
    return str(resources.files("formtool.store") / "migrations")


def lock(conn: sa.Connection, name: str) -> None:
    """Serialise a named piece of work across processes until the transaction ends.

    PostgreSQL: a transaction-level advisory lock. SQLite: a write transaction already holds
    the database's write lock, so there is nothing more to take.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _alembic_config(connection: sa.Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations_dir())
    config.attributes["connection"] = connection
    return config


# The newest migration. Checked against migrations/versions by a test, so an up-to-date
# database opens without loading alembic's script machinery (most of a CLI call's start-up).
HEAD = "0018"


def _stamped_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _revisions() -> tuple[str, set[str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return script.get_current_head() or "", {r.revision for r in script.walk_revisions()}


def known_revisions() -> tuple[str, set[str]]:
    """The migration head and every schema revision this formtool knows (loads Alembic's
    scripts, so only for a revision that is not HEAD)."""
    return _revisions()


def _current_revision(conn: sa.Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _newer(url: str, current: str, head: str) -> StoreError:
    return StoreError(
        f"The database {masked(url)} was made by a newer formtool (schema {current}; this "
        f"formtool knows up to {head}). Upgrade formtool before using this database."
    )


def _upgrade(engine: sa.Engine, url: str, notify: Notify | None = None) -> None:
    with engine.connect() as conn:
        current = _stamped_revision(conn)
    if current == HEAD:
        return  # the usual case: no lock, no write, no alembic
    before = _held_versions(engine) if current is not None else set()
    head, known = _revisions()
    if current is not None and current not in known:
        raise _newer(url, current, head)
    from alembic import command

    sqlite = engine.dialect.name == "sqlite"
    with engine.execution_options(**{_WRITE: True}).connect() as conn:
        if sqlite:  # batch migrations copy tables; SQLite ignores this pragma mid-transaction
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                lock(conn, "formtool migrations")
                if _current_revision(conn) == head:
                    return  # another process upgraded it while we waited for the lock
                command.upgrade(_alembic_config(conn), "head")
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StoreError(
                        f"Upgrading {masked(url)} would break its references; "
                        "nothing was changed. Restore it from a backup."
                    )
        finally:
            if sqlite:
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
    if current is not None and notify is not None:
        for line in _upgrade_report(engine, url, current, before):
            notify(line)


def _held_versions(engine: sa.Engine) -> set[tuple[str, int, str]]:
    """(form, version, digest) of every definition snapshot (none before schema 0004)."""
    from formtool.store.forms import snapshots  # it needs this module's clock

    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("form_versions"):
            return set()
        return {(s.form_id, s.version, s.digest) for s in snapshots(conn)}


def _upgrade_report(
    engine: sa.Engine, url: str, was: str, before: set[tuple[str, int, str]]
) -> list[str]:
    """What an upgrade did to what generated the audits: definitions it filled in (and from
    where), and audits whose form version is still not held."""
    from formtool.definitions.history import shipped_definition
    from formtool.store.catalog import unknown_versions

    lines = [f"Upgraded the database {masked(url)} from schema {was} to {HEAD}."]
    for form_id, version, digest in sorted(_held_versions(engine) - before):
        shipped = shipped_definition(form_id, version)
        source = (
            "as formtool shipped it"
            if shipped is not None and shipped.digest == digest
            else "from the team's forms folder: check it is the version that made them"
        )
        lines.append(f"  Kept the definition of {form_id} v{version} for its audits, {source}.")
    for (form_id, version), ids in sorted(unknown_versions(engine).items()):
        lines.append(
            f"  {len(ids)} audit(s) of {form_id} v{version} cannot be read, packed or counted: "
            f"this database does not hold that version ({', '.join(ids[:5])}"
            f"{', ...' if len(ids) > 5 else ''}). Put that definition in the team's forms "
            "folder and run `formtool forms check --db` to confirm."
        )
    return lines


def _check_read_only(engine: sa.Engine, url: str, file: Path) -> None:
    """A read-only database is used as it is: refused when its schema is not this
    formtool's (upgrading it would write)."""
    with engine.connect() as conn:
        current = _stamped_revision(conn)
    if current == HEAD:
        return
    if current is None:
        raise StoreError(
            f"No formtool database in {file}: it holds no formtool tables. Check --db or "
            "FORMTOOL_DB."
        )
    head, known = _revisions()
    if current not in known:
        raise _newer(url, current, head)
    raise StoreError(
        f"The database {file} was made by an older formtool (schema {current}) and is "
        "read-only here, so it cannot be upgraded. Run any formtool command on it once "
        "where it may be written (that upgrades it), then use it here."
    )


# --- opening ----------------------------------------------------------------------------------


def _writable(path: Path) -> bool:
    """May formtool write here? Read-only when the system says so, and also when nobody has
    write permission (a file marked read-only is treated as such even by an administrator,
    who could write it anyway)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(stat.S_IMODE(mode) & 0o222)


def _empty_file(path: Path) -> bool:
    """A 0-byte file; one that stays so for a moment (a formtool creating it writes its
    first page at once)."""
    for pause in (0.0, EMPTY_RECHECK_SECONDS):
        time.sleep(pause)
        try:
            if path.stat().st_size > 0:
                return False
        except FileNotFoundError:
            return False
    return True


def _read_only_url(file: Path) -> str:
    """The SQLite URL opening `file` read-only: `mode=ro`, and `immutable=1` when its folder
    cannot hold the -wal and -shm files (then there must be no unsaved -wal to read)."""
    wal = Path(f"{file}-wal")
    has_wal = wal.exists() and wal.stat().st_size > 0
    immutable = not has_wal and not _writable(file.parent)
    query = {"mode": "ro", **({"immutable": "1"} if immutable else {}), "uri": "true"}
    uri = sa.URL.create("sqlite", database=f"file:{quote(str(file))}", query=query)
    return uri.render_as_string(hide_password=False)  # any '?', '#' or '%' in the path escaped


def _sqlite_open(resolved: str, mode: Mode, notify: Notify | None) -> tuple[str, Path | None]:
    """Check the SQLite file before opening it: the URL to open and, when it is read-only
    and only read, the file (None: open it as usual)."""
    name = _sqlite_file(resolved)
    if name is None or resolved.split("///", 1)[-1].startswith("file:"):
        return resolved, None  # in memory, or a URI the caller wrote: used as given
    file = Path(name).resolve()
    if file.is_dir():
        raise StoreError(f"[{file}] is a folder, not a database. Check --db or FORMTOOL_DB.")
    if not file.exists():
        if mode == "read":
            raise StoreError(
                f"No database at {file}; check --db or FORMTOOL_DB (a command that only "
                "reads never creates one)."
            )
        if notify is not None:
            notify(f"Creating a new database at {file}")
        return resolved, None
    if _empty_file(file):
        raise StoreError(
            f"[{file}] is an empty file (0 bytes), not a formtool database: it may be a copy "
            "that failed. Restore it from a backup (`formtool restore BACKUP`), or delete it "
            "to start a new database."
        )
    if _writable(file) and _writable(file.parent):
        return resolved, None
    if mode == "write":
        raise StoreError(
            f"The database {file} is read-only here (its file or folder may not be written), "
            "and this command changes it. Copy it to a folder you may write to, or use a "
            "command that only reads (status, pack pmu)."
        )
    return _read_only_url(file), file


def open_store(url: str | None = None, mode: Mode = "write", notify: Notify | None = None) -> Store:
    """The store on an up-to-date schema (runs pending migrations under a lock).

    mode="read" (a command that only reads): a missing SQLite file is refused, and a
    read-only one is opened read-only as it is (`Store.read_only`). mode="write": a missing
    SQLite file becomes a new database, said through `notify`. Either way an empty file is
    refused (it may be a copy that failed). `notify` also hears, once, that a write is
    waiting for another process's lock.
    """
    from formtool.store.facade import Store

    resolved = database_url(url)
    opened, read_only_file = _sqlite_open(resolved, mode, notify)
    engine = engine_for(opened)
    with _NOTICES_LOCK:
        _NOTICES[id(engine)] = _Notices(notify)
    try:
        if read_only_file is not None:
            _check_read_only(engine, resolved, read_only_file)
        else:
            _upgrade(engine, resolved, notify)
    except sa.exc.SQLAlchemyError as exc:  # unreachable server, locked or not-a-database file
        told = failure(exc, resolved)
        raise StoreError(
            f"Cannot open the database {told.where}: {told.reason}. {told.fix}."
        ) from None
    return Store(engine, read_only=read_only_file is not None)


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction: committed at the end, rolled back on any error. Counted in the
    current `Work`; a commit the server did not confirm is marked as in doubt."""
    work = current_work()
    committing = False
    try:
        with engine.execution_options(**{_WRITE: True}).begin() as connection:
            yield connection
            committing = True
    except sa.exc.DBAPIError:
        if committing and engine.dialect.name != "sqlite":  # SQLite undoes a failed commit
            work.in_doubt = True
        raise
    work.saved += 1
    work.in_doubt = False
