"""Working-day deadlines on known dates: Christmas, Easter, the late-May bank holiday."""

from __future__ import annotations

import datetime as dt

from formtool.programme.deadlines import (
    add_working_days,
    bank_holiday,
    first_working_day,
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
    hull = load_policy("hull")  # an amendment back within 3 working days (para 20)
    assert hull.due("amendment", "csc", 2026, 12, after=D(2026, 12, 23)) == D(2026, 12, 30)
    assert load_policy("rochdale").due("amendment", "csc", 2026, 12, after=D(2026, 12, 23)) is None


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
