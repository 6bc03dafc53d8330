"""What the benchmarks that build big stores share: a throwaway PostgreSQL database, and
what a bulk load needs after it (rows inserted straight into the tables, not through the
import path).

    from bulk import after_bulk_load, throwaway_database
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from formtool import store


@contextmanager
def throwaway_database(server: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL `server` (a URL), dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        store.engine_for(url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def after_bulk_load(engine: sa.Engine) -> None:
    """After rows were inserted with their returns' ids given: PostgreSQL's id sequence moved
    past them (SQLite does it by itself), so the next import gets a free id, and fresh
    planner statistics (autovacuum would get there later)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('returns', 'id'), "
                "(SELECT coalesce(max(id), 1) FROM returns))"
            )
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
