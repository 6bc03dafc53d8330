"""Months, reporting periods and how dates are written: one definition of each.

- `Month` is an audit month, checked once where it comes in (a command's option, a page's
  query, a plan file) and then passed on. It *is* its ISO text (YYYY-MM, a `str`), because
  that is how the store keeps months and how people type them; `Month("2026-13")` is refused.
- `Period` is what a PMU pack reports on: a month, a financial quarter (Q1 = April-June) or a
  financial year (April-March), as a run of months.
- `show_date`, `show_time`, `show_day`: dates as people in English councils write them
  (30/11/2026), the one place that spells the format.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from formtool.errors import FormtoolError, printable

#: The years formtool reasons about: an audit programme runs in this century, and anything
#: outside it is a typing slip (9999-12, 0000-01), refused rather than computed with.
FIRST_YEAR, LAST_YEAR = 2000, 2099
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_YEAR = re.compile(r"\d{4}")
FIRST_MONTH_OF_YEAR = 4  # the financial year starts in April


class PeriodError(FormtoolError):
    """A month, quarter or year that cannot be: the message says how to write one."""


def is_year(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR


def is_month(text: str) -> bool:
    """True for a YYYY-MM month in FIRST_YEAR..LAST_YEAR."""
    found = _MONTH.fullmatch(text)
    return found is not None and is_year(int(found[1]))


class Month(str):
    """An audit month: its ISO text YYYY-MM, checked when made."""

    __slots__ = ()

    def __new__(cls, text: str, where: str = "month") -> Month:
        text = str(text).strip()
        if not is_month(text):
            raise PeriodError(
                f"{where + ' ' if where else ''}'{printable(text, 40)}' is not a month: write "
                "YYYY-MM with a year "
                f"between {FIRST_YEAR} and {LAST_YEAR}, e.g. 2026-11."
            )
        return super().__new__(cls, text)

    @classmethod
    def of(cls, day: dt.date) -> Month:
        """The month `day` falls in."""
        return cls(f"{day:%Y-%m}")

    @property
    def year(self) -> int:
        return int(self[:4])

    @property
    def number(self) -> int:
        return int(self[5:])

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.number, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.year, self.number, calendar.monthrange(self.year, self.number)[1])

    @property
    def name(self) -> str:
        """November 2026."""
        return f"{calendar.month_name[self.number]} {self.year}"

    @property
    def short_name(self) -> str:
        """Nov 2026."""
        return f"{calendar.month_abbr[self.number]} {self.year}"

    def shift(self, months: int) -> Month:
        """The month `months` later (earlier when negative). A computed month may fall outside
        FIRST_YEAR..LAST_YEAR (a history window, a "next month" link): only input is checked."""
        index = self.year * 12 + self.number - 1 + months
        return str.__new__(Month, f"{index // 12:04d}-{index % 12 + 1:02d}")

    @property
    def quarter(self) -> str:
        """The financial quarter holding it (Q1 = April-June): 2026-Q3."""
        start = self.year if self.number >= FIRST_MONTH_OF_YEAR else self.year - 1
        return f"{start}-Q{(self.number - FIRST_MONTH_OF_YEAR) % 12 // 3 + 1}"

    def financial_year(self) -> tuple[Month, Month]:
        """The first and last month of the financial year (April-March) holding it."""
        start = self.year if self.number >= FIRST_MONTH_OF_YEAR else self.year - 1
        return Month(f"{start}-04"), Month(f"{start + 1}-03")


def months_from(first: Month, count: int) -> tuple[Month, ...]:
    return tuple(first.shift(i) for i in range(count))


@dataclass(frozen=True)
class Period:
    """A reporting period: a month, a financial quarter or a financial year."""

    kind: str  # month / quarter / year
    label: str  # 2026-11, 2026-Q3, 2026-27
    months: tuple[Month, ...]  # oldest first

    @property
    def span(self) -> str:
        """Nov 2026, or Oct 2026 - Dec 2026."""
        first, last = self.months[0].short_name, self.months[-1].short_name
        return first if first == last else f"{first} - {last}"

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        if self.kind == "month":
            return month_period(self.months[0].shift(-1))
        if self.kind == "quarter":
            year, quarter = int(self.label[:4]), int(self.label[-1])
            return quarter_period(
                year - 1 if quarter == 1 else year, 4 if quarter == 1 else quarter - 1
            )
        return year_period(int(self.label[:4]) - 1)


def month_period(month: Month) -> Period:
    return Period("month", str(month), (month,))


def quarter_period(year: int, quarter: int) -> Period:
    """Financial quarter: Q1 = April-June of `year`, Q4 = January-March of `year` + 1."""
    first = Month(f"{year:04d}-04").shift(3 * (quarter - 1))
    return Period("quarter", f"{year}-Q{quarter}", months_from(first, 3))


def year_period(year: int) -> Period:
    """Financial year: April `year` to March `year` + 1, labelled 2026-27."""
    return Period("year", f"{year}-{(year + 1) % 100:02d}", months_from(Month(f"{year}-04"), 12))


def period_for(
    month: str | None = None, quarter: str | None = None, year: str | None = None
) -> Period:
    """The reporting period for --month YYYY-MM, --quarter YYYY-Qn or --year YYYY."""
    if sum(x is not None for x in (month, quarter, year)) != 1:
        raise PeriodError("Give exactly one of --month YYYY-MM, --quarter YYYY-Qn, --year YYYY.")
    if month is not None:
        return month_period(Month(month, "--month"))
    if quarter is not None:
        found = _QUARTER.fullmatch(quarter.strip().upper())
        if not found or not is_year(int(found[1])):
            raise PeriodError(
                f"--quarter '{printable(quarter, 40)}' is not YYYY-Qn (e.g. 2026-Q3; Q1 = Apr-Jun)."
            )
        return quarter_period(int(found[1]), int(found[2]))
    text = (year or "").strip()
    if not _YEAR.fullmatch(text) or not is_year(int(text)):
        raise PeriodError(
            f"--year '{printable(text, 40)}' is not YYYY (e.g. 2026 for April 2026 - March 2027)."
        )
    return year_period(int(text))


def parse_period(text: str) -> Period:
    """A period as typed in one box: 2026-11, 2026-Q3 or 2026 (the web's period picker)."""
    text = text.strip().upper()
    if re.fullmatch(r"\d{4}-Q\d", text):
        return period_for(quarter=text)
    if _YEAR.fullmatch(text):
        return period_for(year=text)
    if re.fullmatch(r"\d{4}-\d\d", text):
        return month_period(Month(text, "period"))
    raise PeriodError(
        f"'{printable(text, 40)}' is not a period. Use a month (2026-11), a financial quarter "
        "(2026-Q3) or a financial year (2026)."
    )


def show_date(day: dt.date) -> str:
    """30/11/2026."""
    return f"{day:%d/%m/%Y}"


def show_time(moment: dt.datetime) -> str:
    """30/11/2026 14:05."""
    return f"{moment:%d/%m/%Y %H:%M}"


def show_day(day: dt.date) -> str:
    """Mon 30/11/2026."""
    return f"{day:%a %d/%m/%Y}"


def iso_text(value: Any) -> str:
    """A stored value as text for data (exports, JSON): dates in ISO form, nothing as ''."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "" if value is None else str(value)
