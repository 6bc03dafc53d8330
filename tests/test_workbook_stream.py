"""The PMU workbook's long sheets, streamed as worksheet XML (packs/sheet_stream.py): read back
by openpyxl and by LibreOffice as written, text kept as text whatever it looks like, dates as
dates, the filter, frozen pane and widths as XlsxWriter's; the answers read a chunk of audits at
a time; a sheet longer than Excel holds goes to a CSV file beside the workbook."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import importlib.util
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from formtool import store
from formtool.packs import pmu, sheet_stream
from formtool.packs import workbook as workbook_module
from formtool.packs.export import csv_safe
from formtool.packs.figures import PmuFigures, load_figures
from formtool.packs.pmu import pmu_pack
from formtool.packs.workbook import workbook, write_workbook
from formtool.periods import period_for

from conftest import convert

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2027, 1, 5)
#: Text an auditor might type that a careless writer would turn into something else.
HOSTILE = (
    "a\x01b\x0bc",  # control characters: not allowed in XML as they are
    "_x0041_ stays as typed",  # reads as Excel's own escape
    '=HYPERLINK("http://x","y")',
    "+44 1234",
    "0012",
    "1e5",
    " leading and trailing ",
    "<b>&amp;</b> \"quoted\" 'single'",
    "é 😀",
    "x" * 40_000,  # longer than a cell holds: cut at 32,767 as XlsxWriter cuts it
)


def _seed(engine: Any, count: int) -> None:
    """bench/pack.py's synthetic quarter (its seed is what the benchmark measures)."""
    spec = importlib.util.spec_from_file_location("bench_pack", ROOT / "bench" / "pack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed(engine, count)


def _cut(text: str) -> str:
    return text[: sheet_stream.TEXT_MAX]


@pytest.fixture(scope="module")
def quarter(tmp_path_factory):
    """A store of 12 audits (10 complete), and its figures with hostile text in the first
    complete audit's answers and evidence."""
    tmp = tmp_path_factory.mktemp("stream")
    db = store.open_store(f"sqlite:///{tmp / 'bench.db'}")
    _seed(db.engine, 12)
    figures = load_figures(db, period_for(quarter="2026-Q3"), AS_OF)
    read = figures.load_answers or (lambda ids: {i: figures.answers[i] for i in ids})
    first = figures.completed[0].return_id
    keys = [q.key for q in figures.completed[0].form.questions()][: len(HOSTILE)]

    def hostile(ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
        found = read(ids)
        if first in found:
            found[first] = dict(found[first]) | dict(
                zip(keys, ((h, h) for h in HOSTILE), strict=True)
            )
        return found

    figures.load_answers = hostile
    book = tmp / "pmu.xlsx"
    book.write_bytes(workbook(figures, include_names=True))
    expected = list(workbook_module._answers(figures, include_names=True).rows())
    return db, figures, book, expected, tmp


def test_long_sheets_read_back_in_openpyxl_with_text_as_text(quarter):
    _, figures, book, expected, _ = quarter
    loaded = openpyxl.load_workbook(book)
    answers = loaded["Answers"]
    assert len(expected) > 400 and answers.max_row == len(expected) + 1
    assert answers.auto_filter.ref == f"A1:J{len(expected) + 1}" and answers.freeze_panes == "A2"
    rows = list(answers.iter_rows(min_row=2))
    escaped = re.compile(r"[\x00-\x1f]|_x[0-9A-F]{4}_")  # openpyxl leaves these as stored
    for row, want in zip(rows, expected, strict=True):
        for cell, value in zip(row, want, strict=True):
            if escaped.search(value):
                continue  # LibreOffice reads them back (below)
            assert (cell.value or "") == _cut(value)
            assert cell.value is None or cell.data_type == "s"  # never a number or formula
    cells = [c.value for row in rows for c in row]
    assert all(_cut(h) in cells for h in HOSTILE[2:])
    widths = {c: answers.column_dimensions[c].width for c in "ABFJ"}
    assert widths == {"A": 15.7109375, "B": 9.7109375, "F": 70.7109375, "J": 70.7109375}
    audits = loaded["Audits"]
    assert audits.max_row == len(figures.audits) + 1
    due = audits["G2"]
    assert due.is_date and due.number_format == "dd/mm/yyyy"
    assert due.value.date() == figures.audits[0].due_date
    assert loaded["Action tracker"].max_row == len(figures.actions) + 1


@pytest.mark.libreoffice
def test_long_sheets_read_back_through_libreoffice(quarter):
    _, figures, book, expected, tmp = quarter
    # every sheet to its own CSV file, cells as shown
    every_sheet = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
    convert([book], every_sheet, tmp / "lo")
    with (tmp / "lo" / f"{book.stem}-Answers.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "Evidence"
    assert rows[1:] == [[_cut(v) for v in row] for row in expected]
    assert {_cut(h) for h in HOSTILE} <= {v for row in rows for v in row}
    with (tmp / "lo" / f"{book.stem}-Audits.csv").open(encoding="utf-8", newline="") as f:
        audits = list(csv.reader(f))
    assert len(audits) == len(figures.audits) + 1
    assert audits[1][6] == figures.audits[0].due_date.strftime("%d/%m/%Y")


class _Gone(dict[int, dict[str, tuple[str, str]]]):
    """Figures' answers held in memory: the workbook must not read them."""

    def __getitem__(self, key: object) -> Any:
        raise AssertionError("the workbook read answers from memory")

    def get(self, key: object, default: object = None) -> Any:
        raise AssertionError("the workbook read answers from memory")


def test_answers_are_read_a_chunk_of_audits_at_a_time(quarter, monkeypatch):
    _, figures, _, expected, _ = quarter
    asked: list[list[int]] = []
    read = figures.load_answers
    assert read is not None

    def recorded(ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
        asked.append(ids)
        return read(ids)

    chunked: PmuFigures = copy.copy(figures)
    chunked.answers = _Gone()
    chunked.load_answers = recorded
    monkeypatch.setattr(workbook_module, "ANSWER_CHUNK", 4)
    data = workbook(chunked, include_names=True)
    assert [len(ids) for ids in asked] == [4, 4, 2]
    assert sorted(i for ids in asked for i in ids) == sorted(a.return_id for a in figures.completed)
    answers = openpyxl.load_workbook(io.BytesIO(data))["Answers"]
    assert [c.value or "" for c in answers[len(expected) + 1]] == list(expected[-1])


def test_a_sheet_longer_than_excel_holds_goes_to_a_csv_beside_the_workbook(quarter, monkeypatch):
    db, figures, _, expected, tmp = quarter
    monkeypatch.setattr(sheet_stream, "MAX_ROWS", 101)  # 100 rows below the header
    monkeypatch.setattr(pmu, "to_pdf", lambda document: b"")  # the workbook's test: fast
    monkeypatch.setattr(pmu, "to_docx", lambda document: b"")
    written = pmu_pack(db, tmp / "pack", quarter="2026-Q3", as_of=AS_OF, include_names=True)
    assert [p.name for p in written] == [
        "pmu-2026-Q3.docx",
        "pmu-2026-Q3.pdf",
        "pmu-2026-Q3.xlsx",
        "pmu-2026-Q3-answers.csv",
    ]
    with written[3].open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["Audit ID", "Tool"] and len(rows) == len(expected) + 1
    book = openpyxl.load_workbook(written[2])
    note = (
        f"The Answers sheet's {len(expected):,} rows are in pmu-2026-Q3-answers.csv beside"
        " this workbook: an Excel sheet holds at most 100."
    )
    assert book["Summary"]["A4"].value == note and book["Answers"]["A1"].value == note
    assert book["Audits"].max_row == len(figures.audits) + 1  # short enough: in the workbook
    # the hostile text quoted where it starts like a formula, as the export's CSV
    path = tmp / "hostile.xlsx"
    assert write_workbook(figures, path, include_names=True)[1] == tmp / "hostile-answers.csv"
    with (tmp / "hostile-answers.csv").open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f))[1:] == [[csv_safe(v) for v in row] for row in expected]
    # without a folder beside it (the web workspace's download): the first rows, and why
    cut = openpyxl.load_workbook(io.BytesIO(workbook(figures, include_names=True)))
    assert cut["Answers"].max_row == 101
    assert cut["Summary"]["A4"].value.startswith("The Answers sheet holds the first 100 of its")


def test_a_pack_that_fits_again_leaves_no_stale_csv_and_a_failed_one_none(quarter, monkeypatch):
    """An earlier, longer pack's CSV beside the workbook is removed when the new one fits (it
    would contradict the workbook), and a pack that fails part way leaves no CSV of
    children's answers behind untracked."""
    _db, figures, _, _expected, tmp = quarter
    path = tmp / "again.xlsx"
    monkeypatch.setattr(sheet_stream, "MAX_ROWS", 101)
    assert write_workbook(figures, path)[1:] == [tmp / "again-answers.csv"]
    monkeypatch.setattr(sheet_stream, "MAX_ROWS", 1_048_576)
    assert write_workbook(figures, path)[1:] == [] and not (tmp / "again-answers.csv").exists()
    monkeypatch.setattr(sheet_stream, "MAX_ROWS", 101)

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(type(path), "write_bytes", broken)
    with pytest.raises(OSError):
        write_workbook(figures, path)
    assert not (tmp / "again-answers.csv").exists()
