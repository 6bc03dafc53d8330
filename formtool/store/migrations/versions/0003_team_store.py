"""A team store: one current return per audit, returns ordered by saved date, allocation
batches, and the user behind every event.

Databases hurt by concurrent imports before this revision can hold two current returns for
one audit; the newest (by id) stays current and the others become history before the unique
index is made.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False, index=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("audits", sa.Integer, nullable=False),
        sa.Column("replaced", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("audits") as batch:
        batch.add_column(sa.Column("allocation_id", sa.Integer, nullable=True))
        batch.create_index("ix_audits_allocation_id", ["allocation_id"])
        batch.create_foreign_key("fk_audits_allocation", "allocations", ["allocation_id"], ["id"])
    with op.batch_alter_table("returns") as batch:
        batch.add_column(sa.Column("saved_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("sender", sa.String(400), nullable=False, server_default=""))
        batch.add_column(sa.Column("sent_at", sa.DateTime, nullable=True))
        batch.add_column(
            sa.Column("message_name", sa.String(500), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("stage", sa.String(12), nullable=False, server_default="audit"))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("user_name", sa.String(200), nullable=False, server_default=""))
    op.execute("UPDATE returns SET saved_at = imported_at")
    op.execute(
        "UPDATE returns SET is_current = false WHERE is_current AND id < "
        "(SELECT max(r2.id) FROM returns r2 WHERE r2.audit_id = returns.audit_id "
        "AND r2.is_current)"
    )
    op.create_index(
        "uq_returns_one_current",
        "returns",
        ["audit_id"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )


def downgrade() -> None:
    op.drop_index("uq_returns_one_current", "returns")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("user_name")
    with op.batch_alter_table("returns") as batch:
        for column in ("stage", "message_name", "sent_at", "sender", "saved_at"):
            batch.drop_column(column)
    with op.batch_alter_table("audits") as batch:
        batch.drop_constraint("fk_audits_allocation", type_="foreignkey")
        batch.drop_index("ix_audits_allocation_id")
        batch.drop_column("allocation_id")
    op.drop_table("allocations")
