"""The running server's heartbeat: `formtool serve` keeps one `server_heartbeat` row fresh
(every 30 s; removed when it stops cleanly), which is how restore knows a server holds the
database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from formtool.store.copies import BackupError
from formtool.store.engine import now
from formtool.store.schema import server_heartbeat

#: How long a server's heartbeat counts as running (serve refreshes it every 30 s).
FRESH = dt.timedelta(minutes=2)


def beat(conn: sa.Connection, server: str, host: str, pid: int) -> None:
    """Say that server `server` (host, process) is running now; forget servers not seen for
    a day (stopped without a clean shutdown)."""
    at = now()
    h = server_heartbeat.c
    updated = conn.execute(
        server_heartbeat.update().where(h.server == server).values(seen_at=at)
    ).rowcount
    if not updated:
        conn.execute(
            server_heartbeat.insert().values(
                server=server, host=host[:200], pid=pid, started_at=at, seen_at=at
            )
        )
    conn.execute(server_heartbeat.delete().where(h.seen_at < at - dt.timedelta(days=1)))


def stopped(conn: sa.Connection, server: str) -> None:
    conn.execute(server_heartbeat.delete().where(server_heartbeat.c.server == server))


def running_servers(conn: sa.Connection) -> list[Any]:
    """The servers seen within FRESH: (server, host, pid, started_at, seen_at)."""
    if not sa.inspect(conn).has_table(server_heartbeat.name):
        return []  # a database from before schema 0010
    h = server_heartbeat.c
    query = sa.select(server_heartbeat).where(h.seen_at >= now() - FRESH)
    return list(conn.execute(query.order_by(h.started_at, h.host, h.pid)).all())


def refuse_running(servers: list[Any], target: str) -> None:
    if not servers:
        return
    first = servers[0]
    ago = max(0, int((now() - first.seen_at).total_seconds()))
    more = f" (and {len(servers) - 1} more)" if len(servers) > 1 else ""
    raise BackupError(
        f"A formtool server is using {target}: on {first.host}, process {first.pid}, running "
        f"since {first.started_at:%Y-%m-%d %H:%M} UTC, last seen {ago} s ago{more}. Stop it "
        "(Ctrl+C where it runs, or stop its service), then run restore again; a server that "
        f"stopped without a clean shutdown counts for {FRESH.seconds // 60} minutes after it "
        "was last seen. Nothing was changed."
    )
