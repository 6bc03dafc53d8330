"""Hostile and broken returns: one code and one line each, the batch goes on, the database
untouched, and memory bounded by construction."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hostile_files import (
    LAUGHS,
    OLE,
    XXE,
    bookmark_bomb,
    corrupt_deflate,
    future_zip_version,
    hidden_macros,
    member,
    shared_string_bomb,
    utf16_xxe,
    with_member,
    wrong_directory_offset,
    zip_bomb,
)

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.definitions.identity import defined_name
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.generate import write_forms
from formtool.read.batch import import_paths

from conftest import date_keys, make_cases

TODAY = dt.date(2026, 11, 22)


@pytest.fixture
def forms(tmp_path, db):
    form = get_form("csc")
    made = write_forms(
        form, make_cases(tmp_path, form, 3), tmp_path / "forms", ("docx", "xlsx"), db=db
    )
    docx = [m for m in made if m.format == "docx"]
    xlsx = [m for m in made if m.format == "xlsx"]
    return db, form, docx, xlsx


def counts(db) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (store.returns, store.answers, store.actions, store.grades, store.events)
        }


def run_batch(db, folder: Path, bad: dict[str, bytes], good: bytes) -> dict:
    """Write the bad files and, after them in name order, one good return; import all."""
    folder.mkdir(exist_ok=True)
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / "zz-good.docx").write_bytes(good)
    before = counts(db)
    outcomes = {Path(o.file).name: o for o in import_paths(db, [folder], TODAY)}
    good_outcome = outcomes.pop("zz-good.docx")
    assert good_outcome.status == "imported", good_outcome.issues
    after = counts(db)
    assert after["returns"] == before["returns"] + 1  # only the good file was stored
    return outcomes


def assert_rejected(outcome, code: str, text: str, folder: Path) -> None:
    [issue] = outcome.issues
    assert (outcome.status, issue.code.label) == ("rejected", code), issue.message
    assert "\n" not in issue.message
    assert issue.message.startswith(f"[{folder}/")
    assert text in issue.message, issue.message


def test_damaged_and_hostile_zips_each_get_their_code(forms, tmp_path):
    db, _, docx, _ = forms
    good = docx[0].path.read_bytes()
    bad = {
        "deflate.docx": corrupt_deflate(good),
        "version.docx": future_zip_version(good),
        "offset.docx": wrong_directory_offset(good),
        "not-a-zip.docx": b"Dear QA team, please find attached...",
        "truncated.docx": good[: len(good) // 2],
        "password.docx": OLE + b"\0" * 4096,
        "xxe.docx": with_member(good, "word/document.xml", XXE),
        "laughs.docx": with_member(good, "word/document.xml", LAUGHS),
        "utf16.docx": with_member(good, "word/document.xml", utf16_xxe()),
        "macros-by-type.docx": hidden_macros(good, "content type"),
        "macros-by-rel.docx": hidden_macros(good, "relationship"),
        "vba-named.docx": with_member(good, "word/vbaProject.bin", b"\0" * 64),
        "macros.docm": good,
        "bad-xml.docx": with_member(good, "word/document.xml", b"<w:document>\n<w:body>"),
        "no-document.docx": with_member(good, "word/document.xml", None),
        "report.pdf": b"%PDF-1.7 not a form",
    }
    (tmp_path / "in").mkdir()
    zip_bomb(tmp_path / "in" / "bomb.docx")
    outcomes = run_batch(db, tmp_path / "in", bad, fill_docx(good, {"kss1.seen_alone": "Yes"}))
    folder = tmp_path / "in"
    expected = {
        "deflate.docx": ("damaged", "is damaged (word/document.xml: "),
        "version.docx": ("damaged", "is damaged ("),
        "offset.docx": ("damaged", "negative seek value"),
        "not-a-zip.docx": ("not-a-zip", "is not a .docx file (not a zip"),
        "truncated.docx": ("not-a-zip", "is not a .docx file"),
        "password.docx": ("encrypted", "is password-protected or an old binary Office file"),
        "xxe.docx": ("entities", "word/document.xml] declares a DTD or XML entities"),
        "laughs.docx": ("entities", "declares a DTD or XML entities"),
        "utf16.docx": ("entities", "declares a DTD or XML entities"),
        "macros-by-type.docx": ("macros", "content type application/vnd.ms-office.vbaproject"),
        "macros-by-rel.docx": ("macros", "(relationship vbaproject)"),
        "vba-named.docx": ("macros", "(part word/vbaProject.bin)"),
        "macros.docm": ("macros", "(a .docm file). Ask the auditor to save it as a plain .docx"),
        "bad-xml.docx": ("bad-xml", "word/document.xml] is not well-formed XML ("),
        "no-document.docx": ("no-document", "has no Word document inside"),
        "report.pdf": (
            "unsupported-type",
            "is not a form (a .pdf file); formtool reads .docx and .xlsx",
        ),
        "bomb.docx": ("zip-bomb", "expands to far more data than a form holds"),
    }
    assert set(outcomes) == set(expected)
    for name, (code, text) in expected.items():
        assert_rejected(outcomes[name], code, text, folder)


@pytest.mark.parametrize("serial", ["2958466", "nan", "inf", "-1e300", "1e309", "-5"])
def test_numbers_in_date_cells_are_bad_dates_not_crashes(forms, tmp_path, serial):
    db, form, docx, xlsx = forms
    filled = fill_xlsx(
        xlsx[0].path.read_bytes(), {"completion.completed_on": "01/12/2026"}, date_keys(form)
    )
    sheet = member(filled, "xl/worksheets/sheet1.xml").decode()
    ref = _cell_of(filled, "completion.completed_on")
    sheet, found = re.subn(rf'(<c r="{ref}"[^>]*>)<v>[^<]*</v>', rf"\g<1><v>{serial}</v>", sheet)
    assert found == 1
    bad = {"pasted.xlsx": with_member(filled, "xl/worksheets/sheet1.xml", sheet.encode())}
    outcomes = run_batch(
        db,
        tmp_path / "in",
        bad,
        fill_docx(docx[0].path.read_bytes(), {"kss1.seen_alone": "Yes"}),
    )
    assert outcomes["pasted.xlsx"].status == "rejected"
    [issue] = [i for i in outcomes["pasted.xlsx"].issues if not i.is_warning]
    assert (issue.code.label, issue.field, issue.value) == (
        "bad-answer-date",
        "completion.completed_on",
        serial,
    )


def _cell_of(data: bytes, key: str) -> str:
    book = member(data, "xl/workbook.xml").decode()
    match = re.search(rf'<definedName name="{defined_name(key)}">[^<]*\$([A-Z]+)\$(\d+)<', book)
    assert match
    return f"{match[1]}{match[2]}"


def test_non_regular_files_are_refused_without_reading(forms, tmp_path):
    db, _, docx, _ = forms
    folder = tmp_path / "named"
    folder.mkdir()
    fifo = folder / "pipe.docx"
    os.mkfifo(fifo)
    link = folder / "zero.docx"
    link.symlink_to("/dev/zero")
    good = folder / "good.docx"
    good.write_bytes(fill_docx(docx[0].path.read_bytes(), {"kss1.seen_alone": "Yes"}))
    outcomes = import_paths(db, [fifo, Path("/dev/zero"), link, good, folder / "gone.docx"], TODAY)
    assert [(o.status, [i.code.label for i in o.issues]) for o in outcomes] == [
        ("rejected", ["not-a-file"]),
        ("rejected", ["not-a-file"]),  # /dev/zero itself: a device, never read
        ("rejected", ["not-a-file"]),
        ("imported", ["draft-return"]),
        ("rejected", ["not-found"]),
    ]
    assert outcomes[0].issues[0].message == (
        f"[{fifo}] is not a regular file (a named pipe). Name the saved form itself, or a "
        "folder of forms."
    )
    assert (
        outcomes[2]
        .issues[0]
        .message.endswith(
            "is not a regular file (a device). Name the saved form itself, or a folder of forms."
        )
    )


def test_names_and_errors_cannot_forge_lines_or_colours(forms, tmp_path):
    db, _, docx, _ = forms
    folder = tmp_path / "forged"
    folder.mkdir()
    (folder / "evil\nok  CSC-1  imported.docx").write_bytes(b"not a zip")
    (folder / "\x1b[32mgreen.docx").write_bytes(b"not a zip")
    (folder / "mismatch.docx").write_bytes(
        with_member(docx[0].path.read_bytes(), "word/document.xml", b"<a>\n<b>\n</a>\n")
    )
    result = CliRunner().invoke(cli, ["import", str(folder), "--db", _url(db)])
    assert result.exit_code == 1
    assert "\x1b" not in result.output
    assert "evil\\nok  CSC-1  imported.docx" in result.output
    assert "\\x1b[32mgreen.docx" in result.output
    lines = result.output.splitlines()
    assert not any(line.startswith("ok  CSC-1") for line in lines)
    messages = [line for line in lines if line.startswith("    ERROR")]
    assert len(messages) == 3
    assert any("mismatch.docx · word/document.xml] is not well-formed XML (" in m for m in messages)


def _url(db) -> str:
    return db.engine.url.render_as_string(hide_password=False)


# --- memory: bounded by construction ------------------------------------------------------

MEASURE = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # never take the machine down
    from formtool.store import open_store
    from formtool.read.batch import import_paths
    outcomes = import_paths(open_store(sys.argv[1]), [sys.argv[2]])
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big
    # pytest process would report the parent's size.
    status = open("/proc/self/status").read()
    print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
    print(outcomes[0].status, outcomes[0].issues[0].code.label if outcomes[0].issues else "")
""")


def peak_mb(db_file: str, path: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, db_file, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak, outcome = done.stdout.splitlines()[-2:]
    return int(peak), outcome


@pytest.mark.parametrize("kind", ["xlsx-strings-no-identity", "xlsx-strings", "docx-bookmarks"])
def test_amplification_files_stay_under_300_mb(forms, tmp_path, kind):
    db, form, docx, xlsx = forms
    if kind.startswith("xlsx"):
        data = shared_string_bomb(xlsx[0].path.read_bytes(), kind == "xlsx-strings")
        path = tmp_path / "bomb.xlsx"
    else:
        data = bookmark_bomb(docx[0].path.read_bytes(), form)
        path = tmp_path / "bomb.docx"
    path.write_bytes(data)
    assert len(data) < 2_000_000  # a small file...
    peak, outcome = peak_mb(_url(db), path)
    assert peak < 300, f"{kind}: {peak} MB"  # ...that cannot multiply memory
    assert (
        outcome
        == {
            "xlsx-strings-no-identity": "rejected no-identity",
            "xlsx-strings": "rejected field-too-long",
            "docx-bookmarks": "rejected too-much-text",
        }[kind]
    )


def test_json_output_of_a_rejection_carries_the_code_and_fields(forms, tmp_path):
    db = forms[0]
    bad = tmp_path / "bad.docx"
    bad.write_bytes(b"not a zip")
    result = CliRunner().invoke(cli, ["import", str(bad), "--db", _url(db), "--json"])
    assert result.exit_code == 1
    [outcome] = json.loads(result.stdout)
    [issue] = outcome["issues"]
    assert {k: issue[k] for k in ("code", "severity", "field", "value", "expected")} == {
        "code": "not-a-zip",
        "severity": "error",
        "field": "",
        "value": "",
        "expected": ".docx",
    }
