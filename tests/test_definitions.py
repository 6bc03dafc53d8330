"""Definitions: the shipped forms are clean; broken ones get every problem with line and key."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from formtool.definitions import (
    FormCatalog,
    check_form,
    describe_form,
    form_catalog,
    forms_dir,
    get_form,
    list_forms,
    load_form,
    load_forms,
)
from formtool.definitions.identity import bookmark_name, defined_name
from formtool.errors import DefinitionError

from conftest import FORM_IDS, fresh_catalog

MINIMAL = """\
id: mini
version: 1
title: Mini audit
subject: child
source: test
header:
  - {column: case_number, label: Case Number, required: true}
sections:
  - id: kss1
    title: Domain one
    scale: yes_no_partially_na
    items:
      - {question: seen_alone, label: "Was the child seen alone?"}
      - {choice: met, label: Met, scale: met}
"""


def write_form(tmp_path: Path, text: str, name: str = "mini.yaml") -> Path:
    shutil.copy(forms_dir() / "_common.yaml", tmp_path / "_common.yaml")
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def flat(issues) -> list[tuple[str, str, str]]:
    return [(i.field, i.code.name, i.location) for i in issues]


def test_every_shipped_form_checks_clean():
    assert FORM_IDS == [
        "csc",
        "early_help",
        "family_feedback",
        "foster_carer",
        "observation",
        "prospective_adopter",
        "quality_practice",
        "supervision",
        "supported_lodgings",
        "thematic",
    ]
    for form in load_forms().values():
        assert check_form(form.path) == [], form.id


def test_minimal_form_loads_with_stable_keys(tmp_path):
    form = load_form(write_form(tmp_path, MINIMAL))
    assert [f.key for f in form.fields()] == [
        "kss1.seen_alone",
        "kss1.seen_alone.evidence",
        "kss1.met",
    ]
    met = form.field("kss1.met").scale
    assert met is not None and met.choices == ("Met", "Partially met", "Not met")
    assert form.required_columns == ["case_number"]


def test_yaml_syntax_error_reports_line(tmp_path):
    path = write_form(tmp_path, MINIMAL.replace("required: true}", "required: true"))
    issues = check_form(path)
    assert [(i.code.name, i.location) for i in issues] == [("yaml_syntax", "8")]
    assert issues[0].message.startswith(f"[{path}:8] is not valid YAML")


def test_schema_errors_report_line_and_key(tmp_path):
    broken = MINIMAL.replace("version: 1", "version: one").replace(
        "{choice: met, label: Met, scale: met}", "{choice: met, colour: red, label: Met}"
    )
    issues = check_form(write_form(tmp_path, broken))
    assert flat(issues) == [
        ("kss1.met", "schema", "14"),  # unknown field 'colour'
        ("version", "schema", "2"),
    ]
    assert "unknown field" in issues[0].message and "'colour'" in issues[0].message


def test_item_needs_exactly_one_kind(tmp_path):
    broken = MINIMAL.replace(
        "{choice: met, label: Met, scale: met}", "{choice: met, text: met2, label: Met, scale: met}"
    )
    issues = check_form(write_form(tmp_path, broken))
    assert flat(issues) == [("kss1.met", "schema", "14")]
    assert "exactly one of" in issues[0].message


def test_semantic_errors_duplicate_key_and_unknown_scale(tmp_path):
    broken = MINIMAL.replace(
        "      - {choice: met, label: Met, scale: met}\n",
        "      - {choice: met, label: Met, scale: met}\n"
        "      - {choice: met, label: Met again, scale: met}\n"
        "      - {choice: grade2, label: Grade, scale: stars}\n",
    )
    issues = check_form(write_form(tmp_path, broken))
    assert flat(issues) == [
        ("kss1.met", "duplicate_key", "15"),
        ("kss1.grade2", "unknown_scale", "16"),
    ]
    assert "scale 'stars'" in issues[1].message


def test_unknown_column_set_and_missing_file(tmp_path):
    broken = MINIMAL.replace(
        "      - {choice: met, label: Met, scale: met}\n",
        "      - {table: actions, label: Actions, columns: nope}\n",
    )
    assert flat(check_form(write_form(tmp_path, broken))) == [("kss1.actions", "schema", "14")]
    assert [i.value for i in check_form(tmp_path / "absent.yaml")] == ["file not found"]


def test_load_form_refuses_a_broken_definition(tmp_path):
    with pytest.raises(DefinitionError, match=r"mini.yaml:2 · version"):
        load_form(write_form(tmp_path, MINIMAL.replace("version: 1", "version: 0")))


def test_keys_map_to_unique_bookmarks_and_names(form):
    keys = [f.key for f in form.fields()] + [h.key for h in form.header]
    assert len(set(keys)) == len(keys)
    marks = [bookmark_name(k) for k in keys]
    assert len(set(marks)) == len(marks)
    assert all(len(m) <= 40 and m[0].isalpha() for m in marks)
    assert len({defined_name(k) for k in keys}) == len(keys)


def test_spec_keys_exist_on_seed_001_tools():
    forms = load_forms()
    for form_id in ("csc", "early_help", "foster_carer", "supported_lodgings"):
        keys = {f.key for f in forms[form_id].fields()}
        assert {
            "kss1.met",
            "kss1.comments",
            "overall.grade",
            "moderation.grade",
            "next_steps.actions.1.responsible_person",
            "oversight.actions.1.manager_sign_off",
        } <= keys, form_id
    assert "kss1.seen_alone.evidence" in {f.key for f in forms["csc"].fields()}
    adopter = {f.key for f in forms["prospective_adopter"].fields()}
    assert {
        "overall.grade",
        "improvement_plan.actions.1.by_when",
        "family_survey.contacted",
        "process.post_approval_plan_date",
    } <= adopter
    assert not {k for k in adopter if k.startswith("moderation.")}  # the paper tool has none


def test_each_test_has_a_fresh_catalog_cached_outside_home(catalog):
    assert form_catalog() is catalog and catalog.team_dir is None
    assert catalog.cache_dir is not None
    assert not catalog.cache_dir.is_relative_to(Path.home() / ".cache")


def test_the_disk_cache_is_where_the_catalog_says(tmp_path, monkeypatch):
    path = write_form(tmp_path, MINIMAL)
    cached = FormCatalog(cache_dir=tmp_path / "cache")
    assert cached.load(path) == FormCatalog(cache_dir=None).load(path)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    assert cached.load(path).snapshot == load_form(path).snapshot  # from the cache, the same
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert FormCatalog().cache_dir == tmp_path / "formtool" / "definitions"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert FormCatalog().cache_dir == Path.home() / ".cache" / "formtool" / "definitions"


def test_snapshots_are_rebuilt_once_per_catalog(catalog):
    csc = get_form("csc")
    rebuilt = catalog.from_snapshot(csc.snapshot)
    assert rebuilt == csc and rebuilt.path == "(stored snapshot)"
    assert catalog.from_snapshot(csc.snapshot) is rebuilt
    assert fresh_catalog().from_snapshot(csc.snapshot) is not rebuilt


def test_forms_list_and_show_are_dataclasses_with_their_json():
    rows = list_forms()
    assert sorted(r.id for r in rows) == FORM_IDS
    assert {r.source for r in rows} == {"shipped"}
    assert list(rows[0].as_dict()) == [
        "id",
        "version",
        "title",
        "subject",
        "questions",
        "fields",
        "source",
        "path",
    ]
    shown = describe_form("csc")
    data = json.loads(json.dumps(shown.as_dict()))  # plain JSON all the way down
    assert list(data) == [
        "id",
        "version",
        "title",
        "subject",
        "source",
        "two_stage",
        "header",
        "sections",
        "fields",
        "additions",
    ]
    assert list(data["header"][0]) == ["column", "label", "required", "type", "from", "addition"]
    assert list(data["sections"][0]) == ["id", "title", "addition", "items"]
    assert data["sections"][0]["items"][0]["key"] == shown.sections[0].items[0].key
    seen_alone = next(f for f in data["fields"] if f["key"] == "kss1.seen_alone")
    evidence = next(f for f in data["fields"] if f["key"] == "kss1.seen_alone.evidence")
    assert isinstance(seen_alone["choices"], list) and evidence["choices"] is None
    assert data["additions"] == [{"what": w, "why": y} for w, y in get_form("csc").additions()]
