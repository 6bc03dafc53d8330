"""Web forms: the private links auditors fill a tool through (only the token's and the
one-time code's SHA-256 kept), the short sessions a code buys, and the drafts a form saves
before it is submitted. Removing an audit removes its links, sessions and drafts (cascade).
A web return keeps the PDF of its answers beside its JSON (returns.receipt, receipt_hash).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id",
            sa.String(80),
            sa.ForeignKey("audits.audit_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("copy", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_on", sa.Date, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        sa.Column("revoked_reason", sa.String(40), nullable=False, server_default=""),
        sa.Column("code_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("code_expires_at", sa.DateTime, nullable=True),
        sa.Column("code_tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("codes_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("codes_window_start", sa.DateTime, nullable=True),
        sa.Column("wrong_codes", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_web_links_audit_id", "web_links", ["audit_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column(
            "link_id",
            sa.Integer,
            sa.ForeignKey("web_links.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_web_sessions_link_id", "web_sessions", ["link_id"])
    op.create_table(
        "web_drafts",
        sa.Column(
            "audit_id",
            sa.String(80),
            sa.ForeignKey("audits.audit_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("stage", sa.String(12), primary_key=True),
        sa.Column("values_json", sa.Text, nullable=False),
        sa.Column("saved_at", sa.DateTime, nullable=False),
    )
    # A web return's PDF of the answers as submitted, kept beside its canonical JSON.
    op.add_column("returns", sa.Column("receipt", sa.LargeBinary, nullable=True))
    op.add_column(
        "returns", sa.Column("receipt_hash", sa.String(64), nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("receipt_hash")
        batch.drop_column("receipt")
    op.drop_table("web_drafts")
    op.drop_index("ix_web_sessions_link_id", "web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_web_links_audit_id", "web_links")
    op.drop_table("web_links")
