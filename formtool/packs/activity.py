"""The reports of the QA activities, as Word and PDF in the packs' look (render.py): a thematic
audit's or dip sample's group summary report (seed 001 para 4.13: "the group will agree the
overall findings with the key messages and an audit summary report being completed"; seed 004:
the prevalence of strengths and areas for development, and prioritised actions), the quarterly
report on the quality of supervision (seed 004) and the observation summary, with the coverage of
practitioners against "every case-holding practitioner observed at least once a year" (seed 004).

The group summary report names cases; the supervision and observation reports name members of
staff and their results (staff data). The marking on every page says so, each report is
refused to a role that may not see it, and every one made is recorded in the access log (so
none is made where the database is read-only). The figures are activity_figures.py's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.access.log import record_access
from formtool.access.roles import ROLES
from formtool.definitions import FormDefinition
from formtool.definitions.scales import FAVOURABLE, UNFAVOURABLE
from formtool.packs.activity_figures import (
    AUDITS_OF_SUPERVISION,
    CASES,
    OBSERVATIONS,
    ActivitySet,
    Coverage,
    Prevalence,
    Staff,
    coverage,
    listed,
    load_set,
    min_base,
)
from formtool.packs.figures import PackError, pct
from formtool.packs.render import Document, Part, Table, to_docx, to_pdf
from formtool.packs.standing import charted, tally
from formtool.packs.summary import EXEMPTED, FILED, PREPARED
from formtool.periods import Month, Period, months_from, parse_period, show_date
from formtool.programme.activity import STAFF_RESULT_ROLES
from formtool.programme.rules import active_policy
from formtool.settings import DEFAULT, Settings
from formtool.store import Store, audit_facts

GROUP_KINDS = ("thematic", "dip_sample")
CASE_LEVEL = "CASE-LEVEL"
STAFF_DATA = "STAFF DATA"
MAX_ROWS = 500  # a list longer than this is cut, with a line saying how many more
MOST_OFTEN = 3  # strengths and areas for development named in the summary
PLURALS = {"supervisor": "supervisors", "practitioner": "practitioners"}


# --- shared parts --------------------------------------------------------------------------


def _date(day: dt.date | None) -> str:
    return show_date(day) if day else ""


def _rows(rows: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    return tuple(rows[:MAX_ROWS])


def _more(count: int, what: str) -> list[str]:
    return [f"{count - MAX_ROWS} more {what} are not listed."] if count > MAX_ROWS else []


def _audits_table(data: ActivitySet, staff: bool) -> Table:
    who = ("Staff reference", "Name") if staff else ("Case number",)
    rows = [
        (
            a.audit_id,
            *((a.subject, a.name) if staff else (a.subject,)),
            a.team,
            a.auditor,
            a.state,
            a.grade,
        )
        for a in data.audits
    ]
    return Table(("Audit", *who, "Team", "Auditor", "State", "Judgement"), _rows(rows))


def _counts_line(data: ActivitySet, today: dt.date) -> str:
    """Every audit once: complete, outstanding, the two-stage kinds when any, exempted."""
    t = tally(data.audits, today)
    share = f" ({pct(t.completed, t.due)})" if charted(t.due, data.min_base) else ""
    two_stage = "".join(
        f", {n} {words}" for n, words in ((t.prepared, PREPARED), (t.filed, FILED)) if n
    )
    return (
        f"{t.allocated} allocated, {t.completed} of the {t.due} due returned complete{share}, "
        f"{t.outstanding} outstanding ({t.overdue} overdue as of {_date(today)}){two_stage} "
        f"and {t.exempted} {EXEMPTED}."
    )


def _findings_parts(data: ActivitySet) -> list[Part]:
    """Per tool: the judgements, the strengths and areas for development found most often,
    then each section's prevalence sentences."""
    parts = []
    forms = data.forms()
    for form in forms:
        named = f" ({form.name})" if len(forms) > 1 else ""
        found = data.prevalence(form)
        intro = (
            f"From the {len(data.by_form(form))} complete {data.noun.short} only. N/A (and any "
            "answer that counts neither way) is left out of the base, the number a proportion "
            f"is of; a proportion is given only where at least {data.min_base} answered."
        )
        parts += _judgement_part(data, form, named, intro) + _most_often(found, named)
        sections: dict[str, list[str]] = {}
        for one in found:
            sections.setdefault(one.section, []).append(one.sentence())
        parts += [Part(f"{title}{named}", bullets=said) for title, said in sections.items()]
    return parts


def _judgement_part(data: ActivitySet, form: FormDefinition, named: str, intro: str) -> list[Part]:
    judged = data.judgements(form)
    if judged is None:
        return [Part(f"How to read the figures{named}", paragraphs=[intro])]
    share = ("Share",) if judged.proportions else ()  # no percentage below the base
    rows = tuple(
        (c, str(n), *((judged.share(c),) if share else ())) for c, n in judged.counts.items()
    )
    return [
        Part(
            f"Overall judgements{named}",
            paragraphs=[intro, judged.sentence()],
            tables=[Table((judged.label, "Number", *share), rows, numeric=(1, 2))],
        )
    ]


def _most_often(found: list[Prevalence], named: str) -> list[Part]:
    """The seed-004 summary: the strengths and the areas for development most prevalent."""
    parts = []
    for outcome, title in ((FAVOURABLE, "Strengths"), (UNFAVOURABLE, "Areas for development")):
        ranked = sorted(
            (p for p in found if p.scored and p.counts[outcome]),
            key=lambda p: (-p.counts[outcome], -p.base, p.item.key),
        )
        if ranked:
            said = [p.says(outcome) for p in ranked[:MOST_OFTEN]]
            parts.append(Part(f"{title} found most often{named}", bullets=said))
    return parts


def _written_parts(data: ActivitySet) -> list[Part]:
    parts = []
    for form in data.forms():
        for found in data.written(form):
            quotes = [f"{who}: \u201c{text}\u201d" for who, text in found.quotes[:MAX_ROWS]]
            parts.append(
                Part(
                    found.label,
                    paragraphs=_more(len(found.quotes), "answers")
                    or ([] if quotes else ["Nothing was written here."]),
                    bullets=quotes,
                )
            )
    return parts


def _actions_parts(data: ActivitySet, staff: bool) -> list[Part]:
    """The actions, open ones first, soonest due first (seed 004: prioritised actions). The
    count follows the table, so the heading stays with the table on the page in Word too."""
    rows = sorted(data.action_rows(), key=lambda r: (r.signed_off, r.due or dt.date.max, r.subject))
    if not rows:
        return [Part("Actions", [f"No actions were recorded in the complete {data.noun.short}."])]
    done = sum(r.signed_off for r in rows)
    table = Table(
        ("Member of staff" if staff else "Case", "Action", "Who", "By when", "Status"),
        _rows(
            [
                (
                    r.subject,
                    r.what,
                    r.responsible,
                    _date(r.due),
                    "signed off" if r.signed_off else "open",
                )
                for r in rows
            ]
        ),
    )
    count = (
        f"{len(rows)} action(s) were agreed in the complete {data.noun.short}: {done} signed off, "
        f"{len(rows) - done} open; open ones first, soonest due first."
    )
    return [Part("Actions", tables=[table]), Part(paragraphs=[count, *_more(len(rows), "actions")])]


def _marking(settings: Settings, what: str) -> str:
    return f"{settings.marking} \u00b7 {what}"


def _write(document: Document, out_dir: Path, stem: str) -> list[Path]:
    files = {f"{stem}.docx": to_docx(document), f"{stem}.pdf": to_pdf(document)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    return [out_dir / name for name in files]


def _check(db: Store, roles: Collection[str] | None, allowed: Collection[str], what: str) -> None:
    """Fail closed: no access log to record it in, or a role that may not see it."""
    if db.read_only:
        raise PackError(
            f"The database is read-only here, so {what} could not be recorded in the access "
            "log, and it never leaves unrecorded. Copy the database to a folder you may write "
            "to and make it there."
        )
    if roles is not None and not set(roles) & set(allowed):
        raise PackError(
            f"{what[0].upper()}{what[1:]} is for {listed([f'{r}s' for r in allowed], 'and')} "
            "only; your role sees the figures in the PMU pack."
        )


def _case_roles() -> tuple[str, ...]:
    return tuple(name for name, role in ROLES.items() if "cases" in role.capabilities)


# --- the group summary report ----------------------------------------------------------------


def _run_facts(run: Any, data: ActivitySet, activity_name: str, earlier: Any) -> Table:
    review = f"run {earlier.id}: {earlier.name} ({Month(earlier.month).name})" if earlier else ""
    auditors = sorted({a.auditor for a in data.audits if a.auditor})
    rows = [
        ("Activity", activity_name),
        ("Theme", run.theme or "none given"),
        ("Month", Month(run.month).name),
        ("Due by", _date(run.due_date)),
        ("Owner", run.owner or "not named"),
        ("How the cases were chosen", run.chosen),
        ("Review of", review or "none: a first audit"),
        ("Auditors", ", ".join(auditors)),
    ]
    return Table(("Detail", "Value"), tuple(rows), (0.3, 0.7))


def group_document(
    run: Any, data: ActivitySet, activity_name: str, earlier: Any, settings: Settings = DEFAULT
) -> Document:
    """A thematic audit's or dip sample's group summary report (see the module docstring)."""
    today = clock.today()
    title = run.name if not run.theme or run.theme in run.name else f"{run.name}: {run.theme}"
    agreed = [p.strip() for p in (run.findings or "").splitlines() if p.strip()] or [
        "The group has not yet recorded its findings: "
        f"`formtool activity set {run.id} --findings TEXT`."
    ]
    parts = [
        Part(
            "About this audit",
            paragraphs=[
                "Case-level: this report names cases and quotes their audits. It is for "
                "officers and moderators only."
            ],
            tables=[_run_facts(run, data, activity_name, earlier)],
        ),
        Part(
            "The audits",
            paragraphs=[_counts_line(data, today)],
            tables=[_audits_table(data, False)],
        ),
        Part("The group's findings and key messages", paragraphs=agreed),
        *_findings_parts(data),
        *_written_parts(data),
        *_actions_parts(data, False),
    ]
    return Document(
        f"Group summary report: {title}",
        f"{activity_name} \u00b7 run {run.id} \u00b7 {Month(run.month).name} \u00b7 as of "
        f"{_date(today)}",
        parts,
        f"Group summary report, run {run.id} \u00b7 case-level: officers and moderators only",
        settings.council,
        _marking(settings, CASE_LEVEL),
    )


def group_report(
    db: Store,
    run_id: int,
    out_dir: Path,
    user: str,
    settings: Settings = DEFAULT,
    roles: Collection[str] | None = None,
    address: str = "command line",
) -> list[Path]:
    """Write a thematic or dip-sample run's group summary report (.docx and .pdf) and record
    it in the access log; `roles`: the web account's (None: the command line)."""
    run = db.require_run(run_id)
    if run.kind not in GROUP_KINDS:
        raise PackError(
            f"Run {run.id} ({run.name}) is not a thematic audit or dip sample, so it has no "
            "group summary report: " + _report_for(run.kind)
        )
    _check(db, roles, _case_roles(), "a group summary report")
    policy = active_policy(db)
    activity = policy.activity(run.activity)
    data = load_set(db, [run], min_base(policy, [run.activity]), CASES, f"Run {run.id}'s report")
    earlier = db.require_run(run.review_of) if run.review_of else None
    name = activity.name if activity else run.activity
    written = _write(
        group_document(run, data, name, earlier, settings), out_dir, f"run{run.id}-group-report"
    )
    record_access(
        db, user, "made a group summary report", None, address, f"run {run.id}, to {out_dir}"
    )
    return written


def _report_for(kind: str) -> str:
    return {
        "supervision": "its report is the quarterly supervision report.",
        "observation": "its report is the observation summary for a period.",
    }.get(kind, "its figures are in the PMU pack.")


# --- staff data: the supervision report and the observation summary ---------------------------


def _as_period(period: Period | str) -> Period:
    return period if isinstance(period, Period) else parse_period(str(period))


def _kind_runs(db: Store, months: Sequence[str], kind: str) -> list[Any]:
    runs = [r for r in db.activity_runs(months=months) if r.kind == kind]
    return sorted(runs, key=lambda r: (r.month, r.id))


def _staff_roles(policy: Any, runs: Sequence[Any]) -> tuple[str, ...]:
    """Roles that may see these runs' staff results: those every one of their activities allows."""
    allowed = set(STAFF_RESULT_ROLES)
    for run in runs:
        activity = policy.activity(run.activity)
        if activity is not None and activity.staff:
            allowed &= set(activity.result_roles())
    return tuple(r for r in STAFF_RESULT_ROLES if r in allowed)


#: The runs table's counts after Allocated (figures.Tally's fields): they add up to it.
RUN_COLUMNS = (
    ("completed", "Complete"),
    ("outstanding", "Outstanding"),
    ("prepared", "Prepared, to be picked"),
    ("filed", "Filed unaudited"),
    ("exempted", "Exempted"),
)


def _runs_table(data: ActivitySet, today: dt.date) -> Table:
    """Each run's audits, every one counted once (the two-stage columns only when any)."""
    counts = {r.id: tally([a for a in data.audits if a.run_id == r.id], today) for r in data.runs}
    shown = [
        (key, heading)
        for key, heading in RUN_COLUMNS
        if key not in ("prepared", "filed") or any(getattr(t, key) for t in counts.values())
    ]
    rows = tuple(
        (
            str(r.id),
            r.name,
            Month(r.month).name,
            _date(r.due_date),
            str(counts[r.id].allocated),
            *(str(getattr(counts[r.id], key)) for key, _ in shown),
        )
        for r in data.runs
    )
    return Table(
        ("Run", "Name", "Month", "Due by", "Allocated", *(heading for _, heading in shown)),
        rows,
        numeric=(0, *range(4, 5 + len(shown))),
    )


def _staff_notice(roles: Sequence[str]) -> str:
    return (
        "Staff data: this report names members of staff and their results. It is for "
        f"{listed([f'{r}s' for r in roles], 'and')} only; viewers see counts only."
    )


#: What a period without runs of a staff kind is said to lack.
_NONE_OF = {"supervision": "supervision audits", "observation": "observations of practice"}


def _staff_runs(
    db: Store, period: Period, kind: str, roles: Collection[str] | None, what: str
) -> tuple[list[Any], Any, tuple[str, ...]]:
    """The period's runs of a staff kind, the policy in force and the roles that may see
    their results, once `roles` may see `what` (fail closed, as `_check`); PackError if the
    period has none."""
    runs = _kind_runs(db, period.months, kind)
    if not runs:
        raise _none_in(period, _NONE_OF[kind])
    policy = active_policy(db)
    allowed = _staff_roles(policy, runs)
    _check(db, roles, allowed, what)
    return runs, policy, allowed


def _none_in(period: Period, what: str) -> PackError:
    return PackError(
        f"No {what} in {period.label} ({period.span}): nothing to report. Check the period, or "
        "allocate and import them first."
    )


def supervision_document(
    period: Period,
    data: ActivitySet,
    roles: Sequence[str],
    subject: str,
    settings: Settings = DEFAULT,
) -> Document:
    """The quarterly report on the quality of supervision (seed 004)."""
    today = clock.today()
    allocated = {a.subject for a in data.audits if not a.exempted}
    audited = {a.subject for a in data.complete}
    many = PLURALS.get(subject, "members of staff")
    parts = [
        Part(
            "About this report",
            paragraphs=[_staff_notice(roles)],
            tables=[_runs_table(data, today)],
        ),
        Part(
            f"{many.capitalize()} audited",
            paragraphs=[
                f"{len(audited)} of the {len(allocated)} {many} allocated were audited (a "
                "complete return in).",
                _counts_line(data, today),
            ],
            tables=[_audits_table(data, True)],
        ),
        *_findings_parts(data),
        *_written_parts(data),
        *_actions_parts(data, True),
    ]
    return Document(
        f"Quality of supervision: {period.label}",
        f"{period.span} \u00b7 quarterly report on the quality of supervision practice \u00b7 "
        f"as of {_date(today)}",
        parts,
        f"Supervision report {period.label} \u00b7 staff data",
        settings.council,
        _marking(settings, STAFF_DATA),
    )


def supervision_report(
    db: Store,
    period: Period | str,
    out_dir: Path,
    user: str,
    settings: Settings = DEFAULT,
    roles: Collection[str] | None = None,
    address: str = "command line",
) -> list[Path]:
    """Write the report on the quality of supervision for a period (a quarter: 2026-Q4) from
    its supervision runs (.docx and .pdf) and record it in the access log."""
    period = _as_period(period)
    runs, policy, allowed = _staff_runs(db, period, "supervision", roles, "the supervision report")
    data = load_set(
        db,
        runs,
        min_base(policy, [r.activity for r in runs]),
        AUDITS_OF_SUPERVISION,
        f"The supervision report for {period.label}",
    )
    subjects = {a.subject for r in runs if (a := policy.activity(r.activity)) is not None}
    subject = subjects.pop() if len(subjects) == 1 else "member of staff"
    document = supervision_document(period, data, allowed, subject, settings)
    written = _write(document, out_dir, f"supervision-{period.label}")
    record_access(
        db, user, "made a supervision report", None, address, f"{period.label}, to {out_dir}"
    )
    return written


def _observations_table(data: ActivitySet) -> Table:
    rows = [
        (
            a.name,
            a.subject,
            a.team,
            a.auditor,
            _date(data.observed_on(a)) if a.complete else "",
            a.state,
            a.grade,
        )
        for a in data.audits
    ]
    headings = (
        "Practitioner",
        "Staff reference",
        "Team",
        "Observed by",
        "Date",
        "State",
        "Judgement",
    )
    return Table(headings, _rows(rows))


def _coverage_part(cover: Coverage, window: tuple[Month, ...], given: bool, base: int) -> Part:
    times = {1: "once", 2: "twice"}.get(cover.times, f"{cover.times} times")
    span = f"{window[0].short_name} - {window[-1].short_name}"
    whole = cover.practitioners
    share = f" ({pct(len(cover.covered), whole)})" if whole >= max(base, 1) else ""
    source = (
        "the practitioners in the staff list given"
        if given
        else "every practitioner an observation audit names (give the staff list for every "
        "case-holding practitioner)"
    )
    lines = [
        f"Under the programme every case-holding practitioner is to be observed at least {times} "
        "a year. "
        f"Of {source}, {len(cover.covered)} of {whole}{share} had a complete observation at "
        f"least {times} in the 12 months {span}; {len(cover.missing)} did not"
        + (", listed below." if cover.missing else ".")
    ]
    rows = [
        (
            c.staff.name,
            c.staff.staff_id,
            c.staff.team,
            str(c.observations),
            _date(c.last) or "never",
        )
        for c in cover.missing
    ]
    table = Table(
        ("Practitioner", "Staff reference", "Team", "Observations", "Last observed"),
        _rows(rows),
        numeric=(3,),
    )
    return Part(
        f"Coverage: observed at least {times} a year",
        paragraphs=lines + _more(len(rows), "practitioners"),
        tables=[table] if rows else [],
    )


def observation_document(
    period: Period,
    data: ActivitySet,
    cover: Coverage,
    window: tuple[Month, ...],
    given: bool,
    roles: Sequence[str],
    settings: Settings = DEFAULT,
) -> Document:
    """The observation summary for a period: who was observed, coverage, themes."""
    today = clock.today()
    parts = [
        Part(
            "About this report",
            paragraphs=[_staff_notice(roles)],
            tables=[_runs_table(data, today)],
        ),
        Part(
            "Observations",
            paragraphs=[_counts_line(data, today)],
            tables=[_observations_table(data)],
        ),
        _coverage_part(cover, window, given, data.min_base),
        *_findings_parts(data),
        *_written_parts(data),
        *_actions_parts(data, True),
    ]
    return Document(
        f"Observations of practice: {period.label}",
        f"{period.span} \u00b7 observation summary \u00b7 as of {_date(today)}",
        parts,
        f"Observation summary {period.label} \u00b7 staff data",
        settings.council,
        _marking(settings, STAFF_DATA),
    )


def _practitioners(db: Store, runs: Sequence[Any]) -> list[Staff]:
    """Every member of staff these runs' observation audits name."""
    found = []
    for run in runs:
        for row in db.audit_rows(run_id=run.id):
            facts = audit_facts(row)
            found.append(
                Staff(row.case_number, facts.get("staff_name", ""), row.team, facts.get("role", ""))
            )
    return found


def observation_report(
    db: Store,
    period: Period | str,
    out_dir: Path,
    user: str,
    staff: list[dict[str, str]] | None = None,
    settings: Settings = DEFAULT,
    roles: Collection[str] | None = None,
    address: str = "command line",
) -> list[Path]:
    """Write the observation summary for a period (.docx and .pdf) and record it in the access
    log. `staff`: the staff file's rows (staff_id, name, team, role) of the practitioners who
    must be observed; None: those any observation audit names."""
    period = _as_period(period)
    runs, policy, allowed = _staff_runs(db, period, "observation", roles, "the observation summary")
    end = period.months[-1]
    window = months_from(end.shift(-11), 12)
    seen_runs = _kind_runs(db, window, "observation")
    base = min_base(policy, [r.activity for r in runs])
    known = load_set(
        db, seen_runs, base, OBSERVATIONS, f"The observation summary for {period.label}"
    )
    data = _within(known, runs)
    if staff is not None:
        practitioners = [
            Staff(s.get("staff_id", ""), s.get("name", ""), s.get("team", ""), s.get("role", ""))
            for s in staff
            if s.get("staff_id", "").strip()
        ]
    else:
        earlier = [r for r in db.activity_runs() if r.kind == "observation" and r.month <= end]
        practitioners = _practitioners(db, earlier)
    times = max((a.times_a_year for r in runs if (a := policy.activity(r.activity))), default=1)
    cover = coverage(
        practitioners, [(a.subject, known.observed_on(a)) for a in known.complete], times
    )
    document = observation_document(
        period, data, cover, window, staff is not None, allowed, settings
    )
    written = _write(document, out_dir, f"observations-{period.label}")
    record_access(
        db, user, "made an observation summary", None, address, f"{period.label}, to {out_dir}"
    )
    return written


def _within(data: ActivitySet, runs: Sequence[Any]) -> ActivitySet:
    """The part of `data` that belongs to these runs."""
    ids = {r.id for r in runs}
    audits = [a for a in data.audits if a.run_id in ids]
    kept = {a.audit_id for a in audits}
    return ActivitySet(
        list(runs),
        audits,
        {k: v for k, v in data.answers.items() if k in kept},
        [x for x in data.actions if x.get("audit_id") in kept],
        data.min_base,
        data.noun,
    )
