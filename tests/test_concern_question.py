"""The urgent-concern question every shipped tool asks first: its definition, how it reads
back through LibreOffice, what a return's answer means ("not asked" is never "no"), the
checks on it (required when Final, a Yes without details warns), old versions, the demo."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from formtool import store
from formtool.definitions import FormDefinition, check_form, get_form, load_form, shipped_forms
from formtool.definitions.history import shipped_definition
from formtool.definitions.identity import Identity
from formtool.definitions.layout import layout
from formtool.demo.fill import concern_answers, fill_docx, fill_return, fill_xlsx
from formtool.demo.synthetic import synthetic_answers
from formtool.generate import render, write_forms
from formtool.read import RawReturn, read_path
from formtool.read.batch import import_paths
from formtool.read.concern import concern_answer, concern_issues, concern_text
from formtool.read.validate import validate_return

from conftest import DUE, answers_for, convert, date_keys, make_cases

QUESTION, DETAILS, TOLD = "concern.immediate", "concern.details", "concern.told"
WRITTEN = {
    QUESTION: "Yes",
    DETAILS: "Bruise seen on 03/11 & <not explained>\n=SUM(A1) second line",
    TOLD: "Team Manager A1 (synthetic), by phone on 03/11/2026",
}
TODAY = dt.date(2026, 11, 23)
SHARED_TABLES = ("header", "grades")  # printed before any section


def previous() -> FormDefinition:
    """CSC version 2, the last shipped before the question: its forms may still be out."""
    old = shipped_definition("csc", 2)
    assert old is not None
    return old


def test_every_shipped_tool_asks_it_first_about_its_own_subject():
    for form in shipped_forms().values():
        first = form.sections[0]
        assert (first.id, form.judgements.concern) == ("concern", QUESTION)
        assert [i.key for i in first.items] == [QUESTION, DETAILS, TOLD]
        question = form.item(QUESTION)
        assert question is not None and question.scale is not None
        assert (question.scale.id, question.required, question.outcome("Yes")) == (
            "yes_no",
            True,
            None,  # a fact about the case, never a finding about practice
        )
        assert question.label.startswith("Is there an immediate concern for ")
        assert "seed 001 Appendix A para 14" in first.addition
        assert any(what == "section: Immediate concerns" for what, _ in form.additions())
    who = {f.id: f.field(QUESTION).label for f in shipped_forms().values()}
    assert "the child's safety" in who["csc"]
    assert "foster carer's household" in who["foster_carer"]
    assert "prospective adopter's household" in who["prospective_adopter"]
    assert "young person" in who["supported_lodgings"]


def test_it_prints_before_every_other_section():
    """After the header, grade descriptors and guidance; its Yes/No is a dropdown like every
    choice (test_generate checks the controls of every field)."""
    for form in shipped_forms().values():
        blocks = layout(form).blocks
        headings = [b.text for b in blocks if b.kind == "heading"]
        assert headings[0] == "Immediate concerns", form.id
        tables = [b.name for b in blocks if b.kind == "table" and b.name not in SHARED_TABLES]
        assert tables[0] == "concern", form.id


TEAM_TOOL = """\
id: team_tool
version: 1
title: Team tool
subject: child
source: synthetic
header: [{column: case_number, label: Case}]
sections:
  - id: worry
    title: Worry
    items: [{choice: level, label: How worried?, scale: met}]
"""


def test_a_team_tool_and_an_older_version_have_no_question(tmp_path):
    old = previous()
    assert old.judgements.concern == "" and old.concern_texts() == ()
    assert get_form("csc").version == 4
    (tmp_path / "team_tool.yaml").write_text(TEAM_TOOL, encoding="utf-8")
    assert load_form(tmp_path / "team_tool.yaml").judgements.concern == ""


def test_the_question_must_be_yes_or_no(tmp_path):
    tool = tmp_path / "team_tool.yaml"
    tool.write_text("judgements: {concern: worry.level}\n" + TEAM_TOOL, encoding="utf-8")
    (issue,) = check_form(tool)
    assert (issue.field, issue.code.label) == ("judgements.concern", "schema")
    assert "must be answered Yes or No: give it the scale yes_no" in issue.message


@pytest.mark.parametrize(
    ("value", "meant"),
    [("Yes", "yes"), (" yes ", "yes"), ("No", "no"), ("", "not asked"), ("Maybe", "not asked")],
)
def test_the_answer_means_yes_no_or_not_asked(value, meant):
    csc = get_form("csc")
    assert concern_answer(csc, {QUESTION: value}) == meant
    assert concern_answer(csc, {QUESTION: (value, "")}) == meant  # as validated answers hold it
    assert concern_answer(previous(), {QUESTION: value}) == "not asked"


def test_the_texts_are_what_and_who():
    csc = get_form("csc")
    assert concern_text(csc, WRITTEN) == (WRITTEN[DETAILS], WRITTEN[TOLD])
    assert concern_text(csc, {QUESTION: "No"}) == ("", "")
    assert concern_text(previous(), WRITTEN) == ("", "")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A CSC case and a complete, Final set of answers with no concern."""
    root = tmp_path_factory.mktemp("concern")
    form = get_form("csc")
    case = make_cases(root, form, 1)[0]
    answers = synthetic_answers(form, case, random.Random(3), TODAY)
    return root, form, case, answers


def _validated(made, changed: dict[str, str]):
    """A return of the made answers with some changed: the result and the concern's issues."""
    _, form, case, answers = made
    values = {f"header.{k}": v for k, v in case.facts.items()} | answers | changed
    identity = Identity(case.audit_id, form.id, form.version, case.checksum)
    result = validate_return(RawReturn(identity, form, values), "r.docx", today=TODAY)
    return result, [i.as_tuple() for i in result.issues if i.field == QUESTION]


def test_a_final_return_must_answer_it(made):
    result, issues = _validated(made, {QUESTION: ""})
    assert issues == [(QUESTION, "missing-answer")]
    assert not result.accepted


def test_a_draft_may_leave_it_blank_and_has_not_asked_it(made):
    result, issues = _validated(made, {QUESTION: "", "completion.status": "Draft"})
    assert issues == [] and result.accepted
    assert result.record is not None
    assert concern_answer(made[1], result.record.answers) == "not asked"


def test_a_yes_without_details_warns_and_is_accepted(made):
    result, issues = _validated(made, {QUESTION: "Yes"})
    assert issues == [(QUESTION, "concern-without-details")]
    assert result.accepted
    (issue,) = [i for i in result.issues if i.field == QUESTION]
    assert issue.message == (
        "[r.docx · concern.immediate] says Yes, there is an immediate concern, but does not say "
        "what the concern is or who was told, and when. The concern is raised all the same: ask "
        "the auditor now, and record the action taken."
    )
    assert _validated(made, {QUESTION: "Yes", TOLD: "TM, 03/11"})[1] == [
        (QUESTION, "concern-without-details")
    ]
    assert _validated(made, {QUESTION: "Yes", "completion.status": "Draft"})[1] == [
        (QUESTION, "concern-without-details")  # a draft saying Yes is a concern too
    ]
    assert _validated(made, WRITTEN)[1] == []
    assert concern_issues(made[1], {QUESTION: "No"}, "r.docx") == []


def test_a_return_of_the_previous_version_imports_with_its_concern_not_asked(tmp_path):
    """csc v2 forms still out when v3 ships (the database holds v2's snapshot)."""
    old = previous()
    db = store.open_store(f"sqlite:///{tmp_path / 'old.db'}")
    case = make_cases(tmp_path, old, 1)[0]
    (sent,) = write_forms(old, [case], tmp_path / "forms", ("docx",), db=db)
    answers = synthetic_answers(old, sent.case, random.Random(5), DUE)
    assert concern_answers(old, raised=True, day=DUE) == {}
    returned = tmp_path / "returns" / sent.path.name
    returned.parent.mkdir()
    returned.write_bytes(fill_return(sent.path.read_bytes(), "docx", old, answers))
    (outcome,) = import_paths(db, [returned], DUE)
    assert (outcome.status, [i.as_tuple() for i in outcome.issues]) == ("imported", [])
    stored = db.audit_records(case.audit_id)
    assert stored is not None and QUESTION not in stored.answers
    read_with = db.form_for("csc", 2)
    assert read_with is not None and read_with.judgements.concern == ""
    assert concern_answer(read_with, stored.answers) == "not asked"


@pytest.fixture(scope="module")
def through_libreoffice(tmp_path_factory):
    """A CSC form filled as Word and as Excel with the concern answered Yes, each saved by
    LibreOffice (one call per format: LibreOffice converts to one format a call)."""
    root = tmp_path_factory.mktemp("concern-lo")
    form = get_form("csc")
    case = make_cases(root, form, 1)[0]
    answers = answers_for(form) | WRITTEN
    filled = root / "filled"
    filled.mkdir()
    (filled / "csc.docx").write_bytes(fill_docx(render(form, case, "docx"), answers))
    (filled / "csc.xlsx").write_bytes(
        fill_xlsx(render(form, case, "xlsx"), answers, date_keys(form))
    )
    saved = convert([filled / "csc.docx"], "docx", root / "saved")
    saved += convert([filled / "csc.xlsx"], "xlsx", root / "saved")
    return form, saved


@pytest.mark.libreoffice
@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
def test_the_three_answers_survive_a_libreoffice_save(through_libreoffice, fmt):
    form, saved = through_libreoffice
    (path,) = [p for p in saved if p.suffix == f".{fmt}"]
    values = read_path(path).values
    assert {k: values.get(k) for k in WRITTEN} == WRITTEN
    assert concern_answer(form, values) == "yes"
    assert concern_text(form, values) == (WRITTEN[DETAILS], WRITTEN[TOLD])


def test_the_demo_raises_exactly_one_concern(demo_run):
    """Every demo return answers No, but one, which says Yes with what and who."""
    db = store.open_store(f"sqlite:///{demo_run.out / 'formtool.db'}", mode="read")
    said: dict[str, tuple[str, tuple[str, str]]] = {}
    for row in db.audit_rows():
        records = db.audit_records(row.audit_id)
        form = db.form_for(row.form_id, row.form_version)
        if records is not None and records.answers and form is not None:
            said[row.audit_id] = (
                concern_answer(form, records.answers),
                concern_text(form, records.answers),
            )
    answers = [answer for answer, _ in said.values()]
    assert (answers.count("yes"), set(answers)) == (1, {"yes", "no"})
    ((details, told),) = [text for answer, text in said.values() if answer == "yes"]
    assert details.startswith("Synthetic:") and told.startswith("Team Manager (synthetic)")
