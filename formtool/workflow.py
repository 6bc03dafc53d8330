"""The QA team's steps after a return comes in (seed 001, Appendix A): check it (accept, or
send it back for amendment within 3 working days), confirm the actions are signed off, close.

Each step is one state change through `store.move_state`, so two people acting on one audit
at once cannot both succeed: the second gets a one-line refusal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from formtool import clock, store
from formtool.deadlines import amendment_due
from formtool.definitions import get_form
from formtool.errors import FormtoolError
from formtool.scales import format_date

S = store.AuditState


class WorkflowError(FormtoolError):
    """A step that cannot be taken: the message says why and what to do."""


@dataclass(frozen=True)
class StepResult:
    audit_id: str
    state: str
    previous_state: str
    amend_by: str | None = None  # ISO date, for an amendment request

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def check_return(
    engine: sa.Engine,
    audit_id: str,
    amend_reason: str | None = None,
    today: dt.date | None = None,
    user: str = "",
) -> StepResult:
    """Accept a complete return (state `checked`) or request an amendment."""
    if amend_reason is not None and not amend_reason.strip():
        raise WorkflowError('Say what needs amending (--amend "reason").')
    today = today or clock.today()
    with store.transaction(engine) as conn:
        if amend_reason is None:
            before = store.move_state(
                conn,
                audit_id,
                [S.returned],
                S.checked,
                "checked",
                "accepted",
                user,
                why="only a complete (Final) return can be accepted; import it first",
            )
            return StepResult(audit_id, S.checked.value, before.value)
        due = amendment_due(today)
        before = store.move_state(
            conn,
            audit_id,
            [S.returned],
            S.amendment_requested,
            "amendment requested",
            f"amend by {format_date(due)}: {amend_reason.strip()}",
            user,
            why="only a returned audit can be sent back for amendment",
        )
    return StepResult(audit_id, S.amendment_requested.value, before.value, due.isoformat())


def open_actions(conn: sa.Connection, audit_id: str) -> list[str]:
    """Action rows of the current return that need a manager's sign-off and lack one."""
    audit = store.audit_row(conn, audit_id)
    current = store.current_return(conn, audit_id) if audit is not None else None
    if current is None:
        return []
    form = get_form(audit.form_id, audit.form_version)
    signed_tables = {
        t.key for t in form.tables() if {"sign_off", "sign_off_date"} & {c.role for c in t.columns}
    }
    return [
        f"{row.table_key}.{row.row}"
        for row in store.return_actions(conn, current.id)
        if row.table_key in signed_tables and not (row.sign_off or row.sign_off_date)
    ]


def sign_off_actions(engine: sa.Engine, audit_id: str, user: str = "") -> StepResult:
    """Record that the audit's actions are signed off (every row the form asks a manager to
    sign off carries a sign-off in the current return)."""
    with store.transaction(engine) as conn:
        missing = open_actions(conn, audit_id)
        if missing:
            raise WorkflowError(
                f"Audit {audit_id} has {len(missing)} action(s) without a manager's sign-off "
                f"({', '.join(missing[:5])}). Import the return with the sign-offs filled in."
            )
        before = store.move_state(
            conn,
            audit_id,
            [S.checked, S.moderated],
            S.actions_signed_off,
            "actions signed off",
            "",
            user,
            why="accept (check) or moderate it first",
        )
    return StepResult(audit_id, S.actions_signed_off.value, before.value)


def close_audit(engine: sa.Engine, audit_id: str, user: str = "") -> StepResult:
    """Close an audit whose actions are signed off (or that has none open)."""
    with store.transaction(engine) as conn:
        state = store.audit_state(conn, audit_id)
        if state in (S.checked, S.moderated) and open_actions(conn, audit_id):
            raise WorkflowError(
                f"Audit {audit_id} still has actions without a sign-off. "
                "Sign them off (`formtool signoff`) before closing it."
            )
        before = store.move_state(
            conn,
            audit_id,
            [S.checked, S.moderated, S.actions_signed_off],
            S.closed,
            "closed",
            "",
            user,
            why="only a checked, moderated or signed-off audit can close",
        )
    return StepResult(audit_id, S.closed.value, before.value)


@dataclass(frozen=True)
class Selection:
    """The month's prepared files: those picked for the auditor, and those filed as they are."""

    month: str
    selected: tuple[str, ...]
    filed: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"month": self.month, "selected": list(self.selected), "filed": list(self.filed)}


def select_prepared(
    engine: sa.Engine, month: str, per_team: int = 1, seed: int = 0, user: str = ""
) -> Selection:
    """Seed 000, paras 10.2 and 12.1: from the files prepared for audit in the month, pick at
    least `per_team` per team (seeded) for the service manager or competent person to audit;
    the others are filed as prepared and not audited (and, like audited files, are not
    selected again for 12 months: they stay in the audit history)."""
    import random

    from formtool.store import queries

    if per_team < 1:
        raise WorkflowError(
            "--per-team must be at least 1 (seed 000: at least one file per team is audited)."
        )
    with engine.connect() as conn:
        rows = queries.audit_rows(conn, [month], [S.prepared.value])
    teams: dict[str, list[str]] = {}
    for row in rows:
        teams.setdefault(row.team, []).append(row.audit_id)
    rng = random.Random(f"{month}:{seed}:select")
    selected = {
        a
        for team in sorted(teams)
        for a in rng.sample(sorted(teams[team]), min(per_team, len(teams[team])))
    }
    with store.transaction(engine) as conn:
        for audit_id in sorted(selected):
            store.move_state(
                conn,
                audit_id,
                [S.prepared],
                S.awaiting_audit,
                "selected for audit",
                f"{month}, seed {seed}",
                user,
            )
        for audit_id in sorted(set(a for ids in teams.values() for a in ids) - selected):
            store.move_state(
                conn,
                audit_id,
                [S.prepared],
                S.filed_unaudited,
                "filed unaudited",
                "prepared for audit, not selected",
                user,
            )
    filed = tuple(sorted(set(a for ids in teams.values() for a in ids) - selected))
    return Selection(month, tuple(sorted(selected)), filed)
