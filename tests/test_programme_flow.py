"""The programme around an audit, end to end through the CLI (issue 20): the policy in force
is a recorded version; an amendment's due date becomes the audit's while it is with the
auditor; an immediate concern in a return is emailed once, at once, to the policy's contacts,
and shouts until it has gone; an exempted audit is done with."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_import import good_answers
from test_mail import smtp_server

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx
from formtool.generate import write_forms
from formtool.programme.rules import active_policy

from conftest import DUTY_MANAGER, make_cases, use_real_contacts

AUDITOR = "auditor.one@example.invalid"
TODAY = "2026-11-22"


@pytest.fixture
def world(tmp_path, db_url, monkeypatch):
    """Two CSC audits with their Word forms, a settings file (no SMTP yet) and a CLI."""
    db = store.open_store(db_url)
    form = get_form("csc")
    cases = [dataclasses.replace(c, auditor_email=AUDITOR) for c in make_cases(tmp_path, form)]
    forms = write_forms(form, cases, tmp_path / "forms", ("docx",), db=db)
    config = tmp_path / "formtool.toml"
    config.write_text("", encoding="utf-8")
    monkeypatch.setenv("FORMTOOL_CONFIG", str(config))
    monkeypatch.setenv("FORMTOOL_DB", db_url)
    monkeypatch.setenv("FORMTOOL_TODAY", TODAY)
    return db, tmp_path, forms, config


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def a_return(world, index: int, name: str, **answers: str) -> Path:
    _db, root, forms, _config = world
    path = root / "in" / name
    path.parent.mkdir(exist_ok=True)
    values = good_answers("csc") | answers
    path.write_bytes(fill_docx(forms[index].path.read_bytes(), values))
    return path


CONCERN = {
    "concern.immediate": "Yes",
    "concern.details": "Synthetic: the child said they are afraid to go home.",
    "concern.told": "Team manager (synthetic), by phone, 20/11/2026",
}


def test_a_concern_in_a_return_is_emailed_once_at_once_to_the_policy_contacts(world):
    db, _root, forms, config = world
    audit = db.audit_row(forms[0].case.audit_id)
    use_real_contacts(db)
    contacts = active_policy(db).concerns.contacts(audit.team)
    assert contacts == (DUTY_MANAGER,)
    with smtp_server() as (mail, port):
        config.write_text(f'smtp = "127.0.0.1:{port}"\nmail_from = "qa@example.invalid"\n')
        code, out, _err = run("import", str(a_return(world, 0, "draft.docx", **CONCERN)))
        assert code == 0, out
        assert f"({audit.audit_id}) emailed to {', '.join(contacts)}" in out
        assert len(mail.envelopes) == 1
        assert sorted(mail.envelopes[0].rcpt_tos) == sorted(contacts)
        body = mail.envelopes[0].content.decode()
        assert audit.audit_id in body and "afraid" not in body  # never the free text
        # The Final return still says Yes: the same concern, no second email.
        final = a_return(world, 0, "final.docx", **CONCERN, **{"completion.status": "Final"})
        code, out, _err = run("import", str(final))
        assert code == 0 and len(mail.envelopes) == 1 and "emailed" not in out
    listed = json.loads(run("concerns", "--json")[1])
    assert [(c["audit_id"], c["emailed"], c["open"]) for c in listed] == [
        (audit.audit_id, True, True)
    ]
    events = db.events_named([audit.audit_id], ["concern raised", "concern emailed"])
    assert [name for _at, name in events[audit.audit_id]] == ["concern raised", "concern emailed"]


def test_without_smtp_every_command_shouts_until_the_email_goes(world):
    db, _root, _forms, config = world
    code, out, err = run("import", str(a_return(world, 1, "yes.docx", **CONCERN)))
    assert code == 0 and "URGENT: 1 immediate concern" in err
    code, out, err = run("status", "--month", "2026-11")
    assert "URGENT" in err and "no action recorded" in out
    with smtp_server() as (mail, port):  # the shipped contacts are placeholders: none goes
        config.write_text(f'smtp = "127.0.0.1:{port}"\n')
        code, out, err = run("concerns", "--send")
        assert "0 concern email(s) sent" in out and "names no real contact" in out
        assert mail.envelopes == [] and "URGENT" in err
    use_real_contacts(db)
    with smtp_server() as (mail, port):
        config.write_text(f'smtp = "127.0.0.1:{port}"\n')
        code, out, err = run("concerns", "--send")
        assert code == 0 and "1 concern email(s) sent" in out and len(mail.envelopes) == 1
    code, out, err = run("status", "--month", "2026-11")
    assert "URGENT" not in err
    [concern] = db.concerns()
    code, out, _ = run("concerns", "--action", str(concern.id), "--taken", "Manager visited.")
    assert code == 0 and db.concerns(open_only=True) == []
    code, _out, err = run("concerns", "--action", str(concern.id), "--taken", "Again.")
    assert code == 2 and "already actioned" in err


def test_a_form_without_the_answer_yes_raises_nothing(world):
    db, *_ = world
    code, _out, err = run(
        "import", str(a_return(world, 0, "no.docx", **{"concern.immediate": "No"}))
    )
    assert code == 0 and db.concerns() == [] and "URGENT" not in err


def test_an_officer_raises_a_concern_without_a_return(world):
    db, _root, forms, _config = world
    audit_id = forms[1].case.audit_id
    code, out, _ = run("concerns", "--raise", audit_id, "--details", "Synthetic worry.")
    assert code == 0 and f"raised on {audit_id}" in out
    [concern] = db.concerns(open_only=True)
    assert concern.source == "officer" and concern.details == "Synthetic worry."
    code, _out, err = run("concerns", "--raise", audit_id, "--details", " ")
    assert code == 2 and "Say what the concern is" in err


def test_an_amendment_due_date_becomes_the_audits_due_date_while_it_is_back(world):
    db, _root, forms, _config = world
    audit_id = forms[0].case.audit_id
    final = a_return(world, 0, "final.docx", **{"completion.status": "Final"})
    assert run("import", str(final))[0] == 0
    code, _out, _ = run("check", audit_id, "--amend", "Evidence for KSS 3 missing.")
    assert code == 0
    row = db.audit_row(audit_id)  # 3 working days after 22/11/2026, before the month ends
    assert (row.due_date, row.original_due_date) == (dt.date(2026, 11, 25), dt.date(2026, 11, 30))
    # On the day after the amendment date, status and chase call it overdue by one day.
    day = (row.due_date + dt.timedelta(days=1)).isoformat()
    report = json.loads(run("--today", day, "status", "--json")[1])
    [outstanding] = [o for o in report["outstanding"] if o["audit_id"] == audit_id]
    assert outstanding["due"] == row.due_date.isoformat() and outstanding["days_overdue"] == 1
    assert outstanding["original_due"] == "2026-11-30"  # kept beside it (PMU timeliness)
    assert row.month == "2026-11"  # the audit month does not move with its due date


def test_an_exempted_audit_is_not_outstanding_and_a_late_return_stays_history(world):
    db, _root, forms, _config = world
    audit_id = forms[1].case.audit_id
    auditor = db.audit_row(audit_id).auditor

    def counted() -> int:  # the auditor's audits this financial year, as allocation reads them
        done = db.preview_allocation(
            lambda r: r.allocation_history("2026-11", "2026-11", "2026-04", "2027-03")[1]
        )
        return int(done.get(auditor, 0))

    before = counted()
    code, _out, err = run("exempt", audit_id, "--reason", "Long-term sick leave")
    assert code == 2 and "--agreed-by" in err
    code, out, _ = run(
        "exempt", audit_id, "--reason", "Long-term sick leave", "--agreed-by", "AD (synthetic)"
    )
    assert code == 0 and "exempted" in out
    assert counted() == before - 1  # it counts against nobody's quota
    report = json.loads(run("status", "--json")[1])
    assert audit_id not in [o["audit_id"] for o in report["outstanding"]]
    code, out, _ = run("import", str(a_return(world, 1, "late.docx")))
    assert db.audit_row(audit_id).state == "exempted" and "history" in out


def test_programme_use_records_versions_and_a_mismatched_settings_file_stops(world, tmp_path):
    db, _root, _forms, config = world
    code, out, _ = run("programme", "use", "rochdale")
    assert code == 0 and "'rochdale' v1 (a new version)" in out
    assert run("programme", "use", "rochdale")[1].count("unchanged") == 1
    assert active_policy(db).name == "rochdale" and active_policy(db).version == 1
    config.write_text('programme = "hull"\n')
    code, _out, err = run("status")
    assert code == 2 and "runs 'rochdale' (version 1)" in err and "programme use hull" in err
    assert run("programme", "use", "hull")[0] == 0
    assert run("status")[0] == 0
    versions = [(p.name, p.version, p.active) for p in db.policy_versions()]
    assert versions == [("hull", 1, True), ("rochdale", 1, False)]


def test_a_reassigned_audit_goes_out_as_a_new_copy_and_the_old_copy_is_held(world):
    db, root, forms, _config = world
    audit_id = forms[0].case.audit_id
    before = db.audit_row(audit_id)
    old_copy = forms[0].path.read_bytes()  # the reassignment writes the new copy over it
    assert run("send", "--forms", str(root / "forms"), "--out", str(root / "mail"))[0] == 0
    code, out, _ = run(
        "reassign",
        audit_id,
        "--to",
        "Auditor Z (synthetic)",
        "--email",
        "auditor.z@example.invalid",
        "--team",
        "Team Z (synthetic)",
        "--reason",
        "Long-term leave",
        "--out",
        str(root / "forms"),
    )
    assert code == 0 and "copy 2" in out
    row = db.audit_row(audit_id)
    assert (row.auditor, row.copy, row.state) == ("Auditor Z (synthetic)", 2, "allocated")
    assert row.due_date == before.due_date and row.checksum != before.checksum
    # The new copy goes out once, to the new auditor only.
    code, out, _ = run("send", "--forms", str(root / "forms"), "--out", str(root / "mail2"))
    drafts = list((root / "mail2").glob("*.eml"))
    assert code == 0 and len(drafts) == 1
    assert "auditor.z@example.invalid" in drafts[0].read_text(encoding="utf-8")
    assert run("send", "--forms", str(root / "forms"), "--out", str(root / "mail3"))[0] == 0
    assert not list((root / "mail3").glob("*.eml"))
    # The old auditor's copy comes back: held for an officer, never thrown away.
    old = root / "in" / "old-copy.docx"
    old.parent.mkdir(exist_ok=True)
    old.write_bytes(fill_docx(old_copy, good_answers("csc")))
    code, out, _ = run("import", "--json", str(old))
    [outcome] = json.loads(out)
    assert outcome["status"] == "held"
    assert [i["code"] for i in outcome["issues"]][-1:] == ["reassigned"]
    [held] = json.loads(run("held", "--json")[1])
    assert held["why"] == "reassigned"
    assert run("held", "--accept", str(held["return_id"]))[0] == 0
    assert db.audit_row(audit_id).state == "returned"  # the old copy's work counts
    again = ("reassign", audit_id, "--to", "A", "--email", "a@example.invalid", "--reason", "x")
    code, _out, err = run(*again, "--team", "Team Z (synthetic)")
    assert code == 2 and "only an audit its auditor has not yet returned" in err


def test_a_reassignment_keeps_the_programmes_rules_and_writes_nothing_half_way(world):
    db, root, forms, _config = world
    audit = db.audit_row(forms[1].case.audit_id)
    base = ("reassign", audit.audit_id, "--email", "b@example.invalid", "--reason", "Leave")
    code, _out, err = run(*base, "--to", "B (synthetic)", "--team", audit.team)
    assert code == 2 and "never audit their own team" in err
    busy = db.audit_row(forms[0].case.audit_id).auditor  # the cap: 10 a financial year
    db.record_audits(
        [get_form("csc")],
        [
            dataclasses.replace(db_record(db, forms[0].case.audit_id), audit_id=f"CSC-Q{i}-202611")
            for i in range(9)
        ],
        "test",
    )
    code, _out, err = run(*base, "--to", busy, "--team", "Team Q (synthetic)")
    assert code == 2 and "already has 10 audits" in err
    blocked = root / "not-a-folder"
    blocked.write_text("a file where the forms folder should be")
    code, _out, err = run(*base, "--to", "C (synthetic)", "--team", "T", "--out", str(blocked))
    assert code == 2
    assert db.audit_row(audit.audit_id).auditor == audit.auditor  # nothing recorded
    assert db.audit_row(audit.audit_id).copy == 1


def db_record(db, audit_id: str) -> store.AuditRecord:
    """The stored audit as a record to insert again under another id (a busier auditor)."""
    row = db.audit_row(audit_id)
    return store.AuditRecord(
        row.audit_id, row.form_id, row.form_version, row.case_number, row.auditor,
        row.auditor_email, row.team, row.worker, row.manager, row.due_date, row.checksum,
        json.loads(row.facts),
    )  # fmt: skip


def test_a_challenged_grade_is_decided_by_the_senior_moderator_and_stands(world):
    db, _root, forms, _config = world
    audit_id = forms[1].case.audit_id
    final = a_return(world, 1, "final.docx", **{"completion.status": "Final"})
    assert run("import", str(final))[0] == 0
    db.add_user("senior.mod", "officer,moderator", "x", False)
    db.add_user("plain.officer", "officer", "x", False)
    args = ("challenge", audit_id, "--by", "Practitioner P (synthetic)", "--reason", "Too harsh")
    code, _out, err = run(*args)
    assert code == 2 and "names no senior moderator" in err
    code, _out, err = run(*args, "--to", "plain.officer")
    assert code == 2 and "does not have the moderator role" in err
    assert run(*args, "--to", "senior.mod")[0] == 0
    code, _out, err = run(*args, "--to", "senior.mod")
    assert code == 2 and "already challenged" in err
    decide = ("challenge", audit_id, "--decide", "Good", "--reason", "Evidence of progress")
    code, _out, err = run(*decide, "--decided-by", "plain.officer")
    assert code == 2 and "Only senior.mod" in err
    code, out, _ = run(*decide, "--decided-by", "senior.mod")
    assert code == 0 and "decided Good; it stands" in out
    assert db.audit_rows(audit_ids=[audit_id])[0].moderated_grade == "Good"
    code, _out, err = run("moderate", audit_id, "--grade", "Inadequate", "--by", "Someone")
    assert code == 2 and "that decision stands" in err
    code, _out, err = run(*args, "--to", "senior.mod")
    assert code == 2 and "that decision stands" in err


def test_naming_a_chosen_case_refuses_an_audit_another_run_recorded_meanwhile(world):
    db, _root, forms, _config = world
    taken = forms[0].case.audit_id  # as if another officer named the same case a moment ago
    record = store.AuditRecord(
        taken, "csc", get_form("csc").version, "SYNCS0001", "Auditor A", "", "", "", "",
        dt.date(2026, 11, 30), "0" * 20, {},
    )  # fmt: skip
    with pytest.raises(store.StateError, match="recorded by another run"):
        db.name_choices("2026-11", [(1, record)], [], "")
    assert db.audit_row(taken).auditor != "Auditor A"  # nothing was written


def test_follow_up_dates_run_from_the_programmes_date_not_the_machines(world):
    """Rehearsing a past month (--today): the review falls due 4 weeks after the day the
    programme received the inadequate return, whatever the computer's clock says."""
    db, _root, forms, _config = world
    audit_id = forms[0].case.audit_id
    final = a_return(
        world, 0, "final.docx", **{"completion.status": "Final", "overall.grade": "Inadequate"}
    )
    assert run("import", str(final))[0] == 0  # FORMTOOL_TODAY is 2026-11-22
    [row] = db.audit_rows(audit_ids=[audit_id])
    assert row.received_on == dt.date(2026, 11, 22)
    code, _out, err = run(
        "--today", "2026-12-01", "followup", audit_id, "--review-held", "2026-11-30"
    )
    assert code == 0, err
    shown = json.loads(run("--today", "2026-12-01", "followup", audit_id, "--json")[1])
    assert "2026-12-20" in json.dumps(shown)  # review by: 22/11 + 4 weeks
    logged = json.loads(run("access-log", "--audit", audit_id, "--json")[1])
    assert "viewed an audit's follow-up" in [e["action"] for e in logged]


BAD_INPUT = [
    (["concerns", "--raise", "NO-SUCH-1", "--details", "x"], "is not in the database"),
    (["concerns", "--action", "999", "--taken", "x"], "There is no concern 999"),
    (["concerns", "--taken", "x"], "Give --details with --raise AUDIT"),
    (["challenge", "NO-SUCH-1", "--by", "P", "--reason", "r", "--to", "m"], "not in the database"),
    (["exempt", "NO-SUCH-1", "--reason", "r", "--agreed-by", "AD"], "not in the database"),
    (["followup", "NO-SUCH-1", "--review-held", "2026-11-01"], "not in the database"),
    (
        [
            "reassign",
            "NO-SUCH-1",
            "--to",
            "A",
            "--email",
            "a@x.test",
            "--team",
            "T",
            "--reason",
            "r",
        ],
        "not in the database",
    ),
    (
        ["reassign", "NO-SUCH-1", "--to", "A", "--email", "nope", "--team", "T", "--reason", "r"],
        "is not an email address",
    ),
    (["programme", "use", "no-such-council"], "no policy has this name"),
    (["programme", "use", "{bad}/ours.yaml"], "ours.yaml"),
    (["calendar", "--year", "2026", "--programme", "no-such-council"], "no policy has this name"),
]


@pytest.mark.parametrize(("args", "said"), BAD_INPUT, ids=[" ".join(a[:2]) for a, _ in BAD_INPUT])
def test_wrong_arguments_get_one_line_and_change_nothing(args, said, tmp_path, monkeypatch):
    db_path = tmp_path / "formtool.db"
    store.open_store(str(db_path))
    monkeypatch.setenv("FORMTOOL_DB", str(db_path))
    bad = tmp_path / "ours.yaml"
    bad.write_bytes(b"name: ours\nsamples: [\x00 not yaml")
    before = db_path.read_bytes()
    code, out, err = run(*[a.replace("{bad}", str(tmp_path)) for a in args])
    assert code == 2 and out == "" and "Traceback" not in err
    [line] = [x for x in err.splitlines() if x.startswith("Error: ")]  # after click's usage
    assert said in line
    assert db_path.read_bytes() == before  # nothing recorded
