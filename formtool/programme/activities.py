"""Drawing a programme's QA activities: whose work each looks at, and who does it.

Pure, as sampling.py is: given the policy, the month, the population, the staff file, the
auditors working this month, the month's case-file audits and each activity's history, `plan`
returns the runs to record and one row per audit (the facts the form prints, as a case list
row). `formtool allocate` calls it for the activities that run in the month; `formtool activity
start` calls `plan_on_demand` for a run an officer begins (a theme, its cases).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from formtool.definitions.identifiers import AUDIT_ID_MAX, safe_file_stem
from formtool.definitions.scales import parse_date
from formtool.errors import NotPermittedError
from formtool.periods import Month
from formtool.programme.activity import STAFF_RESULT_ROLES, Activity
from formtool.programme.policy import Policy
from formtool.programme.sampling import AllocationError, Auditor, row_due, team_fits, year_cap
from formtool.store import RunRecord, Store

#: The staff file: one row per member of staff an activity may look at.
STAFF_COLUMNS = ("staff_id", "name", "team", "role")
#: What each subject kind's facts call the person (the form's header column).
STAFF_NAME = "staff_name"


@dataclass
class Drawn:
    """What the activities drew: runs, one row per audit (a case list row, with its audit id)
    and, per audit id, (activity id, run id, subject kind); notes say what could not be done."""

    runs: list[RunRecord] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    tags: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # drawn, but something to do before
    topped_up: list[RunRecord] = field(default_factory=list)  # surviving runs given audits


@dataclass
class Inputs:
    """What drawing reads: the month, its people and its history."""

    policy: Policy
    month: Month
    population: list[dict[str, str]]
    staff: list[dict[str, str]]
    auditors: list[Auditor]  # working this month
    rng: random.Random
    history: Callable[[str], dict[str, str]]  # activity id -> subject -> latest month
    case_file_rows: list[dict[str, str]] = field(default_factory=list)  # this month's
    taken: set[str] = field(default_factory=set)  # cases the case-file samples took
    #: Cases with a case-file audit within the exclusion period: a random draw passes them by.
    recent: frozenset[str] = frozenset()
    #: The month's runs still there (`allocate --replace` keeps audits already sent): topped
    #: up, never drawn twice.
    existing: dict[str, Existing] = field(default_factory=dict)
    #: Themes the officer gave (`allocate --theme ID=TEXT`): printed on the run's forms.
    themes: dict[str, str] = field(default_factory=dict)

    @cached_property
    def categories(self) -> dict[str, str]:
        """Each population case's category, looked up once."""
        return {r["case_number"]: r["category"] for r in self.population}


@dataclass(frozen=True)
class Existing:
    """A run of the month that survives a replacement: its record and its audits' subjects
    with their auditors."""

    run: RunRecord
    audits: tuple[tuple[str, str], ...]  # (subject, auditor)

    @property
    def subjects(self) -> frozenset[str]:
        return frozenset(s for s, _ in self.audits)

    def given(self, auditor: str) -> int:
        return sum(1 for _, a in self.audits if a == auditor)


def audit_id(activity: Activity, run_id: int, subject: str, month: Month) -> str:
    """CODE + run number, the subject, the month: TH3-C1001-202612. The run number keeps a
    case in two runs of the same tool in one month apart."""
    head = f"{activity.code}{run_id}"
    room = AUDIT_ID_MAX - len(head) - len("--YYYYMM")
    return (
        f"{head}-{safe_file_stem(subject, room, part=True).upper()}-{month.year}{month.number:02d}"
    )


def due_date(policy: Policy, activity: Activity, month: Month) -> dt.date:
    """The activity's own deadline for the month, else the programme's completion date."""
    if activity.deadline is not None:
        return activity.deadline.due(month.year, month.number)
    return row_due(policy, activity.form, month)


# --- monthly -------------------------------------------------------------------------------


def plan(inputs: Inputs, first_run_id: int) -> Drawn:
    """The month's runs of every activity that runs in it (not those an officer starts)."""
    drawn = Drawn()
    next_id = first_run_id
    for activity in inputs.policy.activities:
        if not activity.runs_in(inputs.month.number):
            continue
        if activity.staff and not inputs.staff:
            drawn.notes.append(
                f"{activity.name}: not drawn, it looks at members of staff and no staff file "
                "was given. Give one (--staff FILE: staff_id, name, team, role)."
            )
            continue
        subjects = _subjects(inputs, activity)
        existing = inputs.existing.get(activity.id)
        if existing is not None:
            _top_up(inputs, activity, subjects, existing, drawn)
        elif _one_run(inputs, activity, subjects, next_id, drawn):
            next_id += 1
    return drawn


def _top_up(
    inputs: Inputs,
    activity: Activity,
    subjects: list[dict[str, str]],
    existing: Existing,
    drawn: Drawn,
) -> None:
    """A run that survived a replacement gets the audits it lacks now (its sent ones stay);
    feedback already sent for a case no longer audited this month is named."""
    key = _key(activity)
    fresh = [s for s in subjects if s[key] not in existing.subjects]
    doers = _doers(inputs, activity)
    pairs = _choose(inputs, activity, fresh, doers, existing) if doers else []
    for subject, auditor in pairs:
        row = _row(inputs, activity, existing.run, subject, auditor)
        drawn.rows.append(row)
        drawn.tags[row["audit_id"]] = (activity.id, existing.run.id, activity.subject)
    if pairs:
        drawn.topped_up.append(existing.run)
    if activity.choose == "audited":
        audited = {r["case_number"] for r in inputs.case_file_rows}
        stray = sorted(existing.subjects - audited)
        if stray:
            drawn.notes.append(
                f"{activity.name}: run {existing.run.id} keeps audit(s) already sent for "
                f"{', '.join(stray)}, no longer audited this month: exempt them if they are "
                "not wanted (formtool exempt)."
            )


def _subjects(inputs: Inputs, activity: Activity) -> list[dict[str, str]]:
    """Who or what the activity may look at this month, before choosing."""
    if activity.choose == "audited":
        return [
            r
            for r in inputs.case_file_rows
            if not activity.categories or _category_of(inputs, r) in activity.categories
        ]
    if activity.staff:
        return _staff_subjects(inputs, activity)
    rows = [
        r
        for r in inputs.population
        if not activity.categories or r["category"] in activity.categories
    ]
    if activity.choose == "event":  # due whatever else the case is in this month
        return [
            r
            for r in rows
            if _event_month(r.get(activity.event, "")) == _event_due(inputs, activity)
        ]
    fresh = [r for r in rows if r["case_number"] not in inputs.taken]
    if activity.choose == "random":
        return [r for r in fresh if r["case_number"] not in inputs.recent]
    return fresh


def _category_of(inputs: Inputs, row: dict[str, str]) -> str:
    """A case-file audit's category: its row's, else the population's for its case (an
    audit already in the database carries none)."""
    return row.get("category") or inputs.categories.get(row["case_number"], "")


def _event_month(text: str) -> str:
    """The month of a population date (checked when the population was read)."""
    day = parse_date(text) if text else None
    return str(Month.of(day)) if day else ""


def _event_due(inputs: Inputs, activity: Activity) -> str:
    """The month an event must have happened in for its audit to fall in this month: the
    month before, `after_months` further back."""
    return str(inputs.month.shift(-1 - activity.after_months))


def _staff_subjects(inputs: Inputs, activity: Activity) -> list[dict[str, str]]:
    """Supervisors: staff the population names as a case's manager; practitioners: staff it
    names as a case's worker (every staff row, if it names no workers)."""
    column = "manager" if activity.subject == "supervisor" else "worker"
    named = {r.get(column, "") for r in inputs.population} - {""}
    if not named and activity.subject == "practitioner":
        return list(inputs.staff)
    return [s for s in inputs.staff if s["name"] in named or s["staff_id"] in named]


def _one_run(
    inputs: Inputs,
    activity: Activity,
    subjects: list[dict[str, str]],
    run_id: int,
    drawn: Drawn,
) -> bool:
    """Choose the run's subjects, give each to an auditor, add the run and its rows.
    False (with a note) when nothing could be drawn."""
    doers = _doers(inputs, activity)
    if not doers:
        groups = ", ".join(activity.auditors) or "any group"
        drawn.notes.append(
            f"{activity.name}: not drawn, no auditor working this month is in {groups}."
        )
        return False
    pairs = _choose(inputs, activity, subjects, doers)
    if not pairs:
        why = _none_why(activity, subjects)
        if activity.choose == "event" and not any(activity.event in r for r in inputs.population):
            why = f"the population has no {activity.event} column (the date it looks for)"
        drawn.notes.append(f"{activity.name}: not drawn, {why}.")
        return False
    theme = inputs.themes.get(activity.id, "")
    run = RunRecord(
        run_id,
        activity.id,
        activity.kind,
        f"{activity.name}, {inputs.month.name}" + (f": {theme}" if theme else ""),
        str(inputs.month),
        due_date(inputs.policy, activity, inputs.month),
        theme=theme,
        chosen=_chosen_words(activity),
    )
    add_run(inputs, activity, run, pairs, drawn)
    if not theme and activity.kind in ("thematic", "dip_sample"):
        drawn.warnings.append(
            f"{activity.name}: drawn without a theme; its forms print none. Give one "
            f"(--theme {activity.id}=TEXT) with --replace before the forms go out."
        )
    short = _shortfall(activity, subjects, doers, pairs)
    if short:
        drawn.notes.append(f"{activity.name}: {short}")
    return True


def _shortfall(
    activity: Activity,
    subjects: list[dict[str, str]],
    doers: list[Auditor],
    pairs: list[tuple[dict[str, str], Auditor]],
) -> str:
    """What a run lacks, in words ("" when nothing): every subject it must take, or the
    number the policy asks for."""
    if activity.choose == "audited":
        return ""
    key = _key(activity)
    if activity.choose in ("every", "event"):
        taken = {s[key] for s, _ in pairs}
        left = [s[key] for s in subjects if s[key] not in taken]
        if not left:
            return ""
        return (
            f"{len(pairs)} of {len(subjects)} drawn; {', '.join(left[:5])}"
            f"{' and more' if len(left) > 5 else ''} fitted no auditor of it "
            f"({activity.team} team rule): add an auditor who may take them to the auditors "
            "file and allocate again (--replace)."
        )
    wanted = activity.per_auditor * len(doers) if activity.per_auditor else activity.size
    if len(pairs) >= wanted:
        return ""
    return (
        f"{len(pairs)} of the {wanted} it asks for drawn: only {len(subjects)} subject(s) "
        f"fitted, and each auditor takes only those the {activity.team} team rule allows."
    )


def add_run(
    inputs: Inputs,
    activity: Activity,
    run: RunRecord,
    pairs: list[tuple[dict[str, str], Auditor]],
    drawn: Drawn,
) -> None:
    drawn.runs.append(run)
    for subject, auditor in pairs:
        row = _row(inputs, activity, run, subject, auditor)
        drawn.rows.append(row)
        drawn.tags[row["audit_id"]] = (activity.id, run.id, activity.subject)


def _none_why(activity: Activity, subjects: list[dict[str, str]]) -> str:
    if not subjects:
        return {
            "event": f"no case's {activity.event} falls in the month it looks at",
            "audited": "no case-file audit was allocated this month",
        }.get(activity.choose, "nothing in the population or staff file fits it")
    return (
        f"no auditor it allows ({activity.team} team rule) could take any of its "
        f"{len(subjects)} subject(s)"
    )


def _chosen_words(activity: Activity) -> str:
    return {
        "random": "drawn at random",
        "rotation": "staff not done for longest first",
        "every": "every one",
        "audited": "from the month's case-file audits",
        "event": f"cases whose {activity.event} fell in the month",
    }.get(activity.choose, activity.choose)


def _choose(
    inputs: Inputs,
    activity: Activity,
    subjects: list[dict[str, str]],
    doers: list[Auditor],
    existing: Existing | None = None,
) -> list[tuple[dict[str, str], Auditor]]:
    """(subject, auditor) pairs under the activity's way of choosing; with `existing`, what
    the surviving run still lacks."""
    rng = inputs.rng
    had = len(existing.audits) if existing else 0
    if activity.choose == "audited":
        return _from_audits(inputs, activity, subjects, doers, had)
    if activity.choose == "rotation":
        last = inputs.history(activity.id)
        key = _key(activity)
        subjects = sorted(rng.sample(subjects, len(subjects)), key=lambda s: last.get(s[key], ""))
    else:
        subjects = rng.sample(subjects, len(subjects))
    if activity.per_auditor:
        return _per_auditor(inputs, activity, subjects, doers, existing)
    wanted = len(subjects) if activity.choose in ("every", "event") else activity.size - had
    return share_out(inputs, activity, subjects, doers, wanted)


def _doers(inputs: Inputs, activity: Activity) -> list[Auditor]:
    """The working auditors of the activity's groups (every one, if it names none)."""
    return [a for a in inputs.auditors if not activity.auditors or a.group in activity.auditors]


def _key(activity: Activity) -> str:
    return "staff_id" if activity.staff else "case_number"


def _team(subject: dict[str, str]) -> str:
    return subject.get("team", "")


def _has_room(inputs: Inputs, activity: Activity, auditor: Auditor) -> bool:
    """An activity that counts toward the yearly quota takes only auditors with room."""
    if not activity.counts_toward_quota:
        return True
    cap = year_cap(inputs.policy, auditor)
    return cap is None or auditor.done_this_year + auditor.assigned < cap


def _give(activity: Activity, auditor: Auditor, load: dict[str, int]) -> None:
    load[auditor.name] = load.get(auditor.name, 0) + 1
    if activity.counts_toward_quota:
        auditor.assigned += 1


def _per_auditor(
    inputs: Inputs,
    activity: Activity,
    subjects: list[dict[str, str]],
    doers: list[Auditor],
    existing: Existing | None = None,
) -> list[tuple[dict[str, str], Auditor]]:
    """`per_auditor` subjects for each auditor (less those a surviving run gave them), in
    turn, each within the team rule."""
    pairs: list[tuple[dict[str, str], Auditor]] = []
    left, load = list(subjects), dict[str, int]()
    for auditor in doers:
        owed = activity.per_auditor - (existing.given(auditor.name) if existing else 0)
        for _ in range(owed):
            subject = next((s for s in left if team_fits(activity.team, auditor, _team(s))), None)
            if subject is None or not _has_room(inputs, activity, auditor):
                break
            left.remove(subject)
            _give(activity, auditor, load)
            pairs.append((subject, auditor))
    return pairs


def share_out(
    inputs: Inputs,
    activity: Activity,
    subjects: Sequence[dict[str, str]],
    doers: list[Auditor],
    wanted: int,
) -> list[tuple[dict[str, str], Auditor]]:
    """Up to `wanted` subjects, each to the least-loaded auditor the team rule allows."""
    pairs: list[tuple[dict[str, str], Auditor]] = []
    load: dict[str, int] = {}
    for subject in subjects:
        if len(pairs) >= wanted:
            break
        fits = [
            a
            for a in doers
            if team_fits(activity.team, a, _team(subject)) and _has_room(inputs, activity, a)
        ]
        if not fits:
            continue
        least = min(load.get(a.name, 0) for a in fits)
        auditor = inputs.rng.choice([a for a in fits if load.get(a.name, 0) == least])
        _give(activity, auditor, load)
        pairs.append((subject, auditor))
    return pairs


def _from_audits(
    inputs: Inputs,
    activity: Activity,
    rows: list[dict[str, str]],
    doers: list[Auditor],
    had: int = 0,
) -> list[tuple[dict[str, str], Auditor]]:
    """The share of the month's case-file audits (less `had` already drawn), each to the
    auditor who audits the case (the feedback is sought while auditing, seed 001 Appendix A
    para 13)."""
    by_name = {a.name: a for a in doers}
    mine = [r for r in rows if r.get("auditor") in by_name]
    every = [r for r in inputs.case_file_rows if _category_of(inputs, r) in activity.categories]
    base = len(every) if activity.categories else len(inputs.case_file_rows)
    count = -(-base * round(activity.share * 1000) // 1000) - had  # the share, rounded up
    chosen = inputs.rng.sample(mine, max(0, min(count, len(mine))))
    cases = {r["case_number"]: r for r in inputs.population}
    return [
        (cases.get(r["case_number"], r), by_name[r["auditor"]])
        for r in sorted(chosen, key=lambda r: r["case_number"])
    ]


# --- rows ------------------------------------------------------------------------------------


def _row(
    inputs: Inputs, activity: Activity, run: RunRecord, subject: dict[str, str], auditor: Auditor
) -> dict[str, str]:
    """The audit's case list row: the subject's facts, the run's and the auditor's."""
    key = subject[_key(activity)]
    common = {
        "form": activity.form,
        "activity": activity.name,
        "audit_type": activity.name,
        "theme": run.theme,
        "auditor": auditor.name,
        "auditor_email": auditor.email,
        "auditor_format": auditor.format,
        "due_date": run.due_date.isoformat(),
        "audit_id": audit_id(activity, run.id, key, inputs.month),
    }
    if not activity.staff:
        facts = {k: v for k, v in subject.items() if not k.startswith("_")}
        facts.pop("form", None)
        return facts | common
    facts = {
        "case_number": key,
        STAFF_NAME: subject["name"],
        "team": subject["team"],
        "role": subject.get("role", ""),
        "worker" if activity.subject == "practitioner" else "manager": subject["name"],
    }
    if activity.cases:
        cases = _their_cases(inputs, activity, subject)
        facts["cases"] = ", ".join(cases)
    return facts | common


def _their_cases(inputs: Inputs, activity: Activity, subject: dict[str, str]) -> list[str]:
    """`cases` of the staff member's own cases at random (a supervisor's team's, by the
    population's manager column; a practitioner's, by its worker column)."""
    column = "manager" if activity.subject == "supervisor" else "worker"
    names = {subject["name"], subject["staff_id"]}
    theirs = sorted(r["case_number"] for r in inputs.population if r.get(column) in names)
    return sorted(inputs.rng.sample(theirs, min(activity.cases, len(theirs))))


# --- runs an officer starts ----------------------------------------------------------------


def plan_on_demand(
    inputs: Inputs,
    activity: Activity,
    run: RunRecord,
    cases: Collection[str] | None,
    where: Callable[[dict[str, str]], bool] | None,
    size: int | None,
    where_words: str = "",
) -> Drawn:
    """One run an officer starts: the cases named (`cases`), or `size` (else the activity's)
    drawn from the population rows `where` keeps; each to an auditor of the activity."""
    doers = _doers(inputs, activity)
    if not doers:
        raise AllocationError(
            f"{activity.name}: no auditor in the auditors file is in "
            f"{', '.join(activity.auditors)}. Add them there (column group)."
        )
    rows = [
        r
        for r in inputs.population
        if not activity.categories or r["category"] in activity.categories
    ]
    if cases is not None:
        known = {r["case_number"]: r for r in inputs.population}
        missing = [c for c in cases if c not in known]
        if missing:
            raise AllocationError(
                f"{activity.name}: case(s) {', '.join(missing[:5])} are not in the population "
                "file. Check the case numbers, or use the population that lists them."
            )
        subjects = [known[c] for c in dict.fromkeys(cases)]
        wanted = len(subjects)
    else:
        subjects = inputs.rng.sample(rows, len(rows))
        subjects = [r for r in subjects if where is None or where(r)]
        if not subjects:
            kept = f" where {where_words}" if where_words else ""
            raise AllocationError(
                f"{activity.name}: no case of the population{kept} "
                f"({', '.join(activity.categories) or 'any category'}). Widen --where."
            )
        wanted = size or activity.size or len(subjects)
    pairs = share_out(inputs, activity, subjects, doers, wanted)
    if not pairs:
        raise AllocationError(
            f"{activity.name}: nothing to audit, {_none_why(activity, subjects)}."
        )
    drawn = Drawn()
    add_run(inputs, activity, run, pairs, drawn)
    if len(pairs) < wanted:
        drawn.notes.append(
            f"{activity.name}: {len(pairs)} of {wanted} subject(s) allocated; the rest fitted "
            f"no auditor of the activity under its team rule ({activity.team})."
        )
    return drawn


# --- who sees a staff subject's results ------------------------------------------------------


def results_refusal(policy: Policy, audit: Any, roles: Collection[str]) -> str:
    """Why these roles may not see this audit's results ("" if they may): results about a
    member of staff (supervision audits, observations) are staff data, for the roles the
    activity names (default: officers and moderators)."""
    if audit.subject_kind == "case" or not audit.activity:
        return ""
    activity = policy.activity(audit.activity)
    allowed = activity.result_roles() if activity else STAFF_RESULT_ROLES
    if set(roles) & set(allowed):
        return ""
    what = activity.name if activity else "this activity"
    return (
        f"The results of {what} ({audit.audit_id}) are staff data: programme "
        f"'{policy.name}' lets only the {' and '.join(allowed)} role(s) see them. Ask your "
        "QA lead if you need them."
    )


def check_results(db: Store, audit_id: str, roles: Collection[str]) -> None:
    """NotPermittedError when the roles may not see the audit's results (see above)."""
    from formtool.programme.rules import active_policy

    audit = db.audit_row(audit_id)
    if audit is None or audit.subject_kind == "case":
        return
    refusal = results_refusal(active_policy(db), audit, roles)
    if refusal:
        raise NotPermittedError(refusal)


def hidden_audits(db: Store, months: Collection[str], roles: Collection[str]) -> set[str]:
    """The audits of these months whose results the roles may not see (left out of the
    lists they are shown; the dashboard's counts still count them)."""
    from formtool.programme.rules import active_policy

    staff = [r for r in db.audit_rows(list(months)) if r.subject_kind != "case"]
    if not staff:
        return set()
    policy = active_policy(db)
    return {r.audit_id for r in staff if results_refusal(policy, r, roles)}
