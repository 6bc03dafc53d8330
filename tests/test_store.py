"""The store: migrations build exactly the declared schema; URLs resolve as documented."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from formtool import store


def test_migrations_match_the_declared_tables(tmp_path):
    engine = store.open_store(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.metadata)
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    assert diff == []
    assert version == "0002"


def test_reopening_is_idempotent_and_keeps_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = store.open_store(url)
    with store.transaction(engine) as conn:
        conn.execute(
            store.audits.insert().values(
                audit_id="A",
                form_id="csc",
                form_version=1,
                case_number="1",
                auditor="x",
                month="2026-11",
                due_date=sa.func.date("2026-11-30"),
                checksum="c",
                facts="{}",
                created_at=store.now(),
                updated_at=store.now(),
            )
        )
    store.engine_for.cache_clear()
    again = store.open_store(url)
    with again.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.audits)).scalar() == 1


def test_database_url_resolution(monkeypatch):
    monkeypatch.delenv("FORMTOOL_DB", raising=False)
    assert store.database_url() == "sqlite:///formtool.db"
    assert store.database_url("team.db") == "sqlite:///team.db"
    monkeypatch.setenv("FORMTOOL_DB", "postgresql+psycopg://qa@db/formtool")
    assert store.database_url() == "postgresql+psycopg://qa@db/formtool"
    assert store.database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_upgrade_from_0001_keeps_audits(tmp_path):
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store.engine_for(url)
    config = Config()
    config.set_main_option("script_location", store.migrations_dir())
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(sa.text(
            "insert into audits (audit_id, form_id, form_version, case_number, auditor, month,"
            " due_date, checksum, facts, created_at, updated_at) values ('A', 'csc', 1, '1',"
            " 'x', '2026-11', '2026-11-30', 'c', '{}', '2026-11-01', '2026-11-01')"))
    upgraded = store.open_store(url)
    with upgraded.connect() as conn:
        row = conn.execute(sa.select(store.audits.c.audit_id, store.audits.c.auditor_email)).one()
    assert tuple(row) == ("A", "")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    from click.testing import CliRunner

    from formtool.cli import cli

    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    result = CliRunner().invoke(cli, ["status", "--db", str(junk)])
    assert result.exit_code == 2
    assert result.output == (f"Error: Cannot open the database sqlite:///{junk}: file is not a "
                             "database. Check --db or FORMTOOL_DB.\n")
    assert junk.read_text() == "not a database"  # nothing overwritten
