"""Opening the store: database URLs, engines, migrations under a lock, one-line errors.

SQLite file by default (`./formtool.db`, no set-up); PostgreSQL (`pip install
'formtool[postgres]'`) for a team. The schema is created and upgraded only by the Alembic
migrations in formtool/migrations, under a lock, so any number of processes may open a fresh or
old database at once. On SQLite, write transactions start with BEGIN IMMEDIATE (the database
write lock) and reads with a plain BEGIN, so readers never wait for writers (WAL).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from formtool.errors import FormtoolError

if TYPE_CHECKING:
    from formtool.store.facade import Store

DEFAULT_URL = "sqlite:///formtool.db"
ENV_VAR = "FORMTOOL_DB"
_WRITE = "formtool_write"  # execution option marking a write transaction


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


def describe(exc: BaseException, url: str | sa.URL) -> str:
    """A database error as formtool's one-line message, password masked."""
    orig = getattr(exc, "orig", None) or exc
    return (
        f"The database {masked(url)} failed: {_one_line(orig)}. Check --db or FORMTOOL_DB "
        "and that the database server is running; nothing was changed by this command."
    )


def _sqlite_locking(engine: sa.Engine) -> None:
    """WAL, a generous busy timeout, and BEGIN IMMEDIATE for writes only."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the begin event below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


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
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        _sqlite_locking(engine)
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
HEAD = "0010"


def _stamped_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _revisions() -> tuple[str, set[str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return script.get_current_head() or "", {r.revision for r in script.walk_revisions()}


def _current_revision(conn: sa.Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(engine: sa.Engine, url: str) -> None:
    with engine.connect() as conn:
        current = _stamped_revision(conn)
    if current == HEAD:
        return  # the usual case: no lock, no write, no alembic
    head, known = _revisions()
    if current is not None and current not in known:
        raise StoreError(
            f"The database {masked(url)} was made by a newer formtool (schema {current}; this "
            f"formtool knows up to {head}). Upgrade formtool before using this database."
        )
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


def open_store(url: str | None = None) -> Store:
    """The store on an up-to-date schema (runs pending migrations under a lock)."""
    from formtool.store.facade import Store

    resolved = database_url(url)
    engine = engine_for(resolved)
    try:
        _upgrade(engine, resolved)
    except sa.exc.SQLAlchemyError as exc:  # unreachable server, locked or not-a-database file
        raise StoreError(
            f"Cannot open the database {masked(resolved)}: {_one_line(getattr(exc, 'orig', exc))}."
            " Check --db or FORMTOOL_DB."
        ) from None
    return Store(engine)


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction: committed at the end, rolled back on any error."""
    with engine.execution_options(**{_WRITE: True}).begin() as connection:
        yield connection
