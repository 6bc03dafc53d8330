"""KSS judgements "where applicable" (seed 001 Appendix A para 16): the seed 001 tools' domain
judgements offer N/A in Word and Excel, a return judging a domain N/A imports and keeps it, N/A
is never inconsistent and is left out of the PMU domain counts, and version-2 returns (whose
judgements have no N/A) still read."""

from __future__ import annotations

import datetime as dt
import io
import random

import openpyxl
import pytest

from formtool import store
from formtool.definitions import FormDefinition, get_form, load_form, shipped_forms
from formtool.definitions.history import shipped_definition
from formtool.definitions.identity import Identity, defined_name
from formtool.definitions.scales import Scale
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers
from formtool.generate import write_forms
from formtool.packs.figures import load_figures
from formtool.periods import period_for
from formtool.read import RawReturn
from formtool.read.batch import import_paths
from formtool.read.docx import open_docx
from formtool.read.validate import validate_return

from conftest import DUE, make_cases

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MET = ("Met", "Partially met", "Not met")
MET_NA = (*MET, "N/A")
TODAY = dt.date(2026, 11, 23)
SEED_001_DOMAINS = {"csc", "early_help", "foster_carer", "supported_lodgings"}


def scale_of(form: FormDefinition, key: str) -> Scale:
    scale = form.field(key).scale
    assert scale is not None, key
    return scale


def kss_scales(form: FormDefinition) -> set[str]:
    """The scale ids of a form's domain judgements."""
    return {scale_of(form, s.judgement_key).id for s in form.domains()}


def test_the_seed_001_kss_judgements_take_na_and_nothing_else_changes(tmp_path):
    forms = shipped_forms().values()
    assert {f.id for f in forms if f.domains()} == SEED_001_DOMAINS
    for form in forms:
        if form.domains():
            assert form.source.startswith("Seed 001"), form.id
            assert kss_scales(form) == {"met_na"}, form.id
    met_na = scale_of(get_form("csc"), "kss1.met")
    assert met_na.choices == MET_NA
    assert [met_na.outcome(c) for c in MET_NA] == ["favourable", "partial", "unfavourable", None]
    for form_id in SEED_001_DOMAINS:  # the released version 2 is frozen as it shipped
        old = shipped_definition(form_id, 2)
        assert old is not None and kss_scales(old) == {"met"}
        assert scale_of(old, old.domains()[0].judgement_key).choices == MET
    tool = tmp_path / "team_tool.yaml"  # `met` itself is unchanged for other frameworks
    tool.write_text(
        "id: team_tool\nversion: 1\ntitle: Team tool\nsubject: child\nsource: synthetic\n"
        "header: [{column: case_number, label: Case}]\nsections:\n"
        "  - {id: s, title: S, items: [{choice: met, label: Met?, scale: met}]}\n",
        encoding="utf-8",
    )
    assert scale_of(load_form(tool), "s.met").choices == MET


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A store with four CSC version-3 audits whose forms are Word, and one whose is Excel
    (and the cases as listed, whose checksums are not keyed to the store)."""
    root = tmp_path_factory.mktemp("kss-na")
    db = store.open_store(f"sqlite:///{root / 'kss.db'}")
    form = get_form("csc")
    cases = make_cases(root, form, 5)
    sent = write_forms(form, cases[:4], root / "forms", ("docx",), db=db)
    sent += write_forms(form, cases[4:], root / "forms", ("xlsx",), db=db)
    return root, db, form, sent, cases


def kss_dropdowns(data: bytes) -> dict[str, tuple[str, ...]]:
    """What each KSS judgement's Word drop-down offers, by key."""
    _, body = open_docx(data)
    offered = {}
    for sdt in body.iter(f"{W}sdt"):
        tag = sdt.find(f"{W}sdtPr/{W}tag")
        if tag is not None and tag.get(f"{W}val", "").endswith(".met"):
            items = sdt.find(f"{W}sdtPr/{W}dropDownList").iter(f"{W}listItem")
            offered[tag.get(f"{W}val")] = tuple(i.get(f"{W}value") for i in items)
    return offered


def test_word_offers_na_in_each_kss_dropdown(made):
    _, _, form, sent, _ = made
    offered = kss_dropdowns(sent[0].path.read_bytes())
    assert offered == {s.judgement_key: MET_NA for s in form.domains()}


def test_excel_offers_na_in_each_kss_list(made):
    _, _, form, sent, _ = made
    workbook = openpyxl.load_workbook(io.BytesIO(sent[-1].path.read_bytes()))
    sheet = workbook["Audit"]
    lists = {
        str(cell): dv.formula1
        for dv in sheet.data_validations.dataValidation
        if dv.type == "list"
        for cell in dv.sqref
    }
    for section in form.domains():
        ((_, ref),) = workbook.defined_names[defined_name(section.judgement_key)].destinations
        assert lists[ref.replace("$", "")] == '"Met,Partially met,Not met,N/A"', section.id


def _answers(form, case, seed: int, judged: dict[str, str], answer: str = "") -> dict[str, str]:
    """Complete Final answers with some KSS judgements given (and, if `answer`, every question
    of those KSS answered so)."""
    answers = synthetic_answers(form, case, random.Random(seed), DUE) | judged
    judged_sections = {key.split(".")[0] for key in judged}
    questions = [q for s in form.sections if s.id in judged_sections for q in s.questions]
    return answers | ({q.key: answer for q in questions} if answer else {})


@pytest.fixture(scope="module")
def imported(made):
    """Every made form returned: KSS 1 judged Met, N/A, Not met, N/A, Partially met; KSS 10
    N/A throughout (their questions answered Partially, so no judgement contradicts them); each
    read and stored by the batch import."""
    root, db, form, sent, _ = made
    folder = root / "returns"
    folder.mkdir()
    judged = ("Met", "N/A", "Not met", "N/A", "Partially met")
    for i, (item, kss1) in enumerate(zip(sent, judged, strict=True)):
        answers = _answers(form, item.case, i, {"kss1.met": kss1, "kss10.met": "N/A"}, "Partially")
        fmt = item.path.suffix.lstrip(".")
        (folder / item.path.name).write_bytes(
            fill_return(item.path.read_bytes(), fmt, form, answers)
        )
    return db, sent, import_paths(db, [folder], TODAY)


def test_a_kss_judged_na_imports_without_an_issue_and_is_stored(imported):
    db, sent, outcomes = imported
    assert [(o.status, [i.as_tuple() for i in o.issues]) for o in outcomes] == [
        ("imported", [])
    ] * len(sent)
    stored = db.audit_records(sent[1].case.audit_id)
    assert stored is not None
    assert (stored.answers["kss1.met"][0], stored.answers["kss10.met"][0]) == ("N/A", "N/A")
    from_excel = db.audit_records(sent[-1].case.audit_id)
    assert from_excel is not None and from_excel.answers["kss10.met"][0] == "N/A"


def test_findings_leave_na_out_of_the_base(imported):
    db = imported[0]
    figures = load_figures(db, period_for(month="2026-11"), TODAY)
    domains = {label: (dict(counts), choices) for label, counts, choices in figures.domains["CSC"]}
    assert domains["KSS 1"] == ({"Met": 1, "Not met": 1, "Partially met": 1}, MET)
    assert "KSS 10" not in domains  # judged N/A in every audit: nothing to count
    assert all(choices == MET and "N/A" not in counts for counts, choices in domains.values())


def test_na_is_never_inconsistent_with_the_answers(made):
    _, _, form, _, cases = made
    case = cases[0]
    answers = _answers(form, case, 9, {"kss1.met": "N/A", "kss2.met": "Met"}, "No")
    values = {f"header.{k}": v for k, v in case.facts.items()} | answers
    identity = Identity(case.audit_id, form.id, form.version, case.checksum)
    result = validate_return(RawReturn(identity, form, values), "r.docx", today=TODAY)
    judged = [i.as_tuple() for i in result.issues if i.field.endswith(".met")]
    assert judged == [("kss2.met", "met-inconsistent")]  # the Met, never the N/A
    assert result.accepted


def test_a_version_2_return_still_reads_and_offers_no_na(tmp_path):
    old = shipped_definition("csc", 2)
    assert old is not None
    db = store.open_store(f"sqlite:///{tmp_path / 'v2.db'}")
    (sent,) = write_forms(old, make_cases(tmp_path, old, 1), tmp_path / "forms", ("docx",), db=db)
    offered = kss_dropdowns(sent.path.read_bytes())
    assert offered == {s.judgement_key: MET for s in old.domains()}
    answers = _answers(old, sent.case, 5, {"kss1.met": "Partially met"})
    returned = tmp_path / "returns" / sent.path.name
    returned.parent.mkdir()
    returned.write_bytes(fill_return(sent.path.read_bytes(), "docx", old, answers))
    (outcome,) = import_paths(db, [returned], TODAY)
    assert (outcome.status, [i.as_tuple() for i in outcome.issues]) == ("imported", [])
    stored = db.audit_records(sent.case.audit_id)
    assert stored is not None and stored.answers["kss1.met"][0] == "Partially met"
    values = {f"header.{k}": v for k, v in sent.case.facts.items()} | answers
    values["kss1.met"] = "N/A"  # not on version 2's list: the auditor is told what is
    identity = Identity(sent.case.audit_id, old.id, old.version, sent.case.checksum)
    result = validate_return(RawReturn(identity, old, values), "r.docx", today=TODAY)
    (issue,) = [i for i in result.issues if i.field == "kss1.met"]
    assert issue.as_tuple() == ("kss1.met", "bad-choice")
    assert "Met/Partially met/Not met" in issue.message
