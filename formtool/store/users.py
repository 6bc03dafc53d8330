"""Web workspace accounts, their server-side sessions, the sign-in throttle's counters and the
server's persistent secret. Passwords are never stored: only their argon2id hashes
(formtool.access.accounts makes and checks them); sessions only by the SHA-256 of their
random id."""

from __future__ import annotations

import datetime as dt
import secrets as random_secrets
from typing import Any

import sqlalchemy as sa

from formtool.errors import AccountError, printable
from formtool.store.engine import lock, now, transaction
from formtool.store.schema import secrets, sessions, sign_in_throttle, users

_u = users.c
_s = sessions.c
_t = sign_in_throttle.c

# --- accounts ------------------------------------------------------------------------------


def require_user(conn: sa.Connection, name: str, active: bool = True) -> Any:
    """The account called `name` (an active one, unless `active` is False), or AccountError."""
    found = user(conn, name.strip())
    if found is None or (active and not found.active):
        kind = "active user" if active else "user"
        raise AccountError(
            f"There is no {kind} called '{printable(name, 80)}' (`formtool users list`)."
        )
    return found


def active_admins(conn: sa.Connection) -> list[str]:
    return [u.name for u in all_users(conn) if "admin" in str(u.role).split(",")]


def keep_an_admin(conn: sa.Connection, name: str, roles_after: tuple[str, ...]) -> None:
    """Refuse a change that would leave no active admin (nobody could manage accounts)."""
    if active_admins(conn) == [name] and "admin" not in roles_after:
        raise AccountError(
            f"'{name}' is the only admin. Make another user an admin first "
            "(`formtool users add NAME --role admin`), so somebody can still manage accounts."
        )


def add_user(
    conn: sa.Connection, name: str, role: str, password_hash: str, must_change: bool = False
) -> bool:
    """Add an account; False if the name is taken."""
    if conn.execute(sa.select(_u.name).where(_u.name == name)).first():
        return False
    at = now()
    conn.execute(
        users.insert().values(
            name=name,
            role=role,
            password_hash=password_hash,
            created_at=at,
            active=True,
            must_change_password=must_change,
            password_set_at=at,
        )
    )
    return True


def reactivate_user(
    conn: sa.Connection, name: str, role: str, password_hash: str, must_change: bool
) -> bool:
    """A deactivated account active again, with a new password and role; False if there is
    no deactivated account of that name."""
    return bool(
        conn.execute(
            users.update()
            .where(_u.name == name, _u.active.is_(False))
            .values(
                role=role,
                password_hash=password_hash,
                active=True,
                must_change_password=must_change,
                password_set_at=now(),
            )
        ).rowcount
    )


def deactivate_user(conn: sa.Connection, name: str) -> bool:
    """Deactivate (never delete: the events and access log keep naming the same person) and
    end every session of the account; False if there is no active account of that name."""
    changed = conn.execute(
        users.update().where(_u.name == name, _u.active.is_(True)).values(active=False)
    ).rowcount
    end_user_sessions(conn, name)
    return bool(changed)


def user(conn: sa.Connection, name: str) -> Any:
    return conn.execute(sa.select(users).where(_u.name == name)).first()


def all_users(conn: sa.Connection, include_inactive: bool = False) -> list[Any]:
    query = sa.select(
        _u.name, _u.role, _u.created_at, _u.active, _u.must_change_password, _u.password_set_at
    ).order_by(_u.name)
    if not include_inactive:
        query = query.where(_u.active.is_(True))
    return list(conn.execute(query).all())


def set_password_hash(
    conn: sa.Connection, name: str, password_hash: str, must_change: bool | None = None
) -> bool:
    values: dict[str, Any] = {"password_hash": password_hash, "password_set_at": now()}
    if must_change is not None:
        values["must_change_password"] = must_change
    return bool(conn.execute(users.update().where(_u.name == name).values(**values)).rowcount)


def rehash_password(conn: sa.Connection, name: str, old_hash: str, new_hash: str) -> None:
    """Store a stronger hash of the same password, unless the password changed meanwhile."""
    conn.execute(
        users.update()
        .where(_u.name == name, _u.password_hash == old_hash)
        .values(password_hash=new_hash)
    )


def set_role(conn: sa.Connection, name: str, role: str) -> bool:
    return bool(
        conn.execute(
            users.update().where(_u.name == name, _u.active.is_(True)).values(role=role)
        ).rowcount
    )


def lock_accounts(conn: sa.Connection) -> None:
    """Serialise account changes (so "at least one admin" cannot be broken by two at once)."""
    lock(conn, "formtool accounts")


# --- sessions ------------------------------------------------------------------------------


def add_session(
    conn: sa.Connection,
    id_hash: str,
    user_name: str,
    address: str,
    at: dt.datetime,
    method: str = "password",
) -> None:
    """A new session of `user_name`, signed in by `method` (see store/signin.py)."""
    conn.execute(
        sessions.insert().values(
            id_hash=id_hash,
            user_name=user_name,
            created_at=at,
            last_seen_at=at,
            address=address[:64],
            method=method[:20],
        )
    )


def session(conn: sa.Connection, id_hash: str) -> Any:
    """The session, how it signed in, and its account's row (role, state, source, whether it
    has an authenticator), or None."""
    return conn.execute(
        sa.select(
            _s.id_hash,
            _s.user_name,
            _s.created_at,
            _s.last_seen_at,
            _s.address,
            _s.method,
            _u.role,
            _u.active,
            _u.must_change_password,
            _u.source,
            (_u.totp_secret != "").label("totp"),
        )
        .join(users, _u.name == _s.user_name)
        .where(_s.id_hash == id_hash)
    ).first()


def touch_session(conn: sa.Connection, id_hash: str, at: dt.datetime) -> None:
    conn.execute(sessions.update().where(_s.id_hash == id_hash).values(last_seen_at=at))


def end_session(conn: sa.Connection, id_hash: str) -> bool:
    return bool(conn.execute(sessions.delete().where(_s.id_hash == id_hash)).rowcount)


def end_user_sessions(conn: sa.Connection, name: str) -> int:
    """End every session of `name`."""
    return int(conn.execute(sessions.delete().where(_s.user_name == name)).rowcount)


def end_all_sessions(conn: sa.Connection) -> int:
    return int(conn.execute(sessions.delete()).rowcount)


def end_stale_sessions(
    conn: sa.Connection, idle_since: dt.datetime, made_since: dt.datetime
) -> int:
    """Remove sessions unused since `idle_since` or made before `made_since`."""
    return int(
        conn.execute(
            sessions.delete().where(
                sa.or_(_s.last_seen_at < idle_since, _s.created_at < made_since)
            )
        ).rowcount
    )


def all_sessions(conn: sa.Connection) -> list[Any]:
    return list(
        conn.execute(
            sa.select(_s.user_name, _s.created_at, _s.last_seen_at, _s.address).order_by(
                _s.user_name, _s.created_at
            )
        ).all()
    )


# --- sign-in throttle ----------------------------------------------------------------------


def throttle_rows(conn: sa.Connection, keys: list[str]) -> dict[str, tuple[int, float]]:
    rows = conn.execute(sa.select(_t.key, _t.failures, _t.last_at).where(_t.key.in_(keys)))
    return {r.key: (r.failures, r.last_at) for r in rows}


def count_failure(conn: sa.Connection, key: str, at: float, forget_before: float) -> None:
    """One more failure for `key` at `at`; a count last touched before `forget_before` starts
    again from one (the caller holds the throttle lock)."""
    found = conn.execute(sa.select(_t.failures, _t.last_at).where(_t.key == key)).first()
    if found is None:
        conn.execute(sign_in_throttle.insert().values(key=key, failures=1, last_at=at))
        return
    failures = 1 if found.last_at < forget_before else found.failures + 1
    conn.execute(
        sign_in_throttle.update().where(_t.key == key).values(failures=failures, last_at=at)
    )


def forgive_failure(conn: sa.Connection, key: str) -> None:
    """One failure fewer for `key` (an attempt counted in advance turned out right)."""
    conn.execute(
        sign_in_throttle.update()
        .where(_t.key == key, _t.failures > 0)
        .values(failures=_t.failures - 1)
    )


def forget_failures(conn: sa.Connection, keys: list[str]) -> None:
    conn.execute(sign_in_throttle.delete().where(_t.key.in_(keys)))


def forget_old_failures(conn: sa.Connection, before: float) -> None:
    conn.execute(sign_in_throttle.delete().where(_t.last_at < before))


# --- the server's secret -------------------------------------------------------------------


def server_secret(engine: sa.Engine, name: str = "session") -> str:
    """A random secret made once per database and kept in it (signs the anonymous cookie that
    carries the sign-in page's CSRF token and flash messages; it signs nobody in)."""
    with engine.connect() as conn:
        found = conn.execute(sa.select(secrets.c.value).where(secrets.c.name == name)).scalar()
    if found:
        return str(found)
    with transaction(engine) as conn:
        lock(conn, f"formtool secret {name}")  # two servers starting at once agree on one
        found = conn.execute(sa.select(secrets.c.value).where(secrets.c.name == name)).scalar()
        if found:
            return str(found)
        value = random_secrets.token_urlsafe(48)
        conn.execute(secrets.insert().values(name=name, value=value))
        return value


def plant_secret(conn: sa.Connection, name: str, value: str) -> bool:
    """Keep `value` as the secret `name` unless the database already has one."""
    lock(conn, f"formtool secret {name}")
    if conn.execute(sa.select(secrets.c.value).where(secrets.c.name == name)).first():
        return False
    conn.execute(secrets.insert().values(name=name, value=value))
    return True
