"""The monthly audit programme: sample the cases and share them fairly among auditors.

Rules (seed 001, Appendices A and D): a control sample of 40 children across children in
need, child protection and looked after, with at least one child placed for adoption; six
foster carers; two to three prospective adopters. Never a case audited in the last 12 months;
never an auditor from the case's own team; at most 10 audits per auditor per (financial)
year; at most 20% of auditors on break in a month; work spread evenly. Seeded: the same
inputs and seed give the same allocation.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from formtool import store
from formtool.cases import normalise_column, read_rows, write_case_list
from formtool.deadlines import add_months, inadequate_follow_up, last_calendar_day
from formtool.definitions import shipped_forms
from formtool.errors import FormtoolError
from formtool.scales import parse_date

MAX_PER_YEAR = 10
MAX_BREAK_SHARE = 0.20
POPULATION_COLUMNS = ("case_number", "category", "team")
AUDITOR_COLUMNS = ("name", "email", "team")
DEFAULT_PLAN: dict[str, Any] = {"samples": [
    {"name": "Control sample", "form": "csc", "categories": ["cin", "cp", "lac"], "size": 40,
     "at_least": {"placed_for_adoption": 1}},
    {"name": "Foster carers", "form": "foster_carer", "categories": ["foster_carer"], "size": 6},
    {"name": "Prospective adopters", "form": "prospective_adopter",
     "categories": ["prospective_adopter"], "size": 3},
]}


class AllocationError(FormtoolError):
    """The population, auditors or plan cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Sample:
    name: str
    form: str
    categories: tuple[str, ...]
    size: int
    at_least: dict[str, int] = field(default_factory=dict)


@dataclass
class Auditor:
    name: str
    email: str
    team: str
    breaks: frozenset[str]
    done_this_year: int = 0
    assigned: int = 0


@dataclass
class Allocation:
    month: str
    due: dt.date
    rows: list[dict[str, str]]
    unallocated: list[str]
    on_break: list[str]

    def by_auditor(self) -> Counter:
        return Counter(r["auditor"] for r in self.rows)


def _category(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def _table(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, str]]:
    try:
        header, rows = read_rows(path)
    except FormtoolError as exc:
        raise AllocationError(str(exc)) from None
    columns = [normalise_column(c) for c in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise AllocationError(f"[{path}] the {what} file lacks column(s) {', '.join(missing)}. "
                              "Add them to the header row.")
    records = []
    for number, raw in enumerate(rows, start=2):
        record = {c: (raw[i].strip() if i < len(raw) else "") for i, c in enumerate(columns)}
        for column in required:
            if not record[column]:
                raise AllocationError(f"[{path} · row {number} · {column}] is empty. Every "
                                      f"{what} row needs {', '.join(required)}.")
        record["_row"] = str(number)
        records.append(record)
    return records


def load_population(path: Path) -> list[dict[str, str]]:
    rows = _table(path, POPULATION_COLUMNS, "population")
    seen: set[str] = set()
    for row in rows:
        if row["case_number"] in seen:
            raise AllocationError(f"[{path} · row {row['_row']} · case_number] case "
                                  f"'{row['case_number']}' appears twice. Remove the duplicate.")
        seen.add(row["case_number"])
        row["category"] = _category(row["category"])
        if row.get("last_audited") and parse_date(row["last_audited"]) is None:
            raise AllocationError(f"[{path} · row {row['_row']} · last_audited] "
                                  f"'{row['last_audited']}' is not a date. Use YYYY-MM-DD.")
    return rows


def load_auditors(path: Path) -> list[Auditor]:
    auditors = []
    for row in _table(path, AUDITOR_COLUMNS, "auditors"):
        if not re.fullmatch(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+", row["email"]):
            raise AllocationError(f"[{path} · row {row['_row']} · email] '{row['email']}' is "
                                  "not an email address.")
        breaks = frozenset(m for m in re.split(r"[;,\s]+", row.get("break_months", "")) if m)
        bad = [m for m in breaks if not re.fullmatch(r"\d{4}-\d{2}", m)]
        if bad:
            raise AllocationError(f"[{path} · row {row['_row']} · break_months] '{bad[0]}' is "
                                  "not YYYY-MM. List break months like 2026-08;2026-12.")
        try:
            done = int(row.get("audits_this_year") or 0)
        except ValueError:
            raise AllocationError(f"[{path} · row {row['_row']} · audits_this_year] "
                                  f"'{row['audits_this_year']}' is not a whole number.") from None
        auditors.append(Auditor(row["name"], row["email"], row["team"], breaks, done))
    return auditors


def load_plan(path: Path | None) -> list[Sample]:
    if path is None:
        data = DEFAULT_PLAN
    else:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AllocationError(f"[{path}] cannot be read as a plan: {exc}") from None
    forms = shipped_forms()
    samples = []
    for i, raw in enumerate(data.get("samples") or [], start=1):
        where = f"[{path or 'default plan'} · samples {i}]"
        if not isinstance(raw, dict) or raw.get("form") not in forms:
            raise AllocationError(f"{where} needs 'form:' naming a form ({', '.join(forms)}).")
        if not isinstance(raw.get("size"), int) or raw["size"] < 1:
            raise AllocationError(f"{where} needs 'size:' as a whole number of audits.")
        if not raw.get("categories"):
            raise AllocationError(f"{where} needs 'categories:' (population categories).")
        samples.append(Sample(raw.get("name", raw["form"]), raw["form"],
                              tuple(_category(c) for c in raw["categories"]), raw["size"],
                              dict(raw.get("at_least") or {})))
    if not samples:
        raise AllocationError(f"[{path}] the plan has no samples.")
    return samples


def _financial_year(month: str) -> tuple[str, str]:
    year, mon = int(month[:4]), int(month[5:])
    start = year if mon >= 4 else year - 1
    return f"{start}-04", f"{start + 1}-03"


def _history(engine: sa.Engine, month: str) -> tuple[set[str], Counter]:
    """Cases audited in the 12 months before `month` (or in it), and audits per auditor
    this financial year, from the database."""
    a = store.audits.c
    first = dt.date.fromisoformat(month + "-01")
    since = f"{add_months(first, -12):%Y-%m}"
    year_from, year_to = _financial_year(month)
    with engine.connect() as conn:
        recent = set(conn.execute(sa.select(a.case_number).where(
            (a.month >= since) & (a.month <= month))).scalars())
        counts = Counter(dict(conn.execute(
            sa.select(a.auditor, sa.func.count()).where(
                (a.month >= year_from) & (a.month <= year_to)).group_by(a.auditor)).all()))
    return recent, counts


def _eligible(row: dict[str, str], month: str, recent: set[str]) -> bool:
    if row["case_number"] in recent:
        return False
    last = parse_date(row.get("last_audited", "")) if row.get("last_audited") else None
    return last is None or last < add_months(dt.date.fromisoformat(month + "-01"), -12)


def _flag(row: dict[str, str], name: str) -> bool:
    return row.get(name, "").strip().lower() in ("yes", "y", "true", "1")


def _draw(sample: Sample, pool: list[dict], rng: random.Random, notes: list[str]) -> list[dict]:
    """Required cases first, then the rest stratified by category in proportion."""
    chosen: list[dict] = []
    for flag, count in sample.at_least.items():
        flagged = [r for r in pool if _flag(r, flag)]
        if len(flagged) < count:
            notes.append(f"{sample.name}: wanted at least {count} case(s) with {flag}, "
                         f"only {len(flagged)} eligible.")
        chosen += rng.sample(flagged, min(count, len(flagged)))
    rest = [r for r in pool if r not in chosen]
    wanted = min(sample.size, len(pool)) - len(chosen)
    strata = {c: [r for r in rest if r["category"] == c] for c in sample.categories}
    total = sum(len(v) for v in strata.values())
    quotas = {c: wanted * len(v) / total if total else 0 for c, v in strata.items()}
    counts = {c: int(q) for c, q in quotas.items()}
    for c in sorted(quotas, key=lambda c: quotas[c] - counts[c], reverse=True):
        if sum(counts.values()) < wanted:
            counts[c] += 1
    for category, members in strata.items():
        chosen += rng.sample(members, min(counts[category], len(members)))
    if len(pool) < sample.size:
        notes.append(f"{sample.name}: {sample.size} wanted, only {len(pool)} eligible "
                     "(not audited in the last 12 months).")
    return chosen


def _assign(case: dict, auditors: list[Auditor], rng: random.Random) -> Auditor | None:
    """The least-loaded auditor outside the case's team with room this year."""
    fits = [a for a in auditors if a.team != case["team"]
            and a.done_this_year + a.assigned < MAX_PER_YEAR]
    if not fits:
        return None
    least = min((a.assigned, a.done_this_year + a.assigned) for a in fits)
    best = [a for a in fits if (a.assigned, a.done_this_year + a.assigned) == least]
    return rng.choice(best)


def allocate(engine: sa.Engine, population: list[dict[str, str]], auditors: list[Auditor],
             samples: list[Sample], month: str, seed: int = 0) -> Allocation:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise AllocationError(f"--month '{month}' is not YYYY-MM.")
    on_break = [a for a in auditors if month in a.breaks]
    if auditors and len(on_break) > MAX_BREAK_SHARE * len(auditors):
        raise AllocationError(
            f"{len(on_break)} of {len(auditors)} auditors ({len(on_break) / len(auditors):.0%}) "
            f"are on break in {month}; at most 20% may be (seed 001, Appendix A para 3). "
            "Move some breaks to another month.")
    recent, counts = _history(engine, month)
    working = [a for a in auditors if month not in a.breaks]
    for auditor in working:
        auditor.done_this_year += counts.get(auditor.name, 0)
    rng = random.Random(f"{seed}:{month}")
    due = last_calendar_day(int(month[:4]), int(month[5:]))
    rows: list[dict[str, str]] = []
    notes: list[str] = []
    taken: set[str] = set()

    def place(case: dict[str, str], form: str, audit_type: str, extra: dict) -> None:
        taken.add(case["case_number"])
        auditor = _assign(case, working, rng)
        if auditor is None:
            notes.append(f"{case['case_number']} ({case['team']}): no auditor outside "
                         f"{case['team']} has room (10 a year) or is off break.")
            return
        auditor.assigned += 1
        rows.append({k: v for k, v in case.items() if not k.startswith("_")} | {
            "form": form, "audit_type": audit_type, "auditor": auditor.name,
            "auditor_email": auditor.email, "due_date": due.isoformat()} | extra)

    for case, form, review_by in reaudits_due(engine, population, month):
        place(case, form, REAUDIT, {"review_by": review_by.isoformat()})
    eligible = [r for r in population if _eligible(r, month, recent)]
    for sample in samples:
        pool = [r for r in eligible if r["category"] in sample.categories
                and r["case_number"] not in taken]
        for case in sorted(_draw(sample, pool, rng, notes), key=lambda r: r["case_number"]):
            place(case, sample.form, sample.name, {})
    return Allocation(month, due, rows, notes, [a.name for a in on_break])


REAUDIT = "Re-audit (inadequate)"


def reaudits_due(engine: sa.Engine, population: list[dict[str, str]], month: str
                 ) -> list[tuple[dict[str, str], str, dt.date]]:
    """Cases graded inadequate (moderated grade first) in an earlier month and not audited
    since: seed 001 Appendix A para 25 wants a re-audit within two months. They are exempt
    from the 12-month rule. Returns (case, form, review-by date)."""
    a, g, r = store.audits.c, store.grades.c, store.returns.c
    grade = sa.func.coalesce(sa.func.nullif(g.moderated_grade, ""), g.auditor_grade)
    with engine.connect() as conn:
        graded = conn.execute(
            sa.select(a.case_number, a.form_id, a.month, a.team, a.facts, r.imported_at)
            .join(store.grades, g.audit_id == a.audit_id)
            .join(store.returns, (r.audit_id == a.audit_id) & r.is_current)
            .where((grade == "Inadequate") & (a.month < month))).all()
        later = {(row.case_number, row.month) for row in conn.execute(
            sa.select(a.case_number, a.month))}
    by_case = {row["case_number"]: row for row in population}
    due = []
    for row in graded:
        if any(c == row.case_number and m > row.month for c, m in later):
            continue  # already re-audited (or audited again) since
        case = by_case.get(row.case_number) or (json.loads(row.facts) | {"team": row.team})
        follow_up = inadequate_follow_up(row.imported_at.date())
        due.append((case, row.form_id, follow_up["review meeting by"]))
    return sorted(due, key=lambda d: d[0]["case_number"])


def _check_columns(path: Path, population: list[dict[str, str]], samples: list[Sample]) -> None:
    """The population must carry every column the sampled forms print as required."""
    have = set(population[0]) | {"auditor", "due_date", "audit_type", "form"}
    forms = shipped_forms()
    for sample in samples:
        missing = [c for c in forms[sample.form].required_columns if c not in have]
        if missing:
            raise AllocationError(f"[{path}] lacks column(s) {', '.join(missing)}, which form "
                                  f"'{sample.form}' prints (sample '{sample.name}'). Add them.")


def run_allocation(engine: sa.Engine, population_path: Path, auditors_path: Path, month: str,
                   plan_path: Path | None, seed: int, out: Path) -> Allocation:
    """Allocate, write the allocation as a case list, and record the audits as allocated."""
    from formtool.cases import load_cases
    from formtool.generate import record_audits

    population = load_population(population_path)
    if not population:
        raise AllocationError(f"[{population_path}] has no cases.")
    auditors = load_auditors(auditors_path)
    if not auditors:
        raise AllocationError(f"[{auditors_path}] lists no auditors.")
    samples = load_plan(plan_path)
    _check_columns(population_path, population, samples)
    allocation = allocate(engine, population, auditors, samples, month, seed)
    if not allocation.rows:
        raise AllocationError(f"Nothing could be allocated for {month}: "
                              + " ".join(allocation.unallocated or ["no eligible cases."]))
    write_case_list(out, allocation.rows)
    forms = shipped_forms()
    cases = [c for form_id in dict.fromkeys(r["form"] for r in allocation.rows)
             for c in load_cases(out, forms[form_id])]
    record_audits(engine, cases)
    return allocation
