"""Deadlines in working days, with England and Wales bank holidays (the `holidays` package).

The rules come from the seeds: the audit list goes out by the first working day of the month
and audits are due on its last calendar day (seed 001, Appendix A); moderated audits and the
head of service's overview go in by the 14th of the next month or the nearest working day
(seed 004); amendments come back within 3 working days and management oversight is done
within 10 working days (seed 001); inadequate grades mean a review at 4 weeks and a re-audit
within 2 months (seed 001, Appendix A para 25); the Quality Practice checklist timetable is
the 5th / 20th / 1st (seed 000, Appendix 5). An audit went out on the day of its `sent` event,
or, while its .eml drafts are not marked sent, on the day they were written
(`distribution_date`): a chase only chases what went out.
"""

from __future__ import annotations

import calendar as cal
import datetime as dt
from collections.abc import Iterable
from functools import cache

import holidays


@cache
def _bank_holidays(year: int) -> dict[dt.date, str]:
    return dict(holidays.country_holidays("GB", subdiv="ENG", years=year))


def bank_holiday(day: dt.date) -> str | None:
    return _bank_holidays(day.year).get(day)


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and bank_holiday(day) is None


def add_working_days(day: dt.date, count: int) -> dt.date:
    """The date `count` working days after `day` (before it, if count is negative)."""
    step = 1 if count >= 0 else -1
    remaining = abs(count)
    while remaining:
        day += dt.timedelta(days=step)
        remaining -= is_working_day(day)
    return day


def nearest_working_day(day: dt.date) -> dt.date:
    """The day itself if it is a working day, else the closest one (the earlier on a tie)."""
    for offset in range(0, 10):
        for candidate in (day - dt.timedelta(days=offset), day + dt.timedelta(days=offset)):
            if is_working_day(candidate):
                return candidate
    raise AssertionError("no working day within ten days")  # pragma: no cover


def on_or_before(day: dt.date) -> dt.date:
    """The day itself if it is a working day, else the working day before: a deadline
    "by the 5th" that falls on a weekend or bank holiday is met the working day before."""
    return day if is_working_day(day) else add_working_days(day, -1)


def first_working_day(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 1)
    return day if is_working_day(day) else add_working_days(day, 1)


def last_calendar_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, cal.monthrange(year, month)[1])


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, cal.monthrange(year, month)[1]))


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_timetable(year: int, month: int) -> dict[str, dt.date]:
    """Every deadline of one audit month, as dates."""
    due = last_calendar_day(year, month)
    ny, nm = next_month(year, month)
    ay, am = next_month(ny, nm)
    return {
        "audit list distributed": first_working_day(year, month),
        "audits due": due,
        "management oversight by": add_working_days(due, 10),
        "moderation and overview report by": nearest_working_day(dt.date(ny, nm, 14)),
        "quality practice list to service manager": on_or_before(dt.date(ny, nm, 5)),
        "quality practice tools to PMU": on_or_before(dt.date(ny, nm, 20)),
        "PMU collates quality practice results": on_or_before(dt.date(ay, am, 1)),
    }


#: Events that say an audit's form went out to the person who fills it in, and the one that
#: says it was written as an .eml draft (see programme/mail.py).
SENT_EVENTS = frozenset({"sent", "sent to preparer"})
DRAFTS_EVENT = "drafts written"


def distribution_date(events: Iterable[tuple[dt.datetime, str]]) -> dt.date | None:
    """When an audit went out, from its events (time, name) oldest first, for the deadlines
    that run from distribution (a chase): the day of its last `sent` event; but drafts written
    after that (or with none) and not yet marked sent count from the day they were first
    written. None: it never went out."""
    sent: dt.datetime | None = None
    drafted: dt.datetime | None = None
    for at, name in events:
        if name in SENT_EVENTS:
            sent, drafted = at, None
        elif name == DRAFTS_EVENT and drafted is None:
            drafted = at
    chosen = drafted or sent
    return chosen.date() if chosen is not None else None


def amendment_due(returned_for_amendment: dt.date) -> dt.date:
    return add_working_days(returned_for_amendment, 3)


def inadequate_follow_up(graded: dt.date) -> dict[str, dt.date]:
    return {
        "review meeting by": graded + dt.timedelta(weeks=4),
        "re-audit by": add_months(graded, 2),
    }


def bank_holidays_in(year: int, month: int) -> list[str]:
    """The month's bank holidays, "YYYY-MM-DD Name", in date order."""
    return [
        f"{d.isoformat()} {n}" for d, n in sorted(_bank_holidays(year).items()) if d.month == month
    ]


def year_timetable(year: int) -> list[dict]:
    """The timetable for every month of a calendar year, with its bank holidays."""
    return [
        {
            "month": f"{year}-{m:02d}",
            **{k: v.isoformat() for k, v in month_timetable(year, m).items()},
            "bank holidays": [
                f"{d.isoformat()} {n}"
                for d, n in sorted(_bank_holidays(year).items())
                if d.month == m
            ],
        }
        for m in range(1, 13)
    ]
