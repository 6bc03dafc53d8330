"""Definition snapshots: every form version that generated forms, kept as it was."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from formtool.store.engine import now
from formtool.store.schema import form_versions

_v = form_versions.c


def save_snapshot(
    conn: sa.Connection, form_id: str, version: int, digest: str, definition: str
) -> str | None:
    """Keep this version's definition. Returns the digest already stored for the same
    version when it differs (the definition changed without a new version), else None."""
    stored = conn.execute(
        sa.select(_v.digest).where((_v.form_id == form_id) & (_v.version == version))
    ).scalar()
    if stored is None:
        conn.execute(
            form_versions.insert().values(
                form_id=form_id,
                version=version,
                digest=digest,
                definition=definition,
                created_at=now(),
            )
        )
        return None
    return None if stored == digest else str(stored)


def snapshot(conn: sa.Connection, form_id: str, version: int) -> Any:
    return conn.execute(
        sa.select(form_versions).where((_v.form_id == form_id) & (_v.version == version))
    ).first()


def snapshots(conn: sa.Connection) -> list[Any]:
    return list(
        conn.execute(
            sa.select(_v.form_id, _v.version, _v.digest, _v.created_at).order_by(
                _v.form_id, _v.version
            )
        ).all()
    )
