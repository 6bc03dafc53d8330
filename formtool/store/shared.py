"""What several `formtool serve` workers (processes, or hosts behind a proxy) share through the
database rather than memory, so a request may land on any of them:

- allocation previews and their uploaded files: previewed on one worker, confirmed on any
  (`save_preview`, `allocation_preview`, `drop_preview`), gone after a few hours;
- the workspace's small shared state: a generation counter bumped on every change, against
  which each worker checks its cached reports (`bump_generation`, `generation`), and short
  texts such as the last allocation confirmed for a month (`put_state`, `state_text`);
- background duties claimed once per day across all workers (`claim_duty`): the first to
  insert the (duty, day) row does it, the others see it taken.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from formtool.store.engine import now
from formtool.store.schema import (
    allocation_preview_files,
    allocation_previews,
    duty_claims,
    workspace_state,
)
from formtool.store.units import Units

_p, _f, _w, _d = allocation_previews.c, allocation_preview_files.c, workspace_state.c, duty_claims.c

#: Claims older than this are forgotten when a new one is made (they only stop a second run).
CLAIMS_KEPT = dt.timedelta(days=40)


@dataclass(frozen=True)
class StoredPreview:
    """An allocation preview as saved: its choices and uploaded files (key -> name, bytes)."""

    month: str
    seed: int
    user: str
    created_at: dt.datetime
    files: dict[str, tuple[str, bytes]]


class SharedStore(Units):
    """The workspace's state shared by every worker (see the module docstring)."""

    def after_fork(self) -> None:
        """In a forked worker: leave the parent's pooled connections to the parent (a
        connection shared by two processes corrupts both) and open new ones as needed."""
        self.engine.dispose(close=False)

    # --- allocation previews ---------------------------------------------------------------

    def save_preview(
        self,
        token_hash: str,
        month: str,
        seed: int,
        user: str,
        files: dict[str, tuple[str, bytes]],
        expired_before: dt.datetime,
    ) -> None:
        """Keep a preview (by its token's SHA-256) with its files; previews made before
        `expired_before` (UTC) are removed in the same transaction."""
        with self._write() as conn:
            _purge_previews(conn, expired_before)
            conn.execute(
                allocation_previews.insert().values(
                    token_hash=token_hash, month=month, seed=seed, user_name=user, created_at=now()
                )
            )
            if files:
                conn.execute(
                    allocation_preview_files.insert(),
                    [
                        {"token_hash": token_hash, "key": k, "name": name[:255], "content": data}
                        for k, (name, data) in files.items()
                    ],
                )

    def allocation_preview(
        self, token_hash: str, user: str, made_after: dt.datetime
    ) -> StoredPreview | None:
        """The preview of this token made by `user` after `made_after` (UTC), or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(allocation_previews).where(
                    _p.token_hash == token_hash, _p.user_name == user, _p.created_at > made_after
                )
            ).first()
            if row is None:
                return None
            files = conn.execute(
                sa.select(_f.key, _f.name, _f.content).where(_f.token_hash == token_hash)
            ).all()
        return StoredPreview(
            row.month,
            int(row.seed),
            row.user_name,
            row.created_at,
            {f.key: (f.name, bytes(f.content)) for f in files},
        )

    def drop_preview(self, token_hash: str) -> bool:
        """Remove a preview (confirmed, or given up); False if it was already gone."""
        with self._write() as conn:
            conn.execute(allocation_preview_files.delete().where(_f.token_hash == token_hash))
            gone = conn.execute(allocation_previews.delete().where(_p.token_hash == token_hash))
        return bool(gone.rowcount)

    def purge_previews(self, expired_before: dt.datetime) -> int:
        """Remove the previews made before `expired_before` (UTC); how many."""
        with self._write() as conn:
            return _purge_previews(conn, expired_before)

    # --- shared state ----------------------------------------------------------------------

    def bump_generation(self, name: str) -> int:
        """Move `name`'s generation on by one (in its own small transaction); the new one."""
        with self._write() as conn:
            done = conn.execute(
                workspace_state.update()
                .where(_w.name == name)
                .values(generation=_w.generation + 1, updated_at=now())
            ).rowcount
            if not done and not _insert_state(conn, name, generation=1):
                conn.execute(
                    workspace_state.update()
                    .where(_w.name == name)
                    .values(generation=_w.generation + 1, updated_at=now())
                )
            found = conn.execute(sa.select(_w.generation).where(_w.name == name)).scalar()
        return int(found or 0)

    def generation(self, name: str) -> int:
        """`name`'s generation now (0 before the first bump): one small SELECT."""
        with self._read() as conn:
            found = conn.execute(sa.select(_w.generation).where(_w.name == name)).scalar()
        return int(found or 0)

    def put_state(self, name: str, value: str) -> None:
        """Keep a short text under `name`, replacing what was there."""
        with self._write() as conn:
            done = conn.execute(
                workspace_state.update()
                .where(_w.name == name)
                .values(value=value, updated_at=now())
            ).rowcount
            if not done and not _insert_state(conn, name, value=value):
                conn.execute(
                    workspace_state.update()
                    .where(_w.name == name)
                    .values(value=value, updated_at=now())
                )

    def state_text(self, name: str) -> str:
        """The text kept under `name` ("" when none)."""
        with self._read() as conn:
            found = conn.execute(sa.select(_w.value).where(_w.name == name)).scalar()
        return str(found or "")

    # --- background duties -----------------------------------------------------------------

    def claim_duty(self, duty: str, day: dt.date, server: str, host: str, pid: int) -> bool:
        """Whether this server takes `duty` for `day`: True for the first claimant across
        every worker and host, False once another has it."""
        row = {"duty": duty[:80], "day": day, "server": server, "host": host[:200], "pid": pid}
        try:
            with self._write() as conn:
                taken = conn.execute(
                    sa.select(_d.server).where(_d.duty == row["duty"], _d.day == day)
                ).first()
                if taken is not None:
                    return False
                conn.execute(duty_claims.delete().where(_d.claimed_at < now() - CLAIMS_KEPT))
                conn.execute(duty_claims.insert().values(**row, claimed_at=now()))
        except sa.exc.IntegrityError:  # another claimed it between the look and the insert
            return False
        return True

    def release_duty(self, duty: str, day: dt.date, server: str) -> None:
        """Give a claim back (the duty failed), so a later attempt may take it again."""
        with self._write() as conn:
            conn.execute(
                duty_claims.delete().where(_d.duty == duty[:80], _d.day == day, _d.server == server)
            )

    def duty_claims(self) -> list[tuple[str, dt.date, str]]:
        """(duty, day, server) of every claim kept, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(_d.duty, _d.day, _d.server).order_by(_d.claimed_at, _d.duty)
            ).all()
        return [(r.duty, r.day, r.server) for r in rows]


def _purge_previews(conn: sa.Connection, before: dt.datetime) -> int:
    old = sa.select(_p.token_hash).where(_p.created_at < before)
    conn.execute(allocation_preview_files.delete().where(_f.token_hash.in_(old)))
    return int(conn.execute(allocation_previews.delete().where(_p.created_at < before)).rowcount)


def _insert_state(conn: sa.Connection, name: str, **values: object) -> bool:
    """Insert `name`'s row; False when another worker inserted it first (a savepoint keeps
    the transaction usable on PostgreSQL)."""
    try:
        with conn.begin_nested():
            conn.execute(workspace_state.insert().values(name=name, updated_at=now(), **values))
    except sa.exc.IntegrityError:
        return False
    return True
