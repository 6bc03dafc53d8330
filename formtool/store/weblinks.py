"""Web form links, their one-time codes and sessions, and the drafts a web form saves (issue 25).

The store keeps hashes only: a link's token, its current one-time code and a session's cookie
value are held as SHA-256 (the caller hashes them), so a copy of the database opens no form.
What a link may open is decided above (programme/weblinks.py) from what `web_link` returns:
the link, its audit's state and copy, and where the audit's returns are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool.definitions import PREPARED
from formtool.store.audits import record_event
from formtool.store.engine import now
from formtool.store.schema import audits, events, returns, web_drafts, web_links, web_sessions
from formtool.store.units import Units

_l, _s, _d = web_links.c, web_sessions.c, web_drafts.c
REQUESTED = "amendment requested"  # the workflow's event (and state) name


@dataclass(frozen=True)
class WebLink:
    """A link as stored, with what its validity depends on: its audit's row (state, copy,
    form, names and addresses, due date), whether a prepared-stage return is on record, the
    current return's stage ("" if none) and the detail of the newest amendment request."""

    link: Any
    audit: Any
    prepared: bool
    current_stage: str
    amendment: str


def _window_open(link: Any, at: dt.datetime, window: dt.timedelta) -> bool:
    start = link.codes_window_start
    return start is not None and at - start < window


class WebLinkStore(Units):
    """Links, codes, sessions and drafts of web forms (see the module docstring)."""

    def add_web_link(
        self,
        audit_id: str,
        copy: int,
        stage: str,
        token_hash: str,
        expires_on: dt.date,
        replace: bool = True,
    ) -> int:
        """A new link for the audit's stage; with `replace`, the stage's earlier live links
        are revoked ("replaced") in the same transaction. Its id."""
        with self._write() as conn:
            at = now()
            if replace:
                _revoke(conn, (_l.audit_id == audit_id) & (_l.stage == stage), "replaced", at)
            return int(
                conn.execute(
                    web_links.insert().values(
                        audit_id=audit_id,
                        copy=copy,
                        stage=stage,
                        token_hash=token_hash,
                        created_at=at,
                        expires_on=expires_on,
                    )
                ).inserted_primary_key[0]
            )

    def web_link(self, token_hash: str) -> WebLink | None:
        """The link with this token hash and its audit (None: no such link)."""
        with self._read() as conn:
            link = conn.execute(sa.select(web_links).where(_l.token_hash == token_hash)).first()
            return None if link is None else _with_audit(conn, link)

    def web_link_by_id(self, link_id: int) -> WebLink | None:
        with self._read() as conn:
            link = conn.execute(sa.select(web_links).where(_l.id == link_id)).first()
            return None if link is None else _with_audit(conn, link)

    def web_links_of(self, audit_id: str) -> list[Any]:
        """Every link issued for the audit, oldest first."""
        with self._read() as conn:
            query = sa.select(web_links).where(_l.audit_id == audit_id).order_by(_l.id)
            return list(conn.execute(query).all())

    def linked_stages(self, audit_ids: Collection[str]) -> set[tuple[str, str]]:
        """(audit, stage) of these audits that were ever sent a link (a web-format audit)."""
        found: set[tuple[str, str]] = set()
        ids = sorted(set(audit_ids))
        with self._read() as conn:
            for start in range(0, len(ids), 500):  # SQLite's limit on parameters
                query = sa.select(_l.audit_id, _l.stage).where(
                    _l.audit_id.in_(ids[start : start + 500])
                )
                found.update((a, s) for a, s in conn.execute(query.distinct()).all())
        return found

    def retire_web_links(self, audit_id: str, stage: str, newer: int) -> int:
        """Revoke ("replaced") the stage's live links issued before link `newer`, once the
        email carrying `newer` has gone. How many."""
        with self._write() as conn:
            where = (_l.audit_id == audit_id) & (_l.stage == stage) & (_l.id < newer)
            return _revoke(conn, where, "replaced", now())

    def revoke_web_links(self, audit_id: str, reason: str, stage: str | None = None) -> int:
        """Revoke the audit's live links (of one stage, or all); their sessions end. How many."""
        with self._write() as conn:
            where: Any = _l.audit_id == audit_id
            if stage is not None:
                where = where & (_l.stage == stage)
            return _revoke(conn, where, reason, now())

    def set_web_code(
        self,
        link_id: int,
        code_hash: str,
        at: dt.datetime,
        valid: dt.timedelta,
        limit: int,
        window: dt.timedelta,
    ) -> bool:
        """Make `code_hash` the link's one code (valid from `at` for `valid`, no tries yet),
        unless `limit` codes were sent within `window`: then False and nothing changes."""
        with self._write() as conn:
            link = conn.execute(
                sa.select(web_links).where(_l.id == link_id).with_for_update()
            ).first()
            if link is None:
                return False
            counting = _window_open(link, at, window)
            if counting and link.codes_sent >= limit:
                return False
            conn.execute(
                web_links.update()
                .where(_l.id == link_id)
                .values(
                    code_hash=code_hash,
                    code_expires_at=at + valid,
                    code_tries=0,
                    codes_sent=link.codes_sent + 1 if counting else 1,
                    codes_window_start=link.codes_window_start if counting else at,
                )
            )
            return True

    def use_web_code(
        self,
        link_id: int,
        code_hash: str,
        at: dt.datetime,
        max_tries: int,
        session_hash: str,
        session_until: dt.datetime,
        max_wrong: int = 20,
    ) -> str:
        """Try a code on the link, in one transaction: "ok" (the code is used up and the
        session `session_hash` starts, until `session_until`), "wrong" (a try counted; the
        code is void after `max_tries`), "locked" (the link's `max_wrong`th wrong code: the
        link is revoked and its audit says so) or "no_code" (none live: never sent, used,
        expired or voided). Sessions already expired are removed."""
        with self._write() as conn:
            conn.execute(web_sessions.delete().where(_s.expires_at <= at))
            link = conn.execute(
                sa.select(web_links).where(_l.id == link_id).with_for_update()
            ).first()
            if link is None or not link.code_hash or link.code_expires_at is None:
                return "no_code"
            if at >= link.code_expires_at:
                _clear_code(conn, link_id)
                return "no_code"
            if link.code_hash != code_hash:
                wrong = link.wrong_codes + 1
                conn.execute(web_links.update().where(_l.id == link_id).values(wrong_codes=wrong))
                if wrong >= max_wrong:
                    _revoke(conn, _l.id == link_id, "locked", at)
                    detail = f"{wrong} wrong one-time codes were typed with a {link.stage} link"
                    record_event(conn, link.audit_id, "web form link locked", detail, "")
                    return "locked"
                tries = link.code_tries + 1
                if tries >= max_tries:
                    _clear_code(conn, link_id)
                else:
                    conn.execute(
                        web_links.update().where(_l.id == link_id).values(code_tries=tries)
                    )
                return "wrong"
            _clear_code(conn, link_id)
            conn.execute(
                web_sessions.insert().values(
                    id_hash=session_hash, link_id=link_id, created_at=at, expires_at=session_until
                )
            )
            return "ok"

    def web_session(self, id_hash: str) -> Any:
        """The session (link_id, created_at, expires_at), or None."""
        with self._read() as conn:
            return conn.execute(sa.select(web_sessions).where(_s.id_hash == id_hash)).first()

    def extend_web_session(self, id_hash: str, until: dt.datetime) -> None:
        with self._write() as conn:
            conn.execute(
                web_sessions.update().where(_s.id_hash == id_hash).values(expires_at=until)
            )

    def end_web_session(self, id_hash: str) -> None:
        with self._write() as conn:
            conn.execute(web_sessions.delete().where(_s.id_hash == id_hash))

    # --- drafts ---------------------------------------------------------------------------

    def save_web_draft(
        self, audit_id: str, stage: str, values_json: str, saved_at: dt.datetime
    ) -> None:
        """Keep (or replace) the stage's draft answers."""
        with self._write() as conn:
            where = (_d.audit_id == audit_id) & (_d.stage == stage)
            conn.execute(web_drafts.delete().where(where))
            conn.execute(
                web_drafts.insert().values(
                    audit_id=audit_id, stage=stage, values_json=values_json, saved_at=saved_at
                )
            )

    def web_draft(self, audit_id: str, stage: str) -> str | None:
        """The stage's draft answers as saved (JSON text), or None."""
        with self._read() as conn:
            where = (_d.audit_id == audit_id) & (_d.stage == stage)
            return conn.execute(sa.select(_d.values_json).where(where)).scalar()

    def drop_web_drafts(self, audit_ids: Collection[str], stage: str | None = None) -> int:
        """Remove the drafts of these audits (of one stage, or all). How many."""
        removed = 0
        ids = sorted(set(audit_ids))
        with self._write() as conn:
            for start in range(0, len(ids), 500):
                where: Any = _d.audit_id.in_(ids[start : start + 500])
                if stage is not None:
                    where = where & (_d.stage == stage)
                removed += int(conn.execute(web_drafts.delete().where(where)).rowcount or 0)
        return removed

    def web_drafts(self) -> list[Any]:
        """Every draft's audit, stage, time saved and its audit's state (for retention)."""
        with self._read() as conn:
            query = (
                sa.select(_d.audit_id, _d.stage, _d.saved_at, audits.c.state)
                .join(audits, audits.c.audit_id == _d.audit_id)
                .order_by(_d.audit_id, _d.stage)
            )
            return list(conn.execute(query).all())


def _with_audit(conn: sa.Connection, link: Any) -> WebLink:
    audit = conn.execute(sa.select(audits).where(audits.c.audit_id == link.audit_id)).first()
    r = returns.c
    prepared = conn.execute(
        sa.select(r.id).where((r.audit_id == link.audit_id) & (r.stage == PREPARED)).limit(1)
    ).first()
    current = conn.execute(
        sa.select(r.stage).where((r.audit_id == link.audit_id) & r.is_current)
    ).scalar()
    e = events.c
    requested = conn.execute(
        sa.select(e.detail)
        .where((e.audit_id == link.audit_id) & (e.event == REQUESTED))
        .order_by(e.id.desc())
        .limit(1)
    ).scalar()
    return WebLink(link, audit, prepared is not None, current or "", requested or "")


def _revoke(conn: sa.Connection, where: Any, reason: str, at: dt.datetime) -> int:
    live = where & _l.revoked_at.is_(None)
    ids = list(conn.execute(sa.select(_l.id).where(live)).scalars())
    if not ids:
        return 0
    conn.execute(web_sessions.delete().where(_s.link_id.in_(ids)))
    conn.execute(
        web_links.update()
        .where(_l.id.in_(ids))
        .values(revoked_at=at, revoked_reason=reason[:40], code_hash="", code_expires_at=None)
    )
    return len(ids)


def _clear_code(conn: sa.Connection, link_id: int) -> None:
    conn.execute(
        web_links.update()
        .where(_l.id == link_id)
        .values(code_hash="", code_expires_at=None, code_tries=0)
    )
