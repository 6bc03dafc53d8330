"""The PMU figures counted by the database (GROUP BY) agree with the old Python computation
over every answer read into memory (tests/figures_oracle.py), on small random stores on
both backends: favourable and unfavourable answers, N/A and blanks, questions left out,
moderation overrides, drafts and superseded returns (never counted), activity audits (not
case-file figures), actions signed off or late, and minimum bases either side of the count."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from figures_oracle import oracle

from formtool import store
from formtool.definitions import get_form, load_forms
from formtool.packs.figures import load_figures
from formtool.periods import period_for
from formtool.store.catalog import record_snapshots

FORMS = [get_form(f) for f in sorted(load_forms())]
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
STATES = [s.value for s in store.AuditState]
WITH_RETURN = {
    "in progress",
    "returned",
    "amendment requested",
    "checked",
    "moderated",
    "actions signed off",
    "closed",
}
STAMP = dt.datetime(2026, 12, 1, 9, 0)
AS_OF = dt.date(2026, 10, 15)


def _value(rng: random.Random, item: Any) -> str | None:
    """An answer as auditors give them: a choice, blank, something off the scale, or none."""
    roll = rng.random()
    if roll < 0.08:
        return None  # the question is not in the return at all
    if roll < 0.15:
        return rng.choice(("", "Not sure", "n/a"))
    return rng.choice(item.scale.choices) if item.scale else "Some text"


def _random_store(engine: Any, seed: int, count: int) -> None:
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {
        "audits": [],
        "returns": [],
        "answers": [],
        "grades": [],
        "actions": [],
    }
    for i in range(count):
        form, month, state = rng.choice(FORMS), rng.choice(MONTHS), rng.choice(STATES)
        audit_id = f"T{seed}-{i:04d}"
        rows["audits"].append(
            {
                "audit_id": audit_id,
                "form_id": form.id,
                "form_version": form.version,
                "case_number": f"C{i:05d}",
                "auditor": f"Auditor {i % 7}",
                "team": f"Team {i % 3}",
                "month": month,
                "due_date": dt.date(2026, int(month[5:]), 28),
                "state": state,
                "checksum": "x",
                "facts": json.dumps({}),
                "created_at": STAMP,
                "updated_at": STAMP,
                "activity": "thematic" if rng.random() < 0.1 else "",
            }
        )
        if state not in WITH_RETURN or rng.random() < 0.05:  # some complete with no return
            continue
        # an older return (superseded, or a draft before the final) that must never count
        for current in [False, True] if rng.random() < 0.3 else [True]:
            rid = len(rows["returns"]) + 1
            rows["returns"].append(
                {
                    "id": rid,
                    "audit_id": audit_id,
                    "file_name": "r.docx",
                    "content_hash": f"{rid:064d}",
                    "content": b"",
                    "imported_at": STAMP,
                    "is_current": current,
                    "method": "bookmarks",
                    "final": current and state != "in progress",
                }
            )
            for _, item in form.items():
                value = _value(rng, item)
                if value is not None and item.kind in ("question", "choice"):
                    rows["answers"].append(
                        {"return_id": rid, "key": item.key, "value": value, "comment": ""}
                    )
            for row in range(rng.randint(0, 3)):
                signed = rng.random() < 0.4
                rows["actions"].append(
                    {
                        "return_id": rid,
                        "table_key": "next_steps.actions",
                        "row": row + 1,
                        "action": "Update the plan",
                        "sign_off": "Manager" if signed and rng.random() < 0.5 else "",
                        "sign_off_date": dt.date(2026, 9, 1)
                        if signed and rng.random() < 0.7
                        else None,
                        "due_date": rng.choice((None, dt.date(2026, 9, 30), dt.date(2026, 11, 30))),
                    }
                )
        if form.grade_scale is not None:
            choices = form.grade_scale.choices
            rows["grades"].append(
                {
                    "audit_id": audit_id,
                    "return_id": rid,
                    "auditor_grade": rng.choice((*choices, "")),
                    "moderated_grade": rng.choice(choices) if rng.random() < 0.3 else "",
                }
            )
    with store.transaction(engine) as conn:
        record_snapshots(conn, FORMS)
        for name in ("audits", "returns", "answers", "grades", "actions"):
            if rows[name]:
                conn.execute(getattr(store, name).insert(), rows[name])


def _shown(tools: list[Any]) -> list[Any]:
    return [
        (t.form.id, t.audits, [(x.item.key, x.counts, x.base) for x in t.findings]) for t in tools
    ]


@pytest.mark.parametrize("seed", [1, 2])
def test_database_figures_agree_with_the_python_oracle(db_url: str, seed: int) -> None:
    db = store.open_store(db_url)
    _random_store(db.engine, seed, 240)
    checked = 0
    for period, min_base in (
        (period_for(None, "2026-Q3", None), 3),
        (period_for("2026-08", None, None), 40),
        (period_for(None, None, "2026"), 5),
    ):
        f = load_figures(db, period, AS_OF, min_base=min_base)
        expected = oracle(db, f)
        assert f.domains == expected["domains"]
        assert _shown(f.findings) == _shown(expected["findings"])
        assert f.action_totals == expected["actions"]
        # the workbook's Action tracker: read a few audits at a time, the same rows in order
        ids = [a.return_id for a in f.completed if a.return_id]
        assert list(f.iter_actions(chunk=7)) == db.action_dicts(ids)
        assert f.action_count == len(db.action_dicts(ids))
        assert f.trend == expected["trend"]
        checked += sum(len(t.findings) for t in f.findings)
    assert checked > 50  # the stores are big enough that findings were compared at all


def test_the_months_status_counted_by_the_database_agrees_with_every_audit_read(
    db_url: str,
) -> None:
    """The dashboard's and `formtool status`'s tallies (by state, team and auditor) are
    counted by the database: the same as counting every audit of the month in Python."""
    from collections import Counter

    from formtool.programme.status import DONE, status

    db = store.open_store(db_url)
    _random_store(db.engine, 3, 160)
    for month in ("2026-08", None):
        report = status(db, month, AS_OF)
        rows = db.audit_rows([month] if month else None)
        teams: dict[str, Counter[str]] = {}
        for row in rows:
            state = store.AuditState(row.state)
            owed = state in store.OUTSTANDING
            tally = teams.setdefault(row.team, Counter())
            tally.update(
                audits=1,
                returned=state in DONE,
                outstanding=owed,
                overdue=owed and row.due_date < AS_OF,
            )
        assert report.audits == len(rows) > 0
        assert report.by_state == dict(Counter(row.state for row in rows))
        assert report.teams == {
            t: {k: c[k] for k in ("audits", "returned", "outstanding", "overdue")}
            for t, c in sorted(teams.items())
        }
        owed_ids = {r.audit_id for r in rows if store.AuditState(r.state) in store.OUTSTANDING}
        assert {o.audit_id for o in report.outstanding} == owed_ids
