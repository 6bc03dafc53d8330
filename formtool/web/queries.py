"""Presentation helpers for the web workspace: months to show, names to print, images and
zips to send. No business rule lives here: every figure comes from the library."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.errors import FormtoolError, Issue, printable
from formtool.periods import Month, show_day, show_time


def this_month(today: dt.date | None = None) -> Month:
    return Month.of(today or clock.today())


def month_or_default(text: str | None) -> Month:
    """The month asked for (YYYY-MM), or this month when none was; a month that cannot be
    (2026-13, 9999-12) is a one-line error, not a silent jump to another month."""
    return Month(text, "The month") if text else this_month()


def seed_or_zero(text: str | None) -> int:
    """A sampling seed from a page: a whole number of up to 9 digits (0 when absent)."""
    text = (text or "0").strip()
    if not (text.isdigit() and len(text) <= 9):
        raise FormtoolError(
            f"The seed '{printable(text, 20)}' is not a whole number of up to 9 digits."
        )
    return int(text)


def month_name(month: str) -> str:
    return Month(month).name


def shift_month(month: str, by: int) -> str:
    return Month(month).shift(by)


def day(value: dt.date | str | None) -> str:
    """A date as people in English councils write it: Mon 30/11/2026."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            parsed = (
                dt.date.fromisoformat(value)
                if len(value) == 10
                else dt.datetime.fromisoformat(value)
            )
        except ValueError:
            return value
        return day(parsed)
    if isinstance(value, dt.datetime):
        return show_time(value)
    return show_day(value)


def shown_issue(issue: Issue | dict[str, str], name: str) -> dict[str, str]:
    """An issue for the page, its message naming the file as uploaded (not the private
    folder it was read from)."""
    if isinstance(issue, Issue):
        issue = dataclasses.replace(issue, file=name).as_dict()
    return issue | {"severity": issue.get("severity", "warning")}


def sentence(text: str) -> str:
    """First letter capital, the rest as written (acronyms such as PMU stay)."""
    return text[:1].upper() + text[1:]


def tool_names() -> dict[str, str]:
    """Form id -> the tool's short name, for tables (CSC, Early Help ...)."""
    from formtool.definitions import all_forms

    return {form_id: form.name for form_id, form in all_forms().items()}


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def zip_folder(folder: Path, patterns: Iterable[str]) -> bytes:
    """The files under `folder` matching the patterns, zipped flat (names are unique)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for pattern in patterns:
            for path in sorted(folder.rglob(pattern)):
                if path.is_file() and not path.name.startswith("."):
                    archive.write(path, path.name)
    return out.getvalue()


def download_name(name: str) -> str:
    """A file name safe in a Content-Disposition header (ASCII, no quotes)."""
    ascii_name = printable(name).encode("ascii", "replace").decode("ascii")
    return re.sub(r"[^A-Za-z0-9._ ()-]+", "_", ascii_name).strip() or "download"


def figures_key(figures: Any, settings: Any) -> str:
    """A digest of what a PMU report is drawn from, to reuse its rendered charts while the
    data is unchanged: every audit's state, grades and current return (returns never change
    once stored; a new one has a new id), the trend, the concerns' counts, the period and the
    settings."""
    digest = hashlib.sha256()
    digest.update(
        repr(
            (
                figures.period,
                figures.as_of,
                figures.min_base,
                settings,
                figures.trend,
                figures.concerns,  # raised or actioned outside the workspace
                figures.follow_up,  # a review or meeting recorded from the command line
                figures.policy,  # the programme's words and rate
            )
        ).encode()
    )
    for a in (*figures.audits, *figures.activity_audits):  # the activities' section too
        digest.update(
            repr(
                (
                    a.audit_id,
                    a.form.id,
                    a.form.version,
                    a.case_number,
                    a.team,
                    a.auditor,
                    a.state,
                    a.due_date,
                    a.auditor_grade,
                    a.moderated_grade,
                    a.return_id,
                )
            ).encode()
        )
    return digest.hexdigest()


def period_shortcuts(today: dt.date | None = None) -> list[tuple[str, str]]:
    month = this_month(today)
    quarter = month.quarter
    last_quarter = month.shift(-3).quarter
    return [
        ("This month", month),
        ("Last month", month.shift(-1)),
        ("This quarter", quarter),
        ("Last quarter", last_quarter),
        ("This financial year", quarter[:4]),
    ]
