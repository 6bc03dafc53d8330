"""The monthly audit programme, from files to the database: read the population, the
auditors, a plan and the auditors' chosen cases; read the history the policy needs; allocate
(sampling.py draws and places under the programme policy); record the audits.

A month is allocated once, under a lock and in one transaction with the history it reads, so
two allocations at once can neither break a quota nor take a case twice. Running it again for
the month refuses unless asked to `replace` (the audits not yet sent) or `add`. The policy is
the database's active one (`formtool programme use`); `--plan FILE` replaces its samples with
a plan file's (each case to an auditor outside its team, as seed 001's are).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from formtool import store
from formtool.definitions import all_forms
from formtool.definitions.identifiers import audit_id_problem
from formtool.definitions.scales import parse_date
from formtool.errors import FormtoolError, Issue, IssueCode, printable
from formtool.periods import Month, is_month, show_date
from formtool.programme import activities
from formtool.programme.deadlines import add_months
from formtool.programme.mail import valid_address
from formtool.programme.policy import AuditorGroup, Policy, SampleRule
from formtool.programme.sampling import (
    CLOSURE,
    REAUDIT,
    Allocation,
    AllocationError,
    Auditor,
    DueReaudit,
    History,
    OpenSlot,
    allocate,
    months_off,
    name_slots,
    row_due,
    year_of,
)
from formtool.read.cases import (
    audit_id_for,
    cases_from_rows,
    normalise_column,
    read_rows,
    write_case_list,
)
from formtool.store import FORM, AllocationReads, Planned, RunRecord, Store, received_on

__all__ = [
    "CLOSURE",
    "REAUDIT",
    "Allocation",
    "AllocationError",
    "Auditor",
    "DueReaudit",
    "History",
    "Sample",
    "allocate",
    "check_groups",
    "load_auditors",
    "load_chosen",
    "load_plan",
    "load_population",
    "name_chosen",
    "read_history",
    "rules_in_words",
    "run_allocation",
    "with_plan",
]

POPULATION_COLUMNS = ("case_number", "category", "team")
AUDITOR_COLUMNS = ("name", "email", "team")
#: How an auditors list may spell the format an auditor's forms go in.
FORMAT_WORDS = {"word": "docx", "excel": "xlsx", "web form": "web", "browser": "web"}
CHOSEN_COLUMNS = ("auditor", "case_number")
MODES = ("first", "replace", "add")
#: A plan file's samples (`--plan`): the programme's samples, drawn as seed 001's are.
Sample = SampleRule


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


def event_columns(policy: Policy) -> list[str]:
    """The population's date columns the policy's event-triggered activities look for."""
    return sorted({a.event for a in policy.activities if a.event})


def load_population(path: Path, dates: Collection[str] = ()) -> list[dict[str, str]]:
    """The population, each date column it may carry checked (`dates`: more of them, such as
    the ones an event-triggered activity looks for)."""
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
        for column in ("last_audited", "closed_on", *dates):
            if row.get(column) and parse_date(row[column]) is None:
                raise AllocationError(
                    f"[{path} · row {row['_row']} · {column}] "
                    f"'{printable(row[column], 40)}' is not a date. Use YYYY-MM-DD."
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
        fmt = " ".join((row.get("format") or "docx").strip().lower().lstrip(".").split())
        fmt = FORMAT_WORDS.get(fmt, fmt)
        if fmt not in ("docx", "xlsx", "web"):
            raise AllocationError(
                f"{where} · format] '{row['format']}' is not a form format. "
                "Use Word (docx), Excel (xlsx) or web (a form filled in a browser)."
            )
        auditors.append(
            Auditor(
                row["name"],
                row["email"],
                row["team"],
                breaks,
                done,
                format=fmt,
                group=row.get("group", ""),
                peer_team=row.get("peer_team", ""),
            )
        )
    return auditors


def check_groups(path: Path, auditors: list[Auditor], policy: Policy) -> None:
    """Every group the auditors file names is one the policy knows (its quotas, its
    samples), so a typing slip is not an auditor quietly left out of the programme."""
    known = {g.name for g in policy.auditors.groups}
    known |= {g for s in policy.samples for g in s.auditors}
    known |= {g for rule in policy.on_closure for g in rule.auditors}
    known |= {g for activity in policy.activities for g in activity.auditors}
    for auditor in auditors:
        if auditor.group and auditor.group not in known:
            raise AllocationError(
                f"[{path} · group] '{auditor.group}' (auditor {auditor.name}) is not a group "
                f"of programme '{policy.name}'. Use one of: {', '.join(sorted(known)) or 'none'}"
                ", or leave it empty."
            )


def load_chosen(path: Path) -> list[dict[str, str]]:
    """The cases auditors chose for their chosen slots: auditor, case_number[, sample]."""
    rows = _table(path, CHOSEN_COLUMNS, "chosen cases")
    return [row | {"_file": str(path)} for row in rows]


def default_plan_path() -> Path:
    return Path(str(resources.files("formtool.templates") / "plans" / "default.yaml"))


def load_plan(path: Path | None) -> list[SampleRule]:
    """A plan file's samples (none: seed 001's default plan): `size` cases each, every
    auditor, never the case's own team."""
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
            SampleRule(
                str(raw.get("name", raw["form"])),
                raw["form"],
                tuple(_category(c) for c in raw["categories"]),
                raw["size"],
                at_least=dict(raw.get("at_least") or {}),
                team="other",
            )
        )
    if not samples:
        raise AllocationError(f"[{where_file}] the plan has no samples.")
    return samples


def with_plan(policy: Policy, plan_path: Path | None) -> Policy:
    """The policy, its samples replaced by a plan file's when one is given (`--plan`)."""
    if plan_path is None:
        return policy
    return replace(policy, samples=tuple(load_plan(plan_path)))


def read_history(
    reads: AllocationReads, month: str, population: list[dict[str, str]], policy: Policy
) -> History:
    """The history an allocation for `month` must respect under the policy, read in its
    transaction: cases audited within the exclusion period either side, audits per auditor
    in the policy's year, re-audits due, and what the rest and monthly quotas need."""
    m = Month(month)
    span = policy.exclusion_months
    year_from, year_to = year_of(policy, month)
    counting = counting_activities(policy)
    recent, done = reads.allocation_history(
        m.shift(-span), m.shift(span), year_from, year_to, counting
    )
    return History(
        frozenset(recent),
        dict(done),
        tuple(_reaudits(reads, population, month, policy)),
        _auditor_months(reads, m, policy.auditors.spacing_months, counting),
        _this_month(reads, m, policy),
    )


def counting_activities(policy: Policy) -> frozenset[str]:
    """The activities whose audits count toward an auditor's quota (the policy says)."""
    return frozenset(a.id for a in policy.activities if a.counts_toward_quota)


def _auditor_months(
    reads: AllocationReads, month: Month, gap: int, counting: frozenset[str]
) -> dict[str, frozenset[str]]:
    """The months each auditor has audits that count in, within `gap` months either side."""
    if not gap:
        return {}
    months: defaultdict[str, set[str]] = defaultdict(set)
    for auditor, when in reads.auditor_months(month.shift(-gap), month.shift(gap), counting):
        months[auditor].add(when)
    return {auditor: frozenset(when) for auditor, when in months.items()}


def _this_month(reads: AllocationReads, month: Month, policy: Policy) -> dict[str, int]:
    """Each auditor's audits already recorded for the month (`--add`), if a monthly quota
    applies."""
    rules = policy.auditors
    if rules.per_month is None and all(g.per_month is None for g in rules.groups):
        return {}
    _, counts = reads.allocation_history(month, month, month, month, counting_activities(policy))
    return dict(counts)


def _reaudits(
    reads: AllocationReads, population: list[dict[str, str]], month: str, policy: Policy
) -> list[DueReaudit]:
    """Cases graded with a follow-up grade (e.g. inadequate; moderated grade first) in an
    earlier month and not audited since, when the policy asks for re-audits (seed 001
    Appendix A para 25: within two months, a review at four weeks). They are exempt from the
    exclusion period."""
    rule = policy.reaudit
    if rule is None:
        return []
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
        case = by_case.get(row.case_number) or _stored_case(row, population, month, policy)
        graded = received_on(row)
        assert graded is not None  # graded_before reads audits with a current return
        due.append(
            DueReaudit(
                case,
                row.form_id,
                graded + dt.timedelta(weeks=rule.review_weeks),
                add_months(graded, rule.within_months),
            )
        )
    return sorted(due, key=lambda d: d.case["case_number"])


def _stored_case(
    row: Any, population: list[dict[str, str]], month: str, policy: Policy
) -> dict[str, str]:
    """A case due a re-audit that the population no longer lists, as a population row: its
    stored facts, no category (the population would have said it), and an audit id of its
    own when the population names ids (the earlier audit keeps its id)."""
    case: dict[str, str] = {"category": ""} | json.loads(row.facts) | {"team": row.team}
    case.pop("audit_id", None)
    if any("audit_id" in p for p in population):
        form = all_forms()[row.form_id]
        case["audit_id"] = audit_id_for(form, row.case_number, Month(month).last_day)
    return case


def _give_ids(rows: list[dict[str, str]], month: str, always: bool = False) -> None:
    """Audit ids name the allocation month (FORM-CASE-YYYYMM), not the due date's: a tool
    due the next month (hampshire's quality practice, due the 20th) keeps its month. Rows the
    population gave no id get one when a row is due after the month (or `always`); else
    the case list leaves ids to `generate`, which makes the same ones from the due date."""
    if not always and all(r["due_date"][:7] == month for r in rows):
        return
    forms, last = all_forms(), Month(month).last_day
    for row in rows:
        if not row.get("audit_id"):
            row["audit_id"] = audit_id_for(forms[row["form"]], row["case_number"], last)


def _check_columns(path: Path, population: list[dict[str, str]], policy: Policy) -> None:
    """The population must carry every column the sampled forms print as required, and a
    worker column when a sample takes files per worker."""
    have = set(population[0]) | {"auditor", "due_date", "audit_type", "form"}
    forms = all_forms()
    wanted = [(s.name, s.form) for s in policy.samples]
    wanted += [(CLOSURE.lower(), rule.form) for rule in policy.on_closure]
    for name, form_id in wanted:
        form = forms.get(form_id)
        if form is None:
            raise AllocationError(
                f"Programme '{policy.name}' samples form '{form_id}' ({name}), which is not "
                f"a form here ({', '.join(forms)}). Fix the programme."
            )
        missing = [c for c in form.required_columns if c not in have]
        if missing:
            raise AllocationError(
                f"[{path}] lacks column(s) {', '.join(missing)}, which form "
                f"'{form_id}' prints (sample '{name}'). Add them."
            )
    per_worker = [s.name for s in policy.samples if s.per_worker]
    if per_worker and "worker" not in have:
        raise AllocationError(
            f"[{path}] lacks column worker, which sample '{per_worker[0]}' needs (one file "
            "per worker). Add it."
        )


def _records(
    rows: list[dict[str, str]], key: bytes, unkeyed: Collection[str], month: str
) -> list[store.AuditRecord]:
    """The allocation's audits as the store records them, in the allocation's month (a tool
    may be due the next month): keyed checksums, except audits issued before keying
    (`unkeyed`), whose forms are already with auditors."""
    from formtool.generate import audit_record

    forms = all_forms()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = [[row.get(c, "") for c in columns] for row in rows]
    return [
        replace(
            audit_record(case if case.audit_id in unkeyed else replace(case, checksum_key=key)),
            month=month,
        )
        for form_id in dict.fromkeys(r["form"] for r in rows)
        for case in cases_from_rows("allocation", columns, table, forms[form_id])
    ]


def _active_policy(db: Store) -> Policy:
    from formtool.programme.rules import active_policy

    return active_policy(db)


def recorded(db: Store, policy: Policy, user: str) -> Policy:
    from formtool.programme.rules import recorded as stored

    return stored(db, policy, user)


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
    policy: Policy | None = None,
    chosen_path: Path | None = None,
    staff_path: Path | None = None,
    themes: dict[str, str] | None = None,
) -> Allocation:
    """Allocate the month under the policy (None: the database's active one), with the
    cases auditors chose (`chosen_path`: auditor, case_number[, sample]), under the
    allocation lock with the history in the same transaction; record the audits, the
    chosen slots left open, the runs of the programme's activities that run in the month
    (their staff subjects from `staff_path`) and the policy's name and version; then write
    the allocation as a case list."""
    if mode not in MODES:
        raise AllocationError(f"Unknown allocation mode '{mode}'. Use one of {MODES}.")
    if mode == "first" and chosen_path is not None and db.open_choices(month):
        chosen = load_chosen(chosen_path)
        return name_chosen(db, population_path, auditors_path, month, chosen, out, user, policy)
    policy = with_plan(recorded(db, policy or _active_policy(db), user), plan_path)
    population = load_population(population_path, event_columns(policy))
    if not population:
        raise AllocationError(f"[{population_path}] has no cases.")
    auditors = load_auditors(auditors_path)
    if not auditors:
        raise AllocationError(f"[{auditors_path}] lists no auditors.")
    check_groups(auditors_path, auditors, policy)
    chosen = load_chosen(chosen_path) if chosen_path else []
    staff = load_staff(staff_path) if staff_path else []
    _check_themes(themes or {}, policy)
    _check_columns(population_path, population, policy)
    forms = all_forms()
    made: list[Allocation] = []
    key = db.identity_key()  # made before the allocation's transaction, not inside it
    unkeyed = {r.audit_id for r in db.audit_rows([month]) if r.checksum_scheme != "hmac"}

    def plan(reads: AllocationReads) -> Planned:
        _refuse_repeat(reads.month_allocations(month), month, mode, chosen_path is not None)
        replaced = reads.drop_unstarted(month) if mode == "replace" else 0
        history = read_history(reads, month, population, policy)
        allocation = allocate(population, auditors, policy, month, seed, history, chosen)
        drawn = draw_activities(
            reads, policy, month, mode, population, staff, auditors, seed, allocation, history,
            themes or {},
        )  # fmt: skip
        if not allocation.rows and not allocation.choices and not drawn.rows:
            raise AllocationError(
                f"Nothing could be allocated for {month}: "
                + " ".join(allocation.unallocated or ["no eligible cases."])
            )
        allocation.mode, allocation.replaced = mode, replaced
        _give_ids(allocation.rows, month, always=bool(drawn.rows))  # one list, every id
        with_activities(allocation, drawn)
        made.append(allocation)
        return Planned(
            tagged(_records(allocation.rows, key, unkeyed, month), drawn),
            [forms[r["form"]] for r in allocation.rows],
            allocation.choices,
            drawn.runs,
        )

    db.allocate(month, mode, seed, plan, user, programme=(policy.name, policy.version))
    allocation = made[-1]  # plan ran, or allocate raised
    write_case_list(out, allocation.rows)
    db.record_files([out], FORM, user=user, month=month)  # the case list: tracked for retention
    return allocation


def with_activities(allocation: Allocation, drawn: activities.Drawn) -> Allocation:
    """The allocation with the activities' audits, notes and runs added."""
    allocation.rows += drawn.rows
    allocation.unallocated += drawn.notes
    allocation.warnings += drawn.warnings
    allocation.runs = [_run_summary(r, drawn) for r in drawn.runs + drawn.topped_up]
    return allocation


def draw_activities(
    reads: AllocationReads,
    policy: Policy,
    month: str,
    mode: str,
    population: list[dict[str, str]],
    staff: list[dict[str, str]],
    auditors: list[Auditor],
    seed: int,
    allocation: Allocation,
    history: History,
    themes: dict[str, str] | None = None,
) -> activities.Drawn:
    """The month's runs of the policy's activities. `--add` adds case-file audits only (and
    says so); a run still there after `--replace` (its audits already sent stay) is topped
    up, never drawn twice."""
    m = Month(month)
    if mode == "add":
        named = ", ".join(a.name for a in policy.activities if a.runs_in(m.number))
        drawn = activities.Drawn()
        if named:
            drawn.notes.append(
                f"--add draws case file audits only: {named} of {month} are drawn once, "
                "with its first allocation (or --replace)."
            )
        return drawn
    existing = _surviving_runs(reads, month)
    surviving = [
        {"case_number": r.case_number, "auditor": r.auditor}
        for r in reads.month_case_file_audits(month)
    ]
    working = [
        a for a in auditors if month not in a.breaks and m.number not in months_off(policy, a)
    ]
    inputs = activities.Inputs(
        policy,
        m,
        population,
        staff,
        working,
        random.Random(f"{seed}:{month}:activities"),
        reads.subject_months,
        case_file_rows=allocation.rows + surviving,
        taken={r["case_number"] for r in allocation.rows + surviving},
        recent=history.recent,
        existing=existing,
        themes=themes or {},
    )
    return activities.plan(inputs, reads.next_run_id())


def _check_themes(themes: dict[str, str], policy: Policy) -> None:
    for activity_id in themes:
        if policy.activity(activity_id) is None:
            known = ", ".join(a.id for a in policy.activities) or "none"
            raise AllocationError(
                f"[--theme {printable(activity_id, 40)}=...] programme '{policy.name}' has no "
                f"such activity. Its activities: {known}."
            )


def _surviving_runs(reads: AllocationReads, month: str) -> dict[str, activities.Existing]:
    """The month's drawn runs a replacement left (with their audits already sent)."""
    runs = {r.id: r for r in reads.month_runs(month) if not r.on_demand}
    audits: dict[int, list[tuple[str, str]]] = {i: [] for i in runs}
    for run_id, subject, auditor in reads.run_subjects(list(runs)):
        audits[run_id].append((subject, auditor))
    return {
        r.activity: activities.Existing(
            RunRecord(r.id, r.activity, r.kind, r.name, r.month, r.due_date, r.theme, r.owner),
            tuple(audits[r.id]),
        )
        for r in runs.values()
    }


def tagged(records: list[store.AuditRecord], drawn: activities.Drawn) -> list[store.AuditRecord]:
    """The records of activity audits marked with their activity, run and subject kind."""
    out = []
    for record in records:
        tag = drawn.tags.get(record.audit_id)
        if tag is not None:
            record = replace(record, activity=tag[0], run_id=tag[1], subject_kind=tag[2])
        out.append(record)
    return out


def _run_summary(run: RunRecord, drawn: activities.Drawn) -> dict[str, Any]:
    count = sum(1 for tag in drawn.tags.values() if tag[1] == run.id)  # new in this allocation
    return {
        "run": run.id,
        "activity": run.activity,
        "name": run.name,
        "theme": run.theme,
        "due": run.due_date.isoformat(),
        "audits": count,
    }


def load_staff(path: Path) -> list[dict[str, str]]:
    """The staff file (staff_id, name, team, role[, email, group]): the people supervision
    audits and observations look at. A staff id names files and audit ids: it is checked."""
    rows = _table(path, activities.STAFF_COLUMNS, "staff")
    seen: set[str] = set()
    for row in rows:
        problem = staff_id_problem(row["staff_id"])
        if problem:
            raise AllocationError(
                f"[{path} · row {row['_row']} · staff_id] '{printable(row['staff_id'], 40)}' "
                f"cannot be used: {problem}."
            )
        if row["staff_id"] in seen:
            raise AllocationError(
                f"[{path} · row {row['_row']} · staff_id] '{row['staff_id']}' appears twice. "
                "Give each member of staff one row."
            )
        seen.add(row["staff_id"])
    return rows


def staff_id_problem(text: str) -> str:
    """'' if `text` can be a staff id (it becomes part of audit ids and file names)."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,30}", text):
        return "use 1-30 letters, digits and hyphens (e.g. S104)"
    return ""


def name_chosen(
    db: Store,
    population_path: Path,
    auditors_path: Path,
    month: str,
    chosen: list[dict[str, str]],
    out: Path,
    user: str = "",
    policy: Policy | None = None,
) -> Allocation:
    """Name the cases auditors chose for the open chosen slots of a month already allocated
    (`allocate --chosen FILE`, or the Allocate page): each checked as at allocation, with
    the month's audits and the exclusion period's in the database; all recorded in one
    transaction, or none. Writes the named audits as a case list; the Allocation it returns
    (mode "name") has them as rows, notes for cases already named, and the slots still open."""
    policy = policy or _active_policy(db)
    population = load_population(population_path)
    auditors = {a.name: a for a in load_auditors(auditors_path)}
    for number, choice in enumerate(chosen, start=2):
        if choice.get("auditor", "").strip() not in auditors:
            row = f"[{choice.get('_file', 'chosen')} · row {choice.get('_row', number)}]"
            raise AllocationError(
                f"{choice.get('_where') or row} '{choice.get('auditor', '')}' is not in the "
                f"auditors file {auditors_path}. Check the name, or add them there."
            )
    slots = [_slot(row, auditors, policy) for row in db.open_choices(month)]
    m, span = Month(month), policy.exclusion_months
    recent, _ = db.preview_allocation(
        lambda reads: reads.allocation_history(m.shift(-span), m.shift(span), month, month)
    )
    month_cases = {r.case_number: r.auditor for r in db.audit_rows([month])}
    named, notes = name_slots(
        policy, month, [s for s in slots if s], chosen, population, frozenset(recent), month_cases
    )
    rows = [row for _, row in named]
    _give_ids(rows, month, always=True)
    if rows:
        forms = all_forms()
        records = {r.audit_id: r for r in _records(rows, db.identity_key(), (), month)}
        pairs = [(slot_id, records[row["audit_id"]]) for slot_id, row in named]
        db.name_choices(month, pairs, [forms[r["form"]] for r in rows], user)
        write_case_list(out, rows)
        db.record_files([out], FORM, user=user, month=month)
    still = [
        {"auditor": c.auditor, "sample": c.sample, "form": c.form_id, "team": c.team}
        for c in db.open_choices(month)
    ]
    due = row_due(policy, rows[0]["form"] if rows else _chosen_form(policy), m)
    return Allocation(month, due, rows, notes, [], mode="name", choices=still)


def _slot(row: Any, auditors: dict[str, Auditor], policy: Policy) -> OpenSlot | None:
    """An open slot as name_slots takes it; None when its auditor is not in the auditors
    file (it stays open)."""
    auditor = auditors.get(row.auditor)
    if auditor is None:
        return None
    sample = next((s for s in policy.samples if s.chosen and s.name == row.sample), None)
    if sample is None:
        raise AllocationError(
            f"The open chosen slot of {row.auditor} in {row.month} is for '{row.sample}', "
            f"which is not a chosen sample of programme '{policy.name}' (the one this database "
            "runs now). Allocate the month again (allocate --replace) under it."
        )
    return OpenSlot(row.id, auditor, sample)


def _chosen_form(policy: Policy) -> str:
    return next((s.form for s in policy.samples if s.chosen), "")


def _refuse_repeat(earlier: list[Any], month: str, mode: str, naming: bool = False) -> None:
    earlier = [e for e in earlier if e.mode != store.ACTIVITY_MODE]  # officers' own runs
    if earlier and mode == "first":
        count = sum(e.audits for e in earlier)
        named = " It has no chosen slot left to name." if naming else ""
        raise AllocationError(
            f"{month} is already allocated ({count} audit(s), {show_date(earlier[-1].created_at)}"
            f").{named} Replace the audits not yet sent (allocate --replace) or add more (--add)."
        )


def rules_in_words(policy: Policy) -> list[str]:
    """The allocation rules the policy sets, as the Allocate page lists them under its
    samples."""
    rules = policy.auditors
    reaudit = "; inadequate cases come back for re-audit" if policy.reaudit else ""
    teams = {s.team_rule(m) for s in policy.samples for m in range(1, 13)}
    whose = "Auditors never audit their own team" if teams <= {"other"} else _team_words(teams)
    quotas = [
        f"at most {rules.per_year} audits each per {rules.year} year" if rules.per_year else "",
        f"at most {rules.per_month} a month" if rules.per_month else "",
        *(_group_words(g) for g in rules.groups),
    ]
    lines = [
        "Stratified by category, seeded: the same files and seed give the same sample.",
        f"No case audited in the last {policy.exclusion_months} months{reaudit}.",
        "; ".join([whose, *(q for q in quotas if q), "each case to the least-loaded eligible "])
        + "auditor.",
    ]
    if rules.break_limit is not None:
        lines.append(f"At most {rules.break_limit:.0%} of auditors on break in a month.")
    if rules.months_off:
        lines.append(f"No audits in {_month_names(rules.months_off)}.")
    if rules.spacing_months:
        lines.append(f"An auditor rests {rules.spacing_months} month(s) after an audit.")
    if policy.on_closure:
        tools = "; ".join(
            rule.form + (f" for {', '.join(rule.categories)}" if rule.categories else "")
            for rule in policy.on_closure
        )
        lines.append(f"A case closed last month is audited again ({tools}).")
    return lines


def _team_words(rules: set[str]) -> str:
    words = {
        "other": "outside their own team",
        "own": "in their own team",
        "peer": "in their peer team",
        "any": "in any team",
    }
    return "Each sample says whose cases an auditor takes: " + " or ".join(
        words[r] for r in sorted(rules) if r in words
    )


def _group_words(group: AuditorGroup) -> str:
    caps = [
        f"{group.per_month} a month" if group.per_month is not None else "",
        f"{group.per_year} a year" if group.per_year is not None else "",
        f"none in {_month_names(group.months_off)}" if group.months_off else "",
    ]
    said = ", ".join(c for c in caps if c)
    return f"{group.name}: {said}" if said else ""


def _month_names(months: Collection[int]) -> str:
    return ", ".join(calendar.month_name[m] for m in sorted(months))
