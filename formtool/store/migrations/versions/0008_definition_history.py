"""Definition snapshots for form versions that generated audits before snapshots existed.

Databases made before schema 0004 hold audits of form versions they have no snapshot of, so
their forms still out with auditors were refused on return and packs could not count them.
Each such version is filled in from the definitions formtool shipped (frozen in
formtool/definitions/history), or else from the team's forms folder when it holds that very
version. Anything still unknown is left for the packs and `formtool forms check` to name.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

audits = sa.table("audits", sa.column("form_id"), sa.column("form_version"))
form_versions = sa.table(
    "form_versions",
    sa.column("form_id"),
    sa.column("version"),
    sa.column("digest"),
    sa.column("definition"),
    sa.column("created_at"),
)


def upgrade() -> None:
    from formtool.store.catalog import pre_snapshot_definition

    conn = op.get_bind()
    kept = set(conn.execute(sa.select(form_versions.c.form_id, form_versions.c.version)).all())
    used = conn.execute(sa.select(audits.c.form_id, audits.c.form_version).distinct()).all()
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)  # real time
    for form_id, version in sorted(set(used) - kept):
        form = pre_snapshot_definition(form_id, version)
        if form is not None:
            conn.execute(
                form_versions.insert().values(
                    form_id=form_id,
                    version=version,
                    digest=form.digest,
                    definition=form.snapshot,
                    created_at=stamp,
                )
            )


def downgrade() -> None:
    pass  # the snapshots are true whatever the schema: keep them
