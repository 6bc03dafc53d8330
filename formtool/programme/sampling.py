"""Draw a month's sample and place each case with an auditor, as a programme policy says.

Pure: `allocate` is given the population, the auditors, the policy, the month and the history
the database holds (allocation.py reads it), and the same inputs and seed give the same
allocation. The policy (policy.py) decides everything: which samples run in the month and
how big they are (`size` in all, `per_auditor`, `per_worker`); whose cases an auditor may take
(`other`: never their own team, `own`, `peer`, `any`); quotas per month and per year (on a
financial or calendar year) and months off, for everyone or per auditor group; the largest
share of auditors on break; the months an auditor rests after an audit; the exclusion period;
re-audits of follow-up grades; audits on closure; and the slots auditors choose themselves.
Each case goes to the least-loaded auditor who may take it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from formtool.definitions.scales import parse_date
from formtool.errors import FormtoolError
from formtool.periods import Month, is_month, months_from, show_date
from formtool.programme.policy import AuditorGroup, Policy, SampleRule

REAUDIT = "Re-audit (inadequate)"
CLOSURE = "Audit on closure"
_MISSING = "is not in the population"


class AllocationError(FormtoolError):
    """The population, auditors, plan or choices cannot be used; the message says where and
    why."""


@dataclass
class Auditor:
    name: str
    email: str
    team: str
    breaks: frozenset[str]
    done_this_year: int = 0
    assigned: int = 0
    format: str = "docx"  # the form format they prefer: docx (Word) or xlsx (Excel)
    group: str = ""  # the policy's auditor group (its own quotas, months off, samples)
    peer_team: str = ""  # the team they audit under a `peer` team rule
    this_month: int = 0  # audits already recorded for the month (allocate --add)


@dataclass(frozen=True)
class DueReaudit:
    """A case graded with a follow-up grade, due a re-audit: its population row, the form,
    the review meeting date and the date the re-audit is due by."""

    case: dict[str, str]
    form: str
    review_by: dt.date
    reaudit_by: dt.date


@dataclass(frozen=True)
class History:
    """What the database says before allocating: cases audited within the exclusion period
    either side of the month, audits per auditor in the policy's year, cases due a re-audit,
    the months each auditor has audits in (for the rest between audits) and their audits
    already recorded for this month."""

    recent: frozenset[str] = frozenset()
    done: dict[str, int] = field(default_factory=dict)
    reaudits: tuple[DueReaudit, ...] = ()
    months: dict[str, frozenset[str]] = field(default_factory=dict)
    this_month: dict[str, int] = field(default_factory=dict)


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
    #: Chosen slots left for the auditor to name: auditor, sample, form, team (theirs).
    choices: list[dict[str, str]] = field(default_factory=list)
    #: The runs of the programme's activities it started: run, activity, name, due, audits.
    runs: list[dict[str, Any]] = field(default_factory=list)

    def by_auditor(self) -> Counter[str]:
        return Counter(r["auditor"] for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return (
            {
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
            | self._choices()
            | ({"activities": self.runs} if self.runs else {})
        )

    def _choices(self) -> dict[str, Any]:
        """The chosen slots left open, and what `allocate --chosen` named on a month already
        allocated (mode "name")."""
        found: dict[str, Any] = {"choices": self.choices} if self.choices else {}
        if self.mode == "name":
            keys = ("auditor", "case_number", "audit_type", "audit_id")
            found["named"] = [{k: r.get(k, "") for k in keys} for r in self.rows]
        return found


# --- what the policy says of one auditor -------------------------------------------------


def _group(policy: Policy, auditor: Auditor) -> AuditorGroup | None:
    return policy.auditors.group(auditor.group) if auditor.group else None


def year_cap(policy: Policy, auditor: Auditor) -> int | None:
    group = _group(policy, auditor)
    return group.per_year if group and group.per_year is not None else policy.auditors.per_year


def month_cap(policy: Policy, auditor: Auditor) -> int | None:
    group = _group(policy, auditor)
    if group and group.per_month is not None:
        return group.per_month
    return policy.auditors.per_month


def months_off(policy: Policy, auditor: Auditor) -> frozenset[int]:
    group = _group(policy, auditor)
    return group.months_off if group and group.months_off else policy.auditors.months_off


def year_of(policy: Policy, month: str) -> tuple[Month, Month]:
    """The first and last month of the year the yearly quota counts in."""
    if policy.auditors.year == "calendar":
        return Month(f"{month[:4]}-01"), Month(f"{month[:4]}-12")
    return Month(month).financial_year()


def team_fits(rule: str, auditor: Auditor, team: str) -> bool:
    """Whether the team rule lets the auditor take a case of `team`."""
    if rule == "own":
        return auditor.team == team
    if rule == "peer":
        return team == auditor.peer_team if auditor.peer_team else auditor.team != team
    return rule == "any" or auditor.team != team


def _whose(rule: str, team: str) -> str:
    """The auditors a rule lets take a case of `team`, in words."""
    return {
        "own": f"in {team}",
        "peer": f"with {team} as their peer team",
        "any": "",
    }.get(rule, f"outside {team}")


def _in_groups(auditor: Auditor, groups: Collection[str]) -> bool:
    return not groups or auditor.group in groups


def _months_apart(a: str, b: str) -> int:
    return abs((int(a[:4]) * 12 + int(a[5:7])) - (int(b[:4]) * 12 + int(b[5:7])))


# --- the month being allocated -------------------------------------------------------------


@dataclass
class _Run:
    """One allocation in progress: who works, what is placed, what is noted."""

    policy: Policy
    month: Month
    working: list[Auditor]
    away: list[Auditor]  # on break or with the month off
    rng: random.Random
    resting: frozenset[str] = frozenset()
    rows: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    choices: list[dict[str, str]] = field(default_factory=list)

    def room(self, auditor: Auditor) -> bool:
        """Whether the auditor may take one more audit this month."""
        total = auditor.done_this_year + auditor.assigned
        cap = year_cap(self.policy, auditor)
        if cap is not None and total >= cap:
            return False
        cap = month_cap(self.policy, auditor)
        if cap is not None and auditor.this_month + auditor.assigned >= cap:
            return False
        return auditor.name not in self.resting

    def pick(self, case: dict[str, str], rule: str, groups: Collection[str]) -> Auditor | None:
        """The least-loaded auditor the rule lets take the case, with room."""
        fits = [
            a
            for a in self.working
            if _in_groups(a, groups) and team_fits(rule, a, case["team"]) and self.room(a)
        ]
        if not fits:
            return None
        least = min((a.assigned, a.done_this_year + a.assigned) for a in fits)
        return self.rng.choice(
            [a for a in fits if (a.assigned, a.done_this_year + a.assigned) == least]
        )

    def record(
        self, case: dict[str, str], auditor: Auditor, form: str, kind: str, extra: dict[str, str]
    ) -> None:
        self.taken.add(case["case_number"])
        auditor.assigned += 1
        due = row_due(self.policy, form, self.month)
        self.rows.append(
            {k: v for k, v in case.items() if not k.startswith("_")}
            | {
                "form": form,
                "audit_type": kind,
                "auditor": auditor.name,
                "auditor_email": auditor.email,
                "auditor_format": auditor.format,
                "due_date": due.isoformat(),
            }
            | extra
        )

    def place(
        self,
        case: dict[str, str],
        form: str,
        kind: str,
        rule: str = "other",
        groups: Collection[str] = (),
        extra: dict[str, str] | None = None,
    ) -> bool:
        """Give the case to an auditor, or note why nobody could take it."""
        self.taken.add(case["case_number"])
        auditor = self.pick(case, rule, groups)
        if auditor is None:
            self.notes.append(_no_auditor(self, case, rule, groups))
            return False
        self.record(case, auditor, form, kind, extra or {})
        return True


def row_due(policy: Policy, form: str, month: Month) -> dt.date:
    """When an audit of the form allocated in the month is due: the policy's completion
    deadline, else the month's last day."""
    return policy.due("completion", form, month.year, month.number) or month.last_day


def _no_auditor(run: _Run, case: dict[str, str], rule: str, groups: Collection[str]) -> str:
    team = case["team"]
    fits = [a for a in run.working if _in_groups(a, groups) and team_fits(rule, a, team)]
    away = [a for a in run.away if _in_groups(a, groups) and team_fits(rule, a, team)]
    whose = _whose(rule, team)
    if not fits and not away:
        why = {
            "other": f"every auditor is in {team} (auditors never audit their own team)",
            "own": f"no auditor is in {team} (auditors audit only their own team)",
            "peer": f"no auditor has {team} as their peer team",
        }.get(rule, "there is no auditor")
        if groups:
            why += f" among group(s) {', '.join(groups)}"
    elif not fits:
        off = any(run.month not in a.breaks for a in away)
        why = _words("every auditor", whose, f"is {'away' if off else 'on break'} this month")
    else:
        why = _words(f"all {len(fits)} auditors", whose, _full(run, fits))
    return f"{case['case_number']} ({team}): not allocated, {why}."


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _audits(count: int | None) -> str:
    return "audit" if count == 1 else "audits"


def _full(run: _Run, auditors: list[Auditor]) -> str:
    """Why auditors have no room, in the policy's numbers."""
    years = {year_cap(run.policy, a) for a in auditors}
    if len(years) == 1 and None not in years:
        cap = years.pop()
        if all(a.done_this_year + a.assigned >= (cap or 0) for a in auditors):
            return f"have their {cap} {_audits(cap)} this year"
    months = {month_cap(run.policy, a) for a in auditors}
    if len(months) == 1 and None not in months:
        cap = months.pop()
        if all(a.this_month + a.assigned >= (cap or 0) for a in auditors):
            return f"have their {cap} {_audits(cap)} this month"
    if all(a.name in run.resting for a in auditors):
        return f"audited within the last {run.policy.auditors.spacing_months} month(s)"
    return "have no room left under their quotas or are resting after a recent audit"


# --- the samples ---------------------------------------------------------------------------


def eligible(row: dict[str, str], month: Month, recent: frozenset[str], months: int) -> bool:
    """Not audited within the exclusion period (the database's or the population's date)."""
    if row["case_number"] in recent:
        return False
    last = parse_date(row.get("last_audited", "")) if row.get("last_audited") else None
    return last is None or last < month.shift(-months).first_day


def _flag(row: dict[str, str], name: str) -> bool:
    return row.get(name, "").strip().lower() in ("yes", "y", "true", "1")


def _shortfall(
    run: _Run,
    sample: SampleRule,
    pool: list[dict[str, str]],
    population: list[dict[str, str]],
) -> str:
    """Why a sample got fewer cases than it wanted, in the population's own terms."""
    everyone = [r for r in population if r["category"] in sample.categories]
    categories = ", ".join(sample.categories)
    if not everyone:
        return (
            f"{sample.name}: {sample.size} wanted, but the population has no cases in "
            f"category {categories}."
        )
    in_other_samples = sum(r["case_number"] in run.taken for r in everyone)
    recent = len(everyone) - len(pool) - in_other_samples
    months = run.policy.exclusion_months
    reasons = [
        f"{recent} audited within the last {months} months" if recent else "",
        f"{in_other_samples} already in another sample" if in_other_samples else "",
    ]
    return (
        f"{sample.name}: {sample.size} wanted, only {len(pool)} of {len(everyone)} cases in "
        f"{categories} eligible (" + "; ".join(r for r in reasons if r) + ")."
    )


def _draw(
    sample: SampleRule, pool: list[dict[str, str]], rng: random.Random, notes: list[str]
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


def _sized(
    run: _Run, sample: SampleRule, pool: list[dict[str, str]], population: list[dict[str, str]]
) -> None:
    """`size` cases in all, stratified. Under `own` or `peer` a drawn case no auditor of its
    team has room for is put back and another drawn, so the sample is filled where it can be."""
    rule = sample.team_rule(run.month.number)
    if len(pool) < sample.size:
        run.notes.append(_shortfall(run, sample, pool, population))
    drawn = sorted(_draw(sample, pool, run.rng, run.notes), key=lambda r: r["case_number"])
    if rule not in ("own", "peer"):
        for case in drawn:
            run.place(case, sample.form, sample.name, rule, sample.auditors)
        return
    picked = {r["case_number"] for r in drawn}
    rest = [r for r in pool if r["case_number"] not in picked]
    run.rng.shuffle(rest)
    wanted, placed = len(drawn), 0
    for case in [*drawn, *rest]:
        if placed == wanted:
            break
        auditor = run.pick(case, rule, sample.auditors)
        if auditor is not None:
            run.record(case, auditor, sample.form, sample.name, {})
            placed += 1
    if placed < wanted:
        run.notes.append(
            f"{sample.name}: {placed} of {wanted} placed; no auditor of the right team "
            f"({rule} team rule) had room for more this month."
        )


def _per_worker(
    run: _Run, sample: SampleRule, pool: list[dict[str, str]], population: list[dict[str, str]]
) -> None:
    """`per_worker` files of each worker the population names in the sample's categories."""
    rule = sample.team_rule(run.month.number)
    workers = sorted(
        {r.get("worker", "") for r in population if r["category"] in sample.categories} - {""}
    )
    if not workers:
        run.notes.append(
            f"{sample.name}: one file per worker needs a worker column in the population; "
            "none of its cases names a worker."
        )
    for worker in workers:
        theirs = [
            r for r in pool if r.get("worker") == worker and r["case_number"] not in run.taken
        ]
        if len(theirs) < sample.per_worker:
            run.notes.append(
                f"{sample.name}: {worker} has {len(theirs)} eligible file(s), "
                f"{sample.per_worker} wanted."
            )
        for case in run.rng.sample(theirs, min(sample.per_worker, len(theirs))):
            run.place(case, sample.form, sample.name, rule, sample.auditors)


def _per_auditor(
    run: _Run, sample: SampleRule, pool: list[dict[str, str]], named: Counter[tuple[str, str]]
) -> None:
    """`per_auditor` cases for each auditor of the sample's groups, one round at a time;
    a chosen slot the auditor has not named is left as a choice."""
    rule = sample.team_rule(run.month.number)
    mine = [a for a in run.working if _in_groups(a, sample.auditors)]
    groups = f" in group(s) {', '.join(sample.auditors)}" if sample.auditors else ""
    if not mine:
        away = any(_in_groups(a, sample.auditors) for a in run.away)
        run.notes.append(
            f"{sample.name}: every auditor{groups} has {run.month.name} off or is on break."
            if away
            else f"{sample.name}: no auditor{groups} in the auditors file."
        )
    run.rng.shuffle(mine)
    for _ in range(sample.per_auditor):
        for auditor in mine:
            if sample.chosen and named[auditor.name, sample.name]:
                named[auditor.name, sample.name] -= 1  # named in advance, placed already
            elif not run.room(auditor):
                run.notes.append(
                    f"{sample.name}: {auditor.name} has no room for another audit this month "
                    f"({_full(run, [auditor])})."
                )
            elif sample.chosen:
                auditor.assigned += 1  # the slot is theirs: it counts against their quotas
                run.choices.append(
                    {
                        "auditor": auditor.name,
                        "sample": sample.name,
                        "form": sample.form,
                        "team": auditor.team,
                    }
                )
            else:
                _draw_for(run, auditor, sample, pool, rule)


def _draw_for(
    run: _Run, auditor: Auditor, sample: SampleRule, pool: list[dict[str, str]], rule: str
) -> None:
    cases = [
        r for r in pool if r["case_number"] not in run.taken and team_fits(rule, auditor, r["team"])
    ]
    if not cases:
        whose = {"own": "in their team", "peer": "in their peer team"}.get(rule, "they may take")
        run.notes.append(f"{sample.name}: no eligible case {whose} for {auditor.name}.")
        return
    run.record(run.rng.choice(cases), auditor, sample.form, sample.name, {})


# --- re-audits, closures and named choices ---------------------------------------------------


def _reaudits(run: _Run, reaudits: Sequence[DueReaudit]) -> None:
    """Follow-up grades come back first, exempt from the exclusion period, never to the
    case's own team; one that can no longer meet its date is warned."""
    rule = run.policy.reaudit
    if rule is None:
        return
    for reaudit in reaudits:
        extra = {"review_by": reaudit.review_by.isoformat()}
        placed = run.place(reaudit.case, reaudit.form, REAUDIT, "other", (), extra)
        due = row_due(run.policy, reaudit.form, run.month)
        if placed and due > reaudit.reaudit_by:
            run.warnings.append(
                f"{reaudit.case['case_number']}: the re-audit was due within "
                f"{rule.within_months} months of its grade, by {show_date(reaudit.reaudit_by)}, "
                f"but this month's audits are due {show_date(due)}. Record why it is late"
                f"{_cite(rule.source)}."
            )


def _cite(source: str) -> str:
    return f" ({source})" if source else ""


def _closures(run: _Run, population: list[dict[str, str]]) -> None:
    """Cases the population shows closed in the month before: audited again, whatever the
    exclusion period says, under the first closure rule taking the case's category."""
    rules = run.policy.on_closure
    if not rules:
        return
    before = run.month.shift(-1)
    for case in sorted(population, key=lambda r: r["case_number"]):
        closed = parse_date(case["closed_on"]) if case.get("closed_on") else None
        if closed is None or (closed.year, closed.month) != (before.year, before.number):
            continue
        rule = next((r for r in rules if r.takes(case["category"])), None)
        if rule is None:
            run.notes.append(
                f"{case['case_number']} ({case['team']}): closed in {before.name}, but no "
                f"on_closure rule of the programme takes category '{case['category']}'."
            )
        elif case["case_number"] not in run.taken:
            run.place(case, rule.form, CLOSURE, rule.team, rule.auditors)


def _chosen_samples(run: _Run, auditor: Auditor) -> list[SampleRule]:
    return [
        s
        for s in run.policy.samples
        if s.chosen and s.runs_in(run.month.number) and _in_groups(auditor, s.auditors)
    ]


def _named(
    run: _Run,
    chosen: Sequence[dict[str, str]],
    cases: dict[str, dict[str, str]],
    recent: frozenset[str],
) -> Counter[tuple[str, str]]:
    """Place the cases auditors named for their chosen slots, each checked first; how many
    each (auditor, sample) named."""
    named: Counter[tuple[str, str]] = Counter()
    by_name = {a.name: a for a in run.working}
    for number, choice in enumerate(chosen, start=1):
        where = f"[{choice.get('_file', 'chosen')} · row {choice.get('_row', number + 1)}]"
        auditor = by_name.get(choice.get("auditor", "").strip())
        sample = _chosen_slot(run, where, choice, auditor)
        assert auditor is not None  # _chosen_slot refused otherwise
        if named[auditor.name, sample.name] >= sample.per_auditor:
            raise AllocationError(
                f"{where} {auditor.name} names more cases for '{sample.name}' than its "
                f"{sample.per_auditor} slot(s). Remove one."
            )
        case = _chosen_case(run, where, choice, sample, auditor, cases, recent)
        named[auditor.name, sample.name] += 1
        if run.room(auditor):
            run.record(case, auditor, sample.form, sample.name, {"chosen": "yes"})
        else:
            run.notes.append(
                f"{case['case_number']}: chosen by {auditor.name}, who has no room for "
                f"another audit this month ({_full(run, [auditor])})."
            )
    return named


def _chosen_slot(
    run: _Run, where: str, choice: dict[str, str], auditor: Auditor | None
) -> SampleRule:
    """The chosen sample a named case fills: the one it names, or the auditor's only one."""
    who = choice.get("auditor", "").strip()
    if auditor is None:
        raise AllocationError(
            f"{where} '{who}' is not an auditor working in {run.month} (the auditors file "
            "lists them, not on break or with the month off). Check the name."
        )
    slots = _chosen_samples(run, auditor)
    wanted = choice.get("sample", "").strip()
    fits = [s for s in slots if s.name == wanted] if wanted else slots
    if len(fits) == 1:
        return fits[0]
    names = ", ".join(s.name for s in slots) or "none"
    if not fits:
        raise AllocationError(
            f"{where} {who} has no chosen slot{f' in {wanted!r}' if wanted else ''} in "
            f"{run.month} (their chosen samples: {names}). Check the auditor and sample."
        )
    raise AllocationError(f"{where} {who} has several chosen samples ({names}): add a sample.")


def _chosen_case(
    run: _Run,
    where: str,
    choice: dict[str, str],
    sample: SampleRule,
    auditor: Auditor,
    cases: dict[str, dict[str, str]],
    recent: frozenset[str],
) -> dict[str, str]:
    """The named case, if the sample and the policy allow it."""
    number = choice.get("case_number", "").strip()
    case = cases.get(number)
    problem = _choice_problem(run, case, sample, auditor, recent) if case else _MISSING
    if problem or case is None:
        raise AllocationError(
            f"{where} case '{number}' chosen by {auditor.name} for '{sample.name}' {problem}. "
            "Choose another case."
        )
    return case


def _choice_problem(
    run: _Run, case: dict[str, str], sample: SampleRule, auditor: Auditor, recent: frozenset[str]
) -> str:
    """Why a named case cannot fill the slot ("" if it can)."""
    rule = sample.team_rule(run.month.number)
    months = run.policy.exclusion_months
    if case["category"] not in sample.categories:
        return f"is {case['category']}, not one of {', '.join(sample.categories)}"
    if not team_fits(rule, auditor, case["team"]):
        allowed = {
            "own": f"{auditor.team}, their own team",
            "peer": f"{auditor.peer_team or 'a team other than ' + auditor.team}",
        }.get(rule, f"a team other than {auditor.team}")
        return f"is in {case['team']}; this slot takes cases in {allowed}"
    if not eligible(case, run.month, recent, months):
        return f"was audited within the last {months} months"
    if case["case_number"] in run.taken:
        return "is already allocated this month"
    return ""


@dataclass(frozen=True)
class OpenSlot:
    """A chosen slot an allocation left open (its id in the database), with its auditor as
    the auditors file gives them and the policy's sample."""

    id: int
    auditor: Auditor
    sample: SampleRule


def name_slots(
    policy: Policy,
    month: str,
    slots: Sequence[OpenSlot],
    chosen: Sequence[dict[str, str]],
    population: list[dict[str, str]],
    recent: frozenset[str],
    month_cases: dict[str, str],
) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """Fill open chosen slots of a month already allocated with the cases auditors named,
    each checked as at allocation (category, team rule, exclusion period, not taken this
    month: `month_cases`, case -> auditor, are its audits). Returns (slot id, row) for each
    case named and a note for each row naming a case already its auditor's this month."""
    run = _Run(policy, Month(month), [s.auditor for s in slots], [], random.Random(0))
    run.taken = set(month_cases)
    recent -= run.taken  # a case of this month is "already allocated", said so below
    cases = {r["case_number"]: r for r in population}
    taken, free = dict(month_cases), list(slots)
    named: list[tuple[int, dict[str, str]]] = []
    notes: list[str] = []
    for number, choice in enumerate(chosen, start=1):
        row = f"{choice.get('_file', 'chosen')} · row {choice.get('_row', number + 1)}"
        where = choice.get("_where") or f"[{row}]"  # the browser names the slot instead
        who, case_number = choice.get("auditor", "").strip(), choice.get("case_number", "").strip()
        if taken.get(case_number) == who:
            notes.append(f"{where} case '{case_number}' is already {who}'s audit in {month}.")
            continue
        slot = _open_slot(run, where, choice, free, taken)
        case = _chosen_case(run, where, choice, slot.sample, slot.auditor, cases, recent)
        free.remove(slot)
        taken[case_number] = who
        run.record(case, slot.auditor, slot.sample.form, slot.sample.name, {"chosen": "yes"})
        named.append((slot.id, run.rows[-1]))
    return named, notes


def _open_slot(
    run: _Run,
    where: str,
    choice: dict[str, str],
    free: Sequence[OpenSlot],
    taken: dict[str, str],
) -> OpenSlot:
    """The open slot a named case fills: the auditor's, in the sample the row names or
    their only one; a slot already named says so."""
    who, wanted = choice.get("auditor", "").strip(), choice.get("sample", "").strip()
    theirs = [s for s in free if s.auditor.name == who]
    fits = [s for s in theirs if s.sample.name == wanted] if wanted else theirs
    samples = sorted({s.sample.name for s in fits})
    if len(samples) == 1:
        return fits[0]
    if samples:
        raise AllocationError(
            f"{where} {who} has open chosen slots in {', '.join(samples)}: add a sample column "
            "saying which this case fills."
        )
    month, sample = run.month, f" in '{wanted}'" if wanted else ""
    if any(a == who for a in taken.values()):
        cases = ", ".join(sorted(c for c, a in taken.items() if a == who))
        raise AllocationError(
            f"{where} {who} has no open chosen slot{sample} in {month}: it is already named "
            f"(their cases this month: {cases}). Nothing was recorded; remove the row."
        )
    still = ", ".join(sorted({f"{s.auditor.name} ({s.sample.name})" for s in free})) or "none"
    raise AllocationError(
        f"{where} '{who}' has no open chosen slot{sample} in {month} (open: {still}). Check "
        "the auditor's name."
    )


# --- the month -----------------------------------------------------------------------------


def _check_breaks(policy: Policy, month: str, present: list[Auditor], away: int) -> None:
    limit = policy.auditors.break_limit
    if limit is None or not present or away <= limit * len(present):
        return
    raise AllocationError(
        f"{away} of {len(present)} auditors ({away / len(present):.0%}) are on break in "
        f"{month}; at most {limit:.0%} may be{_cite(policy.auditors.source or policy.source)}. "
        "Move some breaks to another month."
    )


def _resting(policy: Policy, month: str, history: History) -> frozenset[str]:
    """Auditors with an audit within the policy's spacing of this month (before or after)."""
    gap = policy.auditors.spacing_months
    if not gap:
        return frozenset()
    return frozenset(
        name
        for name, months in history.months.items()
        if any(m != month and _months_apart(m, month) <= gap for m in months)
    )


def _load_warnings(policy: Policy, month: Month, auditors: list[Auditor]) -> list[str]:
    """Auditors given more this month than their fair share of what is left of the year."""
    year = months_from(year_of(policy, month)[0], 12)
    warnings = []
    for a in auditors:
        cap = year_cap(policy, a)
        if cap is None:
            continue
        off = months_off(policy, a)
        months_left = len([m for m in year if m >= month and m.number not in off])
        left = cap - a.done_this_year
        fair = math.ceil(left / months_left) if left > 0 else 0
        if a.assigned > max(fair, 1):
            warnings.append(
                f"{a.name} gets {a.assigned} audits in {month}, more than a fair "
                f"share of the {left} left this year over {months_left} month(s) "
                f"({fair} a month)."
            )
    return warnings


def allocate(
    population: list[dict[str, str]],
    auditors: list[Auditor],
    policy: Policy,
    month: str,
    seed: int = 0,
    history: History = History(),
    chosen: Sequence[dict[str, str]] = (),
) -> Allocation:
    """Draw the month's samples and share them out under the policy (pure: the history is
    given). `chosen` names cases for chosen slots: auditor, case_number[, sample]."""
    if not is_month(month):
        raise AllocationError(f"--month '{month}' is not YYYY-MM.")
    m = Month(month)
    present = [a for a in auditors if m.number not in months_off(policy, a)]
    on_break = [a for a in present if month in a.breaks]
    _check_breaks(policy, month, present, len(on_break))
    working = [a for a in present if month not in a.breaks]
    for auditor in working:
        auditor.done_this_year += history.done.get(auditor.name, 0)
        auditor.this_month += history.this_month.get(auditor.name, 0)
    away = [a for a in auditors if month in a.breaks or m.number in months_off(policy, a)]
    run = _Run(policy, m, working, away, random.Random(f"{seed}:{month}"))
    run.resting = _resting(policy, month, history)
    _reaudits(run, history.reaudits)
    cases = {r["case_number"]: r for r in population}
    named = _named(run, chosen, cases, history.recent)
    _closures(run, population)
    months = policy.exclusion_months
    pool = [r for r in population if eligible(r, m, history.recent, months)]
    for sample in policy.samples:
        if sample.runs_in(m.number):
            _sample(run, sample, pool, population, named)
    first = run.rows[0]["form"] if run.rows else _first_form(policy, m)
    return Allocation(
        month,
        row_due(policy, first, m),
        run.rows,
        run.notes,
        [a.name for a in on_break],
        run.warnings + _load_warnings(policy, m, working),
        choices=run.choices,
    )


def _sample(
    run: _Run,
    sample: SampleRule,
    eligible_cases: list[dict[str, str]],
    population: list[dict[str, str]],
    named: Counter[tuple[str, str]],
) -> None:
    pool = [
        r
        for r in eligible_cases
        if r["category"] in sample.categories and r["case_number"] not in run.taken
    ]
    if sample.per_auditor:
        _per_auditor(run, sample, pool, named)
    elif sample.per_worker:
        _per_worker(run, sample, pool, population)
    else:
        _sized(run, sample, pool, population)


def _first_form(policy: Policy, month: Month) -> str:
    return next((s.form for s in policy.samples if s.runs_in(month.number)), "")
