"""Several workers on one database: allocation previews with their uploaded files, the
workspace's shared state (the reports' generation, the last allocation shown) and the claims
that give each background duty to one worker.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allocation_previews",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("user_name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_allocation_previews_created_at", "allocation_previews", ["created_at"])
    op.create_table(
        "allocation_preview_files",
        sa.Column(
            "token_hash",
            sa.String(64),
            sa.ForeignKey("allocation_previews.token_hash", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "workspace_state",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("value", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "duty_claims",
        sa.Column("duty", sa.String(80), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("host", sa.String(200), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("duty_claims")
    op.drop_table("workspace_state")
    op.drop_table("allocation_preview_files")
    op.drop_index("ix_allocation_previews_created_at", "allocation_previews")
    op.drop_table("allocation_previews")
