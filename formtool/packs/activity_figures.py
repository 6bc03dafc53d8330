"""The figures of the QA activities' reports (a thematic or dip-sample run's group summary, the
quarterly supervision report, the observation summary), computed from rows, never rendered.

Only complete audits count (a Final return in, accepted into the cycle), as in the PMU pack.
Each question of the run's tool gives its prevalence, the seed-004 sentence ("in three out of
the ten cases audited there was x"), from the definition alone: the question's `finding:`
phrases, favourable and unfavourable answers as the question or its scale says, N/A and other
answers that count neither way left out of the base and said so. Below the activity's minimum
base a sentence gives counts only, never a percentage. `load_set` reads runs' audits, answers
and actions from the database; the rest is pure, so tests check the numbers without a document.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from formtool.definitions import FormDefinition, Item, Section
from formtool.definitions.scales import FAVOURABLE, OUTCOMES, PARTIAL, UNFAVOURABLE
from formtool.packs.figures import pct
from formtool.packs.standing import COMPLETE, InState
from formtool.programme.policy import Policy
from formtool.store import Store, received_on

Answers = Mapping[str, tuple[str, str]]  # key -> (value, comment), as the store keeps them
DEFAULT_MIN_BASE = 5  # an activity the policy no longer names
QUOTE_CHARS = 2000  # a quoted answer longer than this is cut (the report stays readable)


@dataclass(frozen=True)
class Noun:
    """What a report counts: "In 3 of the 10 cases audited", "too few cases"."""

    many: str
    short: str


CASES = Noun("cases audited", "cases")
AUDITS_OF_SUPERVISION = Noun("supervision audits", "audits")
OBSERVATIONS = Noun("observations", "observations")


def listed(names: Sequence[str], last: str = "or") -> str:
    return f" {last} ".join(filter(None, [", ".join(names[:-1]), *names[-1:]]))


# --- prevalence -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prevalence:
    """How one question was answered across complete audits (see the module docstring)."""

    section: str
    item: Item
    counts: dict[str, int]  # favourable / partial / unfavourable
    unscored: dict[str, int]  # answered but counted neither way (N/A, a neutral question)
    unanswered: int
    min_base: int
    noun: Noun = CASES

    @property
    def base(self) -> int:
        """The answers a proportion is of: N/A and neutral answers left out."""
        return sum(self.counts.values())

    @property
    def scored(self) -> bool:
        """The question has a favourable or unfavourable answer (not a neutral fact)."""
        scale = self.item.scale
        return self.item.favourable != "" and bool(
            scale and (scale.favourable or scale.unfavourable)
        )

    @property
    def proportions(self) -> bool:
        """At least the minimum base answered: a percentage may be given."""
        return self.base >= max(self.min_base, 1)

    def share(self, outcome: str) -> str:
        """The outcome's percentage in brackets; "" below the minimum base."""
        return f" ({pct(self.counts[outcome], self.base)})" if self.proportions else ""

    def answers(self, outcome: str) -> str:
        """The answers with this outcome, in words: "Yes", "No", "Yes or Partially"."""
        scale, item = self.item.scale, self.item
        assert scale is not None  # a counted question has a scale
        if item.favourable and outcome != PARTIAL:
            if outcome == FAVOURABLE:
                return item.favourable
            others = (*scale.favourable, *scale.unfavourable)
            return listed([c for c in others if c != item.favourable])
        return listed(list(getattr(scale, outcome))) or outcome

    def sentence(self) -> str:
        """The seed-004 sentences, with the base and what was left out of it."""
        if not self.scored:
            return self._neutral()
        if not self.base:
            text = f"\u201c{self.item.label}\u201d: none of the {self.noun.many} answered it."
        else:
            c = self.counts
            shown = [o for o in OUTCOMES if c[o] or (o == FAVOURABLE and not c[UNFAVOURABLE])]
            shown.sort(key=(FAVOURABLE, UNFAVOURABLE, PARTIAL).index)
            text = " ".join(self.says(o, lead=i == 0) for i, o in enumerate(shown))
        return " ".join([text, *self._notes()])

    def says(self, outcome: str, lead: bool = True) -> str:
        """One outcome's sentence: "In 3 of the 10 cases audited, <the question's finding
        phrase> (30%)."; after the first (`lead` False) "In 1 of the 10, ..."; the answers
        themselves where the question has no phrases."""
        count, share = self.counts[outcome], self.share(outcome)
        of = f"of the {self.base}" + (f" {self.noun.many}" if lead else "")
        phrased = all(self.item.finding)
        if phrased and outcome != PARTIAL:
            phrase = self.item.finding[0 if outcome == FAVOURABLE else 1]
            return f"In {count} {of}, {phrase}{share}."
        said = f"{self.answers(outcome)} in {count} {of}{share}."
        if phrased:
            return f"The answer was {said}"
        return f"\u201c{self.item.label}\u201d: {said}" if lead else said

    def _neutral(self) -> str:
        given = ", ".join(f"{value} in {count}" for value, count in self.unscored.items())
        answered = sum(self.unscored.values())
        text = f"\u201c{self.item.label}\u201d: " + (
            f"{given} (of {answered} answering; not a finding either way)."
            if given
            else f"none of the {self.noun.many} answered it."
        )
        return text + (f" Not answered in {self.unanswered}." if self.unanswered else "")

    def _notes(self) -> list[str]:
        notes = []
        if self.unscored:
            given = ", ".join(f"{value} in {count}" for value, count in self.unscored.items())
            notes.append(f"{given}: left out of the base.")
        if self.unanswered:
            notes.append(f"Not answered in {self.unanswered}.")
        if self.base and not self.proportions:
            notes.append(
                f"Too few {self.noun.short} to give a proportion (fewer than {self.min_base} "
                "answered)."
            )
        return notes


def _skipped(form: FormDefinition) -> set[str]:
    """Sections a report leaves out: the urgent concern (counted elsewhere, never described)
    and the return's completion block."""
    j = form.judgements
    wanted = {j.concern, j.status} - {""}
    return {s.id for s in form.sections if any(i.key in wanted for i in s.items)}


def counted_items(form: FormDefinition) -> list[tuple[Section, Item]]:
    """The questions and choices a report counts: all but the judgements shown on their own
    (grade, moderated grade) and the skipped sections."""
    j = form.judgements
    own = {j.grade, j.moderated_grade, j.concern, j.status}
    skipped = _skipped(form)
    return [
        (section, item)
        for section, item in form.items()
        if section.id not in skipped
        and item.kind in ("question", "choice")
        and item.scale is not None
        and item.key not in own
    ]


def prevalence(
    form: FormDefinition,
    answers_by_audit: Mapping[str, Answers],
    min_base: int,
    noun: Noun = CASES,
) -> list[Prevalence]:
    """Each counted question's prevalence across these complete audits' answers."""
    found = []
    for section, item in counted_items(form):
        counts = dict.fromkeys(OUTCOMES, 0)
        unscored: Counter[str] = Counter()
        unanswered = 0
        for answers in answers_by_audit.values():
            value = answers.get(item.key, ("", ""))[0].strip()
            outcome = item.outcome(value) if value else None
            if not value:
                unanswered += 1
            elif outcome:
                counts[outcome] += 1
            else:
                unscored[value] += 1
        found.append(
            Prevalence(section.title, item, counts, dict(unscored), unanswered, min_base, noun)
        )
    return found


# --- judgements, written answers, actions ------------------------------------------------------


@dataclass(frozen=True)
class Judgements:
    """The overall judgements (the grade that counts: moderated where moderated)."""

    label: str
    counts: dict[str, int]  # every choice of the grade's scale, best first
    min_base: int
    noun: Noun = CASES

    @property
    def base(self) -> int:
        return sum(self.counts.values())

    @property
    def proportions(self) -> bool:
        return self.base >= max(self.min_base, 1)

    def share(self, choice: str) -> str:
        return pct(self.counts[choice], self.base) if self.proportions else ""

    def sentence(self) -> str:
        if not self.base:
            return f"None of the {self.noun.many} has a judgement yet."
        given = listed([f"{n} {c}" for c, n in self.counts.items() if n], "and")
        text = f"Judgements of the {self.base} {self.noun.many}: {given}."
        if not self.proportions:
            text += f" Too few {self.noun.short} to give a proportion (fewer than {self.min_base})."
        return text


def judgements(
    form: FormDefinition, grades: Iterable[str], min_base: int, noun: Noun = CASES
) -> Judgements | None:
    """The count of each judgement among these grades; None for a tool without one."""
    item = form.item(form.judgements.grade)
    if item is None or item.scale is None:
        return None
    given = Counter(g for g in grades if g in item.scale.choices)
    return Judgements(item.label, {c: given[c] for c in item.scale.choices}, min_base, noun)


@dataclass(frozen=True)
class Written:
    """One text item's answers across the audits, each with whose it is."""

    section: str
    label: str
    quotes: tuple[tuple[str, str], ...]  # (case number or member of staff, the text)


def written_sections(form: FormDefinition) -> list[Section]:
    """Sections of text answers only (strengths, areas for development): what the report
    quotes. Sections that mix in a judgement (a rationale) are the auditor's own record."""
    skipped = _skipped(form)
    return [
        s
        for s in form.sections
        if s.id not in skipped and s.items and all(i.kind == "text" for i in s.items)
    ]


def written(
    form: FormDefinition, answers_by_audit: Mapping[str, Answers], who: Mapping[str, str]
) -> list[Written]:
    """The text answers of `written_sections`, in audit order, each cut to QUOTE_CHARS."""
    found = []
    for section in written_sections(form):
        for item in section.items:
            quotes = []
            for audit_id, answers in answers_by_audit.items():
                text = answers.get(item.key, ("", ""))[0].strip()
                if text:
                    cut = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "\u2026"
                    quotes.append((who.get(audit_id, audit_id), cut))
            found.append(Written(section.title, item.label, tuple(quotes)))
    return found


@dataclass(frozen=True)
class ActionRow:
    subject: str  # case number, or member of staff
    what: str
    responsible: str
    due: dt.date | None
    signed_off: bool


def action_rows(actions: Iterable[Mapping[str, Any]], who: Mapping[str, str]) -> list[ActionRow]:
    """Action rows of the complete returns (each with its `audit_id`), empty rows left out."""
    found = []
    for a in actions:
        what = " \u2014 ".join(p for p in (a.get("recommendation"), a.get("action")) if p)
        responsible = " / ".join(
            p for p in (a.get("responsible_role"), a.get("responsible_person")) if p
        )
        if what or responsible:
            audit_id = str(a.get("audit_id", ""))
            done = bool(a.get("sign_off") or a.get("sign_off_date"))
            due = a.get("due_date")
            due = due if isinstance(due, dt.date) else None
            found.append(ActionRow(who.get(audit_id, audit_id), what, responsible, due, done))
    return found


# --- coverage of practitioners --------------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    staff_id: str
    name: str
    team: str = ""
    role: str = ""


@dataclass(frozen=True)
class Cover:
    staff: Staff
    observations: int  # complete observations in the window
    last: dt.date | None  # the latest of them (None: none, or no date on them)


@dataclass
class Coverage:
    """Practitioners against "observed at least `times` a year" in the 12 months to the end."""

    times: int
    covered: list[Cover] = field(default_factory=list)
    missing: list[Cover] = field(default_factory=list)

    @property
    def practitioners(self) -> int:
        return len(self.covered) + len(self.missing)


def coverage(
    practitioners: Iterable[Staff],
    observed: Iterable[tuple[str, dt.date | None]],
    times: int = 1,
) -> Coverage:
    """Who was observed at least `times` (complete observations: staff id, date) and who was
    not; staff ids match whatever their case or spacing."""
    seen: dict[str, list[dt.date | None]] = {}
    for staff_id, day in observed:
        seen.setdefault(staff_id.strip().casefold(), []).append(day)
    result = Coverage(max(times, 1))
    unique = {p.staff_id.strip().casefold(): p for p in practitioners}
    for key, person in sorted(unique.items(), key=lambda i: (i[1].team, i[1].name, i[0])):
        days = seen.get(key, [])
        dated = [d for d in days if d is not None]
        cover = Cover(person, len(days), max(dated) if dated else None)
        (result.covered if len(days) >= result.times else result.missing).append(cover)
    return result


# --- from the database -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunAudit(InState):
    """One audit of an activity run, with what the reports show of it."""

    audit_id: str
    run_id: int
    month: str
    subject: str  # the case number, or the member of staff's id
    name: str  # the member of staff's name ("" for a case)
    team: str
    auditor: str
    state: str
    due_date: dt.date
    grade: str  # the grade that counts (moderated where moderated); "" unless complete
    form: FormDefinition
    return_id: int | None
    returned_on: dt.date | None
    facts: dict[str, str]

    @property
    def label(self) -> str:
        """How the report names it: the case number, or "Name (S104)"."""
        return f"{self.name} ({self.subject})" if self.name else self.subject


def observed_key(form: FormDefinition) -> str:
    """The date the observation took place: the tool's first date item outside its completion
    block ("" if it has none; the date completed stands in)."""
    skipped = _skipped(form)
    return next(
        (i.key for s, i in form.items() if s.id not in skipped and i.kind == "date"),
        form.judgements.completed_on,
    )


def answered_date(answers: Answers, key: str) -> dt.date | None:
    value = answers.get(key, ("", ""))[0].strip() if key else ""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class ActivitySet:
    """Runs' audits, with the answers and action rows of the complete ones."""

    runs: list[Any]  # activity_runs rows (with their counts), oldest first
    audits: list[RunAudit]
    answers: dict[str, Answers]  # audit id -> answers, complete audits only
    actions: list[dict[str, Any]]
    min_base: int
    noun: Noun = CASES

    @property
    def complete(self) -> list[RunAudit]:
        return [a for a in self.audits if a.complete]

    def forms(self) -> list[FormDefinition]:
        """The tools its audits used, in the order first met (one, as a rule)."""
        return list(dict.fromkeys(a.form for a in self.audits))

    def by_form(self, form: FormDefinition) -> dict[str, Answers]:
        return {a.audit_id: self.answers[a.audit_id] for a in self.complete if a.form == form}

    def who(self) -> dict[str, str]:
        return {a.audit_id: a.label for a in self.audits}

    def prevalence(self, form: FormDefinition) -> list[Prevalence]:
        return prevalence(form, self.by_form(form), self.min_base, self.noun)

    def judgements(self, form: FormDefinition) -> Judgements | None:
        grades = (a.grade for a in self.complete if a.form == form)
        return judgements(form, grades, self.min_base, self.noun)

    def written(self, form: FormDefinition) -> list[Written]:
        return written(form, self.by_form(form), self.who())

    def action_rows(self) -> list[ActionRow]:
        return action_rows(self.actions, self.who())

    def observed_on(self, audit: RunAudit) -> dt.date | None:
        """The observation's date as the record gives it, else when it was completed or
        returned."""
        answers = self.answers.get(audit.audit_id, {})
        j = audit.form.judgements
        return (
            answered_date(answers, observed_key(audit.form))
            or answered_date(answers, j.completed_on)
            or audit.returned_on
        )


def min_base(policy: Policy, activity_ids: Iterable[str]) -> int:
    """The activities' minimum base (the largest, when a report spans several)."""
    found = [a.min_base for i in set(activity_ids) if (a := policy.activity(i)) is not None]
    return max(found, default=DEFAULT_MIN_BASE)


def _run_audit(row: Any, form: FormDefinition) -> RunAudit:
    facts = json.loads(row.facts)
    complete = row.state in COMPLETE
    return RunAudit(
        row.audit_id,
        int(row.run_id),
        row.month,
        row.case_number,
        facts.get("staff_name", "") if row.subject_kind != "case" else "",
        row.team,
        row.auditor,
        row.state,
        row.due_date,
        (row.moderated_grade or row.auditor_grade or "") if complete else "",
        form,
        row.return_id,
        received_on(row),
        facts,
    )


def load_set(db: Store, runs: Sequence[Any], min_base: int, noun: Noun, what: str) -> ActivitySet:
    """The runs' audits from the database (refusing, naming them, any made with a form version
    the database does not hold: `what` says which report), with the complete ones' answers."""
    rows = [row for run in runs for row in db.audit_rows(run_id=run.id)]
    forms = db.forms_of(rows, what)
    audits = [_run_audit(row, forms[row.audit_id]) for row in rows]
    ids = {a.return_id: a.audit_id for a in audits if a.complete and a.return_id}
    stored = db.answers_by_return(ids)
    answers = {audit_id: stored.get(rid, {}) for rid, audit_id in ids.items()}
    return ActivitySet(list(runs), audits, answers, db.action_dicts(ids), min_base, noun)
