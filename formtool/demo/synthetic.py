"""Synthetic data for the demo, the tests and the benchmarks: cases, auditors and completed
returns. Every name is obviously made up ("Example", "Sample"; staff named after their role
and marked "(synthetic)"), so nothing here can be mistaken for a child's record.

Answers are drawn from what each form's definition says its answers mean (favourable,
partial, unfavourable), so a made-up "strong" case gets favourable answers, its domains are
judged from them and its grade is a favourable one, whatever the tool.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable

from formtool.definitions import FormDefinition, Item, all_forms
from formtool.definitions.scales import (
    FAVOURABLE,
    PARTIAL,
    UNFAVOURABLE,
    FieldKind,
    Scale,
)
from formtool.demo.fill import concern_answers
from formtool.periods import show_date
from formtool.read.cases import Case

GIVEN = (
    "Alex",
    "Sam",
    "Jordan",
    "Casey",
    "Riley",
    "Morgan",
    "Jamie",
    "Robin",
    "Charlie",
    "Frankie",
    "Billie",
    "Drew",
    "Kit",
    "Rowan",
    "Sky",
)
FAMILY = (
    "Example",
    "Sample",
    "Specimen",
    "Testcase",
    "Placeholder",
    "Fictional",
    "Madeup",
    "Dummy",
    "Mockton",
    "Notreal",
)
TEAMS = (
    "Team North (synthetic)",
    "Team South (synthetic)",
    "Team East (synthetic)",
    "Team West (synthetic)",
)
ETHNICITY = ("White British", "Mixed", "Asian British", "Black British", "Not recorded")
GENDER = ("Female", "Male", "Not recorded")
AUDIT_TYPES = ("Random sample", "Manager's choice", "Thematic", "Re-audit")
#: case quality -> weights of favourable / partial / unfavourable / not applicable answers
QUALITY = {"strong": (70, 20, 3, 7), "mixed": (40, 35, 18, 7), "weak": (15, 30, 48, 7)}
EVIDENCE = {
    FAVOURABLE: (
        "Seen alone at school on {d}; views recorded in the visit note.",
        "Recorded in the assessment dated {d}, with the family's views.",
        "Clear evidence in case notes and supervision record of {d}.",
    ),
    PARTIAL: (
        "Some evidence (visit {d}) but the record does not show the analysis.",
        "Partly recorded; the plan of {d} does not reflect it.",
    ),
    UNFAVOURABLE: (
        "No record found since {d}. Discussed with the worker; action set below.",
        "Not evidenced in the file; raised with the team manager on {d}.",
    ),
    None: ("Not applicable to this case.",),
}


def staff(role: str, team: int, n: int) -> str:
    return f"{role} {chr(65 + team)}{n} (synthetic)"


def synthetic_facts(prefix: str, index: int, due: dt.date, rng: random.Random) -> dict[str, str]:
    """Every column any form prints, made up; staff and auditor are never in one team."""
    team = rng.randrange(len(TEAMS))
    auditor_team = (team + 1 + rng.randrange(len(TEAMS) - 1)) % len(TEAMS)
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    born = due - dt.timedelta(days=rng.randrange(365, 17 * 365))
    facts = {
        "case_number": f"SYN{prefix}{index:04d}",
        "family_name": family,
        "given_names": given,
        "dob": born.isoformat(),
        "gender": rng.choice(GENDER),
        "ethnicity": rng.choice(ETHNICITY),
        "primary_language": "English",
        "worker": staff("Worker", team, rng.randrange(1, 4)),
        "manager": staff("Manager", team, 1),
        "team": TEAMS[team],
        "auditor": staff("Auditor", auditor_team, rng.randrange(1, 3)),
        "audit_type": rng.choice(AUDIT_TYPES),
        "due_date": due.isoformat(),
        "preparer_email": f"worker.{chr(97 + team)}{index % 3 + 1}@example.invalid",
    }
    for form in all_forms().values():  # whatever else a tool prints: a made-up value
        for h in form.header:
            if h.column not in facts and not h.sources:
                facts[h.column] = (
                    f"{due - dt.timedelta(days=rng.randrange(200, 3000)):%Y-%m-%d}"
                    if h.kind is FieldKind.date
                    else f"{h.label} {index} (synthetic)"
                )
    return facts


def synthetic_case(
    form: FormDefinition, index: int, due: dt.date, rng: random.Random
) -> dict[str, str]:
    """One made-up case-list row with every column the form's header shows."""
    values = synthetic_facts(form.id[:2].upper(), index, due, rng)
    columns = {c for h in form.header for c in h.columns}
    return {c: values.get(c, "") for c in sorted(columns)} | {
        c: values[c] for c in ("case_number", "auditor", "due_date")
    }


def synthetic_auditors(month: str) -> list[dict[str, str]]:
    """Four per team; two of sixteen (12.5%) on break this month; some prefer Excel."""
    rows = []
    for team in range(len(TEAMS)):
        for n in range(1, 5):
            rows.append(
                {
                    "name": staff("Auditor", team, n),
                    "email": f"auditor.{chr(97 + team)}{n}@example.invalid",
                    "team": TEAMS[team],
                    "format": "Excel" if n == 2 else "Word",
                    "break_months": month if (team, n) in ((0, 4), (2, 4)) else "",
                }
            )
    return rows


#: Facts a case list row carries that a population does not: the allocation's, and an
#: activity run's (its theme, the member of staff it looks at, a supervisor's cases).
NOT_A_CASE_COLUMN = frozenset(
    {"auditor", "due_date", "audit_type", "theme", "staff_name", "role", "cases"}
)


def synthetic_staff(population: list[dict[str, str]]) -> list[dict[str, str]]:
    """The staff the population names: its workers (practitioners) and its managers
    (supervisors), each with a made-up staff id."""
    workers = sorted({(r["worker"], r["team"]) for r in population if r.get("worker")})
    managers = sorted({(r["manager"], r["team"]) for r in population if r.get("manager")})
    return [
        {"staff_id": f"S{n:03d}", "name": name, "team": team, "role": "social worker"}
        for n, (name, team) in enumerate(workers, start=1)
    ] + [
        {"staff_id": f"M{n:03d}", "name": name, "team": team, "role": "team manager"}
        for n, (name, team) in enumerate(managers, start=1)
    ]


def synthetic_population(
    due: dt.date, rng: random.Random, counts: dict[str, int]
) -> list[dict[str, str]]:
    """`counts[category]` made-up cases per population category."""
    rows = []
    for category, count in counts.items():
        for i in range(1, count + 1):
            facts = synthetic_facts(category[:2].upper(), i, due, rng)
            audited = due - dt.timedelta(days=rng.randrange(30, 900))
            rows.append(
                {k: v for k, v in facts.items() if k not in NOT_A_CASE_COLUMN}
                | {
                    "category": category.replace("_", " "),
                    "placed_for_adoption": "Yes" if category == "lac" and i <= 3 else "No",
                    "last_audited": audited.isoformat() if rng.random() < 0.3 else "",
                }
            )
    return rows


def _choice_for(item: Item, outcome: str | None, rng: random.Random) -> str:
    """A choice of the item's scale that counts as `outcome` for this item."""
    scale = item.scale
    assert scale is not None
    wanted = [c for c in scale.choices if item.outcome(c) == outcome]
    return rng.choice(wanted) if wanted else scale.choices[-1]


def _band(scale: Scale, share: float) -> str:
    """A judgement on `scale` for a case whose answers were `share` favourable."""
    outcome = FAVOURABLE if share >= 0.7 else PARTIAL if share >= 0.4 else UNFAVOURABLE
    choices = getattr(scale, outcome) or scale.choices
    better = share >= {FAVOURABLE: 0.85, PARTIAL: 0.55}.get(outcome, 0.0)
    return choices[0] if better else choices[-1]


def synthetic_answers(
    form: FormDefinition,
    case: Case,
    rng: random.Random,
    today: dt.date,
    roles: Iterable[str] = ("", "preparer", "auditor"),
) -> dict[str, str]:
    """Plausible completed answers for the fields of the given roles: consistent judgements
    and grades, SMART actions, the status Final."""
    roles = set(roles)
    weights = QUALITY[rng.choices(list(QUALITY), weights=(45, 40, 15))[0]]
    seen = show_date(today - dt.timedelta(days=rng.randrange(5, 60)))
    answers: dict[str, str] = {}
    outcomes: list[str | None] = []
    for _, item in form.items():
        if item.kind == "question":
            outcome = rng.choices((FAVOURABLE, PARTIAL, UNFAVOURABLE, None), weights)[0]
            outcomes.append(outcome)
            if item.role in roles:
                answers[item.key] = _choice_for(item, outcome, rng)
            if item.evidence and item.evidence_role in roles:
                answers[item.evidence_key] = rng.choice(EVIDENCE[outcome]).format(d=seen)
            if item.comment and item.role in roles:
                answers[item.comment_key] = "Checked with the worker (synthetic)."
        elif item.kind == "table" and item.role in roles:
            answers |= _actions(item, case, rng, today)
        elif item.kind == "text" and item.role in roles:
            answers[item.key] = "Synthetic summary: the record shows the child's lived experience."
        elif item.kind == "date" and item.role in roles:  # an observation's date, say
            answers[item.key] = seen
    _judge(form, answers, roles)
    scored = [o for o in outcomes if o is not None]
    share = scored.count(FAVOURABLE) / len(scored) if scored else 1.0
    grade = form.item(form.judgements.grade)
    if grade is not None and grade.scale is not None and grade.role in roles:
        answers[grade.key] = _band(grade.scale, share)
    j = form.judgements
    for _, item in form.items():  # any other choice: one that fits how the case went
        if (
            item.kind == "choice"
            and item.role in roles
            and item.scale is not None
            and item.key not in answers
            and item.key not in (j.moderated_grade, j.status)
        ):
            answers[item.key] = (
                _band(item.scale, share)
                if item.scale.favourable
                else rng.choice(item.scale.choices)
            )
    answers |= {
        k: v
        for k, v in (
            (j.status, j.final),
            (j.completed_by, case.facts.get("auditor", "")),
            (j.completed_on, show_date(today)),
        )
        if k
    }
    for text in form.concern_texts():  # no urgent concern unless the caller raises one
        answers.pop(text.key, None)
    answers |= concern_answers(form, raised=False, day=today)
    keys = {f.key for f in form.fields()}
    return {k: v for k, v in answers.items() if k in keys}


def _judge(form: FormDefinition, answers: dict[str, str], roles: set[str]) -> None:
    """Each judged domain from its own answers."""
    for section in form.domains():
        item = form.item(section.judgement_key)
        if item is None or item.scale is None or item.role not in roles:
            continue
        scored = [
            o for q in section.questions if (o := q.outcome(answers.get(q.key, ""))) is not None
        ]
        share = scored.count(FAVOURABLE) / len(scored) if scored else 1.0
        answers[item.key] = _band(item.scale, share)


def _actions(item: Item, case: Case, rng: random.Random, today: dt.date) -> dict[str, str]:
    """One or two SMART actions, written by what each column holds."""
    by_role = {
        "recommendation": "Strengthen the child's voice in the plan",
        "action": "Update the plan with the child's views and review it at the next core group",
        "responsible_role": "Social worker",
        "responsible_person": case.facts.get("worker", "Worker (synthetic)"),
    }
    answers = {}
    for row in range(1, rng.randrange(2, 4)):
        due = show_date(today + dt.timedelta(days=rng.randrange(14, 60)))
        for column in item.columns:
            value = due if column.role == "due_date" else by_role.get(column.role, "")
            if value:
                answers[item.cell_key(row, column)] = value
    return answers
