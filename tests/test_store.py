"""The store on SQLite and PostgreSQL: migrations build the declared schema under a lock, the
database holds the invariants, errors are one line with the password masked."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli

from conftest import database_at

S = store.AuditState
HEAD = "0018"


def audit_values(audit_id: str = "A", state: str = "allocated") -> dict[str, object]:
    return dict(
        audit_id=audit_id,
        form_id="csc",
        form_version=1,
        case_number="1",
        auditor="x",
        month="2026-11",
        due_date=dt.date(2026, 11, 30),
        checksum="c",
        facts="{}",
        created_at=store.now(),
        updated_at=store.now(),
        state=state,
    )


def return_values(audit_id: str, content_hash: str, current: bool) -> dict[str, object]:
    return dict(
        audit_id=audit_id,
        file_name="r.docx",
        content_hash=content_hash,
        content=b"",
        imported_at=store.now(),
        is_current=current,
        method="bookmarks",
        final=True,
    )


def test_action_rows_hold_every_column_role_a_definition_can_name():
    from formtool.definitions import ACTION_ROLES
    from formtool.store.returns import ACTION_COLUMNS

    assert ACTION_COLUMNS == ACTION_ROLES


def test_migrations_build_exactly_the_declared_tables(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.metadata)
        version = conn.execute(sa.text("select version_num from alembic_version")).scalar()
    assert diff == []
    assert version == HEAD


def test_the_head_constant_is_the_newest_migration():
    # open_store trusts store.engine.HEAD to skip alembic on an up-to-date database
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", store.engine.migrations_dir())
    assert ScriptDirectory.from_config(config).get_current_head() == store.engine.HEAD == HEAD


@pytest.mark.empty_pg  # it builds or opens the schema itself
def test_reopening_is_idempotent_and_keeps_data(db_url):
    db = store.open_store(db_url)
    with store.transaction(db.engine) as conn:
        conn.execute(store.audits.insert().values(**audit_values()))
    store.engine_for(db_url).dispose()
    again = store.open_store(db_url)
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.audits)).scalar() == 1


def test_the_database_allows_one_current_return_per_audit(db):
    with store.transaction(db.engine) as conn:
        conn.execute(store.audits.insert().values(**audit_values()))
        conn.execute(store.returns.insert().values(**return_values("A", "h1", True)))
        conn.execute(store.returns.insert().values(**return_values("A", "h2", False)))
    with pytest.raises(sa.exc.IntegrityError), store.transaction(db.engine) as conn:
        conn.execute(store.returns.insert().values(**return_values("A", "h3", True)))
    with pytest.raises(sa.exc.IntegrityError), store.transaction(db.engine) as conn:
        conn.execute(store.returns.insert().values(**return_values("A", "h1", False)))


def test_state_changes_follow_the_state_machine(db):
    with store.transaction(db.engine) as conn:
        conn.execute(store.audits.insert().values(**audit_values()))
        assert store.move_state(conn, "A", [S.allocated], S.sent, "sent") is S.allocated
    with (
        pytest.raises(
            store.StateError,
            match=r"^Audit A is 'sent'; it cannot move to "
            r"'closed' from there\.$",
        ),
        store.transaction(db.engine) as conn,
    ):
        store.move_state(conn, "A", [S.sent], S.closed, "closed")
    with (
        pytest.raises(store.StateError, match="Audit B is not in the database"),
        store.transaction(db.engine) as conn,
    ):
        store.move_state(conn, "B", [S.allocated], S.sent, "sent")
    with db.engine.connect() as conn:
        events = conn.execute(sa.select(store.events.c.event)).scalars().all()
    assert events == ["sent"]  # the refused moves recorded nothing
    assert all(
        S.closed not in allowed
        for state, allowed in store.TRANSITIONS.items()
        if state in (S.allocated, S.sent)
    )
    reachable = {t for targets in store.TRANSITIONS.values() for t in targets}
    assert set(S) - reachable == {S.allocated}  # every other state is entered by something


def test_url_forms_and_masking(monkeypatch):
    monkeypatch.delenv("FORMTOOL_DB", raising=False)
    assert store.database_url() == "sqlite:///formtool.db"
    assert store.database_url("team.db") == "sqlite:///team.db"
    assert store.database_url("postgres://qa@db/formtool") == "postgresql+psycopg://qa@db/formtool"
    monkeypatch.setenv("FORMTOOL_DB", "postgresql://qa:s3cr%40t@db:5432/formtool")
    url = store.database_url()
    assert url == "postgresql+psycopg://qa:s3cr%40t@db:5432/formtool"
    assert store.masked(url) == "postgresql+psycopg://qa:***@db:5432/formtool"


def test_unreachable_server_is_one_line_with_the_password_masked():
    result = CliRunner().invoke(
        cli, ["status", "--db", "postgresql://qa:s3cret@127.0.0.1:9/formtool"]
    )
    assert result.exit_code == 2
    assert "s3cret" not in result.output
    assert result.output.startswith(
        "Error: Cannot open the database postgresql+psycopg://qa:***@127.0.0.1:9/formtool: "
    )
    assert result.output.count("\n") == 1


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    result = CliRunner().invoke(cli, ["status", "--db", str(junk)])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: Cannot open the database {junk}: file is not a database. Check --db or "
        "FORMTOOL_DB; if it is your database it is damaged: restore it from a backup with "
        "`formtool restore BACKUP`.\n"
    )
    assert junk.read_text() == "not a database"  # nothing overwritten


@pytest.mark.empty_pg  # it builds or opens the schema itself
def test_a_database_newer_than_the_code_is_refused_in_one_line(db_url):
    db = store.open_store(db_url)
    with store.transaction(db.engine) as conn:
        conn.execute(sa.text("update alembic_version set version_num = '0099'"))
    result = CliRunner().invoke(cli, ["status", "--db", db_url])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: The database {store.masked(db_url)} was made by a newer formtool (schema 0099; "
        f"this formtool knows up to {HEAD}). Upgrade formtool before using this database.\n"
    )


def _make_0001_database(url: str) -> None:
    """A database at revision 0001 holding one audit, two returns both marked current (the
    damage concurrent imports did before 0003)."""
    with database_at(url, "0001") as conn:
        conn.execute(
            sa.text(
                "insert into audits (audit_id, form_id, form_version, case_number, auditor, month,"
                " due_date, checksum, facts, created_at, updated_at) values ('A', 'csc', 1, '1',"
                " 'x', '2026-11', '2026-11-30', 'c', '{}', '2026-11-01', '2026-11-01')"
            )
        )
        for content_hash in ("h1", "h2"):
            conn.execute(
                sa.text(
                    "insert into returns (audit_id, file_name, content_hash, content, imported_at,"
                    " is_current, method, final) values ('A', 'r.docx', :h, :c, '2026-11-02',"
                    " true, 'bookmarks', true)"
                ),
                {"h": content_hash, "c": b""},
            )


def _open_at_once(
    url: str, processes: int, command: tuple[str, ...] = ("status", "--json")
) -> list[subprocess.CompletedProcess[str]]:
    command_line = [sys.executable, "-m", "formtool", *command, "--db", url]
    procs = [
        subprocess.Popen(command_line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    return [
        subprocess.CompletedProcess(p.args, p.returncode, out, err)
        for p, (out, err) in zip(procs, outputs, strict=True)
    ]


@pytest.mark.empty_pg  # it builds or opens the schema itself
def test_four_processes_open_an_empty_database_at_once(db_url):
    results = _open_at_once(db_url, 4, ("access-log", "--purge"))  # a command that may create it
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    with store.engine_for(db_url).connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == HEAD


@pytest.mark.empty_pg  # it builds or opens the schema itself
def test_an_old_database_upgrades_under_four_openers_and_heals(db_url):
    _make_0001_database(db_url)
    results = _open_at_once(db_url, 4)
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    db = store.open_store(db_url)
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                store.returns.c.content_hash, store.returns.c.is_current, store.returns.c.saved_at
            ).order_by(store.returns.c.id)
        ).all()
        audit = conn.execute(sa.select(store.audits.c.audit_id, store.audits.c.auditor_email)).one()
    assert [(r.content_hash, r.is_current) for r in rows] == [("h1", False), ("h2", True)]
    assert all(r.saved_at is not None for r in rows)
    assert tuple(audit) == ("A", "")


def test_a_keyed_audit_recorded_again_with_new_facts_is_refreshed(db):
    """An audit made with the database's key, generated again with changed facts (before it
    was returned), takes the new facts and checksum, and says so in its history."""
    from formtool.definitions import get_form

    form = get_form("csc")

    def record(name: str, checksum: str) -> store.AuditRecord:
        return store.AuditRecord(
            "CSC-K1-202611", "csc", form.version, "K1", "Auditor (synthetic)", "", "Team A",
            "", "", dt.date(2026, 11, 30), checksum, {"child_name": name},
            checksum_scheme="hmac",
        )  # fmt: skip

    assert db.record_audits([form], [record("Ann Example", "a" * 32)], "test") == 1
    assert db.record_audits([form], [record("Anne Example", "b" * 32)], "test") == 0
    row = db.require_audit("CSC-K1-202611")
    assert (row.checksum, row.checksum_scheme) == ("b" * 32, "hmac")
    assert "Anne Example" in row.facts
    assert [e.event for e in db.audit_records("CSC-K1-202611").events][-1] == "regenerated"
