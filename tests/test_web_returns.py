"""A web form's answers in (read/web.py): the same validation and store as a returned file, so
the same answers give the same stored return whichever way they came; one channel per audit
and stage (the first final return stands, the other waits for an officer); a concern raised
when the auditor saves it on purpose (issue 25). Both backends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest
import sqlalchemy as sa
from test_import import TODAY, good_answers

from formtool import clock, store
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx
from formtool.errors import IssueCode
from formtool.generate import write_forms
from formtool.programme.workflow import check_audit
from formtool.read.batch import import_paths
from formtool.read.concern import raise_answered_concern
from formtool.read.web import submit, web_audit

from conftest import date_keys, make_cases

AUDITOR = "auditor.one@example.invalid"


@pytest.fixture
def made(tmp_path, db):
    """Three CSC audits with their Word forms made for the database."""
    form = get_form("csc")
    cases = [dataclasses.replace(c, auditor_email=AUDITOR) for c in make_cases(tmp_path, form, 3)]
    forms = write_forms(form, cases, tmp_path / "forms", ("docx",), db=db)
    with clock.frozen(TODAY):
        yield db, tmp_path, forms


def as_browser(answers: dict[str, str]) -> dict[str, str]:
    """What a browser posts: dates from <input type=date> are ISO."""
    dates = date_keys(get_form("csc"))
    return {
        k: dt.datetime.strptime(v, "%d/%m/%Y").date().isoformat() if k in dates and v else v
        for k, v in answers.items()
    }


def by_word(made, index: int, answers: dict[str, str]) -> str:
    db, root, forms = made
    path = root / "in" / f"return-{index}.docx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(fill_docx(forms[index].path.read_bytes(), answers))
    [outcome] = import_paths(db, [path], today=TODAY)
    return outcome.status


def stored(db, audit_id: str) -> tuple[dict, list, str]:
    found = db.audit_records(audit_id)
    actions = sorted(
        tuple((k, str(v)) for k, v in a._asdict().items() if k not in ("id", "return_id"))
        for a in found.actions
    )
    return found.answers, actions, found.row.auditor_grade


def answers_only(form_id: str) -> dict[str, str]:
    """The answers an auditor gives (the facts are the audit's own, not theirs to give)."""
    form = get_form(form_id)
    header = {h.key for h in form.header}
    return {k: v for k, v in good_answers(form_id).items() if k not in header}


def test_the_same_answers_store_the_same_whether_from_word_or_the_browser(made) -> None:
    db, _, forms = made
    answers = answers_only("csc")
    assert by_word(made, 0, answers) == "imported"
    web = forms[1].case.audit_id
    outcome = submit(db, web, "audit", as_browser(answers), AUDITOR, "form:" + AUDITOR)
    assert outcome.status == "imported", outcome.issues
    word_answers, word_actions, word_grade = stored(db, forms[0].case.audit_id)
    web_answers, web_actions, web_grade = stored(db, web)
    assert web_answers == word_answers
    assert web_actions == word_actions and web_actions
    assert web_grade == word_grade == "Good"
    row = db.audit_records(web).row
    assert (row.state, row.method, row.sender) == ("returned", "web", AUDITOR)
    content = db.return_content(row.return_id)
    body = json.loads(content.content)
    assert body["audit_id"] == web and body["values"]["overall.grade"] == "Good"
    assert row.content_hash == hashlib.sha256(content.content).hexdigest()


def test_a_web_return_with_a_mistake_stores_nothing_and_names_the_field(made) -> None:
    db, _, forms = made
    answers = as_browser(answers_only("csc"))
    answers["overall.grade"] = "Brilliant"
    outcome = submit(db, forms[0].case.audit_id, "audit", answers, AUDITOR)
    assert outcome.status == "rejected" and not outcome.stored
    [bad] = [i for i in outcome.issues if not i.is_warning]
    assert (bad.code, bad.field) == (IssueCode.bad_choice, "overall.grade")
    assert db.audit_records(forms[0].case.audit_id).row.return_id is None


def test_a_link_for_the_wrong_stage_is_refused(made) -> None:
    db, _, forms = made
    outcome = submit(
        db, forms[0].case.audit_id, "prepare", as_browser(answers_only("csc")), AUDITOR
    )
    assert outcome.status == "rejected"
    assert outcome.issues[0].code is IssueCode.state_changed


def test_the_first_final_return_stands_and_the_other_channel_waits(made) -> None:
    db, _, forms = made
    answers = answers_only("csc")
    first = forms[0].case.audit_id
    assert submit(db, first, "audit", as_browser(answers), AUDITOR).status == "imported"
    assert by_word(made, 0, answers) == "held"
    [held] = db.held_returns()
    assert (held.audit_id, held.held) == (first, store.HELD_CHANNEL)
    assert db.audit_records(first).row.method == "web"  # the web return stays current

    second = forms[1].case.audit_id
    assert by_word(made, 1, answers) == "imported"
    outcome = submit(db, second, "audit", as_browser(answers), AUDITOR)
    assert (outcome.status, outcome.held) == ("held", store.HELD_CHANNEL)
    assert db.audit_records(second).row.method != "web"


def test_after_an_amendment_request_either_channel_is_taken(made) -> None:
    db, _, forms = made
    answers = answers_only("csc")
    audit_id = forms[0].case.audit_id
    assert submit(db, audit_id, "audit", as_browser(answers), AUDITOR).status == "imported"
    check_audit(db, audit_id, "Add the date of the last visit.")
    evidence = next(q.evidence_key for q in get_form("csc").questions() if q.evidence)
    answers[evidence] = "Visit seen on the file, amended."
    assert by_word(made, 0, answers) == "updated"
    assert db.audit_records(audit_id).row.method != "web"


def test_a_concern_is_raised_when_saved_on_purpose_and_not_otherwise(made) -> None:
    db, _, forms = made
    form = get_form("csc")
    audit_id = forms[2].case.audit_id
    answers = answers_only("csc")
    assert raise_answered_concern(db, audit_id, form, answers) is None  # the answer is No
    assert db.concerns(True) == []
    concern = form.judgements.concern
    texts = [item.key for item in form.concern_texts()]
    answers |= {concern: "Yes", texts[0]: "No plan for the new baby.", texts[1]: "Team manager"}
    raised = raise_answered_concern(db, audit_id, form, answers, "form:" + AUDITOR)
    assert raised is not None
    [open_concern] = db.concerns(True)
    assert open_concern.audit_id == audit_id and "new baby" in open_concern.details
    # submitting the same concern does not raise it twice
    outcome = submit(db, audit_id, "audit", as_browser(answers), AUDITOR)
    assert outcome.stored and len(db.concerns(True)) == 1


def test_the_audit_behind_a_link_has_its_facts_and_stage(made) -> None:
    db, _, forms = made
    found = web_audit(db, forms[0].case.audit_id)
    assert found.stage == store.AUDIT and found.prepared is None
    assert found.facts == store.audit_facts(found.audit)
    with db.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(store.returns)).scalar()
    assert count == 0


def test_a_web_draft_is_in_the_childs_subject_access_copy(made) -> None:
    from formtool.programme.weblinks import check_link, issue_link, save_draft

    db, _, forms = made
    case = forms[0].case
    access = check_link(db, issue_link(db, case.audit_id, "audit", TODAY), TODAY)
    save_draft(db, access, {"overall.grade": "Good"}, dt.datetime(2026, 11, 22, 9, 0))
    [draft] = db.case_holdings(case.case_number)["web_drafts"]
    assert draft["audit_id"] == case.audit_id and "Good" in draft["values_json"]
