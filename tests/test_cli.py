"""The command line: exit codes, exact error lines, nothing written on bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.definitions import forms_dir

from conftest import CASE_ROW, SEED_TOOLS, write_cases


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_everywhere():
    for args in (
        [],
        ["forms"],
        ["forms", "list"],
        ["forms", "show"],
        ["forms", "check"],
        ["generate"],
        ["demo"],
    ):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_forms_list_and_json():
    result = run("forms", "list")
    assert result.exit_code == 0
    assert re.search(r"^csc +4 +33  shipped  Case File Audit Tool$", result.output, re.M)
    rows = json.loads(run("forms", "list", "--json").output)
    assert {
        r["id"]: (r["questions"], r["source"]) for r in rows if r["id"] in ("csc", "early_help")
    } == {"csc": (33, "shipped"), "early_help": (31, "shipped")}
    assert len(rows) == 10  # the six seed tools and the four activity tools (issue 21)


def test_forms_show_lists_columns_and_keys():
    result = run("forms", "show", "csc")
    assert re.search(r"^  worker +yes +Social Worker Name$", result.output, re.M)
    assert (
        "  kss1.seen_alone  [Yes/No/Partially/N/A]\n      Is there a record that the child"
        in result.output
    )  # whole questions, not cut at 70 characters
    data = json.loads(run("forms", "show", "csc", "--json").output)
    assert data["fields"][0]["key"] == "concern.immediate"  # the urgent-concern question first
    assert data["fields"][3] == {
        "key": "kss1.seen_alone",
        "label": data["fields"][3]["label"],
        "kind": "choice",
        "choices": ["Yes", "No", "Partially", "N/A"],
        "required": True,
        "role": "",
    }
    bad = run("forms", "show", "nope")
    assert bad.exit_code == 2 and "Unknown form 'nope'. Known forms: csc," in bad.output


def test_forms_check_reports_and_exits_1(tmp_path):
    assert run("forms", "check").output.endswith("10 file(s) checked, 0 problem(s).\n")
    shutil.copy(forms_dir() / "_common.yaml", tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (forms_dir() / "csc.yaml")
        .read_text()
        .replace("scale: yes_no_partially_na\n    answer_label", "scale: nope\n    answer_label", 1)
    )
    result = run("forms", "check", str(broken))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 5 and lines[-1] == "1 file(s) checked, 4 problem(s)."
    assert lines[0].startswith(f"[{broken}:") and "kss1.seen_alone] uses scale 'nope'" in lines[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the case list is empty. Export it again with a header row."),
        (
            b"\xff\xfeP\x001\x00",
            "is not UTF-8 text (byte 0). In Excel use Save As > 'CSV UTF-8 (Comma delimited)'.",
        ),
        (
            b"PK\x03\x04garbage",
            "is not a CSV text file. Save the case list as 'CSV UTF-8' or .xlsx.",
        ),
        (b"%PDF-1.4\n", "is not a CSV text file. Save the case list as 'CSV UTF-8' or .xlsx."),
        (b"a,b\x00\n", "is not a CSV text file. Save the case list as 'CSV UTF-8' or .xlsx."),
        (
            b"case_number,auditor\nP1,A\n",
            "the case list lacks column(s) due_date, family_name, given_names, worker, manager, "
            "team, which form 'csc' needs. Add them to the header row "
            "(see `formtool forms show csc`).",
        ),
        (
            b"case_number,family_name,given_names,worker,manager,team,auditor,due_date\n",
            "has a header row but no cases. Add one row per audit.",
        ),
    ],
)
def test_bad_case_lists_exit_2_with_one_line_and_write_nothing(tmp_path, content, message):
    cases = tmp_path / "cases.csv"
    cases.write_bytes(content)
    out = tmp_path / "out"
    result = run("generate", "--form", "csc", "--cases", str(cases), "--out", str(out))
    assert result.exit_code == 2
    assert result.output == f"Error: [{cases}] {message}\n"
    assert not out.exists()


def test_bad_rows_are_all_reported_and_nothing_is_written(tmp_path):
    rows = [
        CASE_ROW,
        {**CASE_ROW, "case_number": "P2", "due_date": "31/02/2026"},
        {**CASE_ROW, "case_number": "P3", "worker": ""},
        CASE_ROW,
    ]
    cases = write_cases(tmp_path / "cases.csv", rows)
    out = tmp_path / "out"
    result = run("generate", "--form", "csc", "--cases", str(cases), "--out", str(out))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: [{cases} · row 3 · due_date] '31/02/2026' is not a date. "
        "Use YYYY-MM-DD or DD/MM/YYYY.",
        f"[{cases} · row 4 · worker] is empty but form 'csc' needs it. Fill it in.",
        f"[{cases} · row 5 · case_number] case 'P1' appears twice for the same form and month. "
        "Remove the duplicate row.",
    ]
    assert not out.exists()


def test_unknown_form_and_missing_file(tmp_path):
    result = run("generate", "--form", "nope", "--cases", "x.csv", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.output.startswith("Error: Unknown form 'nope'. Known forms: csc, early_help")
    result = run("generate", "--form", "csc", "--cases", str(tmp_path / "x.csv"))
    assert result.exit_code == 2
    assert result.output == f"Error: [{tmp_path / 'x.csv'}] file not found. Check the path.\n"


def test_generate_from_xlsx_case_list_with_loose_headers(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "Case Number",
            "Family Name",
            "Given Names",
            "Worker",
            "Manager",
            "Team",
            "Auditor",
            "Due Date",
        ]
    )
    import datetime as dt

    sheet.append(["P9", "Example", "Sam", "W", "M", "T", "A", dt.datetime(2026, 11, 30)])
    workbook.save(tmp_path / "cases.xlsx")
    result = run(
        "generate",
        "--form",
        "csc",
        "--cases",
        str(tmp_path / "cases.xlsx"),
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    assert result.exit_code == 0
    assert result.stderr == f"Creating a new database at {os.environ['FORMTOOL_DB']}\n"
    data = json.loads(result.stdout)
    assert [f["audit_id"] for f in data["forms"]] == ["CSC-P9-202611"]
    assert (tmp_path / "out" / "CSC-P9-202611.docx").is_file()


def test_demo_makes_every_form_type(demo_run, monkeypatch):
    report = demo_run.report.as_dict()
    assert set(report["forms"]) == set(SEED_TOOLS)
    out = demo_run.out
    docx_files = list((out / "forms").rglob("*.docx"))
    audits = report["allocated"] + report["thematic_audits"]  # the month's, and a theme's
    assert len(docx_files) == audits == report["files"] / 2
    # The month shows the programme's activities: an observation among them (issue 21).
    assert report["activities"]["observation"] >= 1 and report["thematic_audits"] == 3
    assert [s["step"] for s in report["steps"]] == list(range(1, len(report["steps"]) + 1))
    assert report["steps"][-1]["lines"] == [
        "formtool users add YOUR-NAME --role moderator --db outputs/demo/formtool.db",
        "formtool serve --db outputs/demo/formtool.db",
    ]
    assert report["emails"] == len(list((out / "mail").glob("*.eml"))) > 0
    assert report["imported"]["rejected"] == 3
    monkeypatch.chdir(demo_run.folder)  # the report's paths are relative to where it ran
    made = report["pmu_pack"] + report["file_pack"] + report["activity_reports"]
    assert all(Path(p).is_file() for p in made)
    assert [Path(p).name for p in report["activity_reports"]] == [
        f"run{report['thematic_run']}-group-report.docx",
        f"run{report['thematic_run']}-group-report.pdf",
        "observations-2026-11.docx",
        "observations-2026-11.pdf",
    ]


def test_the_demo_command_prints_each_step_or_the_report_as_json(demo_run, monkeypatch, tmp_path):
    """The command's wiring: its options reach run_demo; steps print as they happen, or the
    report as JSON (the run itself is the session's, checked above)."""
    calls = []

    def run_demo(out_dir, seed, db_url, on_step, settings):
        calls.append((out_dir, seed, db_url))
        if on_step is not None:
            for step in demo_run.report.steps:
                on_step(step)
        return demo_run.report

    monkeypatch.setattr("formtool.demo.run.run_demo", run_demo)
    shown = run("demo", "--out", str(tmp_path / "d"), "--seed", "7")
    assert shown.exit_code == 0
    assert shown.output.splitlines()[0] == demo_run.report.steps[0].text().splitlines()[0]
    as_json = run("demo", "--out", str(tmp_path / "d"), "--json")
    assert json.loads(as_json.output) == json.loads(json.dumps(demo_run.report.as_dict()))
    assert calls == [(tmp_path / "d", 7, None), (tmp_path / "d", 2026, None)]


def test_import_status_export_cycle(tmp_path):
    import openpyxl

    from formtool.definitions import get_form
    from formtool.demo.fill import fill_docx

    db = str(tmp_path / "cli.db")
    cases = write_cases(tmp_path / "cases.csv", [CASE_ROW, {**CASE_ROW, "case_number": "P2"}])
    forms_dir_ = tmp_path / "forms"
    assert (
        run(
            "generate", "--form", "csc", "--cases", str(cases), "--out", str(forms_dir_), "--db", db
        ).exit_code
        == 0
    )
    returns = tmp_path / "returns"
    returns.mkdir()
    answers = {
        "kss1.seen_alone": "Yes",
        "kss1.seen_alone.evidence": '=HYPERLINK("x")',
        "completion.status": "Draft",
    }
    form_file = forms_dir_ / "CSC-P1-202611.docx"
    (returns / form_file.name).write_bytes(fill_docx(form_file.read_bytes(), answers))
    (returns / "junk.docx").write_bytes(b"not a form")
    result = run("import", str(returns), "--db", db)
    assert result.exit_code == 1  # one file rejected
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "audit", "id", "status", "issues"]
    assert lines[1].split()[:4] == ["CSC-P1-202611.docx", "CSC-P1-202611", "imported", "1"]
    assert lines[-1] == "1 imported, 0 updated, 0 unchanged, 1 rejected of 2 return(s)."
    assert any(
        line.strip().startswith("ERROR") and "junk.docx] is not a .docx file" in line
        for line in lines
    )
    again = run("import", str(returns / form_file.name), "--db", db, "--json")
    assert again.exit_code == 0
    assert json.loads(again.output)[0]["status"] == "unchanged"

    report = json.loads(run("status", "--db", db, "--json").output)
    assert report["by_state"] == {"allocated": 1, "in progress": 1}  # a draft came back
    assert [o["audit_id"] for o in report["outstanding"]] == ["CSC-P1-202611", "CSC-P2-202611"]
    assert "Auditor B1" in run("status", "--db", db, "--month", "2026-11").output

    out = tmp_path / "answers.xlsx"
    assert run("export", "--db", db, "--format", "xlsx", "--out", str(out)).exit_code == 0
    book = openpyxl.load_workbook(out)
    sheet = book["Answers"]
    header = [c.value for c in sheet[1]]
    assert header[-5:] == ["section", "key", "question", "value", "comment"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    row = next(r for r in sheet.iter_rows(min_row=2) if r[header.index("value")].value == "Yes")
    assert row[header.index("question")].value.startswith("Is there a record that the child")
    comment = row[header.index("comment")]
    assert comment.value == '=HYPERLINK("x")' and comment.data_type == "s"
    assert book.sheetnames == ["Answers", "Actions"]
    csv_text = run("export", "--db", db).output
    assert "'=HYPERLINK" in csv_text  # CSV cells that look like formulas are neutralised
    [audit] = json.loads(run("export", "--db", db, "--format", "json").output)
    assert audit["audit_id"] == "CSC-P1-202611" and audit["actions"] == []
    assert len(audit["answers"]) == len(
        [i for _, i in get_form("csc").items() if i.kind != "table"]
    )
    assert run("export", "--db", db, "--format", "xlsx").exit_code == 2


def test_bad_database_url_is_a_clear_error(tmp_path):
    result = run("status", "--db", "nosuchdialect://x")
    assert result.exit_code == 2
    assert result.output.startswith("Error: Cannot use database URL 'nosuchdialect://x'")


def test_bad_month_year_and_unwritable_paths(tmp_path):
    result = run("status", "--month", "2026-13")
    assert result.exit_code == 2
    assert (
        "'2026-13' is not a month: write YYYY-MM with a year between 2000 and 2099" in result.output
    )
    assert run("calendar", "--year", "0").exit_code == 2
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    store.open_store()  # the default database ($FORMTOOL_DB): export never creates one
    result = run("export", "--out", str(blocked / "x.csv"))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: [{blocked}] File exists. Check the path and that you may read and write there.\n"
    )


def test_status_piped_to_head_is_quiet(tmp_path):
    import subprocess
    import sys

    db = str(tmp_path / "pipe.db")
    cases = write_cases(
        tmp_path / "cases.csv", [{**CASE_ROW, "case_number": f"P{i}"} for i in range(60)]
    )
    assert (
        run(
            "generate",
            "--form",
            "csc",
            "--cases",
            str(cases),
            "--out",
            str(tmp_path / "forms"),
            "--db",
            db,
        ).exit_code
        == 0
    )
    shell = subprocess.run(
        f"{sys.executable} -m formtool status --db {db} | head -n 3",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(shell.stdout.splitlines()) == 3
    assert shell.stderr == ""  # no "Broken pipe" error, no traceback
