"""The one clock: business dates come from formtool.clock.today(), which tests, `--today` and
FORMTOOL_TODAY set; no other module reads the machine's date for a business rule."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from formtool import clock, store
from formtool.cli import cli

ROOT = Path(__file__).resolve().parents[1]
#: Calls that read the machine's clock. Outside clock.py they are allowed only for real time
#: (time stamps of events, sessions, the access log), marked on the line with "# real time".
MACHINE_CLOCK = {("date", "today"), ("datetime", "now"), ("datetime", "utcnow"), ("time", "time")}


def _machine_clock_calls(path: Path) -> list[str]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        target = node
        owner = target.value
        owner_name = (
            owner.id
            if isinstance(owner, ast.Name)
            else owner.attr
            if isinstance(owner, ast.Attribute)
            else ""
        )
        if (owner_name, target.attr) in MACHINE_CLOCK:
            line = lines[node.lineno - 1]
            if "# real time" not in line:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {line.strip()}")
    return found


def test_only_the_clock_reads_the_machine_date() -> None:
    offenders = [
        hit
        for folder in ("formtool", "bench", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name not in ("clock.py", "test_clock.py")
        for hit in _machine_clock_calls(path)
    ]
    assert offenders == [], "use formtool.clock.today() (or mark real time):\n" + "\n".join(
        offenders
    )


def test_the_lint_finds_a_stray_call(tmp_path: Path) -> None:
    stray = ROOT / "formtool" / "_stray_for_test.py"
    stray.write_text("import datetime as dt\n\nDAY = dt.date.today()\n")
    try:
        assert len(_machine_clock_calls(stray)) == 1
    finally:
        stray.unlink()


def test_today_is_england(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(clock.ENV_VAR, raising=False)
    clock.set_today(None)
    try:
        assert clock.today() == dt.datetime.now(clock.ENGLAND).date()
    finally:
        clock.set_today(None)


def test_environment_and_set_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.ENV_VAR, "2027-03-31")
    assert clock.today() == dt.date(2027, 3, 31)
    with clock.frozen(dt.date(2028, 2, 29)):
        assert clock.today() == dt.date(2028, 2, 29)
    assert clock.today() == dt.date(2027, 3, 31)
    monkeypatch.setenv(clock.ENV_VAR, "31/03/2027")
    with pytest.raises(clock.ClockError, match=r"\[FORMTOOL_TODAY\] '31/03/2027' is not a date"):
        clock.today()


def test_cli_today_option_sets_the_business_date(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    store.open_store(db)  # status only reads: it never creates a database
    result = CliRunner().invoke(cli, ["--today", "2027-01-02", "status", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    assert '"today": "2027-01-02"' in result.output
    bad = CliRunner().invoke(cli, ["--today", "2027-13-01", "status", "--db", db])
    assert bad.exit_code == 2
    assert "'2027-13-01' is not a date" in bad.output
