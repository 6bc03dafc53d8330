"""Returns as the auditor meant them: each audit records how its identity checksum is made
(audits before this keep the unkeyed scheme until closed), a return may be held (from a
stranger's address, or arriving after the audit was accepted), and a reopened audit's
moderation and sign-off events are marked superseded rather than deleted.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.add_column(
            sa.Column("checksum_scheme", sa.String(10), nullable=False, server_default="sha256")
        )
    with op.batch_alter_table("returns") as batch:
        batch.add_column(sa.Column("held", sa.String(20), nullable=False, server_default=""))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("superseded_by", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("superseded_by")
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("held")
    with op.batch_alter_table("audits") as batch:
        batch.drop_column("checksum_scheme")
