"""Backups a QA officer can take and restore (issue 18, part 2): taken while others write and
verified before they are reported done, private (0600) and in the access log; restores that
refuse while a server holds the database, check the backup first, never copy over a live
file and keep the replaced one aside."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from formtool import store
from formtool.cli import cli
from formtool.settings import Settings
from formtool.store import BackupError, pgdump
from formtool.store.backup import FRESH, inspect_backup
from formtool.store.engine import HEAD
from formtool.store.schema import server_heartbeat
from formtool.web import NightlyBackups, create_app
from formtool.web.duties import next_backup_at

from conftest import drop_pg_database, fresh_pg_database

USER = "cli:officer"


def add_audits(db: store.Store, ids: list[str]) -> None:
    with store.transaction(db.engine) as conn:
        for audit_id in ids:
            conn.execute(
                store.audits.insert().values(
                    audit_id=audit_id,
                    form_id="csc",
                    form_version=1,
                    case_number=audit_id,
                    auditor="Auditor A",
                    month="2026-11",
                    due_date=dt.date(2026, 11, 30),
                    checksum="c",
                    facts="{}",
                    created_at=store.now(),
                    updated_at=store.now(),
                )
            )


def add_return(engine: sa.Engine, audit_id: str, n: int) -> None:
    with store.transaction(engine) as conn:
        conn.execute(
            store.returns.insert().values(
                audit_id=audit_id,
                file_name=f"r{n}.docx",
                content_hash=f"{n:064d}",
                content=b"x" * 200,
                imported_at=store.now(),
                is_current=False,
                method="bookmarks",
                final=True,
            )
        )


def rows(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        return {
            n: conn.execute(sa.select(sa.func.count()).select_from(sa.table(n))).scalar_one()
            for n in sorted(names)
        }


def sqlite_rows(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.DatabaseError:
        return -1
    finally:
        conn.close()


def filled(url: str) -> store.Store:
    db = store.open_store(url)
    add_audits(db, ["A1", "A2"])
    add_return(db.engine, "A1", 1)
    db.log_access("web:olive", "viewed audit", "A1", "127.0.0.1", "")
    return db


# --- both backends -----------------------------------------------------------------------


def test_a_backup_is_private_verified_logged_and_restores(db_url, tmp_path, request):
    db = filled(db_url)
    db.server_beat("old-server", "qa-host", 4242)  # a server runs while the backup is taken
    before = rows(db.engine)
    folder = tmp_path / "backups"
    folder.mkdir()
    report = store.backup_database(db_url, folder, USER)
    suffix = ".db" if report.backend == "sqlite" else ".dump"
    assert report.path.parent == folder and report.path.suffix == suffix
    assert report.path.name.startswith("formtool-20")
    assert report.path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in folder.iterdir()] == [report.path.name]  # no temporary left
    assert report.tables == before and report.revision == HEAD and report.rows > 5
    last = db.access_entries(None, None, None, 1)[0]
    assert (last.user_name, last.action) == (USER, "backup taken")
    assert str(report.path) in last.detail and "verified" in last.detail
    if report.backend == "postgresql":
        assert "pg_dump --format=custom" in report.method
        pg_restore = pgdump.beside(pgdump.program("pg_dump", db.engine)[0], "pg_restore")
        listed = subprocess.run([pg_restore, "--list", report.path], capture_output=True)
        assert listed.returncode == 0 and b"TABLE DATA public returns" in listed.stdout
        server = request.getfixturevalue("pg_server")
        target = fresh_pg_database(server)
        request.addfinalizer(lambda: drop_pg_database(server, target))
    else:
        target = f"sqlite:///{tmp_path / 'scratch.db'}"

    done = store.restore_backup(report.path, target, USER)
    assert done is not None and done.revision == HEAD and done.plan.keep_as is None
    restored = store.open_store(target)
    after = rows(restored.engine)
    assert after["audits"] == 2 and after["returns"] == 1
    assert after["server_heartbeat"] == 0  # the server of the backup's time is not running
    assert after["access_log"] == before["access_log"] + 1
    last = restored.access_entries(None, None, None, 1)[0]
    assert (last.user_name, last.action) == (USER, "database restored")
    assert str(report.path) in last.detail


def test_the_heartbeat_names_the_running_servers(db):
    db.server_beat("s1", "qa-host", 101)
    db.server_beat("s2", "other-host", 202)
    db.server_beat("s1", "qa-host", 101)  # a beat again refreshes the same row
    assert sorted((s.host, s.pid) for s in db.running_servers()) == [
        ("other-host", 202),
        ("qa-host", 101),
    ]
    with store.transaction(db.engine) as conn:  # s2 stopped without a clean shutdown
        h = server_heartbeat.c
        conn.execute(
            server_heartbeat.update()
            .where(h.server == "s2")
            .values(seen_at=store.now() - FRESH - dt.timedelta(seconds=1))
        )
    db.server_stopped("s1")
    assert db.running_servers() == []


# --- SQLite --------------------------------------------------------------------------------


def test_a_backup_under_a_writing_server_holds_every_committed_return(tmp_path):
    live = tmp_path / "live.db"
    db = store.open_store(str(live))
    add_audits(db, ["A1"])
    committed, stop = [0], threading.Event()

    def writer() -> None:  # an import committing returns one by one, as the server's do
        n = 0
        while not stop.is_set() and n < 120:
            n += 1
            add_return(db.engine, "A1", n)
            committed[0] = n

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while committed[0] < 15 and thread.is_alive():
            time.sleep(0.001)
        started_with = committed[0]
        report = db.backup(tmp_path / "backup.db", USER)
        while committed[0] < report.tables["returns"] + 3 and thread.is_alive():
            time.sleep(0.001)  # it goes on writing after the backup
    finally:
        stop.set()
        thread.join()
    assert report.tables["returns"] >= started_with
    assert sqlite_rows(report.path, "returns") == report.tables["returns"]
    conn = sqlite3.connect(report.path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one whole file
    conn.close()
    # What a plain copy of the file would have held: the last returns are in the -wal file.
    shutil.copyfile(live, tmp_path / "plain-copy.db")
    assert sqlite_rows(tmp_path / "plain-copy.db", "returns") < started_with


def test_restore_refuses_while_a_server_heartbeat_is_fresh(tmp_path):
    live = tmp_path / "live.db"
    db = filled(str(live))
    backup = db.backup(tmp_path / "b.db", USER).path
    db.server_beat("running", "qa-server", 5151)
    with pytest.raises(BackupError) as refused:
        store.restore_backup(backup, str(live), USER)
    message = str(refused.value)
    assert "A formtool server is using sqlite:///" in message
    assert "on qa-server, process 5151, running since " in message
    assert "Stop it (Ctrl+C where it runs, or stop its service)" in message
    assert "Nothing was changed" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.glob("live.db*")) == [
        "live.db",
        "live.db-shm",
        "live.db-wal",
    ]

    with store.transaction(db.engine) as conn:  # the server was killed 2 minutes ago
        conn.execute(
            server_heartbeat.update().values(seen_at=store.now() - FRESH - dt.timedelta(1))
        )
    assert store.restore_backup(backup, str(live), USER) is not None


def test_restore_replaces_the_file_and_keeps_the_old_one_aside(tmp_path):
    live = tmp_path / "live.db"
    db = store.open_store(str(live))
    add_audits(db, ["A1"])
    backup = db.backup(tmp_path, USER).path
    add_audits(db, ["A2"])  # after the backup: in the -wal file

    other = sqlite3.connect(live)  # another program with the database open
    other.execute("SELECT count(*) FROM audits").fetchone()
    with pytest.raises(BackupError, match=r"^Another program has sqlite:///\S+ open"):
        store.restore_backup(backup, str(live), USER)
    other.close()
    assert sqlite_rows(live, "audits") == 2  # refused: nothing changed

    report = store.restore_backup(backup, str(live), USER)
    assert report is not None and report.plan.keep_as is not None
    aside = report.plan.keep_as
    assert aside.name.startswith("live.db.replaced-20") and aside.stat().st_mode & 0o777 == 0o600
    assert live.stat().st_mode & 0o777 == 0o600
    assert not Path(f"{aside}-wal").exists()  # the old -wal was folded into the kept file
    assert not list(tmp_path.glob("*journal")) and not list(tmp_path.glob(".*.tmp"))
    assert sqlite_rows(aside, "audits") == 2  # on its own, it holds everything it had
    assert [a.audit_id for a in store.open_store(str(live)).audit_rows()] == ["A1"]

    store.engine_for(f"sqlite:///{live}").dispose()
    for side in ("", "-wal", "-shm"):
        Path(f"{live}{side}").unlink(missing_ok=True)
    live.write_bytes(b"damaged " * 1000)  # a database that cannot be read is kept aside too
    report = store.restore_backup(backup, str(live), USER)
    assert report is not None and report.plan.keep_as is not None
    assert report.plan.notes[0].startswith("The database being replaced cannot be read (")
    assert report.plan.keep_as.read_bytes() == b"damaged " * 1000
    assert sqlite_rows(aside, "audits") == 2  # the first one kept is still there
    assert sqlite_rows(live, "audits") == 1


def test_a_damaged_unknown_or_newer_backup_is_refused(tmp_path):
    live = tmp_path / "live.db"
    db = filled(str(live))
    good = db.backup(tmp_path / "good.db", USER).path

    damaged = tmp_path / "damaged.db"
    data = bytearray(good.read_bytes())
    data[4096 : 4096 * 3] = b"\xff" * 8192
    damaged.write_bytes(bytes(data))
    newer = tmp_path / "newer.db"
    shutil.copyfile(good, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    text = tmp_path / "notes.txt"
    text.write_text("not a backup")

    refusals = {
        damaged: f"[{damaged}] is damaged (",
        newer: f"[{newer}] was made by a newer formtool (schema 9999; this formtool knows up to ",
        foreign: f"[{foreign}] holds no formtool database (it has no schema revision)",
        text: f"[{text}] is not a formtool backup",
        tmp_path / "missing.db": "there is no such file",
    }
    for path, said in refusals.items():
        with pytest.raises(BackupError) as refused:
            store.restore_backup(path, str(live), USER)
        assert said in str(refused.value), path
    assert sorted(p.name for p in tmp_path.glob("live.db*")) == [
        "live.db",
        "live.db-shm",
        "live.db-wal",
    ]
    assert inspect_backup(good).revision == HEAD


def test_a_backup_never_overwrites_and_keeps_the_newest(tmp_path):
    live = tmp_path / "live.db"
    store.open_store(str(live))
    folder = tmp_path / "backups"
    folder.mkdir()
    olds = [folder / f"formtool-2026-11-0{d}-0200.db" for d in range(1, 5)]
    for age, path in enumerate(reversed(olds)):
        path.write_bytes(b"old")
        os.utime(path, (time.time() - 86400 * (age + 1),) * 2)  # real time: files' ages
    (folder / "notes.txt").write_text("not a backup: never removed")

    report = store.backup_database(str(live), folder, USER, keep=2)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [report.path.name, olds[-1].name, "notes.txt"]
    )
    assert report.removed == tuple(olds[:3])
    assert store.recent_backup(folder, dt.timedelta(hours=1)) == report.path
    for target, said in [
        (report.path, "already exists; a backup never overwrites a file"),
        (live, "already exists"),
        (tmp_path / "nowhere" / "b.db", "there is no such folder"),
    ]:
        with pytest.raises(BackupError, match=said):
            store.backup_database(str(live), target, USER)
    with pytest.raises(BackupError, match="there is no such folder to keep the newest"):
        store.backup_database(str(live), tmp_path / "one.db", USER, keep=2)
    with pytest.raises(BackupError, match=r"there is no database here"):
        store.backup_database(str(tmp_path / "mistyped.db"), folder, USER)
    assert not (tmp_path / "mistyped.db").exists()


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def pg_db(request):
    server = request.getfixturevalue("pg_server")
    url = fresh_pg_database(server)
    yield store.open_store(url)
    drop_pg_database(server, url)


def test_restore_never_overwrites_a_postgresql_database(pg_db, tmp_path):
    add_audits(pg_db, ["A1"])
    report = pg_db.backup(tmp_path, USER)
    assert report.backend == "postgresql" and report.path.suffix == ".dump"
    with pytest.raises(BackupError) as refused:
        store.restore_backup(report.path, pg_db.engine.url.render_as_string(False), USER)
    assert "already holds a database, and restore never overwrites one on PostgreSQL" in str(
        refused.value
    )
    assert "createdb --owner=OWNER formtool_restored" in str(refused.value)
    assert rows(pg_db.engine)["audits"] == 1


def test_without_pg_dump_the_error_says_what_to_run(pg_db, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pgdump, "PG_BIN_DIRS", str(tmp_path / "none"))
    with pytest.raises(BackupError) as refused:
        pg_db.backup(tmp_path, USER)
    said = str(refused.value)
    assert said.startswith("pg_dump is not installed here, so formtool cannot run it")
    assert "apt install postgresql-client-" in said
    assert "`pg_dump --format=custom --file=formtool.dump 'postgresql://" in said
    old = tmp_path / "pg_dump"  # an older pg_dump first on PATH
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    with pytest.raises(BackupError, match=r"^pg_dump 9 cannot work with a PostgreSQL \d+ server"):
        pg_db.backup(tmp_path, USER)
    assert [p.name for p in tmp_path.iterdir()] == ["pg_dump"]  # nothing half-written


# --- the commands --------------------------------------------------------------------------


def test_backup_and_restore_commands(tmp_path):
    live = tmp_path / "live.db"
    filled(str(live))
    runner = CliRunner()
    folder = tmp_path / "backups"
    folder.mkdir()

    made = runner.invoke(cli, ["backup", str(folder), "--db", str(live), "--json"])
    assert made.exit_code == 0, made.output
    data = json.loads(made.output)
    backup = Path(data["path"])
    assert data["verified"] and data["revision"] == HEAD and data["tables"]["audits"] == 2
    said = runner.invoke(cli, ["backup", str(tmp_path / "named.db"), "--db", str(live)])
    assert said.exit_code == 0, said.output
    assert said.output.startswith(f"Backed up sqlite:///{live} with the SQLite online backup")
    assert "Checked: integrity ok; " in said.output and "readable by you only" in said.output
    again = runner.invoke(cli, ["backup", str(tmp_path / "named.db"), "--db", str(live)])
    assert again.exit_code == 2
    assert again.output == (
        f"Error: [{tmp_path / 'named.db'}] already exists; a backup never overwrites a file. "
        "Give a new file name, or a folder (then the backup is named by date and time).\n"
    )

    scratch = tmp_path / "scratch.db"
    declined = runner.invoke(cli, ["restore", str(backup), "--db", str(scratch)], input="n\n")
    assert declined.exit_code == 1 and "Nothing was changed." in declined.output
    assert "emails sent since then will look unsent" in declined.output
    assert not scratch.exists()
    drill = runner.invoke(cli, ["restore", str(backup), "--db", str(scratch)], input="y\n")
    assert drill.exit_code == 0, drill.output
    assert f"It goes into sqlite:///{scratch}." in drill.output
    assert f"Restored sqlite:///{scratch} from {backup}." in drill.output
    status = runner.invoke(cli, ["status", "--db", str(scratch), "--json"])
    assert status.exit_code == 0, status.output

    real = runner.invoke(cli, ["restore", str(backup), "--db", str(live), "--yes", "--json"])
    assert real.exit_code == 0, real.output
    out = json.loads(real.stdout)
    assert out["replaced_file_kept_as"].startswith(f"{live}.replaced-")
    assert out["rows"] == data["rows"]

    store.open_store(str(live)).server_beat("s", "qa-server", 77)
    busy = runner.invoke(cli, ["restore", str(backup), "--db", str(live), "--yes"])
    assert busy.exit_code == 2 and busy.output.count("\n") == 1
    assert busy.output.startswith("Error: A formtool server is using sqlite:///")
    for command in ("backup", "restore"):
        helped = runner.invoke(cli, [command, "--help"])
        assert helped.exit_code == 0 and "--db" in helped.output


# --- the server ----------------------------------------------------------------------------


def test_serve_keeps_a_heartbeat_and_takes_a_backup_when_it_starts(tmp_path, caplog):
    live = tmp_path / "live.db"
    db = store.open_store(str(live))
    folder = tmp_path / "nightly"
    folder.mkdir()
    app = create_app(db, Settings(), heartbeat=True, backups=NightlyBackups(folder, keep=3))
    with TestClient(app) as client:
        (server,) = db.running_servers()
        assert server.pid == os.getpid() and server.started_at <= server.seen_at
        deadline = time.monotonic() + 10
        while not list(folder.glob("formtool-*.db")) and time.monotonic() < deadline:
            time.sleep(0.02)
        (first,) = folder.glob("formtool-*.db")
        with pytest.raises(BackupError, match=f"process {os.getpid()}, running since"):
            store.restore_backup(first, str(live), USER)
        assert "formtool users add" in client.get("/login").text  # it answers
    assert db.running_servers() == []  # removed on a clean shutdown
    assert db.access_entries("formtool serve", None, None, None)[-1].action == "backup taken"

    taken = tmp_path / "taken"  # a file where the folder should be: the backup fails,
    taken.write_text("")  # is logged, and the server goes on
    app = create_app(db, Settings(), heartbeat=True, backups=NightlyBackups(taken))
    with caplog.at_level(logging.ERROR, "formtool.web"), TestClient(app) as client:
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "formtool users add" in client.get("/login").text
    assert [r.getMessage() for r in caplog.records] == [
        f"The nightly backup to {taken} failed: [{taken}] keeping the newest backups needs a "
        "folder, not a file."
    ]


@pytest.mark.parametrize(
    "after, due",
    [
        ("2026-12-05T01:59:00+00:00", "2026-12-05T02:00:00+00:00"),  # GMT
        ("2026-12-05T02:00:00+00:00", "2026-12-06T02:00:00+00:00"),
        ("2026-07-01T00:30:00+00:00", "2026-07-01T01:00:00+00:00"),  # 02:00 BST
        ("2026-03-29T00:30:00+00:00", "2026-03-29T01:00:00+00:00"),  # the clocks go forward
        ("2026-10-25T00:30:00+00:00", "2026-10-25T02:00:00+00:00"),  # and back
    ],
)
def test_the_nightly_backup_is_at_two_in_england(after, due):
    assert next_backup_at(dt.datetime.fromisoformat(after), 2) == dt.datetime.fromisoformat(due)
