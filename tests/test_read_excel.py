"""The Excel reader stores what Excel shows the auditor: strings without comments or phonetic
guides, numbers through their cell's number format, Word's date spellings and serials typed
as text in date answers; and refuses answers on hidden sheets, two candidates for one answer
and a sheet copied into a new workbook (the patterns are in tests/excel_patterns.py)."""

from __future__ import annotations

import datetime as dt
import time

import excel_patterns as patterns
import pytest

from formtool.definitions import FormDefinition, get_form
from formtool.definitions.scales import FieldKind, parse_date
from formtool.demo.fill import fill_xlsx
from formtool.errors import Rejected
from formtool.generate import render
from formtool.read import read_bytes
from formtool.read.numfmt import general, shown
from formtool.read.validate import validate_return

from conftest import answers_for, date_keys, make_cases

FORM = "quality_practice"  # the smallest form with text and date answers


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[FormDefinition, bytes]:
    form = get_form(FORM)
    case = make_cases(tmp_path_factory.mktemp("excel"), form, 1)[0]
    return form, fill_xlsx(render(form, case, "xlsx"), answers_for(form), date_keys(form))


def _read(data: bytes, key: str) -> str:
    return read_bytes(data, ".xlsx").values[key]


@pytest.mark.parametrize("pattern", patterns.PATTERNS, ids=lambda p: p.name)
def test_each_pattern_is_stored_as_excel_shows_it_or_refused(filled, pattern):
    form, data = filled
    key = patterns.key_for(form, pattern.kind)
    built, expected = pattern.build(data, form, key)
    if expected.refused:
        with pytest.raises(Rejected) as refused:
            read_bytes(built, ".xlsx")
        assert refused.value.code.label == expected.refused
        assert expected.field is None or refused.value.field == expected.field
        return
    raw = read_bytes(built, ".xlsx")
    assert raw.values[key] == expected.stored
    if pattern.kind is FieldKind.date:  # and validation reads it as the date it shows
        issues = validate_return(raw, "r.xlsx").issues
        assert [i for i in issues if i.field == key] == []
        assert parse_date(raw.values[key]) == dt.date(2026, 11, 20)


def test_refusals_name_the_sheet_and_the_two_candidates(filled):
    form, data = filled
    key = patterns.key_for(form, FieldKind.text)
    with pytest.raises(Rejected) as hidden:
        read_bytes(patterns.very_hidden_sheet(data, form, key)[0], ".xlsx")
    assert hidden.value.value == "Audit (2)"
    with pytest.raises(Rejected) as twice:
        read_bytes(patterns.duplicate_name(data, form, key)[0], ".xlsx")
    assert "'Audit'!$A$1" in twice.value.value
    with pytest.raises(Rejected) as cell:
        read_bytes(patterns.duplicate_cell(data, form, key)[0], ".xlsx")
    assert cell.value.value == f"cell {patterns.answer_cell(data, key)} written twice"


def test_a_hidden_sheet_the_answers_are_not_on_does_not_matter(filled):
    """formtool's own workbooks have one visible sheet; a hidden sheet of lists or notes
    added beside it, with the names still on the visible sheet, reads as before."""
    form, data = filled
    key = patterns.key_for(form, FieldKind.text)
    parts = patterns.parts_of(patterns.very_hidden_sheet(data, form, key)[0])
    book = parts[patterns.WORKBOOK].replace(b"'Audit (2)'!", b"'Audit'!")
    parts[patterns.WORKBOOK] = book
    assert _read(patterns.package(parts), key) == _read(data, key)
    book = patterns.parts_of(data)[patterns.WORKBOOK]
    assert b"hidden" not in book.replace(b'visibility="visible"', b"")


def test_a_serial_typed_as_text_is_a_date_only_in_the_validation_range(filled):
    form, data = filled
    key = patterns.key_for(form, FieldKind.date)
    ref = patterns.answer_cell(data, key)
    for typed, stored in (("46346", "20/11/2026"), ("2026", "2026"), ("46346.5", "46346.5")):
        parts = patterns.parts_of(data)
        patterns._replace_cell(parts, ref, f"<is><t>{typed}</t></is>", t="inlineStr")
        assert _read(patterns.package(parts), key) == stored


def test_a_1904_workbook_shows_dates_in_text_answers_from_its_own_epoch(filled):
    form, data = filled
    key = patterns.key_for(form, FieldKind.text)
    built, _ = patterns.date_in_text_answer(data, form, key)
    parts = patterns.parts_of(built)
    parts[patterns.WORKBOOK] = parts[patterns.WORKBOOK].replace(
        b"<workbookPr/>", b'<workbookPr date1904="1"/>'
    )
    assert _read(patterns.package(parts), key) == "06/11/2030"  # 46331 days after 1/1/1904


def test_styles_are_read_within_bounds(filled):
    """A styles part with 15,000 cell formats, a format code of 5,000 characters and a style
    index past its table: streamed, shown as Excel would (General when it has no format)."""
    form, data = filled
    key = patterns.key_for(form, FieldKind.text)
    ref = patterns.answer_cell(data, key)
    parts = patterns.parts_of(data)
    styles = parts[patterns.STYLES].decode()
    many = '<xf numFmtId="9" fontId="0" fillId="0" borderId="0"/>' * 15_000
    long_code = '<xf numFmtId="170" fontId="0" fillId="0" borderId="0"/>'
    styles = styles.replace("</cellXfs>", many + long_code + "</cellXfs>")
    styles = styles.replace(
        '<numFmts count="1">',
        f'<numFmts count="2"><numFmt numFmtId="170" formatCode="{"0" * 5000}"/>',
    )
    parts[patterns.STYLES] = styles.encode()
    first = len(_xfs(parts))
    assert first > 15_000
    for style, expected in ((first - 2, "75%"), (first - 1, "0.75"), (999_999_999, "0.75")):
        patterns._replace_cell(parts, ref, "<v>0.75</v>", s=str(style))
        started = time.process_time()
        assert _read(patterns.package(parts), key) == expected
        assert time.process_time() - started < 5


def _xfs(parts: dict[str, bytes]) -> list:
    styles = patterns.xml(parts[patterns.STYLES])
    return list(styles.find(f"{{{patterns.S}}}cellXfs"))


@pytest.mark.parametrize(
    ("value", "code", "expected"),
    [
        (46331, "dd/mm/yyyy", "05/11/2026"),
        (46331, "d-mmm-yy", "05/11/2026"),  # a whole date: formtool's date text
        (46331, "mmm-yy", "Nov-26"),  # part of a date: as Excel shows it
        (46331, "d-mmm", "5-Nov"),
        (46346, "dddd", "Friday"),
        (46331.5, "dd/mm/yyyy hh:mm", "05/11/2026 12:00"),
        (0.5, "h:mm AM/PM", "12:00 PM"),
        (1.5, "[h]:mm:ss", "36:00:00"),
        (0.755, "0.00%", "75.50%"),
        (2.675, "0.00", "2.68"),  # Excel rounds its 15 digits, not the binary fraction
        (1234567.891, "#,##0.00", "1,234,567.89"),
        (-1234.5, "#,##0.00;(#,##0.00)", "(1,234.50)"),
        (0, '0;-0;"-"', "-"),
        (0.5, "#.##", ".5"),
        (1234567, "0.00E+00", "1.23E+06"),
        (1234567, "##0.0E+0", "1.2E+6"),
        (1.5, "# ?/?", "1 1/2"),
        (5.25, "# ?/4", "5 1/4"),
        (1234.5, "[$£-809]#,##0.00", "£1,234.50"),
        (-5, '"£"#,##0;\\-"£"#,##0', "-£5"),
        (150, '[>100]"big";0', "big"),
        (5551234, "000-0000", "555-1234"),
        (1234567, "0,", "1235"),
        (0.3, "@", "0.3"),
        (-3, '"x"General', "-x3"),
    ],
)
def test_number_formats_show_what_excel_shows(value, code, expected):
    assert shown(value, code) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1 + 0.2, "0.3"),
        (1 / 3, "0.333333333"),
        (-1 / 3, "-0.333333333"),
        (10 / 3, "3.333333333"),
        (123456.789123, "123456.7891"),
        (99999999999, "99999999999"),
        (99999999999.5, "1E+11"),
        (123456789012, "1.23457E+11"),
        (484079807176, "4.8408E+11"),
        (0.0001234567, "0.000123457"),
        (0.00001234567, "1.23457E-05"),
        (0.00001, "0.00001"),
        (1e20, "1E+20"),
    ],
)
def test_general_shows_at_most_eleven_characters(value, expected):
    assert general(value) == expected


def test_hostile_formats_show_the_number_not_a_traceback():
    for code in ("0.00E+00", "# ?/" + "?" * 300, "[>.]0", "0" * 300, '"unclosed', "[h]:mm"):
        for value in (5e-324, 1e308, -1e308, 3e6):
            assert isinstance(shown(value, code), str)


# ---- the shared date parsing: both readers and the case lists -------------------------------


@pytest.mark.parametrize("typed", [*patterns.WORD_SPELLINGS, "Fri 20 Nov 2026", "20 Sept 2026"])
def test_word_date_box_spellings_are_dates(typed):
    assert parse_date(typed) in (dt.date(2026, 11, 20), dt.date(2026, 9, 20))


@pytest.mark.parametrize(
    "typed",
    ["11/20/2026", "Thursday, 20 November 2026", "Nov-26", "20/11", "46346", "\u0662\u0660.11.26"],
)
def test_us_order_wrong_weekdays_and_part_dates_are_not_dates(typed):
    assert parse_date(typed) is None


def test_the_spellings_accepted_before_keep_their_dates():
    assert [
        parse_date(t)
        for t in ("2026-11-05", "05/11/2026", "5/1/2026", "05/11/26", "05/11/99", "05-11-2026")
    ] == [
        dt.date(2026, 11, 5),
        dt.date(2026, 11, 5),
        dt.date(2026, 1, 5),
        dt.date(2026, 11, 5),
        dt.date(1999, 11, 5),  # a case list's date of birth
        dt.date(2026, 11, 5),
    ]
    assert [parse_date(t) for t in ("05.11.2026", "5 November 2026", "5 Nov 2026")] == [
        dt.date(2026, 11, 5)
    ] * 3
    assert parse_date("2026-11-20T00:00:00Z") == dt.date(2026, 11, 20)
