"""Accounts for the web workspace: a name, a role and an argon2id password hash.

Roles: `officer` (runs the cycle: allocate, import, check, packs), `moderator` (also records
moderated grades), `viewer` (sees anonymised figures only). Passwords are asked for, never
taken as options, and only their hashes are stored.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from formtool import store
from formtool.errors import FormtoolError

ROLES = ("officer", "moderator", "viewer")
MIN_PASSWORD = 10


class UserError(FormtoolError):
    """An account cannot be added, removed or used; the message says why."""


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class Account:
    name: str
    role: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}

    @property
    def sees_names(self) -> bool:
        """Children's names are for officers and moderators only."""
        return self.role in ("officer", "moderator")


def add_user(engine: sa.Engine, name: str, role: str, password: str) -> Account:
    name = name.strip()
    if not name or len(name) > 80 or any(c.isspace() for c in name):
        raise UserError("A user name is one word of up to 80 characters (e.g. j.smith).")
    if role not in ROLES:
        raise UserError(f"Role '{role}' is not one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password must have at least {MIN_PASSWORD} characters.")
    with store.transaction(engine) as conn:
        if not store.add_user(conn, name, role, _hasher().hash(password)):
            raise UserError(
                f"There is already a user called '{name}'. Remove it first or choose another name."
            )
    return Account(name, role)


def remove_user(engine: sa.Engine, name: str) -> None:
    with store.transaction(engine) as conn:
        if not store.remove_user(conn, name):
            raise UserError(f"There is no user called '{name}' (`formtool users list`).")


def list_users(engine: sa.Engine) -> list[Account]:
    with engine.connect() as conn:
        return [Account(u.name, u.role) for u in store.all_users(conn)]


def authenticate(engine: sa.Engine, name: str, password: str) -> Account | None:
    """The account, if the password is right (rehashing it if the parameters moved on)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with engine.connect() as conn:
        found = store.user(conn, name.strip())
    hasher = _hasher()
    if found is None:  # spend the same time as a real check: names cannot be probed by timing
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        hasher.verify(found.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(found.password_hash):
        with store.transaction(engine) as conn:
            store.set_password_hash(conn, found.name, hasher.hash(password))
    return Account(found.name, found.role)


_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "0kS7pXdaNrH1JBkCqjG6OKm0QxFjF1BN3X8D4bYd1fQ"
)
