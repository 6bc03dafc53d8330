"""The web form's routes over HTTP (Starlette's TestClient), on SQLite and PostgreSQL: a link
alone changes nothing and shows no fact; a one-time code opens the form for that audit and
stage only; every POST needs this browser's security token; autosave keeps a draft and raises
no concern; "Submit as final" with a mistake shows it beside the field and stores nothing,
then stores the return and offers its PDF once; a link that expired, was replaced or whose
audit moved on says so and shows nothing; outside this computer the form needs HTTPS; the
token is never stored or logged (issue 25)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from test_import import TODAY, good_answers
from test_web import hidden_value

from formtool import clock, store
from formtool.definitions import get_form
from formtool.definitions.scales import FieldKind
from formtool.generate import write_forms
from formtool.programme.weblinks import issue_link
from formtool.settings import Settings
from formtool.web import create_app, webform

from conftest import make_cases

AUDITOR = "auditor.one@example.invalid"
LOCAL = "http://127.0.0.1"


@pytest.fixture
def world(tmp_path, db, monkeypatch):
    """Two CSC audits on the database, a web app on it, and the codes it would email."""
    form = get_form("csc")
    cases = [dataclasses.replace(c, auditor_email=AUDITOR) for c in make_cases(tmp_path, form)]
    write_forms(form, cases, tmp_path / "forms", ("docx",), db=db)
    codes: list[str] = []
    monkeypatch.setattr(webform, "_send_code", lambda ws, access, code: codes.append(code))
    with clock.frozen(TODAY):
        yield db, create_app(db, Settings(council="Example Council")), cases, codes


def client(app, base: str = LOCAL, address: str = "127.0.0.1") -> Any:
    """A browser at `address` (this computer, by default) opening `base`."""
    from starlette.testclient import TestClient

    return TestClient(app, base_url=base, follow_redirects=False, client=(address, 50000))


def opened(app, db, audit_id: str, codes: list[str]) -> tuple[Any, str]:
    """A browser that followed the link, asked for a code and gave it: (client, token)."""
    token = issue_link(db, audit_id, "audit", TODAY)
    browser = client(app)
    page = browser.get(f"/form/{token}").text
    csrf = hidden_value(page, "csrf")
    assert browser.post("/form/code", data={"csrf": csrf, "token": token}).status_code == 200
    entered = browser.post("/form/enter", data={"csrf": csrf, "token": token, "code": codes[-1]})
    assert entered.status_code == 303 and entered.headers["location"] == "/form/fill"
    return browser, token


def answers() -> dict[str, str]:
    """Complete answers as a browser posts them (dates ISO), without the facts."""
    form = get_form("csc")
    header = {h.key for h in form.header}
    dates = {f.key for f in form.fields() if f.kind is FieldKind.date}
    return {
        k: dt.datetime.strptime(v, "%d/%m/%Y").date().isoformat() if k in dates and v else v
        for k, v in good_answers("csc").items()
        if k not in header and k != form.judgements.status
    }


def row_counts(db) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(t)).all()
            for t in store.metadata.sorted_tables
            if t.name not in ("access_log",)
        }


def test_the_link_alone_changes_nothing_and_shows_no_fact(world) -> None:
    db, app, cases, _ = world
    token = issue_link(db, cases[0].audit_id, "audit", TODAY)
    before = row_counts(db)
    response = client(app).get(f"/form/{token}")
    assert response.status_code == 200
    assert row_counts(db) == before
    facts = [v for v in cases[0].facts.values() if len(v) > 3 and v not in "Example Council"]
    assert facts
    for fact in (cases[0].audit_id, cases[0].case_number, AUDITOR, *facts):
        assert fact not in response.text, fact
    headers = response.headers
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "'unsafe-inline'" not in headers["content-security-policy"].split("script-src")[-1]
    assert "<script>" not in response.text and "onclick" not in response.text


def test_a_code_opens_the_form_for_its_audit_only(world) -> None:
    db, app, cases, codes = world
    browser, token = opened(app, db, cases[0].audit_id, codes)
    cookie = next(c for c in browser.cookies.jar if c.name == webform.FORM_COOKIE)
    assert cookie.path == "/form" and cookie.has_nonstandard_attr("HttpOnly")
    page = browser.get("/form/fill")
    assert page.status_code == 200
    assert cases[0].case_number in page.text and cases[1].case_number not in page.text
    used = browser.post(
        "/form/enter",
        data={"csrf": hidden_value(page.text, "csrf"), "token": token, "code": codes[-1]},
    )
    assert used.status_code == 400 and "expired or was already used" in used.text  # once
    with db.engine.connect() as conn:
        logged = conn.execute(sa.select(store.access_log)).all()
    assert any(
        r.audit_id == cases[0].audit_id and "viewed the web form" in r.action for r in logged
    )
    stored_text = repr(row_counts(db)) + repr(logged)
    assert token not in stored_text and codes[-1] not in stored_text


def test_every_post_needs_this_browsers_security_token(world) -> None:
    db, app, cases, codes = world
    token = issue_link(db, cases[0].audit_id, "audit", TODAY)
    stranger = client(app)
    assert stranger.post("/form/code", data={"token": token}).status_code == 403
    assert codes == []
    browser, _ = opened(app, db, cases[0].audit_id, codes)
    refused = browser.post("/form/fill", data={"intent": "final", **answers()})
    assert refused.status_code == 403
    assert db.audit_records(cases[0].audit_id).row.return_id is None


def test_autosave_keeps_a_draft_and_raises_no_concern(world) -> None:
    db, app, cases, codes = world
    browser, _ = opened(app, db, cases[0].audit_id, codes)
    csrf = hidden_value(browser.get("/form/fill").text, "csrf")
    form = get_form("csc")
    concern = {form.judgements.concern: "Yes", form.concern_texts()[0].key: "No safety plan."}
    saved = browser.post("/form/save", data={"csrf": csrf, **answers(), **concern})
    assert saved.status_code == 200 and saved.json()["saved"] is True
    assert db.concerns(True) == []  # an autosave never raises the concern
    page = browser.get("/form/fill").text
    assert "No safety plan." in page  # the draft comes back
    plain = browser.post(
        "/form/fill", data={"csrf": csrf, "intent": "save", "overall.grade": "Good"}
    )
    assert plain.status_code == 303  # "Save draft" without JavaScript, then back to the form
    assert "Draft saved at" in browser.get("/form/fill").text
    assert db.concerns(True) == []
    told = browser.post(
        "/form/fill", data={"csrf": csrf, "intent": "concern", **answers(), **concern}
    )
    assert told.status_code == 303 and told.headers["location"] == "/form/fill"
    assert "The QA team has been told" in browser.get("/form/fill").text
    [raised] = db.concerns(True)
    assert raised.audit_id == cases[0].audit_id


def test_a_mistake_is_shown_beside_its_field_then_the_final_return_is_stored(world) -> None:
    db, app, cases, codes = world
    audit_id = cases[0].audit_id
    browser, token = opened(app, db, audit_id, codes)
    csrf = hidden_value(browser.get("/form/fill").text, "csrf")
    wrong = answers() | {"overall.grade": ""}
    refused = browser.post("/form/fill", data={"csrf": csrf, "intent": "final", **wrong})
    assert refused.status_code == 422
    assert 'href="#f-overall.grade"' in refused.text and 'aria-invalid="true"' in refused.text
    assert db.audit_records(audit_id).row.return_id is None
    done = browser.post("/form/fill", data={"csrf": csrf, "intent": "final", **answers()})
    assert done.status_code == 200, done.text
    row = db.audit_records(audit_id).row
    assert (row.state, row.method, row.sender) == ("returned", "web", AUDITOR)
    pdf = browser.get("/form/receipt")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert db.return_receipt(row.return_id) == pdf.content
    assert browser.get("/form/fill").status_code != 200  # the session ended with the return
    again = client(app).get(f"/form/{token}")  # the link no longer opens the form
    assert again.status_code == 410 and cases[0].case_number not in again.text
    assert client(app).get("/form/receipt").status_code == 410  # not from another browser


def test_expired_and_replaced_links_say_so_and_show_nothing(world) -> None:
    db, app, cases, _ = world
    old = issue_link(db, cases[0].audit_id, "audit", TODAY)
    new = issue_link(db, cases[0].audit_id, "audit", TODAY)  # a chase sends a new link
    replaced = client(app).get(f"/form/{old}")
    assert replaced.status_code == 410 and cases[0].case_number not in replaced.text
    assert client(app).get(f"/form/{new}").status_code == 200
    with clock.frozen(TODAY + dt.timedelta(days=400)):
        expired = client(app).get(f"/form/{new}")
    assert expired.status_code == 410 and "expired" in expired.text.lower()
    unknown = client(app).get("/form/" + "x" * 43)
    assert unknown.status_code == 404


def test_outside_this_computer_the_form_needs_https(world) -> None:
    db, app, cases, _ = world
    token = issue_link(db, cases[0].audit_id, "audit", TODAY)
    for browser in (
        client(app, "http://formtool.example.invalid"),  # a server on the network
        client(app, LOCAL, "192.0.2.7"),  # a browser elsewhere, on a server bound to loopback
    ):
        response = browser.get(f"/form/{token}")
        assert response.status_code == 403
        assert re.search(r"secure \(https\)", response.text)
    proxied = create_app(db, Settings(), trusted_proxy="127.0.0.1")
    plain = client(proxied).get(f"/form/{token}", headers={"x-forwarded-proto": "http"})
    assert plain.status_code == 403  # a proxy on this computer passing plain http
    secure = client(proxied).get(f"/form/{token}", headers={"x-forwarded-proto": "https"})
    assert secure.status_code == 200


def test_a_form_post_too_large_is_refused_before_it_is_read(world) -> None:
    db, app, cases, codes = world
    browser, _ = opened(app, db, cases[0].audit_id, codes)
    csrf = hidden_value(browser.get("/form/fill").text, "csrf")
    huge = {"csrf": csrf, "intent": "save", "kss1.seen_alone.evidence": "x" * 9_000_000}
    refused = browser.post("/form/fill", data=huge)
    assert refused.status_code == 413 and "too large" in refused.text
    one_long = {"csrf": csrf, "intent": "save", "overall.grade": "é" * 50_000}
    assert browser.post("/form/fill", data=one_long).status_code == 413
    assert db.web_draft(cases[0].audit_id, "audit") is None  # nothing saved from either


def test_a_refused_submission_still_raises_the_concern(world) -> None:
    db, app, cases, codes = world
    audit_id = cases[1].audit_id
    browser, _ = opened(app, db, audit_id, codes)
    csrf = hidden_value(browser.get("/form/fill").text, "csrf")
    form = get_form("csc")
    concern = {form.judgements.concern: "Yes", form.concern_texts()[0].key: "Bruising seen."}
    wrong = answers() | concern | {"overall.grade": ""}
    refused = browser.post("/form/fill", data={"csrf": csrf, "intent": "final", **wrong})
    assert refused.status_code == 422 and "The QA team has been told" in refused.text
    [raised] = db.concerns(True)
    assert raised.audit_id == audit_id and "Bruising" in raised.details
    assert db.audit_records(audit_id).row.return_id is None


def test_the_form_cookie_is_secure_over_https(world) -> None:
    db, app, cases, codes = world
    token = issue_link(db, cases[0].audit_id, "audit", TODAY)
    browser = client(app, "https://formtool.example.invalid", "192.0.2.7")
    csrf = hidden_value(browser.get(f"/form/{token}").text, "csrf")
    browser.post("/form/code", data={"csrf": csrf, "token": token})
    browser.post("/form/enter", data={"csrf": csrf, "token": token, "code": codes[-1]})
    cookie = next(c for c in browser.cookies.jar if c.name == webform.FORM_COOKIE)
    assert cookie.secure and cookie.path == "/form"


def test_an_amendment_reopens_the_form_with_the_reason_and_the_answers(world) -> None:
    from formtool.programme.workflow import check_audit

    db, app, cases, codes = world
    audit_id = cases[0].audit_id
    browser, _ = opened(app, db, audit_id, codes)
    csrf = hidden_value(browser.get("/form/fill").text, "csrf")
    given = answers()
    assert (
        browser.post("/form/fill", data={"csrf": csrf, "intent": "final", **given}).status_code
        == 200
    )
    check_audit(db, audit_id, "Say when the child was last seen alone.", TODAY)
    again, _ = opened(app, db, audit_id, codes)
    page = again.get("/form/fill").text
    assert "Say when the child was last seen alone." in page
    evidence = next(k for k in given if k.endswith(".evidence") and given[k])
    assert html.escape(given[evidence].split("\n")[0]) in page  # the return's, to amend
