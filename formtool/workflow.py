"""The QA officer's check of a return (seed 001, Appendix A para 20): accept it, or send it
back to the auditor for amendment within 3 working days."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from formtool import store
from formtool.deadlines import amendment_due
from formtool.errors import FormtoolError

CHECKABLE = ("returned",)


class WorkflowError(FormtoolError):
    """The audit is not in a state this step applies to."""


def check_return(engine: sa.Engine, audit_id: str, amend_reason: str | None = None,
                 today: dt.date | None = None) -> dict:
    """Accept a returned audit (state `checked`) or request an amendment."""
    today = today or dt.date.today()
    a = store.audits.c
    with store.transaction(engine) as conn:
        state = conn.execute(sa.select(a.state).where(a.audit_id == audit_id)).scalar()
        if state is None:
            raise WorkflowError(f"Audit {audit_id} is not in the database.")
        if state not in CHECKABLE:
            raise WorkflowError(f"Audit {audit_id} is '{state}'; only a returned audit can be "
                                "checked. Import the return first.")
        if amend_reason is not None and not amend_reason.strip():
            raise WorkflowError("Say what needs amending (--amend \"reason\").")
        new_state = "checked" if amend_reason is None else "amendment requested"
        conn.execute(store.audits.update().where(a.audit_id == audit_id)
                     .values(state=new_state, updated_at=store.now()))
        due = amendment_due(today) if amend_reason is not None else None
        detail = (f"amend by {due:%d/%m/%Y}: {amend_reason.strip()}" if due else "accepted")
        store.record_event(conn, audit_id, new_state, detail)
    return {"audit_id": audit_id, "state": new_state,
            "amend_by": due.isoformat() if due else None}
