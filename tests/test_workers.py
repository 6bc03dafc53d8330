"""Several workers on one database (`serve --workers N`, or several hosts behind a proxy): what
one request leaves for the next lives in the database or is claimed there, so any worker may
answer. Two real `formtool serve` processes on one PostgreSQL database share sign-in, the
throttle, sign-out and allocation previews; `--workers 2` runs two processes that stop
together; caches, previews and background duties agree across workers on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from starlette.testclient import TestClient
from test_backup import wait_for
from test_web import PASSWORD, hidden_value, token
from test_web_allocate import MONTH, PLAN, inputs

from formtool import store
from formtool.access.accounts import add_user
from formtool.errors import FormtoolError
from formtool.settings import Settings
from formtool.web import NightlyBackups, Workers, create_app, duties, views
from formtool.web.pages import REPORTS_GENERATION, workspace_changed

from conftest import drop_pg_database, migrated_pg_database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(db_url: str, folder: Path, *more: str) -> subprocess.Popen:
    """`formtool serve` on `db_url`, on a free port of this computer."""
    port = str(_free_port())
    return subprocess.Popen(
        [sys.executable, "-m", "formtool", "serve", "--db", db_url, "--port", port, *more],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FORMTOOL_")},
    )


def address_of(process: subprocess.Popen) -> str:
    """The address a starting server says it serves on (after any notes)."""
    assert process.stdout is not None
    said = [process.stdout.readline()]
    while " on http://" not in said[-1] and said[-1] and len(said) < 20:
        said.append(process.stdout.readline())
    assert " on http://" in said[-1], "".join(said)
    return said[-1].split(" on ", 1)[1].split()[0]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def two_servers(pg_server: str, tmp_path_factory) -> Iterator[tuple[str, str, store.Store, int]]:
    """Two separate servers on one fresh PostgreSQL database, with two officers: A, and B
    with two workers (`serve --workers 2`, whose process id comes last)."""
    url = migrated_pg_database(pg_server)
    db = store.open_store(url)
    add_user(db, "olive", "officer", PASSWORD)
    add_user(db, "tina", "officer", PASSWORD)  # the throttle's: olive is never slowed
    folder = tmp_path_factory.mktemp("two")
    servers = [start(url, folder), start(url, folder, "--workers", "2")]  # both at once
    try:
        a, b = (address_of(process) for process in servers)
        yield a, b, db, servers[1].pid
        for process in servers:
            stop(process)
        assert db.running_servers() == []  # each worker removed its heartbeat on the way out
    finally:
        for process in servers:
            stop(process)
        drop_pg_database(pg_server, url)


def sign_in(
    client: httpx.Client, server: str, password: str = PASSWORD, name: str = "olive"
) -> httpx.Response:
    page = client.get(f"{server}/login").text
    return client.post(
        f"{server}/login",
        data={"name": name, "password": password, "csrf": token(page), "next": "/"},
    )


def post(client: httpx.Client, url: str, data: dict | None = None, files=None, page: str = ""):
    """A form post carrying the CSRF token of `page` (as a browser would)."""
    fields = {"csrf": token(client.get(page).text), **(data or {})}
    return client.post(url, data=fields, files=files)


def confirm(client: httpx.Client, server: str, preview: str) -> httpx.Response:
    fields = {"csrf": token(preview), "mode": "first", "token": hidden_value(preview, "token")}
    return client.post(f"{server}/allocate/confirm", data=fields)


def test_signed_in_on_one_server_previewed_there_confirmed_and_signed_out_on_the_other(
    two_servers, tmp_path
):
    a, b, db, _ = two_servers
    with httpx.Client(follow_redirects=False, timeout=30) as browser:  # one cookie jar
        assert sign_in(browser, a).status_code == 303
        assert browser.get(f"{b}/").status_code == 200  # B knows A's session
        files = inputs(tmp_path, "W", 5)
        files[2].write_text(PLAN.replace("size: 3", "size: 1"), encoding="utf-8")  # one form
        upload = [
            (k, (p.name, p.read_bytes()))
            for k, p in zip(("population", "auditors", "plan"), files, strict=True)
        ]
        page = post(browser, f"{a}/allocate", {"month": MONTH, "seed": "7"}, upload, f"{a}/")
        assert page.status_code == 200, page.text
        confirmed = confirm(browser, b, page.text)
        assert confirmed.status_code == 303, confirmed.text
        with db.engine.connect() as conn:  # recorded by B from A's preview
            assert store.queries.audit_rows(conn, [MONTH])
        shown = browser.get(f"{a}/allocate?month={MONTH}").text  # and A shows it
        assert "audit(s) allocated</h2>" in shown
        assert "This preview has expired" in confirm(browser, a, page.text).text  # used up
        out = post(browser, f"{b}/logout", page=f"{b}/")
        assert out.status_code == 303
        assert browser.get(f"{a}/").headers["location"] == "/login?next=/"  # gone on A too


def test_wrong_passwords_on_one_server_throttle_the_other(two_servers):
    a, b, _, _ = two_servers
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        for attempt in range(4):  # 3 free failures, then each waits 1 s, 2 s ...
            if attempt == 3:
                time.sleep(1.05)
            assert sign_in(browser, a, "wrong password", "tina").status_code == 401
        refused = sign_in(browser, b, name="tina")  # the right password, on B, within 2 s
        assert refused.status_code == 429, refused.text
        assert "Too many failed sign-ins" in refused.text


def test_serve_with_two_workers_runs_two_processes_on_one_port(two_servers):
    _a, b, db, parent = two_servers
    workers = [w for w in db.running_servers() if _parent_of(w.pid) == parent]
    assert len(workers) == 2 and len({w.server for w in workers}) == 2  # a heartbeat each
    for _ in range(4):
        assert httpx.get(f"{b}/login", timeout=10).status_code == 200


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])


class FakeServer:
    """A worker's server that says it listens, then (the first worker) fails once the other
    listens too, or (the other) runs until stopped."""

    started = True

    def __init__(self, ready, folder: Path) -> None:
        self.ready, self.folder = ready, folder

    def run(self, sockets) -> None:
        self.ready()
        try:
            os.close(os.open(self.folder / "first", os.O_CREAT | os.O_EXCL))
        except FileExistsError:  # the other one
            (self.folder / "other-ready").touch()
            time.sleep(60)
            return
        deadline = time.monotonic() + 20
        while not (self.folder / "other-ready").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("a worker failed")


QUIET_DB = SimpleNamespace(after_fork=lambda: None)


def test_a_worker_that_stops_is_reported_and_the_others_are_stopped(tmp_path):
    readied: list[bool] = []
    with socket.socket() as sock:
        workers = Workers(2, sock, lambda ready: FakeServer(ready, tmp_path), QUIET_DB)
        with pytest.raises(FormtoolError, match=r"Worker process \d+ stopped \(exit status 1\)"):
            workers.run(lambda: readied.append(True))
    assert readied == [True] and workers.pids == []  # the other was stopped and reaped


def test_ctrl_c_stops_every_worker(tmp_path):
    (tmp_path / "first").touch()  # both workers run until stopped

    def interrupted() -> None:  # Ctrl+C once they listen
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with socket.socket() as sock:
            workers = Workers(2, sock, lambda ready: FakeServer(ready, tmp_path), QUIET_DB)
            started = time.monotonic()
            workers.run(interrupted)  # returns: Ctrl+C ends the server, not an error
    finally:
        signal.signal(signal.SIGINT, previous)
    assert workers.pids == [] and time.monotonic() - started < 5


# --- what the workers share, on both backends ---------------------------------------------


def test_a_duty_is_claimed_by_one_worker_a_day(db):
    day = dt.date(2026, 12, 6)
    assert db.claim_duty("backup x", day, "worker-1", "host-a", 11)
    assert not db.claim_duty("backup x", day, "worker-2", "host-b", 12)  # taken
    assert db.claim_duty("backup x", day + dt.timedelta(days=1), "worker-2", "host-b", 12)
    db.release_duty("backup x", day, "worker-1")  # it failed: another may try
    assert db.claim_duty("backup x", day, "worker-2", "host-b", 12)
    assert sorted(db.duty_claims()) == [
        ("backup x", day, "worker-2"),
        ("backup x", day + dt.timedelta(days=1), "worker-2"),
    ]


def test_a_preview_is_kept_hashed_until_used_or_expired(db):
    later = dt.datetime(2999, 1, 1)
    files = {"population": ("p.csv", b"case_number\n1\n"), "auditors": ("a.csv", b"\x00\xff")}
    db.save_preview("h" * 64, MONTH, 7, "olive", files, dt.datetime(2000, 1, 1))
    found = db.allocation_preview("h" * 64, "olive", dt.datetime(2000, 1, 1))
    assert (found.month, found.seed, found.files) == (MONTH, 7, files)
    assert db.allocation_preview("h" * 64, "pat", dt.datetime(2000, 1, 1)) is None  # not hers
    assert db.allocation_preview("h" * 64, "olive", later) is None  # expired
    db.save_preview("i" * 64, MONTH, 1, "olive", {}, later)  # purges the expired first
    assert db.allocation_preview("h" * 64, "olive", dt.datetime(2000, 1, 1)) is None
    assert db.purge_previews(later) == 1 and not db.drop_preview("i" * 64)


def test_a_change_on_one_worker_redraws_every_workers_report(db, monkeypatch):
    drawn: list[str] = []

    def figures(db, period, today, min_base):
        drawn.append(period.label)
        return len(drawn)

    # stand-ins for the packs (the cache is under test, not the figures)
    document = SimpleNamespace(parts=[])
    monkeypatch.setitem(
        sys.modules, "formtool.packs.figures", SimpleNamespace(load_figures=figures)
    )
    monkeypatch.setitem(
        sys.modules, "formtool.packs.pmu", SimpleNamespace(pmu_document=lambda *a: document)
    )
    monkeypatch.setattr(views.queries, "figures_key", lambda figures, settings: str(figures))
    one, other = (create_app(db, Settings()).state.ws for _ in range(2))
    period = type("P", (), {"label": MONTH})()
    first = views._report(one, period)
    assert views._report(one, period) is first  # cached on this worker
    assert views._report(one, period, aggregate_only=True) is not first  # a viewer's apart
    before = db.generation(REPORTS_GENERATION)
    asyncio.run(workspace_changed(other))  # a change through the other worker
    assert db.generation(REPORTS_GENERATION) == before + 1
    assert views._report(one, period).figures != first.figures  # drawn again here
    assert drawn == [MONTH] * 3


def test_two_workers_take_one_backup_a_night_between_them(tmp_path, monkeypatch, caplog):
    db = store.open_store(f"sqlite:///{tmp_path / 'live.db'}")
    folder = tmp_path / "nightly"
    folder.mkdir()
    monkeypatch.setattr(duties, "recent_backup", lambda folder, within: None)  # never enough
    with caplog.at_level(logging.INFO, "formtool.web"):
        for says in ("written and verified", "is claimed already"):
            with TestClient(create_app(db, Settings(), backups=NightlyBackups(folder))):
                wait_for(lambda: any(says in r.getMessage() for r in caplog.records))  # noqa: B023
    assert len(list(folder.glob("formtool-*.db"))) == 1
    assert [duty for duty, _day, _server in db.duty_claims()] == [duties.backup_duty(folder)]


def test_two_workers_purge_the_access_log_once_a_day(db, monkeypatch):
    claimed: list[bool] = []
    claim = duties.ServerDuties.claim

    async def counted(self, duty: str, day: dt.date) -> bool:
        claimed.append(await claim(self, duty, day))
        return claimed[-1]

    monkeypatch.setattr(duties.ServerDuties, "claim", counted)

    def purged() -> bool:
        return bool(db.access_entries("formtool serve", None, None, None))

    for worker in (1, 2):
        with TestClient(create_app(db, Settings(), purge_daily=True)):
            wait_for(lambda: len(claimed) == worker and purged())  # noqa: B023
    assert claimed == [True, False]
    purges = db.access_entries("formtool serve", None, None, None)
    assert [entry.action for entry in purges] == ["access log purged"]
    assert [duty for duty, _day, _server in db.duty_claims()] == [duties.PURGE_DUTY]


def test_a_preview_nobody_confirms_goes_with_a_heartbeat(db):
    """The uploaded population (children's names) of a preview left unconfirmed is removed
    within a heartbeat of its expiry, not kept until someone previews again."""
    db.save_preview(
        "e" * 64, MONTH, 1, "olive", {"population": ("p.csv", b"x")}, dt.datetime(2000, 1, 1)
    )
    tidied: list[int] = []

    def tidy() -> int:
        tidied.append(db.purge_previews(dt.datetime(2999, 1, 1)))  # as if it had expired
        return tidied[-1]

    beats = duties.ServerDuties(db, True, None, every=0.01, tidy=tidy)

    async def run() -> None:
        await beats.start()
        await asyncio.sleep(0.2)
        await beats.stop()

    asyncio.run(run())
    assert (
        tidied[0] == 1 and db.allocation_preview("e" * 64, "olive", dt.datetime(2000, 1, 1)) is None
    )
