"""Authenticator codes (TOTP, RFC 6238) for local accounts: set up from one's own account page
(the secret as text and as a QR code drawn here), asked for after the password, accepted once
only and within one step of drift, throttled like passwords; an admin without one is made to
set one up before anything else while the council's sign-in is not configured; and
`formtool users totp-reset` is the way back for a lost phone. Every step is in the access log.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from formtool import store
from formtool.access import accounts as users
from formtool.access import totp
from formtool.access.accounts import add_user, start_session
from formtool.access.log import access_entries
from formtool.cli_common import FormtoolGroup
from formtool.cli_signin import totp_reset
from formtool.errors import AccountError
from formtool.settings import Settings
from formtool.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"
START = 2_000_000_010.0  # seconds since the epoch: 10 s into a 30-second step
NAMES = ("olive", "otto", "owen", "orla", "ossie", "oona", "ada", "abe")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[store.Store]:
    """One SQLite store for the module, an account per test (cheap argon2 parameters)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        folder = tmp_path_factory.mktemp("totp")
        opened = store.open_store(f"sqlite:///{folder / 'formtool.db'}")
        for name in NAMES:
            add_user(opened, name, "admin" if name.startswith("a") else "officer", PASSWORD)
        yield opened


_HOURS = itertools.count()


@pytest.fixture
def now() -> list[float]:
    """Each test an hour after the last: the module's store forgets their sign-in failures."""
    return [START + 3600 * next(_HOURS)]


@pytest.fixture
def app(db, now, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
    return create_app(db, Settings(council="Example Council"), clock=lambda: now[0])


def token(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def password_step(
    app,
    name: str,
    password: str = PASSWORD,
    follow: str = "/account/password",
    address: str = "testclient",
):
    """A browser (at `address`) that gave the right password; (client, where it was sent)."""
    client = TestClient(app, follow_redirects=False, client=(address, 50000))
    page = client.get("/login").text
    sent = client.post(
        "/login", data={"name": name, "password": password, "csrf": token(page), "next": follow}
    )
    assert sent.status_code == 303, sent.text
    return client, sent.headers["location"]


def give_code(
    client: TestClient, code: str, where: str = "/login/code", follow: str = "/account/password"
):
    page = client.get(f"{where}?next={follow}")
    assert page.status_code == 200, page.text
    return client.post(where, data={"code": code, "csrf": token(page.text), "next": follow})


def code_at(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(int(at))


def shown_secret(page: str) -> str:
    return re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")  # type: ignore[union-attr]


def words(page: str) -> str:
    return " ".join(html.unescape(page).split())


def log_of(db, name: str) -> list[tuple[str, str]]:
    return [(e.action, e.detail) for e in access_entries(db, f"web:{name}")]


def enrol(db, name: str, at: float) -> str:
    """`name` with an authenticator set up; its secret."""
    secret = totp.new_secret()
    totp.enrol(db, name, secret, code_at(secret, at - 60), at - 60)
    return secret


# --- setting it up -------------------------------------------------------------------------


def test_an_officer_sets_up_an_authenticator_from_their_account_page(db, app, now):
    client, went = password_step(app, "olive")
    assert went == "/account/password"  # no authenticator: the password signs in
    assert "authenticator" in client.get("/account/password").text
    page = client.get("/account/totp")
    assert page.status_code == 200 and "Signing in asks only for your password" in words(page.text)
    secret = shown_secret(page.text)
    assert len(secret) == 32
    svg = re.search(r"<svg [^>]*>.*?</svg>", page.text, re.S)
    assert svg is not None and "<title>QR code" in svg.group(0)  # drawn here, inline
    assert "<script" not in page.text.split("</footer>")[0]
    assert shown_secret(client.get("/account/totp").text) == secret  # a reload keeps it
    csrf = token(page.text)
    wrong = client.post("/account/totp", data={"code": "123456", "csrf": csrf})
    assert wrong.status_code == 400 and "does not match the new secret" in words(wrong.text)
    assert not totp.enrolled(db, "olive")  # nothing saved before a right code
    right = client.post("/account/totp", data={"code": code_at(secret, now[0]), "csrf": csrf})
    assert right.status_code == 303 and totp.enrolled(db, "olive")
    assert "asks for a code" in client.get("/account/totp").text
    assert db.totp_state("olive").totp_secret == secret
    assert log_of(db, "olive")[-2:] == [
        ("TOTP enrolment refused", "That code does not match the new secret. Check the app "
         "added the account shown here, and type the code it shows now (check the phone's "
         "clock is set automatically)."),
        ("TOTP enrolled", "authenticator app set up"),
    ]  # fmt: skip


# --- signing in with a code ----------------------------------------------------------------


def test_the_code_is_asked_after_the_password_and_works_once(db, app, now):
    secret = enrol(db, "otto", now[0])
    client, went = password_step(app, "otto")
    assert went == "/login/code?next=%2Faccount%2Fpassword"
    assert (
        db.signed_in_session(users._id_hash(client.cookies["formtool_sid"])).method
        == "totp-pending"
    )
    for path in ("/reports", "/", "/account/password", "/account/totp"):
        assert client.get(path).headers["location"].startswith("/login"), path  # nothing else
    assert client.get("/login").headers["location"] == "/login/code?next=%2F"
    assert client.post("/logout", data={"csrf": "x"}).status_code == 401
    wrong = give_code(client, "000000")
    assert wrong.status_code == 401 and "That code is not right" in words(wrong.text)
    code = code_at(secret, now[0] - 30)  # the step before: one step of drift is allowed
    right = give_code(client, code)
    assert right.status_code == 303 and right.headers["location"] == "/account/password"
    assert client.get("/account/password").status_code == 200
    assert (
        db.signed_in_session(users._id_hash(client.cookies["formtool_sid"])).method
        == "password+totp"
    )
    again, _ = password_step(app, "otto")
    reused = give_code(again, code)
    assert reused.status_code == 401 and "already been used" in words(reused.text)
    older = give_code(again, code_at(secret, now[0] - 90))  # two steps back: refused
    assert older.status_code == 401 and "not right" in words(older.text)
    cancel = again.post("/login/cancel", data={"csrf": token(again.get("/login/code").text)})
    assert cancel.headers["location"] == "/login" and again.get("/login").status_code == 200
    assert [a for a, _ in log_of(db, "otto")] == [
        "sign-in code asked",
        "sign-in failed",
        "signed in",
        "sign-in code asked",
        "sign-in failed",
        "sign-in failed",
        "sign-in cancelled",
    ]
    assert "already been used" in log_of(db, "otto")[-3][1]


def test_wrong_codes_are_throttled_like_wrong_passwords(db, app, now):
    secret = enrol(db, "owen", now[0])
    client, _ = password_step(app, "owen")
    for _ in range(3):  # ACCOUNT_AT_ADDRESS lets three failures through at once
        assert give_code(client, "999999").status_code == 401
    throttled = give_code(client, code_at(secret, now[0]))  # even a right code waits now
    assert throttled.status_code == 429 and "Wait 1 second(s)" in words(throttled.text)
    now[0] += 2  # past the wait: the right code signs in
    assert give_code(client, code_at(secret, now[0])).status_code == 303
    assert ("sign-in throttled", "authenticator code") in log_of(db, "owen")


def test_wrong_codes_from_many_addresses_lock_the_accounts_codes(db, app, now):
    """Whoever types codes knew the password: a new address for each guess gains nothing."""
    secret = enrol(db, "orla", now[0])
    for i in range(3):  # ACCOUNT_CODES lets three through, wherever they come from
        client, _ = password_step(app, "orla", address=f"192.0.2.{i}")
        assert give_code(client, "999999").status_code == 401
    client, _ = password_step(app, "orla", address="198.51.100.7")
    held = give_code(client, code_at(secret, now[0]))  # a fifth address, a right code: waits
    assert held.status_code == 429 and "Wait 1 second(s)" in words(held.text)
    now[0] += 2
    assert give_code(client, code_at(secret, now[0])).status_code == 303


def test_a_right_password_does_not_clear_the_count_of_wrong_codes(db, app, now):
    """Otherwise knowing the password would give endless tries at the code."""
    enrol(db, "ossie", now[0])
    for _ in range(3):
        client, _ = password_step(app, "ossie")
        assert give_code(client, "999999").status_code == 401
    fresh = TestClient(app)
    page = fresh.get("/login").text
    again = fresh.post("/login", data={"name": "ossie", "password": PASSWORD, "csrf": token(page)})
    assert again.status_code == 429  # the wrong codes hold the next password back too


def test_an_authenticator_is_replaced_or_turned_off_only_with_a_code_from_it(db, app, now):
    secret = enrol(db, "oona", now[0])
    client, _ = password_step(app, "oona")
    assert give_code(client, code_at(secret, now[0])).status_code == 303
    page = client.get("/account/totp").text
    assert "Turn off the authenticator" in page
    replace = client.post("/account/totp", data={"code": "123456", "csrf": token(page)})
    assert replace.status_code == 400 and "You already have an authenticator" in words(replace.text)
    off = {"change": "off", "csrf": token(page)}
    wrong = client.post("/account/totp", data={**off, "code": "000000"})
    assert wrong.status_code == 400 and totp.enrolled(db, "oona")
    done = client.post("/account/totp", data={**off, "code": code_at(secret, now[0] + 30)})
    assert done.status_code == 303 and not totp.enrolled(db, "oona")
    assert client.get("/account/password").status_code == 303  # every session ended
    assert [a for a, _ in log_of(db, "oona")][-2:] == ["TOTP turn-off refused", "TOTP turned off"]


# --- admins --------------------------------------------------------------------------------


def test_an_admin_without_an_authenticator_must_set_one_up_first(db, app, now):
    client, went = password_step(app, "ada", follow="/admin/users")
    assert went == "/login/enrol?next=%2Fadmin%2Fusers"
    for path in ("/admin/users", "/admin/access-log", "/"):
        assert client.get(path).headers["location"].startswith("/login"), path
    page = client.get("/login/enrol?next=/admin/users")
    assert "An admin account must use an authenticator" in words(page.text) and "<svg" in words(
        page.text
    )
    secret = shown_secret(page.text)
    form = {"csrf": token(page.text), "next": "/admin/users"}
    wrong = client.post("/login/enrol", data={**form, "code": "12345"})
    assert wrong.status_code == 400 and "6 digits" in words(wrong.text)
    done = client.post("/login/enrol", data={**form, "code": code_at(secret, now[0])})
    assert done.status_code == 303 and done.headers["location"] == "/admin/users"
    users_page = client.get("/admin/users").text
    assert "password and authenticator" in users_page and "Not configured" in users_page
    assert [a for a, _ in log_of(db, "ada")] == [
        "sign-in enrolment asked",
        "TOTP enrolment refused",
        "TOTP enrolled",
        "signed in",
    ]
    off = client.post(
        "/account/totp",
        data={"change": "off", "code": code_at(secret, now[0] + 30), "csrf": token(users_page)},
    )
    assert off.status_code == 400 and "An admin must keep an authenticator" in words(off.text)


def test_a_session_from_before_is_held_back_too_and_oidc_lifts_the_rule(db, now):
    """An admin's password session made before the rule (or before the admin role) opens
    nothing until an authenticator is set up; with the council's sign-in configured, a local
    admin may go without."""
    session = start_session(db, "abe", "testclient", users.SessionRules(clock=lambda: now[0]))
    plain = create_app(db, Settings(), clock=lambda: now[0])
    client = TestClient(plain, follow_redirects=False, cookies={"formtool_sid": session})
    assert client.get("/admin/users").headers["location"].startswith("/login")
    assert client.get("/login").headers["location"].startswith("/login/enrol")
    council = Settings(
        oidc_issuer="https://login.example.invalid/tenant/v2.0",
        oidc_client_id="formtool",
        oidc_role_map=(("qa-admins", ("admin",)),),
    )
    with_oidc = create_app(db, council, clock=lambda: now[0])
    client = TestClient(with_oidc, follow_redirects=False, cookies={"formtool_sid": session})
    assert client.get("/admin/users").status_code == 200


# --- the way back --------------------------------------------------------------------------


def test_totp_reset_removes_the_authenticator_and_ends_the_sessions(db, app, now, tmp_path):
    secret = enrol(db, "olive", now[0]) if not totp.enrolled(db, "olive") else ""
    client, _ = password_step(app, "olive")
    if secret:
        assert give_code(client, code_at(secret, now[0])).status_code == 303
    else:  # set up by the first test: this one signs in with the secret it saved
        saved = db.totp_state("olive").totp_secret
        assert give_code(client, code_at(saved, now[0] + 30)).status_code == 303
    assert client.get("/account/password").status_code == 200
    cli = FormtoolGroup("formtool")
    cli.add_command(totp_reset)
    db_url = f"sqlite:///{Path(db.engine.url.database or '')}"
    done = CliRunner().invoke(cli, ["totp-reset", "olive", "--db", db_url])
    assert done.exit_code == 0, done.output
    assert "The authenticator of olive is removed and 1 session(s) ended" in done.output
    assert not totp.enrolled(db, "olive")
    assert client.get("/account/password").status_code == 303  # signed out
    _, went = password_step(app, "olive")
    assert went == "/account/password"  # the password alone again (an officer need not have one)
    logged = [e for e in access_entries(db) if e.action == "TOTP reset"]
    assert [e.detail for e in logged] == ["olive's authenticator removed; 1 session(s) ended"]
    assert logged[0].user.startswith("cli:") and logged[0].address == "command line"
    unknown = CliRunner().invoke(cli, ["totp-reset", "nobody", "--db", db_url])
    assert unknown.exit_code == 2 and "There is no user called 'nobody'" in unknown.output


def test_codes_are_checked_within_one_step_either_way():
    secret = totp.new_secret()
    step = int(START) // 30
    for offset, expected in ((-60, None), (-30, step - 1), (0, step), (30, step + 1), (60, None)):
        assert totp.matching_step(secret, code_at(secret, START + offset), START) == expected
    with pytest.raises(totp.CodeError, match="6 digits"):
        totp.matching_step(secret, totp.code_text("12ab56"), START)
    assert totp.code_text(" 123 456 ") == "123456"


def test_the_store_takes_each_code_step_and_each_state_once(db_url: str, monkeypatch) -> None:
    """On SQLite and PostgreSQL: a code's step is used once; an OpenID sign-in's state is taken
    once; council accounts are made, updated and never take a local account's name."""
    monkeypatch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
    opened = store.open_store(db_url)
    add_user(opened, "Olive", "officer", PASSWORD)
    at = dt.datetime(2026, 12, 1, 9, 0)
    opened.enrol_totp("Olive", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 100, at)
    assert not opened.use_totp_step("Olive", 100)  # the confirming code's step is used
    assert opened.use_totp_step("Olive", 101) and not opened.use_totp_step("Olive", 101)
    rules = users.SessionRules(clock=lambda: at.replace(tzinfo=dt.UTC).timestamp())
    start_session(opened, "Olive", "10.0.0.1", rules, "totp-pending")
    assert opened.remove_totp("Olive") == 1 and opened.sign_in_facts()["Olive"] == ("local", False)
    opened.begin_oidc_sign_in("h" * 64, "nonce", "v" * 86, "/", "10.0.0.1", at, at)
    assert opened.take_oidc_sign_in("h" * 64).nonce == "nonce"
    assert opened.take_oidc_sign_in("h" * 64) is None
    made = opened.oidc_account("https://idp.example.invalid|s1", "amira", "officer", at)
    assert (made.source, made.role, made.password_hash) == ("oidc", "officer", "")
    again = opened.oidc_account("https://idp.example.invalid|s1", "renamed", "officer,admin", at)
    assert (again.name, again.role) == ("amira", "officer,admin")
    with pytest.raises(AccountError, match=r"local account .* called 'Olive'"):
        opened.oidc_account("https://idp.example.invalid|s2", "olive", "officer", at)
    assert opened.sign_in_facts()["amira"] == ("oidc", False)
