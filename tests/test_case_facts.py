"""Facts from a case list come back from an untouched form exactly as they went in, whatever
line endings the list had (CRLF, CR, LF), so a form never fails its own import check."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.read.batch import import_paths
from formtool.read.cases import cell_text
from formtool.store import queries

HEADER = "case_number,family_name,given_names,worker,manager,team,auditor,due_date"
#: A CSV with line breaks inside quoted cells, as Excel on Windows writes them (CRLF), an old
#: Mac (CR) and everything else (LF); the rows themselves end in CRLF.
CSV_BYTES = (
    HEADER.encode() + b"\r\n"
    b'P1,"Smith\r\nJones","Sam\rAlex",W,M,"Team A\r\nNorth",A,2026-11-30\r\n'
    b'P2,"Lee\nKim",Jo,"Worker\r\r\nB",M,T,A,2026-11-30\r\n'
)


def write_xlsx(path: Path) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(
        ["P1", "Smith\r\nJones", "Sam\rAlex", "W", "M", "Team A\r\nNorth", "A", "2026-11-30"]
    )
    sheet.append(["P2", "Lee\nKim", "Jo", "Worker\r\r\nB", "M", "T", "A", "2026-11-30"])
    workbook.save(path)
    return path


@pytest.mark.parametrize("source", ["csv", "xlsx"])
@pytest.mark.parametrize("fmt", ["docx", "xlsx"])
def test_an_untouched_form_reads_back_whatever_line_endings_the_case_list_had(
    tmp_path, fmt, source
):
    cases = tmp_path / f"cases.{source}"
    if source == "csv":
        cases.write_bytes(CSV_BYTES)
    else:
        write_xlsx(cases)
    db_file = f"sqlite:///{tmp_path / 'f.db'}"
    out = tmp_path / "out"
    args = ["generate", "--form", "csc", "--cases", str(cases), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--format", fmt, "--db", db_file])
    assert result.exit_code == 0, result.output
    db = store.open_store(db_file)
    outcomes = import_paths(db, sorted(out.glob(f"*.{fmt}")))
    # Untouched: the facts check passes (an altered fact would be `facts-altered`), and the
    # form is refused as returned blank, which is all there is to say about it.
    assert [(o.status, [i.code.label for i in o.issues]) for o in outcomes] == [
        ("rejected", ["returned-blank"]),
        ("rejected", ["returned-blank"]),
    ]
    with db.engine.connect() as conn:
        facts = {r.case_number: store.audit_facts(r) for r in queries.audit_rows(conn)}
    assert facts["P1"]["family_name"] == "Smith\nJones"
    assert facts["P1"]["given_names"] == "Sam\nAlex"
    assert facts["P1"]["team"] == "Team A\nNorth"
    assert facts["P2"]["worker"] == "Worker\n\nB"


def test_cell_text_is_what_word_and_excel_give_back():
    assert cell_text("  a\r\nb\rc\nd  ") == "a\nb\nc\nd"
    assert cell_text("tab\tkept\x0b\x0cgone\x00\x1f\ufffe") == "tab\tkeptgone"
