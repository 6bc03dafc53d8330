"""Subject access on a copy of the demo's database (SQLite: the point is the zip's content):
one zip with everything held about a child with two audits, an amendment and a concern, its
index and data, logged and registered; a request for someone nothing is held about refused
and recorded; a member of staff's copy without the children's details; names from input
never paths; the search of a file for a person; and the admin's page."""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from demo_copy import demo_database

from formtool import store
from formtool.access.roles import Account
from formtool.cli_common import FormtoolGroup
from formtool.cli_subjects import COMMANDS
from formtool.programme.workflow import check_audit
from formtool.protect.subject_access import (
    child,
    file_holds,
    holds_values,
    staff,
    subject_access,
    zip_name,
)
from formtool.settings import Settings
from formtool.store import FILE_PACK, SUBJECT_ACCESS

from conftest import DEMO_DAY, Demo

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

USER = "cli:tester"
CASE, CSC, FB4 = "SYNCI0045", "CSC-SYNCI0045-202611", "FB4-SYNCI0045-202611"


def _group() -> FormtoolGroup:
    return FormtoolGroup(commands=list(COMMANDS))


@pytest.fixture(scope="module")
def copy(demo_run: Demo, tmp_path_factory: pytest.TempPathFactory) -> store.Store:
    """The demo's child SYNCI0045: a case-file audit with an immediate concern and a family
    feedback audit; here its case-file audit is also sent back for amendment, and viewed."""
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path_factory.mktemp("sar"))
    db = store.open_store(url)
    check_audit(db, CSC, "KSS 2 has no evidence", DEMO_DAY, USER)
    db.log_access("web:olive", "viewed audit", CSC, "192.0.2.7", "opened the audit page")
    return db


@pytest.fixture(scope="module")
def answered(copy: store.Store) -> tuple[Any, zipfile.ZipFile, dict[str, Any]]:
    access = subject_access(copy, child(CASE.lower()), USER, "SAR-7", "command line")
    archive = zipfile.ZipFile(io.BytesIO(access.data))
    return access, archive, json.loads(archive.read("data.json"))


def test_the_zip_holds_every_record_of_a_child_with_two_audits_an_amendment_and_a_concern(
    copy: store.Store, answered: tuple[Any, zipfile.ZipFile, dict[str, Any]]
) -> None:
    _, archive, data = answered
    tables = data["tables"]
    assert [a["audit_id"] for a in tables["audits"]] == [CSC, FB4]
    assert {a["state"] for a in tables["audits"]} == {"amendment requested", "returned"}
    assert json.loads(tables["audits"][0]["facts"])["given_names"] == "Riley"
    assert {e["event"] for e in tables["events"]} >= {"allocated", "returned", "concern raised"}
    assert any(
        e["event"] == "amendment requested" and "KSS 2" in e["detail"] for e in tables["events"]
    )
    (concern,) = tables["concerns"]
    assert concern["audit_id"] == CSC and concern["details"]
    assert {g["audit_id"] for g in tables["grades"]} == {CSC, FB4}
    assert tables["answers"] and {a["audit_id"] for a in tables["answers"]} == {CSC, FB4}
    assert tables["actions"] and tables["outbox"]
    viewed = [e for e in tables["access_log"] if e["action"] == "viewed audit"]
    assert viewed and viewed[-1]["user_name"] == "web:olive"
    # every return's original file, as received, under a safe name
    for row in tables["returns"]:
        stored = copy.return_content(row["id"])
        assert archive.read(row["file"]) == stored.content
        assert row["file"].endswith(Path(row["file_name"]).suffix)
    # the packs formtool wrote for the audits, where it tracks them
    packs = copy.stored_files(audit_ids=[CSC, FB4], kinds=[FILE_PACK])
    assert {Path(p.path).name for p in packs} <= {
        Path(m).name.split("-", 1)[1] for m in archive.namelist() if m.startswith("files/")
    }
    assert all("content" not in r and "checksum" not in r for r in tables["returns"])


def test_the_index_is_plain_accessible_html_with_a_contents_list(
    answered: tuple[Any, zipfile.ZipFile, dict[str, Any]],
) -> None:
    _, archive, data = answered
    page = archive.read("index.html").decode()
    assert page.startswith('<!DOCTYPE html>\n<html lang="en-GB">')
    assert f"<title>Records held about case {CASE}</title>" in page
    assert page.count("<h1>") == 1 and "request 1 (SAR-7)" in page
    for name in data["tables"]:
        assert f'<li><a href="#{name}">' in page and f'<h2 id="{name}">' in page
    assert page.count("<caption>") == len(data["tables"])
    assert '<th scope="col">' in page and "<td>" in page
    for row in data["tables"]["returns"]:
        assert f'<a href="{row["file"]}">' in page


def test_the_request_is_logged_and_registered(
    copy: store.Store, answered: tuple[Any, zipfile.ZipFile, dict[str, Any]]
) -> None:
    access, _, _ = answered
    (entry,) = copy.data_requests()
    assert (entry.id, entry.kind, entry.subject, entry.reference) == (
        1,
        "subject access",
        "child",
        "SAR-7",
    )
    assert CASE not in entry.detail and access.request == 1
    logged = [
        e for e in copy.access_entries(None, None, None, None) if e.action == "subject access"
    ]
    assert {e.audit_id for e in logged} == {CSC, FB4}
    assert all(e.detail.startswith("request 1") and e.user_name == USER for e in logged)


def test_names_from_input_never_become_paths(
    answered: tuple[Any, zipfile.ZipFile, dict[str, Any]],
) -> None:
    assert zip_name("../../etc/pass wd.docx", "3") == "3-pass-wd.docx"
    assert zip_name("reply.eml › ..\\..\\CSC-A1.xlsx", "4") == "4-reply-eml-CSC-A1.xlsx"
    assert zip_name("x.docx<script>", "5") == "5-x-docx-script"
    assert zip_name("CON", "6") == "6-CON" and zip_name("", "7") == "7-file"
    _, archive, _ = answered
    for name in archive.namelist():
        assert re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*(\.[a-z0-9]+)?", name), name


def test_a_request_about_nobody_is_refused_and_recorded(demo_run: Demo, tmp_path: Path) -> None:
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path)
    result = CliRunner().invoke(_group(), ["subject-access", "NOPE-1", "--db", url])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"Error: No records held for case NOPE-1 in sqlite:///{tmp_path}"
    )
    assert "recorded in the register as request 1" in result.output
    (entry,) = store.open_store(url).data_requests()
    assert (entry.kind, json.loads(entry.detail)) == ("subject access", {"held": 0})


def test_the_command_writes_a_tracked_zip(demo_run: Demo, tmp_path: Path) -> None:
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path)
    out = tmp_path / "sar"
    result = CliRunner().invoke(
        _group(), ["subject-access", FB4.split("-")[1], "--db", url, "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    told = json.loads(result.stdout)
    path = Path(told["path"])
    assert path == out / "subject-access-1.zip" and zipfile.is_zipfile(path)
    (row,) = store.open_store(url).stored_files(kinds=[SUBJECT_ACCESS])
    assert (Path(row.path), row.case_number) == (path, CASE)


def test_a_member_of_staff_gets_their_records_without_the_childrens_details(
    demo_run: Demo, tmp_path: Path
) -> None:
    db = store.open_store(demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path))
    about = next(r for r in db.audit_rows() if r.form_id == "supervision" and r.return_id)
    name = json.loads(about.facts)["staff_name"]  # a supervisor whose practice was audited
    worked = next(r for r in db.audit_rows() if r.auditor and r.subject_kind == "case")
    db.add_user("sup1", "officer", "(a password hash)", False)
    db.add_session("y" * 64, "sup1", "192.0.2.9", store.now())
    access = subject_access(db, staff(db, name, logins=["sup1"]), USER)
    data = json.loads(zipfile.ZipFile(io.BytesIO(access.data)).read("data.json"))
    tables = data["tables"]
    (account,) = tables["users"]
    assert account["name"] == "sup1" and "password_hash" not in account
    assert (
        tables["sessions"][0]["address"] == "192.0.2.9" and "id_hash" not in tables["sessions"][0]
    )
    mine = {a["audit_id"]: a for a in tables["audits"]}
    assert "facts" in mine[about.audit_id]  # their own practice: in full, with its return
    assert any(r["audit_id"] == about.audit_id and r.get("file") for r in tables["returns"])
    other = subject_access(db, staff(db, worked.auditor), USER)
    with zipfile.ZipFile(io.BytesIO(other.data)) as copy:
        data_json, index = copy.read("data.json").decode(), copy.read("index.html").decode()
    rows = json.loads(data_json)["tables"]
    text = data_json + index
    assert rows["audits"] and all("facts" not in a for a in rows["audits"])
    assert "returns" not in rows or all("file" not in r for r in rows["returns"])
    # Their case numbers and audit ids are the children's data: "audit N" / "case N" instead.
    theirs = [r for r in db.audit_rows() if r.auditor == worked.auditor]
    assert theirs and {a["audit_id"] for a in rows["audits"]} == {
        f"audit {n}" for n in range(1, len(theirs) + 1)
    }
    for audit in theirs:
        assert audit.case_number not in text and audit.audit_id not in text


def test_a_file_search_looks_inside_words_zips_emails_and_pdfs(
    copy: store.Store, tmp_path: Path
) -> None:
    split = b"<w:p><w:r><w:t>Ri</w:t></w:r><w:r><w:t>ley</w:t></w:r> <w:t>FICTIONAL</w:t></w:p>"
    assert holds_values(split, ["Riley Fictional", "Sky"]) == {"Riley Fictional"}
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", split)
        z.writestr("word/styles.xml", "Sky")  # no text anyone typed: not searched
    message = EmailMessage()
    message.set_content("Forms attached.")
    message.add_attachment(docx.getvalue(), "application", "zip", filename="CSC-X.docx")
    assert holds_values(bytes(message), ["riley fictional", "Sky"]) == {"riley fictional"}
    pdfs = [r for r in copy.stored_files(audit_ids=[CSC]) if r.path.endswith(".pdf")]
    assert pdfs, "the demo tracks the file pack of the child's audit"
    assert file_holds(Path(pdfs[0].path), ["Riley", "Fictional", "Nobody"]) == {
        "Riley",
        "Fictional",
    }


def test_the_admin_page_downloads_the_zip_and_erases_after_typing_the_case(
    demo_run: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from formtool.web import app as web_app
    from formtool.web import create_app, data_protection

    db = store.open_store(demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path))
    others = [  # the pages, not the files' search: that is tested above
        r.id for r in db.stored_files() if r.audit_id not in (CSC, FB4) or r.path.endswith(".pdf")
    ]
    db.mark_files_removed(others, "not needed here", USER)
    routes = web_app.routes
    monkeypatch.setattr(
        web_app,
        "routes",
        lambda: [*data_protection.routes(web_app._page, web_app._action), *routes()],
    )
    who = {"account": Account("ada", ("admin",))}  # an admin alone: the register only

    async def signed_in(request: Any) -> Account:
        request.state.who = who["account"]
        return who["account"]

    monkeypatch.setattr(web_app, "current_account", signed_in)
    client = TestClient(create_app(db, Settings(council="Example Council")), follow_redirects=False)
    page = client.get(data_protection.PATH)
    assert page.status_code == 200 and "needs a case role" in page.text
    assert "Download the zip" not in page.text and "Register" in page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    token = found[1]

    asked = {"csrf": token, "case_number": CASE}
    refused = client.post(f"{data_protection.PATH}/subject-access", data=asked)
    assert refused.status_code == 400 and "needs a case role" in refused.text
    who["account"] = Account("ada", ("officer", "admin"))
    assert "Download the zip" in client.get(data_protection.PATH).text
    got = client.post(f"{data_protection.PATH}/subject-access", data=asked)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert "index.html" in zipfile.ZipFile(io.BytesIO(got.content)).namelist()
    form = {"csrf": token, "case_number": CASE, "reason": "lawful", "authorised_by": "DPO"}
    preview = client.post(f"{data_protection.PATH}/erase", data=form)
    assert (
        preview.status_code == 200
        and CSC in preview.text
        and "Type the case number" in preview.text
    )
    wrong = client.post(
        f"{data_protection.PATH}/erase/confirm", data={**form, "confirm": "SYNCI0046"}
    )
    assert wrong.status_code == 400 and "did not match" in wrong.text
    assert db.case_audit_ids(CASE) == [CSC, FB4]
    done = client.post(f"{data_protection.PATH}/erase/confirm", data={**form, "confirm": CASE})
    assert done.status_code == 303 and db.case_audit_ids(CASE) == []
    assert "Erased 2 audit(s)" in client.get(data_protection.PATH).text
    who["account"] = Account("olive", ("officer",))
    assert client.get(data_protection.PATH).status_code == 403
