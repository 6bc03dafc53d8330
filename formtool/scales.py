"""Answer scales and field kinds: one table from a kind of answer to its Word control,
its Excel validation and its parser, so generate/ and read/ never disagree."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Scale:
    """A named list of allowed answers, e.g. Yes/No/Partially/N/A."""

    id: str
    label: str
    choices: tuple[str, ...]
    descriptors: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

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

    def excel_list(self) -> str:
        """The formula1 of an Excel list validation (quoted, comma-separated)."""
        return '"' + ",".join(self.choices) + '"'


def _fold(text: str) -> str:
    folded = re.sub(r"[\s/._-]+", "", text.strip().lower())
    return "na" if folded in {"na", "notapplicable", "n/a"} else folded


class FieldKind(Enum):
    """What an answerable field holds, and so which control it gets."""

    choice = "choice"  # Word dropdown list / Excel list validation
    text = "text"  # Word multi-line plain-text control / unlocked wrapped cell
    date = "date"  # Word date picker / Excel date validation


DATE_DISPLAY = "dd/MM/yyyy"  # Word's date picker format (UK councils)
EXCEL_DATE_FORMAT = "dd/mm/yyyy"
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y")


def parse_date(text: str) -> dt.date | None:
    """A date typed or picked in Word, Excel or LibreOffice; None if it is not one."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", text):  # Word stores picked dates as ISO datetimes
        text = text[:10]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def format_date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")
