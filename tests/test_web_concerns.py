"""Immediate concerns and exemptions in the web workspace (Starlette's TestClient, on SQLite: the
store's side runs on both databases in the store's own tests): the red banner until an officer
records the action taken, what a viewer may not see or do, raising a concern without a return,
emailing concerns at once after an import, exempting an audit, and the PMU pack's count."""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import openpyxl
import pytest
from test_mail import smtp_server
from test_web import PASSWORD, Tables, client_for, post

from formtool import clock, store
from formtool.access.accounts import add_user
from formtool.access.log import access_entries
from formtool.definitions import get_form
from formtool.demo.fill import CONCERN_DETAILS, concern_answers, fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.generate import record_audits, render
from formtool.packs.figures import concerns_line, load_figures
from formtool.packs.pmu import pmu_document
from formtool.packs.workbook import workbook
from formtool.periods import period_for
from formtool.programme.workflow import exempt_audit
from formtool.read.cases import Case, load_cases, write_case_list
from formtool.settings import Settings
from formtool.web import create_app
from formtool.web.pages import audit_url

from conftest import use_real_contacts

DUE = dt.date(2026, 11, 30)
BANNER = "Immediate concern for a child's safety:"
TOLD = "Told the team manager by phone at 10:00"


@dataclass(frozen=True)
class Setup:
    db: store.Store
    app: object
    cases: list[Case]  # six CSC audits of 2026-11, one per test that changes one
    concern_returns: list[tuple[str, bytes]]  # returns of cases[3:5] answering Yes


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    from argon2 import PasswordHasher

    from formtool.access import accounts as users

    folder = tmp_path_factory.mktemp("concerns")
    form = get_form("csc")
    rng = random.Random(20)
    write_case_list(folder / "cases.csv", [synthetic_case(form, i, DUE, rng) for i in range(1, 7)])
    cases = load_cases(folder / "cases.csv", form)
    with pytest.MonkeyPatch.context() as patch:  # cheap hashes: this is not about passwords
        patch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))
        db = store.open_store(f"sqlite:///{folder / 'store.db'}")
        for name, role in (("olive", "officer"), ("vic", "viewer")):
            add_user(db, name, role, PASSWORD)
        record_audits(db, form, cases, user="test")
        returns = []
        for case in cases[3:5]:
            answers = synthetic_answers(form, case, rng, clock.today())
            answers |= concern_answers(form, raised=True, day=clock.today())
            blank = render(form, case, "docx")
            returns.append((f"{case.audit_id}.docx", fill_return(blank, "docx", form, answers)))
        app = create_app(db, Settings(council="Example Council"))
        yield Setup(db, app, cases, returns)


def _raise(db: store.Store, audit_id: str, details: str) -> store.Concern:
    concern = db.raise_concern(audit_id, "return", details, TOLD, None, "test")
    assert concern is not None
    return concern


def _banner(html: str) -> str:
    """The red banner's text ('' when there is none)."""
    if 'id="concern-banner"' not in html:
        return ""
    return unescape(html.split('id="concern-banner"', 1)[1].split("</section>", 1)[0])


def _upload(client, files: list[tuple[str, bytes]]):
    return post(
        client, "/returns", files=[("files", (n, io.BytesIO(d))) for n, d in files], page="/returns"
    )


def test_the_banner_stays_until_an_officer_records_the_action(setup: Setup) -> None:
    db, audit_id = setup.db, setup.cases[0].audit_id
    concern = _raise(db, audit_id, "Bruises seen on the child's arm")
    officer = client_for(setup.app, "olive")
    url = audit_url(audit_id)
    dashboard = officer.get("/").text
    banner = _banner(dashboard)
    assert BANNER in banner and "(from the auditor's return); no action recorded yet" in banner
    assert f'href="{url}"' in banner and "NOT EMAILED" in banner  # no SMTP server set
    assert 'id="open-concerns"' in dashboard
    page = officer.get(url).text
    assert BANNER in page
    assert "Bruises seen on the child&#39;s arm" in page and TOLD in page
    [seen] = [e for e in access_entries(db, audit_id=audit_id) if e.action == "viewed an audit"]
    assert "concern" in seen.detail  # the concern's own words were shown: logged
    response = post(
        officer,
        f"/concerns/{concern.id}/action",
        {"action": "Team manager visited the same day"},
        page=url,
    )
    assert (response.status_code, response.headers["location"]) == (303, url)
    assert audit_id not in _banner(officer.get("/").text)  # the banner is gone
    page = officer.get(url).text
    assert BANNER not in page and "Team manager visited the same day" in page
    assert not db.concerns(open_only=True, audit_id=audit_id)
    records = db.audit_records(audit_id)
    assert records is not None
    last = records.events[-1]
    assert (last.event, last.user_name) == ("concern actioned", "web:olive")
    again = post(officer, f"/concerns/{concern.id}/action", {"action": "Again"}, page=url)
    assert again.status_code == 400 and "already actioned by web:olive" in again.text
    for number in ("99999999999", "x"):
        missing = post(officer, f"/concerns/{number}/action", {"action": "Done"}, page=url)
        assert missing.status_code == 400 and f"There is no concern {number}." in missing.text


def test_a_viewer_sees_the_banner_but_neither_the_case_nor_the_details(setup: Setup) -> None:
    audit_id = setup.cases[1].audit_id
    concern = _raise(setup.db, audit_id, "Father threatened the worker")
    viewer = client_for(setup.app, "vic")
    dashboard = viewer.get("/").text
    assert BANNER in _banner(dashboard)
    assert audit_id not in dashboard and setup.cases[1].case_number not in dashboard
    assert "Father threatened" not in dashboard and "NOT EMAILED" not in dashboard
    assert 'id="open-concerns"' not in dashboard and 'href="/concerns"' not in dashboard
    assert viewer.get(audit_url(audit_id)).status_code == 403
    assert viewer.get("/concerns").status_code == 403
    refused = post(viewer, f"/concerns/{concern.id}/action", {"action": "Done"})
    assert refused.status_code == 403
    assert post(viewer, f"{audit_url(audit_id)}/concern", {"details": "x"}).status_code == 403
    assert not [c for c in setup.db.concerns(audit_id=audit_id) if not c.open]


def test_an_officer_raises_a_concern_from_the_audit_page(setup: Setup) -> None:
    db, audit_id = setup.db, setup.cases[2].audit_id
    officer = client_for(setup.app, "olive")
    url = audit_url(audit_id)
    assert "Raise the concern" in officer.get(url).text
    empty = post(officer, f"{url}/concern", {"details": "  "}, page=url)
    assert empty.status_code == 400 and "Say what the concern is" in empty.text
    response = post(officer, f"{url}/concern", {"details": "Child left alone overnight"}, page=url)
    assert response.status_code == 303
    [concern] = db.concerns(audit_id=audit_id)
    assert (concern.source, concern.raised_by, concern.open) == ("officer", "web:olive", True)
    page = officer.get(url).text
    assert f"{audit_id}: concern {concern.id} raised." in page
    assert "(by an officer); no action recorded yet" in _banner(page)
    rows = Tables(officer.get("/concerns").text).tables["concerns"][1:]
    listed = {r[1]: r for r in rows}
    assert "OPEN: no action recorded" in listed[audit_id][5]
    assert listed[audit_id][6] == "not emailed yet"
    assert [r[5].startswith("OPEN") for r in rows] == sorted(
        (r[5].startswith("OPEN") for r in rows), reverse=True
    )  # open ones first
    assert any(e.action == "viewed the concerns" for e in access_entries(db, user="web:olive"))


def test_an_import_emails_its_concern_at_once_or_says_loudly_it_could_not(setup: Setup) -> None:
    first, second = setup.concern_returns
    use_real_contacts(setup.db)  # the shipped policies' contacts are placeholders
    with smtp_server() as (handler, port):
        settings = Settings(council="Example Council", smtp=f"127.0.0.1:{port}")
        sending = client_for(create_app(setup.db, settings), "olive")
        result = _upload(sending, [first]).text
    [concern] = setup.db.concerns(audit_id=setup.cases[3].audit_id)
    assert f"Concern {concern.id} ({concern.audit_id}) emailed to" in result
    [mail] = [
        e.content.decode() for e in handler.envelopes if concern.audit_id.encode() in e.content
    ]
    assert CONCERN_DETAILS not in mail  # the audit id, the team and a link; never the words
    assert "URGENT" not in result.split('id="concern-emails"')[1].split("</section>")[0]
    broken = Settings(smtp=f"127.0.0.1:{port}")  # the server has stopped: nobody listens
    failing = client_for(create_app(setup.db, broken), "olive")
    response = _upload(failing, [second])
    assert response.status_code == 200 and "Traceback" not in response.text
    assert "Concern email not sent: Sending through 127.0.0.1" in response.text
    assert "URGENT: " in response.text and "immediate concern(s) for a child" in response.text


def test_an_officer_exempts_an_audit_from_its_page(setup: Setup) -> None:
    db, audit_id = setup.db, setup.cases[5].audit_id
    officer = client_for(setup.app, "olive")
    url = audit_url(audit_id)
    assert "Exempt the audit" in officer.get(url).text
    nobody = post(officer, f"{url}/exempt", {"reason": "Child moved abroad"}, page=url)
    assert nobody.status_code == 400 and "Say who agreed the exemption" in nobody.text
    response = post(
        officer,
        f"{url}/exempt",
        {"reason": "Child moved abroad", "agreed_by": "Head of Service (synthetic)"},
        page=url,
    )
    assert response.status_code == 303
    assert db.audit_state(audit_id) is store.AuditState.exempted
    page = officer.get(url).text
    assert "exempted (was allocated), agreed by Head of Service (synthetic)" in page
    assert "not due: exempted" in page and "Exempt the audit" not in page
    assert 'class="state state-exempted"' in page
    by_state = dict(Tables(officer.get("/?month=2026-11").text).tables["by-state"][1:])
    assert by_state["exempted"] == "1"
    again = post(officer, f"{url}/exempt", {"reason": "x", "agreed_by": "y"}, page=url)
    assert again.status_code == 400


def test_the_pmu_pack_counts_concerns_and_lists_exempted_audits_apart(tmp_path: Path) -> None:
    form = get_form("csc")
    rng = random.Random(5)
    write_case_list(tmp_path / "c.csv", [synthetic_case(form, i, DUE, rng) for i in range(1, 4)])
    cases = load_cases(tmp_path / "c.csv", form)
    db = store.open_store(f"sqlite:///{tmp_path / 'store.db'}")
    record_audits(db, form, cases, user="test")
    period, as_of = period_for(month="2026-11"), dt.date(2026, 12, 10)
    assert concerns_line(load_figures(db, period, as_of)) == "Immediate concerns raised: 0."
    exempt_audit(db, cases[0].audit_id, "Moved away", "Head of Service (synthetic)", "test")
    done = _raise(db, cases[1].audit_id, "Seen with a burn")
    db.record_concern_action(done.id, "Strategy meeting held", "test")
    _raise(db, cases[2].audit_id, "Another concern")
    figures = load_figures(db, period, as_of)
    assert {a.audit_id for a in figures.overdue} == {c.audit_id for c in cases[1:]}
    summary = pmu_document(figures).parts[0].paragraphs
    assert "Immediate concerns raised: 2 (1 without action recorded)." in summary
    assert summary[0].startswith(
        "3 audits were allocated for 2026-11 (Nov 2026) and 1 of them exempted (agreed not to be "
        "done); 0 of the 2 due were completed (0%)"
    )
    assert f"Exempted, not counted as due: {cases[0].audit_id}." in summary
    text = " ".join(pmu_document(figures, aggregate_only=True).parts[0].paragraphs)
    assert cases[0].audit_id not in text and "Seen with a burn" not in text
    book = openpyxl.load_workbook(io.BytesIO(workbook(figures)))
    assert {r[0] for r in book["Non-completion"].iter_rows(min_row=2, values_only=True)} == {
        c.audit_id for c in cases[1:]
    }
    assert "Immediate concerns raised: 2" in book["Summary"]["A2"].value
    audits = {r[0]: r for r in book["Audits"].iter_rows(min_row=2, values_only=True)}
    assert "Exempted" in audits[cases[0].audit_id]
