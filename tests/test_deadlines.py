"""Working-day deadlines on known dates: Christmas, Easter, the late-May bank holiday."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner

from formtool.cli import cli
from formtool.programme.deadlines import (
    add_working_days,
    amendment_due,
    bank_holiday,
    first_working_day,
    inadequate_follow_up,
    is_working_day,
    nearest_working_day,
)
from formtool.programme.policy import load_policy, timetable

D = dt.date


def test_bank_holidays_england_and_wales():
    assert bank_holiday(D(2026, 12, 28)) == "Boxing Day (observed)"
    assert bank_holiday(D(2026, 4, 3)) == "Good Friday"
    assert bank_holiday(D(2026, 5, 25)) == "Spring Bank Holiday"
    assert bank_holiday(D(2026, 3, 17)) is None  # St Patrick's Day: Northern Ireland only
    assert not is_working_day(D(2026, 12, 26)) and is_working_day(D(2026, 12, 29))


def test_working_days_across_christmas_and_easter():
    assert add_working_days(D(2026, 12, 24), 1) == D(2026, 12, 29)
    assert add_working_days(D(2026, 12, 24), 3) == D(2026, 12, 31)
    assert add_working_days(D(2026, 4, 2), 1) == D(2026, 4, 7)
    assert add_working_days(D(2026, 4, 7), -1) == D(2026, 4, 2)
    assert amendment_due(D(2026, 12, 23)) == D(2026, 12, 30)  # 3 working days


def test_nearest_working_day():
    assert nearest_working_day(D(2026, 12, 14)) == D(2026, 12, 14)  # a Monday
    assert nearest_working_day(D(2026, 11, 14)) == D(2026, 11, 13)  # Saturday -> Friday
    assert nearest_working_day(D(2027, 2, 14)) == D(2027, 2, 15)  # Sunday -> Monday
    assert nearest_working_day(D(2026, 5, 25)) == D(2026, 5, 26)  # bank holiday -> Tuesday
    assert nearest_working_day(D(2026, 12, 26)) == D(2026, 12, 24)  # tie: the earlier


def test_the_policies_timetables_on_known_dates():
    def hull(year: int, month: int) -> dict[str, dt.date]:
        return timetable(load_policy("hull"), year, month)

    def hampshire(year: int, month: int) -> dict[str, dt.date]:
        return timetable(load_policy("hampshire"), year, month)

    december = hull(2026, 12)
    assert december["audit list distributed"] == D(2026, 12, 1)
    assert december["audits due"] == D(2026, 12, 31)
    assert december["management oversight by"] == D(2027, 1, 15)  # 10 days, New Year skipped
    assert december["moderation and overview report by"] == D(2027, 1, 14)
    assert hull(2026, 10)["moderation and overview report by"] == D(2026, 11, 13)
    assert first_working_day(2027, 1) == D(2027, 1, 4)
    assert hampshire(2026, 12)["quality practice tools to PMU"] == D(2027, 1, 20)
    assert hampshire(2026, 12)["PMU collates quality practice results"] == D(2027, 2, 1)
    # The 5th of December 2026 is a Saturday; the 20th of September 2026 a Sunday.
    assert hampshire(2026, 11)["quality practice list to service manager"] == D(2026, 12, 4)
    assert hampshire(2026, 8)["quality practice tools to PMU"] == D(2026, 9, 18)
    assert hampshire(2026, 10)["PMU collates quality practice results"] == D(2026, 12, 1)
    assert hampshire(2026, 11)["PMU collates quality practice results"] == D(2026, 12, 31)


def test_inadequate_follow_up():
    assert inadequate_follow_up(D(2026, 12, 31)) == {
        "review meeting by": D(2027, 1, 28),
        "re-audit by": D(2027, 2, 28),
    }


def test_calendar_command():
    result = CliRunner().invoke(cli, ["calendar", "--year", "2026", "--json"])
    assert result.exit_code == 0
    calendar = json.loads(result.output)
    months = calendar["months"]
    assert calendar["programme"] == "hull" and len(months) == 12
    assert months[11]["audits due"] == "2026-12-31"
    assert "quality practice tools to PMU" not in months[11]  # hampshire's, not hull's
    assert months[11]["bank holidays"] == [
        "2026-12-25 Christmas Day",
        "2026-12-26 Boxing Day",
        "2026-12-28 Boxing Day (observed)",
    ]
    text = CliRunner().invoke(cli, ["calendar", "--year", "2026"]).output
    assert "  audits due                                 Thu 31/12/2026" in text
    other = CliRunner().invoke(cli, ["calendar", "--year", "2026", "--programme", "rochdale"])
    assert "  audits due                                 Sun 31/05/2026" in text
    assert "  audits due                                 Fri 29/05/2026" in other.output
