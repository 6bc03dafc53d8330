"""The one clock for business dates: what day it is, so what is due and what is overdue.

Every module that needs "today" for a business rule asks `today()`; nothing else calls
`date.today()` or `datetime.now()` for one (a lint-style test keeps it so). The date is the
calendar date in England (Europe/London), whatever the server's time zone, unless it was set:

- `set_today(date)` (the CLI's `--today`, tests) fixes it for this process;
- `FORMTOOL_TODAY=YYYY-MM-DD` in the environment fixes it for every process that reads it
  (`formtool serve` says so loudly when it starts).

Real time (session expiry, the access log, events' time stamps) is not a business date and
does not come from here: those use the system clock in UTC.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from formtool.errors import FormtoolError

ENV_VAR = "FORMTOOL_TODAY"
ENGLAND = ZoneInfo("Europe/London")

_fixed: dt.date | None = None


class ClockError(FormtoolError):
    """A date given for "today" cannot be read; the message says how to write it."""


def parse_day(text: str, where: str = ENV_VAR) -> dt.date:
    """An ISO date (YYYY-MM-DD), or ClockError naming where it came from."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ClockError(
            f"[{where}] '{text[:40]}' is not a date; write it as YYYY-MM-DD, e.g. 2026-11-30."
        ) from None


def today() -> dt.date:
    """Today's business date: the fixed date if one was set, else today in England."""
    if _fixed is not None:
        return _fixed
    fixed = os.environ.get(ENV_VAR, "").strip()
    if fixed:
        return parse_day(fixed)
    return dt.datetime.now(ENGLAND).date()


def fixed_today() -> dt.date | None:
    """The date "today" was fixed to (set_today or FORMTOOL_TODAY), or None."""
    if _fixed is not None:
        return _fixed
    fixed = os.environ.get(ENV_VAR, "").strip()
    return parse_day(fixed) if fixed else None


def set_today(day: dt.date | None) -> None:
    """Fix today's business date for this process (None: back to the real date)."""
    global _fixed
    _fixed = day


@contextmanager
def frozen(day: dt.date) -> Iterator[None]:
    """Today is `day` inside the block, then whatever it was before."""
    before = _fixed
    set_today(day)
    try:
        yield
    finally:
        set_today(before)
