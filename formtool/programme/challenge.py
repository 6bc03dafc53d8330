"""Challenging an audit's grade (seed 001 App A paras 21-22): where a practitioner or manager
and the auditor cannot agree, the audit goes to an independent senior moderator: the policy's
`moderation.senior_moderator`, else one the officer names; an account with the moderator role
that neither audited nor moderated the audit. Their decision is recorded as the audit's
moderated grade in the same transaction as the challenge's outcome, and it stands: the audit
cannot be moderated or challenged again. Every step is an event with its user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from formtool.errors import FormtoolError
from formtool.programme.moderation import MODERATES, REGRADES, grade_choices
from formtool.programme.policy import Policy
from formtool.store import Store, unknown_audit

MODERATOR_ROLE = "moderator"


class ChallengeError(FormtoolError):
    """A challenge that cannot be recorded or decided; the message says why and the fix."""


@dataclass(frozen=True)
class ChallengeStep:
    audit_id: str
    status: str  # "challenged" or "decided"
    senior_moderator: str
    grade: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _graded(db: Store, audit_id: str) -> Any:
    rows = db.audit_rows(audit_ids=[audit_id])
    if not rows:
        raise unknown_audit(audit_id)
    if not (rows[0].moderated_grade or rows[0].auditor_grade):
        raise ChallengeError(f"Audit {audit_id} has no grade yet: there is nothing to challenge.")
    return rows[0]


def _senior(db: Store, policy: Policy, named: str, audit: Any) -> str:
    """The senior moderator: the policy's, else the one named; a moderator account
    independent of the audit."""
    senior = policy.moderation.senior_moderator or named.strip()
    if not senior:
        raise ChallengeError(
            "The programme names no senior moderator (moderation.senior_moderator): name "
            "one with --to USER, an account with the moderator role."
        )
    if named.strip() and named.strip() != senior:
        raise ChallengeError(
            f"The programme names {senior} as the senior moderator for challenges; "
            f"{named.strip()} cannot decide one."
        )
    account = db.active_user(senior)  # AccountError: no such account
    if MODERATOR_ROLE not in str(account.role).split(","):
        raise ChallengeError(
            f"{senior} does not have the moderator role, so cannot decide a challenge. "
            f"Give it (`formtool users role {senior} --role moderator`) or name another."
        )
    involved = {audit.auditor.strip().lower(), (audit.moderated_by or "").strip().lower()}
    if senior.lower() in involved:
        raise ChallengeError(
            f"{senior} audited or moderated {audit.audit_id}: the senior moderator must be "
            "independent of the audit. Name another."
        )
    return senior


def challenge_grade(
    db: Store, policy: Policy, audit_id: str, by: str, reason: str, to: str = "", user: str = ""
) -> ChallengeStep:
    """Record that `by` challenges the audit's grade, for the senior moderator to decide."""
    if not by.strip() or not reason.strip():
        raise ChallengeError('Say who challenges the grade (--by NAME) and why (--reason "...").')
    audit = _graded(db, audit_id)
    for earlier in db.challenges(audit_id):
        if earlier.decided_at is not None:
            raise ChallengeError(
                f"Audit {audit_id}'s grade was decided on challenge by "
                f"{earlier.senior_moderator} ({earlier.grade}); that decision stands."
            )
    senior = _senior(db, policy, to, audit)
    db.add_challenge(audit_id, by.strip(), reason.strip(), senior, user)
    return ChallengeStep(audit_id, "challenged", senior)


def decide_challenge(
    db: Store, audit_id: str, grade: str, decided_by: str, reason: str, user: str = ""
) -> ChallengeStep:
    """The senior moderator's decision: the audit's moderated grade from now on."""
    if not reason.strip():
        raise ChallengeError('Say why the grade is decided so (--reason "...").')
    audit = _graded(db, audit_id)
    open_ = [c for c in db.challenges(audit_id) if c.decided_at is None]
    if not open_:
        raise ChallengeError(f"Audit {audit_id} has no open challenge to decide.")
    senior = open_[0].senior_moderator
    if decided_by.strip() != senior:
        raise ChallengeError(
            f"Only {senior}, the senior moderator it went to, can decide this challenge."
        )
    choices = grade_choices(db, audit.form_id, audit.form_version)
    chosen = next((c for c in choices if c.lower() == grade.strip().lower()), None)
    if chosen is None:
        raise ChallengeError(
            f"Grade '{grade}' is not on the scale. Use one of: {'; '.join(choices)}."
        )
    detail = f"{chosen} by {senior} on challenge: {reason.strip()}"
    state, before = db.moderate(
        audit_id, chosen, senior, detail, user, MODERATES, REGRADES, decision=reason.strip()
    )
    if before is None:
        raise ChallengeError(f"Audit {audit_id} is '{state}': its grade cannot be decided now.")
    return ChallengeStep(audit_id, "decided", senior, chosen)
