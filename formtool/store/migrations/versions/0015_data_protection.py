"""Data protection through the data's life: files formtool wrote to disk (so retention can
remove them), anonymised period summaries (reported figures survive removal), the register of
data-protection requests, return originals that retention removed, TOTP and council sign-in
for accounts, pending OpenID Connect sign-ins, and redaction of the access log by an erasure.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APPEND_ONLY = "access_log is append-only: only the retention purge removes entries"


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("audit_id", sa.String(80), nullable=True),
        sa.Column("case_number", sa.String(80), nullable=True),
        sa.Column("month", sa.String(7), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("written_at", sa.DateTime, nullable=False),
        sa.Column("written_on", sa.Date, nullable=True),
        sa.Column("written_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("removed_at", sa.DateTime, nullable=True),
        sa.Column("removed_why", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_stored_files_audit_id", "stored_files", ["audit_id"])
    op.create_index("ix_stored_files_case_number", "stored_files", ["case_number"])
    op.create_index("ix_stored_files_kind_written", "stored_files", ["kind", "written_on"])
    op.create_table(
        "period_summaries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("form_id", sa.String(60), nullable=False),
        sa.Column("team", sa.String(200), nullable=False, server_default=""),
        sa.Column("measure", sa.String(40), nullable=False),
        sa.Column("value", sa.String(200), nullable=False, server_default=""),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint(
            "month", "form_id", "team", "measure", "value", name="uq_period_summaries_cell"
        ),
    )
    op.create_table(
        "data_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("subject", sa.String(30), nullable=False, server_default=""),
        sa.Column("reference", sa.String(200), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("authorised_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("done_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("done_at", sa.DateTime, nullable=False),
        sa.Column("done_on", sa.Date, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    with op.batch_alter_table("returns") as batch:
        batch.add_column(sa.Column("content_removed_at", sa.DateTime, nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("totp_enrolled_at", sa.DateTime, nullable=True))
        batch.add_column(
            sa.Column("totp_last_step", sa.BigInteger, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("source", sa.String(10), nullable=False, server_default="local"))
        batch.add_column(
            sa.Column("oidc_subject", sa.String(400), nullable=False, server_default="")
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("method", sa.String(20), nullable=False, server_default="password")
        )
    op.create_table(
        "oidc_sign_ins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(130), nullable=False),
        sa.Column("next", sa.String(2000), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    _access_log_redaction()


def _access_log_redaction() -> None:
    """An erasure or correction may rewrite an entry's text (never its time, user or action's
    existence): the update trigger lets it through while marker row 2 exists, as the delete
    trigger does for the purge's marker."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION formtool_access_log_append_only() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM access_log_purging) THEN
                RETURN OLD;
              END IF;
              IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM access_log_purging WHERE id = 2)
              THEN
                RETURN NEW;
              END IF;
              RAISE EXCEPTION '{APPEND_ONLY}';
            END
            $$ LANGUAGE plpgsql
            """
        )
        return
    op.execute("DROP TRIGGER access_log_no_update")
    op.execute(
        "CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log "
        "WHEN NOT EXISTS (SELECT 1 FROM access_log_purging WHERE id = 2) "
        f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION formtool_access_log_append_only() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM access_log_purging) THEN
                RETURN OLD;
              END IF;
              RAISE EXCEPTION '{APPEND_ONLY}';
            END
            $$ LANGUAGE plpgsql
            """
        )
    else:
        op.execute("DROP TRIGGER access_log_no_update")
        op.execute(
            "CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )
    op.drop_table("oidc_sign_ins")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("method")
    with op.batch_alter_table("users") as batch:
        for column in ("oidc_subject", "source", "totp_last_step", "totp_enrolled_at"):
            batch.drop_column(column)
        batch.drop_column("totp_secret")
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("content_removed_at")
    op.drop_table("data_requests")
    op.drop_table("period_summaries")
    op.drop_table("stored_files")
