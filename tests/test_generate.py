"""Generation: every form, both formats, opens in python-docx/openpyxl with every question,
controls and validations in place, identity embedded, and byte-identical on a re-run."""

from __future__ import annotations

import io
import zipfile

import docx
import openpyxl
import pytest

from formtool.definitions import get_form, load_form
from formtool.definitions.identity import PROPERTY_NAMES, defined_name, parse_visible
from formtool.definitions.scales import FieldKind
from formtool.generate import MANIFEST_COLUMNS, generate, render, write_forms
from formtool.generate.xlsx import PAGE_HEIGHT, ROOM, page_breaks
from formtool.read.cases import load_cases
from formtool.read.docx import element_text, open_docx, tagged_text
from formtool.read.limits import TextBudget

from conftest import SEED_TOOLS, make_cases, write_cases

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx_text(data: bytes) -> str:
    """All text, content controls included; python-docx must open the file too."""
    document = docx.Document(io.BytesIO(data))
    assert document.tables
    return element_text(open_docx(data)[1], 10_000_000)


def test_docx_has_every_question_and_a_control_per_field(form, tmp_path):
    case = make_cases(tmp_path, form, 1)[0]
    data = render(form, case, "docx")
    text = " ".join(docx_text(data).split())
    missing = [i.label for _, i in form.items() if " ".join(i.label.split()) not in text]
    assert missing == []
    _, body = open_docx(data)
    W15 = "{http://schemas.microsoft.com/office/word/2012/wordml}"
    sections = [
        s for s in body.iter(f"{W}sdt") if s.find(f"{W}sdtPr/{W15}repeatingSection") is not None
    ]
    tables = [i for _, i in form.items() if i.kind == "table"]
    assert len(sections) == len(tables)  # every action table lets auditors add rows
    controls = {
        sdt.find(f"{W}sdtPr/{W}tag").get(f"{W}val"): sdt
        for sdt in body.iter(f"{W}sdt")
        if sdt.find(f"{W}sdtPr/{W}tag") is not None and sdt not in sections
    }
    assert set(controls) == {f.key for f in form.fields()} | {h.key for h in form.header}
    for field in form.fields():
        props = controls[field.key].find(f"{W}sdtPr")
        expected = {FieldKind.choice: "dropDownList", FieldKind.date: "date"}.get(field.kind)
        if expected:
            assert props.find(W + expected) is not None, field.key
        if field.scale:
            items = [i.get(f"{W}value") for i in props.iter(f"{W}listItem")]
            assert items == list(field.scale.choices)
    for header in form.header:  # pre-filled facts are locked
        lock = controls[header.key].find(f"{W}sdtPr/{W}lock")
        assert lock is not None and lock.get(f"{W}val") == "sdtContentLocked"
    assert (
        tagged_text(body, {"header.case_number"}, TextBudget())["header.case_number"]
        == case.case_number
    )


def test_xlsx_validations_protection_names_and_print_setup(form, tmp_path):
    case = make_cases(tmp_path, form, 1)[0]
    workbook = openpyxl.load_workbook(io.BytesIO(render(form, case, "xlsx")))
    sheet = workbook["Audit"]
    text = " ".join(
        " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value).split()
    )
    assert [i.label for _, i in form.items() if " ".join(i.label.split()) not in text] == []
    assert sheet.protection.sheet is True
    validated = {str(cell) for dv in sheet.data_validations.dataValidation for cell in dv.sqref}
    for field in form.fields():
        ((_sheet, ref),) = workbook.defined_names[defined_name(field.key)].destinations
        cell = sheet[ref.replace("$", "")]
        assert cell.protection.locked is False, field.key
        if field.kind is not FieldKind.text:
            assert ref.replace("$", "") in validated, field.key
    for dv in sheet.data_validations.dataValidation:
        assert dv.showErrorMessage and dv.error
    lists = {dv.formula1 for dv in sheet.data_validations.dataValidation if dv.type == "list"}
    assert all(f.scale.excel_list() in lists for f in form.fields() if f.scale)
    locked = [
        c for row in sheet.iter_rows() for c in row if c.value and c.protection.locked is False
    ]
    assert locked == []  # nothing pre-printed is editable
    assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.print_title_rows == "$1:$2"
    assert case.audit_id in sheet.oddFooter.left.text
    assert sheet["A2"].value.startswith(f"Audit ID: {case.audit_id}")


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
def test_identity_is_embedded_three_ways(fmt, tmp_path):
    form = get_form("csc")
    case = make_cases(tmp_path, form, 1)[0]
    data = render(form, case, fmt)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        custom = archive.read("docProps/custom.xml").decode()
        everything = " ".join(
            archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
        )
    for key, name in PROPERTY_NAMES.items():
        assert f'name="{name}"' in custom
        assert str(getattr(case, key if key != "form_version" else "form_version")) in custom
    identity = parse_visible(everything)
    assert identity is not None
    assert (identity.audit_id, identity.form_id, identity.form_version, identity.checksum) == (
        case.audit_id,
        "csc",
        form.version,
        case.checksum,
    )


def test_generation_is_byte_identical(tmp_path):
    form = get_form("foster_carer")
    cases = make_cases(tmp_path, form, 2)
    first = write_forms(form, cases, tmp_path / "a", ("docx", "xlsx"))
    second = write_forms(form, cases, tmp_path / "b", ("docx", "xlsx"))
    for one, two in zip(first, second, strict=True):
        assert one.path.read_bytes() == two.path.read_bytes()
    assert (tmp_path / "a/manifest.csv").read_bytes() == (tmp_path / "b/manifest.csv").read_bytes()
    assert render(form, cases[0], "docx") != render(form, cases[1], "docx")


def test_awkward_facts_are_escaped_not_interpreted(tmp_path):
    form = get_form("csc")
    row = {
        "case_number": "P-1",
        "family_name": "O'Brien & <Sons>",
        "given_names": "=1+1",
        "worker": "W\u00e9ndy \u2013 Worker",
        "manager": "M",
        "team": "T",
        "auditor": "A",
        "due_date": "30/11/2026",
    }
    case = load_cases(write_cases(tmp_path / "c.csv", [row]), form)[0]
    document = docx_text(render(form, case, "docx"))
    assert "O'Brien & <Sons>" in document and "W\u00e9ndy \u2013 Worker" in document
    sheet = openpyxl.load_workbook(io.BytesIO(render(form, case, "xlsx")))["Audit"]
    given = next(c for row in sheet.iter_rows() for c in row if c.value == "=1+1")
    assert given.data_type == "s"  # shown as text, never evaluated as a formula


def test_generate_writes_forms_and_manifest(tmp_path):
    form = get_form("early_help")
    cases = make_cases(tmp_path, form, 3)
    cases_csv = tmp_path / "early_help-cases.csv"
    produced = generate("early_help", cases_csv, tmp_path / "out", "both")
    assert len(produced) == 6
    manifest = (tmp_path / "out/manifest.csv").read_text().splitlines()
    assert manifest[0] == ",".join(MANIFEST_COLUMNS)
    assert len(manifest) == 7
    assert f"{cases[0].audit_id},{cases[0].case_number}," in manifest[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{c.audit_id}.{x}" for c in cases for x in ("docx", "xlsx")] + ["manifest.csv"]
    )
    # a second run for one more case keeps the earlier rows
    generate("early_help", cases_csv, tmp_path / "out", "docx")
    assert len((tmp_path / "out/manifest.csv").read_text().splitlines()) == 7


def test_regenerate_rebuilds_the_same_bytes_from_the_store(tmp_path):
    from formtool import store
    from formtool.generate import regenerate

    db = store.open_store(f"sqlite:///{tmp_path / 'g.db'}")
    form = get_form("csc")
    made = write_forms(
        form, make_cases(tmp_path, form, 3), tmp_path / "first", ("docx", "xlsx"), db=db
    )
    again = regenerate(db, "2026-11", tmp_path / "again", ("docx", "xlsx"))
    assert sorted(p.path.name for p in again) == sorted(p.path.name for p in made)
    assert all((tmp_path / "again" / p.path.name).read_bytes() == p.path.read_bytes() for p in made)


# --- the Excel sheet's printed pages -------------------------------------------------------


@pytest.mark.parametrize("form_id", SEED_TOOLS)
def test_every_excel_page_break_is_needed(form_id):
    """A page ends only where the rows that start the next did not fit, and they fit a page:
    a tall row shares a page when it fits (the Quality Practice checklist's question rows,
    taller than most of a page with the judge's comment under them, once each got a page)."""
    breaks = page_breaks(get_form(form_id))
    assert breaks
    assert [(used, needed) for used, needed in breaks if used + needed <= PAGE_HEIGHT] == []
    assert [needed for _, needed in breaks if needed > ROOM] == []


#: Landscape A4 pages each blank Excel tool prints on: Excel at 100%, and LibreOffice the same
#: pages (tests/test_print_pages.py). Before version 4 of the tools they printed on 18, 18, 19,
#: 16, 12 and 16 pages in LibreOffice; the Quality Practice checklist once took 15, each tall
#: question row on a page of its own. A change that moves a count: look at the printout, then
#: update it here.
EXCEL_PAGES = {
    "csc": 16,
    "early_help": 16,
    "foster_carer": 17,
    "prospective_adopter": 15,
    "quality_practice": 13,
    "supported_lodgings": 15,
}


@pytest.mark.parametrize("form_id", SEED_TOOLS)
def test_each_excel_tool_prints_on_its_pages(form_id, tmp_path):
    form = get_form(form_id)
    data = render(form, make_cases(tmp_path, form, 1)[0], "xlsx")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        breaks = package.read("xl/worksheets/sheet1.xml").count(b"<brk ")
    assert breaks + 1 == EXCEL_PAGES[form_id]


LONG_TABLE = """
id: long_table
version: 1
title: Long table
subject: child
source: synthetic
header: [{column: case_number, label: Case Number, required: true}]
sections:
  - id: checks
    title: Checks
    scale: yes_no
    answer_label: Yes/No
    evidence_label: Evidence
    items:
"""


def test_a_table_over_several_pages_has_its_column_headings_on_each(tmp_path):
    """Excel repeats only the title rows; the sheet writes a table's headings again at the
    top of each page it runs on to, as Word repeats a table's heading row."""
    questions = "".join(
        f"      - {{question: q{n}, label: Is check number {n} recorded on the file?}}\n"
        for n in range(1, 41)
    )
    (tmp_path / "long_table.yaml").write_text(LONG_TABLE + questions, encoding="utf-8")
    form = load_form(tmp_path / "long_table.yaml")
    case = make_cases(tmp_path, form, 1)[0]
    sheet = openpyxl.load_workbook(io.BytesIO(render(form, case, "xlsx")))["Audit"]
    starts = [b.id + 1 for b in sheet.row_breaks.brk]  # the first row of each later page
    assert len(starts) >= 2
    assert [sheet.cell(row, 1).value for row in starts] == ["Question"] * len(starts)
