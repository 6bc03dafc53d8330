"""The demo made fast (issue 24). Its Excel filler types answers as openpyxl saved them (inline
strings, dates as day numbers in their cell's date format) by rewriting the sheet's XML, without
openpyxl's restyling of every merged cell (~140 ms a workbook) and without stamping the
machine's clock; and the demo collects cycles less often while it runs."""

from __future__ import annotations

import gc
import io
import re
import zipfile

import pytest

from formtool.definitions import FormDefinition, get_form
from formtool.definitions.identity import defined_name
from formtool.demo import run
from formtool.demo.fill import fill_xlsx
from formtool.generate import render
from formtool.read import read_bytes

from conftest import answers_for, date_keys, make_cases

FORM = "quality_practice"  # the smallest form with text and date answers


@pytest.fixture(scope="module")
def blank(tmp_path_factory) -> tuple[FormDefinition, bytes]:
    form = get_form(FORM)
    case = make_cases(tmp_path_factory.mktemp("fill"), form, 1)[0]
    return form, render(form, case, "xlsx")


def parts(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {n: archive.read(n).decode() for n in archive.namelist() if n.endswith("xml")}


def cell_xml(data: bytes, key: str) -> str:
    """The <c> element of the cell named after `key`."""
    xml = parts(data)
    name = rf'<definedName name="{defined_name(key)}">[^!]+!([^<]+)<'
    [ref] = re.findall(name, xml["xl/workbook.xml"])
    cell = rf'<c r="{ref.replace("$", "")}"[^>]*?(/>|>.*?</c>)'
    found = re.search(cell, xml["xl/worksheets/sheet1.xml"], re.S)
    assert found, ref
    return found[0]


def test_answers_are_typed_as_excel_saves_them(blank):
    form, data = blank
    answers = answers_for(form)
    text_key = next(k for k, v in answers.items() if "SUM" in v)
    date_key = sorted(date_keys(form))[0]
    before = cell_xml(data, date_key)
    filled = fill_xlsx(data, answers | {date_key: "05/12/2026"}, date_keys(form))
    assert read_bytes(filled, ".xlsx").values[text_key] == answers[text_key]
    assert read_bytes(filled, ".xlsx").values[date_key] == "05/12/2026"
    assert ' t="inlineStr"' in cell_xml(filled, text_key)  # typed text, not a formula
    xml = parts(filled)
    style = re.search(r' s="(\d+)"', before)
    dated = cell_xml(filled, date_key)
    assert "<v>46361</v>" in dated and (style is None or style[0] in dated)  # 5 Dec 2026
    assert xml["docProps/core.xml"] == parts(data)["docProps/core.xml"]  # no clock stamped


def test_filling_again_replaces_and_empties_answers(blank):
    form, data = blank
    answers = answers_for(form)
    text_keys = [k for k, v in answers.items() if "SUM" in v][:2]
    first = fill_xlsx(data, answers, date_keys(form))
    again = fill_xlsx(first, {text_keys[0]: "changed", text_keys[1]: ""}, date_keys(form))
    values = read_bytes(again, ".xlsx").values
    assert (values[text_keys[0]], values.get(text_keys[1], "")) == ("changed", "")


def test_a_cell_the_sheet_left_out_is_made_in_its_place(blank):
    """LibreOffice leaves empty cells out of what it saves."""
    form, data = blank
    key = next(k for k, v in answers_for(form).items() if "SUM" in v)
    ref = cell_xml(data, key)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(n, archive.read(n)) for n in archive.namelist()]
    sheet = "xl/worksheets/sheet1.xml"
    saved = io.BytesIO()
    with zipfile.ZipFile(saved, "w") as archive:
        for name, content in members:
            archive.writestr(name, content.replace(ref.encode(), b"") if name == sheet else content)
    filled = fill_xlsx(saved.getvalue(), {key: "typed"})
    assert read_bytes(filled, ".xlsx").values[key] == "typed"
    made = re.search(r' r="([A-Z]+\d+)"', cell_xml(filled, key))
    assert made is not None
    [row] = [r for r in re.findall(r"<row .*?</row>", parts(filled)[sheet]) if made[0] in r]
    columns = [c for c, _ in re.findall(r'<c r="([A-Z]+)(\d+)"', row)]
    assert columns == sorted(columns, key=lambda c: (len(c), c))  # in its place in the row


def test_the_demo_collects_cycles_less_often_and_puts_the_rate_back():
    before = gc.get_threshold()
    with run._fewer_collections():
        assert gc.get_threshold() == run.DEMO_GC
    assert gc.get_threshold() == before
