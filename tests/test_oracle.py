"""LibreOffice as an oracle: every pattern of how Word, Excel and LibreOffice really write a
return (tests/word_patterns.py, excel_patterns.py, package_patterns.py) is built from
formtool's own filled forms, converted by LibreOffice in one batched call per kind (Word to
text, Excel to CSV "as shown"), and what formtool stores for the pattern's answer must be
what LibreOffice shows, or the file must be refused with its code.

LibreOffice is not Word. Its known differences are applied, never ignored in silence: each
pattern that differs names its entry in the builders' own lists (the Word builders say what
LibreOffice shows instead; Excel's are compared as dates where both show a date in their own
way), and the few where LibreOffice cannot be asked at all are listed in NOT_ASKED with why.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import excel_patterns
import package_patterns
import pytest
import word_patterns

from formtool.definitions import FormDefinition, get_form
from formtool.definitions.scales import FieldKind
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.errors import Rejected
from formtool.generate import render
from formtool.read import read_bytes

from conftest import answers_for, date_keys, make_cases, soffice

pytestmark = pytest.mark.libreoffice

#: Excel patterns LibreOffice cannot be asked about, and why (formtool's value is still
#: checked against what Excel shows, in tests/test_read_excel.py).
NOT_ASKED = {
    "general-long-number": "LibreOffice's General shows as many digits as the column allows",
    "serial-as-text": "both show the text; formtool stores the date it stands for",
}
CSV_AS_SHOWN = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true"


@dataclass
class Case:
    """One pattern's file, the answer it is about, and what formtool and Office make of it."""

    name: str
    path: Path
    key: str
    cell: str = ""  # Excel: the answer's cell
    stored: str = ""  # what formtool must store for the key
    shown: str | None = ""  # what LibreOffice shows for it (None: not asked, see NOT_ASKED)
    refused: str = ""  # the code formtool must refuse the file with
    date: bool = False  # compare as dates: each program shows a date its own way
    kind: str = "docx"  # what the file really is (a package pattern may name a .docx .xlsx)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _word_cases(folder: Path, form: FormDefinition, data: bytes) -> list[Case]:
    cases = []
    for name, pattern in word_patterns.PATTERNS.items():
        key = next(k for k in _keys(form) if pattern.applies(form, k))
        built = pattern.build(data, form, key)
        path = folder / f"word-{name}.docx"
        path.write_bytes(built.data)
        shown = built.libreoffice if built.libreoffice is not None else built.expected
        assert built.libreoffice is None or built.difference in (
            word_patterns.KNOWN_LIBREOFFICE_DIFFERENCES
        ), name
        cases.append(Case(name, path, key, "", built.expected, shown, built.refused, kind="docx"))
    return cases


def _keys(form: FormDefinition) -> list[str]:
    from formtool.definitions.layout import layout

    return list(layout(form).positions)


def _excel_cases(folder: Path, form: FormDefinition, data: bytes) -> list[Case]:
    cases = []
    for pattern in excel_patterns.PATTERNS:
        key = excel_patterns.key_for(form, pattern.kind)
        built, expected = pattern.build(data, form, key)
        path = folder / f"excel-{pattern.name}.xlsx"
        path.write_bytes(built)
        shown = None if pattern.name in NOT_ASKED or expected.refused else expected.shown
        cell = "" if expected.refused else excel_patterns.answer_cell(built, key)
        is_date = pattern.kind is FieldKind.date or "date" in pattern.name
        cases.append(
            Case(
                pattern.name,
                path,
                key,
                cell,
                expected.stored,
                shown,
                expected.refused,
                is_date,
                kind="xlsx",
            )
        )
    return cases


def _package_cases(folder: Path, filled: dict[str, bytes], keys: dict[str, str]) -> list[Case]:
    """Package patterns formtool must read (main part elsewhere, a zip comment, a .docx named
    .xlsx): the answer shows as in the untouched return (asked of LibreOffice for Word; a
    workbook's cell cannot be found by name once its parts are renamed)."""
    cases = []
    for pattern in package_patterns.PATTERNS:
        if pattern.code is not None:
            continue
        path = folder / f"package-{pattern.name}-{pattern.takes}{pattern.saved_as()}"
        path.write_bytes(pattern.build(filled[pattern.takes]))
        key = keys[pattern.takes]
        value = read_bytes(filled[pattern.takes], f".{pattern.takes}").values[key]
        shown = value if pattern.takes == "docx" else None
        cases.append(Case(pattern.name, path, key, "", value, shown, kind=pattern.takes))
    return cases


def _convert(files: list[Path], target: str, out: Path) -> None:
    """One soffice call for all the files, in a fresh profile and a UK locale (dates)."""
    assert files, f"nothing to convert to {target}"  # soffice would wait for ever
    out.mkdir(parents=True)
    subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation=file://{out / '.profile'}",
            "--headless",
            "--convert-to",
            target,
            "--outdir",
            str(out),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "LANG": "en_GB.UTF-8", "LC_ALL": "en_GB.UTF-8"},
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Case], Path]:
    folder = tmp_path_factory.mktemp("oracle")
    word, excel = get_form("csc"), get_form("quality_practice")
    filled = {}
    for form, kind in ((word, "docx"), (excel, "xlsx")):
        case = make_cases(folder, form, 1)[0]
        blank = render(form, case, kind)
        answers = answers_for(form)
        filled[kind] = (
            fill_docx(blank, answers)
            if kind == "docx"
            else fill_xlsx(blank, answers, date_keys(form))
        )
    cases = _word_cases(folder, word, filled["docx"])
    cases += _excel_cases(folder, excel, filled["xlsx"])
    keys = {"docx": "kss1.seen_alone", "xlsx": excel_patterns.key_for(excel, FieldKind.text)}
    cases += _package_cases(folder, filled, keys)
    out = folder / "shown"
    docx = [c.path for c in cases if c.kind == "docx" and c.shown is not None]
    xlsx = [c.path for c in cases if c.kind == "xlsx" and c.shown is not None]
    _convert(docx, "txt:Text (encoded):UTF8", out / "text")
    _convert(xlsx, CSV_AS_SHOWN, out / "csv")
    return cases, out


def _shown_in_text(out: Path, case: Case) -> str:
    text = out / "text" / f"{case.path.stem}.txt"
    assert text.exists(), f"LibreOffice did not open {case.path.name}"
    return _flat(text.read_text(encoding="utf-8-sig"))


def _shown_in_cell(out: Path, case: Case) -> str:
    table = out / "csv" / f"{case.path.stem}.csv"
    assert table.exists(), f"LibreOffice did not open {case.path.name}"
    with table.open(encoding="utf-8", newline="") as handle:  # quoted cells hold line breaks
        rows = list(csv.reader(handle))
    found = re.fullmatch(r"([A-Z]+)(\d+)", case.cell)
    assert found
    column = 0
    for letter in found[1]:
        column = column * 26 + ord(letter) - 64
    row = rows[int(found[2]) - 1]
    return row[column - 1] if column - 1 < len(row) else ""


def test_the_corpus_covers_every_pattern(corpus):
    cases, _ = corpus
    names = {c.name for c in cases}
    assert set(word_patterns.PATTERNS) <= names
    assert {p.name for p in excel_patterns.PATTERNS} <= names
    asked = [c for c in cases if c.shown is not None]
    assert len(asked) >= 45  # most patterns are put to LibreOffice, not just read


def test_what_formtool_stores_is_what_libreoffice_shows(corpus):
    cases, out = corpus
    wrong = []
    for case in cases:
        suffix = case.path.suffix
        try:
            stored = read_bytes(case.path.read_bytes(), suffix).values[case.key]
        except Rejected as refused:
            if refused.code.label != case.refused:
                wrong.append(f"{case.name}: refused as {refused.code.label}")
            continue
        if case.refused:
            wrong.append(f"{case.name}: read, though it must be refused as {case.refused}")
            continue
        if stored != case.stored:
            wrong.append(f"{case.name}: stored {stored!r}, Office shows {case.stored!r}")
        if case.shown is None or not case.shown.strip():
            continue  # not asked (NOT_ASKED), or an empty answer: nothing to find
        if case.kind == "docx":
            if _flat(case.shown) not in _shown_in_text(out, case):
                wrong.append(f"{case.name}: LibreOffice does not show {case.shown!r}")
        else:
            cell = _shown_in_cell(out, case)
            same = (
                excel_patterns.as_date(cell) == excel_patterns.as_date(case.shown)
                if case.date
                else cell == case.shown
            )
            if not same:
                wrong.append(f"{case.name}: LibreOffice shows {cell!r}, expected {case.shown!r}")
    assert wrong == []
