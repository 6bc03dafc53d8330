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

from formtool.store.audits import new_id, record_event
from formtool.store.engine import actor, lock, now
from formtool.store.schema import audits, chosen_slots, concerns, programmes

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
    contacts: tuple[str, ...]
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
        tuple(c for c in row.contacts.split(",") if c),
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
    contacts: Iterable[str],
    return_id: int | None = None,
    user: str = "",
) -> Concern | None:
    """Record a concern and its event. One from returns per audit: a later return that
    still says Yes is the same concern (None: it was already raised)."""
    if (
        source == "return"
        and conn.execute(
            sa.select(_c.id).where((_c.audit_id == audit_id) & (_c.source == "return"))
        ).first()
    ):
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
                contacts=",".join(contacts),
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
