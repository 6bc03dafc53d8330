"""Every QA activity a programme names, not only the monthly case-file audit: a run of an
activity (a thematic audit on a theme, a month's dip samples, observations or supervision
audits) with its theme, owner, due date and the group's findings; each audit says which
activity and run it belongs to and whose work it looks at (a case, a supervisor, a
practitioner).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("activity", sa.String(30), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("theme", sa.Text, nullable=False, server_default=""),
        sa.Column("month", sa.String(7), nullable=False, index=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False, server_default=""),
        sa.Column("findings", sa.Text, nullable=False, server_default=""),
        sa.Column("chosen", sa.Text, nullable=False, server_default=""),
        sa.Column("review_of", sa.Integer, sa.ForeignKey("activity_runs.id"), nullable=True),
        sa.Column("on_demand", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("allocation_id", sa.Integer, sa.ForeignKey("allocations.id"), nullable=True),
        sa.Column("programme", sa.String(60), nullable=False, server_default=""),
        sa.Column("programme_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False, server_default=""),
    )
    with op.batch_alter_table("audits") as batch:
        batch.add_column(sa.Column("activity", sa.String(30), nullable=False, server_default=""))
        batch.add_column(sa.Column("run_id", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("subject_kind", sa.String(20), nullable=False, server_default="case")
        )
        batch.create_index("ix_audits_run_id", ["run_id"])
        batch.create_foreign_key("fk_audits_run_id", "activity_runs", ["run_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.drop_constraint("fk_audits_run_id", type_="foreignkey")
        batch.drop_index("ix_audits_run_id")
        batch.drop_column("subject_kind")
        batch.drop_column("run_id")
        batch.drop_column("activity")
    op.drop_table("activity_runs")
