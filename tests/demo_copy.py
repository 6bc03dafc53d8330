"""The demo's database on either backend, for tests that change it: a private SQLite copy of
the file, or every row copied into a new PostgreSQL database at the current schema (the
serial ids moved on past the copied ones). Cheaper than a second demo run and the same data,
so a test of retention or erasure sees real returns, answers, concerns and access-log entries.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa

from formtool import store
from formtool.store.schema import metadata, stored_files

#: Tables with their own data, in an order that satisfies every foreign key.
TABLES = [t for t in metadata.sorted_tables if t.name != "access_log_purging"]


def demo_database(demo_db: Path, backend: str, tmp: Path, pg_server: str | None = None) -> str:
    """A URL of a private copy of the demo's database `demo_db` on `backend`, whose tracked
    files are private copies too (under `tmp`/files), so removing them leaves the shared
    demo's files alone."""
    if backend == "sqlite":
        copy = tmp / "demo.db"
        shutil.copy2(demo_db, copy)
        url = f"sqlite:///{copy}"
    else:
        url = _on_postgresql(demo_db, pg_server)
    _own_files(url, tmp / "files")
    return url


def _own_files(url: str, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    with store.engine_for(url).begin() as conn:
        for row in conn.execute(sa.select(stored_files.c.id, stored_files.c.path)).all():
            own = folder / f"{row.id}-{Path(row.path).name}"
            if Path(row.path).is_file():
                shutil.copyfile(row.path, own)
            conn.execute(
                stored_files.update().where(stored_files.c.id == row.id).values(path=str(own))
            )


def _on_postgresql(demo_db: Path, pg_server: str | None) -> str:
    from conftest import migrated_pg_database

    assert pg_server is not None
    url = migrated_pg_database(pg_server)
    source = sa.create_engine(f"sqlite:///{demo_db}")
    target = store.engine_for(url)
    with source.connect() as read, target.begin() as write:
        for table in TABLES:
            rows = [dict(r._mapping) for r in read.execute(sa.select(table))]
            if rows:
                write.execute(table.insert(), rows)
        for table in TABLES:
            serial = [c for c in table.primary_key.columns if c.autoincrement is True]
            for column in serial:
                write.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"coalesce(max({column.name}), 0) + 1, false) FROM {table.name}"
                )
    source.dispose()
    return url


def tables_holding(url: str, value: str) -> dict[str, int]:
    """Which tables hold `value` anywhere in a text or binary column (binary searched as
    UTF-8 bytes and inside zip parts is the file search's job): table -> rows."""
    engine = store.engine_for(url)
    found: dict[str, int] = {}
    needle = value.casefold()
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = 0
            for row in conn.execute(sa.select(table)):
                text = " ".join(
                    v.decode("utf-8", "ignore") if isinstance(v, bytes) else str(v)
                    for v in row
                    if v is not None
                )
                rows += needle in text.casefold()
            if rows:
                found[table.name] = rows
    return found
