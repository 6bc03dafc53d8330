"""The README stays true: its session and command reference are generated from the code (cog)
and must be current; every command and every kind of problem is documented; it opens with the
two set-up commands, the second of which CI runs verbatim."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest

from formtool.cli import cli
from formtool.errors import IssueCode

from conftest import DEMO_SEED, missing, schema_keys

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "formtool") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


def test_generated_parts_of_the_readme_are_current(monkeypatch, demo_run):
    """`cog -r README.md` regenerates the demo transcript and every --help block. The demo it
    shows is the session's run (the same seed and day), copied where the README's code looks."""
    from cogapp import Cog

    def prebuilt(out_dir: Path, seed: int, **_: object) -> object:
        assert (out_dir, seed) == (Path("outputs/demo"), DEMO_SEED)
        shutil.copytree(demo_run.out, out_dir)
        return demo_run.report

    monkeypatch.setattr("formtool.demo.run.run_demo", prebuilt)
    monkeypatch.chdir(ROOT)
    status = Cog().main(["cog", "--check", "--check-fail-msg=run: cog -r README.md", "README.md"])
    assert status == 0, "README.md is out of date: run `cog -r README.md`"


def test_every_command_is_documented():
    paths = command_paths(cli)
    assert len(paths) >= 20
    assert [p for p in paths if f"`{p}" not in README] == []


def test_every_issue_code_is_documented():
    codes = [c.label for c in IssueCode]
    assert [c for c in codes if f"| `{c}` |" not in README] == []


def test_readme_opens_with_the_two_setup_commands():
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].endswith("formtool demo")
    assert block[1].endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert block[1] in ci  # CI runs the README's test command verbatim


@pytest.mark.parametrize("path", ["templates/forms/README.md"])
def test_every_definition_key_is_documented(path):
    keys = schema_keys(ROOT / "formtool" / "definitions" / "form_schema.json")
    text = (ROOT / path).read_text(encoding="utf-8")
    assert sorted(k for k in keys if f"`{k}" not in text and f"{k}:" not in text) == []


def test_a_missing_program_or_shared_file_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="in CI every test runs"):
        missing("no soffice")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no soffice"):
        missing("no soffice")
