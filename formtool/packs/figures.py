"""The numbers in a PMU pack, computed once from the database for a reporting period.

Periods follow the council's financial year (as the seed schedules do): Q1 is April-June,
and year 2026 means April 2026 to March 2027. Every figure in the Word report, the PDF and
the Excel workbook comes from `PmuFigures`, so they cannot disagree.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from formtool import store
from formtool.deadlines import inadequate_follow_up
from formtool.definitions import shipped_forms
from formtool.packs.file import PackError
from formtool.scales import FieldKind
from formtool.store import queries

GRADES = (
    "Outstanding",
    "Good",
    "Requires Improvement with elements of good practice",
    "Requires Improvement",
    "Inadequate",
)
MET = ("Met", "Partially met", "Not met")
OUTSTANDING_STATES = {s.value for s in store.OUTSTANDING}
MONTH_NAMES = calendar.month_abbr


@dataclass(frozen=True)
class Period:
    kind: str  # month / quarter / year
    label: str
    months: tuple[str, ...]  # "YYYY-MM", oldest first

    @property
    def span(self) -> str:
        first, last = self.months[0], self.months[-1]
        return (
            f"{MONTH_NAMES[int(first[5:])]} {first[:4]}"
            if first == last
            else f"{MONTH_NAMES[int(first[5:])]} {first[:4]} - "
            f"{MONTH_NAMES[int(last[5:])]} {last[:4]}"
        )

    def previous(self) -> Period:
        first = dt.date.fromisoformat(self.months[0] + "-01")
        if self.kind == "month":
            return period_for(month=f"{(first - dt.timedelta(days=1)):%Y-%m}")
        if self.kind == "quarter":
            year, quarter = int(self.label[:4]), int(self.label[-1])
            return period_for(
                quarter=f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"
            )
        return period_for(year=str(int(self.label[:4]) - 1))


def _months(start: dt.date, count: int) -> tuple[str, ...]:
    out = []
    year, month = start.year, start.month
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return tuple(out)


def period_for(
    month: str | None = None, quarter: str | None = None, year: str | None = None
) -> Period:
    """The reporting period for --month YYYY-MM, --quarter YYYY-Qn or --year YYYY."""
    if sum(x is not None for x in (month, quarter, year)) != 1:
        raise PackError("Give exactly one of --month YYYY-MM, --quarter YYYY-Qn, --year YYYY.")
    if month is not None:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise PackError(f"--month '{month}' is not YYYY-MM (e.g. 2026-11).")
        return Period("month", month, (month,))
    if quarter is not None:
        match = re.fullmatch(r"(\d{4})-Q([1-4])", quarter.upper())
        if not match:
            raise PackError(f"--quarter '{quarter}' is not YYYY-Qn (e.g. 2026-Q3; Q1 = Apr-Jun).")
        start_year, q = int(match[1]), int(match[2])
        start = dt.date(start_year + (q == 4), (3 * q + 1) if q < 4 else 1, 1)
        return Period("quarter", f"{start_year}-Q{q}", _months(start, 3))
    if not re.fullmatch(r"\d{4}", year or ""):
        raise PackError(f"--year '{year}' is not YYYY (e.g. 2026 for April 2026 - March 2027).")
    start_year = int(year)
    return Period(
        "year", f"{start_year}-{(start_year + 1) % 100:02d}", _months(dt.date(start_year, 4, 1), 12)
    )


@dataclass
class AuditFacts:
    audit_id: str
    form_id: str
    case_number: str
    team: str
    auditor: str
    month: str
    due_date: dt.date
    state: str
    facts: dict[str, str]
    auditor_grade: str = ""
    moderated_grade: str = ""
    moderated_by: str = ""
    returned_on: dt.date | None = None
    return_id: int | None = None

    @property
    def completed(self) -> bool:
        return self.state not in OUTSTANDING_STATES

    @property
    def grade(self) -> str:
        """The grade that counts: the moderated one where there is one."""
        return self.moderated_grade or self.auditor_grade


@dataclass
class PmuFigures:
    period: Period
    as_of: dt.date
    audits: list[AuditFacts]
    answers: dict[int, dict[str, tuple[str, str]]]  # return id -> key -> (value, comment)
    actions: list[dict]
    by_team: dict[str, dict[str, int]] = field(default_factory=dict)
    grades: Counter = field(default_factory=Counter)
    grades_by_team: dict[str, Counter] = field(default_factory=dict)
    kss: dict[str, Counter] = field(default_factory=dict)  # section id -> Met/... counts
    kss_titles: dict[str, str] = field(default_factory=dict)
    prevalence: list[dict] = field(default_factory=list)
    moderation: dict[str, int] = field(default_factory=dict)
    action_totals: dict[str, int] = field(default_factory=dict)
    inadequate: list[dict] = field(default_factory=list)
    trend: list[dict] = field(default_factory=list)

    @property
    def completed(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.completed]

    @property
    def overdue(self) -> list[AuditFacts]:
        return [a for a in self.audits if not a.completed and a.due_date < self.as_of]


def _load_audits(conn: sa.Connection, months: tuple[str, ...]) -> list[AuditFacts]:
    return [
        AuditFacts(
            row.audit_id, row.form_id, row.case_number, row.team, row.auditor, row.month,
            row.due_date, row.state, json.loads(row.facts), row.auditor_grade or "",
            row.moderated_grade or "", row.moderated_by or "",
            row.imported_at.date() if row.imported_at else None, row.return_id)
        for row in queries.audit_rows(conn, months)
    ]


def load_figures(
    engine: sa.Engine, period: Period, as_of: dt.date | None = None, trend_periods: int = 4
) -> PmuFigures:
    as_of = as_of or dt.date.today()
    with engine.connect() as conn:
        audits = _load_audits(conn, period.months)
        if not audits:
            raise PackError(
                f"No audits in {period.label} ({period.span}): nothing to report. "
                "Check the period, or generate and import audits first."
            )
        ids = [a.return_id for a in audits if a.return_id]
        answers = queries.answers_by_return(conn, ids)
        actions = [dict(row._mapping) for row in queries.actions_by_return(conn, ids)]
        figures = PmuFigures(period, as_of, audits, answers, actions)
        _compute(figures)
        history = [period]
        for _ in range(trend_periods - 1):
            history.insert(0, history[0].previous())
        figures.trend = [_trend_point(p, _load_audits(conn, p.months)) for p in history]
    return figures


def _compute(f: PmuFigures) -> None:
    forms = shipped_forms()
    teams: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("allocated", "completed", "outstanding", "overdue"), 0)
    )
    for audit in f.audits:
        team = teams[audit.team]
        team["allocated"] += 1
        team["completed" if audit.completed else "outstanding"] += 1
        team["overdue"] += not audit.completed and audit.due_date < f.as_of
        if audit.completed and audit.grade:
            f.grades[audit.grade] += 1
            f.grades_by_team.setdefault(audit.team, Counter())[audit.grade] += 1
    f.by_team = dict(sorted(teams.items()))
    _kss_and_prevalence(f, forms)
    _moderation(f)
    _actions(f)
    _inadequate(f)


def _kss_and_prevalence(f: PmuFigures, forms) -> None:
    tallies: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for audit in f.completed:
        for key, (value, _) in f.answers.get(audit.return_id, {}).items():
            if value:
                tallies[(audit.form_id, key)][value] += 1
    for form_id, form in forms.items():
        for section in form.sections:
            if re.fullmatch(r"kss\d+", section.id):
                count = tallies.get((form_id, f"{section.id}.met"), Counter())
                f.kss.setdefault(section.id, Counter()).update(count)
                f.kss_titles.setdefault(section.id, section.title)
            for question in section.questions:
                tally = tallies.get((form_id, question.key))
                answered = sum(v for k, v in (tally or {}).items() if k != "N/A")
                if tally and answered:
                    f.prevalence.append(
                        {
                            "form_id": form_id,
                            "form": form.title,
                            "key": question.key,
                            "question": question.label,
                            "yes": tally.get("Yes", 0),
                            "no": tally.get("No", 0),
                            "partially": tally.get("Partially", 0),
                            "answered": answered,
                        }
                    )
    f.kss = {k: f.kss[k] for k in sorted(f.kss, key=lambda s: int(s[3:])) if f.kss[k]}


def _moderation(f: PmuFigures) -> None:
    rank = {g: i for i, g in enumerate(GRADES)}
    moderated = [a for a in f.audits if a.moderated_grade and a.auditor_grade]
    up = sum(
        rank[a.moderated_grade] < rank[a.auditor_grade]
        for a in moderated
        if a.moderated_grade in rank and a.auditor_grade in rank
    )
    down = sum(
        rank[a.moderated_grade] > rank[a.auditor_grade]
        for a in moderated
        if a.moderated_grade in rank and a.auditor_grade in rank
    )
    f.moderation = {
        "moderated": len(moderated),
        "completed": len(f.completed),
        "agreed": sum(a.moderated_grade == a.auditor_grade for a in moderated),
        "up": up,
        "down": down,
    }


def action_done(action: dict) -> bool:
    return bool(action.get("sign_off") or action.get("sign_off_date"))


def _actions(f: PmuFigures) -> None:
    done = sum(action_done(a) for a in f.actions)
    overdue = sum(
        1 for a in f.actions if not action_done(a) and a["due_date"] and a["due_date"] < f.as_of
    )
    f.action_totals = {
        "raised": len(f.actions),
        "completed": done,
        "open": len(f.actions) - done,
        "overdue": overdue,
    }


def _inadequate(f: PmuFigures) -> None:
    """Seed 001 Appendix A para 25: re-audit within two months, review meeting at 4 weeks."""
    for audit in f.audits:
        if audit.grade == "Inadequate":
            graded = audit.returned_on or f.as_of
            follow_up = inadequate_follow_up(graded)
            f.inadequate.append(
                {
                    "audit_id": audit.audit_id,
                    "case_number": audit.case_number,
                    "team": audit.team,
                    "graded_on": graded,
                    "review_by": follow_up["review meeting by"],
                    "reaudit_by": follow_up["re-audit by"],
                }
            )


def _trend_point(period: Period, audits: list[AuditFacts]) -> dict:
    graded = [a.grade for a in audits if a.completed and a.grade]
    n = len(graded)

    def share(names) -> float:
        return round(100 * sum(g in names for g in graded) / n, 1) if n else 0.0

    return {
        "period": period.label,
        "audits": len(audits),
        "graded": n,
        "good_or_better": share(GRADES[:2]),
        "requires_improvement": share(GRADES[2:4]),
        "inadequate": share(GRADES[4:]),
    }


def prevalence_sentences(f: PmuFigures, count: int = 3) -> tuple[list[str], list[str]]:
    """ "In 7 of 20 cases audited ..." for the strongest and weakest questions."""
    ranked = sorted(
        f.prevalence, key=lambda p: (p["yes"] / p["answered"], p["answered"]), reverse=True
    )

    def sentence(p: dict, value: str) -> str:
        n = p["yes"] if value == "Yes" else p["no"]
        return (
            f"In {n} of {p['answered']} {p['form']} audits the answer was {value} to: "
            f"\u201c{p['question']}\u201d"
        )

    strongest = [sentence(p, "Yes") for p in ranked[:count]]
    weakest = [
        sentence(p, "No")
        for p in sorted(
            f.prevalence, key=lambda p: (p["no"] / p["answered"], p["answered"]), reverse=True
        )[:count]
        if p["no"]
    ]
    return strongest, weakest


def choice_keys(form_id: str) -> list[str]:
    form = shipped_forms()[form_id]
    return [fl.key for fl in form.fields() if fl.kind is FieldKind.choice]
