"""The web workspace over HTTP (Starlette's TestClient), on SQLite and PostgreSQL: sign-in,
roles, CSRF, upload limits, escaping, security headers, the sign-in throttle, and that every
page shows what the library (and so the CLI) says."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
import warnings
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from starlette.routing import Mount, Route

from formtool import clock, store
from formtool.access.accounts import ACCOUNT_AT_ADDRESS, add_user
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_auditors, synthetic_case
from formtool.errors import FormtoolError
from formtool.generate import record_audits, render
from formtool.programme.audit_page import audit_detail
from formtool.read.cases import Case, load_cases, write_case_list
from formtool.settings import Settings
from formtool.web import create_app, serve
from formtool.web.security import Limits

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"
DUE = dt.date(2026, 11, 30)
MONTH = "2026-11"
SCRIPT = "<script>alert(1)</script>"
HOSTILE_FILE = '"><img src=x onerror=alert(1)>.docx'
SENT_AS = HOSTILE_FILE.replace('"', "%22")  # as browsers (and httpx) send the name


@dataclass(frozen=True)
class Kit:
    """Five CSC audits (one child named like a script) and their completed returns."""

    cases: list[Case]
    returns: list[tuple[str, bytes]]  # (file name, bytes), one per case


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    form = get_form("csc")
    rng = random.Random(13)
    rows = [synthetic_case(form, i, DUE, rng) for i in range(1, 6)]
    rows[0]["family_name"] = SCRIPT
    path = tmp_path_factory.mktemp("kit") / "cases.csv"
    write_case_list(path, rows)
    cases = load_cases(path, form)
    returns = []
    for case in cases:
        blank = render(form, case, "docx")
        answers = synthetic_answers(form, case, rng, clock.today())
        returns.append((f"{case.audit_id}.docx", fill_return(blank, "docx", form, answers)))
    return Kit(cases, returns)


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: these tests are about the web, not the hash's cost."""
    from argon2 import PasswordHasher

    from formtool.access import accounts as users

    monkeypatch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))


@pytest.fixture
def db(db_url: str):
    db = store.open_store(db_url)
    for name, role in (("olive", "officer"), ("mo", "moderator"), ("vic", "viewer")):
        add_user(db, name, role, PASSWORD)
    return db


@pytest.fixture
def app(db):
    return create_app(db, Settings(council="Example Council"))


def hidden_value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found, f"no {name} field on the page"
    return found[1]


def token(page: str) -> str:
    return hidden_value(page, "csrf")


def client_for(app, name: str | None = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if name is not None:
        page = client.get("/login").text
        response = client.post(
            "/login", data={"name": name, "password": PASSWORD, "csrf": token(page), "next": "/"}
        )
        assert response.status_code == 303, response.text
    return client


def post(client: TestClient, url: str, data: dict | None = None, files=None, page: str = "/"):
    """A form post carrying the CSRF token of `page` (as a browser would)."""
    fields = {"csrf": token(client.get(page).text), **(data or {})}
    return client.post(url, data=fields, files=files)


def record(db, kit: Kit) -> None:
    record_audits(db, get_form("csc"), kit.cases, user="test")


def upload(client: TestClient, files: list[tuple[str, bytes]]):
    return post(
        client, "/returns", files=[("files", (n, io.BytesIO(d))) for n, d in files], page="/returns"
    )


class Tables(HTMLParser):
    """Each <table id=...>'s rows as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id"):
            self._table = dict(attrs)["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


# --- signing in ----------------------------------------------------------------------------


def test_no_account_shows_nothing_but_how_to_make_one(db_url):
    db = store.open_store(db_url)
    client = client_for(create_app(db, Settings()))
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    page = client.get("/login")
    assert page.status_code == 503
    assert "formtool users add YOUR.NAME --role officer" in page.text
    assert 'name="password"' not in page.text
    with pytest.raises(FormtoolError, match="formtool users add NAME --role officer"):
        serve(db, "0.0.0.0", 0, False, Settings(), on_ready=print)


def test_sign_in_and_out(app):
    client = client_for(app)
    page = client.get("/login").text
    wrong = client.post(
        "/login", data={"name": "olive", "password": "wrong password!", "csrf": token(page)}
    )
    assert wrong.status_code == 401 and "do not match an account" in wrong.text
    client = client_for(app, "olive")
    assert client.get("/").status_code == 200
    cookie = client.cookies.get("formtool_sid")
    response = post(client, "/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/").status_code == 303
    client.cookies.set("formtool_sid", cookie)  # a cookie copied before signing out
    assert client.get("/").status_code == 303  # names a session that no longer exists


def test_every_page_needs_sign_in(app):
    client = client_for(app)
    checked = 0
    for route in app.routes:
        if isinstance(route, Mount) or route.path == "/login":
            continue
        assert isinstance(route, Route)
        if route.path.startswith("/form/"):  # an auditor's web form: a private link and a
            continue  # one-time code, never an account (test_webform_routes.py)
        path = re.sub(r"\{return_id:int\}", "1", route.path)
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: {"month": MONTH}.get(m[1], "x"), path)
        for method in route.methods or ():
            if method == "HEAD":
                continue
            response = client.request(method, path)
            if method == "GET":
                assert response.status_code == 303, path
                assert response.headers["location"].startswith("/login?next="), path
            else:
                assert response.status_code == 401, path
                assert "Sign in again" in response.text
            checked += 1
    assert checked >= 24
    assert client.get("/static/formtool.css").status_code == 200  # no data in the stylesheet


def test_sign_in_slows_down_after_failures(db):
    now = [1000.0]
    app = create_app(db, Settings(), clock=lambda: now[0])

    def attempt(password: str, name: str = "mo"):
        client = client_for(app)
        page = client.get("/login").text
        return client.post("/login", data={"name": name, "password": password, "csrf": token(page)})

    assert [attempt("not the password").status_code for _ in range(3)] == [401, 401, 401]
    refused = attempt(PASSWORD)  # right password, but too soon
    assert refused.status_code == 429 and "Wait 1 second(s)" in refused.text
    assert refused.headers["retry-after"] == "1"
    now[0] += 1.1
    assert attempt("not the password").status_code == 401  # fourth failure: 2 s wait
    now[0] += 1.5
    assert attempt(PASSWORD).status_code == 429
    now[0] += 0.6
    assert attempt(PASSWORD).status_code == 303


def test_throttle_waits_double_then_locks_the_account_at_that_address():
    waits = [ACCOUNT_AT_ADDRESS.delay(failures) for failures in range(1, 11)]
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 900]


# --- roles, CSRF, headers ------------------------------------------------------------------


def test_roles(db, app, kit):
    record(db, kit)
    audit = _audit_url(kit.cases[1].audit_id)
    viewer, officer, moderator = (client_for(app, n) for n in ("vic", "olive", "mo"))
    for path in ("/", "/reports", "/forms", "/forms/csc"):
        assert viewer.get(path).status_code == 200, path
    for path in (
        "/audits",
        audit,
        "/allocate",
        "/returns",
        "/moderation",
        "/status.json",
        f"{audit}/pack.pdf",
        "/returns/1/file",
    ):
        response = viewer.get(path)
        assert response.status_code == 403, path
        assert "may not" in response.text
    dashboard = viewer.get("/").text
    assert kit.cases[1].audit_id not in dashboard and "/allocate" not in dashboard
    for url in ("/returns", "/allocate", "/moderation", f"{audit}/check", f"{audit}/moderate"):
        assert post(viewer, url).status_code == 403, url
    for path in ("/allocate", "/returns", audit, "/moderation", "/status.json"):
        assert officer.get(path).status_code == 200, path
    assert post(officer, f"{audit}/moderate", {"grade": "Good"}).status_code == 403
    assert post(officer, "/moderation", {"month": MONTH}).status_code == 403
    assert "A moderator can record" not in officer.get(audit).text  # nothing to moderate yet
    response = post(moderator, f"{audit}/moderate", {"grade": "Good"})  # allowed, but the
    assert response.status_code == 400  # library refuses: no return yet, as the CLI says
    assert "only a complete (Final) return can be moderated" in response.text


def test_csrf_is_checked_on_every_post(db, app, kit):
    record(db, kit)
    client = client_for(app, "olive")
    audit = _audit_url(kit.cases[0].audit_id)
    good = token(client.get("/").text)
    for url in (
        "/logout",
        "/returns",
        "/allocate",
        "/allocate/confirm",
        f"{audit}/check",
        f"{audit}/step/close",
        f"/allocate/{MONTH}/send",
    ):
        for data in ({}, {"csrf": "x" * 43}):
            response = client.post(url, data=data)
            assert response.status_code == 403, url
            assert "Security check failed" in response.text
    elsewhere = client.post(
        "/logout", data={"csrf": good}, headers={"origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    cross_site = client.post(
        "/logout", data={"csrf": good}, headers={"sec-fetch-site": "cross-site", "origin": "null"}
    )
    assert cross_site.status_code == 403
    login = client_for(app).post("/login", data={"name": "olive", "password": PASSWORD})
    assert login.status_code == 403
    assert client.get("/").status_code == 200  # still signed in: nothing happened
    with db.engine.connect() as conn:
        assert store.audit_state(conn, kit.cases[0].audit_id) == store.AuditState.allocated


def test_security_headers_and_cookie(db):
    for behind_https in (False, True):
        client = client_for(create_app(db, Settings(), behind_https))
        page = client.get("/login")
        headers = page.headers
        assert headers["content-security-policy"].startswith(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        cookie = headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert ("secure" in cookie.split("; ")) is behind_https
        assert ("strict-transport-security" in headers) is behind_https
        assert "<script>" not in page.text and " style=" not in page.text  # CSP-clean
        static = client.get("/static/formtool.css")
        assert static.headers["cache-control"] != "no-store"
        assert static.headers["x-content-type-options"] == "nosniff"


# --- returns -------------------------------------------------------------------------------


def test_upload_batch_with_hostile_files(db, app, kit):
    record(db, kit)
    client = client_for(app, "olive")
    files = [
        *kit.returns[:3],
        (HOSTILE_FILE, kit.returns[3][1]),
        ("truncated.docx", kit.returns[4][1][:2000]),
        ("notes.txt", b"hello"),
    ]
    response = upload(client, files)
    assert response.status_code == 200
    rows = Tables(response.text).tables["outcomes"][1:]
    assert [r[2] for r in rows] == ["imported"] * 4 + ["rejected"] * 2
    assert [r[1] for r in rows[:4]] == [c.audit_id for c in kit.cases[:4]]
    assert rows[3][0] == SENT_AS  # shown as named (browsers send " as %22), escaped
    assert "<img src=x" not in response.text
    assert "%22&gt;&lt;img src=x onerror=alert(1)&gt;.docx" in response.text
    assert "[truncated.docx] is not a .docx file (not a zip" in rows[4][3]
    assert "[notes.txt] is not a form (a .txt file)" in rows[5][3]
    assert "/tmp" not in response.text, re.findall(r".{80}/tmp.{80}", response.text)
    assert "/upload-" not in response.text
    assert f'href="/audits/{kit.cases[0].audit_id}"' in response.text
    # the child named like a script is shown as text on the audit page
    page = client.get(_audit_url(kit.cases[0].audit_id)).text
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    detail = audit_detail(db, kit.cases[3].audit_id)
    assert [e.user for e in detail.events if e.event != "allocated"] == ["web:olive"]
    assert detail.returns[0].file_name == SENT_AS
    again = upload(client, kit.returns[:1])  # the identical file again changes nothing
    assert Tables(again.text).tables["outcomes"][1][2] == "unchanged"


def test_upload_limits(db, kit):
    record(db, kit)
    app = create_app(db, Settings(), limits=Limits(request_bytes=3_000_000, files=3))
    client = client_for(app, "olive")
    big = upload(client, [kit.returns[0], ("huge.docx", b"x" * (20 * 1024 * 1024 + 1))])
    assert big.status_code == 413
    assert "over 3 MB, the most one upload may be. Nothing was imported" in big.text
    app = create_app(db, Settings(), limits=Limits(files=3))
    client = client_for(app, "olive")
    huge = upload(client, [kit.returns[0], ("huge.docx", b"x" * (20 * 1024 * 1024 + 1))])
    assert huge.status_code == 413
    assert "huge.docx is over 20 MB, the most a return may be. Nothing was imported" in huge.text
    many = upload(client, kit.returns[:4])
    assert many.status_code == 413 and "at most 3 files at a time" in many.text
    with db.engine.connect() as conn:
        assert store.current_return(conn, kit.cases[0].audit_id) is None


# --- pages show what the library says ------------------------------------------------------


def test_dashboard_figures_equal_status_json(db, app, kit, db_url):
    record(db, kit)
    client = client_for(app, "olive")
    upload(client, kit.returns[:3])
    post(client, _audit_url(kit.cases[0].audit_id) + "/check", {"decision": "accept"})
    result = CliRunner().invoke(cli, ["status", "--month", MONTH, "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    expected = json.loads(result.output)
    assert client.get(f"/status.json?month={MONTH}").json() == expected
    tables = Tables(client.get(f"/?month={MONTH}").text).tables
    assert {r[0]: int(r[1]) for r in tables["by-state"][1:]} == expected["by_state"]
    for table in ("teams", "auditors"):
        shown = {
            r[0]: dict(
                zip(("audits", "returned", "outstanding", "overdue"), map(int, r[1:]), strict=True)
            )
            for r in tables[table][1:]
        }
        assert shown == expected[table]
    assert [r[0] for r in tables["outstanding"][1:]] == [
        o["audit_id"] for o in expected["outstanding"]
    ]
    listed = Tables(client.get(f"/audits?month={MONTH}&tally=returned").text).tables
    assert len(listed["audit-list"]) - 1 == sum(t["returned"] for t in expected["teams"].values())


def test_audit_page_steps(db, app, kit):
    record(db, kit)
    officer, moderator = client_for(app, "olive"), client_for(app, "mo")
    upload(officer, kit.returns[:2])
    first, second = (_audit_url(c.audit_id) for c in kit.cases[:2])
    page = officer.get(first).text
    for text in (
        "Case facts",
        "Answers",
        "Accept the return",
        "Request amendment",
        "File pack (PDF)",
        kit.returns[0][0],
    ):
        assert text in page
    response = post(
        officer,
        f"{second}/check",
        {"decision": "amend", "reason": "Add the child's views"},
        page=second,
    )
    assert response.status_code == 303
    assert "returned for amendment, due back by" in officer.get(second).text
    response = post(
        moderator, f"{first}/moderate", {"grade": "Good", "comment": "agreed"}, page=first
    )
    assert response.status_code == 303
    page = moderator.get(first).text
    assert "moderated grade Good" in page
    again = post(officer, f"{second}/check", {"decision": "accept"}, page=second)
    assert (
        again.status_code == 400 and "only a complete (Final) return can be accepted" in again.text
    )
    pdf = officer.get(f"{first}/pack.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]
    detail = audit_detail(db, kit.cases[0].audit_id)
    original = officer.get(f"/returns/{detail.returns[0].id}/file")
    assert original.content == kit.returns[0][1]
    assert [e.user for e in detail.events] == ["test", "web:olive", "web:mo"]
    assert [e.user for e in audit_detail(db, kit.cases[1].audit_id).events] == [
        "test",
        "web:olive",
        "web:olive",
    ]


def test_allocate_preview_then_confirm(db, app, tmp_path):
    from formtool.demo.synthetic import synthetic_population

    population, auditors, plan = (
        tmp_path / n for n in ("population.csv", "auditors.csv", "plan.yaml")
    )
    write_case_list(
        population,
        synthetic_population(DUE, random.Random(3), {"cin": 6, "cp": 4, "foster_carer": 3}),
    )
    write_case_list(auditors, synthetic_auditors(MONTH))
    plan.write_text(
        "samples:\n  - {name: Control sample, form: csc, categories: [cin, cp], "
        "size: 3}\n  - {name: Foster carers, form: foster_carer, "
        "categories: [foster_carer], size: 1}\n",
        encoding="utf-8",
    )
    client = client_for(app, "olive")

    def preview():
        files = [
            (k, (p.name, p.read_bytes()))
            for k, p in (("population", population), ("auditors", auditors), ("plan", plan))
        ]
        return post(client, "/allocate", {"month": MONTH, "seed": "7"}, files, page="/allocate")

    wrong = post(
        client,
        "/allocate",
        {"month": MONTH, "seed": "7"},
        [
            ("population", ("auditors.csv", auditors.read_bytes())),
            ("auditors", ("auditors.csv", auditors.read_bytes())),
        ],
        page="/allocate",
    )
    assert wrong.status_code == 400
    assert "[auditors.csv] the population file lacks column(s) case_number" in wrong.text
    assert "/tmp" not in wrong.text and "formtool-web-" not in wrong.text
    page = preview()
    assert page.status_code == 200, page.text
    # 3 CSC and 1 foster carer audit, and hull's family feedback for each CSC (App A para 13)
    assert len(Tables(page.text).tables["preview"]) == 1 + 7
    assert "never audit their own team" in page.text
    with db.engine.connect() as conn:
        assert not store.month_allocations(conn, MONTH)  # a preview records nothing
    confirm = client.post(
        "/allocate/confirm",
        data={
            "csrf": token(page.text),
            "mode": "first",
            "token": hidden_value(page.text, "token"),
        },
    )
    assert confirm.status_code == 303
    done = client.get(confirm.headers["location"]).text
    assert "7 audit(s) allocated for 2026-11" in done  # what the preview showed
    forms = client.get(f"/allocate/{MONTH}/forms.zip")
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(forms.content)).namelist()
    assert len([n for n in names if n.endswith((".docx", ".xlsx"))]) == 14
    sent = post(
        client,
        f"/allocate/{MONTH}/send",
        {"how": "eml", "sender": "qa@example.invalid"},
        page="/allocate",
    )
    assert sent.status_code == 303
    emails = zipfile.ZipFile(io.BytesIO(client.get(f"/allocate/{MONTH}/emails.zip").content))
    assert emails.namelist() and all(n.endswith(".eml") for n in emails.namelist())
    again = preview()
    assert "is already allocated (7 audit(s)" in again.text
    assert 'value="replace"' in again.text and 'value="add"' in again.text
    with db.engine.connect() as conn:
        rows = store.queries.audit_rows(conn, [MONTH])
    assert {r.state for r in rows} == {"allocated"}  # drafts are not sent until marked
    page = client.get(f"/allocate?month={MONTH}").text
    assert "I have sent these drafts" in page and "not yet marked sent" in page
    marked = post(client, f"/allocate/{MONTH}/mark-sent", {}, page=f"/allocate?month={MONTH}")
    assert marked.status_code == 303
    assert "marked sent; 7 audit(s) are now sent." in client.get(marked.headers["location"]).text
    with db.engine.connect() as conn:
        rows = store.queries.audit_rows(conn, [MONTH])
    assert {r.state for r in rows} == {"sent"}
    events = audit_detail(db, rows[0].audit_id).events
    assert {e.user for e in events} == {"web:olive"}
    assert [e.event for e in events][-2:] == ["drafts written", "sent"]


def test_reports_moderation_and_forms(db, app, kit):
    import openpyxl

    record(db, kit)
    officer, viewer = client_for(app, "olive"), client_for(app, "vic")
    upload(officer, kit.returns)
    page = viewer.get(f"/reports?period={MONTH}")
    assert page.status_code == 200
    assert page.text.count('src="data:image/png;base64,') >= 3
    assert "Case file audit report: 2026-11" in page.text
    book = viewer.get(f"/reports/pmu.xlsx?period={MONTH}&names=1")  # names: not for a viewer
    workbook = openpyxl.load_workbook(io.BytesIO(book.content))
    assert "Summary" in workbook.sheetnames
    cells = {str(c.value) for ws in workbook for row in ws.iter_rows() for c in row}
    assert not any(SCRIPT in c for c in cells)
    for kind, magic in (("pdf", b"%PDF"), ("docx", b"PK")):
        assert viewer.get(f"/reports/pmu.{kind}?period={MONTH}").content.startswith(magic)
    assert "is not a period" in viewer.get("/reports?period=soon").text
    sample = officer.get(f"/moderation?month={MONTH}&rate=40%25&seed=1")
    shown = Tables(sample.text).tables["sample-table"][1:]
    assert len(shown) == 2
    moderator = client_for(app, "mo")
    recorded = post(moderator, "/moderation", {"month": MONTH, "rate": "40%", "seed": "1"})
    assert recorded.status_code == 303
    assert "2 audit(s) recorded as selected" in moderator.get(recorded.headers["location"]).text
    events = audit_detail(db, shown[0][0]).events
    assert ("selected for moderation", "web:mo") in {(e.event, e.user) for e in events}
    forms = viewer.get("/forms").text
    assert "Definition check" in forms and "Every definition is valid" in forms
    assert "kss1.seen_alone" in viewer.get("/forms/csc").text


def _audit_url(audit_id: str) -> str:
    return f"/audits/{audit_id}"


def test_only_loopback_is_served_without_accounts():
    from formtool.web import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


# --- any date, empty periods and impossible input --------------------------------------------


def test_empty_periods_are_pages_not_errors(db, app, kit):
    record(db, kit)  # audits in 2026-11; the pages below look at a month with none
    officer, viewer = client_for(app, "olive"), client_for(app, "vic")
    with clock.frozen(dt.date(2031, 1, 15)):
        for path in ("/", "/reports", "/moderation", "/reports?period=2030-Q4"):
            response = officer.get(path)
            assert response.status_code == 200, path
            assert "No audits in" in response.text, path
            assert '<a href="/allocate' in response.text, path
        assert 'value="2031-01"' in officer.get("/reports").text  # the period picker
        shown = viewer.get("/reports")
        assert shown.status_code == 200 and "No audits in 2031-01 (Jan 2031)" in shown.text
        assert "/allocate" not in shown.text
    assert "No audits in" not in officer.get(f"/reports?period={MONTH}").text


@pytest.fixture(scope="module")
def lone_officer(tmp_path_factory) -> TestClient:
    """An officer signed in to a workspace on one empty SQLite database, for the pages that
    refuse impossible input before any store work (one database for all of them)."""
    from argon2 import PasswordHasher

    from formtool.access import accounts as users

    url = f"sqlite:///{tmp_path_factory.mktemp('lone') / 'store.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        db = store.open_store(url)
        add_user(db, "olive", "officer", PASSWORD)
        return client_for(create_app(db, Settings(council="Example Council")), "olive")


@pytest.mark.parametrize(
    "path",
    [
        "/returns/99999999999999999999/file",
        "/?month=9999-12",
        "/?month=0000-01",
        "/?month=2026-13",
        "/audits?month=10000-01",
        "/reports?period=0000-Q1",
        "/reports?period=9999",
        "/reports?period=9999-Q4",
        "/moderation?seed=" + "9" * 5000,
        "/allocate?month=0000-01",
        "/reports?period=2026-13",
        "/allocate/2026-13/forms.zip",
        "/allocate/..%2F..%2Fetc/emails.zip",
    ],
)
def test_impossible_input_is_a_page_not_a_crash(lone_officer, path):
    response = lone_officer.get(path)
    assert response.status_code in (400, 404), response.text
    assert "Something went wrong" not in response.text


def test_reopen_and_returns_held_for_an_officer(db, app, kit):
    from dataclasses import replace
    from email.message import EmailMessage

    form = get_form("csc")
    record_audits(
        db, form, [replace(c, auditor_email="auditor@example.invalid") for c in kit.cases]
    )
    officer = client_for(app, "olive")
    upload(officer, kit.returns[:1])
    first = _audit_url(kit.cases[0].audit_id)
    post(officer, f"{first}/check", {"decision": "accept"}, page=first)
    assert "Reopen the audit" in officer.get(first).text
    response = post(officer, f"{first}/reopen", {"reason": "Wrong child's file"}, page=first)
    assert response.status_code == 303
    page = officer.get(first).text
    assert "reopened (was checked)" in page and "superseded by a reopen" in page
    assert "Reopen the audit" not in page  # it is returned again: accept or amend

    message = EmailMessage()
    message["From"] = "Stranger <stranger@elsewhere.invalid>"
    message["Subject"] = "audit"
    message.set_content("Attached.")
    name, data = kit.returns[1]
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    result = upload(officer, [("reply.eml", message.as_bytes())])
    assert "held" in Tables(result.text).tables["outcomes"][1]
    assert "1 return(s) held for an officer" in officer.get("/returns").text
    [row] = Tables(officer.get("/held").text).tables["held"][1:]
    assert row[:5] == [
        kit.cases[1].audit_id,
        f"reply.eml › {name}",
        "not from the auditor",
        "Stranger <stranger@elsewhere.invalid>",
        "auditor@example.invalid",
    ]
    assert client_for(app, "vic").get("/held").status_code == 403  # viewers see no returns
    [held] = db.held_returns()
    accepted = post(officer, f"/held/{held.return_id}/accept", {"back": "held"}, page="/held")
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/held")
    assert "No returns are held." in officer.get("/held").text
    assert db.audit_state(kit.cases[1].audit_id) is store.AuditState.returned
