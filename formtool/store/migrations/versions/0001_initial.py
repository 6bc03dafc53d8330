"""Initial schema: audits, returns, answers, actions, grades, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audits",
        sa.Column("audit_id", sa.String(80), primary_key=True),
        sa.Column("form_id", sa.String(60), nullable=False),
        sa.Column("form_version", sa.Integer, nullable=False),
        sa.Column("case_number", sa.String(80), nullable=False, index=True),
        sa.Column("auditor", sa.String(200), nullable=False, index=True),
        sa.Column("team", sa.String(200), nullable=False, server_default=""),
        sa.Column("worker", sa.String(200), nullable=False, server_default=""),
        sa.Column("manager", sa.String(200), nullable=False, server_default=""),
        sa.Column("month", sa.String(7), nullable=False, index=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("state", sa.String(30), nullable=False, server_default="allocated"),
        sa.Column("checksum", sa.String(32), nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
        ),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("supersedes", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.Column("method", sa.String(30), nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),
        sa.UniqueConstraint("audit_id", "content_hash", name="uq_returns_audit_content"),
    )
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=False, index=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.Text, nullable=False, server_default=""),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("return_id", "key", name="uq_answers_return_key"),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=False, index=True),
        sa.Column("table_key", sa.String(200), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("recommendation", sa.Text, nullable=False, server_default=""),
        sa.Column("action", sa.Text, nullable=False, server_default=""),
        sa.Column("responsible_role", sa.String(200), nullable=False, server_default=""),
        sa.Column("responsible_person", sa.String(200), nullable=False, server_default=""),
        sa.Column("due_date", sa.Date, nullable=True),
        sa.Column("sign_off", sa.String(200), nullable=False, server_default=""),
        sa.Column("sign_off_date", sa.Date, nullable=True),
        sa.Column("comments", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "grades",
        sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), primary_key=True),
        sa.Column("auditor_grade", sa.String(80), nullable=False, server_default=""),
        sa.Column("moderated_grade", sa.String(80), nullable=False, server_default=""),
        sa.Column("moderated_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("moderated_at", sa.DateTime, nullable=True),
        sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
        ),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("events", "grades", "actions", "answers", "returns", "audits"):
        op.drop_table(table)
