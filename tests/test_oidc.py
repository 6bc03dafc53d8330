"""Signing in with the council's identity provider, tested against a real OpenID Provider run
here: the certified `oidc-provider` package from npm (tests/oidc_provider/server.js, installed
by `npm ci` in .ci/run; nothing is downloaded at test time) on a loopback port, once for the
module. Chromium signs in through it to `formtool serve`, with the roles its groups give; the
HTTP tests drive it for a user in no mapped group, a replayed state, a tampered nonce and a
local account's name. The bad ID tokens a real provider will not make (another audience,
expired, a key it does not publish) come from a small provider in this file that signs with a
key it serves from its own JWKS endpoint.

Missing node or node_modules: a skip with the reason, a failure in CI.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import pytest
import test_browser
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec
from test_browser import ARGS, PASSWORD, _chromium, _free_port, serving

from formtool import store
from formtool.access import accounts as users
from formtool.access.accounts import add_user
from formtool.access.log import access_entries
from formtool.access.oidc import OidcConfig
from formtool.errors import AccountError
from formtool.settings import Settings, load_settings
from formtool.web import create_app

from conftest import missing

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PROVIDER = Path(__file__).parent / "oidc_provider"
SECRET = "a-test-secret-not-for-production"  # server.js's client secret
TESTSERVER = "http://testserver/login/oidc/callback"  # the TestClient's callback
ROLE_MAP = (("qa-officers", ("officer",)), ("qa-admins", ("admin",)))


def council(issuer: str) -> Settings:
    return Settings(
        council="Example Council",
        oidc_issuer=issuer,
        oidc_client_id="formtool",
        oidc_scopes=("openid", "profile", "groups"),
        oidc_role_map=ROLE_MAP,
    )


def toml(issuer: str) -> str:
    return f"""council = "Example Council"
oidc_issuer = "{issuer}"
oidc_client_id = "formtool"
oidc_scopes = ["openid", "profile", "groups"]
oidc_roles_claim = "groups"
[oidc_role_map]
qa-officers = ["officer"]
qa-admins = ["admin"]
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed (.ci/run installs Debian's nodejs): no OpenID Provider")
    if not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
        missing(
            "tests/oidc_provider/node_modules is missing: run npm ci --prefix tests/oidc_provider"
        )
    return node


# --- the servers: formtool serve and the provider, once for the module ---------------------


class Servers:
    def __init__(self, issuer: str, formtool: str, folder: Path) -> None:
        self.issuer, self.formtool, self.folder = issuer, formtool, folder


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """`formtool serve` configured for the provider, and the provider (node server.js)
    accepting both that server's callback and the TestClient's."""
    node = _node()
    port, web_port = _free_port(), _free_port()
    issuer = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("oidc")
    (folder / "formtool.toml").write_text(toml(issuer), encoding="utf-8")
    db_url = f"sqlite:///{folder / 'formtool.db'}"
    store.open_store(db_url)
    callbacks = f"{TESTSERVER},http://127.0.0.1:{web_port}/login/oidc/callback"
    process = subprocess.Popen(  # starts while formtool serve does
        [node, "server.js", str(port), callbacks],
        cwd=PROVIDER,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the package's warnings about its development defaults
        text=True,
    )
    try:
        with pytest.MonkeyPatch.context() as patch:  # serve on the port the provider knows
            patch.setattr(test_browser, "_free_port", lambda: web_port)
            started = serving(db_url, folder, env={"FORMTOOL_OIDC_CLIENT_SECRET": SECRET})
            url = started.__enter__()
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
            yield Servers(issuer, url, folder)
        finally:
            started.__exit__(None, None, None)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> store.Store:
    """The TestClient's store: a local account olive (the provider has an olive too)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        opened = store.open_store(f"sqlite:///{tmp_path_factory.mktemp('oidc-db') / 'f.db'}")
        add_user(opened, "olive", "officer", PASSWORD)
    return opened


@pytest.fixture
def app(servers: Servers, db, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORMTOOL_OIDC_CLIENT_SECRET", SECRET)
    return create_app(db, council(servers.issuer))


def at_provider(authorize: str, login: str, callback: str = TESTSERVER) -> str:
    """Sign `login` in at the provider (its development login form, any password), from
    its authorization address to the answer it sends the browser back with."""
    with httpx.Client(timeout=10) as browser:
        response = browser.get(authorize)
        while response.is_redirect:
            response = browser.get(urljoin(str(response.url), response.headers["location"]))
        action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        assert action is not None, response.text
        response = browser.post(
            urljoin(str(response.url), action.group(1)),
            data={"prompt": "login", "login": login, "password": "anything"},
        )
        while not response.headers["location"].startswith(callback):
            response = browser.get(urljoin(str(response.url), response.headers["location"]))
        return str(response.headers["location"])


def begin(client: TestClient, follow: str = "/account/password") -> str:
    response = client.get(f"/login/oidc?next={follow}")
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def words(page: str) -> str:
    return " ".join(html.unescape(page).split())


def refusals(db, since: int = 0) -> list[tuple[str, str]]:
    return [(e.user, e.detail) for e in access_entries(db)[since:] if e.action == "sign-in refused"]


# --- through the real provider -------------------------------------------------------------


def test_chromium_signs_in_with_the_council_account_and_its_groups_roles(servers) -> None:
    from playwright.sync_api import sync_playwright

    url = servers.formtool
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(_chromium()), args=ARGS)
        try:
            page = chromium.new_page()
            page.goto(f"{url}/admin/users")
            page.get_by_role("link", name="Sign in with Example Council account").click()
            page.wait_for_url(f"{servers.issuer}/interaction/**")
            page.locator("input[name=login]").fill("amira.khan")
            page.locator("input[name=password]").fill("anything")
            page.get_by_role("button", name="Sign-in").click()
            page.wait_for_url(f"{url}/admin/users")
            header = page.locator("form.account").inner_text()
            assert "amira.khan" in header and "officer, admin" in header
            mapping = page.locator("#role-map tbody").inner_text()
            assert "qa-officers\tofficer" in mapping and "qa-admins\tadmin" in mapping
            row = next(
                r for r in page.locator("#accounts tbody tr").all_inner_texts() if "amira" in r
            )
            assert "council account" in row
            page.goto(f"{url}/admin/access-log")
            logged = page.locator("#access-log tbody").inner_text()
            assert "signed in" in logged and f"{servers.issuer}|amira.khan" in logged
        finally:
            chromium.close()
    db = store.open_store(f"sqlite:///{servers.folder / 'formtool.db'}")
    row = db.user("amira.khan")
    assert (row.source, row.oidc_subject, row.role) == (
        "oidc",
        f"{servers.issuer}|amira.khan",
        "officer,admin",
    )


def test_a_sign_in_is_taken_once_and_a_replayed_state_is_refused(servers, db, app) -> None:
    client = TestClient(app, follow_redirects=False)
    answer = at_provider(begin(client), "amira.khan")
    signed = client.get(answer)
    assert signed.status_code == 303 and signed.headers["location"] == "/account/password"
    assert client.get("/account/password").status_code == 200
    assert db.signed_in_session(users._id_hash(client.cookies["formtool_sid"])).method == "oidc"
    before = len(access_entries(db))
    replayed = client.get(answer)  # the same answer again
    assert replayed.status_code == 403
    assert "This sign-in has already been used" in words(replayed.text)
    assert "Traceback" not in replayed.text
    assert refusals(db, before) == [
        ("web:(council account)", "state unknown, already used or expired (a replayed or "
         "stale answer)"),
    ]  # fmt: skip


def test_a_user_in_no_mapped_group_is_refused(servers, db, app) -> None:
    client = TestClient(app, follow_redirects=False)
    before = len(access_entries(db))
    refused = client.get(at_provider(begin(client), "noel.nobody"))
    assert refused.status_code == 403
    assert "Your council account (noel.nobody) is in none of the groups" in words(refused.text)
    assert refusals(db, before) == [
        ("web:noel.nobody", f"no mapped group for {servers.issuer}|noel.nobody (groups: all-staff)")
    ]
    assert db.user("noel.nobody") is None


def test_a_tampered_nonce_is_refused(servers, db, app) -> None:
    """The browser's trip to the provider is changed on the way (another nonce): the real
    provider signs an ID token with that nonce, which is not this sign-in's."""
    client = TestClient(app, follow_redirects=False)
    authorize = re.sub(r"nonce=[^&]+", "nonce=somebody-elses-nonce", begin(client))
    before = len(access_entries(db))
    refused = client.get(at_provider(authorize, "amira.khan"))
    assert refused.status_code == 403
    assert "does not belong to this sign-in" in words(refused.text)
    assert [d for _, d in refusals(db, before)] == [
        "ID token nonce does not match the one sent (a replayed or injected token)"
    ]


def test_a_local_account_of_the_same_name_is_never_taken_over(servers, db, app) -> None:
    client = TestClient(app, follow_redirects=False)
    before = len(access_entries(db))
    refused = client.get(at_provider(begin(client), "olive"))
    assert refused.status_code == 403
    assert "There is already a formtool local account (with a password) called 'olive'" in words(
        refused.text
    )
    assert [u for u, _ in refusals(db, before)] == ["web:olive"]
    assert db.user("olive").source == "local" and db.user("olive").oidc_subject == ""


def test_an_answer_for_another_browser_is_refused(servers, db, app) -> None:
    """The state must come back to the browser that began the sign-in (a link sent to
    somebody else signs nobody in)."""
    answer = at_provider(begin(TestClient(app, follow_redirects=False)), "amira.khan")
    other = TestClient(app, follow_redirects=False).get(answer)
    assert other.status_code == 403 and "started in another browser" in words(other.text)


# --- bad ID tokens, from a provider this test controls --------------------------------------


class Fake:
    """A provider on a loopback port for the ID tokens a real one will not make: discovery,
    its JWKS (ES256 keys it made) and a token endpoint answering with `claims`, signed by
    `signer` (one of its keys, or one it does not publish). It checks the PKCE verifier and
    the client secret as a provider would."""

    def __init__(self) -> None:
        self.keys = {"fake-1": ec.generate_private_key(ec.SECP256R1())}
        self.signer = "fake-1"
        self.algorithm = "ES256"  # or what an attacker would try: "none", "HS256"
        self.claims: dict[str, Any] = {}
        self.challenge = ""
        self.jwks_fetches = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jwks(self) -> dict[str, Any]:
        self.jwks_fetches += 1
        found = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            found.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
        return {"keys": found}

    def token(self, form: dict[str, str], auth: str) -> tuple[int, dict[str, Any]]:
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        basic = base64.b64encode(f"formtool:{SECRET}".encode()).decode()
        if digest.decode() != self.challenge or auth != f"Basic {basic}":
            return 400, {"error": "invalid_grant"}
        key: Any = self.keys.get(self.signer) or ec.generate_private_key(ec.SECP256R1())
        if self.algorithm != "ES256":  # unsigned, or signed with the shared client secret
            key = SECRET.encode() if self.algorithm == "HS256" else None
        headers = {"kid": self.signer}
        signed = jwt.encode(self.claims, key, self.algorithm, headers=headers)
        return 200, {"id_token": signed, "access_token": "x", "token_type": "Bearer"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    self._send(
                        200,
                        {
                            "issuer": fake.issuer,
                            "authorization_endpoint": f"{fake.issuer}/authorize",
                            "token_endpoint": f"{fake.issuer}/token",
                            "jwks_uri": f"{fake.issuer}/jwks",
                        },
                    )
                elif self.path == "/jwks":
                    self._send(200, fake.jwks())
                else:
                    self._send(404, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                self._send(*fake.token(form, self.headers.get("authorization", "")))

        return Handler


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    provider = Fake()
    yield provider
    provider.server.shutdown()


@pytest.fixture
def fake_app(fake: Fake, db, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FORMTOOL_OIDC_CLIENT_SECRET", SECRET)
    return create_app(db, council(fake.issuer))


def real_now() -> int:
    """Seconds since the epoch: ID tokens carry real time, not the business date."""
    return int(time.time())  # real time


def fake_sign_in(app, fake: Fake, **changed: Any):
    """A sign-in whose ID token has these claims changed from good ones; the callback's
    response."""
    client = TestClient(app, follow_redirects=False)
    asked = {k: v[0] for k, v in parse_qs(urlsplit(begin(client)).query).items()}
    now = real_now()
    fake.challenge = asked["code_challenge"]
    fake.claims = {
        "iss": fake.issuer,
        "sub": "fake-0001",
        "aud": "formtool",
        "iat": now,
        "exp": now + 300,
        "nonce": asked["nonce"],
        "preferred_username": "fay.example",
        "groups": ["qa-officers"],
    } | changed
    return client.get(f"/login/oidc/callback?code=a-code&state={asked['state']}")


def test_a_good_es256_token_signs_in(fake: Fake, db, fake_app) -> None:
    assert fake_sign_in(fake_app, fake).status_code == 303
    assert db.user("fay.example").role == "officer"
    assert fake_sign_in(fake_app, fake, groups=["qa-officers", "qa-admins"]).status_code == 303
    assert db.user("fay.example").role == "officer,admin"  # mapped again at every sign-in


@pytest.mark.parametrize(
    "changed, said, logged",
    [
        (
            {"aud": "another-app"},
            "was made for another application",
            "ID token for another audience (Audience doesn't match)",
        ),
        ({"exp": real_now() - 600}, "has expired", "ID token expired (exp is past)"),
        (
            {"iat": real_now() - 3600},
            "was not issued for this sign-in",
            "ID token iat outside this sign-in (issued before it began, or in the future)",
        ),
        (
            {"iss": "https://impostor.example.invalid"},
            "from another issuer",
            "ID token from another issuer",
        ),
    ],
    ids=["wrong audience", "expired", "issued before", "another issuer"],
)
def test_bad_id_tokens_are_refused(fake: Fake, db, fake_app, changed, said, logged) -> None:
    before = len(access_entries(db))
    refused = fake_sign_in(fake_app, fake, **changed)
    assert refused.status_code == 403 and said in words(refused.text)
    assert "Traceback" not in refused.text
    assert refusals(db, before) == [("web:(council account)", logged)]


@pytest.mark.parametrize("algorithm", ["none", "HS256"])
def test_unsigned_or_secret_signed_tokens_are_refused(
    fake: Fake, db, fake_app, algorithm: str
) -> None:
    """Only the provider's published public keys sign an ID token: not "none", and not the
    client secret both sides know (the algorithm-confusion attack)."""
    fake.algorithm = algorithm
    try:
        refused = fake_sign_in(fake_app, fake, preferred_username=f"mallory.{algorithm}")
    finally:
        fake.algorithm = "ES256"
    assert refused.status_code == 403 and "Traceback" not in refused.text
    assert db.user(f"mallory.{algorithm}") is None


def test_new_keys_are_fetched_once_and_unknown_ones_refused(fake: Fake, db, fake_app) -> None:
    assert fake_sign_in(fake_app, fake).status_code == 303  # the keys are now cached
    fetched = fake.jwks_fetches
    fake.keys["fake-2"] = ec.generate_private_key(ec.SECP256R1())  # the provider rotates
    fake.signer = "fake-2"
    assert fake_sign_in(fake_app, fake).status_code == 303
    assert fake_sign_in(fake_app, fake).status_code == 303
    assert fake.jwks_fetches == fetched + 1  # fetched again once, for the new key id
    fake.signer = "not-published"
    refused = fake_sign_in(fake_app, fake)
    assert refused.status_code == 403 and "does not publish" in words(refused.text)
    fake.signer = "fake-1"


def test_a_provider_that_cannot_be_reached_is_one_line(db, monkeypatch) -> None:
    monkeypatch.setenv("FORMTOOL_OIDC_CLIENT_SECRET", SECRET)
    app = create_app(db, council(f"http://127.0.0.1:{_free_port()}"))
    page = TestClient(app, follow_redirects=False).get("/login/oidc")
    assert page.status_code == 502 and "Traceback" not in page.text
    assert "The council's sign-in service could not be reached" in words(page.text)


def test_the_settings_are_checked_when_read(tmp_path, monkeypatch) -> None:
    path = tmp_path / "formtool.toml"
    monkeypatch.setenv("FORMTOOL_CONFIG", str(path))
    path.write_text(toml("https://login.example.invalid/t/v2.0"), encoding="utf-8")
    settings = load_settings()
    assert settings.oidc and settings.oidc_role_map == ROLE_MAP
    assert OidcConfig.of(settings, {}) is not None
    path.write_text(toml("http://login.example.invalid/t/v2.0"), encoding="utf-8")
    with pytest.raises(Exception, match=r"oidc_issuer\] must be an https:// address"):
        load_settings()
    path.write_text(
        toml("https://login.example.invalid/t/v2.0").replace('["admin"]', '["boss"]'),
        encoding="utf-8",
    )
    with pytest.raises(AccountError, match=r"oidc_role_map · qa-admins\] Role 'boss'"):
        OidcConfig.of(load_settings(), {})


def test_too_many_groups_to_list_is_said_so(fake: Fake, db, fake_app) -> None:
    """Entra ID leaves out the groups claim for someone in too many groups (the overage):
    the refusal says what to ask IT for."""
    before = len(access_entries(db))
    refused = fake_sign_in(fake_app, fake, groups=None, _claim_names={"groups": "src1"})
    assert refused.status_code == 403 and "too many groups" in words(refused.text)
    assert refusals(db, before) == [
        (
            "web:fay.example",
            f"groups claim not in the ID token (group overage) for {fake.issuer}|fake-0001",
        )
    ]
