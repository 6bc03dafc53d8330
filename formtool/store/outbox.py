"""The outbox: every email is claimed in the database before it goes, so each goes once.

A send claims each audit's part in a message (a row of `outbox_claims`, unique per audit,
purpose and round) in one transaction, under the outbox lock, before anything leaves; the
message's outcome (sent, failed, or written as a draft) is recorded with the audit's event and
state change in another. So two sends at once, from the command line or the browser, cannot
both send the same thing: the second finds the first's claims and skips them.

SMTP cannot be exactly-once: if formtool stops after the server accepted a message and before
its outcome is recorded, the message stays `queued`. One queued for longer than
`UNKNOWN_AFTER` is `unknown`: it may have gone. It is reported ("check the Sent Items") and
never sent again on its own; the officer marks it sent or asks for it to be sent again.

A message whose claims a later one took over (a failed one tried again, an unknown one sent
again) is `superseded_by` that one: it stays as history with its own outcome. So a send that
took longer than `UNKNOWN_AFTER` and was sent again meanwhile by another run still settles its
message (and says that a second copy may have gone); the audits' events come from the message
that holds their claims now.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from formtool.store.audits import audit_state, move_state, new_id, record_event
from formtool.store.engine import actor, lock, now
from formtool.store.schema import AuditState, events, outbox, outbox_claims

#: A message queued this long with no outcome was cut off mid-send: its fate is unknown.
UNKNOWN_AFTER = dt.timedelta(minutes=10)
_o, _c = outbox.c, outbox_claims.c


class MessageState(StrEnum):
    queued = "queued"  # claimed; being sent now
    sent = "sent"
    failed = "failed"  # the server refused it (or the draft could not be written)
    unknown = "unknown"  # queued and never finished: it may have gone
    drafted = "drafted"  # written as an .eml draft; sent once the officer says so


M = MessageState


@dataclass(frozen=True)
class OutboxMessage:
    """One message and the audits whose claims it holds now."""

    id: int
    month: str
    purpose: str
    stage: str
    recipient: str
    subject: str
    state: MessageState
    attempts: int
    last_error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    user_name: str
    audit_ids: tuple[str, ...]
    superseded_by: int | None = None  # the later message that took its claims over


@dataclass(frozen=True)
class Claim:
    """What one claim got: the new message's id (None if nothing was left to claim), the
    audits it now carries, and for each audit left out the state of the message holding it."""

    message_id: int | None
    audit_ids: tuple[str, ...]
    held: dict[str, MessageState]


@dataclass(frozen=True)
class Delivery:
    """What a message's going means for one audit it carries: an event, and whether an audit
    still `allocated` becomes `sent`."""

    audit_id: str
    event: str
    detail: str = ""
    to_sent: bool = False


def _state(row: Any, at: dt.datetime) -> MessageState:
    state = MessageState(row.state)
    if state is M.queued and row.created_at < at - UNKNOWN_AFTER:
        return M.unknown
    return state


def _mark_stale(conn: sa.Connection) -> None:
    conn.execute(
        outbox.update()
        .where((_o.state == M.queued.value) & (_o.created_at < now() - UNKNOWN_AFTER))
        .values(
            state=M.unknown.value,
            last_error="no outcome was recorded: formtool stopped while sending it",
        )
    )


def held_claims(
    conn: sa.Connection, audit_ids: Collection[str], purposes: Collection[str], round_: str
) -> dict[tuple[str, str], MessageState]:
    """(audit id, purpose) -> the state of the message holding that claim."""
    at, found = now(), {}
    ids = list(audit_ids)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(_c.audit_id, _c.purpose, _o.state, _o.created_at)
            .join(outbox, _o.id == _c.message_id)
            .where(
                _c.audit_id.in_(ids[start : start + 500])
                & _c.purpose.in_(list(purposes))
                & (_c.round == round_)
            )
        )
        for row in rows:
            found[(row.audit_id, row.purpose)] = _state(row, at)
    return found


def claim(
    conn: sa.Connection,
    month: str,
    purpose: str,
    round_: str,
    stage: str,
    recipient: str,
    audit_ids: Iterable[str],
    subject_for: Callable[[tuple[str, ...]], str],
    user: str = "",
    again: Collection[MessageState] = (),
) -> Claim:
    """Claim these audits' part in one new `queued` message, under the outbox lock. An audit
    whose claim is held by a sent, queued, unknown or drafted message is left out (unknown and
    drafted ones are taken over when in `again`); one held by a failed message is taken over,
    so the next send tries it again; a message taken over is `superseded_by` the new one.
    `subject_for(claimed ids)` names the message; `user` defaults to whoever acts now."""
    lock(conn, "formtool outbox")
    _mark_stale(conn)
    wanted = list(dict.fromkeys(audit_ids))
    existing = {
        row.audit_id: row
        for row in conn.execute(
            sa.select(_c.audit_id, _c.message_id, _o.state, _o.attempts)
            .join(outbox, _o.id == _c.message_id)
            .where(_c.audit_id.in_(wanted) & (_c.purpose == purpose) & (_c.round == round_))
        )
    }
    takes = {M.failed, *again}
    claimed = tuple(
        a for a in wanted if a not in existing or MessageState(existing[a].state) in takes
    )
    held = {a: MessageState(existing[a].state) for a in wanted if a not in claimed}
    if not claimed:
        return Claim(None, (), held)
    message_id = new_id(
        conn.execute(
            outbox.insert().values(
                month=month,
                purpose=purpose,
                stage=stage,
                recipient=recipient,
                subject=subject_for(claimed),
                state=M.queued.value,
                attempts=1
                + max((existing[a].attempts for a in claimed if a in existing), default=0),
                created_at=now(),
                user_name=user or actor(),
            )
        )
    )
    taken = {existing[a].message_id for a in claimed if a in existing}
    if taken:
        conn.execute(
            outbox.update().where(_o.id.in_(sorted(taken))).values(superseded_by=message_id)
        )
    for audit_id in claimed:
        key = (_c.audit_id == audit_id) & (_c.purpose == purpose) & (_c.round == round_)
        if audit_id not in existing:
            conn.execute(
                outbox_claims.insert().values(
                    audit_id=audit_id, purpose=purpose, round=round_, message_id=message_id
                )
            )
        elif (
            conn.execute(
                outbox_claims.update()
                .where(key & (_c.message_id == existing[audit_id].message_id))
                .values(message_id=message_id)
            ).rowcount
            != 1
        ):  # pragma: no cover - the outbox lock makes this impossible
            raise RuntimeError(f"the claim of {audit_id} changed under the outbox lock")
    return Claim(message_id, claimed, held)


def _message(conn: sa.Connection, message_id: int) -> OutboxMessage:
    """The message by its id, with the audits whose claims it holds now (none, once a later
    message took them all over)."""
    row = conn.execute(sa.select(outbox).where(_o.id == message_id)).one()
    held = conn.execute(
        sa.select(_c.audit_id).where(_c.message_id == message_id).order_by(_c.audit_id)
    ).scalars()
    return _build(row, tuple(held), now())


def _build(row: Any, audit_ids: tuple[str, ...], at: dt.datetime) -> OutboxMessage:
    return OutboxMessage(
        row.id,
        row.month,
        row.purpose,
        row.stage,
        row.recipient,
        row.subject,
        _state(row, at),
        row.attempts,
        row.last_error,
        row.created_at,
        row.sent_at,
        row.user_name,
        audit_ids,
        row.superseded_by,
    )


def _record(conn: sa.Connection, deliveries: Iterable[Delivery], user: str) -> None:
    """Each delivery's event; an audit still `allocated` becomes `sent` where it says so (an
    audit that moved on meanwhile keeps its state)."""
    for d in deliveries:
        if d.to_sent and audit_state(conn, d.audit_id) is AuditState.allocated:
            move_state(
                conn, d.audit_id, [AuditState.allocated], AuditState.sent, d.event, d.detail, user
            )
        else:
            record_event(conn, d.audit_id, d.event, d.detail, user)


def settle(
    conn: sa.Connection,
    message_id: int,
    state: MessageState,
    deliveries: Callable[[OutboxMessage], Iterable[Delivery]],
    user: str = "",
    error: str = "",
) -> OutboxMessage:
    """A claimed message's outcome, on its own row: `sent` or `drafted`, with what that
    means for the audits whose claims it still holds (`deliveries` of the message as it is
    now: events, `allocated` -> `sent`); or `failed` or `unknown` with the reason, and nothing
    else (the claims stay with the message). A message found unknown meanwhile (it took that
    long) may still be sent: the reason it was unknown goes. One superseded meanwhile (another
    run sent it again) keeps its outcome as history and holds no claims: check
    `superseded_by` (a second copy may have gone)."""
    values: dict[str, Any] = {"state": state.value}
    if state is M.sent:
        values["sent_at"] = now()
    if error or state in (M.sent, M.drafted):
        values["last_error"] = error
    conn.execute(outbox.update().where(_o.id == message_id).values(**values))
    message = _message(conn, message_id)
    if state in (M.sent, M.drafted):
        _record(conn, deliveries(message), user)
    return message


def mark_sent(
    conn: sa.Connection,
    month: str | None,
    deliveries: Callable[[OutboxMessage], Iterable[Delivery]],
    user: str = "",
    audit_ids: Collection[str] | None = None,
    purposes: Collection[str] | None = None,
    round_: str | None = None,
) -> list[OutboxMessage]:
    """The officer says these went: each becomes `sent`, with its deliveries' events and
    state changes. Without `audit_ids`, every .eml draft of the month; with them, the
    month's drafts and unknown messages that carry any of those audits (a whole message: it
    is one email). `purposes` and `round_` narrow it to one kind (a day's chases, one
    amendment request); `month` None: any month."""
    lock(conn, "formtool outbox")
    _mark_stale(conn)
    named = None if audit_ids is None else set(audit_ids)
    found = [
        m
        for m in messages(conn, month, purposes, round_)
        if (
            m.state is M.drafted
            if named is None
            else m.state in (M.drafted, M.unknown) and not named.isdisjoint(m.audit_ids)
        )
    ]
    return [settle(conn, m.id, M.sent, deliveries, user) for m in found]


def messages(
    conn: sa.Connection,
    month: str | None = None,
    purposes: Collection[str] | None = None,
    round_: str | None = None,
) -> list[OutboxMessage]:
    """Messages that hold claims now (a message whose claims a later one took over is
    history), oldest first; a queued one past UNKNOWN_AFTER shows as unknown."""
    query = sa.select(outbox, _c.audit_id).join(outbox_claims, _c.message_id == _o.id)
    if month is not None:
        query = query.where(_o.month == month)
    if purposes is not None:
        query = query.where(_c.purpose.in_(list(purposes)))
    if round_ is not None:
        query = query.where(_c.round == round_)
    rows: dict[int, Any] = {}
    carried: dict[int, list[str]] = defaultdict(list)
    for row in conn.execute(query.order_by(_o.id, _c.audit_id)):
        rows[row.id] = row
        carried[row.id].append(row.audit_id)
    at = now()
    return [_build(row, tuple(carried[row.id]), at) for row in rows.values()]


def events_named(
    conn: sa.Connection, audit_ids: Collection[str], names: Collection[str]
) -> dict[str, list[tuple[dt.datetime, str]]]:
    """Audit id -> its events of these names as (time, name), oldest first. For many audits
    (a year's), the events of these names are read and sorted here: the names are rare
    (reopens, follow-up steps) and one query beats a hundred lists of ids."""
    found: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    ids = list(audit_ids)
    query = sa.select(events.c.audit_id, events.c.at, events.c.event).order_by(events.c.id)
    if len(ids) > 2000:
        wanted = set(ids)
        for row in conn.execute(query.where(events.c.event.in_(list(names)))):
            if row.audit_id in wanted:
                found[row.audit_id].append((row.at, row.event))
        return dict(found)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            query.where(events.c.audit_id.in_(chunk) & events.c.event.in_(list(names)))
        ):
            found[row.audit_id].append((row.at, row.event))
    return dict(found)
