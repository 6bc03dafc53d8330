"""Moderation: a head of service's grade overrides the auditor's (seed 004), and a seeded
10% sample of completed audits is picked each month for moderation (seed 001)."""

from __future__ import annotations

import math
import random

import sqlalchemy as sa

from formtool import store
from formtool.errors import FormtoolError
from formtool.packs.figures import GRADES

MODERATABLE = ("returned", "checked", "moderated", "actions signed off", "closed")


class ModerationError(FormtoolError):
    """A moderation that cannot be recorded: unknown audit, no return, grade not on list."""


def moderate(engine: sa.Engine, audit_id: str, grade: str, by: str, comment: str = "") -> dict:
    """Record a moderated grade, which then counts instead of the auditor's."""
    chosen = next((g for g in GRADES if g.lower() == grade.strip().lower()), None)
    if chosen is None:
        raise ModerationError(
            f"Grade '{grade}' is not on the scale. Use one of: " + "; ".join(GRADES) + "."
        )
    if not by.strip():
        raise ModerationError("Say who moderated (--by NAME).")
    a, g = store.audits.c, store.grades.c
    with store.transaction(engine) as conn:
        audit = conn.execute(sa.select(a.state).where(a.audit_id == audit_id)).first()
        if audit is None:
            raise ModerationError(f"Audit {audit_id} is not in the database.")
        if audit.state not in MODERATABLE:
            raise ModerationError(
                f"Audit {audit_id} is '{audit.state}': import the completed "
                "return before moderating it."
            )
        values = {
            "moderated_grade": chosen,
            "moderated_by": by.strip(),
            "moderated_at": store.now(),
        }
        if conn.execute(sa.select(g.audit_id).where(g.audit_id == audit_id)).first():
            before = (
                conn.execute(sa.select(g.auditor_grade).where(g.audit_id == audit_id)).scalar()
                or ""
            )
            conn.execute(store.grades.update().where(g.audit_id == audit_id).values(**values))
        else:
            before = ""
            conn.execute(store.grades.insert().values(audit_id=audit_id, **values))
        if audit.state in ("returned", "checked"):
            conn.execute(
                store.audits.update()
                .where(a.audit_id == audit_id)
                .values(state="moderated", updated_at=store.now())
            )
        store.record_event(
            conn,
            audit_id,
            "moderated",
            f"{chosen} by {by.strip()}" + (f": {comment}" if comment else ""),
        )
    return {
        "audit_id": audit_id,
        "auditor_grade": before,
        "moderated_grade": chosen,
        "moderated_by": by.strip(),
        "changed": bool(before) and before != chosen,
    }


def parse_rate(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / (100 if text.strip().endswith("%") else 1)
    except ValueError:
        raise ModerationError(f"--rate '{text}' is not a rate; use e.g. 10% or 0.1.") from None
    if not 0 < value <= 1:
        raise ModerationError(f"--rate '{text}' must be between 0% and 100%.")
    return value


def moderation_sample(
    engine: sa.Engine, month: str, rate: float = 0.10, seed: int = 0, record: bool = True
) -> list[dict]:
    """A reproducible random sample (at least one) of the month's returned, unmoderated audits."""
    a, g = store.audits.c, store.grades.c
    with engine.connect() as conn:
        pool = conn.execute(
            sa.select(a.audit_id, a.case_number, a.team, a.auditor, g.auditor_grade)
            .outerjoin(store.grades, g.audit_id == a.audit_id)
            .where(
                (a.month == month)
                & a.state.in_(("returned", "checked"))
                & sa.or_(g.moderated_grade.is_(None), g.moderated_grade == "")
            )
            .order_by(a.audit_id)
        ).all()
    if not pool:
        return []
    size = max(1, math.ceil(rate * len(pool)))
    picked = sorted(random.Random(f"{month}:{seed}").sample(pool, size), key=lambda r: r.audit_id)
    if record:
        with store.transaction(engine) as conn:
            for row in picked:
                store.record_event(
                    conn,
                    row.audit_id,
                    "selected for moderation",
                    f"{month} sample, rate {rate:.0%}, seed {seed}",
                )
    return [dict(row._mapping) for row in picked]
