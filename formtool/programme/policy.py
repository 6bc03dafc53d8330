"""A council's audit programme as data: who audits, what is sampled, the deadlines, moderation,
the words reports use and who hears of an urgent concern.

A policy is a YAML file (templates/programmes/*.yaml ship `hull`, the default, `rochdale`,
`windsor-maidenhead` and `hampshire`; a team keeps its own in `programmes/` beside its forms).
`load_policy` checks it against programme_schema.json with file, line and key in every
message, and returns a frozen `Policy`. The database keeps the active policy as a versioned
snapshot (`Policy.snapshot()` / `from_snapshot`), set by `formtool programme use`, and every
allocation records the name and version it ran under. Nothing in Python names a council's rule:
the constants that were Hull's live in `hull.yaml`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from formtool.errors import FormtoolError
from formtool.programme import deadlines as days

DEFAULT_POLICY = "hull"
YEAR_KINDS = ("financial", "calendar")
#: Which team an auditor may audit: never their own (`other`), only their own (`own`), the
#: peer team the auditors file names (`peer`, else any other team), or any team (`any`).
TEAM_RULES = ("other", "own", "peer", "any")
ADJUSTMENTS = ("none", "nearest", "before", "after")
#: Named days of a month a deadline may fall on, besides a day number.
NAMED_DAYS = ("last", "last_working", "first_working")
#: The events a deadline may count working days from.
AFTER_EVENTS = ("distribution", "completion", "amendment requested", "return", "graded")
#: The steps formtool itself tracks; a policy may name more, which are printed only.
TRACKED_STEPS = ("distribution", "completion", "amendment", "oversight", "moderation")


class PolicyError(FormtoolError):
    """A programme policy that cannot be used; the message names the file, line and key."""


@dataclass(frozen=True)
class DeadlineRule:
    """A day of a month (`month` months after the audit month): a day number or a named day,
    moved to a working day by `adjust`; or `working_days` working days after an event."""

    day: int | str | None = None
    month: int = 0
    adjust: str = "none"
    working_days: int | None = None
    after: str = ""

    def due(self, year: int, month: int, after: dt.date | None = None) -> dt.date:
        """The deadline for the audit month (year, month); `after` is the day of the event
        a working-days rule counts from (required for those)."""
        if self.working_days is not None:
            if after is None:
                raise PolicyError(f"This deadline counts from '{self.after}': give its date.")
            return days.add_working_days(after, self.working_days)
        y, m = year, month
        for _ in range(self.month):
            y, m = days.next_month(y, m)
        if self.day == "last":
            day = days.last_calendar_day(y, m)
        elif self.day == "last_working":
            day = days.on_or_before(days.last_calendar_day(y, m))
        elif self.day == "first_working":
            day = days.first_working_day(y, m)
        else:
            assert isinstance(self.day, int)
            day = dt.date(y, m, min(self.day, days.last_calendar_day(y, m).day))
        return _adjusted(day, self.adjust)

    def describe(self) -> str:
        """The rule in words, as a calendar or a report prints it."""
        if self.working_days is not None:
            return f"{self.working_days} working days after {self.after}"
        which = {0: "the month", 1: "the next month"}.get(self.month, f"month +{self.month}")
        named = {
            "last": "the last calendar day",
            "last_working": "the last working day",
            "first_working": "the first working day",
        }
        day = named.get(str(self.day)) or f"the {_ordinal(int(self.day or 1))}"
        tail = {
            "none": "",
            "nearest": " or the nearest working day",
            "before": " (the working day before, if not a working day)",
            "after": " (the next working day, if not a working day)",
        }[self.adjust]
        return f"{day} of {which}{tail}"


def _adjusted(day: dt.date, adjust: str) -> dt.date:
    if adjust == "nearest":
        return days.nearest_working_day(day)
    if adjust == "before":
        return days.on_or_before(day)
    if adjust == "after":
        return day if days.is_working_day(day) else days.add_working_days(day, 1)
    return day


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class Deadline:
    """One step's deadline: `step` (completion, amendment, moderation, ...), the words a
    calendar prints (`label`), the rule and the seed paragraph it comes from."""

    step: str
    label: str
    rule: DeadlineRule
    source: str = ""


@dataclass(frozen=True)
class AuditorGroup:
    """Auditors the auditors file puts in one `group` (e.g. team managers), with their own
    quotas and months off; None or empty: the programme's."""

    name: str
    per_month: int | None = None
    per_year: int | None = None
    months_off: frozenset[int] | None = None
    source: str = ""


@dataclass(frozen=True)
class AuditorRules:
    """Who audits and how much: quotas per auditor (None: no cap), the calendar months
    nobody audits, the largest share of auditors on break in a month (None: no limit),
    the months an auditor rests after an audit, and the year the yearly quota counts in."""

    year: str = "financial"
    per_year: int | None = None
    per_month: int | None = None
    months_off: frozenset[int] = frozenset()
    break_limit: float | None = None
    spacing_months: int = 0
    groups: tuple[AuditorGroup, ...] = ()
    source: str = ""

    def group(self, name: str) -> AuditorGroup | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass(frozen=True)
class SampleRule:
    """One sample a month: `size` cases in all, or `per_auditor` per auditor of `auditors`
    (groups; empty: every auditor), or `per_worker` per worker the population names. It runs
    in `months` (calendar month numbers; empty: every month); `team` says whose cases an
    auditor may take (one rule, or one per calendar month). A `chosen` slot is named by the
    auditor (allocate --chosen), not drawn."""

    name: str
    form: str
    categories: tuple[str, ...]
    size: int = 0
    per_auditor: int = 0
    per_worker: int = 0
    months: frozenset[int] = frozenset()
    at_least: dict[str, int] = field(default_factory=dict)
    auditors: tuple[str, ...] = ()
    team: str | dict[int, str] = "other"
    chosen: bool = False
    source: str = ""

    def runs_in(self, month: int) -> bool:
        return not self.months or month in self.months

    def team_rule(self, month: int) -> str:
        return self.team if isinstance(self.team, str) else self.team.get(month, "other")


@dataclass(frozen=True)
class Reaudit:
    """Cases graded with a follow-up grade are audited again within `within_months`, with a
    review meeting at `review_weeks` (seed 001, Appendix A para 25)."""

    within_months: int = 2
    review_weeks: int = 4
    source: str = ""


@dataclass(frozen=True)
class OnClosure:
    """A case the population shows closed (its `closed_on` column) in the month before is
    audited again with `form`, by an auditor of `auditors` under `team`."""

    form: str
    team: str = "own"
    auditors: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class ModerationRules:
    """The share of complete audits moderated, who moderates, and the moderator whose
    decision on a challenged grade stands (a user with the moderator role)."""

    rate: float = 0.10
    by: str = "a moderator"
    senior_moderator: str = ""
    source: str = ""


@dataclass(frozen=True)
class Concerns:
    """Who is told at once of an immediate concern for a child's safety or welfare: contacts
    per team, and the fallback for teams the policy does not list."""

    fallback: tuple[str, ...]
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    def contacts(self, team: str) -> tuple[str, ...]:
        return self.teams.get(team) or self.fallback


@dataclass(frozen=True)
class Policy:
    """One council's audit programme (see the module docstring)."""

    name: str
    title: str
    source: str
    auditors: AuditorRules
    samples: tuple[SampleRule, ...]
    deadlines: dict[str, Deadline]
    concerns: Concerns
    exclusion_months: int = 12
    reaudit: Reaudit | None = None
    on_closure: OnClosure | None = None
    form_deadlines: dict[str, dict[str, Deadline]] = field(default_factory=dict)
    moderation: ModerationRules = ModerationRules()
    words: dict[str, str] = field(default_factory=dict)
    version: int = 0  # the database's version of this policy; 0: not stored yet

    def deadline(self, step: str, form_id: str = "") -> Deadline | None:
        """The step's deadline for a form: the form's own, else the programme's."""
        return self.form_deadlines.get(form_id, {}).get(step) or self.deadlines.get(step)

    def due(
        self, step: str, form_id: str, year: int, month: int, after: dt.date | None = None
    ) -> dt.date | None:
        """When the step falls due for an audit of `form_id` in the month; None if the
        policy has no such step."""
        deadline = self.deadline(step, form_id)
        return deadline.rule.due(year, month, after) if deadline else None

    def word(self, key: str, default: str = "") -> str:
        return self.words.get(key, default)
