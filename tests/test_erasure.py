"""Correction and erasure on a copy of the demo's database, on both backends: a corrected
fact leaves no trace of the old value in any table or file formtool tracks (the original
returned bytes excepted), the packs and forms are made again, and a form still with its
auditor is accepted with the old value; an erased child leaves no trace of the case number,
the name or the date of birth, with the period's figures unchanged and the access log's
entries kept but redacted; an erased member of staff becomes a pseudonym everywhere but in
the original returned forms."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from demo_copy import demo_database, tables_holding

from formtool import clock, store
from formtool.cli_common import FormtoolGroup
from formtool.cli_subjects import COMMANDS
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers
from formtool.generate import render
from formtool.protect.correction import _pack_bytes, correct
from formtool.protect.erasure import erase_child, erase_staff, plan_erasure
from formtool.protect.subject_access import SubjectError, child, file_holds, staff
from formtool.protect.summary import period_figures, remove_files
from formtool.read.batch import import_return
from formtool.read.cases import Case
from formtool.settings import DEFAULT
from formtool.store import ERASED, FILE_PACK, FORM
from formtool.store.schema import stored_files

from conftest import DEMO_DAY, Demo

USER = "cli:tester"


SENT, RETURNED = "CSC-SYNCI0006-202611", "FB4-SYNCI0006-202611"  # corrected: one form is out
ERASED_AUDIT, ERASED_CASE = "EH-SYNEA0007-202611", "SYNEA0007"  # erased: it has a birth date


@dataclass(frozen=True)
class Copy:
    db: store.Store
    url: str
    staff: tuple[str, str, list[str]]  # an auditor with no audit still out: name, address, audits


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def copy(request, demo_run: Demo, tmp_path_factory: pytest.TempPathFactory) -> Copy:
    """One copy of the demo's database per backend for the three tests that change it, each
    about people of its own (child SYNCI0006 corrected, child SYNEA0007 erased, an auditor of
    neither erased), so they may run in any order."""
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    tmp = tmp_path_factory.mktemp(f"erasure-{request.param}")
    url = demo_database(demo_run.out / "formtool.db", request.param, tmp, server)
    db = store.open_store(url)
    name, mail, theirs = _idle_auditor(db, avoid={SENT, RETURNED, ERASED_AUDIT})
    kept = {SENT: FILE_PACK, RETURNED: FILE_PACK, ERASED_AUDIT: "", theirs[0]: FORM}
    _track_only(db, kept)
    return Copy(db, url, (name, mail, theirs))


def _track_only(db: store.Store, kept: dict[str, str]) -> None:
    """Keep tracking the copy's files of no audit (email drafts, a PMU pack) and those of the
    audits in `kept` (of the kind given: "" any) only: the other audits' files, theirs alone,
    are never searched, and PDFs' text is the slow part of a search (test_subject_access
    searches a pack's). demo_database made every tracked file a private copy."""
    f = stored_files.c
    with db.engine.begin() as conn:
        for row in conn.execute(sa.select(f.id, f.path, f.audit_id, f.kind)).all():
            kind = kept.get(row.audit_id or "")
            ours = row.audit_id is None or kind in ("", row.kind)
            if not ours or row.path.endswith(".pdf"):
                conn.execute(stored_files.delete().where(f.id == row.id))


def _pack(db: store.Store, audit_id: str, folder: Path) -> Path:
    """The audit's file pack (Word) formtool tracks: the demo's, or one made here."""
    for row in db.stored_files(audit_ids=[audit_id], kinds=[FILE_PACK]):
        if row.path.endswith(".docx"):
            return Path(row.path)
    data = _pack_bytes(db, audit_id, ".docx", DEFAULT)
    return _track(db, folder / f"{audit_id}-file.docx", data, FILE_PACK, audit_id)


def _refact(db: store.Store, audit_id: str, **facts: str) -> Case:
    """Give an audit other pre-filled facts, as if its case list had carried them when its
    form was made (facts and checksum): names no other child has, so a search for them means
    this child. (`record_audits` would refresh them, but refuses a keyed audit: reported.)"""
    row = db.require_audit(audit_id)
    form = db.forms_of([row], "test")[audit_id]
    key = db.identity_key() if row.checksum_scheme == "hmac" else None
    new = {**store.audit_facts(row), **facts}
    case = Case(
        audit_id,
        form.id,
        form.version,
        new,
        0,
        row.auditor_email,
        row.preparer_email,
        row.form_format,
        key,
    )
    a = store.audits.c
    with db.engine.begin() as conn:
        conn.execute(
            store.audits.update()
            .where(a.audit_id == audit_id)
            .values(facts=json.dumps(new, ensure_ascii=False), checksum=case.checksum)
        )
    return case


def _track(db: store.Store, path: Path, data: bytes, kind: str, audit_id: str | None) -> Path:
    path.write_bytes(data)
    case = db.require_audit(audit_id).case_number if audit_id else None
    db.record_file(path, kind, audit_id=audit_id, case_number=case, month="2026-11", user=USER)
    return path


def _records(db: store.Store, audit_id: str) -> store.AuditRecords:
    found = db.audit_records(audit_id)
    assert found is not None, audit_id
    return found


def _on_disk(db: store.Store) -> list[Path]:
    return [Path(r.path) for r in db.stored_files()]


# --- correction ----------------------------------------------------------------------------

OLD, NEW = "Quillfeather", "Quilfeather"


def test_a_correction_leaves_no_trace_and_a_form_still_out_is_accepted(
    copy: Copy, tmp_path: Path
) -> None:
    db, url, sent, returned = copy.db, copy.url, SENT, RETURNED
    issued = _refact(db, sent, family_name=OLD)
    _refact(db, returned, family_name=OLD)
    form = db.forms_of([db.require_audit(sent)], "test")[sent]
    with_auditor = render(form, issued, "docx")
    form_file = _track(db, tmp_path / f"{sent}.docx", with_auditor, FORM, sent)
    pack = _pack(db, returned, tmp_path)
    db.raise_concern(
        returned, "officer", f"The {OLD} family's home was cold", "duty team", user=USER
    )
    db.log_access("web:olive", "viewed audit", returned, "", f"searched for {OLD}")
    assert set(tables_holding(url, OLD)) == {"audits", "concerns", "access_log"}
    assert OLD in file_holds(form_file, [OLD])

    done = correct(db, "synci0006", "family_name", NEW, "misspelt on the case list", USER, "DP-1")

    assert done.audit_ids == [sent, returned] and done.rows["audits"] == 2
    assert tables_holding(url, OLD) == {}
    remade = {f.path for f in done.files if f.done == "made again"}
    assert remade >= {str(pack), str(form_file)}  # and the demo's own forms of the two
    assert [p for p in _on_disk(db) if file_holds(p, [OLD])] == []
    assert file_holds(pack, [OLD, NEW]) == {NEW} and file_holds(form_file, [OLD, NEW]) == {NEW}
    for audit_id in (sent, returned):
        assert json.loads(db.require_audit(audit_id).facts)["family_name"] == NEW
        (event,) = [e for e in _records(db, audit_id).events if e.event == "fact corrected"]
        assert event.detail == "family_name corrected: misspelt on the case list"
    assert [r.reference for r in db.data_requests() if r.kind == "correction"] == ["DP-1"]
    # the form the auditor has still says Quillfeather: it comes back, and is taken in
    answers = synthetic_answers(form, issued, random.Random(5), DEMO_DAY)
    with clock.frozen(DEMO_DAY):
        outcome = import_return(
            db,
            f"{sent}.docx",
            fill_return(with_auditor, "docx", form, answers),
            resolve=db.resolver(),
            user=USER,
        )
    assert outcome.status == "imported", [i.message for i in outcome.issues]
    assert json.loads(db.require_audit(sent).facts)["family_name"] == NEW
    assert set(tables_holding(url, OLD)) <= {"returns"}  # the original bytes, as evidence
    # A new value that contains the old one: the packs just made again are kept.
    again = correct(db, "synci0006", "family_name", f"{NEW}e", "a letter was missing", USER)
    assert str(pack) in {f.path for f in again.files if f.done == "made again"}
    assert pack.exists() and file_holds(pack, [f"{NEW}e"]) == {f"{NEW}e"}


def test_a_correction_refuses_what_it_cannot_change(demo_run: Demo, tmp_path: Path) -> None:
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path)
    runner, group = CliRunner(), FormtoolGroup(commands=list(COMMANDS))
    base = ["correct", "SYNCI0045", "--db", url, "--reason", "the list was wrong"]

    def run(*args: str) -> str:
        result = runner.invoke(group, [*base, *args])
        assert result.exit_code == 2, result.output
        return result.output

    assert "is part of each audit's id (CSC-SYNCI0045-202611, FB4-SYNCI0045-202611)" in run(
        "--field", "case_number", "--to", "X1"
    )
    assert "have no such fact" in run("--field", "dob", "--to", "01/02/2015")
    assert "formtool reassign" in run("--field", "auditor", "--to", "Someone")
    result = runner.invoke(
        group,
        [
            "correct",
            "SYNCI0045",
            "--db",
            url,
            "--field",
            "given_names",
            "--to",
            "Rylee",
            "--reason",
            "Riley was misspelt",
        ],
    )
    assert "quotes the old value" in result.output and result.exit_code == 2
    assert store.open_store(url).data_requests() == []


# --- erasure of a child --------------------------------------------------------------------

CHILD = {"family_name": "Zanzibarova", "given_names": "Quintessa", "dob": "29/02/2012"}


def test_erasing_a_child_leaves_no_trace_and_keeps_the_figures(copy: Copy, tmp_path: Path) -> None:
    db, url, audit_id, case = copy.db, copy.url, ERASED_AUDIT, ERASED_CASE
    _refact(db, audit_id, **CHILD)
    pack = _pack(db, audit_id, tmp_path)
    draft = _track(
        db, tmp_path / "drafts.eml", _email(audit_id, CHILD["given_names"]), "email draft", None
    )
    other = _track(
        db, tmp_path / "other.eml", _email("CSC-SYNCI0012-202611", "Kit"), "email draft", None
    )
    db.log_access("web:olive", "viewed audit", audit_id, "", f"looked at {CHILD['given_names']}")
    entries = len(db.access_entries(None, None, None, None))
    before = period_figures(db)
    plan = plan_erasure(db, child(case))
    assert plan.audit_ids == [audit_id] and {r.path for r, _ in plan.files} >= {
        str(pack),
        str(draft),
    }

    late = _track(
        db, tmp_path / "late.pdf", b"%PDF a pack", "file pack", audit_id
    )  # after the plan

    done = erase_child(
        db, plan, "the family asked, and it is lawful", "Data Protection Officer", USER, "ER-1"
    )

    assert done.left == {"stored_files": 1} and done.files_left == [str(late)]  # found, named
    remove_files(db, db.stored_files(audit_ids=[audit_id]), "the late pack", USER)
    db.clear_case(case, [audit_id], [])
    assert period_figures(db) == before
    identifying = [case, audit_id, *CHILD.values(), "2012-02-29"]
    for value in (case, *CHILD.values()):  # the case number is in the audit id too
        assert tables_holding(url, value) == {}, value
    assert [p for p in _on_disk(db) if file_holds(p, identifying, first=True)] == []
    assert not pack.exists() and not draft.exists() and other.exists()
    kept = db.access_entries(None, None, None, None)
    assert len(kept) > entries  # none removed: the erasure's own entries added
    viewed = [e for e in kept if e.action == "viewed audit"][-1]
    assert viewed.audit_id is None and viewed.detail == f"looked at {ERASED}"
    (entry,) = [r for r in db.data_requests() if (r.kind, r.subject) == ("erasure", "child")]
    assert (entry.reference, entry.authorised_by) == ("ER-1", "Data Protection Officer")
    with pytest.raises(SubjectError, match="No records held for case SYNEA0007"):
        plan_erasure(db, child(case))


def _email(audit_id: str, name: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Audits for November 2026"
    message.set_content(f"Please audit the attached ({name}).")
    message.add_attachment(
        f"{audit_id}: {name}".encode(), "application", "octet-stream", filename=f"{audit_id}.txt"
    )
    return bytes(message)


def test_erase_is_a_dry_run_until_yes(demo_run: Demo, tmp_path: Path) -> None:
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path)
    ids = ["CSC-SYNCI0045-202611", "FB4-SYNCI0045-202611"]
    with store.open_store(url).engine.begin() as conn:  # the command, not the files' search
        conn.execute(stored_files.delete())
    runner, group = CliRunner(), FormtoolGroup(commands=list(COMMANDS))
    dry = runner.invoke(group, ["erase", "SYNCI0045", "--db", url])  # no reason needed yet
    assert dry.exit_code == 0, dry.output
    assert "audit CSC-SYNCI0045-202611 (csc, 2026-11, returned)" in dry.output
    assert "Nothing was changed. Run again with --yes to erase." in dry.output
    unreasoned = runner.invoke(group, ["erase", "SYNCI0045", "--db", url, "--yes"])
    assert unreasoned.exit_code == 2 and "needs --reason and --authorised-by" in unreasoned.output
    assert store.open_store(url).case_audit_ids("SYNCI0045")
    args = ["erase", "SYNCI0045", "--db", url, "--reason", "lawful", "--authorised-by", "DPO"]
    done = runner.invoke(group, [*args, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["audits"] == ids
    assert store.open_store(url).case_audit_ids("SYNCI0045") == []
    listed = runner.invoke(group, ["data-requests", "--db", url, "--json"])
    assert [r["kind"] for r in json.loads(listed.output)] == ["erasure"]


# --- erasure of a member of staff ----------------------------------------------------------

LONG_AGO = dt.datetime(2000, 1, 1)


def _idle_auditor(db: store.Store, avoid: set[str]) -> tuple[str, str, list[str]]:
    """An auditor none of whose audits is still with them (nor in `avoid`): name, address,
    their audits."""
    mine: dict[str, list[Any]] = {}
    for row in db.audit_rows():
        mine.setdefault(row.auditor, []).append(row)
    still = {s.value for s in store.OUTSTANDING}
    for name, rows in sorted(mine.items()):
        ids = {r.audit_id for r in rows}
        if rows[0].auditor_email and not (ids & avoid or any(r.state in still for r in rows)):
            return name, rows[0].auditor_email, sorted(ids)
    raise AssertionError("the demo has no auditor without open audits")


def test_erasing_a_member_of_staff_leaves_a_pseudonym(copy: Copy) -> None:
    db, url, (name, mail, theirs) = copy.db, copy.url, copy.staff
    db.add_user("ctwo", "officer,admin", "(a password hash)", False)
    db.add_user("ada", "admin", "(a password hash)", False)
    db.add_session("x" * 64, "ctwo", "127.0.0.1", store.now())
    db.log_access("web:ctwo", "viewed audit", None, "", f"{name} looked")
    returned = [r for a in theirs for r in _records(db, a).history]
    assert returned and set(tables_holding(url, name)) >= {"audits"}

    busy = next(r for r in db.audit_rows() if r.state in {s.value for s in store.OUTSTANDING})
    refused = plan_erasure(db, staff(db, busy.auditor))
    with pytest.raises(SubjectError, match=f"still audits .*{busy.audit_id}"):
        erase_staff(db, refused, "left the council", "DPO", USER)

    plan = plan_erasure(db, staff(db, name, logins=["ctwo"]))
    assert plan.auditing == [] and mail in plan.identifiers
    done = erase_staff(db, plan, "left the council", "Data Protection Officer", USER)

    assert done.pseudonym == "Former staff member 1" and done.left == {}
    assert {f.kind for f in done.files if f.done == "made again"} == {FORM}
    for gone in (name, mail, "ctwo"):
        assert tables_holding(url, gone) == {}, gone
    for audit_id in theirs:  # the audits stay, with the pseudonym
        assert db.require_audit(audit_id).auditor == "Former staff member 1"
    after = [r for a in theirs for r in _records(db, a).history]
    assert [r.content_hash for r in after] == [r.content_hash for r in returned]  # evidence
    account = db.user("former-staff-1")
    assert account is not None and not account.active and account.password_hash == ""
    assert db.user("ctwo") is None
    assert [s.user_name for s in db.live_sessions(LONG_AGO, LONG_AGO)] == []
    viewed = [e for e in db.access_entries(None, None, None, None) if e.action == "viewed audit"]
    assert viewed[-1].user_name == ERASED and viewed[-1].detail == f"{ERASED} looked"
    assert [r.reason for r in db.data_requests() if r.subject == "staff"] == ["left the council"]
    assert [p for p in _on_disk(db) if file_holds(p, [name, mail], first=True)] == []
