"""Who prepares a two-stage audit (their address, for stage one) and which format each
auditor's form goes out in.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.add_column(
            sa.Column("preparer_email", sa.String(320), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("form_format", sa.String(8), nullable=False, server_default="docx")
        )


def downgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.drop_column("form_format")
        batch.drop_column("preparer_email")
