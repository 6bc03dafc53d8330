"""The outbox: every email claimed in the database before it goes, so each is sent once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


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


def downgrade() -> None:
    op.drop_table("outbox_claims")
    op.drop_table("outbox")
