"""Anonymised period summaries: what is kept of audits that retention or an erasure removes,
so the figures already reported for their months stay reproducible.

A summary cell is a count by month, tool, team, measure and value, and never names a child, a
member of staff or an audit: where the audits stood (completed, outstanding, ...), their final
grades, the answers to scale questions (the judgements a pack's findings and domains are drawn
from; never free text), moderation agreed or changed, action rows open or done, and concerns
raised. `period_figures` adds the live audits' cells to the stored ones: removing an audit
moves its cells from one to the other, so the total is unchanged, which is what the tests check.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from formtool.errors import FormtoolError
from formtool.packs.standing import STANDING
from formtool.store import Cell, Store


class RemovalError(FormtoolError):
    """A file or record could not be removed; the message says what was removed before it."""


def _final_grade(row: Any) -> str:
    return str(row.moderated_grade or row.auditor_grade or "")


def _answer_cells(form: Any, answers: dict[str, tuple[str, str]]) -> Iterable[tuple[str, str]]:
    for _section, item in form.items():
        value = answers.get(item.key, ("", ""))[0]
        if item.scale is not None and value in item.scale.choices:
            yield "answer", f"{item.key}|{value}"


def audit_cells(
    row: Any, form: Any, answers: dict[str, tuple[str, str]], actions: list[Any], concerns: int
) -> Counter[Cell]:
    """One audit's anonymised counts (see the module docstring)."""
    standing = STANDING.get(row.state, "outstanding")
    measures: list[tuple[str, str]] = [("audits", standing)]
    grade = _final_grade(row)
    if grade and standing == "completed":
        measures.append(("grade", grade))
    if row.moderated_grade:
        agreed = row.moderated_grade == row.auditor_grade
        measures.append(("moderation", "agreed" if agreed else "changed"))
    if standing == "completed" and form is not None:
        measures.extend(_answer_cells(form, answers))
    measures.extend(
        ("actions", "done" if a.sign_off or a.sign_off_date else "open") for a in actions
    )
    measures.extend(("concerns", "raised") for _ in range(concerns))
    activity = f"{row.activity}:" if row.activity else ""
    key = (row.month, f"{activity}{row.form_id}", row.team or "")
    return Counter((*key, measure, value) for measure, value in measures)


def summary_cells(db: Store, audit_ids: Collection[str]) -> dict[str, Counter[Cell]]:
    """Each audit's anonymised counts, by audit id (audits not in the store are left out)."""
    rows = db.audit_rows(audit_ids=list(audit_ids))
    if not rows:
        return {}
    forms = db.forms_of(rows, "The period summary")
    return_ids = [r.return_id for r in rows if r.return_id is not None]
    answers = db.answers_by_return(return_ids)
    actions: dict[int, list[Any]] = {}
    for action in db.actions_by_return(return_ids):
        actions.setdefault(action.return_id, []).append(action)
    wanted = set(audit_ids)
    raised = Counter(c.audit_id for c in db.concerns() if c.audit_id in wanted)
    return {
        row.audit_id: audit_cells(
            row,
            forms.get(row.audit_id),
            answers.get(row.return_id, {}),
            actions.get(row.return_id, []),
            raised[row.audit_id],
        )
        for row in rows
    }


def stored_cells(db: Store, months: Collection[str] | None = None) -> Counter[Cell]:
    """The period summaries kept for removed audits."""
    return Counter(
        {
            (r.month, r.form_id, r.team, r.measure, r.value): int(r.count)
            for r in db.period_summary(months)
        }
    )


def period_figures(db: Store, months: Collection[str] | None = None) -> Counter[Cell]:
    """Every audit's counts for `months` (all months: None), live or removed: unchanged by
    retention and erasure."""
    rows = db.audit_rows(months)
    total: Counter[Cell] = Counter()
    for cells in summary_cells(db, [r.audit_id for r in rows]).values():
        total.update(cells)
    total.update(stored_cells(db, months))
    return total


def as_rows(cells: Counter[Cell]) -> list[dict[str, Any]]:
    """Cells as plain rows (for --json and the CSV beside a report), in a stable order."""
    names = ("month", "form", "team", "measure", "value")
    return [{**dict(zip(names, key, strict=True)), "count": n} for key, n in sorted(cells.items())]


def remove_files(db: Store, rows: Iterable[Any], why: str, user: str) -> int:
    """Delete tracked files from disk (already gone counts as removed) and mark them removed;
    how many were on disk. A file that cannot be deleted (permissions) stays tracked and
    raises, naming it, so nothing is marked removed that is still there."""
    gone: list[int] = []
    on_disk = 0
    for row in rows:
        path = Path(row.path)
        try:
            path.unlink()
            on_disk += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            db.mark_files_removed(gone, why, user)
            raise RemovalError(
                f"[{path}] could not be deleted ({exc.strerror}); {len(gone)} file(s) before "
                "it were. Check its permissions and run again."
            ) from None
        gone.append(row.id)
    db.mark_files_removed(gone, why, user)
    return on_disk


def summary_json(cells: Counter[Cell]) -> str:
    return json.dumps(as_rows(cells), indent=2)
