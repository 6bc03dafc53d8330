"""What backup.py, sqlitecopy.py, pgdump.py and heartbeat.py share: their error; what a
database holds (rows per table and schema revision), counted the same way in a database, an
SQLite backup and after a restore; and writing files for good.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from formtool.store.engine import StoreError

#: The files SQLite keeps beside a database while it is in use.
SIDE_FILES = ("-wal", "-shm", "-journal")


class BackupError(StoreError):
    """A backup cannot be taken, checked or restored; the message is one line with the fix."""


def table_rows(conn: sa.Connection) -> dict[str, int]:
    """Rows per table (SQLite: its own tables left out; PostgreSQL: the default schema)."""
    names = sorted(sa.inspect(conn).get_table_names())
    quoted = conn.dialect.identifier_preparer.quote
    return {
        n: int(conn.exec_driver_sql(f"SELECT count(*) FROM {quoted(n)}").scalar() or 0)
        for n in names
    }


def schema_revision(conn: sa.Connection, tables: dict[str, int]) -> str:
    """The schema revision formtool stamped, "" for none (not a formtool database)."""
    if "alembic_version" not in tables:
        return ""
    return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() or "")


def not_formtool(where: str) -> BackupError:
    """The refusal to back up a database formtool did not make (`where`: file or URL)."""
    return BackupError(
        f"{where} holds no formtool database (it has no schema revision), so it was not backed "
        "up; it was left as it is. Check --db or FORMTOOL_DB."
    )


def fsync(path: Path) -> None:
    """What was written to `path` is on the disk (a file, or a folder's names on POSIX)."""
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
