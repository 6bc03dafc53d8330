"""The access log: who signed in, and who saw or downloaded which personal data, when and from
where. Append-only: the application has no update path, and database triggers (migration 0007)
refuse UPDATE always and DELETE except inside `purge_access_log`, which logs itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from formtool.store.engine import now
from formtool.store.schema import access_log, access_log_purging

_a = access_log.c


def add_entry(
    conn: sa.Connection,
    user_name: str,
    action: str,
    audit_id: str | None = None,
    address: str = "",
    detail: str = "",
) -> None:
    conn.execute(
        access_log.insert().values(
            at=now(),
            user_name=user_name[:200],
            address=address[:64],
            action=action[:60],
            audit_id=audit_id[:80] if audit_id else None,
            detail=detail[:2000],
        )
    )


def entries(
    conn: sa.Connection,
    user_name: str | None = None,
    audit_id: str | None = None,
    since: dt.datetime | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Entries oldest first, filtered; with `limit`, the newest `limit` of them."""
    query = sa.select(access_log)
    if user_name is not None:
        query = query.where(_a.user_name.in_([user_name, f"web:{user_name}", f"cli:{user_name}"]))
    if audit_id is not None:
        query = query.where(_a.audit_id == audit_id)
    if since is not None:
        query = query.where(_a.at >= since)
    if limit is not None:
        newest = query.order_by(_a.id.desc()).limit(limit).subquery()
        return list(conn.execute(sa.select(newest).order_by(newest.c.id)).all())
    return list(conn.execute(query.order_by(_a.id)).all())


def purge_access_log(conn: sa.Connection, before: dt.datetime, user_name: str) -> int:
    """Remove entries older than `before` (the retention period) and record the purge itself.
    The only delete path: the triggers let it through while the marker row exists, and only
    inside this transaction."""
    conn.execute(access_log_purging.insert().values(id=1))
    removed = int(conn.execute(access_log.delete().where(_a.at < before)).rowcount)
    conn.execute(access_log_purging.delete())
    add_entry(
        conn,
        user_name,
        "access log purged",
        detail=f"{removed} entr{'y' if removed == 1 else 'ies'} older than {before:%Y-%m-%d}",
    )
    return removed
