"""Identifiers are data, never paths: a bad audit id in a case list is a one-line error
naming the file and row, with nothing written or recorded; case numbers become safe file
names; an id recorded before ids were checked names no file."""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.definitions.identifiers import (
    AUDIT_ID_MAX,
    IdentifierError,
    audit_file_name,
    audit_id_problem,
    safe_file_stem,
)
from formtool.generate import record_audits, regenerate
from formtool.programme.mail import find_forms

from conftest import CASE_ROW, make_cases, write_cases

LETTERS = "use letters, digits and hyphens only (e.g. CSC-SYN0001-202611)"


def files_under(folder: Path) -> set[Path]:
    """Every file under the folder but the tests' SQLite databases (and their journals)."""
    found = {Path(root, name) for root, _, names in os.walk(folder) for name in names}
    return {p for p in found if ".db" not in p.name}


def generate(tmp_path: Path, rows: list[dict[str, str]]) -> tuple[Result, Path, Path, str]:
    cases = write_cases(tmp_path / "cases.csv", rows)
    out, db = tmp_path / "out", f"sqlite:///{tmp_path / 'g.db'}"
    args = ["generate", "--form", "csc", "--cases", str(cases), "--out", str(out), "--db", db]
    return CliRunner().invoke(cli, [*args, "--format", "both"]), cases, out, db


def audit_ids(db: str) -> list[str]:
    with store.open_store(db).engine.connect() as conn:
        return list(conn.execute(sa.select(store.audits.c.audit_id)).scalars())


@pytest.mark.parametrize(
    ("audit_id", "shown", "fix"),
    [
        ("../../tmp/x", "../../tmp/x", LETTERS),
        ("../../escaped", "../../escaped", LETTERS),
        ("a/b", "a/b", LETTERS),
        ("..\\..\\x", "..\\..\\x", LETTERS),
        ("CSC-P2-202611\r\nX", "CSC-P2-202611\\nX", LETTERS),
        (
            "CON",
            "CON",
            "Windows keeps that name for a device; make it longer (e.g. CSC-CON-202611)",
        ),
        ("", "", "give every row one, or leave out the audit_id column so formtool makes them"),
        (
            "A" * 200,
            "A" * 119 + "…",
            "use at most 80 characters, not 200 (e.g. CSC-SYN0001-202611)",
        ),
    ],
)
def test_a_bad_audit_id_is_one_line_and_nothing_is_written_or_recorded(
    tmp_path, audit_id, shown, fix
):
    before = files_under(tmp_path.parent)
    rows = [
        {"audit_id": "CSC-P1-202611", **CASE_ROW},
        {**CASE_ROW, "audit_id": audit_id, "case_number": "P2"},
    ]
    result, cases, out, db = generate(tmp_path, rows)
    assert result.exit_code == 2
    assert (
        result.output
        == f"Error: [{cases} · row 3 · audit_id] '{shown}' is not an audit id: {fix}.\n"
    )
    assert not out.exists()
    assert files_under(tmp_path.parent) - before == {cases}
    assert audit_ids(db) == []


def test_good_audit_ids_are_used_as_given(tmp_path):
    rows = [
        {**CASE_ROW, "audit_id": "CSC-P1-202611"},
        {**CASE_ROW, "audit_id": "x-2", "case_number": "P2"},
    ]
    result, _cases, out, db = generate(tmp_path, rows)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "CSC-P1-202611.docx",
        "CSC-P1-202611.xlsx",
        "manifest.csv",
        "x-2.docx",
        "x-2.xlsx",
    ]
    assert sorted(audit_ids(db)) == ["CSC-P1-202611", "x-2"]


def test_ids_differing_only_in_case_are_one_file_on_windows_so_a_duplicate(tmp_path):
    rows = [
        {**CASE_ROW, "audit_id": "csc-p1"},
        {**CASE_ROW, "audit_id": "CSC-P1", "case_number": "P2"},
    ]
    result, cases, _out, _db = generate(tmp_path, rows)
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: [{cases} · row 3 · case_number] case 'P2' appears")


def test_case_numbers_become_sane_file_names(tmp_path):
    long_a, long_b = "Z" * 150 + "/A", "Z" * 150 + "/B"
    numbers = ["12/345", "../../etc/passwd", "CON", "É12 (old)", "///", long_a, long_b]
    rows = [{**CASE_ROW, "case_number": n} for n in numbers]
    result, _cases, out, db = generate(tmp_path, rows)
    assert result.exit_code == 0, result.output
    with (out / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        made = {r["case_number"]: r["audit_id"] for r in csv.DictReader(handle)}
    assert made["12/345"] == "CSC-12-345-202611"
    assert made["../../etc/passwd"] == "CSC-ETC-PASSWD-202611"
    assert made["CON"] == "CSC-CON-202611"
    assert made["É12 (old)"] == "CSC-12-OLD-202611"
    assert made["///"] == f"CSC-{safe_file_stem('///').upper()}-202611"
    assert made[long_a] != made[long_b]
    assert all(not audit_id_problem(a) and len(a) <= AUDIT_ID_MAX for a in made.values())
    assert {p.parent for p in files_under(out)} == {out}  # every file in the output folder
    assert (out / "CSC-12-345-202611.docx").is_file()
    assert sorted(audit_ids(db)) == sorted(made.values())


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("12/345", "12-345"),
        ("../..", hashlib.sha256(b"../..").hexdigest()[:8]),  # nothing usable: a hash
        ("", "file"),
        ("CON", "CON-"),
        ("nul", "nul-"),
        ("Mary O'Neil", "Mary-O-Neil"),
        ("a" * 70, "a" * 51 + "-" + safe_file_stem("a" * 70)[-8:]),
    ],
)
def test_safe_file_stem(text, stem):
    assert safe_file_stem(text) == stem
    assert len(safe_file_stem(text)) <= 60


def test_safe_file_stem_hash_is_of_the_text():
    assert safe_file_stem("../..") != safe_file_stem("//")
    assert safe_file_stem("CON", part=True) == "CON"


def test_an_id_recorded_before_ids_were_checked_names_no_file(tmp_path, db):
    form = get_form("csc")
    good, other = make_cases(tmp_path / "cases", form, 2)
    bad = replace(other, audit_id="../../escaped")
    record_audits(db, form, [good, bad])  # as an older formtool did, unchecked
    out = tmp_path / "a" / "b" / "forms"
    with pytest.raises(IdentifierError) as raised:
        regenerate(db, "2026-11", out, ("docx",))
    assert str(raised.value) == (
        f"'../../escaped' is not an audit id: {LETTERS}. No file was named from it; correct "
        "or remove that audit in the database (`formtool allocate --replace` drops a month's "
        "audits not yet sent)."
    )
    assert files_under(tmp_path / "a") == set()  # not even the good audit's form


def test_audit_file_name():
    assert audit_file_name("CSC-P1-202611", ".docx") == "CSC-P1-202611.docx"
    with pytest.raises(IdentifierError):
        audit_file_name("../x", ".docx")


def test_a_manifest_is_data_never_a_path_to_follow(tmp_path):
    (tmp_path / "secret.docx").write_bytes(b"not for email")
    forms = tmp_path / "forms"
    forms.mkdir()
    (forms / "CSC-P1-202611.docx").write_bytes(b"form")
    (forms / "manifest.csv").write_text(
        "audit_id,format,file\n"
        "CSC-P1-202611,docx,CSC-P1-202611.docx\n"
        "CSC-P2-202611,docx,../secret.docx\n"
        "../secret,docx,../secret.docx\n"
        "CSC-P3-202611,../../secret.docx,CSC-P3-202611.../../secret.docx\n",
        encoding="utf-8",
    )
    assert find_forms(forms) == {"CSC-P1-202611": {"docx": forms / "CSC-P1-202611.docx"}}


def test_an_unknown_form_in_a_form_column_names_its_row(tmp_path):
    rows = [{**CASE_ROW, "form": "csc"}, {**CASE_ROW, "case_number": "P2", "form": "../csc\nx"}]
    cases = write_cases(tmp_path / "cases.csv", rows)
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--cases",
            str(cases),
            "--out",
            str(tmp_path / "o"),
            "--db",
            str(tmp_path / "x.db"),
        ],
    )
    assert result.exit_code == 2
    assert result.output.startswith(
        f"Error: [{cases} · row 3 · form] '../csc\\nx' is not a form here. Use one of csc, "
    )
    assert result.output.count("\n") == 1


def test_a_csv_that_cannot_be_parsed_is_one_line(tmp_path):
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "case_number,family_name\nP1," + "x" * (csv.field_size_limit() + 1), encoding="utf-8"
    )
    result = CliRunner().invoke(
        cli, ["generate", "--form", "csc", "--cases", str(cases), "--db", str(tmp_path / "d.db")]
    )
    assert result.exit_code == 2
    assert result.output == (
        f"Error: [{cases}] cannot be read as CSV (line 2: field larger than field limit "
        f"({csv.field_size_limit()})). Save the case list again as 'CSV UTF-8' or .xlsx.\n"
    )


def test_old_mac_line_endings_are_rows(tmp_path):
    cases = tmp_path / "cases.csv"  # CR only, as classic Mac OS wrote
    cases.write_bytes((",".join(CASE_ROW) + "\r" + ",".join(CASE_ROW.values()) + "\r").encode())
    out = tmp_path / "o"
    args = ["generate", "--form", "csc", "--cases", str(cases), "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--db", str(tmp_path / "d.db")])
    assert result.exit_code == 0, result.output
    assert (out / "CSC-P1-202611.docx").is_file()
