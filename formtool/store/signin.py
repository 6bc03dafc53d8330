"""Sign-in beyond a password: TOTP second factors and the council's identity provider
(OpenID Connect).

- Sessions carry how they signed in (`sessions.method`): "password", "password+totp", "oidc",
  or a step not yet finished ("totp-pending": the password was right, the code not yet given;
  "totp-enrol": an admin must set up an authenticator first), which opens nothing else.
- A TOTP code is used once: `use_totp_step` moves `users.totp_last_step` forward in one UPDATE
  that only succeeds for a later step, so two sign-ins racing with one code cannot both win.
- OpenID sign-ins under way are kept by the SHA-256 of their state and taken once
  (`take_oidc_sign_in` deletes the row it returns).
- Accounts the identity provider signs in (`users.source` "oidc") are found by
  `users.oidc_subject` ("issuer|sub"); an account of the same name made here is never taken
  over.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from formtool.errors import AccountError, printable
from formtool.store.schema import oidc_sign_ins, sessions, users
from formtool.store.units import Units
from formtool.store.users import (
    add_session,
    end_user_sessions,
    lock_accounts,
    require_user,
    session,
)

_u = users.c
_s = sessions.c
_o = oidc_sign_ins.c

# --- TOTP ----------------------------------------------------------------------------------


def set_totp(conn: sa.Connection, name: str, secret: str, step: int, at: dt.datetime | None) -> int:
    return int(
        conn.execute(
            users.update()
            .where(_u.name == name)
            .values(totp_secret=secret, totp_enrolled_at=at, totp_last_step=step)
        ).rowcount
    )


# --- the identity provider's accounts ------------------------------------------------------


def oidc_account(conn: sa.Connection, subject: str, name: str, role: str, at: dt.datetime) -> Any:
    """The account the provider's `subject` signs in, with `role`: found by subject (its roles
    updated), else made under `name`. AccountError, saying why, when the account was
    deactivated here or `name` belongs to another account (never taken over silently)."""
    found = conn.execute(sa.select(users).where(_u.oidc_subject == subject)).first()
    if found is not None:
        if not found.active:
            raise AccountError(
                f"The formtool account '{found.name}' was deactivated by an administrator. "
                "Ask them to make it active again if you should still have access."
            )
        if found.role != role:
            conn.execute(users.update().where(_u.name == found.name).values(role=role))
        return conn.execute(sa.select(users).where(_u.name == found.name)).first()
    same = conn.execute(sa.select(users).where(sa.func.lower(_u.name) == name.lower())).first()
    if same is not None:
        kind = "local account (with a password)" if same.source == "local" else "account"
        raise AccountError(
            f"There is already a formtool {kind} called '{printable(same.name, 80)}', so "
            "your council account was not signed in to it. Ask your formtool administrator "
            "to rename or deactivate that account, or sign in with its password."
        )
    conn.execute(
        users.insert().values(
            name=name,
            role=role,
            password_hash="",  # no password: only the identity provider signs it in
            created_at=at,
            active=True,
            must_change_password=False,
            source="oidc",
            oidc_subject=subject,
        )
    )
    return conn.execute(sa.select(users).where(_u.name == name)).first()


class SignInStore(Units):
    """The Store's methods for this subject (see units.py)."""

    # --- sessions ----------------------------------------------------------------------

    def add_signed_in_session(
        self, id_hash: str, name: str, address: str, at: dt.datetime, method: str
    ) -> None:
        """A new session of `name` that signed in by `method`."""
        with self._write() as conn:
            add_session(conn, id_hash, name, address, at, method)

    def signed_in_session(self, id_hash: str) -> Any:
        """The session, its method and its account (None if there is no such session)."""
        with self._read() as conn:
            return session(conn, id_hash)

    def finish_session(
        self, old_hash: str, new_hash: str, at: dt.datetime, method: str
    ) -> str | None:
        """A sign-in's last step done: the unfinished session `old_hash` is replaced by a new
        one (a new id: a cookie seen before the step is worth nothing after it). Its account's
        name, or None if that session had ended meanwhile."""
        with self._write() as conn:
            found = session(conn, old_hash)
            if found is None or not found.active:
                return None
            conn.execute(sessions.delete().where(_s.id_hash == old_hash))
            add_session(conn, new_hash, found.user_name, found.address, at, method)
            return str(found.user_name)

    # --- TOTP --------------------------------------------------------------------------

    def totp_state(self, name: str) -> Any:
        """An active account's name, role, source and TOTP secret and last step used, or
        AccountError saying there is no such account."""
        with self._read() as conn:
            return require_user(conn, name)

    def enrol_totp(self, name: str, secret: str, step: int, at: dt.datetime) -> None:
        """Save a confirmed TOTP secret; `step`, the confirming code's, is used up."""
        with self._write() as conn:
            set_totp(conn, require_user(conn, name).name, secret, step, at)

    def use_totp_step(self, name: str, step: int) -> bool:
        """Mark the code of `step` used; False if that step (or a later one) already was."""
        with self._write() as conn:
            return bool(
                conn.execute(
                    users.update()
                    .where(_u.name == name, _u.totp_secret != "", _u.totp_last_step < step)
                    .values(totp_last_step=step)
                ).rowcount
            )

    def remove_totp(self, name: str) -> int:
        """Remove an account's TOTP secret and end every session of it (a lost authenticator:
        it enrols again at its next sign-in); how many sessions ended."""
        with self._write() as conn:
            found = require_user(conn, name, active=False)
            set_totp(conn, found.name, "", 0, None)
            return end_user_sessions(conn, found.name)

    def sign_in_facts(self) -> dict[str, tuple[str, bool]]:
        """Each account's source ("local" or "oidc") and whether it has TOTP on."""
        with self._read() as conn:
            rows = conn.execute(sa.select(_u.name, _u.source, _u.totp_secret != "")).all()
        return {r[0]: (str(r[1]), bool(r[2])) for r in rows}

    # --- OpenID Connect ----------------------------------------------------------------

    def begin_oidc_sign_in(
        self,
        state_hash: str,
        nonce: str,
        code_verifier: str,
        next_path: str,
        address: str,
        at: dt.datetime,
        forget_before: dt.datetime,
    ) -> None:
        """Keep a sign-in sent to the provider until its answer comes back; sign-ins begun
        before `forget_before` are removed (never finished)."""
        with self._write() as conn:
            conn.execute(oidc_sign_ins.delete().where(_o.created_at < forget_before))
            conn.execute(
                oidc_sign_ins.insert().values(
                    state_hash=state_hash,
                    nonce=nonce,
                    code_verifier=code_verifier,
                    next=next_path[:2000],
                    address=address[:64],
                    created_at=at,
                )
            )

    def take_oidc_sign_in(self, state_hash: str) -> Any:
        """The sign-in begun with this state, removed as it is taken (a state is used once);
        None if there is none (never begun, already used, or forgotten)."""
        with self._write() as conn:
            found = conn.execute(
                sa.select(oidc_sign_ins).where(_o.state_hash == state_hash)
            ).first()
            if found is None:
                return None
            taken = conn.execute(oidc_sign_ins.delete().where(_o.state_hash == state_hash))
            return found if taken.rowcount == 1 else None  # another request took it first

    def oidc_account(self, subject: str, name: str, role: str, at: dt.datetime) -> Any:
        """The account the identity provider signs in (see `oidc_account`); its row."""
        with self._write() as conn:
            lock_accounts(conn)
            return oidc_account(conn, subject, name, role, at)
