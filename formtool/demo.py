"""`formtool demo`: the whole cycle on synthetic data, with nothing to set up.

All names are obviously made up (family names like "Example" and "Sample", staff named
after their role) so no demo output can be mistaken for a real child's record.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

from formtool.cases import load_cases
from formtool.definitions import FormDefinition, load_forms
from formtool.generate import FORMATS, write_forms

GIVEN = (
    "Alex",
    "Sam",
    "Jordan",
    "Casey",
    "Riley",
    "Morgan",
    "Jamie",
    "Robin",
    "Charlie",
    "Frankie",
    "Billie",
    "Drew",
    "Kit",
    "Rowan",
    "Sky",
)
FAMILY = (
    "Example",
    "Sample",
    "Specimen",
    "Testcase",
    "Placeholder",
    "Fictional",
    "Madeup",
    "Dummy",
    "Mockton",
    "Notreal",
)
TEAMS = (
    "Team North (synthetic)",
    "Team South (synthetic)",
    "Team East (synthetic)",
    "Team West (synthetic)",
)
ETHNICITY = ("White British", "Mixed", "Asian British", "Black British", "Not recorded")
GENDER = ("Female", "Male", "Not recorded")
AUDIT_TYPES = ("Random sample", "Manager's choice", "Thematic", "Re-audit")
CASES_PER_FORM = {
    "csc": 8,
    "early_help": 6,
    "foster_carer": 3,
    "prospective_adopter": 2,
    "supported_lodgings": 2,
    "quality_practice": 4,
}


def _staff(role: str, team: int, n: int) -> str:
    return f"{role} {chr(65 + team)}{n} (synthetic)"


def synthetic_case(
    form: FormDefinition, index: int, due: dt.date, rng: random.Random
) -> dict[str, str]:
    """One made-up case row with every column the form's header can show."""
    team = rng.randrange(len(TEAMS))
    auditor_team = (team + 1 + rng.randrange(len(TEAMS) - 1)) % len(TEAMS)  # never own team
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    born = due - dt.timedelta(days=rng.randrange(365, 17 * 365))
    values = {
        "case_number": f"SYN{form.id[:2].upper()}{index:04d}",
        "family_name": family,
        "given_names": given,
        "dob": born.isoformat(),
        "gender": rng.choice(GENDER),
        "ethnicity": rng.choice(ETHNICITY),
        "primary_language": "English",
        "worker": _staff("Worker", team, rng.randrange(1, 4)),
        "manager": _staff("Manager", team, 1),
        "team": TEAMS[team],
        "auditor": _staff("Auditor", auditor_team, rng.randrange(1, 3)),
        "audit_type": rng.choice(AUDIT_TYPES),
        "due_date": due.isoformat(),
        "carer_names": f"{given} and Partner {family}",
        "approval_date": (due - dt.timedelta(days=rng.randrange(200, 3000))).isoformat(),
        "approval_levels": rng.choice(("Short term, 0-18, 2 children", "Long term, 5-18, 1 child")),
        "children_placed": f"Child {rng.randrange(10, 99)} (synthetic)",
        "provider_names": f"{given} {family}",
        "approval_terms": rng.choice(("Staying Put", "Supported Lodgings")),
        "lcs_number": f"LCS{rng.randrange(10000, 99999)}",
        "religion": "Not recorded",
        "practising": "No",
        "languages": "English",
        "disabilities": "None recorded",
        "sexuality": "Not recorded",
        "client_group": "Children and families",
    }
    return {h.column: values.get(h.column, "") for h in form.header} | {
        c: values[c] for c in ("case_number", "auditor", "due_date")
    }


def write_case_list(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def month_end(today: dt.date) -> dt.date:
    return today.replace(day=calendar.monthrange(today.year, today.month)[1])


def run_demo(out_dir: Path, seed: int = 2026, today: dt.date | None = None) -> dict[str, Any]:
    """Synthetic case lists -> pre-filled forms of every type. Returns where things went."""
    rng = random.Random(seed)
    due = month_end(today or dt.date.today())
    report: dict[str, Any] = {
        "out": str(out_dir),
        "cases_dir": str(out_dir / "cases"),
        "forms": [],
        "files": 0,
    }
    for form_id, form in load_forms().items():
        rows = [
            synthetic_case(form, i, due, rng) for i in range(1, CASES_PER_FORM.get(form_id, 3) + 1)
        ]
        cases_path = out_dir / "cases" / f"{form_id}.csv"
        write_case_list(cases_path, rows)
        produced = write_forms(
            form, load_cases(cases_path, form), out_dir / "forms" / form_id, FORMATS
        )
        report["forms"].append(
            {"form_id": form_id, "count": len(rows), "out": str(out_dir / "forms" / form_id)}
        )
        report["files"] += len(produced)
    return report
