"""Answer scales and field kinds: one table from a kind of answer to its Word control, its
Excel validation and its parser, so generate/, read/ and the filler never disagree.

What the answers of a scale mean (which are favourable, which grades are good, which call
for a re-audit, which order grades rank in) is data from the definitions, held here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

FAVOURABLE, PARTIAL, UNFAVOURABLE = "favourable", "partial", "unfavourable"
OUTCOMES = (FAVOURABLE, PARTIAL, UNFAVOURABLE)


@dataclass(frozen=True)
class Scale:
    """A named list of allowed answers, e.g. Yes/No/Partially/N/A, and what they mean."""

    id: str
    label: str
    choices: tuple[str, ...]
    descriptors: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    favourable: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()
    unfavourable: tuple[str, ...] = ()
    ranked: bool = False  # choices are listed best first (grades: moderation moves up/down)
    bands: tuple[tuple[str, str], ...] = ()  # outcome -> label, e.g. favourable: Good or better
    follow_up: tuple[str, ...] = ()  # answers that call for a review and a re-audit

    def parse(self, text: str) -> str | None:
        """The canonical choice for what someone typed, or None if it is not on the list.

        Forgiving about case, spacing and the usual spellings of N/A, because auditors
        type into cells whose controls Google Docs or an old Word may have stripped.
        """
        wanted = _fold(text)
        for choice in self.choices:
            if _fold(choice) == wanted:
                return choice
        return None

    def outcome(self, choice: str) -> str | None:
        """favourable / partial / unfavourable, or None (N/A, unanswered, neutral)."""
        for outcome in OUTCOMES:
            if choice in getattr(self, outcome):
                return outcome
        return None

    def band_label(self, outcome: str) -> str:
        return dict(self.bands).get(outcome, outcome.capitalize())

    def rank(self, choice: str) -> int | None:
        """0 for the best choice of a ranked scale; None if unranked or not a choice."""
        return self.choices.index(choice) if self.ranked and choice in self.choices else None

    def excel_list(self) -> str:
        """The formula1 of an Excel list validation (quoted, comma-separated)."""
        return '"' + ",".join(self.choices) + '"'


def _fold(text: str) -> str:
    folded = re.sub(r"[\s/._-]+", "", text.strip().lower())
    return "na" if folded in {"na", "notapplicable", "n/a"} else folded


class FieldKind(Enum):
    """What an answerable field holds, and so which control it gets."""

    choice = "choice"
    text = "text"
    date = "date"


DATE_DISPLAY = "dd/MM/yyyy"  # Word's date picker format (UK councils)
EXCEL_DATE_FORMAT = "dd/mm/yyyy"
EXCEL_MAX_SERIAL = 2_958_465  # 31/12/9999, the last date Excel has
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        )
    )
    for name in names
}
_MONTH = "(?P<month>[a-z]+)"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4}|\d{2})"
#: Spellings Word's date box writes (UK and US lists) and people type, after `_plain`:
#: day before month, or a month *name* before the day; a numeric month always comes second
#: (DD/MM, the UK order), so 11/20/2026 stays "not a date" rather than a guess.
_SPELLINGS = tuple(
    re.compile(pattern, re.ASCII)
    for pattern in (
        rf"{_DAY}[ -]{_MONTH}[ -]{_YEAR}",  # 20 November 2026, 20th Nov 26, 20-Nov-2026
        rf"{_MONTH} {_DAY} {_YEAR}",  # Nov 20, 2026 / November 20th 2026
        r"(?P<day>\d{1,2})[./-](?P<number>\d{1,2})[./-](?P<year>\d{2})",  # 20.11.26, 20-11-26
    )
)


def _plain(text: str) -> tuple[str, int | None]:
    """Text lower-cased with commas and month-name dots gone and spaces collapsed, and the
    weekday it starts with (Monday = 0), if any: "Friday, 20 Nov. 2026" -> "20 nov 2026", 4."""
    words = re.sub(r"(?<=[a-z])\.", " ", text.lower().replace(",", " ")).split()
    weekday = _WEEKDAYS.get(words[0]) if words else None
    return " ".join(words[1:] if weekday is not None else words), weekday


def _spelled_date(text: str) -> dt.date | None:
    """A date in one of `_SPELLINGS`; a two-digit year is read as %y reads it (00-68 are
    20xx, 69-99 are 19xx: a case list's date of birth '05/11/99' is 1999); a weekday that
    does not match the date makes it no date at all (two candidates)."""
    plain, weekday = _plain(text)
    for pattern in _SPELLINGS:
        found = pattern.fullmatch(plain)
        if found is None:
            continue
        parts = found.groupdict()
        month = int(parts["number"]) if parts.get("number") else _MONTHS.get(parts["month"])
        year = int(parts["year"])
        if len(parts["year"]) == 2:
            year += 2000 if year < 69 else 1900
        try:
            day = dt.date(year, month or 0, int(parts["day"]))
        except ValueError:
            return None
        return day if weekday in (None, day.weekday()) else None
    return None


def parse_date(text: str) -> dt.date | None:
    """A date typed or picked in Word, Excel or LibreOffice; None if it is not one."""
    text = text.strip()[:40]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", text):  # Word stores picked dates as ISO datetimes
        text = text[:10]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return _spelled_date(text)


def excel_serial_date(serial: float, date1904: bool = False) -> dt.date | None:
    """The date an Excel serial number stands for; None outside Excel's calendar
    (negative, NaN, infinite, or after 31/12/9999): a number pasted into a date cell."""
    if not math.isfinite(serial) or not 1 <= serial <= EXCEL_MAX_SERIAL:
        return None
    epoch = dt.date(1904, 1, 1) if date1904 else dt.date(1899, 12, 30)
    try:
        return epoch + dt.timedelta(days=int(serial))
    except OverflowError:
        return None


def _parse_choice(scale: Scale | None, raw: str) -> str | None:
    return scale.parse(raw) if scale is not None else None


def _parse_date(_scale: Scale | None, raw: str) -> str | None:
    parsed = parse_date(raw)
    return parsed.isoformat() if parsed else None


def _parse_text(_scale: Scale | None, raw: str) -> str | None:
    return raw


@dataclass(frozen=True)
class KindSpec:
    """How one kind of field is offered in Word and Excel, and read back."""

    word_control: str  # the w:sdtPr element: dropDownList, date, or "" (rich text)
    placeholder: str  # what an empty Word control shows
    excel_validation: str | None  # list / date / None
    excel_format: str | None  # number format of the answer cell
    parse: Callable[[Scale | None, str], str | None]  # canonical value, None if invalid
    lines: int  # how many lines its answer cell starts with in Excel


KINDS: dict[FieldKind, KindSpec] = {
    FieldKind.choice: KindSpec("dropDownList", "Choose", "list", None, _parse_choice, 1),
    FieldKind.date: KindSpec("date", "Date", "date", EXCEL_DATE_FORMAT, _parse_date, 1),
    FieldKind.text: KindSpec("", "Type here", None, None, _parse_text, 3),
}

#: Placeholders of forms generated before formtool 0.2, still out with auditors.
LEGACY_PLACEHOLDERS = frozenset(
    {"Choose an item.", "Click or tap here to enter text.", "Click or tap to enter a date."}
)
