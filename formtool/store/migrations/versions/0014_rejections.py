"""Rejected returns leave a trace: every file an import rejected, against its audit when its
identity names one (with an event on the audit), else as an unmatched file until an officer
marks it dealt with; the same file again is counted on its row.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("audit_id", sa.String(80), nullable=True, index=True),
        sa.Column("claimed_id", sa.String(80), nullable=False, server_default=""),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sender", sa.String(400), nullable=False, server_default=""),
        sa.Column("sent_at", sa.DateTime, nullable=True),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("first_at", sa.DateTime, nullable=False),
        sa.Column("last_at", sa.DateTime, nullable=False),
        sa.Column("received_on", sa.Date, nullable=True),
        sa.Column("times", sa.Integer, nullable=False, server_default="1"),
        sa.Column("imported_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("returns_before", sa.Integer, nullable=False, server_default="0"),
        sa.Column("dealt_at", sa.DateTime, nullable=True),
        sa.Column("dealt_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("dealt_note", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("fingerprint", name="uq_rejections_fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("rejections")
