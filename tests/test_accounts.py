"""Accounts, sessions, the sign-in throttle, bounded hashing and the access log, on SQLite and
PostgreSQL: sessions end when they should, passwords follow the policy and never come from
the command line, a stranger cannot lock anyone out, and who saw what is on record."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import threading
import time
import warnings
from typing import Any

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner

from formtool import store
from formtool.access import accounts as users
from formtool.access.accounts import (
    NAME_SOFT_DELAY,
    SignInThrottle,
    UserError,
    add_user,
    password_problem,
    remove_user,
    set_password,
    set_roles,
)
from formtool.access.log import access_entries, purge, record_access
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.generate import record_audits
from formtool.settings import Settings
from formtool.web import allowed_hosts, create_app

from conftest import make_cases

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a different long phrase 42"
#: ada's authenticator app: an admin must have one while no council sign-in is configured.
ADMIN_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class CountingHasher:
    """argon2 with cheap parameters that counts checks and how many ran at once."""

    def __init__(self, pause: float = 0.0) -> None:
        self.inner = PasswordHasher(1, 8192, 1)
        self.pause, self.checks, self.running, self.most = pause, 0, 0, 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return False

    def verify(self, password_hash: str, password: str) -> bool:
        with self.lock:
            self.checks += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.pause)
            return bool(self.inner.verify(password_hash, password))
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(users, "_hasher", lambda: counting)
    return counting


@pytest.fixture
def db(db_url: str, hasher: CountingHasher):
    db = store.open_store(db_url)
    add_user(db, "olive", "officer", PASSWORD)
    add_user(db, "ada", "admin", PASSWORD)
    db.enrol_totp("ada", ADMIN_TOTP, 0, dt.datetime(2026, 1, 1))
    return db


@pytest.fixture
def now() -> list[float]:
    return [2_000_000_000.0]  # seconds since the epoch, moved by the tests


@pytest.fixture
def app(db, now):
    return create_app(db, Settings(), clock=lambda: now[0])


def token(page: str) -> str:
    marker = 'name="csrf" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def sign_in(app, name: str, password: str = PASSWORD, follow: str = "/") -> TestClient:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login").text
    response = client.post(
        "/login", data={"name": name, "password": password, "csrf": token(page), "next": follow}
    )
    assert response.status_code == 303, response.text
    if response.headers["location"].startswith("/login/code"):  # an admin: the code too
        ws = app.state.ws
        ws.db.enrol_totp(name, ADMIN_TOTP, 0, dt.datetime(2026, 1, 1))  # a code may be reused
        page = client.get(response.headers["location"]).text
        code = pyotp.TOTP(ADMIN_TOTP).at(int(ws.sessions.clock()))
        response = client.post(
            "/login/code", data={"code": code, "csrf": token(page), "next": follow}
        )
        assert response.status_code == 303, response.text
    return client


def post(client: TestClient, url: str, data: dict[str, Any] | None = None, page: str = "/"):
    return client.post(url, data={"csrf": token(client.get(page).text), **(data or {})})


def signed_in(client: TestClient) -> bool:
    return client.get("/").status_code == 200


# --- sessions ------------------------------------------------------------------------------


def test_password_reset_role_change_and_removal_end_sessions(db, app):
    first, second = sign_in(app, "olive"), sign_in(app, "olive")
    set_password(db, "olive", NEW_PASSWORD)
    assert not signed_in(first) and not signed_in(second)
    client = sign_in(app, "olive", NEW_PASSWORD)
    set_roles(db, "olive", ["viewer"])
    assert not signed_in(client)
    client = sign_in(app, "olive", NEW_PASSWORD)
    cookie = client.cookies.get("formtool_sid")
    remove_user(db, "olive")
    assert not signed_in(client)
    add_user(db, "olive", "officer", "yet another long phrase")  # the same person, back
    client.cookies.set("formtool_sid", cookie)
    assert not signed_in(client)
    with pytest.raises(UserError, match="no active user called 'olive2'"):
        remove_user(db, "olive2")


def test_only_a_hash_of_the_random_id_is_stored_and_no_cookie_can_be_forged(db, app):
    from itsdangerous import TimestampSigner

    client = sign_in(app, "olive")
    cookie = client.cookies.get("formtool_sid")
    assert cookie and len(cookie) >= 40
    with db.engine.connect() as conn:
        stored = [r.id_hash for r in conn.execute(sa.select(store.sessions)).all()]
    assert cookie not in stored and len(stored) == 1 and len(stored[0]) == 64
    # the old design signed {"user": name} with the secret in the database: no longer enough
    secret = db.server_secret()
    forged = TimestampSigner(secret).sign(
        __import__("base64").b64encode(json.dumps({"user": "olive", "since": 2e9}).encode())
    )
    stranger = TestClient(app, follow_redirects=False)
    stranger.cookies.set("formtool_session", forged.decode())
    assert not signed_in(stranger)


def test_idle_timeout_and_absolute_lifetime(app, now):
    client = sign_in(app, "olive")
    now[0] += 29 * 60
    assert signed_in(client)  # 29 minutes idle: still in (and last seen now)
    now[0] += 29 * 60
    assert signed_in(client)
    now[0] += 31 * 60
    assert not signed_in(client)  # 31 minutes idle: out
    client = sign_in(app, "olive")
    for _ in range(24):  # busy all day, a page every 20 minutes
        now[0] += 20 * 60
        assert signed_in(client)
    now[0] += 20 * 60
    assert not signed_in(client)  # past 8 hours: out, however busy


def test_a_password_change_ends_every_earlier_session(db, app):
    here, elsewhere = sign_in(app, "olive"), sign_in(app, "olive")
    copied = here.cookies.get("formtool_sid")
    page = "/account/password"
    common = post(
        here, page, {"current": PASSWORD, "new": "password1234", "again": "password1234"}, page
    )
    assert common.status_code == 400 and "most common" in common.text
    done = post(here, page, {"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD}, page)
    assert done.status_code == 303
    assert signed_in(here) and not signed_in(elsewhere)  # this browser has a fresh session
    assert here.cookies.get("formtool_sid") != copied
    thief = TestClient(app, follow_redirects=False)
    thief.cookies.set("formtool_sid", copied)  # a cookie copied before the change
    assert not signed_in(thief)
    sign_in(app, "olive", NEW_PASSWORD)


def test_the_current_password_is_guessed_no_faster_than_a_sign_in(db, app, hasher):
    client = sign_in(app, "olive")
    page = "/account/password"
    wrong = {"current": "not my password", "new": NEW_PASSWORD, "again": NEW_PASSWORD}
    before = hasher.checks
    answers = [post(client, page, wrong, page) for _ in range(5)]
    assert [a.status_code for a in answers] == [400] * 5
    assert all("current password is not right" in a.text for a in answers[:3])
    assert all("Too many wrong passwords" in a.text for a in answers[3:])
    assert hasher.checks - before == 3
    refused = [e.action for e in access_entries(db) if e.action == "password change refused"]
    assert len(refused) == 3


# --- passwords and accounts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "password", "problem"),
    [
        ("olive", "short one", "at least 12 characters"),
        ("olive", "my name is OLIVE ok", "must not contain the user name"),
        ("olive", "password1234", "most common"),
        ("olive", "Password1234", "most common"),
        ("olive", "correct horse battery", None),
    ],
)
def test_password_policy(name: str, password: str, problem: str | None) -> None:
    found = password_problem(name, password)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_short_old_password_and_admin_set_password_must_be_changed(db, app):
    with store.transaction(db.engine) as conn:  # an account from before the policy
        store.add_user(conn, "vic", "viewer", users._hash("ten chars!"))
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login").text
    response = client.post(
        "/login", data={"name": "vic", "password": "ten chars!", "csrf": token(page)}
    )
    assert response.headers["location"] == "/account/password"
    assert client.get("/reports").headers["location"] == "/account/password"
    assert "Choose a new password" in client.get("/account/password").text
    form = {"current": "ten chars!", "new": NEW_PASSWORD, "again": NEW_PASSWORD}
    assert post(client, "/account/password", form, "/account/password").status_code == 303
    assert client.get("/reports").status_code == 200
    admin = sign_in(app, "ada")
    added = post(
        admin,
        "/admin/users",
        {"name": "newbie", "roles": "officer", "new": NEW_PASSWORD, "again": NEW_PASSWORD},
        "/admin/users",
    )
    assert added.status_code == 303
    fresh = TestClient(app, follow_redirects=False)
    page = fresh.get("/login").text
    response = fresh.post(
        "/login", data={"name": "newbie", "password": NEW_PASSWORD, "csrf": token(page)}
    )
    assert response.headers["location"] == "/account/password"


def test_admin_manages_accounts_but_sees_no_case(db, app):
    admin = sign_in(app, "ada")
    for path in ("/admin/users", "/admin/sessions", "/admin/access-log", "/", "/reports"):
        assert admin.get(path).status_code == 200, path
    for path in ("/audits", "/status.json", "/moderation", "/allocate"):
        assert admin.get(path).status_code == 403, path
    officer = sign_in(app, "olive")
    assert officer.get("/admin/users").status_code == 403
    assert post(officer, "/admin/users", {"name": "x"}).status_code == 403
    changed = post(admin, "/admin/users/olive/roles", {"roles": ["moderator"]}, "/admin/users")
    assert changed.status_code == 303 and not signed_in(officer)
    assert "moderator" in admin.get("/admin/users").text
    reset = {"new": NEW_PASSWORD, "again": NEW_PASSWORD}
    assert post(admin, "/admin/users/olive/password", reset, "/admin/users").status_code == 303
    assert post(admin, "/admin/users/olive/deactivate", {}, "/admin/users").status_code == 303
    assert "deactivated" in admin.get("/admin/users").text
    alone = post(admin, "/admin/users/ada/roles", {"roles": ["officer"]}, "/admin/users")
    assert alone.status_code == 400 and "only admin" in alone.text
    changes = [
        (e.user, e.action, e.audit_id, e.detail)
        for e in access_entries(db)
        if e.action.startswith("account")
    ]
    assert changes == [
        ("web:ada", "account roles", None, "olive is now moderator; their sessions ended"),
        (
            "web:ada",
            "account password",
            None,
            "olive's password reset (to be changed at next sign-in); their sessions ended",
        ),
        ("web:ada", "account deactivate", None, "olive deactivated; their sessions ended"),
    ]
    with pytest.raises(UserError, match="only admin"):
        remove_user(db, "ada")


def test_cli_never_takes_a_password_as_an_option(db_url: str, hasher) -> None:
    runner = CliRunner()
    add = ["users", "add", "jo", "--role", "officer", "--role", "admin", "--db", db_url]
    assert runner.invoke(cli, [*add, "--password", "x" * 20]).exit_code == 2  # no such option
    short = runner.invoke(cli, add, input="short\nshort\n")
    assert short.exit_code == 2
    assert "at least 12 characters" in short.output
    done = runner.invoke(cli, add, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.exit_code == 0, done.output
    assert "jo added as officer,admin" in done.output
    assert PASSWORD not in done.output  # the prompt hides what is typed
    scripted = runner.invoke(
        cli,
        ["users", "add", "vi", "--role", "viewer", "--password-stdin", "--db", db_url],
        input=f"{PASSWORD}\n",
    )
    assert scripted.exit_code == 0, scripted.output
    listed = json.loads(runner.invoke(cli, ["users", "list", "--json", "--db", db_url]).output)
    assert [(u["name"], u["roles"]) for u in listed] == [
        ("jo", ["officer", "admin"]),
        ("vi", ["viewer"]),
    ]
    reset = runner.invoke(
        cli,
        ["users", "password", "vi", "--password-stdin", "--db", db_url],
        input="password1234\n",
    )
    assert reset.exit_code == 2 and "most common" in reset.output
    role = runner.invoke(cli, ["users", "role", "vi", "--role", "moderator", "--db", db_url])
    assert role.exit_code == 0 and "vi is now moderator" in role.output
    both = runner.invoke(cli, ["users", "sign-out", "vi", "--all", "--db", db_url])
    assert both.exit_code == 2
    ended = runner.invoke(cli, ["users", "sign-out", "--all", "--db", db_url])
    assert ended.exit_code == 0 and "0 session(s) ended." in ended.output


def test_cli_lists_and_ends_sessions(db, app, db_url: str) -> None:
    sign_in(app, "olive")
    runner = CliRunner()
    shown = json.loads(runner.invoke(cli, ["users", "sessions", "--json", "--db", db_url]).output)
    assert [s["user"] for s in shown] == ["olive"]
    client = sign_in(app, "ada")
    ended = runner.invoke(cli, ["users", "sign-out", "ada", "--db", db_url])
    assert ended.exit_code == 0 and "1 session(s) ended." in ended.output
    assert not signed_in(client)


# --- the sign-in throttle and hashing --------------------------------------------------------


async def _sign_in_all(app, attempts: list[tuple[str, str]], client_host: str = "10.1.1.1"):
    transport = httpx.ASGITransport(app=app, client=(client_host, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        page = (await client.get("/login")).text
        csrf = token(page)

        async def attempt(name: str, password: str) -> int:
            response = await client.post(
                "/login", data={"name": name, "password": password, "csrf": csrf}
            )
            return response.status_code

        return await asyncio.gather(*(attempt(n, p) for n, p in attempts))


def test_an_office_signs_in_at_once(db):
    names = [f"worker{i}" for i in range(8)]
    for name in names:
        add_user(db, name, "officer", PASSWORD)
    app = create_app(db, Settings())  # the real clock
    statuses = asyncio.run(_sign_in_all(app, [(n, PASSWORD) for n in names]))
    assert statuses == [303] * 8  # nobody is made to wait for the others' success


def test_throttle_holds_under_concurrency(app, hasher):
    statuses = asyncio.run(_sign_in_all(app, [("olive", "wrong password!")] * 40))
    assert hasher.checks == 3  # the allowed number, however many arrive at once
    assert sorted(statuses) == [401] * 3 + [429] * 37


def test_a_busy_refusal_costs_the_user_nothing(db, app, hasher, monkeypatch):
    hasher.pause = 0.3
    monkeypatch.setattr(users, "HASH_WAIT", 0.05)
    statuses = asyncio.run(_sign_in_all(app, [("olive", "wrong password!")] * 3))
    assert sorted(statuses) == [401, 401, 429] and hasher.checks == 2  # two slots, one busy
    hasher.pause = 0.0
    # the busy attempt was never checked, so it is not counted: a third failure is allowed
    # at once (counted, it would be the fourth and wait a second)
    assert asyncio.run(_sign_in_all(app, [("olive", "wrong password!")])) == [401]
    actions = [e.action for e in access_entries(db)]
    assert actions.count("sign-in refused: server busy") == 1
    assert actions.count("sign-in failed") == 3


def test_hashing_runs_a_few_at_a_time(app, hasher, monkeypatch):
    hasher.pause = 0.2
    users.set_hash_slots(2)
    try:
        statuses = asyncio.run(
            _sign_in_all(app, [(f"nobody{i}", "wrong password!") for i in range(8)])
        )
        assert hasher.most == 2 and hasher.checks == 8 and statuses == [401] * 8
        monkeypatch.setattr(users, "HASH_WAIT", 0.05)
        hasher.checks = 0
        busy = asyncio.run(
            _sign_in_all(app, [(f"other{i}", "wrong password!") for i in range(6)], "10.2.2.2")
        )
        assert 429 in busy and hasher.checks < 6 and hasher.most == 2
    finally:
        users.set_hash_slots(users.HASH_SLOTS)


def test_a_stranger_cannot_lock_the_real_user_out(db, now):
    throttle = SignInThrottle(db, lambda: now[0])
    for i in range(12):  # failures for olive from twelve other addresses
        assert throttle.admit("olive", f"203.0.113.{i}").wait == 0
    real = throttle.admit("olive", "192.0.2.7")
    assert real.wait == 0 and real.slow == NAME_SOFT_DELAY  # slowed, never locked out
    throttle.succeeded("olive", "192.0.2.7")
    assert throttle.admit("olive", "192.0.2.7").slow == 0
    for _ in range(3):
        throttle.admit("mo", "198.51.100.1")
    assert throttle.admit("mo", "198.51.100.1").wait == 1  # the attacker's own address waits
    assert throttle.admit("mo", "198.51.100.2").wait == 0


def test_forwarded_for_counts_only_from_the_named_proxy(db, now, hasher):
    def statuses(proxy: str | None) -> list[int]:
        app = create_app(db, Settings(), clock=lambda: now[0], trusted_proxy=proxy)

        async def run() -> list[int]:
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
                csrf = token((await client.get("/login")).text)
                found = []
                for i in range(4):
                    response = await client.post(
                        "/login",
                        data={"name": "olive", "password": "wrong password!", "csrf": csrf},
                        headers={"x-forwarded-for": f"198.51.100.{i}"},
                    )
                    found.append(response.status_code)
                return found

        return asyncio.run(run())

    assert statuses(None) == [401, 401, 401, 429]  # one address: the header is ignored
    now[0] += 3600
    assert statuses("127.0.0.1") == [401, 401, 401, 401]  # four addresses, as the proxy says


# --- who saw what -------------------------------------------------------------------------


def test_sign_ins_and_personal_data_views_are_logged(db, app, db_url, tmp_path):
    form = get_form("csc")
    case = make_cases(tmp_path, form, count=1)[0]
    record_audits(db, form, [case], user="test")
    bad = TestClient(app, follow_redirects=False)
    page = bad.get("/login").text
    bad.post("/login", data={"name": "olive", "password": "nope nope nope", "csrf": token(page)})
    officer = sign_in(app, "olive")
    assert officer.get(f"/audits/{case.audit_id}").status_code == 200
    assert officer.get("/audits").status_code == 200
    assert officer.get("/allocate").status_code == 200  # the month's emails: who, which audits
    post(officer, "/logout")
    typo = TestClient(app, follow_redirects=False)
    typo.post(  # a password typed into the name box is not kept in the log
        "/login",
        data={"name": "hunter2-secret", "password": "x", "csrf": token(typo.get("/login").text)},
    )
    actions = [(e.user, e.action, e.audit_id) for e in access_entries(db)]
    assert actions == [
        ("web:olive", "sign-in failed", None),
        ("web:olive", "signed in", None),
        ("web:olive", "viewed an audit", case.audit_id),
        ("web:olive", "viewed the audit list", None),
        ("web:olive", "viewed the allocation and its emails", None),
        ("web:olive", "viewed the dashboard", None),  # where the sign-out button was
        ("web:olive", "signed out", None),
        ("web:(unknown name)", "sign-in failed", None),
    ]
    assert signed_in(sign_in(app, "ada"))  # an admin's dashboard holds no case: not logged
    assert [e.action for e in access_entries(db)][-1] == "signed in"
    runner = CliRunner()
    shown = runner.invoke(cli, ["access-log", "--audit", case.audit_id, "--json", "--db", db_url])
    assert [e["action"] for e in json.loads(shown.output)] == ["viewed an audit"]
    admin = sign_in(app, "ada")
    log_page = admin.get(f"/admin/access-log?user=olive&audit={case.audit_id}").text
    assert "viewed an audit" in log_page and "signed in" not in log_page


def test_access_log_is_append_only_but_for_the_purge(db):
    record_access(db, "web:olive", "viewed an audit", "A-1")
    with db.engine.connect() as conn:
        for statement in (
            sa.update(store.access_log).values(user_name="someone else"),
            sa.delete(store.access_log),
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), conn.begin():
                conn.execute(statement)
    with store.transaction(db.engine) as conn:  # an entry from three years ago
        conn.execute(
            store.access_log.insert().values(
                at=dt.datetime(2020, 1, 1), user_name="web:old", action="viewed an audit"
            )
        )
    assert purge(db, 730, "cli:tester") == 1
    kept = [(e.user, e.action) for e in access_entries(db)]
    assert kept == [("web:olive", "viewed an audit"), ("cli:tester", "access log purged")]


# --- slow, broken and odd requests ---------------------------------------------------------


def _raw_post(app, receive_messages, delay_between: float) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if receive_messages:
            await asyncio.sleep(delay_between)
            return receive_messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"1000"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_slow_body_is_cut_off(db, caplog):
    app = create_app(db, Settings(), body_seconds=0.5)
    trickle = [{"type": "http.request", "body": b"name=", "more_body": True} for _ in range(20)]
    with caplog.at_level(logging.INFO, logger="formtool.web"):
        sent = _raw_post(app, trickle, 0.1)
    assert sent[0]["status"] == 408
    assert [r.levelname for r in caplog.records] == ["INFO"]


def test_a_client_that_goes_away_is_one_info_line(db, caplog):
    app = create_app(db, Settings())
    gone = [
        {"type": "http.request", "body": b"name=ol", "more_body": True},
        {"type": "http.disconnect"},
    ]
    with caplog.at_level(logging.INFO):
        _raw_post(app, gone, 0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "POST request ended early: the client disconnected")
    ]


def test_served_on_another_loopback_address(db):
    app = create_app(db, Settings(), allowed_hosts=allowed_hosts("127.0.0.2"))
    client = TestClient(app, base_url="http://127.0.0.2:8765", follow_redirects=False)
    assert client.get("/login").status_code == 200
    other = TestClient(app, base_url="http://evil.example", follow_redirects=False)
    assert other.get("/login").status_code == 400


def test_exports_and_packs_from_the_command_line_are_logged(db_url: str, tmp_path) -> None:
    runner = CliRunner()
    db = store.open_store(db_url)  # export only reads: it never creates a database
    exported = runner.invoke(cli, ["export", "--format", "csv", "--db", db_url])
    assert exported.exit_code == 0, exported.output
    (entry,) = access_entries(db)
    assert entry.user.startswith("cli") and entry.action == "exported answers and actions"
    assert entry.address == "command line"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "session_hours = 999999999999",
            "session_hours] must be a whole number of hours, from 1 to 168.",
        ),
        (
            "session_idle_minutes = 0",
            "session_idle_minutes] must be a whole number of minutes, from 1 to 1440.",
        ),
        (
            'access_log_days = "ever"',
            "access_log_days] must be a whole number of days, from 1 to 36600.",
        ),
    ],
)
def test_impossible_durations_are_one_line_errors(tmp_path, monkeypatch, line, message) -> None:
    config = tmp_path / "formtool.toml"
    config.write_text(line + "\n")
    monkeypatch.setenv("FORMTOOL_CONFIG", str(config))
    result = CliRunner().invoke(cli, ["users", "sessions", "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 2
    assert result.output == f"Error: [{config} · {message}\n"


def test_access_log_dates_are_checked(db, app, db_url) -> None:
    bad = CliRunner().invoke(cli, ["access-log", "--since", "last week", "--db", db_url])
    assert bad.exit_code == 2
    assert (
        bad.output
        == "Error: [--since] 'last week' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-30.\n"
    )
    page = sign_in(app, "ada").get("/admin/access-log?since=yesterday")
    shown = html.unescape(page.text)
    assert page.status_code == 400 and "[since] 'yesterday' is not a date" in shown
