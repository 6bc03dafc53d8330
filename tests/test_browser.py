"""The web workspace in a real browser: Debian's Chromium, headless, driven by Playwright
against the real server process (`python -m formtool serve`) on 127.0.0.1. Nothing is
downloaded at run time. Saves a screenshot of every page under outputs/screenshots/ (the
README's "Web workspace" section uses them).

Skipped, with the reason, when /usr/bin/chromium is missing; a failure when CI is set.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    with serving(db_file, folder) as url:
        yield url, folder


@contextmanager
def serving(db_url: str, folder: Path) -> Iterator[str]:
    """`formtool serve` on `db_url`, run from `folder`, until the block ends; its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "formtool", "serve", "--db", db_url, "--port", str(_free_port())],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FORMTOOL_")}
        | {"FORMTOOL_TODAY": clock.today().isoformat()},  # the server's today is the test's
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


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def sign_in(page, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


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
    """Five completed Word returns from the downloaded forms; the last cut short in transit."""
    rng = random.Random(2)
    archive = zipfile.ZipFile(io.BytesIO(forms_zip))
    made = []
    for name in sorted(n for n in archive.namelist() if n.endswith(".docx"))[:5]:
        blank = archive.read(name)
        identity = read_bytes(blank, ".docx").identity
        form = get_form(identity.form_id, identity.form_version)
        case = Case(identity.audit_id, form.id, form.version, {"auditor": "Auditor (synthetic)"})
        answers = synthetic_answers(form, case, rng, clock.today())
        path = folder / name
        path.write_bytes(fill_return(blank, "docx", form, answers))
        made.append(path)
    made[-1].write_bytes(made[-1].read_bytes()[:3000])
    return made


def test_the_monthly_cycle_in_chromium(server, browser, tmp_path):
    import openpyxl

    url, _ = server
    month = f"{clock.today():%Y-%m}"
    context = browser.new_context(accept_downloads=True, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{url}/")
    assert page.url.startswith(f"{url}/login")
    shot(page, "login")
    sign_in(page, url, "olive")

    # allocate from uploaded files: preview, confirm, download the forms
    nav(page, "Allocate")
    files = inputs(tmp_path, month)
    for label, key in (("Population", "population"), ("Auditors", "auditors"), ("Plan", "plan")):
        page.get_by_label(label).set_input_files(str(files[key]))
    page.get_by_label("Seed").fill("4")
    page.get_by_role("button", name="Preview the allocation").click()
    # 12 case file audits and hull's family feedback forms for its CSC ones (App A para 13)
    assert page.locator("#preview tbody tr").count() == 20
    shot(page, "allocate-preview")
    page.get_by_role("button", name="Confirm: record 20 audits").click()
    assert "20 audit(s) allocated" in page.locator(".flash").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the forms (.zip)").click()
    forms_zip = Path(download.value.path()).read_bytes()
    page.get_by_role("button", name="Write the emails (.eml drafts)").click()
    assert "marked sent" in page.locator(".flash").inner_text()
    assert page.get_by_role("button", name="I have sent these drafts").is_visible()
    shot(page, "allocate-done")

    # five returns picked with the file input; one broken in transit
    nav(page, "Returns")
    made = returns(forms_zip, tmp_path)
    page.locator("#files").set_input_files([str(p) for p in made])
    assert "5 file(s)" in page.locator("#chosen").inner_text()
    page.get_by_role("button", name="Import").click()
    rows = page.locator("#outcomes tbody tr")
    assert rows.count() == 5
    statuses = [rows.nth(i).locator(".status").inner_text() for i in range(5)]
    assert statuses.count("imported") == 4 and statuses.count("rejected") == 1
    rejected = page.locator("#outcomes tr.row-rejected")
    assert made[-1].name in rejected.inner_text()
    assert "not a .docx file (not a zip: truncated, damaged or renamed)" in rejected.inner_text()
    shot(page, "returns")

    nav(page, "Dashboard")
    assert page.locator("#total-returned").inner_text() == "4"
    assert page.locator("#total-audits").inner_text() == "20"  # the feedback forms too
    shot(page, "dashboard")

    # a moderator opens an audit and records a moderated grade
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, url, "mo")
    page.goto(f"{url}/moderation?month={month}&rate=50%25")
    first = page.locator("#sample-table tbody tr a").first
    audit_id = first.inner_text()
    first.click()
    page.get_by_label("Grading after moderation").select_option("Good")
    page.get_by_label("Why (optional)").fill("Evidence of the child's voice throughout.")
    page.get_by_role("button", name="Record moderated grade").click()
    assert f"{audit_id}: moderated grade Good" in page.locator(".flash").inner_text()
    assert "web:mo" in page.locator("ol.events").inner_text()
    shot(page, "audit")
    nav(page, "Moderation")
    assert page.locator("#moderated tbody tr").count() == 1
    shot(page, "moderation")

    # an officer reopens the moderated audit: the moderation stays, marked superseded
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, url, "olive")
    page.goto(f"{url}/audits/{audit_id}")
    page.get_by_label("Reopen the audit").fill("The moderation was of the wrong return.")
    page.get_by_role("button", name="Reopen the audit").click()
    assert f"{audit_id}: reopened (was moderated)" in page.locator(".flash").inner_text()
    assert "superseded by a reopen" in page.locator("ol.events").inner_text()
    assert page.get_by_role("button", name="Accept the return").is_visible()

    # an immediate concern raised on the page is red until an officer records the action
    page.get_by_label("Raise an immediate concern").fill("Child left alone overnight.")
    page.get_by_role("button", name="Raise the concern").click()
    assert "no action recorded yet" in page.locator("#concern-banner").inner_text()
    page.get_by_label("Action taken on concern").fill("Team manager visited the same day.")
    page.get_by_role("button", name="Record the action taken").click()
    assert "action recorded" in page.locator(".flash").inner_text()
    assert page.locator("#concern-banner").count() == 0

    # the PMU report on the page, and its workbook opened with openpyxl
    nav(page, "Reports")
    assert page.locator(".charts img").count() >= 3
    assert page.locator(".charts img").first.evaluate("i => i.naturalWidth") > 100
    shot(page, "reports")
    with page.expect_download() as download:
        page.locator("#workbook").click()
    assert download.value.suggested_filename == f"pmu-{month}.xlsx"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    book = openpyxl.load_workbook(saved)
    assert "Summary" in book.sheetnames

    nav(page, "Forms")
    assert "Every definition is valid" in page.content()
    shot(page, "forms")
    page.get_by_role("link", name="Case File Audit Tool").first.click()
    shot(page, "form")
    assert not console_errors, console_errors  # no CSP violations, no script errors
    context.close()


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
    (tmp_path / "formtool.toml").write_text('council = "Example Council"\n', encoding="utf-8")
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
