"""The QA activities a programme names besides its monthly case-file samples, as data.

Every framework in the seeds names more than the monthly audit: thematic and deep-dive audits,
dip samples, supervision audits, observations of practice, feedback from children and families,
and audits an event triggers (seed 001 4.11-4.31 and Appendix A para 13; seed 002 5.3, 5.10,
6.14-6.26; seed 004 "Reporting timetable"). An `Activity` says which tool, who does it, whose
work or which cases it looks at, how they are chosen, when it runs and when it is due. The
policy lists them under `activities:`; `formtool allocate` draws the monthly ones and `formtool
activity start` begins the ones an officer starts (a theme). Each run is an *instance* in the
database (theme, dates, owner) and its audits go through the same pipeline as case-file audits.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # policy.py builds activities: a runtime import would be circular
    from formtool.programme.policy import DeadlineRule

#: What an activity is: its report and its words follow from the kind.
KINDS = ("thematic", "dip_sample", "supervision", "observation", "feedback", "event")
#: Whose work an activity looks at: a child's (or carer's) case, a supervisor's supervision of
#: their team, or a practitioner's practice. Staff subjects come from the staff file.
SUBJECTS = ("case", "supervisor", "practitioner")
#: How subjects are chosen:
#: - random: `size` subjects in all, or `per_auditor` per auditor, drawn at random;
#: - chosen: the officer names the cases when starting an instance (`--cases FILE`);
#: - filtered: `size` drawn at random from the population rows an instance's filter keeps;
#: - rotation: staff not done by this activity for longest first (never done first), so every
#:   practitioner is covered across the year (`per_auditor` per auditor each run);
#: - every: every staff subject of the kind, each run;
#: - audited: the month's case-file audits (`share` of them), the same auditor (feedback);
#: - event: population rows whose `event` date column falls in the month before (after
#:   `after_months` months).
CHOOSING = ("random", "chosen", "filtered", "rotation", "every", "audited", "event")
#: Roles that see a staff subject's individual results unless the activity narrows them.
#: (An admin manages accounts and sees no case files: the web workspace's roles.)
STAFF_RESULT_ROLES = ("officer", "moderator")
#: How staff subjects may be chosen (rotation and every go through the staff file).
STAFF_CHOOSING = ("random", "rotation", "every")
#: Chosen by an officer starting an instance (the cases, or the filter), never monthly.
ON_DEMAND_CHOOSING = ("chosen", "filtered")
#: The ways of choosing that draw a number of subjects: `size` or `per_auditor`.
COUNTED_CHOOSING = ("random", "filtered", "rotation")


@dataclass(frozen=True)
class Activity:
    """One kind of audit work in a programme (see the module docstring)."""

    id: str  # lower-case key: `formtool activity start thematic`, the policy's own name
    code: str  # 2-5 capitals: the first part of its audit ids (TH3-C1001-202612)
    name: str  # what lists and reports call it: "Thematic audit"
    kind: str
    form: str
    subject: str = "case"
    choose: str = "random"
    categories: tuple[str, ...] = ()  # population categories case subjects come from
    size: int = 0  # subjects per instance (random / filtered); chosen: as many as named
    per_auditor: int = 0  # subjects per auditor per run (dip samples, observations)
    cases: int = 0  # cases drawn for each staff subject's tool (supervision: 6)
    share: float = 1.0  # audited: the share of the month's audited cases
    months: frozenset[int] = frozenset()  # when allocate runs it; empty: every month
    on_demand: bool = False  # begun by an officer (`formtool activity start`), not monthly
    auditors: tuple[str, ...] = ()  # auditor groups who do it; empty: every auditor
    team: str = "any"  # whose subjects an auditor takes: other / own / peer / any
    deadline: DeadlineRule | None = None  # None: the programme's completion deadline
    counts_toward_quota: bool = False  # default: only case-file audits count
    review_months: int | None = None  # the same subjects reviewed N months on (4.13)
    results_for: tuple[str, ...] = ()  # roles seeing staff results; empty: STAFF_RESULT_ROLES
    min_base: int = 5  # fewest subjects a report gives a proportion of
    event: str = ""  # choose: event: the population's date column
    after_months: int = 0  # choose: event: months after the event date
    times_a_year: int = 0  # staff subjects: each one at least this often in 12 months (0: no aim)
    deadline_source: str = ""  # the paragraph `deadline` comes from
    source: str = ""

    @property
    def staff(self) -> bool:
        """Its subjects are members of staff: their results are staff data."""
        return self.subject != "case"

    def runs_in(self, month: int) -> bool:
        """`formtool allocate` draws it in this calendar month."""
        return not self.on_demand and (not self.months or month in self.months)

    def result_roles(self) -> tuple[str, ...]:
        """Roles that may see one subject's results (staff subjects); case subjects: all."""
        if not self.staff:
            return ()
        return self.results_for or STAFF_RESULT_ROLES


# --- the rules a schema cannot say -------------------------------------------------------

#: (key path within the activity, problem, fix): one rule an activity's data breaks.
Problem = tuple[tuple[Any, ...], str, str]
#: Whom each way of choosing that draws no number takes (a size would say nothing).
_TAKES = {
    "chosen": "the cases the officer names",
    "every": "every member of staff of its subject",
    "audited": "a share of the month's audited cases (share:)",
    "event": "every case whose event falls due",
}


def rule_problems(data: Mapping[str, Any]) -> list[Problem]:
    """(key path within the activity, problem, fix) for each rule about one activity's own
    fields that the schema cannot say; `data` is the activity as the file gives it (schema
    checked). Forms, groups, months and the deadline are the policy checker's."""
    found: list[Problem] = []
    kind, choose = data["kind"], data.get("choose", "random")
    subject = data.get("subject", "case")
    found += _choosing(data, kind, subject, choose)
    found += _subject(data, kind, subject)
    found += _counts(data, choose)
    found += _results_for(data, subject)
    return found


def _choosing(data: Mapping[str, Any], kind: str, subject: str, choose: str) -> list[Problem]:
    found: list[Problem] = []
    if subject != "case" and data.get("on_demand") and choose in STAFF_CHOOSING:
        found.append(
            (
                ("on_demand",),
                f"an officer starts a run of cases (a theme), but the subject is a {subject}",
                "Remove on_demand: `formtool allocate --staff FILE` draws it in its months.",
            )
        )
    if subject != "case" and choose not in STAFF_CHOOSING:
        found.append(
            (
                ("choose",),
                f"choose {choose} picks cases, but the subject is a {subject}",
                "Use choose: random, rotation or every for a member of staff.",
            )
        )
    if subject == "case" and choose in ("rotation", "every"):
        found.append(
            (
                ("choose",),
                f"choose {choose} goes through the staff file, but the subject is a case",
                "Give subject: supervisor or practitioner, or choose: random.",
            )
        )
    if choose in ON_DEMAND_CHOOSING and not data.get("on_demand"):
        found.append(
            (
                ("choose",),
                f"choose {choose} needs an officer to name the "
                + ("cases" if choose == "chosen" else "filter")
                + " when starting it",
                "Add on_demand: true (formtool activity start).",
            )
        )
    if data.get("on_demand") and data.get("months"):
        found.append(
            (
                ("months",),
                "an on-demand activity runs when an officer starts it, not in set months",
                "Remove months:, or on_demand:.",
            )
        )
    if choose == "event" and not data.get("event"):
        fix = "Add event: with the population's date column, e.g. panel_on."
        found.append((("choose",), "choose event names no event date column", fix))
    if (choose == "event") != (kind == "event"):
        found.append(
            (
                ("kind",) if choose == "event" else ("choose",),
                "an event activity takes the cases whose event falls due: kind event goes "
                "with choose event",
                "Give both kind: event and choose: event, or neither.",
            )
        )
    for key in ("event", "after_months"):
        if data.get(key) and choose != "event":
            fix = "Remove it, or use choose: event."
            found.append(((key,), f"{key} is only for choose: event", fix))
    if choose == "audited" and kind != "feedback":
        found.append(
            (
                ("choose",),
                "choose audited follows the month's audited cases: it is for feedback",
                "Use kind: feedback, or another choose:.",
            )
        )
    return found


def _subject(data: Mapping[str, Any], kind: str, subject: str) -> list[Problem]:
    found: list[Problem] = []
    if kind == "supervision" and subject == "case":
        found.append(
            (
                ("subject",),
                "a supervision audit looks at a member of staff's supervision",
                "Use subject: supervisor (their supervision of their team) or practitioner "
                "(their supervision file).",
            )
        )
    elif kind == "observation" and subject != "practitioner":
        found.append(
            (
                ("subject",),
                "an observation watches a practitioner's practice",
                "Use subject: practitioner.",
            )
        )
    elif kind not in ("supervision", "observation") and subject != "case":
        found.append(
            (
                ("subject",),
                f"a {kind} activity looks at cases, not at a {subject}",
                "Use subject: case, or kind: supervision or observation.",
            )
        )
    if data.get("cases") and not (kind == "supervision" and subject != "case"):
        found.append(
            (
                ("cases",),
                "cases are drawn for a supervision audit of a member of staff",
                "Remove cases:, or use kind: supervision with subject: supervisor or practitioner.",
            )
        )
    if data.get("times_a_year") and subject == "case":
        found.append(
            (
                ("times_a_year",),
                "times_a_year is how often each member of staff is covered",
                "Remove it: this activity's subjects are cases.",
            )
        )
    return found


def _counts(data: Mapping[str, Any], choose: str) -> list[Problem]:
    found: list[Problem] = []
    counts = [k for k in ("size", "per_auditor") if k in data]
    if choose in COUNTED_CHOOSING and len(counts) != 1:
        found.append(
            (
                (counts[1],) if counts else ("choose",),
                "gives size and per_auditor" if counts else f"choose {choose} says no number",
                "Give exactly one of size: (subjects in all) or per_auditor: (each auditor's).",
            )
        )
    elif choose not in COUNTED_CHOOSING and counts:
        found.append(
            (
                (counts[0],),
                f"choose {choose} takes {_TAKES[choose]}: a number says nothing",
                f"Remove {counts[0]}:, or use choose: random.",
            )
        )
    if "share" in data:
        share = data["share"]
        if choose != "audited":
            fix = "Remove share:, or use choose: audited."
            found.append((("share",), "share is only for choose: audited", fix))
        elif not 0 < share <= 1:
            found.append(
                (
                    ("share",),
                    f"share {share} is not a share of the audited cases",
                    "Write a share above 0 and at most 1, e.g. 0.5 for half.",
                )
            )
    return found


def _results_for(data: Mapping[str, Any], subject: str) -> list[Problem]:
    found: list[Problem] = []
    roles = data.get("results_for", [])
    if roles and subject == "case":
        found.append(
            (
                ("results_for",),
                "results_for narrows who sees a member of staff's results, but the subject "
                "is a case",
                "Remove it.",
            )
        )
    allowed = ", ".join(STAFF_RESULT_ROLES)
    for index, role in enumerate(roles):
        if role == "viewer":
            found.append(
                (
                    ("results_for", index),
                    "a viewer never sees a named member of staff's results, only counts",
                    f"Remove viewer; name some of {allowed}.",
                )
            )
        elif role not in STAFF_RESULT_ROLES:
            found.append(
                (
                    ("results_for", index),
                    f"'{role}' is not a role that may see staff results",
                    f"Use some of {allowed}.",
                )
            )
    for index, role in enumerate(roles):
        if role in roles[:index]:
            found.append((("results_for", index), f"'{role}' is named twice", "Remove one."))
    return found


# --- in words -----------------------------------------------------------------------------

_KIND_WORDS = {
    "thematic": "a thematic audit",
    "dip_sample": "a dip sample",
    "supervision": "a supervision audit",
    "observation": "an observation of practice",
    "feedback": "feedback from children and families",
    "event": "an audit an event triggers",
}
_TEAM_WORDS = {
    "other": "outside their own team",
    "own": "in their own team",
    "peer": "in their peer team",
    "any": "in any team",
}
_TIMES = {1: "once", 2: "twice"}


def activity_words(activity: Activity) -> list[str]:
    """The activity's rules in plain English, one sentence a line, as `formtool programme
    show` prints them under its name: what and which tool, who, subjects and how they are
    chosen, when, when due, the quota, who sees results, and the source."""
    a = activity
    lines = [
        f"What: {_KIND_WORDS[a.kind]}, with the {a.form} tool; its audit ids begin {a.code}.",
        _who(a),
        _subjects(a),
        _when(a),
        _due(a),
        ("Counts" if a.counts_toward_quota else "Does not count") + " toward an auditor's quota.",
        _results(a),
        f"Reports give a proportion when at least {a.min_base} subjects answer; below that, "
        "counts only.",
        f"Source: {a.source}.",
    ]
    return [line for line in lines if line]


def _who(a: Activity) -> str:
    if a.choose == "audited":
        return "Done by the auditor of each audited case."
    groups = _listed(a.auditors, "or")
    who = groups or "any auditor"
    team = "" if a.team == "any" else f", {_TEAM_WORDS[a.team]}"
    return f"Done by {who}{team}."


def _listed(names: tuple[str, ...] | list[str], last: str = "and") -> str:
    """a, b and c"""
    return f" {last} ".join(filter(None, [", ".join(names[:-1]), *names[-1:]]))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _subjects(a: Activity) -> str:
    noun = a.subject if a.staff else "case"
    count = _plural(a.size, noun) if a.size else f"{_plural(a.per_auditor, noun)} per auditor"
    among = f" from {', '.join(a.categories)}" if a.categories else ""
    which = f" ({', '.join(a.categories)})" if a.categories else ""
    if a.choose == "random":
        text = f"{count}, drawn at random{among}"
    elif a.choose == "filtered":
        text = f"{count}, drawn at random from the cases{among} the officer's filter keeps"
    elif a.choose == "rotation":
        text = f"{count}, in rotation: those not done for longest (or never) first"
    elif a.choose == "every":
        text = f"Every {a.subject}"
    elif a.choose == "chosen":
        text = f"The cases{which} the officer names when starting it"
    elif a.choose == "audited":
        share = "every" if a.share == 1 else f"{a.share:.0%} of the"
        text = f"Feedback on {share} audited case{'s' if a.share != 1 else ''}{which}"
    else:  # event
        text = f"Every case{which} whose {a.event} date fell in the month before"
        if a.after_months:
            back = a.after_months + 1
            text = f"Every case{which} whose {a.event} date fell in the month {back} months "
            text += f"before, audited {a.after_months} months on"
    if a.cases:
        text += f", each with {a.cases} of their cases drawn at random"
    if a.times_a_year:
        times = _TIMES.get(a.times_a_year, f"{a.times_a_year} times")
        text += f"; each {a.subject} at least {times} a year"
    return text[0].upper() + text[1:] + "."


def _when(a: Activity) -> str:
    if a.on_demand:
        when = f"When an officer starts it (formtool activity start {a.id})"
    elif a.months:
        when = "In " + _listed([calendar.month_name[m] for m in sorted(a.months)])
    else:
        when = "Every month"
    if a.review_months:
        when += f"; its cases are reviewed {a.review_months} months on"
    return when + "."


def _due(a: Activity) -> str:
    if a.deadline is None:
        return "Due when the programme's case file audits are due."
    return f"Due {a.deadline.describe()}" + (
        f"; source: {a.deadline_source}." if a.deadline_source else "."
    )


def _results(a: Activity) -> str:
    if not a.staff:
        return "Results: as for case file audits."
    roles = _listed([f"{role}s" for role in a.result_roles()])
    return f"Staff data: only {roles} see a named {a.subject}'s results; viewers see counts only."
