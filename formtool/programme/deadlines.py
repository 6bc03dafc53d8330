"""Deadlines in working days, with England and Wales bank holidays (the `holidays` package).

The arithmetic the programme policies' deadline rules are made of (programme/policy.py): the
first and last working day, the nearest working day, N working days after a day. Which rule a
step follows is the council's, in its policy file: nothing here names one. An audit went out
on the day of its `sent` event,
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


def bank_holidays_in(year: int, month: int) -> list[str]:
    """The month's bank holidays, "YYYY-MM-DD Name", in date order."""
    return [
        f"{d.isoformat()} {n}" for d, n in sorted(_bank_holidays(year).items()) if d.month == month
    ]
