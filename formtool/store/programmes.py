"""The programme around the audits, as the database keeps it: the active programme policy
(versioned snapshots, one active), the chosen slots an allocation left for auditors to name,
and immediate concerns for a child's safety with the action taken.

A policy is stored as it was used: `use_policy` adds a version when the policy's content
changed (by digest) and makes it the active one, in one transaction under a lock, so two
officers switching at once cannot leave two active. An allocation records the name and
version it ran under (audits.record_allocation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool.store.audits import AuditRecord, StateError, audit_state, new_id, record_event
from formtool.store.engine import actor, lock, now
from formtool.store.schema import (
    AuditState,
    audit_copies,
    audits,
    challenges,
    chosen_slots,
    concerns,
    outbox,
    outbox_claims,
    programmes,
    web_drafts,
)

_p, _s, _c = programmes.c, chosen_slots.c, concerns.c


@dataclass(frozen=True)
class StoredPolicy:
    name: str
    version: int
    snapshot: dict[str, Any]
    created_at: dt.datetime
    created_by: str
    active: bool


def _stored(row: Any) -> StoredPolicy:
    return StoredPolicy(
        row.name,
        row.version,
        json.loads(row.snapshot),
        row.created_at,
        row.created_by,
        bool(row.active),
    )


def digest(snapshot: dict[str, Any]) -> str:
    """The content's fingerprint: the same policy twice is the same version."""
    body = {k: v for k, v in snapshot.items() if k != "version"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def use_policy(
    conn: sa.Connection, name: str, snapshot: dict[str, Any], user: str
) -> tuple[StoredPolicy, bool]:
    """Make the policy the active one: its latest version if the content is unchanged, else a
    new version. Returns it and whether a new version was stored."""
    lock(conn, "formtool programme")
    fingerprint = digest(snapshot)
    latest = conn.execute(
        sa.select(programmes).where(_p.name == name).order_by(_p.version.desc()).limit(1)
    ).first()
    conn.execute(programmes.update().where(_p.active).values(active=False))
    if latest is not None and latest.digest == fingerprint:
        conn.execute(programmes.update().where(_p.id == latest.id).values(active=True))
        return active_policy(conn) or _stored(latest), False
    version = (latest.version if latest is not None else 0) + 1
    conn.execute(
        programmes.insert().values(
            name=name,
            version=version,
            snapshot=json.dumps(snapshot | {"version": version}, sort_keys=True),
            digest=fingerprint,
            created_at=now(),
            created_by=user or actor(),
            active=True,
        )
    )
    stored = active_policy(conn)
    assert stored is not None
    return stored, True


def active_policy(conn: sa.Connection) -> StoredPolicy | None:
    row = conn.execute(sa.select(programmes).where(_p.active).limit(1)).first()
    return _stored(row) if row is not None else None


def policy_versions(conn: sa.Connection) -> list[StoredPolicy]:
    rows = conn.execute(sa.select(programmes).order_by(_p.name, _p.version)).all()
    return [_stored(r) for r in rows]


def policy_version(conn: sa.Connection, name: str, version: int) -> StoredPolicy | None:
    row = conn.execute(
        sa.select(programmes).where((_p.name == name) & (_p.version == version))
    ).first()
    return _stored(row) if row is not None else None


# --- chosen slots ---------------------------------------------------------------------------


def add_choices(
    conn: sa.Connection, month: str, allocation_id: int | None, choices: Iterable[dict[str, str]]
) -> None:
    """The chosen slots an allocation left open (auditor, sample, form, team)."""
    at = now()
    for choice in choices:
        conn.execute(
            chosen_slots.insert().values(
                month=month,
                allocation_id=allocation_id,
                auditor=choice["auditor"],
                sample=choice["sample"],
                form_id=choice["form"],
                team=choice.get("team", ""),
                audit_id=choice.get("audit_id") or None,
                created_at=at,
            )
        )


def open_choices(conn: sa.Connection, month: str | None = None) -> list[Any]:
    """Chosen slots not yet named, oldest month first."""
    query = sa.select(chosen_slots).where(_s.audit_id.is_(None))
    if month:
        query = query.where(_s.month == month)
    return list(conn.execute(query.order_by(_s.month, _s.auditor, _s.id)).all())


def fill_choice(conn: sa.Connection, slot_id: int, audit_id: str) -> bool:
    """Name the slot's case; False when another run named it first."""
    done = conn.execute(
        chosen_slots.update()
        .where((_s.id == slot_id) & _s.audit_id.is_(None))
        .values(audit_id=audit_id)
    ).rowcount
    return done == 1


def drop_open_choices(conn: sa.Connection, month: str) -> int:
    """`allocate --replace`: the month's unnamed slots go with its unstarted audits."""
    result = conn.execute(chosen_slots.delete().where((_s.month == month) & _s.audit_id.is_(None)))
    return int(result.rowcount or 0)


# --- immediate concerns ---------------------------------------------------------------------


@dataclass(frozen=True)
class Concern:
    id: int
    audit_id: str
    return_id: int | None
    source: str
    team: str
    details: str
    told: str
    raised_at: dt.datetime
    raised_by: str
    action_taken: str
    action_by: str
    action_at: dt.datetime | None
    month: str = ""

    @property
    def open(self) -> bool:
        return not self.action_taken


def _concern(row: Any) -> Concern:
    return Concern(
        row.id,
        row.audit_id,
        row.return_id,
        row.source,
        row.team,
        row.details,
        row.told,
        row.raised_at,
        row.raised_by,
        row.action_taken,
        row.action_by,
        row.action_at,
        getattr(row, "month", ""),
    )


def raise_concern(
    conn: sa.Connection,
    audit_id: str,
    source: str,
    details: str,
    told: str,
    return_id: int | None = None,
    user: str = "",
) -> Concern | None:
    """Record a concern and its event. A return that says Yes again while the audit's concern
    from a return is still open, in the same words, is the same concern (None: nothing new);
    different words, or once the earlier one was actioned, raise a new one. Under the audit's
    lock, so two imports of one audit cannot both raise it."""
    audit_state(conn, audit_id, for_update=True)  # held already within store_return
    same = conn.execute(
        sa.select(_c.id).where(
            (_c.audit_id == audit_id)
            & (_c.source == "return")
            & (_c.action_taken == "")
            & (_c.details == details)
        )
    ).first()
    if source == "return" and same is not None:
        return None
    team = conn.execute(sa.select(audits.c.team).where(audits.c.audit_id == audit_id)).scalar()
    concern_id = new_id(
        conn.execute(
            concerns.insert().values(
                audit_id=audit_id,
                return_id=return_id,
                source=source,
                team=team or "",
                details=details,
                told=told,
                raised_at=now(),
                raised_by=user or actor(),
            )
        )
    )
    what = "from the return" if source == "return" else "by an officer"
    record_event(conn, audit_id, "concern raised", f"concern {concern_id} raised {what}", user)
    return concern_by_id(conn, concern_id)


def concern_by_id(conn: sa.Connection, concern_id: int) -> Concern | None:
    row = conn.execute(_with_month().where(_c.id == concern_id)).first()
    return _concern(row) if row is not None else None


def _with_month() -> sa.Select[Any]:
    return sa.select(concerns, audits.c.month).join(audits, audits.c.audit_id == _c.audit_id)


def concern_list(
    conn: sa.Connection, open_only: bool = False, audit_id: str | None = None
) -> list[Concern]:
    query = _with_month()
    if open_only:
        query = query.where(_c.action_taken == "")
    if audit_id:
        query = query.where(_c.audit_id == audit_id)
    return [_concern(r) for r in conn.execute(query.order_by(_c.raised_at, _c.id)).all()]


#: A concern's email in one of these states went, is going or may have gone (check the Sent
#: Items): it is not sent again (a failed one is).
EMAIL_GONE = ("sent", "queued", "unknown")


def unsent_concerns(conn: sa.Connection, purpose: str) -> list[Concern]:
    """Concerns whose email (an outbox claim for `purpose`, its round the concern's id) has
    not gone, oldest first: one query, however many concerns the database holds."""
    cl, o = outbox_claims.c, outbox.c
    gone = (
        sa.select(cl.audit_id)
        .join(outbox, o.id == cl.message_id)
        .where(
            (cl.audit_id == _c.audit_id)
            & (cl.purpose == purpose)
            & (cl.round == sa.cast(_c.id, sa.String))
            & o.state.in_(EMAIL_GONE)
        )
    )
    query = _with_month().where(~sa.exists(gone)).order_by(_c.raised_at, _c.id)
    return [_concern(r) for r in conn.execute(query).all()]


def record_action(conn: sa.Connection, concern_id: int, action: str, user: str = "") -> Concern:
    """The action taken on an open concern; a concern already actioned keeps its record."""
    done = conn.execute(
        concerns.update()
        .where((_c.id == concern_id) & (_c.action_taken == ""))
        .values(action_taken=action, action_by=user or actor(), action_at=now())
    ).rowcount
    concern = concern_by_id(conn, concern_id)
    assert concern is not None
    if done:
        record_event(conn, concern.audit_id, "concern actioned", f"concern {concern_id}", user)
    return concern


# --- reassignment ---------------------------------------------------------------------------

#: An audit may be reassigned while its auditor has sent nothing back.
REASSIGNABLE = (AuditState.allocated, AuditState.sent)


def reassign(conn: sa.Connection, record: AuditRecord, reason: str, user: str = "") -> int:
    """Give the audit to `record`'s auditor as a new copy of its form (the same definition
    version, its facts and checksum new): the copy before is kept in audit_copies, the due
    date stays, and the audit goes back to `allocated` so the new copy is sent. Its copy
    number."""
    a = audits.c
    state = audit_state(conn, record.audit_id, for_update=True)
    if state not in REASSIGNABLE:
        raise StateError(
            f"Audit {record.audit_id} is '{state}': only an audit its auditor has not yet "
            "returned can be reassigned. Exempt it, or reopen it once checked."
        )
    old = conn.execute(sa.select(audits).where(a.audit_id == record.audit_id)).one()
    conn.execute(
        audit_copies.insert().values(
            audit_id=old.audit_id,
            copy=old.copy,
            auditor=old.auditor,
            auditor_email=old.auditor_email,
            facts=old.facts,
            checksum=old.checksum,
            checksum_scheme=old.checksum_scheme,
            replaced_at=now(),
            replaced_by=user or actor(),
            reason=reason,
        )
    )
    new = record.values()
    conn.execute(
        audits.update()
        .where(a.audit_id == record.audit_id)
        .values(
            auditor=new["auditor"],
            auditor_email=new["auditor_email"],
            facts=new["facts"],
            checksum=new["checksum"],
            checksum_scheme=record.checksum_scheme,
            form_format=record.form_format,
            copy=old.copy + 1,
            state=AuditState.allocated.value,
            updated_at=now(),
        )
    )
    # The auditor's unsubmitted web-form answers are theirs, not the new auditor's to read.
    d = web_drafts.c
    conn.execute(web_drafts.delete().where((d.audit_id == record.audit_id) & (d.stage == "audit")))
    detail = f"from {old.auditor} to {record.auditor} (copy {old.copy + 1}): {reason}"
    record_event(conn, record.audit_id, "reassigned", detail, user)
    return int(old.copy + 1)


def earlier_copy(conn: sa.Connection, audit_id: str, checksum: str) -> Any:
    """The copy the audit had before a reassignment whose form carries `checksum` (None if
    none)."""
    c = audit_copies.c
    return conn.execute(
        sa.select(audit_copies)
        .where((c.audit_id == audit_id) & (c.checksum == checksum))
        .order_by(c.copy.desc())
        .limit(1)
    ).first()


# --- challenges to a grade ------------------------------------------------------------------


def challenge_rows(conn: sa.Connection, audit_id: str) -> list[Any]:
    c = challenges.c
    query = sa.select(challenges).where(c.audit_id == audit_id).order_by(c.id)
    return list(conn.execute(query).all())


def add_challenge(
    conn: sa.Connection, audit_id: str, by: str, reason: str, senior: str, user: str = ""
) -> int:
    """Record a challenge (one open at a time; none after a decision: it stands)."""
    audit_state(conn, audit_id, for_update=True)  # one decision at a time per audit
    for row in challenge_rows(conn, audit_id):
        if row.decided_at is not None:
            raise StateError(
                f"Audit {audit_id}'s grade was decided on challenge by {row.senior_moderator} "
                f"({row.grade}); that decision stands."
            )
        raise StateError(
            f"Audit {audit_id}'s grade is already challenged, waiting for {row.senior_moderator}."
        )
    challenge_id = new_id(
        conn.execute(
            challenges.insert().values(
                audit_id=audit_id,
                raised_at=now(),
                raised_by=by,
                reason=reason,
                senior_moderator=senior,
            )
        )
    )
    detail = f"by {by}: {reason}; to {senior}, senior moderator"
    record_event(conn, audit_id, "grade challenged", detail, user)
    return challenge_id


def decided_challenge(conn: sa.Connection, audit_id: str) -> Any:
    c = challenges.c
    return conn.execute(
        sa.select(challenges).where((c.audit_id == audit_id) & c.decided_at.is_not(None))
    ).first()


def decide_challenge(
    conn: sa.Connection, audit_id: str, grade: str, decision: str, user: str = ""
) -> None:
    """Mark the open challenge decided (the caller records the grade in this transaction)."""
    c = challenges.c
    done = conn.execute(
        challenges.update()
        .where((c.audit_id == audit_id) & c.decided_at.is_(None))
        .values(decided_at=now(), grade=grade, decision=decision)
    ).rowcount
    if done != 1:
        raise StateError(f"Audit {audit_id} has no open challenge to decide.")
    record_event(conn, audit_id, "challenge decided", f"{grade}: {decision}", user)
