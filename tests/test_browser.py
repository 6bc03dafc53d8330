"""The web workspace in a real browser: Debian's Chromium, headless, driven by Playwright
against the real server process (`python -m formtool serve`) on 127.0.0.1. Nothing is
downloaded at run time. With FORMTOOL_SCREENSHOTS=1, saves a screenshot of every page under
outputs/screenshots/ (the README's "Web workspace" section uses them).

Skipped, with the reason, when /usr/bin/chromium is missing; a failure when CI is set.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import re
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyotp
import pytest

from formtool import clock
from formtool.access.accounts import add_user
from formtool.definitions import get_form
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_auditors, synthetic_population
from formtool.read import read_bytes
from formtool.read.cases import Case, write_case_list
from formtool.store import open_store

from conftest import drop_pg_database, fresh_pg_database, missing

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "outputs" / "screenshots"
PASSWORD = "correct horse battery"
#: ada's authenticator app: an admin must have one while no council sign-in is configured.
ADMIN_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PLAN = """samples:
  - name: Control sample
    form: csc
    categories: [cin, cp, lac]
    size: 8
    at_least: {placed_for_adoption: 1}
  - {name: Early help, form: early_help, categories: [early_help], size: 2}
  - {name: Foster carers, form: foster_carer, categories: [foster_carer], size: 2}
"""


def _chromium() -> Path:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is not installed (apt install chromium): no browser to drive")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`formtool serve` on a fresh SQLite database with two accounts; (url, work folder)."""
    _chromium()
    folder = tmp_path_factory.mktemp("browser")
    db_file = f"sqlite:///{folder / 'formtool.db'}"
    (folder / "formtool.toml").write_text('council = "Example Council"\n', encoding="utf-8")
    db = open_store(db_file)
    add_user(db, "olive", "officer", PASSWORD)
    add_user(db, "mo", "moderator", PASSWORD)
    add_user(db, "pat", "viewer", PASSWORD)
    add_user(db, "ada", "admin", PASSWORD)
    db.enrol_totp("ada", ADMIN_TOTP, 0, dt.datetime(2026, 1, 1))
    with serving(db_file, folder) as url:
        yield url, folder


@contextmanager
def serving(
    db_url: str, folder: Path, today: dt.date | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`formtool serve` on `db_url`, run from `folder`, until the block ends; its address.
    The server's today is the test's (or `today`); `env`: more FORMTOOL_ settings."""
    process = subprocess.Popen(
        [sys.executable, "-m", "formtool", "serve", "--db", db_url, "--port", str(_free_port())],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FORMTOOL_")}
        | {"FORMTOOL_TODAY": (today or clock.today()).isoformat()}
        | (env or {}),
    )
    try:
        assert process.stdout is not None
        said = [process.stdout.readline() for _ in range(2)]  # today, then the URL
        assert "WARNING: today is fixed to" in said[0], said
        assert " on http://" in said[1], "".join(said) + process.stdout.read()
        yield said[1].split(" on ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(server) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(_chromium()), args=ARGS)
        yield chromium
        chromium.close()


def shot(page, name: str, viewport_only: bool = False) -> None:
    """With FORMTOOL_SCREENSHOTS=1, the page as it looks (the whole page, or what the window
    shows), under outputs/screenshots/ (to look at, and for the README's pictures); otherwise
    nothing: a screenshot costs the suite time."""
    if os.environ.get("FORMTOOL_SCREENSHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=not viewport_only)


def nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def sign_in(page, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    give_code(page, url, name)
    page.wait_for_url(f"{url}/")


def give_code(page, url: str, name: str) -> None:
    """An admin (ada) signs in with a code from their authenticator app too."""
    if name == "ada":
        page.wait_for_url(f"{url}/login/code**")
        page.get_by_label("Code").fill(pyotp.TOTP(ADMIN_TOTP).now())
        page.get_by_role("button", name="Sign in").click()


def test_an_admin_adds_an_account_and_reads_the_access_log(server, browser) -> None:
    url, _ = server
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, url, "ada")
        nav(page, "Accounts")
        page.get_by_label("User name").fill("newcomer")
        page.get_by_label("officer: runs the audit cycle").check()
        page.get_by_label("Temporary password", exact=True).fill("a temporary passphrase")
        page.get_by_label("Temporary password again").fill("a temporary passphrase")
        page.get_by_role("button", name="Add account").click()
        page.wait_for_url(f"{url}/admin/users")
        assert "newcomer added as officer" in page.content()
        rows = page.locator("#accounts tbody tr").all_inner_texts()
        assert any(r.startswith("newcomer") and "must change password" in r for r in rows)
        shot(page, "admin-users")
        nav(page, "Access log")
        logged = page.locator("#access-log tbody").inner_text()
        assert "account added" in logged and "signed in" in logged
        shot(page, "access-log")
        assert page.goto(f"{url}/audits").status == 403  # an admin sees no case
    finally:
        context.close()


def test_changing_a_password_ends_the_other_session(server, browser) -> None:
    url, _ = server
    here, elsewhere = browser.new_context(), browser.new_context()
    try:
        mine, other = here.new_page(), elsewhere.new_page()
        sign_in(mine, url, "pat")
        sign_in(other, url, "pat")
        mine.get_by_role("link", name="pat").click()
        mine.get_by_label("Current password").fill(PASSWORD)
        mine.get_by_label("New password", exact=True).fill("a brand new passphrase")
        mine.get_by_label("New password again").fill("a brand new passphrase")
        shot(mine, "account-password")
        mine.get_by_role("button", name="Change password").click()
        mine.wait_for_url(f"{url}/")
        assert "Your password is changed" in mine.content()
        other.goto(f"{url}/reports")
        assert other.url.startswith(f"{url}/login")  # the old session ended
        mine.goto(f"{url}/reports")
        assert mine.url == f"{url}/reports"  # this one goes on
        sign_in(other, url, "pat", "a brand new passphrase")
    finally:
        here.close()
        elsewhere.close()


def inputs(folder: Path, month: str) -> dict[str, Path]:
    due = dt.date(int(month[:4]), int(month[5:]), 28)
    paths = {
        "population": folder / "population.csv",
        "auditors": folder / "auditors.csv",
        "plan": folder / "plan.yaml",
    }
    write_case_list(
        paths["population"],
        synthetic_population(
            due,
            random.Random(5),
            {"cin": 12, "cp": 8, "lac": 8, "early_help": 6, "foster_carer": 4},
        ),
    )
    write_case_list(paths["auditors"], synthetic_auditors(month))
    paths["plan"].write_text(PLAN, encoding="utf-8")
    return paths


def returns(forms_zip: bytes, folder: Path) -> list[Path]:
    """Six Word returns from the downloaded forms, completed: four good; one with 'Maybe'
    typed where the form offers Yes/No (its identity readable: rejected against its audit);
    and one cut short in transit and renamed (neither it nor its name says whose it is: an
    unmatched file)."""
    from formtool.demo.fill import fill_docx

    rng = random.Random(2)
    archive = zipfile.ZipFile(io.BytesIO(forms_zip))
    made = []
    for name in sorted(
        n for n in archive.namelist() if n.startswith("CSC") and n.endswith(".docx")
    )[:6]:
        blank = archive.read(name)
        identity = read_bytes(blank, ".docx").identity
        form = get_form(identity.form_id, identity.form_version)
        case = Case(identity.audit_id, form.id, form.version, {"auditor": "Auditor (synthetic)"})
        answers = synthetic_answers(form, case, rng, clock.today())
        path = folder / name
        path.write_bytes(fill_return(blank, "docx", form, answers))
        made.append(path)
    question = get_form("csc").questions()[0].key
    made[-2].write_bytes(fill_docx(made[-2].read_bytes(), {question: "Maybe"}))
    cut = made.pop()  # renamed by a mail client: its name no longer says whose it is
    made.append(cut.rename(folder / "Returned form.docx"))
    made[-1].write_bytes(made[-1].read_bytes()[:3000])
    return made


@contextmanager
def signed_in(browser, url: str, name: str, width: int = 1366) -> Iterator:
    """A page of a new browser context, signed in as `name`."""
    context = browser.new_context(accept_downloads=True, viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, url, name)
        yield page
    finally:
        context.close()


def flash_text(page) -> str:
    return page.locator(".flash").inner_text()


def test_an_officers_month_in_chromium(browser, tmp_path):
    """The whole month without the command line: allocate, send (SMTP), upload returns
    (rejected ones too), see them in To chase, chase, request an amendment (the email
    checked), accept, sign off the actions, close, moderate, download the PMU pack, and the
    viewer's empty and full reports. Time passes between sending and the returns: the server
    is started again with a later today."""
    import openpyxl
    from test_mail import smtp_server

    start = clock.today()
    month = f"{start:%Y-%m}"
    db_url = f"sqlite:///{tmp_path / 'formtool.db'}"
    db = open_store(db_url)
    for name, role in (("olive", "officer"), ("mo", "moderator"), ("pat", "viewer")):
        add_user(db, name, role, PASSWORD)
    add_user(db, "ada", "admin", PASSWORD)  # serve's first lines are then as `serving` reads
    settings = 'council = "Example Council"\nmin_base = 2\n'  # a small month: charts drawn
    (tmp_path / "formtool.toml").write_text(settings, encoding="utf-8")
    with smtp_server() as (mail, port):
        smtp = {"FORMTOOL_SMTP": f"127.0.0.1:{port}", "FORMTOOL_MAIL_FROM": "qa@example.invalid"}
        with (
            serving(db_url, tmp_path, start, smtp) as url,
            signed_in(browser, url, "olive") as page,
        ):
            forms_zip = _allocate_and_send(page, url, tmp_path, month)
        assert len(mail.envelopes) >= 4  # one email per auditor with audits
        sent = len(mail.envelopes)
        later = max(r.due_date for r in db.audit_rows([month])) + dt.timedelta(days=3)
        with serving(db_url, tmp_path, later, smtp) as url:
            with signed_in(browser, url, "olive") as page:
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                made = returns(forms_zip, tmp_path)
                _upload(page, made)
                _to_chase(page, made, mail, sent)
                _amend(page, url, mail, db, month)
                _accept_sign_off_and_close(page, url, db, month)
                assert not errors, errors  # no CSP violations, no script errors
            with signed_in(browser, url, "mo") as page:
                _moderate(page, url, month)
                page.goto(f"{url}/reports?period={month}")  # today is in a later month now
                assert page.locator(".charts img").count() >= 3
                shot(page, "reports")
                with page.expect_download() as download:
                    page.locator("#workbook").click()
                assert download.value.suggested_filename == f"pmu-{month}.xlsx"
                saved = tmp_path / download.value.suggested_filename
                download.value.save_as(saved)
                assert "Summary" in openpyxl.load_workbook(saved).sheetnames
            with signed_in(browser, url, "pat") as viewer:
                viewer.goto(f"{url}/reports?period=2020-01")  # a month with no audits
                assert viewer.locator("#no-audits").is_visible()
                shot(viewer, "reports-empty")
                viewer.goto(f"{url}/reports?period={month}")
                assert viewer.locator(".charts img").count() >= 3
                content = viewer.content()
                assert "CSC-" not in content  # figures only: no audit id, no case number
                assert viewer.goto(f"{url}/audits").status == 403
                nav(viewer, "Forms")
                assert "Every definition is valid" in viewer.content()
                viewer.get_by_role("link", name="Case File Audit Tool").first.click()
                shot(viewer, "form")


def _allocate_and_send(page, url: str, folder: Path, month: str) -> bytes:
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    nav(page, "Allocate")
    files = inputs(folder, month)
    for label, key in (("Population", "population"), ("Auditors", "auditors"), ("Plan", "plan")):
        page.get_by_label(label).set_input_files(str(files[key]))
    page.get_by_label("Seed").fill("4")
    page.get_by_role("button", name="Preview the allocation").click()
    # 12 case file audits and hull's family feedback forms for its CSC ones (App A para 13)
    assert page.locator("#preview tbody tr").count() == 20
    fits(page, "allocate-preview")
    page.get_by_role("button", name="Confirm: record 20 audits").click()
    assert "20 audit(s) allocated" in flash_text(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the forms (.zip)").click()
    forms_zip = Path(download.value.path()).read_bytes()
    page.get_by_role("button", name=re.compile("^Send now via")).click()
    assert "sent via" in flash_text(page) and "marked sent" in flash_text(page)
    shot(page, "allocate-done")
    nav(page, "Dashboard")
    assert page.locator("#total-audits").inner_text() == "20"  # the feedback forms too
    assert not console_errors, console_errors  # no CSP violations, no script errors
    return forms_zip


def _upload(page, made: list[Path]) -> None:
    from playwright.sync_api import expect

    nav(page, "Returns")
    page.wait_for_load_state()  # upload.js listens for the files chosen: let it load first
    page.locator("#files").set_input_files([str(p) for p in made])
    expect(page.locator("#chosen")).to_contain_text("6 file(s)")  # said by upload.js
    page.get_by_role("button", name="Import").click()
    assert "6 return(s) read" in page.locator("#results").inner_text()
    rows = page.locator("#outcomes tbody tr")
    statuses = [rows.nth(i).locator(".status").inner_text() for i in range(6)]
    assert statuses.count("imported") == 4 and statuses.count("rejected") == 2
    rejected = page.locator("#outcomes tr.row-rejected").all_inner_texts()
    assert any("not a .docx file (not a zip" in r and made[-1].name in r for r in rejected)
    fits(page, "returns")


def _to_chase(page, made: list[Path], mail, sent: int) -> None:
    """The rejected files are in To chase; the overdue audits are chased, once a day."""
    nav(page, "To chase")
    rejected = page.locator("#rejected").inner_text()
    assert made[-2].name in rejected and "Maybe" not in rejected  # no typed answer is kept
    assert made[-1].name in page.locator("#unmatched").inner_text()  # unreadable
    overdue = page.locator("#overdue tbody tr")
    assert overdue.count() == 20 - 4  # every audit without a good return
    page.locator("#overdue tbody input[type=checkbox]").nth(0).check()
    page.get_by_role("button", name="Chase selected").click()
    assert "Chased" in flash_text(page)
    assert len(mail.envelopes) == sent + 1
    page.get_by_role("button", name=re.compile("^Chase all overdue")).click()
    assert "Already chased today" in flash_text(page)
    chased = len(mail.envelopes) - sent
    assert chased > 1  # the other auditors with overdue audits, each once
    page.get_by_role("button", name=re.compile("^Chase all overdue")).click()
    assert len(mail.envelopes) - sent == chased  # at most once a day
    page.locator("#overdue tbody th a").first.click()  # its page offers no second chase
    assert "chased today already" in page.locator(".notice").first.inner_text()
    assert page.get_by_role("button", name="Chase now").count() == 0
    nav(page, "To chase")
    page.get_by_label(re.compile("^What was done with file")).first.fill("Asked the sender again")
    page.get_by_role("button", name="Mark dealt with").first.click()
    assert "marked dealt with" in flash_text(page)
    assert page.locator("#unmatched").count() == 0  # its only file is dealt with


def _returned(db, month: str) -> list[str]:
    return [r.audit_id for r in db.audit_rows([month]) if r.state == "returned"]


def _amend(page, url: str, mail, db, month: str) -> None:
    """An amendment request emails the auditor the reason, the date and their return."""
    import email
    from email import policy

    audit_id = _returned(db, month)[0]
    page.goto(f"{url}/audits/{audit_id}")
    before = len(mail.envelopes)
    page.get_by_label(re.compile("^Or send it back for amendment")).fill("Add the child's views")
    page.get_by_role("button", name="Request amendment").click()
    assert "returned for amendment" in flash_text(page)
    assert len(mail.envelopes) == before + 1
    message = email.message_from_bytes(mail.envelopes[-1].content, policy=policy.default)
    row = db.require_audit(audit_id)
    assert message["To"].addresses[0].addr_spec == row.auditor_email
    plain = message.get_body(("plain",))
    assert plain is not None
    body = plain.get_content()
    assert "Add the child's views" in body and f"{row.due_date:%d/%m/%Y}" in body
    attached = [a.get_filename() for a in message.iter_attachments()]
    assert attached == [f"{audit_id}.docx"]


def _accept_sign_off_and_close(page, url: str, db, month: str) -> None:
    audit_id = _returned(db, month)[0]
    page.goto(f"{url}/audits/{audit_id}")
    page.get_by_role("button", name="Accept the return").click()
    assert f"{audit_id}: accepted" in flash_text(page)
    assert page.locator("#waiting-sign-off").is_visible()
    assert page.get_by_role("button", name="Close the audit").count() == 0
    fits(page, "audit-signing-off")
    forms = page.locator("#actions form")
    for _ in range(forms.count()):
        form = page.locator("#actions form").first
        form.get_by_label("Signed off by").fill("Manager M1 (synthetic)")
        form.get_by_role("button").click()
        assert "signed off by Manager M1 (synthetic)" in flash_text(page)
    page.get_by_role("button", name="Actions signed off").click()
    page.get_by_role("button", name="Close the audit").click()
    assert f"{audit_id}: closed" in flash_text(page)
    page.get_by_label("Reopen the audit").fill("The sign-off was for another child's plan.")
    page.get_by_role("button", name="Reopen the audit").click()
    assert f"{audit_id}: reopened (was closed)" in flash_text(page)
    assert "superseded by a reopen" in page.locator("ol.events").inner_text()
    # an immediate concern raised on the page is red until an officer records the action
    page.get_by_label("Raise an immediate concern").fill("Child left alone overnight.")
    page.get_by_role("button", name="Raise the concern").click()
    assert "no action recorded yet" in page.locator("#concern-banner").inner_text()
    page.get_by_label("Action taken on concern").fill("Team manager visited the same day.")
    page.get_by_role("button", name="Record the action taken").click()
    assert page.locator("#concern-banner").count() == 0


def _moderate(page, url: str, month: str) -> None:
    page.goto(f"{url}/moderation?month={month}&rate=50%25")
    first = page.locator("#sample-table tbody tr a").first
    audit_id = first.inner_text()
    first.click()
    page.get_by_label("Grading after moderation").select_option("Good")
    page.get_by_label("Why (optional)").fill("Evidence of the child's voice throughout.")
    page.get_by_role("button", name="Record moderated grade").click()
    assert f"{audit_id}: moderated grade Good" in flash_text(page)
    assert "web:mo" in page.locator("ol.events").inner_text()
    shot(page, "audit")


def fits(page, name: str) -> None:
    """The page fits 390, 768 and 1366 px without scrolling sideways, and axe-core finds
    no serious or critical problem on it (test_pages_fit checks every other page)."""
    from test_pages_fit import WIDTHS, overflow, serious

    problems = serious(page)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        wide = overflow(page)
        if wide:
            problems.append(f"at {width} px: {wide}")
    page.set_viewport_size({"width": 1366, "height": 900})
    assert not problems, f"{name}: " + "; ".join(problems)


def test_a_database_outage_is_a_formtool_page_in_chromium(pg_server, browser, tmp_path):
    """PostgreSQL stops taking connections under a running server: every page is the 503
    'unreachable' page, and the workspace comes back with the database."""
    import sqlalchemy as sa

    url = fresh_pg_database(pg_server)
    name = sa.make_url(url).database
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    db = open_store(url)
    add_user(db, "olive", "officer", PASSWORD)
    add_user(db, "ada", "admin", PASSWORD)  # serve's first lines are then as `serving` reads
    settings = 'council = "Example Council"\nmin_base = 2\n'  # a small month: charts drawn
    (tmp_path / "formtool.toml").write_text(settings, encoding="utf-8")
    try:
        with serving(url, tmp_path) as address, browser.new_context() as context:
            page = context.new_page()
            sign_in(page, address, "olive")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            for path in ("/", "/status", "/returns"):
                down = page.goto(f"{address}{path}")
                assert down is not None and down.status == 503, path
                heading = page.get_by_role("heading", level=1)
                assert heading.inner_text() == "The database is unreachable", path
                assert "Internal Server Error" not in page.content()
            shot(page, "database-unreachable")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            back = page.goto(f"{address}/")
            assert back is not None and back.status == 200
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
        drop_pg_database(pg_server, url)
