"""Printed pages: every seed tool's Word and Excel form, printed through LibreOffice to PDF,
never leaves a heading alone at the foot of a page.

Each tool is printed blank and filled with long answers, all in one LibreOffice start for the
module (the suite's time is one conversion). A page fails when its last printed lines are a
section heading, a subheading or a header group heading ("Social Worker/Team Details"), or,
on the filled forms (where every answer row has text), a table's column-heading row. The
Excel tools also print exactly the pages the sheet's own breaks make: LibreOffice adds none.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from formtool import clock
from formtool.definitions import FormDefinition, get_form
from formtool.definitions.forms import case_heading
from formtool.definitions.layout import layout
from formtool.definitions.scales import FieldKind
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.generate import render
from formtool.read.cases import Case

from conftest import SEED_TOOLS, answers_for, convert, date_keys, make_cases, missing

pytestmark = pytest.mark.libreoffice

VARIANTS = ("blank", "long")
#: An answer long enough to fill its box and grow a Word row: every answer row prints text.
LONG = (
    "Seen on the file: the plan was reviewed on 03/11 and the worker visited twice; the "
    "child's views are recorded in their own words and the next steps are agreed. "
) * 2
#: The page header and footer lines (council, marking, identity, page number).
MARGIN_LINE = re.compile(r"OFFICIAL-SENSITIVE|Page \d+ of \d+|^Audit ID: ")


def long_answers(form: FormDefinition) -> dict[str, str]:
    """Every field answered, each text answer a long paragraph."""
    answers = answers_for(form)
    for field in form.fields():
        if field.kind is FieldKind.text:
            answers[field.key] = LONG
    return answers


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> dict[str, tuple[Case, list[str], Path]]:
    """ "<form>-<variant>.<fmt>" -> (its case, each printed page's text, the file printed)."""
    root = tmp_path_factory.mktemp("print")
    made: dict[str, tuple[Case, Path]] = {}
    for form_id in SEED_TOOLS:
        form = get_form(form_id)
        case = make_cases(root, form, 1)[0]
        answers = long_answers(form)
        for fmt in ("docx", "xlsx"):
            blank = render(form, case, fmt)
            filled = (
                fill_docx(blank, answers)
                if fmt == "docx"
                else fill_xlsx(blank, answers, date_keys(form))
            )
            for variant, data in zip(VARIANTS, (blank, filled), strict=True):
                path = root / f"{form_id}-{variant}-{fmt}.{fmt}"  # one PDF folder for all
                path.write_bytes(data)
                made[f"{form_id}-{variant}.{fmt}"] = (case, path)
    pdfs = convert([p for _, p in made.values()], "pdf", root / "pdf")  # one LibreOffice start
    return {
        name: (case, page_texts(pdf), path)
        for (name, (case, path)), pdf in zip(made.items(), pdfs, strict=True)
    }


def page_texts(pdf: Path) -> list[str]:
    """Each page's text as printed, line by line (poppler's pdftotext: pypdf's layout mode
    takes fifty times as long)."""
    program = shutil.which("pdftotext") or missing("pdftotext (poppler-utils) is not installed")
    laid_out = subprocess.run(
        [program, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    return laid_out.split("\f")[:-1]  # a form feed ends each page


def body_lines(page: str) -> list[str]:
    """A page's printed lines without its header and footer, trailing blank lines dropped."""
    lines = [line.rstrip() for line in page.splitlines() if not MARGIN_LINE.search(line)]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def section_headings(form: FormDefinition, case: Case) -> set[str]:
    """The headings, subheadings and header group headings the form prints for `case`."""
    found = set()
    for block in layout(form).blocks:
        if block.kind in ("heading", "subheading"):
            found.add(words(block.text))
        for row in block.rows:
            found |= {
                words(case_heading(c.text, case.facts, clock.today()))
                for c in row.cells
                if c.kind == "group"
            }
    return found


def column_headings(form: FormDefinition) -> list[list[str]]:
    """Each table's column-heading row: its cells' texts, in words."""
    return [
        [words(c.text) for c in row.cells if c.text]
        for block in layout(form).tables
        for row in block.rows
        if row.header
    ]


def ends_with_heading(lines: list[str], headings: set[str]) -> str:
    """The heading the page's last one to three lines print, alone, if they do."""
    for count in (1, 2, 3):
        tail = words(" ".join(line.strip() for line in lines[-count:]))
        if tail in headings:
            return tail
    return ""


def is_column_heading_line(line: str, rows: list[list[str]]) -> bool:
    """Whether a printed line is the foot of a column-heading row: each of its cells is part
    of one heading of the same row, and one of them ends its heading."""
    cells = [words(cell) for cell in re.split(r"\s{2,}", line.strip()) if words(cell)]
    for row in rows:
        inside = cells and all(any(cell in head for head in row) for cell in cells)
        if inside and any(head.endswith(cell) for cell in cells for head in row):
            return True
    return False


def stranded(form: FormDefinition, case: Case, pages: list[str], variant: str) -> list[str]:
    """ "page N: <what>" for every page but the last that ends with a heading."""
    headings, rows = section_headings(form, case), column_headings(form)
    found = []
    for number, page in enumerate(pages[:-1], start=1):
        lines = body_lines(page)
        if not lines:
            continue
        heading = ends_with_heading(lines, headings)
        if heading:
            found.append(f"page {number}: heading {heading!r}")
        elif variant == "long" and is_column_heading_line(lines[-1], rows):
            found.append(f"page {number}: column headings {lines[-1].strip()!r}")
    return found


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("form_id", SEED_TOOLS)
def test_no_page_ends_with_a_heading(printed, form_id, variant, fmt):
    case, pages, _ = printed[f"{form_id}-{variant}.{fmt}"]
    assert stranded(get_form(form_id), case, pages, variant) == []


@pytest.mark.parametrize("form_id", SEED_TOOLS)
def test_excel_prints_the_pages_its_breaks_make(printed, form_id):
    """Every page break is the sheet's: LibreOffice (which prints the columns smaller than
    Excel does) needs none of its own, so both print the same pages."""
    for variant in VARIANTS:
        _, pages, path = printed[f"{form_id}-{variant}.xlsx"]
        with zipfile.ZipFile(path) as package:
            breaks = package.read("xl/worksheets/sheet1.xml").count(b"<brk ")
        assert (variant, len(pages)) == (variant, breaks + 1)


@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
@pytest.mark.parametrize("form_id", SEED_TOOLS)
def test_blank_form_exports_to_pdf(printed, form_id, fmt):
    case, pages, _ = printed[f"{form_id}-blank.{fmt}"]
    assert len(pages) >= 2
    assert case.audit_id in pages[0]
    assert get_form(form_id).title.split()[0] in pages[0]
