"""Runs an officer starts: a thematic or deep-dive audit on a theme, its cases named or drawn
from a filtered population, or its review six months on (seed 001 4.11-4.14; seed 002 6.18).

`start_run` checks the activity, the files and the filter before anything is written, numbers
the run under the allocation lock and records it with its audits in one transaction (an
allocations row of mode `activity`, which `allocate --replace` never touches), then writes the
run's audits as a case list for `formtool generate`.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formtool.definitions import all_forms
from formtool.periods import Month
from formtool.programme import activities
from formtool.programme.activity import Activity
from formtool.programme.allocation import (
    _records,
    _table,
    check_groups,
    load_auditors,
    load_population,
    load_staff,
    recorded,
    tagged,
)
from formtool.programme.policy import Policy
from formtool.programme.sampling import AllocationError
from formtool.read.cases import normalise_column, write_case_list
from formtool.store import ACTIVITY_MODE, FORM, AllocationReads, Planned, RunRecord, Store

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "=": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_WHERE = re.compile(r"\s*([A-Za-z][A-Za-z0-9 _-]*?)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")


@dataclass
class Started:
    """What `start_run` recorded: the run, its audits as case list rows, and notes."""

    run: RunRecord
    rows: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.id,
            "activity": self.run.activity,
            "name": self.run.name,
            "theme": self.run.theme,
            "month": self.run.month,
            "due": self.run.due_date.isoformat(),
            "chosen": self.run.chosen,
            "review_of": self.run.review_of,
            "audits": [
                {k: r[k] for k in ("audit_id", "case_number", "auditor")} for r in self.rows
            ],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Filter:
    """Population rows a run is drawn from: every condition holds (column op value)."""

    conditions: tuple[tuple[str, str, str], ...]

    def keeps(self, row: dict[str, str]) -> bool:
        return all(_holds(row.get(column, ""), op, value) for column, op, value in self.conditions)

    def words(self) -> str:
        return " and ".join(f"{c} {op} {v}" for c, op, v in self.conditions)


def parse_filter(texts: tuple[str, ...], population: list[dict[str, str]]) -> Filter:
    """`--where` conditions (`category=cp`, `social_workers>=5`), each on a population
    column; a number compared with < or > must be a number."""
    conditions = []
    columns = set(population[0]) if population else set()
    for text in texts:
        match = _WHERE.fullmatch(text)
        if not match:
            raise AllocationError(
                f"[--where '{text}'] is not a condition. Write COLUMN=VALUE, or COLUMN>=N "
                "(also !=, <=, <, >), e.g. category=cp or social_workers>=5."
            )
        column, op, value = normalise_column(match[1]), match[2], match[3]
        if column not in columns:
            raise AllocationError(
                f"[--where '{text}'] the population has no column '{column}'. Use one of: "
                f"{', '.join(sorted(c for c in columns if not c.startswith('_')))}."
            )
        if op in ("<", ">", "<=", ">=") and _number(value) is None:
            raise AllocationError(f"[--where '{text}'] '{value}' is not a number.")
        conditions.append((column, op, value))
    return Filter(tuple(conditions))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _holds(cell: str, op: str, value: str) -> bool:
    if op in ("=", "!="):
        same = cell.strip().casefold() == value.strip().casefold()
        return same if op == "=" else not same
    number = _number(cell)
    return number is not None and _OPERATORS[op](number, float(value))


def on_demand(policy: Policy, activity_id: str) -> Activity:
    """The policy's activity an officer may start, or the reason it cannot be."""
    activity = policy.activity(activity_id)
    if activity is None:
        known = ", ".join(a.id for a in policy.activities) or "none"
        raise AllocationError(
            f"Programme '{policy.name}' has no activity '{activity_id}'. Its activities: "
            f"{known} (`formtool programme show`)."
        )
    if not activity.on_demand:
        raise AllocationError(
            f"{activity.name} ('{activity.id}') is drawn by `formtool allocate` in its months; "
            "it is not started by hand."
        )
    return activity


@dataclass(frozen=True)
class RunRequest:
    """What the officer asked for: the activity, month, files and how subjects are chosen."""

    activity: str
    month: str
    population: Path
    auditors: Path
    cases: Path | None = None
    where: tuple[str, ...] = ()
    size: int | None = None
    review_of: int | None = None
    theme: str = ""
    owner: str = ""
    staff: Path | None = None
    seed: int = 0


def start_run(db: Store, policy: Policy, request: RunRequest, out: Path, user: str) -> Started:
    """Start one run of an on-demand activity and record it with its audits (see module)."""
    activity = on_demand(policy, request.activity)
    month = Month(request.month)
    population = load_population(request.population)
    auditors = load_auditors(request.auditors)
    check_groups(request.auditors, auditors, policy)
    staff = load_staff(request.staff) if request.staff else []
    cases, theme, review_of = _subjects_named(db, request)
    notes = []
    if review_of is not None and cases is not None:  # six months on, some cases have closed
        listed = {r["case_number"] for r in population}
        gone = [c for c in cases if c not in listed]
        cases = [c for c in cases if c in listed]
        if gone:
            notes.append(
                f"{', '.join(gone)} of run {review_of} are not in the population "
                f"{request.population} any more (closed?): not reviewed."
            )
    where = parse_filter(request.where, population) if request.where else None
    if cases is not None and (where or request.size):
        raise AllocationError(
            "Name the cases (--cases or --review-of) or draw them (--where, --size), not both."
        )
    if cases is None and activity.choose == "chosen":
        raise AllocationError(
            f"{activity.name} audits the cases the officer names: give them (--cases FILE with "
            "a case_number column), or review an earlier run (--review-of RUN)."
        )
    policy = recorded(db, policy, user)  # everything checked: the first write
    key, forms, made = db.identity_key(), all_forms(), []

    def plan(reads: AllocationReads) -> Planned:
        run = RunRecord(
            reads.next_run_id(),
            activity.id,
            activity.kind,
            f"{activity.name}: {theme}" if theme else f"{activity.name}, {month.name}",
            str(month),
            activities.due_date(policy, activity, month),
            theme=theme,
            owner=request.owner,
            chosen=_chosen_words(cases, where, review_of),
            review_of=review_of,
            on_demand=True,
        )
        inputs = activities.Inputs(
            policy, month, population, staff, auditors,
            random.Random(f"{request.seed}:{month}:{activity.id}"), reads.subject_months,
        )  # fmt: skip
        drawn = activities.plan_on_demand(
            inputs, activity, run, cases, where.keeps if where else None, request.size,
            where.words() if where else "",
        )  # fmt: skip
        made.append(Started(run, drawn.rows, notes + drawn.notes))
        records = tagged(_records(drawn.rows, key, (), str(month)), drawn)
        return Planned(records, [forms[activity.form]] * len(records), [], drawn.runs)

    db.allocate(str(month), ACTIVITY_MODE, request.seed, plan, user, (policy.name, policy.version))
    write_case_list(out, made[-1].rows)
    db.record_files([out], FORM, user=user, month=str(month))  # tracked for retention
    return made[-1]


def _subjects_named(db: Store, request: RunRequest) -> tuple[list[str] | None, str, int | None]:
    """The cases named (a file, or the run reviewed), the theme and the run reviewed."""
    if request.review_of is not None:
        earlier = db.require_run(request.review_of)
        if request.cases is not None:
            raise AllocationError("A review takes the cases of the run it reviews: drop --cases.")
        audits = db.audit_rows(run_id=earlier.id)
        if any(a.subject_kind != "case" for a in audits):
            raise AllocationError(
                f"Run {earlier.id} ({earlier.name}) looks at members of staff, not cases: it "
                "is reviewed by the next run `formtool allocate` draws, not with --review-of."
            )
        cases = sorted({a.case_number for a in audits})
        return cases, request.theme or earlier.theme, earlier.id
    if request.cases is not None:
        rows = _table(request.cases, ("case_number",), "cases")
        if not rows:
            raise AllocationError(
                f"[{request.cases}] names no cases. List one case_number per row."
            )
        return [r["case_number"] for r in rows], request.theme, None
    return None, request.theme, None


def _chosen_words(cases: list[str] | None, where: Filter | None, review_of: int | None) -> str:
    if review_of is not None:
        return f"the cases of run {review_of}, reviewed"
    if cases is not None:
        return "named by the officer"
    return f"drawn at random where {where.words()}" if where else "drawn at random"
