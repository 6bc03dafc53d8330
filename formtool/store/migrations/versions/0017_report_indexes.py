"""Indexes on the columns the reports, lists and figures filter and sort by, for a council's
database of years of audits (100,000 and more): the audit list's team, state and due-date
filters and sort, the rare events (reopens, follow-up steps) the figures look up by name, and
the returns by content, which every import asks before it reads a file.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_audits_team", "audits", ["team"]),
    ("ix_audits_state", "audits", ["state"]),
    ("ix_audits_due_date", "audits", ["due_date"]),
    ("ix_audits_form_id", "audits", ["form_id"]),
    ("ix_events_event", "events", ["event"]),
    ("ix_returns_content_hash", "returns", ["content_hash"]),  # is this file in already?
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
