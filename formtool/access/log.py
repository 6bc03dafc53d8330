"""Who saw what: every sign-in (and failure), sign-out, and every view or download of personal
data (an audit page, a return file, a file pack, forms, email drafts, a PMU pack with case
numbers, an export) is recorded with the user, the time, the address, what and which audit.

The log is append-only for the application: there is no update or delete here, and the
database refuses both (triggers), except the retention purge, which records itself. Kept for
`access_log_days` (settings; 730 by default), then removed by `purge`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from formtool.store import Store


@dataclass(frozen=True)
class AccessEntry:
    at: dt.datetime  # UTC
    user: str  # web:NAME for the workspace, cli:LOGIN for the command line
    address: str
    action: str
    audit_id: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat() + "Z",
            "user": self.user,
            "address": self.address,
            "action": self.action,
            "audit_id": self.audit_id,
            "detail": self.detail,
        }


def record_access(
    db: Store,
    user: str,
    action: str,
    audit_id: str | None = None,
    address: str = "",
    detail: str = "",
) -> None:
    db.log_access(user, action, audit_id, address, detail)


def access_entries(
    db: Store,
    user: str | None = None,
    audit_id: str | None = None,
    since: dt.date | None = None,
    limit: int | None = None,
) -> list[AccessEntry]:
    """Entries oldest first (the newest `limit`, when given)."""
    start = dt.datetime.combine(since, dt.time()) if since else None
    rows = db.access_entries(user, audit_id, start, limit)
    return [AccessEntry(r.at, r.user_name, r.address, r.action, r.audit_id, r.detail) for r in rows]


def purge(db: Store, keep_days: int, user: str) -> int:
    """Remove entries older than `keep_days` (the only delete path; it logs itself)."""
    return db.purge_access_log(keep_days, user)
