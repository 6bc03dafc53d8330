"""Backups a QA officer can take and restore (issue 18, part 2): taken while others write and
verified before they are reported done, private (0600) and in the access log, of formtool
databases only; restores that refuse while a server holds the database, check the backup
first, copy it into the live database as one transaction (never a file over or under one
another program has open) and keep the replaced one aside; failures that say what is where."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from formtool import store
from formtool.cli import cli
from formtool.settings import Settings
from formtool.store import BackupError, pgdump, sqlitecopy
from formtool.store.backup import inspect_backup
from formtool.store.engine import HEAD
from formtool.store.heartbeat import FRESH
from formtool.store.schema import server_heartbeat
from formtool.web import NightlyBackups, create_app, duties
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


@contextmanager
def writing(engine: sa.Engine, at_most: int) -> Iterator[list[int]]:
    """An import committing returns to audit A1 one by one (up to `at_most`), as the server's
    do, in another thread; entered once 15 are committed. Yields [returns committed so far];
    on leaving, it goes on until 3 more are committed (or it is done)."""
    committed, stop = [0], threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < at_most:
            n += 1
            add_return(engine, "A1", n)
            committed[0] = n

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while committed[0] < 15 and thread.is_alive():
            time.sleep(0.001)
        yield committed
        more = committed[0] + 3
        while committed[0] < more and thread.is_alive():
            time.sleep(0.001)  # it goes on writing after the backup
    finally:
        stop.set()
        thread.join()


@contextmanager
def file_size_limit(size: int) -> Iterator[None]:
    """No file written past `size` bytes (as on a full disk: the write fails) for a while."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, not the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


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


@pytest.mark.empty_pg  # it builds or opens the schema itself
def test_a_database_without_a_schema_revision_is_not_backed_up_nor_touched(db_url, tmp_path):
    maker = sa.create_engine(db_url)  # not formtool's engine: nothing set on connecting
    with maker.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (x integer)")
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num varchar(32))")
    file = Path(sa.make_url(db_url).database or "")
    before = file.read_bytes() if db_url.startswith("sqlite") else b""
    folder = tmp_path / "backups"
    folder.mkdir()
    with pytest.raises(BackupError) as refused:
        store.backup_database(db_url, folder, USER)
    said = str(refused.value)
    assert "holds no formtool database (it has no schema revision), so it was not backed up" in said
    assert list(folder.iterdir()) == []
    with maker.connect() as conn:  # no access log was made in it
        assert sorted(sa.inspect(conn).get_table_names()) == ["alembic_version", "notes"]
    maker.dispose()
    if db_url.startswith("sqlite"):
        assert file.read_bytes() == before  # still in its own journal mode, never WAL
        assert sorted(p.name for p in file.parent.glob(f"{file.name}*")) == [file.name]


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
    with writing(db.engine, at_most=120) as committed:  # too few for SQLite to checkpoint
        started_with = committed[0]
        report = db.backup(tmp_path / "backup.db", USER)
    assert report.tables["returns"] >= started_with
    assert sqlite_rows(report.path, "returns") == report.tables["returns"]
    conn = sqlite3.connect(report.path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one whole file
    conn.close()
    # What a plain copy of the file would have held: the last returns are in the -wal file.
    shutil.copyfile(live, tmp_path / "plain-copy.db")
    assert sqlite_rows(tmp_path / "plain-copy.db", "returns") < started_with


def test_an_empty_or_foreign_file_is_not_backed_up_nor_changed(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    text = tmp_path / "notes.db"
    text.write_text("not a database " * 300)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    refusals = {
        empty: f"[{empty}] is an empty file (0 bytes), not a formtool database, so it was not "
        "backed up",
        text: f"[{text}] is not a formtool database (file is not a database), so it was not "
        "backed up",
        foreign: f"[{foreign}] holds no formtool database (it has no schema revision), so it "
        "was not backed up",
    }
    for path, said in refusals.items():
        before = path.read_bytes()
        with pytest.raises(BackupError) as refused:
            store.backup_database(str(path), folder, USER)
        assert str(refused.value).startswith(said), refused.value
        assert "it was left as it is" in str(refused.value)
        assert path.read_bytes() == before  # the empty file did not become a WAL database
        assert sorted(p.name for p in tmp_path.glob(f"{path.name}*")) == [path.name]
    assert list(folder.iterdir()) == []


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
    assert not list(tmp_path.glob("live.db.replaced-*"))
    assert sqlite_rows(live, "audits") == 2

    with store.transaction(db.engine) as conn:  # the server was killed 2 minutes ago
        conn.execute(
            server_heartbeat.update().values(seen_at=store.now() - FRESH - dt.timedelta(1))
        )
    assert store.restore_backup(backup, str(live), USER) is not None


def test_restore_copies_the_backup_into_the_open_database_and_keeps_the_old_one(tmp_path):
    live = tmp_path / "live.db"
    db = store.open_store(str(live))
    add_audits(db, ["A1"])
    made = db.backup(tmp_path, USER).path
    add_audits(db, ["A2"])  # after the backup: in the -wal file
    live.chmod(0o640)  # the service account's group reads it
    was = live.stat()

    other = sqlite3.connect(live)  # another program has the database open all along
    assert other.execute("SELECT count(*) FROM audits").fetchall() == [(2,)]
    report = store.restore_backup(made, str(live), USER)
    assert other.execute("SELECT audit_id FROM audits").fetchall() == [("A1",)]  # sees it
    other.close()

    now = live.stat()  # the same file, mode and owner: copied into, never renamed over
    assert (now.st_ino, now.st_mode, now.st_uid, now.st_gid) == (
        was.st_ino,
        was.st_mode,
        was.st_uid,
        was.st_gid,
    )
    assert report is not None and report.plan.keep_as is not None
    aside = report.plan.keep_as
    assert aside.name.startswith("live.db.replaced-20") and aside.stat().st_mode & 0o777 == 0o600
    assert sqlite_rows(aside, "audits") == 2  # on its own, with what was in the -wal file
    assert not Path(f"{aside}-wal").exists() and not Path(f"{aside}-journal").exists()
    assert not list(tmp_path.glob(".*.tmp*"))
    with sqlite3.connect(live) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert [a.audit_id for a in store.open_store(str(live)).audit_rows()] == ["A1"]


def test_restore_into_a_rollback_journal_database_or_an_empty_file(tmp_path, monkeypatch):
    made = filled(str(tmp_path / "source.db")).backup(tmp_path / "b.db", USER).path
    other = store.open_store(str(tmp_path / "other.db"))
    add_audits(other, ["B1"])
    live = other.backup(tmp_path / "live.db", USER).path  # a database in rollback-journal mode
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # a copy that failed: the empty-file refusal says to restore it
    for database in (live, empty):
        database.chmod(0o640)
        was = database.stat().st_ino
        reader = sqlite3.connect(database)  # open, not reading
        report = store.restore_backup(made, str(database), USER)
        reader.close()
        assert report is not None
        assert (database.stat().st_ino, database.stat().st_mode & 0o777) == (was, 0o640)
        assert sqlite_rows(database, "audits") == 2
    assert report is not None and report.plan.keep_as is None
    assert report.plan.notes == ("The file there is empty (0 bytes): there is nothing to keep.",)
    (aside,) = tmp_path.glob("live.db.replaced-*")
    assert sqlite_rows(aside, "audits") == 1 and aside.stat().st_mode & 0o777 == 0o600
    aside.unlink()

    # Rollback-journal mode: the copy aside is taken before the restore takes its lock; a
    # write that comes between is seen, and the restore refused, so it is never lost.
    store.engine_for(f"sqlite:///{live}").dispose()  # (the restore left it in WAL mode)
    for side in ("", "-wal", "-shm"):
        Path(f"{live}{side}").unlink(missing_ok=True)
    other.backup(live, USER)
    copy_aside = sqlitecopy._copy_aside

    def then_a_write(conn: sa.Connection, aside: Path) -> list[Path]:
        kept = copy_aside(conn, aside)
        conn.rollback()  # the copy's read lock ends, and another program writes
        with sqlite3.connect(live) as writer:
            writer.execute("DELETE FROM audits")
        return kept

    monkeypatch.setattr(sqlitecopy, "_copy_aside", then_a_write)
    with pytest.raises(BackupError, match=r"changed while .* nothing was changed\. Run restore"):
        store.restore_backup(made, str(live), USER)
    assert sqlite_rows(live, "audits") == 0 and not list(tmp_path.glob("live.db.replaced-*"))


def test_a_refused_restore_changes_nothing(tmp_path, monkeypatch):
    live = tmp_path / "live.db"
    db = filled(str(live))
    made = db.backup(tmp_path / "b.db", USER).path
    add_audits(db, ["A3"])
    monkeypatch.setattr(sqlitecopy, "LOCK_SECONDS", 0.2)

    writer = sqlite3.connect(live, isolation_level=None)  # an import in the middle of a write
    writer.execute("BEGIN IMMEDIATE")
    with pytest.raises(BackupError) as refused:
        store.restore_backup(made, str(live), USER)
    writer.execute("ROLLBACK")
    writer.close()
    assert str(refused.value) == (
        f"Another program is writing to sqlite:///{live} (a formtool import or send, or "
        "sqlite3) and kept it busy for 0.2 seconds: let it finish or stop it, then run restore "
        "again. Nothing was changed."
    )

    def a_server_starts(plan: store.RestorePlan) -> bool:  # while the officer reads the plan
        server = store.open_store(str(live))
        server.server_beat("late", "qa-server", 6161)
        server.engine.dispose()  # its connections idle and closed: only the heartbeat tells
        return True

    with pytest.raises(BackupError, match=r"on qa-server, process 6161, .*Nothing was changed"):
        store.restore_backup(made, str(live), USER, a_server_starts)
    with sqlite3.connect(live) as conn:  # what the refusal says is true
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT count(*) FROM audits").fetchone() == (3,)
    assert not list(tmp_path.glob("live.db.replaced-*")) and not list(tmp_path.glob(".*.tmp*"))


def test_a_damaged_database_is_kept_aside_and_its_path_never_left_empty(tmp_path, monkeypatch):
    live = tmp_path / "live.db"
    made = filled(str(live)).backup(tmp_path / "b.db", USER).path
    store.engine_for(f"sqlite:///{live}").dispose()
    for side in ("", "-wal", "-shm"):
        Path(f"{live}{side}").unlink(missing_ok=True)
    live.write_bytes(b"damaged " * 1000)  # a database that cannot be read
    Path(f"{live}-wal").write_bytes(b"its -wal file")

    replace, held = os.replace, []

    def watched(source: object, target: object) -> None:
        held.append(live.is_file())  # a database is at the path at every rename
        replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", watched)
    report = store.restore_backup(made, str(live), USER)
    assert held and all(held)
    assert report is not None and report.plan.keep_as is not None
    assert report.plan.notes[0].startswith("The database being replaced cannot be read (")
    aside = report.plan.keep_as
    assert aside.read_bytes() == b"damaged " * 1000 and aside.stat().st_mode & 0o777 == 0o600
    assert Path(f"{aside}-wal").read_bytes() == b"its -wal file"  # never applied to the new one
    assert sqlite_rows(live, "audits") == 2


def test_a_restore_that_fails_on_the_disk_says_what_is_where(tmp_path):
    live = tmp_path / "live.db"
    db = filled(str(live))
    made = db.backup(tmp_path / "b.db", USER).path
    for n in range(2, 150):  # the database grew since: a copy of it is bigger than the backup
        add_return(db.engine, "A1", n)
    store.engine_for(f"sqlite:///{live}").dispose()
    size = made.stat().st_size
    runner = CliRunner()
    for limit, said in [
        (size // 2, f"Restoring {made} stopped while copying it beside the database: "),
        (
            size + 16384,
            f"Restoring {made} stopped while keeping a copy of the database it replaces as "
            f"{tmp_path}/live.db.replaced-",
        ),
    ]:
        with file_size_limit(limit):
            failed = runner.invoke(cli, ["restore", str(made), "--db", str(live), "--yes"])
        assert failed.exit_code == 2, failed.output
        last = failed.output.splitlines()[-1]
        assert last.startswith(f"Error: {said}"), last
        assert "disk I/O error" in last or "database or disk is full" in last, last
        assert f"Nothing was changed: {live} is as it was" in last
        assert sqlite_rows(live, "returns") == 149
        assert not list(tmp_path.glob("live.db.replaced-*")) and not list(tmp_path.glob(".*.tmp*"))


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


def test_a_postgresql_backup_under_a_writer_holds_every_committed_return(pg_db, tmp_path, request):
    add_audits(pg_db, ["A1"])
    with writing(pg_db.engine, at_most=3000) as committed:
        started_with = committed[0]
        report = pg_db.backup(tmp_path / "backup.dump", USER)
    assert started_with <= report.tables["returns"] < committed[0]  # it went on writing
    server = request.getfixturevalue("pg_server")
    target = fresh_pg_database(server)
    request.addfinalizer(lambda: drop_pg_database(server, target))
    assert store.restore_backup(report.path, target, USER) is not None
    restored = rows(store.engine_for(target))
    assert restored == {
        **report.tables,
        "access_log": report.tables["access_log"] + 1,  # the restore, recorded
    }
    assert restored["returns"] >= started_with


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
    new_folder = runner.invoke(cli, ["backup", f"{tmp_path / 'nightly'}/", "--db", str(live)])
    assert new_folder.exit_code == 0, new_folder.output  # a trailing / means a folder, made
    assert [p.suffix for p in (tmp_path / "nightly").iterdir()] == [".db"]
    assert (tmp_path / "nightly").stat().st_mode & 0o777 == 0o700
    not_a_folder = runner.invoke(cli, ["backup", f"{live}/", "--db", str(live)])
    assert not_a_folder.exit_code == 2  # a file named as a folder: one line, nothing written
    assert not_a_folder.output == (
        f"Error: [{live}] is a file, not a folder. Give a folder, or the name of a new file for "
        "the backup.\n"
    )
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


def wait_for(done: Callable[[], bool], seconds: float = 60) -> None:
    """Poll until the server's background round has done something; generous, because a
    loaded CI machine can take seconds for a backup round that takes milliseconds here."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"nothing happened in {seconds} s"
        time.sleep(0.02)


def test_serve_keeps_a_heartbeat_and_takes_a_backup_when_it_starts(tmp_path, caplog):
    live = tmp_path / "live.db"
    db = store.open_store(str(live))
    folder = tmp_path / "nightly"
    folder.mkdir()
    app = create_app(db, Settings(), heartbeat=True, backups=NightlyBackups(folder, keep=3))
    with caplog.at_level(logging.INFO, "formtool.web"), TestClient(app) as client:
        (server,) = db.running_servers()
        assert server.pid == os.getpid() and server.started_at <= server.seen_at
        # The file appears before it is verified: wait for the round to end, not the file.
        wait_for(lambda: any("verified" in r.getMessage() for r in caplog.records))
        (first,) = folder.glob("formtool-*.db")
        with pytest.raises(BackupError, match=f"process {os.getpid()}, running since"):
            store.restore_backup(first, str(live), USER)
        assert "formtool users add" in client.get("/login").text  # it answers
    assert db.running_servers() == []  # removed on a clean shutdown
    assert db.access_entries("formtool serve", None, None, None)[-1].action == "backup taken"

    caplog.clear()
    taken = tmp_path / "taken"  # a file where the folder should be: the backup fails,
    taken.write_text("")  # is logged, and the server goes on
    app = create_app(db, Settings(), heartbeat=True, backups=NightlyBackups(taken))
    with caplog.at_level(logging.ERROR, "formtool.web"), TestClient(app) as client:
        wait_for(lambda: bool(caplog.records))
        assert "formtool users add" in client.get("/login").text
    assert [r.getMessage() for r in caplog.records] == [
        f"The nightly backup to {taken} failed: [{taken}] keeping the newest backups needs a "
        "folder, not a file."
    ]


def test_a_nightly_round_that_fails_anywhere_is_logged_and_the_next_comes(
    tmp_path, caplog, monkeypatch
):
    db = store.open_store(str(tmp_path / "live.db"))
    folder = tmp_path / "nightly"
    folder.mkdir()

    def unreadable(folder: Path, within: dt.timedelta) -> Path | None:
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(duties, "recent_backup", unreadable)  # the first look at the folder
    monkeypatch.setattr(  # every night comes in a twentieth of a second
        duties, "next_backup_at", lambda after, hour: after + dt.timedelta(seconds=0.05)
    )
    app = create_app(db, Settings(), heartbeat=False, backups=NightlyBackups(folder))
    with caplog.at_level(logging.INFO, "formtool.web"), TestClient(app):
        wait_for(lambda: any("verified" in r.getMessage() for r in caplog.records))
    said = [r.getMessage() for r in caplog.records if r.name == "formtool.web"]
    assert said[0] == (
        f"The nightly backup to {folder} failed: [Errno 13] Permission denied: '{folder}'"
    )
    assert said[1].startswith(f"Backup written and verified: {folder}/formtool-")
    assert list(folder.glob("formtool-*.db"))  # the next night's was taken


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
