"""The PMU figures computed the old way, in Python from every answer and action read into
memory: the oracle the database's GROUP BY figures (formtool.packs.figures) must agree with
(tests/test_figures_sql.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from formtool.definitions import FormDefinition, Item
from formtool.definitions.scales import OUTCOMES, Scale
from formtool.packs.figures import (
    Finding,
    PmuFigures,
    ToolFindings,
    action_done,
)
from formtool.packs.standing import COMPLETE, charted
from formtool.periods import Period
from formtool.store import Store


@dataclass(frozen=True)
class OldAudit:
    """An audit as the old code saw it, read by the old query (`audit_rows`, every column)."""

    audit_id: str
    form: FormDefinition
    complete: bool
    grade: str
    return_id: int | None
    activity: str

    @property
    def scale(self) -> Scale | None:
        return self.form.grade_scale


def old_audits(db: Store, period: Period) -> list[OldAudit]:
    """The period's case-file audits, read as the old code read them."""
    rows = db.audit_rows(period.months)
    forms = db.forms_of(rows, "the oracle")
    found = []
    for row in rows:
        complete = row.state in COMPLETE
        grade = (row.moderated_grade or row.auditor_grade or "") if complete else ""
        found.append(
            OldAudit(
                row.audit_id, forms[row.audit_id], complete, grade, row.return_id, row.activity
            )
        )
    return [a for a in found if not a.activity]


def domains_and_findings(
    audits: list[OldAudit], min_base: int, answers: dict[int, dict[str, tuple[str, str]]]
) -> tuple[dict[str, Any], list[ToolFindings]]:
    """Each tool's domain counts and findings from every complete audit's answers."""
    by_form: dict[str, list[OldAudit]] = defaultdict(list)
    for audit in (a for a in audits if a.complete):
        by_form[audit.form.id].append(audit)
    domains: dict[str, Any] = {}
    tools = []
    for audits in sorted(by_form.values(), key=lambda a: a[0].form.name):
        form = audits[0].form
        given = [answers.get(a.return_id or -1, {}) for a in audits]
        found = []
        for section in form.domains():
            item = form.item(section.judgement_key)
            if item is None or item.scale is None:
                continue
            scored = tuple(c for c in item.scale.choices if item.outcome(c)) or item.scale.choices
            values = (a.get(section.judgement_key, ("", ""))[0] for a in given)
            counts = Counter(v for v in values if v in scored)
            if counts:
                found.append((section.label, counts, scored))
        if found:
            domains[form.name] = found
        tool = ToolFindings(form, len(audits))
        if len(audits) >= min_base:
            tool.findings = [x for q in form.questions() if (x := _finding(form, q, given))]
        tools.append(tool)
    return domains, tools


def _finding(
    form: FormDefinition, item: Item, answers: list[dict[str, tuple[str, str]]]
) -> Finding | None:
    outcomes = Counter(o for a in answers if (o := item.outcome(a.get(item.key, ("", ""))[0])))
    base = sum(outcomes.values())
    return Finding(form.name, item, {o: outcomes[o] for o in OUTCOMES}, base) if base else None


def action_totals(actions: list[dict[str, Any]], as_of: dt.date) -> dict[str, int]:
    done = sum(action_done(a) for a in actions)
    late = sum(
        1
        for a in actions
        if not action_done(a) and isinstance(a["due_date"], dt.date) and a["due_date"] < as_of
    )
    return {"raised": len(actions), "completed": done, "open": len(actions) - done, "overdue": late}


def trend_point(
    period: Period, audits: list[OldAudit], scale: Scale | None, min_base: int
) -> dict[str, object]:
    graded = [
        a.grade
        for a in audits
        if a.grade and a.scale is not None and scale is not None and a.scale.id == scale.id
    ]
    point: dict[str, object] = {
        "period": period.label,
        "audits": len(audits),
        "graded": len(graded),
    }
    for outcome in OUTCOMES:
        members = getattr(scale, outcome) if scale else ()
        point[outcome] = (
            round(100 * sum(g in members for g in graded) / len(graded), 1)
            if graded and charted(len(graded), min_base)
            else None
        )
    return point


def oracle(db: Store, f: PmuFigures) -> dict[str, Any]:
    """What the old code computed for `f`'s period, from everything read into memory by the
    old queries (nothing of the new code's reading is reused)."""
    audits = old_audits(db, f.period)
    ids = [a.return_id for a in audits if a.complete and a.return_id]
    domains, tools = domains_and_findings(audits, f.min_base, db.answers_by_return(ids))
    history = [f.period]
    while len(history) < len(f.trend):
        history.insert(0, history[0].previous())
    return {
        "domains": domains,
        "findings": tools,
        "actions": action_totals(db.action_dicts(ids), f.as_of),
        "trend": [trend_point(p, old_audits(db, p), f.main_scale, f.min_base) for p in history],
    }
