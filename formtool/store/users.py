"""Web workspace accounts and the server's persistent secret. Passwords are never stored:
only their argon2id hashes (formtool.users makes and checks them)."""

from __future__ import annotations

import secrets as random_secrets
from typing import Any

import sqlalchemy as sa

from formtool.store.engine import lock, now, transaction
from formtool.store.schema import secrets, users

_u = users.c


def add_user(conn: sa.Connection, name: str, role: str, password_hash: str) -> bool:
    """Add an account; False if the name is taken."""
    if conn.execute(sa.select(_u.name).where(_u.name == name)).first():
        return False
    conn.execute(
        users.insert().values(name=name, role=role, password_hash=password_hash, created_at=now())
    )
    return True


def remove_user(conn: sa.Connection, name: str) -> bool:
    return bool(conn.execute(users.delete().where(_u.name == name)).rowcount)


def user(conn: sa.Connection, name: str) -> Any:
    return conn.execute(sa.select(users).where(_u.name == name)).first()


def all_users(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.select(_u.name, _u.role, _u.created_at).order_by(_u.name)).all())


def set_password_hash(conn: sa.Connection, name: str, password_hash: str) -> None:
    conn.execute(users.update().where(_u.name == name).values(password_hash=password_hash))


def server_secret(engine: sa.Engine, name: str = "session") -> str:
    """A random secret made once per database and kept in it (signs web session cookies, so
    sessions survive a restart and every server process of a team agrees)."""
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
