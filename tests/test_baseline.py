"""Behaviour kept while the code moves: the demo's generated forms byte for byte, its report,
and every reporting command's --json output on it match `tests/baseline.json`.

The baseline was taken before the house was rearranged (issue 17). A change that alters any of
these on purpose rewrites it: FORMTOOL_WRITE_BASELINE=1 pytest tests/test_baseline.py, and the
diff of baseline.json goes in the same commit, for review.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from formtool import clock
from formtool.cli import cli

from conftest import DEMO_DAY, Demo

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).with_name("baseline.json")
WRITE_VAR = "FORMTOOL_WRITE_BASELINE"
#: A time of day in stored records (imported at, event times): real time, differs per run.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)?")


def _digests(folder: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    files = sorted(p for pattern in patterns for p in folder.glob(pattern))
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def _command_outputs(out: Path) -> dict[str, Any]:
    """Each reporting command's output on the demo's database, made comparable: the
    folder it ran in and times of day replaced by placeholders."""
    db = str(out / "formtool.db")
    returns = sorted((out / "returns").glob("*.*"))
    accepted, amended = (p.name.rsplit(".", 1)[0] for p in returns[4:6])
    commands: list[list[str]] = [
        ["forms", "list", "--json"],
        *(["forms", "show", form, "--json"] for form in ("csc", "quality_practice")),
        ["calendar", "--year", "2026", "--json"],
        ["status", "--month", "2026-11", "--db", db, "--json"],
        ["status", "--db", db],
        ["moderation-sample", "--month", "2026-11", "--seed", "3", "--db", db, "--json"],
        ["import", str(returns[0]), str(returns[1]), "--db", db, "--json"],
        ["check", accepted, "--accept", "--db", db, "--json"],
        ["check", amended, "--amend", "Add the plan's date", "--db", db, "--json"],
        ["export", "--table", "answers", "--format", "csv", "--db", db],
        ["pack", "pmu", "--month", "2026-11", "--out", str(out / "p"), "--db", db, "--json"],
        ["users", "list", "--db", db, "--json"],
    ]
    outputs: dict[str, Any] = {}
    for args in commands:
        result = CliRunner().invoke(cli, args)
        text = result.output.replace(str(out), "<demo>").replace(str(ROOT), "<repo>")
        text = TIMESTAMP.sub("<time>", text)
        key = " ".join(a if a != db else "<db>" for a in args).replace(str(out), "<demo>")
        outputs[key] = {
            "exit": result.exit_code,
            "output": _parsed(text) if "--json" in args else _digest_if_long(text),
        }
    return outputs


def _digest_if_long(text: str) -> str:
    """Long text (an export) kept as its digest, so the baseline stays reviewable."""
    if len(text) < 4000:
        return text
    return f"{len(text)} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()}"


def _parsed(text: str) -> Any:
    """JSON output as data (so key order does not matter); a refusal stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def capture(demo: Demo, copy: Path) -> dict[str, Any]:
    out = demo.copy(copy)
    with clock.frozen(DEMO_DAY):
        commands = _command_outputs(out)
    return {
        "demo report": demo.report.as_dict(),
        "generated files": _digests(
            out, ("forms/*", "inputs/*", "allocation.csv", "returns/*.docx")
        ),
        "commands": commands,
    }


def test_behaviour_matches_the_baseline(demo_run, tmp_path):
    now = json.loads(json.dumps(capture(demo_run, tmp_path / "demo")))
    if os.environ.get(WRITE_VAR):
        BASELINE.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    kept = json.loads(BASELINE.read_text(encoding="utf-8"))
    assert sorted(now) == sorted(kept)
    for part in kept:
        if isinstance(kept[part], dict):
            changed = sorted(
                k
                for k in kept[part].keys() | now[part].keys()
                if kept[part].get(k) != now[part].get(k)
            )
            assert changed == [], f"{part} changed: {changed} (see the module docstring)"
    assert now == kept
