"""Returns that must not silently replace what an officer accepted: returns after acceptance
wait for a reopen, returns from strangers wait for an officer, identities only formtool can
mint, blank forms, every file in a folder accounted for, and dates the computer may have
misread (issue 19)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_import import TODAY, good_answers

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, stamp_saved
from formtool.generate import regenerate, render, write_forms
from formtool.packs.figures import load_figures
from formtool.packs.pmu import pmu_document
from formtool.periods import period_for
from formtool.programme.moderation import moderate
from formtool.programme.status import status
from formtool.programme.workflow import (
    WorkflowError,
    accept_held,
    check_audit,
    close_audit,
    refuse_held,
    reopen_audit,
)
from formtool.read.batch import import_paths
from formtool.read.cases import facts_checksum

from conftest import make_cases

AUDITOR = "auditor.one@example.invalid"


@pytest.fixture
def made(tmp_path, db):
    """Two CSC audits whose auditor has an address, their forms made for the database."""
    form = get_form("csc")
    cases = [dataclasses.replace(c, auditor_email=AUDITOR) for c in make_cases(tmp_path, form)]
    forms = write_forms(form, cases, tmp_path / "forms", ("docx",), db=db)
    return db, tmp_path, forms


def filled(made, index: int, answers: dict[str, str], name: str) -> Path:
    _, root, forms = made
    path = root / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(fill_docx(forms[index].path.read_bytes(), answers))
    return path


def emailed(made, index: int, answers: dict[str, str], sender: str, name: str) -> Path:
    message = EmailMessage()
    message["From"] = sender
    message["Date"] = "Mon, 23 Nov 2026 09:15:00 +0000"
    message["Subject"] = "RE: audit"
    message.set_content("Attached.")
    data = filled(made, index, answers, name + ".docx").read_bytes()
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename="a.docx")
    path = made[1] / "mail" / f"{name}.eml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(message.as_bytes())
    return path


def events_of(db, audit_id: str) -> list[tuple[str, bool]]:
    e = store.events.c
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(e.event, e.superseded_by).where(e.audit_id == audit_id).order_by(e.id)
        )
        return [(row.event, row.superseded_by is not None) for row in rows]


def grade_of(db, audit_id: str) -> tuple[str, str]:
    g = store.grades.c
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.select(g.auditor_grade, g.moderated_grade).where(g.audit_id == audit_id)
        ).one()
    return row.auditor_grade, row.moderated_grade


# --- after acceptance ------------------------------------------------------------------------


def test_a_return_after_closing_is_history_until_the_audit_is_reopened(made):
    db, _, forms = made
    audit_id = forms[0].case.audit_id
    good = good_answers("csc")
    import_paths(db, [filled(made, 0, good, "first.docx")], TODAY)
    check_audit(db, audit_id)
    moderate(db, audit_id, "Good", "QA lead")
    close_audit(db, audit_id)
    worse = good | {"overall.grade": "Inadequate", "kss1.seen_alone": "No"}
    [late] = import_paths(db, [filled(made, 0, worse, "reused.docx")], TODAY)
    assert late.status == "history"
    [kept] = [i for i in late.issues if i.code.label == "after-close"]
    assert "already closed: this return is kept as history" in kept.message
    assert db.audit_state(audit_id) is store.AuditState.closed
    assert grade_of(db, audit_id) == ("Good", "Good")  # nothing replaced

    reopened = reopen_audit(db, audit_id, "The auditor re-sent a corrected copy")
    assert (reopened.previous_state, reopened.state) == ("closed", "returned")
    assert reopened.promoted == late_return_id(db, audit_id)
    assert grade_of(db, audit_id) == ("Inadequate", "")  # the moderation is set aside
    assert events_of(db, audit_id) == [
        ("allocated", False),
        ("returned", False),
        ("checked", True),
        ("moderated", True),
        ("closed", True),
        ("kept as history", False),
        ("reopened", False),
        ("updated", False),
    ]
    with pytest.raises(WorkflowError, match="only an accepted, moderated, signed-off or closed"):
        reopen_audit(db, audit_id, "again")
    # A PMU pack produced after the reopen says it is revised, and which audit changed.
    figures = load_figures(db, period_for(db.audit_row(audit_id).month, None, None), TODAY)
    document = pmu_document(figures)
    assert document.title.endswith("(revised)")
    [revisions] = [p for p in document.parts if p.heading == "Revisions"]
    [(_, reopened_at)] = figures.reopened
    assert revisions.bullets == [f"{audit_id}: reopened {reopened_at:%d/%m/%Y}"]
    assert pmu_document(figures, aggregate_only=True).parts[1].bullets == []


def late_return_id(db, audit_id: str) -> int:
    r = store.returns.c
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(r.id).where((r.audit_id == audit_id) & r.is_current)
            ).scalar_one()
        )


def test_reopen_from_the_command_line_needs_a_reason(made, db_url):
    db, _, forms = made
    audit_id = forms[1].case.audit_id
    import_paths(db, [filled(made, 1, good_answers("csc"), "r.docx")], TODAY)
    check_audit(db, audit_id)
    runner = CliRunner()
    refused = runner.invoke(cli, ["reopen", audit_id, "--db", db_url])
    assert refused.exit_code == 2 and "--reason" in refused.output
    done = runner.invoke(cli, ["reopen", audit_id, "--reason", "Wrong case", "--db", db_url])
    assert done.exit_code == 0, done.output
    assert done.output == f"{audit_id}: reopened (was checked); now returned.\n"


# --- from someone other than the auditor ----------------------------------------------------


def test_a_return_from_a_stranger_is_held_until_an_officer_accepts_it(made):
    db, _, forms = made
    audit_id = forms[0].case.audit_id
    mail = emailed(made, 0, good_answers("csc"), "Someone <someone@elsewhere.invalid>", "x")
    [held] = import_paths(db, [mail], TODAY)
    assert (held.status, [i.code.label for i in held.issues]) == ("held", ["held-sender"])
    assert "came from someone@elsewhere.invalid, not from the auditor" in held.issues[0].message
    assert db.audit_state(audit_id) is store.AuditState.allocated  # nothing moved
    [row] = db.held_returns()
    assert (row.audit_id, row.auditor_email) == (audit_id, AUDITOR)
    assert status(db, today=TODAY).held == 1
    outcome = accept_held(db, row.return_id)
    assert outcome == {"return_id": row.return_id, "audit_id": audit_id, "status": "imported"}
    assert db.audit_state(audit_id) is store.AuditState.returned
    assert db.held_returns() == []
    with pytest.raises(WorkflowError, match="is not held"):
        accept_held(db, row.return_id)


def test_a_refused_return_stays_as_history_and_allowed_senders_are_not_held(made):
    db, _, _forms = made
    stranger = emailed(made, 1, good_answers("csc"), "x@elsewhere.invalid", "stranger")
    [held] = import_paths(db, [stranger], TODAY)
    assert refuse_held(db, db.held_returns()[0].return_id, "Not from our staff") == held.audit_id
    assert db.held_returns() == [] and db.audit_state(held.audit_id) is store.AuditState.allocated
    assert events_of(db, held.audit_id)[-1] == ("refused", False)
    support = good_answers("csc") | {"kss1.seen_alone": "No"}
    forwarded = emailed(made, 1, support, "Business Support <bs@council.invalid>", "bs")
    [taken] = import_paths(db, [forwarded], TODAY, senders=("@council.invalid",))
    assert taken.status == "imported"
    own = emailed(made, 0, good_answers("csc"), f"Auditor <{AUDITOR.upper()}>", "own")
    assert import_paths(db, [own], TODAY)[0].status == "imported"


def test_held_lists_accepts_and_refuses_from_the_command_line(made, db_url):
    db, _, _forms = made
    import_paths(db, [emailed(made, 0, good_answers("csc"), "z@elsewhere.invalid", "z")], TODAY)
    runner = CliRunner()
    listed = runner.invoke(cli, ["held", "--db", db_url, "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.output)
    assert (entry["sender"], entry["auditor_email"]) == ("z@elsewhere.invalid", AUDITOR)
    half = runner.invoke(cli, ["held", "--refuse", str(entry["return_id"]), "--db", db_url])
    assert half.exit_code == 2 and "--reason" in half.output
    done = runner.invoke(
        cli, ["held", "--refuse", str(entry["return_id"]), "--reason", "spam", "--db", db_url]
    )
    assert done.output == f"Return {entry['return_id']} of audit {entry['audit_id']}: refused.\n"
    assert runner.invoke(cli, ["held", "--db", db_url]).output == "No returns are held.\n"


# --- identities only formtool can mint --------------------------------------------------------


def test_forms_made_for_a_database_carry_a_keyed_checksum_that_cannot_be_recomputed(made):
    db, root, forms = made
    case = forms[0].case
    plain = facts_checksum(case.audit_id, case.form_id, case.form_version, case.facts)
    keyed = facts_checksum(
        case.audit_id, case.form_id, case.form_version, case.facts, db.identity_key()
    )
    assert case.checksum == keyed != plain and len(keyed) == 20
    assert db.audit_row(case.audit_id).checksum_scheme == "hmac"
    # Somebody relabels a form with an unkeyed checksum they computed: refused.
    forged = dataclasses.replace(case, checksum_key=None)
    path = root / "forged.docx"
    path.write_bytes(fill_docx(render(get_form("csc"), forged, "docx"), good_answers("csc")))
    [outcome] = import_paths(db, [path], TODAY)
    assert [i.code.label for i in outcome.issues] == ["checksum-mismatch"]
    # Forms made again from the database are the same bytes, keyed checksum and all.
    again = regenerate(db, db.audit_row(case.audit_id).month, root / "again", ("docx",))
    first = {f.path.name: hashlib.sha256(f.path.read_bytes()).hexdigest() for f in forms}
    assert {f.path.name: hashlib.sha256(f.path.read_bytes()).hexdigest() for f in again} == first


def test_audits_issued_before_keying_stay_readable_and_are_counted(tmp_path, db):
    form = get_form("csc")
    [case] = make_cases(tmp_path, form, 1)
    from formtool.generate import record_audits

    record_audits(db, form, [case])  # as before this release: the unkeyed checksum
    assert db.audit_row(case.audit_id).checksum_scheme == "sha256"
    assert status(db, today=TODAY).unkeyed == 1
    path = tmp_path / "old.docx"
    path.write_bytes(fill_docx(render(form, case, "docx"), good_answers("csc")))
    assert import_paths(db, [path], TODAY)[0].status == "imported"


# --- blank forms, unread files, doubtful dates ------------------------------------------------


def test_a_blank_form_sent_back_is_refused_and_the_audit_stays(made):
    db, root, forms = made
    blank = root / "blank.docx"
    blank.write_bytes(forms[0].path.read_bytes())
    [outcome] = import_paths(db, [blank], TODAY)
    assert (outcome.status, [i.code.label for i in outcome.issues]) == (
        "rejected",
        ["returned-blank"],
    )
    assert f"audit {forms[0].case.audit_id} came back blank" in outcome.issues[0].message
    assert db.audit_state(forms[0].case.audit_id) is store.AuditState.allocated


def test_a_folder_import_lists_every_file_it_did_not_read(made, db_url):
    _, root, forms = made
    folder = root / "folder"
    folder.mkdir()
    audit_id = forms[0].case.audit_id
    for name in ("form.xlsb", "photo.jpg", f"{audit_id}.pdf", "notes.txt"):
        (folder / name).write_bytes(b"not a form")
    for name in ("~$form.docx", ".DS_Store", "Thumbs.db"):  # lock files and folder metadata
        (folder / name).write_bytes(b"")
    result = CliRunner().invoke(cli, ["import", str(folder), "--db", db_url, "--json"])
    assert result.exit_code == 1
    outcomes = json.loads(result.output)
    assert sorted(Path(o["file"]).name for o in outcomes) == sorted(
        ["form.xlsb", "photo.jpg", f"{audit_id}.pdf", "notes.txt"]
    )
    assert {o["status"] for o in outcomes} == {"rejected"}
    named = next(o for o in outcomes if o["file"].endswith(".pdf"))
    assert named["audit_id"] == audit_id  # the name says whom to chase


def test_an_action_date_before_the_form_existed_is_doubted_with_both_readings(made):
    db, _, _forms = made
    answers = good_answers("csc") | {"next_steps.actions.1.date_required": "11/05/2026"}
    [outcome] = import_paths(db, [filled(made, 0, answers, "us.docx")], TODAY)
    assert outcome.status == "imported"
    [doubt] = [i for i in outcome.issues if i.code.label == "date-doubt"]
    assert doubt.field == "next_steps.actions.1.due_date"
    assert doubt.message.endswith(
        "date 11/05/2026 is before this audit's form was made (22/11/2026); read the other "
        "way round it is 05/11/2026. Check the date with the auditor: day and month may have "
        "been swapped by the computer's date settings."
    )


def test_wording_of_action_and_older_copy_warnings(made):
    db, root, _ = made
    answers = good_answers("csc") | {"next_steps.actions.1.responsible_person": ""}
    [outcome] = import_paths(db, [filled(made, 0, answers, "a.docx")], TODAY)  # no saved date
    [gap] = [i for i in outcome.issues if i.code.label == "incomplete-action"]
    assert "action row lacks a responsible person. Every action needs" in gap.message
    older = root / "older.docx"
    older.write_bytes(
        stamp_saved(
            filled(made, 0, good_answers("csc"), "o.docx").read_bytes(),
            dt.datetime(2026, 11, 20, 10, 0),
        )
    )
    [late] = import_paths(db, [older], TODAY)
    [note] = [i for i in late.issues if i.code.label == "older-return"]
    assert note.message.startswith(
        f"[{older}] was saved 20/11/2026 10:00, before the current return (imported "
    )


# --- held and kept returns, seen again -------------------------------------------------------


def test_a_strangers_return_after_acceptance_is_held_not_promoted_by_a_reopen(made):
    db, _, forms = made
    audit_id = forms[0].case.audit_id
    import_paths(db, [filled(made, 0, good_answers("csc"), "first.docx")], TODAY)
    check_audit(db, audit_id)
    worse = good_answers("csc") | {"overall.grade": "Inadequate"}
    [held] = import_paths(db, [emailed(made, 0, worse, "x@elsewhere.invalid", "x")], TODAY)
    assert held.status == "held"
    assert [
        i.code.label for i in held.issues if i.code.label in ("after-close", "held-sender")
    ] == ["held-sender"]
    reopened = reopen_audit(db, audit_id, "checking")
    assert reopened.promoted is None and grade_of(db, audit_id)[0] == "Good"
    assert [r.audit_id for r in db.held_returns()] == [audit_id]  # still the officer's call


def test_the_same_file_again_says_what_became_of_it(made):
    db, _, _ = made
    answers = good_answers("csc")
    stranger = emailed(made, 0, answers, "x@elsewhere.invalid", "first")
    [held] = import_paths(db, [stranger], TODAY)
    own = emailed(made, 0, answers, f"Auditor <{AUDITOR}>", "own")  # the same attachment
    [taken] = import_paths(db, [own], TODAY)
    assert (held.status, taken.status) == ("held", "imported")
    assert db.held_returns() == []
    other = emailed(made, 1, answers, "y@elsewhere.invalid", "second")
    [held] = import_paths(db, [other], TODAY)
    refuse_held(db, db.held_returns()[0].return_id, "Not from our staff")
    [again] = import_paths(db, [other], TODAY)
    assert (again.status, [i.code.label for i in again.issues]) == ("rejected", ["refused-before"])
    assert "is the same file an officer refused for audit" in again.issues[0].message


def test_a_managers_emailed_sign_off_to_an_accepted_audit_can_be_accepted(made):
    db, _, forms = made
    audit_id = forms[0].case.audit_id
    unsigned = good_answers("csc") | {"oversight.actions.1.manager_sign_off": ""}
    import_paths(db, [emailed(made, 0, unsigned, AUDITOR, "unsigned")], TODAY)
    check_audit(db, audit_id)
    signed = emailed(made, 0, good_answers("csc"), "manager@council.invalid", "signed")
    [held] = import_paths(db, [signed], TODAY)
    assert held.status == "held"
    [row] = db.held_returns()
    assert accept_held(db, row.return_id)["status"] == "updated"
    assert db.audit_state(audit_id) is store.AuditState.checked  # the sign-off, nothing else


def test_accepting_a_return_kept_for_a_reopen_says_so(made):
    db, _, forms = made
    audit_id = forms[0].case.audit_id
    import_paths(db, [filled(made, 0, good_answers("csc"), "a.docx")], TODAY)
    check_audit(db, audit_id)
    worse = good_answers("csc") | {"overall.grade": "Inadequate"}
    import_paths(db, [filled(made, 0, worse, "b.docx")], TODAY)
    kept = late_return_id(db, audit_id) + 1
    with pytest.raises(WorkflowError, match="becomes current if the audit is reopened"):
        accept_held(db, kept)


def test_a_sender_without_an_address_is_not_taken_for_a_stranger(made):
    db, _, _ = made
    mail = emailed(made, 0, good_answers("csc"), "Auditor One (synthetic)", "name-only")
    assert import_paths(db, [mail], TODAY)[0].status == "imported"


def test_generating_again_keeps_an_older_audits_unkeyed_checksum(tmp_path, db):
    from formtool.generate import record_audits

    form = get_form("csc")
    [case] = make_cases(tmp_path, form, 1)
    record_audits(db, form, [case])  # issued before keying
    again = write_forms(form, [case], tmp_path / "again", ("docx",), db=db)
    assert db.audit_row(case.audit_id).checksum_scheme == "sha256"
    assert "regenerated" not in [e for e, _ in events_of(db, case.audit_id)]
    path = tmp_path / "r.docx"
    path.write_bytes(fill_docx(render(form, case, "docx"), good_answers("csc")))  # the old form
    assert import_paths(db, [path], TODAY)[0].status == "imported"
    assert again[0].case.checksum == case.checksum


def test_wrong_arguments_get_one_line_and_change_nothing(made, db_url, tmp_path, monkeypatch):
    db, _, forms = made
    runner = CliRunner()
    reason = 'Error: Say why the {} (--reason "...").\n'
    cases = [
        (
            ["reopen", "NO-SUCH-1", "--reason", "x"],
            "Error: Audit NO-SUCH-1 is not in the database.\n",
        ),
        (["reopen", forms[0].case.audit_id, "--reason", "  "], reason.format("audit is reopened")),
        (["held", "--accept", "999"], "Error: There is no return 999.\n"),
        (["held", "--refuse", "5", "--reason", " "], reason.format("return is refused")),
    ]
    for args, said in cases:
        result = runner.invoke(cli, [*args, "--db", db_url])
        assert (result.exit_code, result.output) == (2, said), args
    assert db.audit_state(forms[0].case.audit_id) is store.AuditState.allocated
    settings = tmp_path / "formtool.toml"
    settings.write_text('allowed_senders = "x@example.invalid"\n', encoding="utf-8")
    monkeypatch.setenv("FORMTOOL_CONFIG", str(settings))
    result = runner.invoke(cli, ["import", str(tmp_path), "--db", db_url])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: [{settings} · allowed_senders] must be a list of addresses, e.g. "
        '["a@x.gov.uk", "@x.gov.uk"].\n'
    )
