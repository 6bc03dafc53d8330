"""The monthly audit programme: sample the cases and share them fairly among auditors.

Rules (seed 001, Appendices A and D): the sample the plan asks for (by default a control
sample of 40 children with at least one placed for adoption, six foster carers, three
prospective adopters); never a case audited within 12 months; never an auditor from the case's
own team; at most 10 audits per auditor per financial year; at most 20% of auditors on break
in a month; each case to the least-loaded eligible auditor. Seeded: the same inputs and seed
give the same allocation.

A month is allocated once, under a lock and in one transaction with the history it reads, so
two allocations at once can neither break the yearly cap nor take a case twice. Running it
again for the month refuses unless asked to `replace` (the audits not yet sent) or `add`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from formtool import store
from formtool.definitions import all_forms
from formtool.definitions.identifiers import audit_id_problem
from formtool.definitions.scales import parse_date
from formtool.errors import FormtoolError, Issue, IssueCode
from formtool.periods import Month, is_month, months_from, show_date
from formtool.programme.deadlines import inadequate_follow_up
from formtool.programme.mail import valid_address
from formtool.read.cases import (
    audit_id_for,
    cases_from_rows,
    normalise_column,
    read_rows,
    write_case_list,
)
from formtool.store import AllocationReads, Planned, Store

MAX_PER_YEAR = 10
MAX_BREAK_SHARE = 0.20
POPULATION_COLUMNS = ("case_number", "category", "team")
AUDITOR_COLUMNS = ("name", "email", "team")
MODES = ("first", "replace", "add")
REAUDIT = "Re-audit (inadequate)"


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
    format: str = "docx"  # the form format they prefer: docx (Word) or xlsx (Excel)


@dataclass(frozen=True)
class History:
    """What the database says before allocating: cases audited within 12 months either side
    of the month, audits per auditor this financial year, and inadequate cases due a re-audit."""

    recent: frozenset[str] = frozenset()
    done: dict[str, int] = field(default_factory=dict)
    reaudits: tuple[tuple[dict[str, str], str, dt.date], ...] = ()


@dataclass
class Allocation:
    month: str
    due: dt.date
    rows: list[dict[str, str]]
    unallocated: list[str]
    on_break: list[str]
    warnings: list[str] = field(default_factory=list)
    mode: str = "first"
    replaced: int = 0

    def by_auditor(self) -> Counter[str]:
        return Counter(r["auditor"] for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "due": self.due.isoformat(),
            "mode": self.mode,
            "allocated": len(self.rows),
            "replaced": self.replaced,
            "by_auditor": dict(sorted(self.by_auditor().items())),
            "on_break": self.on_break,
            "unallocated": self.unallocated,
            "warnings": self.warnings,
        }


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
        raise AllocationError(
            f"[{path}] the {what} file lacks column(s) {', '.join(missing)}. "
            "Add them to the header row."
        )
    records = []
    for number, raw in enumerate(rows, start=2):
        record = {c: (raw[i].strip() if i < len(raw) else "") for i, c in enumerate(columns)}
        for column in required:
            if not record[column]:
                raise AllocationError(
                    f"[{path} · row {number} · {column}] is empty. Every "
                    f"{what} row needs {', '.join(required)}."
                )
        record["_row"] = str(number)
        records.append(record)
    return records


def load_population(path: Path) -> list[dict[str, str]]:
    rows = _table(path, POPULATION_COLUMNS, "population")
    seen: set[str] = set()
    for row in rows:
        if row["case_number"] in seen:
            raise AllocationError(
                f"[{path} · row {row['_row']} · case_number] case "
                f"'{row['case_number']}' appears twice. Remove the duplicate."
            )
        seen.add(row["case_number"])
        row["category"] = _category(row["category"])
        _check_audit_id(path, row)
        if row.get("last_audited") and parse_date(row["last_audited"]) is None:
            raise AllocationError(
                f"[{path} · row {row['_row']} · last_audited] "
                f"'{row['last_audited']}' is not a date. Use YYYY-MM-DD."
            )
    return rows


def _check_audit_id(path: Path, row: dict[str, str]) -> None:
    """A population may name each case's audit id; it names files, so it is checked first."""
    problem = audit_id_problem(row["audit_id"]) if "audit_id" in row else ""
    if problem:
        code, where = IssueCode.bad_audit_id, row["_row"]
        issue = Issue(code, str(path), "audit_id", where, row["audit_id"], expected=problem)
        raise AllocationError(issue.message)


def load_auditors(path: Path) -> list[Auditor]:
    auditors = []
    for row in _table(path, AUDITOR_COLUMNS, "auditors"):
        where = f"[{path} · row {row['_row']}"
        if not valid_address(row["email"]):  # the rule `formtool send` applies, applied first
            issue = Issue(IssueCode.bad_email, str(path), "email", row["_row"], row["email"])
            raise AllocationError(issue.message)
        breaks = frozenset(m for m in re.split(r"[;,\s]+", row.get("break_months", "")) if m)
        bad = [m for m in breaks if not is_month(m)]
        if bad:
            raise AllocationError(
                f"{where} · break_months] '{bad[0]}' is not YYYY-MM. List "
                "break months like 2026-08;2026-12."
            )
        try:
            done = int(row.get("audits_this_year") or 0)
        except ValueError:
            raise AllocationError(
                f"{where} · audits_this_year] '{row['audits_this_year']}' is not a whole number."
            ) from None
        fmt = (row.get("format") or "docx").strip().lower().lstrip(".")
        fmt = {"word": "docx", "excel": "xlsx"}.get(fmt, fmt)
        if fmt not in ("docx", "xlsx"):
            raise AllocationError(
                f"{where} · format] '{row['format']}' is not a form format. "
                "Use Word (docx) or Excel (xlsx)."
            )
        auditors.append(Auditor(row["name"], row["email"], row["team"], breaks, done, format=fmt))
    return auditors


def default_plan_path() -> Path:
    return Path(str(resources.files("formtool.templates") / "plans" / "default.yaml"))


def load_plan(path: Path | None) -> list[Sample]:
    where_file = path or default_plan_path()
    try:
        data = yaml.safe_load(where_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AllocationError(f"[{where_file}] cannot be read as a plan: {exc}") from None
    forms = all_forms()
    samples = []
    for i, raw in enumerate(data.get("samples") or [] if isinstance(data, dict) else [], 1):
        where = f"[{path or 'default plan'} · samples {i}]"
        if not isinstance(raw, dict) or raw.get("form") not in forms:
            raise AllocationError(f"{where} needs 'form:' naming a form ({', '.join(forms)}).")
        if not isinstance(raw.get("size"), int) or raw["size"] < 1:
            raise AllocationError(f"{where} needs 'size:' as a whole number of audits.")
        if not raw.get("categories"):
            raise AllocationError(f"{where} needs 'categories:' (population categories).")
        samples.append(
            Sample(
                str(raw.get("name", raw["form"])),
                raw["form"],
                tuple(_category(c) for c in raw["categories"]),
                raw["size"],
                dict(raw.get("at_least") or {}),
            )
        )
    if not samples:
        raise AllocationError(f"[{where_file}] the plan has no samples.")
    return samples


def read_history(reads: AllocationReads, month: str, population: list[dict[str, str]]) -> History:
    """The history an allocation for `month` must respect, read in its transaction."""
    year_from, year_to = Month(month).financial_year()
    recent, done = reads.allocation_history(
        Month(month).shift(-12), Month(month).shift(12), year_from, year_to
    )
    return History(frozenset(recent), dict(done), tuple(_reaudits(reads, population, month)))


def _reaudits(
    reads: AllocationReads, population: list[dict[str, str]], month: str
) -> list[tuple[dict[str, str], str, dt.date]]:
    """Cases graded with a follow-up grade (e.g. inadequate; moderated grade first) in an
    earlier month and not audited since: seed 001 Appendix A para 25 wants a re-audit within
    two months. They are exempt from the 12-month rule. (case, form, review-by date)."""
    forms = all_forms()
    later = Counter((r.case_number, r.month) for r in reads.case_months())
    by_case = {row["case_number"]: row for row in population}
    due = []
    for row in reads.graded_before(month):
        form = forms.get(row.form_id)
        scale = form.grade_scale if form else None
        if scale is None or row.grade not in scale.follow_up:
            continue
        if any(c == row.case_number and m > row.month for c, m in later):
            continue  # already re-audited (or audited again) since
        case = by_case.get(row.case_number) or _stored_case(row, population, month)
        follow_up = inadequate_follow_up(row.imported_at.date())
        due.append((case, row.form_id, follow_up["review meeting by"]))
    return sorted(due, key=lambda d: d[0]["case_number"])


def _stored_case(row: Any, population: list[dict[str, str]], month: str) -> dict[str, str]:
    """A case due a re-audit that the population no longer lists, as a population row: its
    stored facts, no category (the population would have said it), and an audit id of its
    own when the population names ids (the earlier audit keeps its id)."""
    case: dict[str, str] = {"category": ""} | json.loads(row.facts) | {"team": row.team}
    case.pop("audit_id", None)
    if any("audit_id" in p for p in population):
        form = all_forms()[row.form_id]
        due = Month(month).last_day
        case["audit_id"] = audit_id_for(form, row.case_number, due)
    return case


def _eligible(row: dict[str, str], month: str, recent: frozenset[str]) -> bool:
    if row["case_number"] in recent:
        return False
    last = parse_date(row.get("last_audited", "")) if row.get("last_audited") else None
    return last is None or last < Month(month).shift(-12).first_day


def _flag(row: dict[str, str], name: str) -> bool:
    return row.get(name, "").strip().lower() in ("yes", "y", "true", "1")


def _shortfall(
    sample: Sample, pool: list[dict[str, str]], population: list[dict[str, str]], taken: set[str]
) -> str:
    """Why a sample got fewer cases than it wanted, in the population's own terms."""
    everyone = [r for r in population if r["category"] in sample.categories]
    categories = ", ".join(sample.categories)
    if not everyone:
        return (
            f"{sample.name}: {sample.size} wanted, but the population has no cases in "
            f"category {categories}."
        )
    in_other_samples = sum(r["case_number"] in taken for r in everyone)
    recent = len(everyone) - len(pool) - in_other_samples
    reasons = [
        f"{recent} audited within the last 12 months" if recent else "",
        f"{in_other_samples} already in another sample" if in_other_samples else "",
    ]
    return (
        f"{sample.name}: {sample.size} wanted, only {len(pool)} of {len(everyone)} cases in "
        f"{categories} eligible (" + "; ".join(r for r in reasons if r) + ")."
    )


def _draw(
    sample: Sample, pool: list[dict[str, str]], rng: random.Random, notes: list[str]
) -> list[dict[str, str]]:
    """Required cases first, then the rest stratified by category in proportion."""
    chosen: list[dict[str, str]] = []
    for flag, count in sample.at_least.items():
        flagged = [r for r in pool if _flag(r, flag)]
        if len(flagged) < count:
            notes.append(
                f"{sample.name}: wanted at least {count} case(s) with {flag}, "
                f"only {len(flagged)} eligible."
            )
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
    return chosen


def _assign(case: dict[str, str], auditors: list[Auditor], rng: random.Random) -> Auditor | None:
    """The least-loaded auditor outside the case's team with room this year."""
    fits = [
        a
        for a in auditors
        if a.team != case["team"] and a.done_this_year + a.assigned < MAX_PER_YEAR
    ]
    if not fits:
        return None
    least = min((a.assigned, a.done_this_year + a.assigned) for a in fits)
    return rng.choice([a for a in fits if (a.assigned, a.done_this_year + a.assigned) == least])


def _no_auditor(case: dict[str, str], auditors: list[Auditor], on_break: list[Auditor]) -> str:
    others = [a for a in auditors if a.team != case["team"]]
    resting = [a for a in on_break if a.team != case["team"]]
    if not others and not resting:
        why = f"every auditor is in {case['team']} (auditors never audit their own team)"
    elif not others:
        why = f"every auditor outside {case['team']} is on break this month"
    else:
        why = (
            f"all {len(others)} auditors outside {case['team']} have their "
            f"{MAX_PER_YEAR} audits this year"
        )
    return f"{case['case_number']} ({case['team']}): not allocated, {why}."


def _load_warnings(month: str, auditors: list[Auditor]) -> list[str]:
    """Auditors given more this month than their fair share of what is left of the year."""
    months_left = len([m for m in _fy_months(month) if m >= month])
    warnings = []
    for a in auditors:
        left = MAX_PER_YEAR - a.done_this_year
        fair = math.ceil(left / months_left) if left > 0 else 0
        if a.assigned > max(fair, 1):
            warnings.append(
                f"{a.name} gets {a.assigned} audits in {month}, more than a fair "
                f"share of the {left} left this year over {months_left} month(s) "
                f"({fair} a month)."
            )
    return warnings


def _fy_months(month: str) -> tuple[Month, ...]:
    return months_from(Month(month).financial_year()[0], 12)


def allocate(
    population: list[dict[str, str]],
    auditors: list[Auditor],
    samples: list[Sample],
    month: str,
    seed: int = 0,
    history: History = History(),
) -> Allocation:
    """Draw the month's sample and share it out (pure: the history is given)."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise AllocationError(f"--month '{month}' is not YYYY-MM.")
    on_break = [a for a in auditors if month in a.breaks]
    if auditors and len(on_break) > MAX_BREAK_SHARE * len(auditors):
        raise AllocationError(
            f"{len(on_break)} of {len(auditors)} auditors ({len(on_break) / len(auditors):.0%}) "
            f"are on break in {month}; at most 20% may be (seed 001, Appendix A para 3). "
            "Move some breaks to another month."
        )
    working = [a for a in auditors if month not in a.breaks]
    for auditor in working:
        auditor.done_this_year += history.done.get(auditor.name, 0)
    rng = random.Random(f"{seed}:{month}")
    due = Month(month).last_day
    rows: list[dict[str, str]] = []
    notes: list[str] = []
    taken: set[str] = set()

    def place(case: dict[str, str], form: str, audit_type: str, extra: dict[str, str]) -> None:
        taken.add(case["case_number"])
        auditor = _assign(case, working, rng)
        if auditor is None:
            notes.append(_no_auditor(case, working, on_break))
            return
        auditor.assigned += 1
        rows.append(
            {k: v for k, v in case.items() if not k.startswith("_")}
            | {
                "form": form,
                "audit_type": audit_type,
                "auditor": auditor.name,
                "auditor_email": auditor.email,
                "auditor_format": auditor.format,
                "due_date": due.isoformat(),
            }
            | extra
        )

    for case, form, review_by in history.reaudits:
        place(case, form, REAUDIT, {"review_by": review_by.isoformat()})
    eligible = [r for r in population if _eligible(r, month, history.recent)]
    for sample in samples:
        pool = [
            r
            for r in eligible
            if r["category"] in sample.categories and r["case_number"] not in taken
        ]
        if len(pool) < sample.size:
            notes.append(_shortfall(sample, pool, population, taken))
        for case in sorted(_draw(sample, pool, rng, notes), key=lambda r: r["case_number"]):
            place(case, sample.form, sample.name, {})
    return Allocation(
        month, due, rows, notes, [a.name for a in on_break], _load_warnings(month, working)
    )


def _check_columns(path: Path, population: list[dict[str, str]], samples: list[Sample]) -> None:
    """The population must carry every column the sampled forms print as required."""
    have = set(population[0]) | {"auditor", "due_date", "audit_type", "form"}
    forms = all_forms()
    for sample in samples:
        missing = [c for c in forms[sample.form].required_columns if c not in have]
        if missing:
            raise AllocationError(
                f"[{path}] lacks column(s) {', '.join(missing)}, which form "
                f"'{sample.form}' prints (sample '{sample.name}'). Add them."
            )


def _records(
    rows: list[dict[str, str]], key: bytes, unkeyed: Collection[str]
) -> list[store.AuditRecord]:
    """The allocation's audits as the store records them: keyed checksums, except audits
    issued before keying (`unkeyed`), whose forms are already with auditors."""
    from formtool.generate import audit_record

    forms = all_forms()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = [[row.get(c, "") for c in columns] for row in rows]
    return [
        audit_record(case if case.audit_id in unkeyed else replace(case, checksum_key=key))
        for form_id in dict.fromkeys(r["form"] for r in rows)
        for case in cases_from_rows("allocation", columns, table, forms[form_id])
    ]


def run_allocation(
    db: Store,
    population_path: Path,
    auditors_path: Path,
    month: str,
    plan_path: Path | None,
    seed: int,
    out: Path,
    mode: str = "first",
    user: str = "",
) -> Allocation:
    """Allocate the month (under the allocation lock, with the history in the same
    transaction), record the audits, then write the allocation as a case list."""
    if mode not in MODES:
        raise AllocationError(f"Unknown allocation mode '{mode}'. Use one of {MODES}.")
    population = load_population(population_path)
    if not population:
        raise AllocationError(f"[{population_path}] has no cases.")
    auditors = load_auditors(auditors_path)
    if not auditors:
        raise AllocationError(f"[{auditors_path}] lists no auditors.")
    samples = load_plan(plan_path)
    _check_columns(population_path, population, samples)
    forms = all_forms()
    made: list[Allocation] = []
    key = db.identity_key()  # made before the allocation's transaction, not inside it
    unkeyed = {r.audit_id for r in db.audit_rows([month]) if r.checksum_scheme != "hmac"}

    def plan(reads: AllocationReads) -> Planned:
        _refuse_repeat(reads.month_allocations(month), month, mode)
        replaced = reads.drop_unstarted(month) if mode == "replace" else 0
        allocation = allocate(
            population, auditors, samples, month, seed, read_history(reads, month, population)
        )
        if not allocation.rows:
            raise AllocationError(
                f"Nothing could be allocated for {month}: "
                + " ".join(allocation.unallocated or ["no eligible cases."])
            )
        allocation.mode, allocation.replaced = mode, replaced
        made.append(allocation)
        return Planned(
            _records(allocation.rows, key, unkeyed), [forms[r["form"]] for r in allocation.rows]
        )

    db.allocate(month, mode, seed, plan, user)
    allocation = made[-1]  # plan ran, or allocate raised
    write_case_list(out, allocation.rows)
    return allocation


def _refuse_repeat(earlier: list[Any], month: str, mode: str) -> None:
    if earlier and mode == "first":
        count = sum(e.audits for e in earlier)
        raise AllocationError(
            f"{month} is already allocated ({count} audit(s), {show_date(earlier[-1].created_at)}"
            "). Replace the audits not yet sent (allocate --replace) or add more (--add)."
        )
