"""The audit database: SQLAlchemy Core tables, Alembic migrations, atomic writes.

SQLite file by default (`./formtool.db`, no set-up); any SQLAlchemy URL (e.g. PostgreSQL)
for a shared team deployment. The schema is created and upgraded only by the migrations in
formtool/migrations. On SQLite every write transaction starts with BEGIN IMMEDIATE, so two
imports at once queue for the lock instead of failing or interleaving.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from formtool.errors import FormtoolError

DEFAULT_URL = "sqlite:///formtool.db"
ENV_VAR = "FORMTOOL_DB"

STATES = (
    "allocated",
    "sent",
    "returned",
    "checked",
    "amendment requested",
    "moderated",
    "actions signed off",
    "closed",
)
#: States in which the auditor still owes the return (counted as outstanding / overdue).
OUTSTANDING_STATES = ("allocated", "sent", "amendment requested")

metadata = sa.MetaData()

audits = sa.Table(
    "audits",
    metadata,
    sa.Column("audit_id", sa.String(80), primary_key=True),
    sa.Column("form_id", sa.String(60), nullable=False),
    sa.Column("form_version", sa.Integer, nullable=False),
    sa.Column("case_number", sa.String(80), nullable=False, index=True),
    sa.Column("auditor", sa.String(200), nullable=False, index=True),
    sa.Column("auditor_email", sa.String(320), nullable=False, server_default=""),
    sa.Column("team", sa.String(200), nullable=False, server_default=""),
    sa.Column("worker", sa.String(200), nullable=False, server_default=""),
    sa.Column("manager", sa.String(200), nullable=False, server_default=""),
    sa.Column("month", sa.String(7), nullable=False, index=True),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("state", sa.String(30), nullable=False, server_default="allocated"),
    sa.Column("checksum", sa.String(32), nullable=False),
    sa.Column("facts", sa.Text, nullable=False),  # JSON: header column -> value
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),  # the original bytes, for tracing
    sa.Column("imported_at", sa.DateTime, nullable=False),
    sa.Column("supersedes", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
    sa.Column("is_current", sa.Boolean, nullable=False),
    sa.Column("method", sa.String(30), nullable=False),
    sa.Column("final", sa.Boolean, nullable=False),
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),  # JSON messages
    sa.UniqueConstraint("audit_id", "content_hash", name="uq_returns_audit_content"),
)

answers = sa.Table(
    "answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=False, index=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("value", sa.Text, nullable=False, server_default=""),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),  # a question's evidence
    sa.UniqueConstraint("return_id", "key", name="uq_answers_return_key"),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=False, index=True),
    sa.Column("table_key", sa.String(200), nullable=False),  # e.g. next_steps.actions
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("recommendation", sa.Text, nullable=False, server_default=""),
    sa.Column("action", sa.Text, nullable=False, server_default=""),
    sa.Column("responsible_role", sa.String(200), nullable=False, server_default=""),
    sa.Column("responsible_person", sa.String(200), nullable=False, server_default=""),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("sign_off", sa.String(200), nullable=False, server_default=""),
    sa.Column("sign_off_date", sa.Date, nullable=True),
    sa.Column("comments", sa.Text, nullable=False, server_default=""),
)

grades = sa.Table(
    "grades",
    metadata,
    sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), primary_key=True),
    sa.Column("auditor_grade", sa.String(80), nullable=False, server_default=""),
    sa.Column("moderated_grade", sa.String(80), nullable=False, server_default=""),
    sa.Column("moderated_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("moderated_at", sa.DateTime, nullable=True),
    sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
    ),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
)


class StoreError(FormtoolError):
    """The database cannot be opened or upgraded."""


def database_url(option: str | None = None) -> str:
    """--db, else $FORMTOOL_DB, else ./formtool.db. A bare path means an SQLite file."""
    url = option or os.environ.get(ENV_VAR) or DEFAULT_URL
    return url if "://" in url else f"sqlite:///{url}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _sqlite_locking(engine: sa.Engine) -> None:
    """Serialise writers: BEGIN IMMEDIATE, WAL, and a generous busy timeout."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@cache
def engine_for(url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(
            f"Cannot use database URL '{url}': {exc}. Use e.g. "
            "sqlite:///formtool.db or postgresql+psycopg://user@host/db."
        ) from None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        _sqlite_locking(engine)
    return engine


def migrations_dir() -> str:
    return str(resources.files("formtool") / "migrations")


def open_store(url: str | None = None) -> sa.Engine:
    """An engine on an up-to-date schema (runs pending migrations)."""
    from alembic import command
    from alembic.config import Config

    engine = engine_for(database_url(url))
    config = Config()
    config.set_main_option("script_location", migrations_dir())
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa.exc.DBAPIError as exc:  # unreachable server, locked or not-a-database file
        raise StoreError(
            f"Cannot open the database {engine.url!r}: {exc.orig}. Check --db or FORMTOOL_DB."
        ) from None
    return engine


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.begin() as connection:
        yield connection


def record_event(conn: sa.Connection, audit_id: str, name: str, detail: str = "") -> None:
    conn.execute(events.insert().values(audit_id=audit_id, at=now(), event=name, detail=detail))


def upsert_audit(conn: sa.Connection, values: dict[str, Any]) -> bool:
    """Insert an allocated audit, or refresh its facts if it exists. True if it was new."""
    existing = conn.execute(
        sa.select(audits.c.audit_id, audits.c.checksum).where(
            audits.c.audit_id == values["audit_id"]
        )
    ).first()
    stamp = now()
    if existing is None:
        conn.execute(
            audits.insert().values(**values, state="allocated", created_at=stamp, updated_at=stamp)
        )
        record_event(conn, values["audit_id"], "allocated")
        return True
    if existing.checksum != values["checksum"]:
        conn.execute(
            audits.update()
            .where(audits.c.audit_id == values["audit_id"])
            .values(**values, updated_at=stamp)
        )
        record_event(conn, values["audit_id"], "regenerated", "pre-filled facts changed")
    return False


def audit_facts(row: Any) -> dict[str, str]:
    return json.loads(row.facts)
