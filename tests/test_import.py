"""Import: statuses, history, validation, consistency warnings, and hostile files."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.generate import write_forms
from formtool.packs.export import export_data
from formtool.programme.status import status
from formtool.read.batch import import_paths

from conftest import answers_for, date_keys, make_cases, missing

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def setup(tmp_path, db):
    """A database with three CSC audits and one early help audit, forms generated."""
    csc, eh = get_form("csc"), get_form("early_help")
    csc_cases = make_cases(tmp_path, csc, 3)
    eh_cases = make_cases(tmp_path, eh, 1)
    forms = write_forms(csc, csc_cases, tmp_path / "forms", ("docx", "xlsx"), db=db)
    forms += write_forms(eh, eh_cases, tmp_path / "forms", ("docx",), db=db)
    (tmp_path / "returns").mkdir()
    return db, tmp_path, {f.path.name: f for f in forms}


def good_answers(form_id: str) -> dict[str, str]:
    """Complete, consistent answers with future action dates."""
    form = get_form(form_id)
    answers = answers_for(form)
    for q in form.questions():
        answers[q.key] = "Yes"
    for f in form.fields():
        if f.key.endswith(".met"):
            answers[f.key] = "Met"
        if f.key.endswith("date_required") or f.key.endswith("sign_off_date"):
            answers[f.key] = "15/12/2026"
    answers["overall.grade"] = "Good"
    answers["moderation.grade"] = ""
    answers["completion.status"] = "Final"
    return answers


def returned(setup, name: str, answers: dict[str, str], as_name: str | None = None):
    _, root, forms = setup
    data = forms[name].path.read_bytes()
    form = get_form(forms[name].case.form_id)
    filled = (
        fill_docx(data, answers)
        if name.endswith("docx")
        else fill_xlsx(data, answers, date_keys(form))
    )
    path = root / "returns" / (as_name or name)
    path.write_bytes(filled)
    return path


def counts(db) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (store.returns, store.answers, store.actions, store.grades)
        }


def test_import_unchanged_and_superseding_keeps_history(setup):
    db, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    answers = good_answers("csc")
    first = returned(setup, name, answers)
    [outcome] = import_paths(db, [first], TODAY)
    assert (outcome.status, outcome.audit_id) == ("imported", forms[name].case.audit_id)
    assert [i.code.name for i in outcome.issues] == []
    assert import_paths(db, [first], TODAY)[0].status == "unchanged"
    before = counts(db)
    changed = returned(
        setup,
        name,
        answers | {"kss1.seen_alone": "No", "overall.grade": "Requires Improvement"},
        as_name="v2-" + name,
    )
    assert import_paths(db, [changed], TODAY)[0].status == "updated"
    after = counts(db)
    assert after["returns"] == before["returns"] + 1
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(store.returns).order_by(store.returns.c.id)).all()
        grade = conn.execute(sa.select(store.grades.c.auditor_grade)).scalar()
        state = conn.execute(
            sa.select(store.audits.c.state).where(store.audits.c.audit_id == outcome.audit_id)
        ).scalar()
    assert [(r.is_current, r.supersedes) for r in rows] == [(False, None), (True, rows[0].id)]
    assert rows[0].content == first.read_bytes()  # original bytes kept for tracing
    assert grade == "Requires Improvement" and state == "returned"
    current = {r["key"]: r["value"] for r in export_data(db).answers}
    assert current["kss1.seen_alone"] == "No"
    assert current["kss1.met"] == "Met"


def test_values_actions_and_grades_are_stored_canonically(setup):
    db, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".xlsx"))
    answers = good_answers("csc") | {
        "kss2.records_quality": "n/a",
        "kss3.met": "partially MET",
        "next_steps.actions.1.date_required": "2026-12-15",
        "moderation.grade": "Good",
    }
    [outcome] = import_paths(db, [returned(setup, name, answers)], TODAY)
    assert outcome.status == "imported"
    with db.engine.connect() as conn:
        stored = {r.key: (r.value, r.comment) for r in conn.execute(sa.select(store.answers))}
        actions = conn.execute(sa.select(store.actions).order_by(store.actions.c.id)).all()
        grade = conn.execute(sa.select(store.grades)).one()
    assert stored["kss2.records_quality"] == ("N/A", answers["kss2.records_quality.evidence"])
    assert stored["kss3.met"] == ("Partially met", "")
    assert stored["completion.status"] == ("Final", "")
    first = actions[0]
    assert (first.table_key, first.row, first.due_date) == (
        "next_steps.actions",
        1,
        dt.date(2026, 12, 15),
    )
    assert first.responsible_person == answers["next_steps.actions.1.responsible_person"]
    assert len(actions) == 10 + 10 + 10  # every filled row of the three action tables
    assert (grade.auditor_grade, grade.moderated_grade) == ("Good", "Good")


def issue_tuples(outcome) -> list[tuple[str, str]]:
    return [i.as_tuple() for i in outcome.issues]


def test_invalid_answers_reject_the_file_and_store_nothing(setup):
    db, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    answers = good_answers("csc") | {
        "kss1.seen_alone": "Maybe",
        "kss2.met": "",
        "next_steps.actions.2.date_required": "next week",
    }
    before = counts(db)
    [outcome] = import_paths(db, [returned(setup, name, answers)], TODAY)
    assert outcome.status == "rejected"
    assert issue_tuples(outcome) == [
        ("kss1.seen_alone", "bad-choice"),
        ("next_steps.actions.2.date_required", "bad-answer-date"),
        ("kss2.met", "missing-answer"),
    ]
    assert outcome.issues[0].message.endswith(
        "kss1.seen_alone] expects one of Yes/No/Partially/N/A, got 'Maybe'. Pick from the list."
    )
    assert counts(db) == before


def test_draft_return_skips_required_check_with_a_warning(setup):
    db, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    answers = {"kss1.seen_alone": "Yes", "completion.status": "Draft"}
    [outcome] = import_paths(db, [returned(setup, name, answers)], TODAY)
    assert outcome.status == "imported"
    assert issue_tuples(outcome) == [("completion.status", "draft-return")]
    report = status(db, "2026-11", today=TODAY)
    assert report.by_state == {"allocated": 3, "in progress": 1}  # a draft is not complete


def test_consistency_warnings(setup):
    db, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    answers = good_answers("csc")
    for q in get_form("csc").questions():
        answers[q.key] = "No"
    answers |= {
        "overall.grade": "Outstanding",
        "kss1.met": "Met",
        "next_steps.actions.1.responsible_person": "",
        "next_steps.actions.2.date_required": "01/10/2026",
    }
    [outcome] = import_paths(db, [returned(setup, name, answers)], TODAY)
    assert outcome.status == "imported"  # warnings do not reject
    # "No" to "evidence of drift and delay?" is favourable; the CSE and learning-points
    # questions are neutral, so KSS 8 (one of each) and KSS 10 (neutral only) do not warn.
    assert issue_tuples(outcome) == [
        ("next_steps.actions.1", "incomplete-action"),
        # before the form was made (the programme's today, here): doubted, not just past
        ("next_steps.actions.2.due_date", "date-doubt"),
        ("overall.grade", "grade-inconsistent"),
        *[(f"kss{n}.met", "met-inconsistent") for n in (1, 2, 3, 4, 5, 6, 7, 9)],
    ]
    assert outcome.issues[2].message.endswith(
        "overall.grade] graded 'Outstanding' but 30 of 31 scored answers are unfavourable. "
        "Check the grade."
    )
    with db.engine.connect() as conn:
        warnings = json.loads(conn.execute(sa.select(store.returns.c.warnings)).scalar())
    assert warnings[2] == {
        "code": "grade-inconsistent",
        "field": "overall.grade",
        "value": "Outstanding",
        "expected": "30 of 31 scored answers are unfavourable",
    }


def test_altered_facts_another_type_and_another_audit_are_rejected(setup):
    db, root, forms = setup
    csc_docx = sorted(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    answers = good_answers("csc")
    returned(setup, csc_docx[0], answers | {"header.family_name": "Changed"}, as_name="edited.docx")
    eh_name = next(n for n in forms if n.startswith("EH"))
    eh_file = returned(setup, eh_name, good_answers("early_help"))
    # the early help file, relabelled as a CSC audit that exists in the database
    other_type = root / "returns" / "other-type.docx"
    other_type.write_bytes(
        _replace_in_zip(
            eh_file.read_bytes(),
            "docProps/custom.xml",
            forms[eh_name].case.audit_id,
            forms[csc_docx[0]].case.audit_id,
        )
    )
    # audit 2's form carrying audit 1's identity in its properties
    other_audit = root / "returns" / "other-audit.docx"
    data = returned(setup, csc_docx[1], answers, as_name="tmp.docx").read_bytes()
    other_audit.write_bytes(
        _replace_in_zip(
            data,
            "docProps/custom.xml",
            forms[csc_docx[1]].case.audit_id,
            forms[csc_docx[0]].case.audit_id,
        )
    )
    (root / "returns" / "tmp.docx").unlink()
    eh_file.unlink()
    before = counts(db)
    outcomes = {o.file.split("/")[-1]: o for o in import_paths(db, [root / "returns"], TODAY)}
    assert {k: o.status for k, o in outcomes.items()} == {
        "edited.docx": "rejected",
        "other-type.docx": "rejected",
        "other-audit.docx": "rejected",
    }
    assert issue_tuples(outcomes["edited.docx"]) == [("header.family_name", "facts-altered")]
    assert issue_tuples(outcomes["other-type.docx"])[0][1] == "wrong-form"
    assert ("header.case_number", "facts-altered") in issue_tuples(outcomes["other-audit.docx"])
    assert counts(db) == before


def _replace_in_zip(data: bytes, member: str, old: str, new: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == member:
                content = content.replace(old.encode(), new.encode())
            dst.writestr(info, content)
    return out.getvalue()


def test_unknown_audit_is_rejected(setup, tmp_path):
    _, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    path = returned(setup, name, good_answers("csc"))
    other = store.open_store(f"sqlite:///{tmp_path / 'other.db'}")
    [outcome] = import_paths(other, [path], TODAY)
    assert outcome.status == "rejected"
    assert issue_tuples(outcome) == [("", "not-in-database")]


def test_status_counts_returned_outstanding_overdue(setup):
    db, _root, forms = setup
    name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    import_paths(db, [returned(setup, name, good_answers("csc"))], TODAY)
    report = status(db, "2026-11", today=dt.date(2026, 12, 3))
    assert report.audits == 4
    assert report.by_state == {"allocated": 3, "returned": 1}
    assert [(o.state, o.days_overdue) for o in report.overdue] == [("allocated", 3)] * 3
    totals = {
        k: sum(t.get(k, 0) for t in report.teams.values())
        for k in ("audits", "returned", "outstanding", "overdue")
    }
    assert totals == {"audits": 4, "returned": 1, "outstanding": 3, "overdue": 3}
    assert status(db, "2026-10", today=TODAY).audits == 0


def test_check_accepts_or_returns_for_amendment_and_reimport_moves_on(setup):
    from formtool.programme.workflow import check_audit
    from formtool.store import StateError

    db, _root, forms = setup
    names = sorted(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    first, second = (forms[n].case.audit_id for n in names[:2])
    with pytest.raises(
        StateError,
        match=f"^Audit {first} is 'allocated'; only a complete "
        r"\(Final\) return can be accepted; import it first",
    ):
        check_audit(db, first)
    for name in names[:2]:
        import_paths(db, [returned(setup, name, good_answers("csc"))], TODAY)
    assert check_audit(db, first).state == "checked"
    result = check_audit(db, second, "KSS 5 evidence missing", today=dt.date(2026, 12, 23))
    assert result.as_dict() == {
        "audit_id": second,
        "state": "amendment requested",
        "previous_state": "returned",
        "amend_by": "2026-12-30",
    }  # 3 working days over Christmas
    amended = returned(
        setup, names[1], good_answers("csc") | {"kss5.met": "Partially met"}, as_name="amended.docx"
    )
    assert import_paths(db, [amended], TODAY)[0].status == "updated"
    report = status(db)
    assert report.by_state == {"allocated": 2, "returned": 1, "checked": 1}


def test_a_draft_cannot_be_accepted_and_signoff_and_close_follow_the_sign_offs(setup):
    from formtool.programme.workflow import (
        WorkflowError,
        check_audit,
        close_audit,
        sign_off_actions,
    )
    from formtool.store import StateError

    db, _root, forms = setup
    name = sorted(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))[0]
    audit_id = forms[name].case.audit_id
    import_paths(
        db, [returned(setup, name, {"completion.status": "Draft"}, as_name="draft.docx")], TODAY
    )
    with pytest.raises(StateError, match="is 'in progress'; only a complete"):
        check_audit(db, audit_id)
    unsigned = good_answers("csc") | {"oversight.actions.1.manager_sign_off": ""}
    for key in list(unsigned):
        if key.endswith("sign_off_date") and key.startswith("oversight.actions.1."):
            unsigned[key] = ""
    import_paths(db, [returned(setup, name, unsigned)], TODAY)
    check_audit(db, audit_id)
    with pytest.raises(
        WorkflowError,
        match=f"^Audit {audit_id} has 1 action\\(s\\) without a "
        r"manager's sign-off: action 1 of Management Oversight and Actions\. Record each "
        r"sign-off on the audit's page, or import the return with the sign-offs filled in\.$",
    ):
        sign_off_actions(db, audit_id)
    with pytest.raises(WorkflowError, match=r"without a manager's sign-off.* Then close it\.$"):
        close_audit(db, audit_id)
    signed = returned(setup, name, good_answers("csc"), as_name="signed.docx")
    assert import_paths(db, [signed], TODAY)[0].status == "updated"
    assert sign_off_actions(db, audit_id).state == "actions signed off"
    assert close_audit(db, audit_id).previous_state == "actions signed off"
    with db.engine.connect() as conn:
        events = (
            conn.execute(
                sa.select(store.events.c.event)
                .where(store.events.c.audit_id == audit_id)
                .order_by(store.events.c.id)
            )
            .scalars()
            .all()
        )
    assert events == [
        "allocated",
        "returned",
        "updated",
        "checked",
        "updated",
        "actions signed off",
        "closed",
    ]


# --- returns straight from emails ----------------------------------------------------------

OUTLOOK = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "outlook-msg"


def _stored(db) -> list[tuple[str, str, str, object, object]]:
    r = store.returns.c
    with db.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(r.audit_id, r.file_name, r.sender, r.sent_at, r.message_name).order_by(
                    r.id
                )
            )
        ]


def test_an_eml_reply_imports_each_attached_form_with_sender_and_date(setup):
    from email.message import EmailMessage

    db, root, forms = setup
    docx_name = next(n for n in forms if n.startswith("CSC") and n.endswith(".docx"))
    xlsx_name = next(
        n
        for n in sorted(forms)
        if n.startswith("CSC")
        and n.endswith(".xlsx")
        and forms[n].case.audit_id != forms[docx_name].case.audit_id
    )
    message = EmailMessage()
    message["From"] = '"Auditor A1 (synthetic)" <auditor.a1@example.invalid>'
    message["Date"] = "Mon, 23 Nov 2026 09:15:00 +0000"
    message["Subject"] = "RE: Case file audits for November 2026"
    message.set_content("Completed audits attached.")
    for name in (docx_name, xlsx_name):
        message.add_attachment(
            returned(setup, name, good_answers("csc")).read_bytes(),
            maintype="application",
            subtype="octet-stream",
            filename=name,
        )
    message.add_attachment(
        b"\x89PNG\r\n", maintype="image", subtype="png", filename="signature.png"
    )
    eml = root / "inbox" / "reply.eml"
    eml.parent.mkdir()
    eml.write_bytes(message.as_bytes())
    outcomes = import_paths(db, [root / "inbox"], TODAY)
    assert [(Path(o.file).name, o.status) for o in outcomes] == [
        (f"reply.eml › {docx_name}", "imported"),
        (f"reply.eml › {xlsx_name}", "imported"),
        ("reply.eml › signature.png", "skipped"),
    ]
    assert [i.code.label for i in outcomes[2].issues] == ["not-a-form"]
    sent = dt.datetime(2026, 11, 23, 9, 15)
    assert _stored(db) == [
        (
            forms[docx_name].case.audit_id,
            f"reply.eml › {docx_name}",
            "Auditor A1 (synthetic) <auditor.a1@example.invalid>",
            sent,
            "reply.eml",
        ),
        (
            forms[xlsx_name].case.audit_id,
            f"reply.eml › {xlsx_name}",
            "Auditor A1 (synthetic) <auditor.a1@example.invalid>",
            sent,
            "reply.eml",
        ),
    ]
    again = import_paths(db, [eml], TODAY)
    assert [o.status for o in again] == ["unchanged", "unchanged", "skipped"]


def test_an_outlook_msg_carrying_a_return_imports_it(setup):
    from msgfile import Attached, Msg, msg_bytes

    db, root, forms = setup
    name = next(n for n in forms if n.startswith("EH"))
    data = returned(setup, name, good_answers("early_help")).read_bytes()
    msg = root / "reply.msg"
    msg.write_bytes(
        msg_bytes(
            Msg(
                subject="RE: audits",
                sender_name="Auditor B2 (synthetic)",
                sender_address="auditor.b2@example.invalid",
                sent_at=dt.datetime(2026, 11, 24, 16, 5),
                attachments=(Attached(name, data),),
            )
        )
    )
    [outcome] = import_paths(db, [msg], TODAY)
    assert (Path(outcome.file).name, outcome.status) == (f"reply.msg › {name}", "imported")
    [(audit_id, _, sender, sent_at, message_name)] = _stored(db)
    assert (audit_id, sender, sent_at, message_name) == (
        forms[name].case.audit_id,
        "Auditor B2 (synthetic) <auditor.b2@example.invalid>",
        dt.datetime(2026, 11, 24, 16, 5),
        "reply.msg",
    )
    truncated = root / "cut.msg"
    truncated.write_bytes(msg.read_bytes()[:3000])
    [cut] = import_paths(db, [truncated], TODAY)
    assert (cut.status, [i.code.label for i in cut.issues]) == ("rejected", ["bad-message"])
    assert "\n" not in cut.issues[0].message


def test_real_outlook_files_are_read_and_each_gets_its_code(db):
    if not OUTLOOK.is_dir():
        missing(f"real Outlook test files not found at {OUTLOOK} (shared fixtures)")
    outcomes = import_paths(db, [OUTLOOK / "unicode.msg", OUTLOOK / "strangeDate.msg"], TODAY)
    assert [(Path(o.file).name, o.status, [i.code.label for i in o.issues]) for o in outcomes] == [
        ("unicode.msg › import OleFileIO.tif", "skipped", ["not-a-form"]),
        ("unicode.msg › raised value error.tif", "skipped", ["not-a-form"]),
        ("unicode.msg", "rejected", ["no-attachment"]),
        ("strangeDate.msg", "rejected", ["no-attachment"]),
    ]
    assert all("\n" not in i.message for o in outcomes for i in o.issues)
