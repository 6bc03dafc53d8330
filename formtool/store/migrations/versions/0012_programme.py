"""A council's programme as data: the active programme policy kept as versioned snapshots;
each allocation records the policy and version it ran under and the chosen slots it left for
managers to name; an audit keeps its original due date beside the current one (an amendment
moves it); a return keeps the programme's date it came in (deadlines run from it); immediate
concerns for a child's safety are recorded with the action taken; an audit's grade may be
challenged and decided by a senior moderator; an audit may be exempted, or reassigned to
another auditor (a new copy of its form; the copies it had before are kept, so a return of
one is recognised and held for an officer).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "programmes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("name", "version", name="uq_programmes_name_version"),
    )
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("programme", sa.String(60), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("programme_version", sa.Integer, nullable=False, server_default="0")
        )
    with op.batch_alter_table("returns") as batch:
        batch.add_column(sa.Column("received_on", sa.Date, nullable=True))
    with op.batch_alter_table("audits") as batch:
        batch.add_column(sa.Column("original_due_date", sa.Date, nullable=True))
        batch.add_column(sa.Column("copy", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "audit_copies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
        ),
        sa.Column("copy", sa.Integer, nullable=False),
        sa.Column("auditor", sa.String(200), nullable=False),
        sa.Column("auditor_email", sa.String(320), nullable=False, server_default=""),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("checksum", sa.String(32), nullable=False),
        sa.Column("checksum_scheme", sa.String(10), nullable=False),
        sa.Column("replaced_at", sa.DateTime, nullable=False),
        sa.Column("replaced_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "chosen_slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False, index=True),
        sa.Column("allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), nullable=True),
        sa.Column("auditor", sa.String(200), nullable=False),
        sa.Column("sample", sa.String(200), nullable=False),
        sa.Column("form_id", sa.String(60), nullable=False),
        sa.Column("team", sa.String(200), nullable=False, server_default=""),
        sa.Column("audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "challenges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
        ),
        sa.Column("raised_at", sa.DateTime, nullable=False),
        sa.Column("raised_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("senior_moderator", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime, nullable=True),
        sa.Column("grade", sa.String(80), nullable=False, server_default=""),
        sa.Column("decision", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "concerns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id", sa.String(80), sa.ForeignKey("audits.audit_id"), nullable=False, index=True
        ),
        sa.Column("return_id", sa.Integer, sa.ForeignKey("returns.id"), nullable=True),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("team", sa.String(200), nullable=False, server_default=""),
        sa.Column("details", sa.Text, nullable=False, server_default=""),
        sa.Column("told", sa.Text, nullable=False, server_default=""),
        sa.Column("raised_at", sa.DateTime, nullable=False),
        sa.Column("raised_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("action_taken", sa.Text, nullable=False, server_default=""),
        sa.Column("action_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("action_at", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("concerns")
    op.drop_table("challenges")
    op.drop_table("chosen_slots")
    op.drop_table("audit_copies")
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("received_on")
    with op.batch_alter_table("audits") as batch:
        batch.drop_column("copy")
        batch.drop_column("original_due_date")
    with op.batch_alter_table("allocations") as batch:
        batch.drop_column("programme_version")
        batch.drop_column("programme")
    op.drop_table("programmes")
