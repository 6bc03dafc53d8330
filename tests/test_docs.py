"""The README documents every command and every kind of problem formtool reports."""

from __future__ import annotations

from pathlib import Path

import click

from formtool.cli import cli
from formtool.errors import IssueCode

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "formtool") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


def test_every_command_is_documented():
    paths = command_paths(cli)
    assert len(paths) >= 5
    assert [p for p in paths if f"`{p}" not in README] == []


def test_every_issue_code_is_documented():
    codes = [c.name.replace("_", "-") for c in IssueCode]
    assert [c for c in codes if f"| `{c}` |" not in README] == []


def test_readme_opens_with_the_two_setup_commands():
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert block[0].endswith("formtool demo")
    assert block[1].endswith("pytest")
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert block[1] in ci  # CI runs the README's test command verbatim
