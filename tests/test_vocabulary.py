"""One source per vocabulary: action-table roles, return stages, web roles, months and periods,
and how dates are written. Where a word must also appear in data (the JSON Schema, the
database's columns, the command line's choices), these tests hold the copies to the source."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from formtool import store
from formtool.access.roles import ROLES
from formtool.cli import cli
from formtool.definitions import ACTION_ROLES, AUDIT, PREPARED
from formtool.packs import export
from formtool.periods import (
    Month,
    PeriodError,
    is_month,
    parse_period,
    period_for,
    show_date,
    show_day,
    show_time,
)
from formtool.read import validate

ROOT = Path(__file__).resolve().parents[1]


def test_action_roles_are_the_schema_the_store_and_the_export():
    schema = json.loads((ROOT / "formtool" / "definitions" / "form_schema.json").read_text())
    enums = [
        node["role"]["enum"]
        for node in _walk(schema)
        if isinstance(node, dict) and "due_date" in node.get("role", {}).get("enum", [])
    ]
    assert enums == [list(ACTION_ROLES)]
    stored = [c.name for c in store.actions.columns][4:]
    assert stored == list(ACTION_ROLES)
    assert set(export.ACTION_COLUMNS[6:]) == set(ACTION_ROLES)


def _walk(node: object) -> list[object]:
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found += _walk(child)
    return found


def test_return_stages_are_one_pair():
    assert (validate.PREPARED, validate.AUDIT) == (PREPARED, AUDIT)
    assert (store.PREPARED, store.AUDIT) == (PREPARED, AUDIT)


def test_the_command_line_offers_exactly_the_roles():
    users = cli.commands["users"]
    assert isinstance(users, click.Group)
    add = users.commands["add"]
    [role] = [p for p in add.params if p.name == "roles"]
    assert isinstance(role.type, click.Choice)
    assert list(role.type.choices) == list(ROLES)


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "1999-12", "2100-01", "26-11", " ", "2026-1"]
)
def test_an_impossible_month_is_refused_everywhere(text, tmp_path):
    assert not is_month(text.strip())
    with pytest.raises(PeriodError, match="is not a month"):
        Month(text)
    with pytest.raises(PeriodError):
        period_for(month=text)
    result = CliRunner().invoke(cli, ["status", "--month", text, "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "is not a month" in result.output


def test_a_month_is_its_text_and_knows_its_neighbours():
    month = Month("2026-12")
    assert month == "2026-12" and isinstance(month, str)
    assert (month.shift(1), month.shift(-12)) == ("2027-01", "2025-12")
    assert month.financial_year() == ("2026-04", "2027-03")
    assert Month("2027-02").financial_year() == ("2026-04", "2027-03")
    assert (month.first_day, month.last_day) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert (month.name, month.short_name) == ("December 2026", "Dec 2026")
    assert Month.of(dt.date(2028, 2, 29)) == "2028-02"
    assert Month("2099-12").shift(1) == "2100-01"  # computed, not typed: not refused
    assert (Month("2026-03").quarter, Month("2026-04").quarter) == ("2025-Q4", "2026-Q1")
    assert Month("2027-01").quarter == "2026-Q4"


def test_periods_from_one_box_or_three_options():
    assert parse_period("2026-q4").months == ("2027-01", "2027-02", "2027-03")
    assert parse_period("2026").label == "2026-27"
    assert parse_period("2026").span == "Apr 2026 - Mar 2027"
    assert parse_period("2026-11").previous().label == "2026-10"
    assert parse_period("2026-Q1").previous().label == "2025-Q4"
    with pytest.raises(PeriodError, match="is not a period"):
        parse_period("next week")
    with pytest.raises(PeriodError, match="exactly one"):
        period_for(month="2026-11", year="2026")


def test_dates_are_written_one_way():
    day = dt.date(2026, 11, 30)
    assert (show_date(day), show_day(day)) == ("30/11/2026", "Mon 30/11/2026")
    assert show_time(dt.datetime(2026, 11, 30, 14, 5)) == "30/11/2026 14:05"


def test_nothing_else_spells_the_date_format():
    spelled = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "formtool").rglob("*.py"))
        if path.name != "periods.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "%d/%m/%Y" in line and "_DATE_FORMATS" not in line  # reading typed dates is another job
    ]
    assert spelled == []
