"""Saying what happened, exactly (issue 18, part 4): a database that fails part-way through an
import (PostgreSQL stopped, a full disk), another formtool holding SQLite's write lock, damaged,
empty, missing and read-only database files, the web workspace during an outage, and a user on
every event."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from formtool import clock, store
from formtool.access.accounts import add_user
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.generate import record_audits, render
from formtool.read.cases import Case, load_cases, write_case_list
from formtool.settings import Settings
from formtool.store import Store
from formtool.web import create_app

from conftest import Demo, _pg_binaries, _start_cluster, answers_for, missing

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

DUE = dt.date(2026, 11, 30)
AGAIN = "Run the same command again: stored returns will be `unchanged`."
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Kit:
    """Four CSC audits and their completed returns (file name, bytes)."""

    cases: list[Case]
    returns: list[tuple[str, bytes]]


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    form = get_form("csc")
    rng = random.Random(18)
    path = tmp_path_factory.mktemp("failures-kit") / "cases.csv"
    write_case_list(path, [synthetic_case(form, i, DUE, rng) for i in range(1, 5)])
    cases = load_cases(path, form)
    returns = []
    for case in cases:
        answers = synthetic_answers(form, case, rng, clock.today())
        filled = fill_return(render(form, case, "docx"), "docx", form, answers)
        returns.append((f"{case.audit_id}.docx", filled))
    return Kit(cases, returns)


def returns_folder(kit: Kit, folder: Path) -> Path:
    folder.mkdir()
    for name, data in kit.returns:
        (folder / name).write_bytes(data)
    return folder


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def statuses(output: str) -> dict[str, str]:
    """audit id -> status, from the import table."""
    return dict(re.findall(r"^\S+\.docx +(\S+) +(\w+) ", output, re.M))


def stored_returns(db: Store) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.returns)).scalar_one())


def outage_error(engine: sa.Engine, text: str) -> sa.exc.OperationalError:
    """What the driver raises when the database goes away, as SQLAlchemy hands it on."""
    dbapi = engine.dialect.dbapi
    assert dbapi is not None  # a connected engine has its driver
    return sa.exc.OperationalError("SELECT 1", {}, dbapi.OperationalError(text))


def fail_after(monkeypatch: pytest.MonkeyPatch, stores: int, then) -> None:
    """Store.store_return works `stores` times, then calls `then()` (which makes the database
    fail, or raises) and tries again as the import would."""
    original = Store.store_return
    done: list[int] = []

    def store_return(self, *args, **kwargs):
        if len(done) == stores:
            then()
        done.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "store_return", store_return)


def test_a_batch_the_database_stops_lists_what_was_stored_and_can_run_again(
    db_url, kit, tmp_path, monkeypatch
):
    db = store.open_store(db_url)
    record_audits(db, get_form("csc"), kit.cases, user="test")
    folder = returns_folder(kit, tmp_path / "returns")

    def stop():
        raise outage_error(db.engine, "server closed the connection unexpectedly")

    fail_after(monkeypatch, 2, stop)
    result = run("import", str(folder), "--db", db_url)
    assert result.exit_code == 2
    first, second, third, fourth = (c.audit_id for c in kit.cases)
    assert statuses(result.output) == {first: "imported", second: "imported"}
    assert "2 imported, 0 updated, 0 unchanged, 0 rejected of 2 return(s)." in result.output
    error = result.output.splitlines()[-1]
    assert error.startswith(f"Error: The database {store.shown(db_url)} failed: server closed")
    assert error.endswith(
        f"The import stopped at {folder / (third + '.docx')}: 2 return(s) listed above were "
        f"stored before it stopped; the return it was importing from {third}.docx was not "
        f"stored; 1 file(s) after it were not read. {AGAIN}"
    )
    assert "nothing was changed" not in result.output.lower()
    assert stored_returns(db) == 2
    as_json = run("import", str(folder), "--db", db_url, "--json")  # fails again, at once
    assert as_json.exit_code == 2
    assert [o["status"] for o in json.loads(as_json.stdout)] == ["unchanged", "unchanged"]
    assert as_json.stderr.endswith(
        f"nothing was stored before it stopped; the return it was importing from {third}.docx "
        f"was not stored; 1 file(s) after it were not read. {AGAIN}\n"
    )

    monkeypatch.undo()
    again = run("import", str(folder), "--db", db_url)
    assert again.exit_code == 0, again.output
    assert statuses(again.output) == {
        first: "unchanged",
        second: "unchanged",
        third: "imported",
        fourth: "imported",
    }
    assert stored_returns(db) == 4


def test_a_command_that_fails_says_what_it_had_saved(db_url, kit, monkeypatch):
    """The generic database error says 'nothing was changed' only when that is true."""
    db = store.open_store(db_url)
    record_audits(db, get_form("csc"), kit.cases, user="test")
    audit = kit.cases[0].audit_id
    monkeypatch.setattr(
        "formtool.programme.workflow.check_audit",
        lambda *a, **k: (_ for _ in ()).throw(outage_error(db.engine, "connection refused")),
    )
    result = run("check", audit, "--accept", "--db", db_url)
    assert result.exit_code == 2
    assert result.output.endswith("Nothing was changed by this command.\n")

    def saved_then_failed(db_, audit_id, reason, user):
        db_.record_events([(audit_id, "noted", "")], user)
        raise outage_error(db.engine, "connection refused")

    monkeypatch.setattr("formtool.programme.workflow.check_audit", saved_then_failed)
    result = run("check", audit, "--accept", "--db", db_url)
    assert result.exit_code == 2
    assert result.output.endswith(
        "1 change(s) this command made before the failure were saved, each complete; the "
        "change it was making was not saved.\n"
    )


def test_the_demo_on_a_named_database_counts_what_it_saved(tmp_path, monkeypatch):
    """`demo --db` opens the database itself first: its saves still count for the error."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    def saved_then_failed(*_args, **_kwargs):
        db = store.open_store(url)
        with store.transaction(db.engine) as conn:  # stands in for the demo's first saves
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        raise outage_error(db.engine, "disk I/O error")

    monkeypatch.setattr("formtool.demo.run.run_demo", saved_then_failed)
    result = run("demo", "--out", str(tmp_path / "out"), "--db", url)
    assert result.exit_code == 2
    assert "1 change(s) this command made before the failure were saved" in result.output
    own = run("demo", "--out", str(tmp_path / "own"))  # its own database: named too
    assert own.exit_code == 2
    assert own.output.startswith(f"Error: The database {tmp_path / 'own' / 'formtool.db'} failed")


def test_postgresql_stopped_mid_import(kit, tmp_path, monkeypatch):
    """A real server, private to this test (the suite's own is never stopped), stopped
    after two returns were stored."""
    binaries = _pg_binaries()
    if binaries is None:
        missing("PostgreSQL is not installed (no initdb): the private server cannot start")
    root = Path(tempfile.mkdtemp(prefix="formtool-pg-stop-"))  # the postgres user reaches it
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # as conftest

    def pg_ctl(*args: str, check: bool = True) -> None:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(root / "data"), *args],
            check=check,
            capture_output=True,
            timeout=60,
        )

    try:
        url = _start_cluster(root)
        db = store.open_store(url)
        record_audits(db, get_form("csc"), kit.cases, user="test")
        folder = returns_folder(kit, tmp_path / "returns")
        fail_after(monkeypatch, 2, lambda: pg_ctl("-m", "immediate", "stop"))
        result = run("import", str(folder), "--db", url)
        assert result.exit_code == 2
        first, second, third, _ = (c.audit_id for c in kit.cases)
        assert statuses(result.output) == {first: "imported", second: "imported"}
        error = result.output.splitlines()[-1]
        assert error.startswith(f"Error: The database {store.masked(url)} failed: ")
        assert "that the database server is running" in error
        assert error.endswith(
            f"2 return(s) listed above were stored before it stopped; the return it was "
            f"importing from {third}.docx was not stored; 1 file(s) after it were not read. "
            f"{AGAIN}"
        )
        monkeypatch.undo()
        pg_ctl("-l", str(root / "log"), "-w", "start", "-o", f"-k {root} -c listen_addresses=''")
        assert stored_returns(db) == 2
        again = run("import", str(folder), "--db", url)
        assert again.exit_code == 0, again.output
        assert list(statuses(again.output).values()) == ["unchanged"] * 2 + ["imported"] * 2
    finally:
        store.engine_for(url).dispose()
        pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_a_full_disk_mid_import_on_sqlite(kit, tmp_path):
    """SQLite's page limit stands in for a full disk: the returns that fit are stored."""
    url = f"sqlite:///{tmp_path / 'full.db'}"
    db = store.open_store(url)
    record_audits(db, get_form("csc"), kit.cases, user="test")
    folder = returns_folder(kit, tmp_path / "returns")
    with db.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
    room = sum(len(d) for _, d in kit.returns[:2]) // 4096 + 8  # about two returns' worth

    def small_disk(dbapi_connection, _record) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + room}")

    db.engine.dispose()
    sa.event.listen(db.engine, "connect", small_disk)
    try:
        result = run("import", str(folder), "--db", url)
    finally:
        sa.event.remove(db.engine, "connect", small_disk)
        db.engine.dispose()
    assert result.exit_code == 2
    stored = [a for a, s in statuses(result.output).items() if s == "imported"]
    assert 1 <= len(stored) < 4 and stored_returns(db) == len(stored)
    error = result.output.splitlines()[-1]
    assert error.startswith(
        f"Error: The database {tmp_path / 'full.db'} failed: database or disk is full. The "
        "disk that holds it is full: free some space, then try again. The import stopped at "
    )
    assert f"{len(stored)} return(s) listed above were stored before it stopped" in error
    assert error.endswith(AGAIN) and "server" not in error
    again = run("import", str(folder), "--db", url)
    assert again.exit_code == 0
    assert sorted(statuses(again.output).values()) == sorted(
        ["unchanged"] * len(stored) + ["imported"] * (4 - len(stored))
    )


def test_a_write_waits_for_another_formtool_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "busy.db"
    store.open_store(str(path))
    monkeypatch.setattr("formtool.store.engine.LOCK_NOTICE_SECONDS", 0.2)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another formtool, writing
    releasing = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    releasing.start()
    try:
        result = run("access-log", "--purge", "--db", str(path))
    finally:
        releasing.join()
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Waiting for another formtool to finish writing to {path}…\n"
    assert run("access-log", "--purge", "--db", str(path)).stderr == ""  # nobody else writing

    monkeypatch.setattr("formtool.store.engine.LOCK_WAIT_SECONDS", 0.4)
    other.execute("BEGIN IMMEDIATE")
    try:
        result = run("access-log", "--purge", "--db", str(path))
    finally:
        other.execute("COMMIT")
        other.close()
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"Waiting for another formtool to finish writing to {path}…",
        f"Error: The database {path} failed: database is locked. Another formtool kept it busy "
        "for over 0.4 seconds: wait for it to finish, then try again. Nothing was changed by this "
        "command.",
    ]


def test_a_damaged_database_says_to_restore_it(tmp_path):
    path = tmp_path / "damaged.db"
    store.open_store(str(path)).engine.dispose()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xa5" * (4096 - 100)  # the page listing the tables, overwritten
    path.write_bytes(bytes(data))
    result = run("status", "--db", str(path))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: Cannot open the database {path}: database disk image is malformed. It is "
        "damaged: restore it from a backup with `formtool restore BACKUP`.\n"
    )
    junk = tmp_path / "notes.db"
    junk.write_text("my notes")
    result = run("import", "x.docx", "--db", str(junk))
    assert result.exit_code == 2
    assert "file is not a database" in result.output
    assert result.output.endswith("restore it from a backup with `formtool restore BACKUP`.\n")
    assert junk.read_text() == "my notes"


def test_an_empty_file_is_never_made_a_database(tmp_path):
    empty = tmp_path / "copy.db"
    empty.touch()
    for command in (["status"], ["import", "x.docx"], ["users", "add", "ann", "--role", "viewer"]):
        result = run(*command, "--db", str(empty))
        assert result.exit_code == 2
        assert result.output == (
            f"Error: [{empty}] is an empty file (0 bytes), not a formtool database: it may be "
            "a copy that failed. Restore it from a backup (`formtool restore BACKUP`), or "
            "delete it to start a new database.\n"
        )
    assert empty.stat().st_size == 0


def test_a_missing_database_is_refused_by_reading_and_announced_by_writing(tmp_path):
    typo = tmp_path / "fromtool.db"
    for command in (
        ["status"],
        ["export"],
        ["pack", "pmu", "--month", "2026-11", "--out", str(tmp_path / "p")],
        ["pack", "file", "--month", "2026-11"],
        ["users", "list"],
        ["access-log"],
    ):
        result = run(*command, "--db", str(typo))
        assert result.exit_code == 2, command
        assert result.output == (
            f"Error: No database at {typo}; check --db or FORMTOOL_DB (a command that only "
            "reads never creates one).\n"
        )
    assert not typo.exists() and not (tmp_path / "p").exists()
    made = run("access-log", "--purge", "--db", str(typo))
    assert made.exit_code == 0
    assert made.stderr == f"Creating a new database at {typo}\n"
    assert typo.stat().st_size > 0
    assert run("access-log", "--purge", "--db", str(typo)).stderr == ""


def _read_only(folder: Path) -> None:
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_reading_commands_work_on_a_read_only_database(demo_run: Demo, tmp_path, monkeypatch):
    """A copy on read-only media (file 0444 in a 0555 folder; formtool treats these as
    read-only even for an administrator, whom the system would let write): opened read-only,
    no -wal or -shm made, and nothing with case-level data leaves unrecorded."""
    folder = tmp_path / "media"
    folder.mkdir()
    copy = folder / "formtool.db"
    with sqlite3.connect(demo_run.out / "formtool.db") as live, sqlite3.connect(copy) as target:
        live.backup(target)
    target.close()
    writable = run("status", "--month", "2026-11", "--json", "--db", str(copy))
    logged = run("access-log", "--json", "--db", str(copy))
    assert "viewed the status" in logged.stdout  # names and case numbers seen, recorded
    _read_only(folder)
    before = _listing(folder)
    try:
        shown = run("status", "--month", "2026-11", "--json", "--db", str(copy))
        assert shown.exit_code == 0
        full = json.loads(writable.stdout)
        assert full["auditors"] and full["outstanding"]  # the demo month has both
        counts_only = full | {"auditors": {}, "outstanding": [], "overdue": []}
        assert json.loads(shown.stdout) == counts_only
        assert "showing counts only" in shown.stderr
        for command, what in (
            (["export"], "an export"),
            (["pack", "file", "--month", "2026-11", "--out", str(tmp_path / "f")], "a file pack"),
            (
                ["pack", "pmu", "--month", "2026-11", "--include-names", "--out", str(tmp_path)],
                "a pack with names",
            ),
        ):
            refused = run(*command, "--db", str(copy))
            assert refused.exit_code == 2, command
            assert refused.output == (
                f"Error: The database {copy} is read-only here, so {what} could not be "
                "recorded in the access log, and case-level data never leaves unrecorded. Copy "
                "the database to a folder you may write to and run the command there.\n"
            )
        made: list[dict] = []  # the PMU pack's own rendering is tested in test_packs

        def record_pack(*_args: Any, **kwargs: Any) -> list[Path]:
            made.append(kwargs)
            return []

        monkeypatch.setattr("formtool.packs.pmu.pmu_pack", record_pack)
        figures = run(
            "pack", "pmu", "--month", "2026-11", "--out", str(tmp_path), "--db", str(copy)
        )
        assert figures.exit_code == 0 and made[0]["aggregate_only"] is True
        assert figures.stderr.startswith(
            "The database is read-only here, so this pack holds figures only, without case "
            "numbers (those leave only when the access log records them).\n"
        )  # then the loud line for the demo's one concern, not yet emailed
        assert figures.stderr.count("\n") == 2 and "URGENT: 1 immediate concern" in figures.stderr
        writing = run("check", "CSC-X", "--accept", "--db", str(copy))
        assert writing.exit_code == 2
        assert writing.output == (
            f"Error: The database {copy} is read-only here (its file or folder may not be "
            "written), and this command changes it. Copy it to a folder you may write to, or "
            "use a command that only reads (status, pack pmu).\n"
        )
        assert _listing(folder) == before  # no -wal, no -shm, not a byte changed
    finally:
        folder.chmod(0o755)
        copy.chmod(0o644)


def test_an_old_schema_on_read_only_media_says_how_to_upgrade(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    old = folder / "old.db"
    db = store.open_store(str(old))
    with store.transaction(db.engine) as conn:
        conn.execute(sa.text("update alembic_version set version_num = '0009'"))
    db.engine.dispose()
    _read_only(folder)
    try:
        result = run("status", "--db", str(old))
    finally:
        folder.chmod(0o755)
        old.chmod(0o644)
    assert result.exit_code == 2
    assert result.output == (
        f"Error: The database {old} was made by an older formtool (schema 0009) and is "
        "read-only here, so it cannot be upgraded. Run any formtool command on it once where "
        "it may be written (that upgrades it), then use it here.\n"
    )
    assert stat.S_IMODE(old.stat().st_mode) == 0o644


def test_the_sqlite_hints_never_mention_a_database_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for said in ("attempt to write a readonly database", "disk I/O error", "unable to open"):
        told = store.describe(sa.exc.OperationalError("INSERT", {}, Exception(said)), url)
        assert "server" not in told, told
    pg = store.describe(
        sa.exc.OperationalError("SELECT", {}, Exception("connection refused")),
        "postgresql+psycopg://qa:secret@db/formtool",
    )
    assert pg == (
        "The database postgresql+psycopg://qa:***@db/formtool failed: connection refused. Check "
        "--db or FORMTOOL_DB and that the database server is running."
    )


# --- the web workspace during an outage ---------------------------------------------------


@pytest.fixture
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    from formtool.access import accounts

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))


def _token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no csrf field on the page"
    return found[1]


def _signed_in(app) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login").text
    response = client.post(
        "/login", data={"name": "olive", "password": PASSWORD, "csrf": _token(page), "next": "/"}
    )
    assert response.status_code == 303, response.text
    return client


def _go_down(engine: sa.Engine):
    """Every new connection refused, the pooled ones dropped: the server went away."""

    dbapi = engine.dialect.dbapi
    assert dbapi is not None  # a connected engine has its driver

    def refuse(*_args):
        raise dbapi.OperationalError("connection refused (the server is down)")

    engine.dispose()
    sa.event.listen(engine, "do_connect", refuse)
    return refuse


def test_the_web_says_the_database_is_down_on_every_page(db_url, kit, quick_hashes):
    db = store.open_store(db_url)
    add_user(db, "olive", "officer", PASSWORD)
    record_audits(db, get_form("csc"), kit.cases, user="test")
    app = create_app(db, Settings(council="Example Council"))
    client = _signed_in(app)
    upload_page = client.get("/returns").text
    original = Store.store_return
    calls: list[int] = []
    refusing = []

    def store_return(self, *args, **kwargs):  # the server goes after two returns
        if len(calls) == 2:
            refusing.append(_go_down(db.engine))
        calls.append(1)
        return original(self, *args, **kwargs)

    Store.store_return = store_return  # type: ignore[method-assign]
    try:
        files = [("files", (n, io.BytesIO(d))) for n, d in kit.returns]
        response = client.post("/returns", data={"csrf": _token(upload_page)}, files=files)
    finally:
        Store.store_return = original  # type: ignore[method-assign]
    try:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "60"
        page = response.text
        assert "The database is unreachable" in page
        assert "The import stopped part-way" in page and "already stored show as unchanged" in page
        rows = re.findall(r'<tr class="row-(\w+)">\s*<th scope="row" class="file">([^<]+)', page)
        assert rows == [("imported", n) for n, _ in kit.returns[:2]]
        for path in ("/", "/audits", "/returns", f"/audits/{kit.cases[0].audit_id}", "/nowhere"):
            down = client.get(path)
            assert down.status_code == 503, path
            assert "The database is unreachable" in down.text
            assert "Nothing was changed." in down.text and "Internal Server Error" not in down.text
        anonymous = TestClient(app, follow_redirects=False).get("/login")
        assert anonymous.status_code == 503 and "formtool" in anonymous.text
    finally:
        for refuse in refusing:
            sa.event.remove(db.engine, "do_connect", refuse)
        db.engine.dispose()
    assert stored_returns(db) == 2


# --- every event has a user -----------------------------------------------------------------


def _event_users(db: Store) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(store.events.c.user_name)).scalars())


def test_every_event_has_a_user(db_url, kit, tmp_path, demo_run: Demo):
    cases = tmp_path / "cases.csv"
    write_case_list(cases, [dict(c.facts, auditor_email="") for c in kit.cases[:2]])
    assert run(
        "generate", "--form", "csc", "--cases", str(cases), "--out", str(tmp_path / "f"),
        "--db", db_url,
    ).exit_code == 0  # fmt: skip
    # The forms generate made for this database (they carry its keyed checksum), filled in.
    answers = {**answers_for(get_form("csc")), "completion.status": "Final"}
    made = [(p.name, fill_docx(p.read_bytes(), answers)) for p in (tmp_path / "f").glob("*.docx")]
    folder = returns_folder(Kit(kit.cases[:2], sorted(made)), tmp_path / "returns")
    assert run("import", str(folder), "--db", db_url).exit_code == 0
    assert run("check", kit.cases[0].audit_id, "--accept", "--db", db_url).exit_code == 0
    db = store.open_store(db_url)
    users = _event_users(db)
    assert len(users) >= 5 and set(users) == {store.os_user()}  # allocated, returned, checked
    with store.acting_as("web:olive"):  # a web request: its events carry the signed-in user
        db.record_events([(kit.cases[1].audit_id, "noted", "")])
    assert _event_users(db)[-1] == "web:olive"
    demo = store.open_store(str(demo_run.out / "formtool.db"), "read")
    assert "" not in _event_users(demo)
