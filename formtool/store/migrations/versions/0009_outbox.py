"""The outbox: every email claimed in the database before it goes, so each is sent once.

The outbox starts with what the audit history says was already sent, so an upgrade sends
nothing twice: before the outbox, each email left only events, "to ADDRESS" in their detail.

- distribution: an audit's first `sent` (or, two-stage, `sent to preparer`) event before it
  was picked for audit;
- picked for audit: a two-stage audit's first `sent` event after its `selected for audit`;
- chase: every `chased` event, one claim per audit per day (the round, as chases have now:
  the day of the event, in UTC as events are stored).

One `sent` message stands for each (audit's month, purpose, stage, recipient, day), as one
send grouped them per auditor; its time and user are the first event's, its subject says it
was recorded from the history. Drafts written before the upgrade were recorded as `sent`
then, so they count as sent.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

HISTORY_SUBJECT = "(recorded from the audit history when formtool was upgraded)"

events = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("audit_id", sa.String),
    sa.column("at", sa.DateTime),
    sa.column("event", sa.String),
    sa.column("detail", sa.Text),
    sa.column("user_name", sa.String),
)
audits = sa.table("audits", sa.column("audit_id", sa.String), sa.column("month", sa.String))
outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("month", sa.String),
    sa.column("purpose", sa.String),
    sa.column("stage", sa.String),
    sa.column("recipient", sa.String),
    sa.column("subject", sa.Text),
    sa.column("state", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("last_error", sa.Text),
    sa.column("created_at", sa.DateTime),
    sa.column("sent_at", sa.DateTime),
    sa.column("user_name", sa.String),
)
claims = sa.table(
    "outbox_claims",
    sa.column("audit_id", sa.String),
    sa.column("purpose", sa.String),
    sa.column("round", sa.String),
    sa.column("message_id", sa.Integer),
)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("purpose", sa.String(30), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False, server_default="audit"),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=True),
        sa.Column("user_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("superseded_by", sa.Integer, nullable=True),
    )
    op.create_index("ix_outbox_month", "outbox", ["month"])
    op.create_table(
        "outbox_claims",
        sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False),
        sa.Column("purpose", sa.String(30), nullable=False),
        sa.Column("round", sa.String(40), nullable=False, server_default=""),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("outbox.id"), nullable=False),
        sa.UniqueConstraint("audit_id", "purpose", "round", name="uq_outbox_claims_once"),
    )
    op.create_index("ix_outbox_claims_message_id", "outbox_claims", ["message_id"])
    _fill_from_history(op.get_bind())


def _sent_before(conn: sa.Connection) -> dict[tuple[Any, ...], list[Any]]:
    """(month, purpose, stage, recipient, day) -> its claims as (audit id, round, event)."""
    rows = conn.execute(
        sa.select(
            events.c.audit_id, events.c.at, events.c.event, events.c.detail, events.c.user_name
        )
        .add_columns(audits.c.month)
        .join(audits, audits.c.audit_id == events.c.audit_id)
        .where(events.c.event.in_(["sent", "sent to preparer", "chased", "selected for audit"]))
        .order_by(events.c.id)
    )
    distributed, picked, selected = set(), set(), set()
    chased: set[tuple[str, str]] = set()
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        day = row.at.date()
        if row.event == "selected for audit":
            selected.add(row.audit_id)
            continue
        if row.event == "chased":
            if (row.audit_id, day.isoformat()) in chased:
                continue
            chased.add((row.audit_id, day.isoformat()))
            purpose, stage, round_ = "chase", "audit", day.isoformat()
        elif row.audit_id in selected:
            if row.audit_id in picked or row.event != "sent":
                continue
            picked.add(row.audit_id)
            purpose, stage, round_ = "picked_for_audit", "audit", ""
        else:
            if row.audit_id in distributed:
                continue
            distributed.add(row.audit_id)
            stage = "prepare" if row.event == "sent to preparer" else "audit"
            purpose, round_ = "distribution", ""
        recipient = row.detail[3:] if row.detail.startswith("to ") else row.detail
        key = (row.month, purpose, stage, recipient.strip(), day)
        groups.setdefault(key, []).append((row.audit_id, round_, row))
    return groups


def _fill_from_history(conn: sa.Connection) -> None:
    for (month, purpose, stage, recipient, _), found in _sent_before(conn).items():
        first = found[0][2]
        message_id = conn.execute(
            outbox.insert()
            .values(
                month=month,
                purpose=purpose,
                stage=stage,
                recipient=recipient[:320],
                subject=HISTORY_SUBJECT,
                state="sent",
                attempts=1,
                last_error="",
                created_at=first.at,
                sent_at=first.at,
                user_name=first.user_name or "not recorded",
            )
            .returning(outbox.c.id)
        ).scalar_one()
        conn.execute(
            claims.insert(),
            [
                {"audit_id": a, "purpose": purpose, "round": r, "message_id": message_id}
                for a, r, _ in found
            ],
        )


def downgrade() -> None:
    op.drop_table("outbox_claims")
    op.drop_table("outbox")
