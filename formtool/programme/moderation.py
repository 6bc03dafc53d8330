"""Moderation: a head of service's grade overrides the auditor's (seed 004), and a seeded
sample of the month's complete, graded audits is picked for moderation at the programme
policy's rate (hull: 10%, seed 001 4.32; rochdale: every audit) unless a rate is given."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

from formtool.errors import FormtoolError
from formtool.programme.policy import Policy
from formtool.programme.rules import active_policy
from formtool.store import AuditState, Store

S = AuditState
#: A moderated grade moves these audits to `moderated`; later states keep their state.
MODERATES = (S.returned, S.checked, S.moderated)
REGRADES = (S.actions_signed_off, S.closed)


class ModerationError(FormtoolError):
    """A moderation that cannot be recorded: unknown audit, no return, grade not on list."""


@dataclass(frozen=True)
class Moderation:
    audit_id: str
    auditor_grade: str
    moderated_grade: str
    moderated_by: str
    changed: bool
    state: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """One line for the person who moderated, on the command line or the web page."""
        change = (
            f"changed from {self.auditor_grade}"
            if self.changed
            else "agrees with the auditor"
            if self.auditor_grade
            else "recorded"
        )
        return f"{self.audit_id}: moderated grade {self.moderated_grade} ({change})."


def grade_choices(db: Store, form_id: str, version: int) -> tuple[str, ...]:
    """The grades a moderator may give an audit of this form version: the scale of its
    moderated grade (or, without one, of its grade); empty if the tool has no grade."""
    form = db.form_for(form_id, version)
    item = form.item(form.judgements.moderated_grade or form.judgements.grade) if form else None
    return tuple(item.scale.choices) if item is not None and item.scale is not None else ()


def _grade_choice(db: Store, audit_id: str, grade: str) -> str:
    audit = db.require_audit(audit_id)
    choices = grade_choices(db, audit.form_id, audit.form_version)
    if not choices:
        raise ModerationError(
            f"Audit {audit_id} is a {audit.form_id} audit, which has no grade to moderate."
        )
    chosen = next((c for c in choices if c.lower() == grade.strip().lower()), None)
    if chosen is None:
        raise ModerationError(
            f"Grade '{grade}' is not on the scale. Use one of: " + "; ".join(choices) + "."
        )
    return chosen


def moderate(
    db: Store, audit_id: str, grade: str, by: str, comment: str = "", user: str = ""
) -> Moderation:
    """Record a moderated grade, which then counts instead of the auditor's."""
    if not by.strip():
        raise ModerationError("Say who moderated (--by NAME).")
    chosen = _grade_choice(db, audit_id, grade)  # an audit's form never changes
    detail = f"{chosen} by {by.strip()}" + (f": {comment.strip()}" if comment.strip() else "")
    state, before = db.moderate(audit_id, chosen, by.strip(), detail, user, MODERATES, REGRADES)
    if before is None:
        raise ModerationError(
            f"Audit {audit_id} is '{state}': only a complete (Final) "
            "return can be moderated. Import it first."
        )
    return Moderation(
        audit_id, before, chosen, by.strip(), bool(before) and before != chosen, state.value
    )


def rate_text(rate: float) -> str:
    """A rate as a percentage a QA officer types: 0.1 -> "10%", 0.125 -> "12.5%"."""
    return f"{round(rate * 100, 2):g}%"


def default_rate(db: Store) -> str:
    """The moderation rate of the policy the database runs, as text ("10%")."""
    return rate_text(active_policy(db).moderation.rate)


def target_words(policy: Policy) -> str:
    """What reports say of the share to moderate: the policy's words for it ("the framework
    asks for 10%"), else its rate."""
    return policy.word("moderation_rate") or (
        f"the programme asks for {rate_text(policy.moderation.rate)}"
    )


def parse_rate(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%")) / (100 if text.strip().endswith("%") else 1)
    except ValueError:
        raise ModerationError(f"--rate '{text}' is not a rate; use e.g. 10% or 0.1.") from None
    if not 0 < value <= 1:
        raise ModerationError(f"--rate '{text}' must be between 0% and 100%.")
    return value


@dataclass(frozen=True)
class SampledAudit:
    audit_id: str
    case_number: str
    team: str
    auditor: str
    auditor_grade: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def moderation_pool(db: Store, month: str) -> list[SampledAudit]:
    """The month's complete, graded case-file audits not yet moderated (drafts never count;
    the framework's share is of the monthly audit sample, not of its other activities)."""
    rows = db.audit_rows(months=[month], states=[S.returned, S.checked])
    return [
        SampledAudit(r.audit_id, r.case_number, r.team, r.auditor, r.auditor_grade)
        for r in rows
        if r.auditor_grade and not r.moderated_grade and not r.activity
    ]


def moderation_sample(
    db: Store,
    month: str,
    rate: float | None = None,
    seed: int = 0,
    record: bool = True,
    user: str = "",
) -> list[SampledAudit]:
    """A reproducible random sample (at least one) of the month's moderation pool, at `rate`
    (None: the active policy's moderation rate)."""
    pool = moderation_pool(db, month)
    if not pool:
        return []
    if rate is None:
        rate = active_policy(db).moderation.rate
    size = max(1, math.ceil(rate * len(pool)))
    picked = sorted(random.Random(f"{month}:{seed}").sample(pool, size), key=lambda r: r.audit_id)
    if record:
        detail = f"{month} sample, rate {rate:.0%}, seed {seed}"
        db.record_events([(r.audit_id, "selected for moderation", detail) for r in picked], user)
    return picked
