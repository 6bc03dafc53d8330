"""The numbers in a PMU pack, computed once from the database for a reporting period.

Periods follow the council's financial year (as the seed schedules do): Q1 is April-June,
and year 2026 means April 2026 to March 2027. Every figure in the Word report, the PDF and
the workbook comes from `PmuFigures`, so they cannot disagree, and from one selection: an
audit is *complete* when a Final return is in and accepted into the cycle (returned, checked,
moderated, signed off, closed); drafts and returns sent back for amendment are not complete
and not graded. An exempted audit (agreed not to be done) is neither complete nor outstanding:
it is listed as exempted, never as a non-completion. Immediate concerns for a child's safety
are counted (raised, and still without action), never described. What counts as good, which
domains are judged, which answers are favourable and which grades need a follow-up all come
from the definitions; the follow-up's dates (review, re-audit, Head of Service meeting), the
moderation rate and the words the pack uses from the programme policy the database runs.

Every headline adds up: each audit stands in exactly one place (standing.py: completed,
outstanding, prepared and waiting to be picked for audit, prepared and filed without an audit,
exempted), and `Tally` counts them, so the summary's sentence, the team table and its total,
and the workbook give the same numbers. Of the outstanding, those in progress or back with the
auditor and those not yet returned are one split, overdue and not yet due another.

The minimum base (`min_base`, the settings' `min_base`) holds for every proportion a pack
draws as well as says: a chart of fewer audits than that is not drawn (the place says so, with
the count and the base), a trend point of fewer graded audits is a gap; tables still give
the counts.

Every case-file figure counts case-file audits alone (audits.activity ""). The audits of the
programme's other QA activities (dip samples, thematic audits, supervision audits,
observations, family feedback: seed 001 4.11-4.31) are figured apart, one `ActivityFigures`
per activity that had audits in the period, and the summary says how many there were, so none
is left out in silence. A member of staff's results are staff data: a supervision audit's or an
observation's figures are counts and aggregate judgements, never a named person's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from formtool import clock
from formtool.definitions import FormDefinition, Item
from formtool.definitions.scales import FAVOURABLE, OUTCOMES, PARTIAL, UNFAVOURABLE, Scale
from formtool.errors import FormtoolError, printable
from formtool.packs.standing import COMPLETE, InState, Tally, charted, tally
from formtool.periods import Period, show_date
from formtool.programme.followup import FollowUp, Graded, follow_ups, load_follow_ups
from formtool.programme.policy import Policy, default_policy
from formtool.programme.rules import active_policy
from formtool.store import Concern, Store, received_on


def pct(part: int, whole: int) -> str:
    """A share as a whole percentage ("-" of nothing)."""
    return f"{100 * part / whole:.0f}%" if whole else "-"


class PackError(FormtoolError):
    """A pack cannot be made (unknown audit, nothing returned, empty period)."""


class NoAuditsError(PackError):
    """The period has no audits at all: nothing to report (an empty state on the web)."""

    def __init__(self, period: Period) -> None:
        super().__init__(
            f"No audits in {period.label} ({period.span}): nothing to report. "
            "Check the period, or generate and import audits first."
        )
        self.period = period


@dataclass
class AuditFacts(InState):
    audit_id: str
    form: FormDefinition
    case_number: str
    team: str
    auditor: str
    month: str
    due_date: dt.date
    state: str
    facts_text: str  # the pre-filled facts as stored (JSON); "": not read (see facts_of)
    auditor_grade: str = ""
    moderated_grade: str = ""
    moderated_by: str = ""
    returned_on: dt.date | None = None
    return_id: int | None = None
    activity: str = ""  # the programme activity ("": the monthly case-file audit)
    run_id: int | None = None
    subject_kind: str = "case"  # case, supervisor or practitioner

    @cached_property
    def facts(self) -> dict[str, str]:
        """The pre-filled facts (names, dates): only the workbook's named columns read them,
        so a year's audits are not all parsed for the figures."""
        found: dict[str, str] = json.loads(self.facts_text) if self.facts_text else {}
        return found

    @property
    def form_id(self) -> str:
        return self.form.id

    # Worked out once an audit: a year's figures ask each of 100,000 audits several times.
    @cached_property
    def standing(self) -> str:
        return super().standing

    @cached_property
    def grade(self) -> str:
        """The grade that counts: the moderated one where there is one; none unless complete."""
        return (self.moderated_grade or self.auditor_grade) if self.complete else ""

    @property
    def scale(self) -> Scale | None:
        return self.form.grade_scale


@dataclass(frozen=True)
class Finding:
    """How one question was answered across one tool's complete audits."""

    form: str
    item: Item
    counts: dict[str, int]  # favourable / partial / unfavourable
    base: int  # audits that answered it (N/A and neutral answers excluded)

    def share(self, outcome: str) -> float:
        return self.counts.get(outcome, 0) / self.base if self.base else 0.0

    def sentence(self, outcome: str) -> str:
        """ "In 7 of 20 CSC audits there was no record that the child was seen alone." """
        count = self.counts.get(outcome, 0)
        phrase = self.item.finding[0 if outcome == FAVOURABLE else 1]
        if phrase:
            return f"In {count} of {self.base} {self.form} audits {phrase}."
        answer = _answer_for(self.item, outcome)
        return (
            f"In {count} of {self.base} {self.form} audits the answer to "
            f"\u201c{self.item.label}\u201d was {answer}."
        )


def _answer_for(item: Item, outcome: str) -> str:
    scale = item.scale
    if scale is None:
        return outcome
    if item.favourable:
        if outcome == FAVOURABLE:
            return item.favourable
        return (
            " or ".join(c for c in (*scale.favourable, *scale.unfavourable) if c != item.favourable)
            or outcome
        )
    return " or ".join(getattr(scale, outcome)) or outcome


@dataclass
class ToolFindings:
    form: FormDefinition
    audits: int  # complete audits of this tool in the period
    findings: list[Finding] = field(default_factory=list)
    #: What is counted, one and many: ("case audited", "cases audited") or, for an
    #: observation, ("practitioner observed", "practitioners observed").
    noun: tuple[str, str] = ("case audited", "cases audited")

    @property
    def name(self) -> str:
        return self.form.name

    def strongest(self, count: int = 3) -> list[Finding]:
        ranked = [f for f in self.findings if f.counts.get(FAVOURABLE)]
        return sorted(ranked, key=lambda f: (-f.share(FAVOURABLE), -f.base, f.item.key))[:count]

    def weakest(self, count: int = 3) -> list[Finding]:
        ranked = [f for f in self.findings if f.counts.get(UNFAVOURABLE)]
        return sorted(ranked, key=lambda f: (-f.share(UNFAVOURABLE), -f.base, f.item.key))[:count]


@dataclass
class PmuFigures:
    period: Period
    as_of: dt.date
    audits: list[AuditFacts]  # the period's case-file audits (activity audits: below)
    answers: dict[int, dict[str, tuple[str, str]]]  # return id -> key -> (value, comment)
    #: The case-file audits' action rows, once read (see `actions`).
    action_rows: list[dict[str, object]] | None
    min_base: int = 5
    by_team: dict[str, Tally] = field(default_factory=dict)
    totals: Tally = field(default_factory=Tally)  # the headline: the sum of by_team
    grades: dict[str, Counter[str]] = field(default_factory=dict)  # scale id -> grade counts
    grades_by_tool: dict[str, Counter[str]] = field(default_factory=dict)
    grades_by_team: dict[str, Counter[str]] = field(default_factory=dict)
    scales: dict[str, Scale] = field(default_factory=dict)
    domains: dict[str, list[tuple[str, Counter[str], tuple[str, ...]]]] = field(
        default_factory=dict
    )  # tool -> (domain label, judgement counts, the choices counted: N/A left out)
    findings: list[ToolFindings] = field(default_factory=list)
    moderation: dict[str, int] = field(default_factory=dict)
    action_totals: dict[str, int] = field(default_factory=dict)
    follow_up: list[dict[str, object]] = field(default_factory=list)
    trend: list[dict[str, object]] = field(default_factory=list)
    #: Audits of the period reopened after acceptance (audit id, when): a pack produced
    #: after a reopen says it is revised and why its figures may differ from an earlier one.
    reopened: list[tuple[str, dt.datetime]] = field(default_factory=list)
    #: Immediate concerns raised in the period's audits: counts only ("raised", "open").
    concerns: dict[str, int] = field(default_factory=lambda: {"raised": 0, "open": 0})
    #: The programme policy the database runs: its moderation rate, words and follow-up.
    policy: Policy = field(default_factory=default_policy)
    #: The period's audits of the programme's other QA activities, counted in none of the
    #: case-file figures above, and their figures, one per activity (policy order).
    activity_audits: list[AuditFacts] = field(default_factory=list)
    activities: list[ActivityFigures] = field(default_factory=list)
    #: Reads answers of the given returns from the store (return id -> key -> (value,
    #: comment)): the workbook's long Answers sheet asks for them a chunk at a time rather
    #: than holding a year's answers in memory.
    load_answers: Callable[[list[int]], dict[int, dict[str, tuple[str, str]]]] | None = None

    #: Reads the action rows of some returns (only the workbook lists them, a chunk at a
    #: time: a year's are hundreds of thousands).
    load_actions: Callable[[list[int]], list[dict[str, object]]] | None = None
    count_actions: Callable[[list[int]], int] | None = None

    @property
    def actions(self) -> list[dict[str, object]]:
        """The case-file audits' action rows (their totals are counted by the database)."""
        if self.action_rows is None:
            self.action_rows = list(self.iter_actions())
        return self.action_rows

    def iter_actions(self, chunk: int = 2000) -> Iterator[dict[str, object]]:
        """The action rows in audit order, read `chunk` audits at a time."""
        if self.action_rows is not None or self.load_actions is None:
            yield from self.action_rows or []
            return
        ids = [a.return_id for a in self.completed if a.return_id is not None]
        for start in range(0, len(ids), chunk):
            yield from self.load_actions(ids[start : start + chunk])

    @property
    def action_count(self) -> int:
        """How many action rows `iter_actions` gives: counted by the database over the same
        returns (a sheet's size is written before its rows)."""
        if self.action_rows is None and self.count_actions is not None:
            return self.count_actions([a.return_id for a in self.completed if a.return_id])
        return len(self.actions)

    #: Reads the pre-filled facts of some audits (audit id -> JSON): only a workbook that
    #: lists the children's names asks.
    load_facts: Callable[[list[str]], dict[str, str]] | None = None

    def facts_of(self, audits: list[AuditFacts]) -> dict[str, dict[str, str]]:
        """These audits' pre-filled facts (names, dates of birth), by audit id."""
        if self.load_facts is None:
            return {a.audit_id: a.facts for a in audits}
        texts = self.load_facts([a.audit_id for a in audits])
        return {i: json.loads(text) for i, text in texts.items()}

    def answers_for(self, return_ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
        """The answers of these returns (of the period's complete audits), from memory when
        loaded, else from the store."""
        if self.load_answers is None:
            return {i: self.answers[i] for i in return_ids if i in self.answers}
        return self.load_answers(return_ids)

    # Worked out once: the figures ask for them many times over a year's audits (the
    # audits are never changed after loading).
    @cached_property
    def completed(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.complete]

    @cached_property
    def graded(self) -> list[AuditFacts]:
        return [a for a in self.completed if a.grade]

    @property
    def overdue(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.outstanding and a.due_date < self.as_of]

    @property
    def exempted(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.exempted]

    @property
    def not_completed(self) -> list[AuditFacts]:
        """The non-completions: every audit due and not complete (outstanding, or prepared
        and waiting to be picked); never one exempted or filed without an audit."""
        return [a for a in self.audits if a.standing in ("outstanding", "prepared")]

    def ungraded(self) -> Counter[tuple[str, str]]:
        """The complete audits without a grade on the main scale, by (tool, why), so the
        graded and these add up to the completed."""
        main = self.main_scale
        found: Counter[tuple[str, str]] = Counter()
        for audit in self.completed:
            scale = audit.scale
            if scale is None:
                found[(audit.form.name, "the tool has no overall grade")] += 1
            elif not audit.grade:
                found[(audit.form.name, "no grade given")] += 1
            elif main is None or scale.id != main.id:
                found[(audit.form.name, f"graded on the {scale.label} scale")] += 1
        return found

    @property
    def main_scale(self) -> Scale | None:
        """The grade scale most audits use (the Hull tools share one)."""
        if not self.grades:
            return None
        sid = max(self.grades, key=lambda s: (sum(self.grades[s].values()), s))
        return self.scales[sid]


def concerns_line(f: PmuFigures) -> str:
    """The period's immediate concerns for a child's safety: a count, never what they were."""
    raised, waiting = f.concerns["raised"], f.concerns["open"]
    if not raised:
        return "Immediate concerns raised: 0."
    state = f"{waiting} without action recorded" if waiting else "all actioned"
    return f"Immediate concerns raised: {raised} ({state})."


def _load_audits(db: Store, period: Period) -> list[AuditFacts]:
    """Every audit of the period, case-file and activity audits alike; refuses, naming them,
    if any was made with a form version this database does not hold (a figure that quietly
    leaves audits out is wrong)."""
    return _read_period(db, period)[0]


def _read_period(db: Store, period: Period) -> tuple[list[AuditFacts], list[Any]]:
    """The period's audits, and the rows they were read from (the follow-ups reuse them)."""
    rows = db.graded_rows(period.months, facts=False)  # names are read only if listed
    forms = db.forms_of(rows, f"The figures for {period.label} ({period.span})")
    found = []
    for row in rows:
        found.append(
            AuditFacts(
                row.audit_id,
                forms[row.audit_id],
                row.case_number,
                row.team,
                row.auditor,
                row.month,
                row.due_date,
                row.state,
                "",
                row.auditor_grade or "",
                row.moderated_grade or "",
                row.moderated_by or "",
                received_on(row),
                row.return_id,
                row.activity or "",
                row.run_id,
                row.subject_kind or "case",
            )
        )
    return found, rows


def case_files(audits: list[AuditFacts]) -> list[AuditFacts]:
    """The monthly case-file audits among `audits`: the only ones case-file figures count."""
    return [a for a in audits if not a.activity]


def load_figures(
    db: Store,
    period: Period,
    as_of: dt.date | None = None,
    trend_periods: int = 4,
    min_base: int = 5,
) -> PmuFigures:
    """The period's figures. What counts answers or actions across every audit (domains,
    findings, the action totals, the trend) is counted by the database (GROUP BY), so a
    year of a region's audits never has its answers read into memory; the audits
    themselves are read (the pack lists each one)."""
    as_of = as_of or clock.today()
    every, rows = _read_period(db, period)
    if not every:
        raise NoAuditsError(period)
    audits = case_files(every)
    others = [a for a in every if a.activity]
    answers = db.answers_by_return(a.return_id for a in others if a.complete and a.return_id)
    figures = PmuFigures(period, as_of, audits, answers, None, min_base)
    figures.load_answers = db.answers_by_return
    figures.load_actions, figures.count_actions = db.action_dicts, db.action_total
    figures.load_facts = db.audit_facts
    figures.policy = active_policy(db)
    figures.activity_audits = others
    _compute(figures)
    complete = sorted(COMPLETE)
    _domains_and_findings(figures, _tallies(db, period, audits, complete))
    figures.action_totals = db.action_counts(period.months, complete, as_of)
    _follow_up(figures, db, rows)
    reopens = db.events_named([a.audit_id for a in every], ["reopened"])
    figures.reopened = sorted(
        ((audit_id, at) for audit_id, found in reopens.items() for at, _ in found),
        key=lambda r: (r[1], r[0]),
    )
    history = [period]
    for _ in range(trend_periods - 1):
        history.insert(0, history[0].previous())
    figures.trend = [_trend_point(db, p, figures.main_scale, min_base) for p in history]
    months = set(period.months)
    raised = [c for c in db.concerns() if c.month in months]
    figures.concerns = _concern_counts(audits, raised)
    figures.activities = _activities(db, figures, raised)
    return figures


#: form id -> key -> answer -> how many complete audits of that tool gave it
AnswerCounts = dict[str, dict[str, Counter[str]]]


def _tallies(
    db: Store, period: Period, audits: list[AuditFacts], complete: list[str]
) -> AnswerCounts:
    """The database's tallies of the answers the figures count (domain judgements and
    scaled questions) for the period's complete case-file audits."""
    keys: set[str] = set()
    for form in {id(a.form): a.form for a in audits if a.complete}.values():
        keys.update(s.judgement_key for s in form.domains())
        keys.update(q.key for q in form.questions() if q.scale is not None)
    found: AnswerCounts = {}
    for row in db.answer_counts(period.months, complete, keys):
        found.setdefault(row.form_id, {}).setdefault(row.key, Counter())[row.value] += row.n
    return found


def _concern_counts(audits: list[AuditFacts], raised: list[Concern]) -> dict[str, int]:
    """Concerns raised in these audits (of the period's `raised`), and those still open."""
    own = {a.audit_id for a in audits}
    mine = [c for c in raised if c.audit_id in own]
    return {"raised": len(mine), "open": sum(c.open for c in mine)}


def _compute(f: PmuFigures) -> None:
    teams: dict[str, list[AuditFacts]] = defaultdict(list)
    for audit in f.audits:
        teams[audit.team].append(audit)
    f.by_team = {team: tally(audits, f.as_of) for team, audits in sorted(teams.items())}
    f.totals = tally(f.audits, f.as_of)
    for audit in f.graded:
        scale = audit.scale
        assert scale is not None  # graded audits have a grade scale
        f.scales[scale.id] = scale
        f.grades.setdefault(scale.id, Counter())[audit.grade] += 1
        f.grades_by_tool.setdefault(audit.form.name, Counter())[audit.grade] += 1
        f.grades_by_team.setdefault(audit.team, Counter())[audit.grade] += 1
    _moderation(f)


def _domains_and_findings(f: PmuFigures, counted: AnswerCounts) -> None:
    """Each tool's domain judgements and question findings from the answers' tallies (an
    audit with no answer to a question counts as the answer "")."""
    by_form: dict[str, list[AuditFacts]] = defaultdict(list)
    for audit in f.completed:
        by_form[audit.form.id].append(audit)
    for audits in sorted(by_form.values(), key=lambda a: a[0].form.name):
        form = audits[0].form
        tallies = counted.get(form.id, {})
        domains = []
        for section in form.domains():
            item = form.item(section.judgement_key)
            if item is None or item.scale is None:
                continue
            scored = _domain_base(item)
            given = tallies.get(section.judgement_key, Counter())
            counts = Counter({v: n for v, n in given.items() if v in scored and n})
            if counts:
                domains.append((section.label, counts, scored))
        if domains:
            f.domains[form.name] = domains
        tool = ToolFindings(form, len(audits))
        if len(audits) >= f.min_base:
            tool.findings = [
                finding
                for q in form.questions()
                if (finding := _tallied(form, q, tallies.get(q.key, Counter()), len(audits)))
            ]
        f.findings.append(tool)


def _tallied(form: FormDefinition, item: Item, given: Counter[str], audits: int) -> Finding | None:
    """A question's finding from how many gave each answer, of `audits` audits."""
    outcomes: Counter[str] = Counter()
    unanswered = audits - sum(given.values())
    for value, count in [*given.items(), ("", unanswered)]:
        if count and (outcome := item.outcome(value)):
            outcomes[outcome] += count
    base = sum(outcomes.values())
    return Finding(form.name, item, {o: outcomes[o] for o in OUTCOMES}, base) if base else None


def _domain_base(item: Item) -> tuple[str, ...]:
    """The judgements a domain's counts are out of: N/A (a domain that does not apply, seed
    001 Appendix A para 16) counts neither way and is left out, as in findings; a scale that
    scores nothing counts every choice."""
    assert item.scale is not None  # a judged domain's item is a choice
    return tuple(c for c in item.scale.choices if item.outcome(c)) or item.scale.choices


def _finding(
    form: FormDefinition, item: Item, answers: list[dict[str, tuple[str, str]]]
) -> Finding | None:
    """A question's finding from each audit's answers (the activities' audits, few)."""
    outcomes = Counter(o for a in answers if (o := item.outcome(a.get(item.key, ("", ""))[0])))
    base = sum(outcomes.values())
    return Finding(form.name, item, {o: outcomes[o] for o in OUTCOMES}, base) if base else None


def _moderation(f: PmuFigures) -> None:
    moderated = [a for a in f.graded if a.moderated_grade and a.auditor_grade]
    up = down = 0
    for audit in moderated:
        scale = audit.scale
        before = scale.rank(audit.auditor_grade) if scale else None
        after = scale.rank(audit.moderated_grade) if scale else None
        if before is not None and after is not None:
            up += after < before
            down += after > before
    f.moderation = {
        "moderated": len(moderated),
        "graded": len(f.graded),
        "agreed": sum(a.moderated_grade == a.auditor_grade for a in moderated),
        "up": up,
        "down": down,
    }
    # changed on a scale without an order (neither up nor down), so the parts add up
    f.moderation["other"] = len(moderated) - f.moderation["agreed"] - up - down


def action_done(action: dict[str, object]) -> bool:
    return bool(action.get("sign_off") or action.get("sign_off_date"))


def _before(day: object, as_of: dt.date) -> bool:
    return isinstance(day, dt.date) and day < as_of


def _follow_up(f: PmuFigures, db: Store, rows: list[Any]) -> None:
    """The period's audits graded with a follow-up grade (the scale's `follow_up` answers,
    e.g. Inadequate) and their steps under the policy (followup.py): the review meeting, the
    re-audit and, for a case graded so a second time, the Head of Service meeting."""
    flagged = [a for a in f.graded if a.scale is not None and a.grade in a.scale.follow_up]
    if not flagged:
        return
    found = load_follow_ups(
        db,
        f.policy,
        [a.audit_id for a in flagged],
        {a.case_number for a in flagged},
        (f.period.months, rows),  # the period's own audits are read already
    ).follow_ups
    for audit in flagged:
        step = found.get(audit.audit_id) or _alone(f, audit)
        f.follow_up.append(
            {
                "audit_id": audit.audit_id,
                "case_number": audit.case_number,
                "team": audit.team,
                "tool": audit.form.name,
                "grade": audit.grade,
                "graded_on": step.graded_on,
                "review_by": step.review_by,
                "reaudit_by": step.reaudit_by,
                "review_held": step.review_held,
                "reaudit_id": step.reaudit_id,
                "reaudited_on": step.reaudited_on,
                "head_of_service": step.head_of_service,
                "hos_held": step.hos_held,
                "review": step.review(f.as_of),
                "reaudit": step.reaudit(f.as_of),
                "hos": step.hos(f.as_of),
            }
        )


def _alone(f: PmuFigures, audit: AuditFacts) -> FollowUp:
    """The follow-up of an audit the database gave no history for (none is expected: a
    complete audit has its return), from its own grade alone."""
    graded = Graded(
        audit.audit_id,
        audit.case_number,
        audit.month,
        audit.grade,
        audit.returned_on or f.as_of,
        True,
    )
    return follow_ups([graded], f.policy.reaudit)[audit.audit_id]


def _trend_point(
    db: Store, period: Period, scale: Scale | None, min_base: int
) -> dict[str, object]:
    """Shares of the main scale's bands among the period's graded case-file audits, from the
    database's counts; None when fewer than the minimum base were graded (a gap in the
    chart, never 0% nor a share of two)."""
    rows = db.grade_counts(period.months)
    forms = _forms_of_versions(db, period, {(r.form_id, r.form_version) for r in rows})
    graded: Counter[str] = Counter()
    for row in rows:
        form = forms[(row.form_id, row.form_version)]
        grade = (row.moderated_grade or row.auditor_grade) if row.state in COMPLETE else ""
        if (
            grade
            and scale is not None
            and form.grade_scale is not None
            and form.grade_scale.id == scale.id
        ):
            graded[grade] += row.n
    total = sum(graded.values())
    point: dict[str, object] = {
        "period": period.label,
        "audits": sum(row.n for row in rows),
        "graded": total,
    }
    for outcome in OUTCOMES:
        members = getattr(scale, outcome) if scale else ()
        point[outcome] = (
            round(100 * sum(n for g, n in graded.items() if g in members) / total, 1)
            if total and charted(total, min_base)
            else None
        )
    return point


def _forms_of_versions(
    db: Store, period: Period, versions: set[tuple[str, int]]
) -> dict[tuple[str, int], FormDefinition]:
    """Each (tool, version)'s definition; if the database holds one no longer, the refusal
    that names its audits (as for the period's own audits: a trend that quietly leaves
    audits out is wrong)."""
    found = {v: db.form_for(*v) for v in versions}
    if any(form is None for form in found.values()):
        _load_audits(db, period)  # raises UnknownVersionsError naming the audits
    return {v: form for v, form in found.items() if form is not None}


# --- the programme's other QA activities --------------------------------------------------

#: An activity's minimum base when the policy no longer names it (Activity's default).
ACTIVITY_MIN_BASE = 5
#: Kinds whose tool finds things about practice: their figures carry seed 004's prevalence
#: sentences (for staff subjects only from the activity's minimum base).
PREVALENCE_KINDS = ("thematic", "dip_sample", "event", "observation", "supervision")
NOT_RECORDED = "Not recorded"
_SHOWN = 120  # longest run name or theme a pack prints (an officer types them)


Counts = list[tuple[str, list[tuple[str, int]]]]  # label -> (answer, how many)


@dataclass
class Feedback:
    """Feedback from children and families (seed 001 App A 13) on one tool: how many records,
    who gave it and how, and each question's answers, as counts of the complete records."""

    form: FormDefinition
    records: int  # complete feedback records
    gave: int  # of them, those in which someone gave their views (a question answered)
    facts: Counts  # the choices that are not judgements: who gave it, how
    answers: Counts  # each question's answers


@dataclass
class ActivityFigures:
    """One activity's audits in the period: its runs, counts, completion and what was found.
    Staff subjects (supervision, observation) carry counts and aggregate judgements only."""

    id: str
    name: str
    kind: str
    staff: bool
    min_base: int
    runs: list[str]  # each run in words: its name, theme and due date
    audits: list[AuditFacts]
    subjects: int = 0  # different cases or members of staff (counted, never named)
    grades: Counter[str] = field(default_factory=Counter)
    scale: Scale | None = None
    findings: list[ToolFindings] = field(default_factory=list)  # case subjects
    feedback: list[Feedback] = field(default_factory=list)  # kind feedback, one per tool
    concerns: dict[str, int] = field(default_factory=lambda: {"raised": 0, "open": 0})
    counts: Tally = field(default_factory=Tally)  # where its audits stand, each once

    @property
    def completed(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.complete]

    @property
    def outstanding(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.outstanding]

    @property
    def exempted(self) -> list[AuditFacts]:
        return [a for a in self.audits if a.exempted]

    @property
    def due(self) -> int:
        """Audits due: allocated, less those exempted (agreed not to be done) or prepared
        and filed without an audit."""
        return self.counts.due


def prevalence(
    finding: Finding,
    outcome: str,
    min_base: int,
    noun: tuple[str, str] = ("case audited", "cases audited"),
) -> str:
    """Seed 004's sentence, "In 3 of the 10 cases audited there was ...", from the question's
    `finding:` phrase; with its proportion only when at least `min_base` cases answered."""
    count, base, item = finding.counts.get(outcome, 0), finding.base, finding.item
    cases = noun[0] if base == 1 else noun[1]
    phrase = item.finding[0 if outcome == FAVOURABLE else 1]
    if phrase:
        text = f"In {count} of the {base} {cases} {phrase}"
    else:
        answer = _answer_for(item, outcome)
        text = f"\u201c{item.label}\u201d: {answer} in {count} of the {base} {cases}"
    if base < min_base:
        return f"{text} (too few to give a proportion)."
    return f"{text} ({pct(count, base)})."


def _activities(db: Store, f: PmuFigures, raised: list[Concern]) -> list[ActivityFigures]:
    """One ActivityFigures per activity with audits in the period: the policy's order, then
    any it no longer names."""
    by_activity: dict[str, list[AuditFacts]] = defaultdict(list)
    for audit in f.activity_audits:
        by_activity[audit.activity].append(audit)
    if not by_activity:
        return []
    runs = {r.id: r for r in db.activity_runs(months=f.period.months)}
    ran = {a.run_id for a in f.activity_audits if a.run_id is not None}
    for run_id in sorted(ran - runs.keys()):
        runs[run_id] = db.require_run(run_id)  # a run allocated before the period
    order = [a.id for a in f.policy.activities]
    ids = sorted(by_activity, key=lambda i: (order.index(i) if i in order else len(order), i))
    return [_activity(f, i, by_activity[i], runs, raised) for i in ids]


def _activity(
    f: PmuFigures,
    activity_id: str,
    audits: list[AuditFacts],
    runs: dict[int, Any],
    raised: list[Concern],
) -> ActivityFigures:
    rule = f.policy.activity(activity_id)
    own = sorted({a.run_id for a in audits if a.run_id in runs}, key=lambda i: (runs[i].month, i))
    first = runs[own[0]] if own else None
    kind = rule.kind if rule else str(first.kind) if first else ""
    staff = (rule is not None and rule.staff) or any(a.subject_kind != "case" for a in audits)
    found = ActivityFigures(
        activity_id,
        rule.name if rule else activity_id.replace("_", " ").capitalize(),
        kind,
        staff,
        rule.min_base if rule else ACTIVITY_MIN_BASE,
        [_run_words(runs[i], sum(a.run_id == i for a in audits)) for i in own],
        audits,
        subjects=len({a.case_number for a in audits}),
        concerns=_concern_counts(audits, raised),
        counts=tally(audits, f.as_of),
    )
    graded = [a for a in found.completed if a.grade and a.scale is not None]
    found.scale = graded[0].scale if graded else None  # its tool's judgement scale
    found.grades = Counter(a.grade for a in graded if a.scale == found.scale)
    by_form: dict[str, list[AuditFacts]] = defaultdict(list)
    for audit in found.completed:
        by_form[audit.form.id].append(audit)
    for done in by_form.values():
        form = max((a.form for a in done), key=lambda d: d.version)  # the newest version's items
        answers = [f.answers.get(a.return_id or -1, {}) for a in done]
        if kind == "feedback" and not staff:
            found.feedback.append(_feedback(form, answers))
        elif kind in PREVALENCE_KINDS and (not staff or len(answers) >= found.min_base):
            # Themes from observations and supervision audits too (seed 004: "themes from
            # practice observations will be routinely included"), only from the minimum base:
            # a sentence about fewer members of staff could be read as one person's result.
            findings = [x for q in form.questions() if (x := _finding(form, q, answers))]
            found.findings.append(ToolFindings(form, len(answers), findings, _noun(kind)))
    return found


def _noun(kind: str) -> tuple[str, str]:
    """What a prevalence sentence counts for an activity of this kind."""
    return {
        "observation": ("practitioner observed", "practitioners observed"),
        "supervision": ("supervision file audited", "supervision files audited"),
    }.get(kind, ("case audited", "cases audited"))


def _run_words(run: Any, audits: int) -> str:
    """ "Thematic audit: Neglect, due 31/12/2026 (4 audits)" """
    name = printable(run.name, _SHOWN)
    theme = printable(run.theme, _SHOWN)
    if theme and theme not in name:
        name += f" (theme: {theme})"
    return f"{name}, due {show_date(run.due_date)} ({audits} audit{'s' if audits != 1 else ''})"


def _feedback(form: FormDefinition, answers: list[dict[str, tuple[str, str]]]) -> Feedback:
    """Counts from one tool's complete feedback records: every choice that is not a
    judgement (who gave it, how), each question's answers, and how many records answer a
    question other than N/A (someone gave their views)."""
    j = form.judgements
    judgements = {j.status, j.grade, j.moderated_grade, j.concern}
    facts = [
        (item.label, _answer_counts(item.scale.choices, item.key, answers))
        for _, item in form.items()
        if item.kind == "choice" and item.scale is not None and item.key not in judgements
    ]
    asked = [q for q in form.questions() if q.scale is not None]
    counted = [
        (q.label, _answer_counts(q.scale.choices, q.key, answers))
        for q in asked
        if q.scale is not None
    ]
    gave = sum(any(q.outcome(a.get(q.key, ("", ""))[0]) for q in asked) for a in answers)
    return Feedback(form, len(answers), gave, facts, counted)


def _answer_counts(
    choices: tuple[str, ...], key: str, answers: list[dict[str, tuple[str, str]]]
) -> list[tuple[str, int]]:
    """How many gave each answer, then how many gave none of them (left blank)."""
    counts = Counter(a.get(key, ("", ""))[0] for a in answers)
    found = [(choice, counts[choice]) for choice in choices]
    return [*found, (NOT_RECORDED, len(answers) - sum(n for _, n in found))]


__all__ = [
    "FAVOURABLE",
    "PARTIAL",
    "UNFAVOURABLE",
    "ActivityFigures",
    "AuditFacts",
    "Feedback",
    "Finding",
    "PackError",
    "PmuFigures",
    "ToolFindings",
    "action_done",
    "case_files",
    "concerns_line",
    "load_figures",
    "pct",
    "prevalence",
]
