"""A QA team's own tools: written only in YAML, kept in a folder the team owns, taken through
the whole cycle; and definitions that change without breaking the forms still out."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.definitions import (
    all_forms,
    form_catalog,
    forms_dir,
    get_form,
    list_forms,
    shipped_forms,
    use_catalog,
    use_forms_dir,
    using_forms_dir,
)
from formtool.demo.fill import fill_docx, fill_xlsx

from conftest import FORM_IDS, answers_for, write_cases

ROOT = Path(__file__).resolve().parents[1]
TOOL = "supervision_audit"
SUPERVISION = """\
# A team's own tool: a supervision audit (synthetic example).
id: supervision_audit
version: 1
title: Supervision Audit
short_name: Supervision
subject: worker
source: Example team tool (synthetic)
scales:
  three_point:
    label: Good/Adequate/Poor
    choices: [Good, Adequate, Poor]
    ranked: true
    favourable: [Good]
    partial: [Adequate]
    unfavourable: [Poor]
    bands: {favourable: Good, partial: Adequate, unfavourable: Poor}
    follow_up: [Poor]
judgements:
  grade: overall.judgement
  moderated_grade: moderation.judgement
  status: completion.status
  final: Final
header:
  - {column: case_number, label: Supervision record, required: true}
  - {column: worker, label: Supervisee, required: true}
  - {column: team, label: Team, required: true}
  - {column: auditor, label: Auditor, required: true}
  - {column: due_date, label: Due, required: true, type: date}
sections:
  - id: practice
    title: Supervision practice
    short_title: Practice
    scale: yes_no
    judgement: rating
    items:
      - {question: regular, label: "Is supervision held at least monthly?"}
      - {question: recorded, label: "Is each session recorded within 5 working days?"}
      - question: cancelled
        label: "Were sessions cancelled without being rearranged?"
        favourable: "No"
        finding:
          favourable: no session was left cancelled
          unfavourable: sessions were cancelled and not rearranged
      - {choice: rating, label: "Practice judgement", scale: three_point}
  - id: overall
    title: Overall judgement
    items:
      - {choice: judgement, label: Overall judgement, scale: three_point}
      - {text: rationale, label: Why}
  - id: moderation
    title: Moderation
    items:
      - {choice: judgement, label: Judgement after moderation, scale: three_point, required: false}
  - id: completion
    title: Completion
    addition: formtool's Draft/Final status
    items:
      - {choice: status, label: Status, scale: draft_final, required: false}
"""


@pytest.fixture
def team(tmp_path, monkeypatch):
    folder = tmp_path / "team-forms"
    folder.mkdir()
    (folder / f"{TOOL}.yaml").write_text(SUPERVISION, encoding="utf-8")
    monkeypatch.setenv("FORMTOOL_FORMS", str(folder))  # as a team sets it: each command reads it
    use_forms_dir(folder)  # for the library calls in the test (conftest undoes it)
    return folder


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result


def test_the_tool_id_appears_nowhere_in_formtools_code():
    found = subprocess.run(
        ["grep", "-rIil", TOOL, str(ROOT / "formtool")], capture_output=True, text=True
    )
    assert found.stdout == ""


def test_a_yaml_only_tool_runs_the_whole_cycle(team, tmp_path):
    db = f"sqlite:///{tmp_path / 'team.db'}"
    assert run("forms", "check").output.endswith("11 file(s) checked, 0 problem(s).\n")
    listed = json.loads(run("forms", "list", "--json").output)
    assert {r["id"]: r["source"] for r in listed}[TOOL] == "team"
    rows = [
        {
            "Supervision record": f"SUP-{i}",
            "Supervisee": f"Worker {i} (synthetic)",
            "Team": f"Team {'AB'[i % 2]} (synthetic)",
            "Auditor": "Auditor C1 (synthetic)",
            "Due": "2026-11-30",
            "auditor_email": "c1@example.invalid",
        }
        for i in range(6)
    ]
    cases = write_cases(tmp_path / "cases.csv", rows)
    made = run(
        "generate",
        "--form",
        TOOL,
        "--cases",
        str(cases),
        "--format",
        "both",
        "--out",
        str(tmp_path / "forms"),
        "--db",
        db,
        "--json",
    )
    assert made.exit_code == 0, made.output
    forms = json.loads(made.stdout)["forms"]  # stderr: "Creating a new database at …"
    answers = {
        i: {
            "practice.regular": "Yes",
            "practice.recorded": "Yes" if i % 3 else "No",
            "practice.cancelled": "No" if i % 2 else "Yes",
            "practice.rating": ("Good", "Adequate", "Poor")[i % 3],
            "overall.judgement": ("Good", "Adequate", "Poor")[i % 3],
            "overall.rationale": f"Reason {i}",
            "completion.status": "Final",
        }
        for i in range(6)
    }
    returns = tmp_path / "returns"
    returns.mkdir()
    for row in forms:
        i = int(row["case_number"].split("-")[1])
        source = tmp_path / "forms" / row["file"]
        if row["format"] == "docx" and i % 2 == 0:
            (returns / source.name).write_bytes(fill_docx(source.read_bytes(), answers[i]))
        elif row["format"] == "xlsx" and i % 2 == 1:
            (returns / source.name).write_bytes(fill_xlsx(source.read_bytes(), answers[i]))
    imported = run("import", str(returns), "--db", db, "--json")
    assert imported.exit_code == 0, imported.output
    assert [o["status"] for o in json.loads(imported.output)] == ["imported"] * 6
    first = sorted(r["audit_id"] for r in forms)[0]
    moderated = run(
        "moderate", first, "--grade", "adequate", "--by", "HoS (synthetic)", "--db", db, "--json"
    )
    assert json.loads(moderated.output)["moderated_grade"] == "Adequate"
    bad = run("moderate", first, "--grade", "Outstanding", "--by", "x", "--db", db)
    assert bad.exit_code == 2 and "Use one of: Good; Adequate; Poor." in bad.output

    from formtool.packs.figures import load_figures
    from formtool.periods import period_for

    figures = load_figures(store.open_store(db), period_for(month="2026-11"), dt.date(2026, 12, 3))
    assert [(a.case_number, a.grade) for a in figures.graded] == [
        ("SUP-0", "Adequate"),
        *[(f"SUP-{i}", ("Good", "Adequate", "Poor")[i % 3]) for i in range(1, 6)],
    ]
    assert figures.grades == {"three_point": {"Adequate": 3, "Poor": 2, "Good": 1}}
    assert [(label, dict(c)) for label, c, _ in figures.domains["Supervision"]] == [
        ("Practice", {"Good": 2, "Adequate": 2, "Poor": 2})
    ]
    [tool] = figures.findings
    assert tool.audits == 6
    weakest = [f.sentence("unfavourable") for f in tool.weakest()]
    assert "In 3 of 6 Supervision audits sessions were cancelled and not rearranged." in weakest
    assert {i["case_number"] for i in figures.follow_up} == {"SUP-2", "SUP-5"}  # Poor
    assert (figures.moderation["moderated"], figures.moderation["down"]) == (1, 1)  # Good->Adequate

    pmu = run("pack", "pmu", "--month", "2026-11", "--out", str(tmp_path / "pmu"), "--db", db)
    assert pmu.exit_code == 0, pmu.output
    filed = run("pack", "file", first, "--out", str(tmp_path / "file"), "--db", db)
    assert filed.exit_code == 0, filed.output
    from pypdf import PdfReader

    text = "".join(
        p.extract_text() for p in PdfReader(tmp_path / "file" / f"{first}-file.pdf").pages
    )
    assert "Supervision Audit" in text and "Adequate" in text


def test_forms_dir_is_set_for_the_process_not_written_to_the_environment(tmp_path):
    folder = tmp_path / "ours"
    folder.mkdir()
    (folder / f"{TOOL}.yaml").write_text(SUPERVISION, encoding="utf-8")
    listed = run("--forms-dir", str(folder), "forms", "list", "--json")
    assert {r["id"]: r["source"] for r in json.loads(listed.output)}[TOOL] == "team"
    assert "FORMTOOL_FORMS" not in os.environ
    assert form_catalog().team_dir == folder
    missing = run("--forms-dir", str(tmp_path / "absent"), "forms", "list")
    assert missing.exit_code == 2 and "is not a folder" in missing.output


def test_formtool_forms_is_read_only_when_no_folder_was_set(team):
    use_catalog(None)  # nothing set: the catalog comes from $FORMTOOL_FORMS (the fixture's)
    assert form_catalog().team_dir == team and TOOL in all_forms()
    use_forms_dir(None)  # set: shipped tools only, whatever the environment says
    assert TOOL not in all_forms()


def test_using_forms_dir_lasts_for_the_block(team):
    use_forms_dir(None)
    before = form_catalog()
    with using_forms_dir(team) as inside:
        assert form_catalog() is inside and TOOL in all_forms()
    assert form_catalog() is before and TOOL not in all_forms()


def test_shipped_forms_leave_out_the_teams(team):
    assert TOOL in all_forms() and sorted(shipped_forms()) == FORM_IDS
    assert [r.source for r in list_forms() if r.id == TOOL] == ["team"]


def test_a_team_tool_cannot_take_a_shipped_id(team):
    clash = SUPERVISION.replace(f"id: {TOOL}", "id: csc")
    (team / f"{TOOL}.yaml").write_text(clash, encoding="utf-8")
    result = run("forms", "list")
    assert result.exit_code == 2
    assert "'csc' is already a form" in result.output


def republish(folder: Path, text: str) -> None:
    """A new text of the team's tool: the next command reads it, as a new process would."""
    (folder / f"{TOOL}.yaml").write_text(text, encoding="utf-8")


def test_republishing_keeps_outstanding_returns_readable(team, tmp_path):
    db = f"sqlite:///{tmp_path / 'v.db'}"
    rows = [
        {
            "case_number": f"V-{i}",
            "worker": "W (synthetic)",
            "team": "T (synthetic)",
            "auditor": "A (synthetic)",
            "due_date": "2026-11-30",
        }
        for i in range(2)
    ]
    made = run(
        "generate",
        "--form",
        TOOL,
        "--cases",
        str(write_cases(tmp_path / "c.csv", rows)),
        "--out",
        str(tmp_path / "forms"),
        "--db",
        db,
        "--json",
    )
    assert made.exit_code == 0, made.output
    files = [tmp_path / "forms" / r["file"] for r in json.loads(made.stdout)["forms"]]
    returns = [tmp_path / f"r{i}.docx" for i in range(2)]
    answers = {
        **answers_for(get_form(TOOL)),
        "practice.regular": "Yes",
        "completion.status": "Final",
    }
    for source, target in zip(files, returns, strict=True):
        target.write_bytes(fill_docx(source.read_bytes(), answers))
    # a typo fixed in a label, version not raised: refused, against the stored snapshot
    edited = SUPERVISION.replace("held at least monthly", "held at least once a month")
    republish(team, edited)
    check = run("forms", "check", "--db", db)
    assert check.exit_code == 1
    assert (
        "differs from the version 1 that already generated forms. Raise `version:`" in check.output
    )
    again = run(
        "generate",
        "--form",
        TOOL,
        "--cases",
        str(tmp_path / "c.csv"),
        "--out",
        str(tmp_path / "forms2"),
        "--db",
        db,
    )
    assert again.exit_code == 2 and "Raise `version:`" in again.output
    # republished properly as version 2 while the version 1 forms are still out
    republish(team, edited.replace("version: 1", "version: 2"))
    assert run("forms", "check", "--db", db).exit_code == 0
    imported = run("import", *map(str, returns), "--db", db, "--json")
    assert [o["status"] for o in json.loads(imported.output)] == ["imported", "imported"]
    with store.open_store(db).engine.connect() as conn:
        versions = conn.execute(sa.select(store.audits.c.form_version)).scalars().all()
    assert versions == [1, 1]
    export = json.loads(run("export", "--db", db, "--format", "json").output)
    question = next(a for a in export[0]["answers"] if a["key"] == "practice.regular")
    assert question["question"] == "Is supervision held at least monthly?"  # as v1 asked it
    # and a version 1 audit goes through its steps with the version 1 definition
    first = json.loads(imported.output)[0]["audit_id"]
    for step in (["check", first, "--accept"], ["signoff", first], ["close", first]):
        done = run(*step, "--db", db)
        assert done.exit_code == 0, done.output


def test_team_common_may_add_but_not_redefine_scales(team):
    shutil.copy(forms_dir() / "_common.yaml", team / "_common.yaml")
    text = (team / "_common.yaml").read_text(encoding="utf-8")
    (team / "_common.yaml").write_text(
        text.replace('choices: ["Yes", "No"]\n', 'choices: ["Y", "N"]\n', 1)
        + textwrap.dedent("""
                                       """),
        encoding="utf-8",
    )
    result = run("forms", "check", str(team / f"{TOOL}.yaml"))
    assert result.exit_code == 1
    assert "_common.yaml redefines the shipped scale 'yes_no'" in result.output
