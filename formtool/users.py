"""Accounts for the web workspace: names, roles, passwords (argon2id hashes only), server-side
sessions and the sign-in throttle.

- Roles (`ROLES`, the one table of them) grant capabilities: `viewer` sees anonymised figures;
  `officer` also case files and the monthly cycle; `moderator` also moderation; `admin` manages
  accounts and reads the access log, and sees no child's data unless also given a case role.
  An account may hold several roles (`officer,admin`). At least one active admin always exists
  once there is one.
- Passwords: at least 12 characters, not containing the user name, not one of the 30,000 most
  common; never taken on the command line. A password shorter than the policy (an account from
  an older release) or set by an admin must be changed at the next sign-in.
- Hashing is bounded: at most `HASH_SLOTS` argon2 computations run at once (each takes 64 MiB),
  the rest wait up to `HASH_WAIT` seconds and are then told to try again.
- Sessions live in the database: the browser's cookie holds a random id, the table only its
  SHA-256. Sign-out, a password reset, a role change and deactivation end them; they also end
  after an idle period and an absolute lifetime (settings).
- Accounts are deactivated, never deleted: history keeps meaning the same person.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import sqlalchemy as sa

from formtool import store
from formtool.errors import FormtoolError, printable


@dataclass(frozen=True)
class Role:
    name: str
    capabilities: frozenset[str]
    description: str


#: Every role, what it may do, and how it is described (CLI help, admin page).
ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role("viewer", frozenset({"figures"}), "anonymised figures only"),
        Role(
            "officer",
            frozenset({"figures", "cases", "cycle"}),
            "runs the audit cycle: allocate, send, import, check, packs",
        ),
        Role(
            "moderator",
            frozenset({"figures", "cases", "cycle", "moderate"}),
            "an officer who also records moderated grades",
        ),
        Role(
            "admin",
            frozenset({"figures", "accounts", "access_log"}),
            "manages accounts and reads the access log; no case files unless also given a "
            "case role",
        ),
    )
}
CAPABILITY_NAMES = {
    "figures": "see the figures",
    "cases": "see case files",
    "cycle": "run the audit cycle",
    "moderate": "moderate audits",
    "accounts": "manage accounts",
    "access_log": "read the access log",
}
MIN_PASSWORD = 12
HASH_SLOTS = 2  # argon2 checks at once: 2 x 64 MiB, whatever the number of sign-ins
HASH_WAIT = 5.0  # seconds a sign-in waits for a slot before being told to try again
TOUCH_SECONDS = 60  # a session's last-seen time is written at most this often


class UserError(FormtoolError):
    """An account cannot be added, changed or used; the message says why."""


class WrongPassword(UserError):
    """A signed-in user's current password was not right (counted like a failed sign-in)."""


class HashingBusy(UserError):
    """Too many sign-ins at once: the caller should try again in a few seconds."""


# --- roles ---------------------------------------------------------------------------------


def parse_roles(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Roles from 'officer,admin' or a list of names: known, unique, in ROLES order."""
    names = text.split(",") if isinstance(text, str) else list(text)
    wanted = {n.strip().lower() for n in names if n.strip()}
    if not wanted:
        raise UserError(f"Choose at least one role ({', '.join(ROLES)}).")
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise UserError(f"Role '{printable(unknown[0], 40)}' is not one of {', '.join(ROLES)}.")
    return tuple(r for r in ROLES if r in wanted)


@dataclass(frozen=True)
class Account:
    name: str
    roles: tuple[str, ...]
    must_change_password: bool = False
    active: bool = True

    @property
    def role(self) -> str:
        return ",".join(self.roles)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset().union(*(ROLES[r].capabilities for r in self.roles if r in ROLES))

    def may(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def sees_names(self) -> bool:
        """Children's names and case-level data are for the case roles only."""
        return self.may("cases")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "must_change_password": self.must_change_password,
            "active": self.active,
        }


def _account(row: Any) -> Account:
    return _account_of(row.name, row.role, row.must_change_password, row.active)


def _account_of(name: str, role: str, must_change: bool, active: bool = True) -> Account:
    roles = tuple(r for r in str(role).split(",") if r in ROLES)
    return Account(name, roles, bool(must_change), bool(active))


# --- passwords -----------------------------------------------------------------------------


@cache
def common_passwords() -> frozenset[str]:
    data = (resources.files("formtool") / "common_passwords.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line.casefold() for line in lines if line and not line.startswith("#"))


def password_problem(name: str, password: str) -> str | None:
    """Why a new password is refused, in one line; None when it is acceptable."""
    if len(password) < MIN_PASSWORD:
        return f"The password must have at least {MIN_PASSWORD} characters."
    if name and name.casefold() in password.casefold():
        return "The password must not contain the user name."
    if password.casefold() in common_passwords():
        return "That password is one of the most common ones people use; choose another."
    return None


def check_password(name: str, password: str) -> None:
    problem = password_problem(name, password)
    if problem:
        raise UserError(problem)


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current recommended parameters


_slots = threading.BoundedSemaphore(HASH_SLOTS)


def set_hash_slots(count: int) -> None:
    """How many argon2 computations may run at once in this process."""
    global _slots, HASH_SLOTS
    HASH_SLOTS = count
    _slots = threading.BoundedSemaphore(count)


@contextlib.contextmanager
def _hash_slot() -> Iterator[None]:
    slots = _slots
    if not slots.acquire(timeout=HASH_WAIT):
        raise HashingBusy(
            "Too many people are signing in at once. Wait a few seconds and try again."
        )
    try:
        yield
    finally:
        slots.release()


def _hash(password: str) -> str:
    with _hash_slot():
        return str(_hasher().hash(password))


def _verify(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    with _hash_slot():
        try:
            return bool(_hasher().verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False


@cache
def _dummy_hash() -> str:
    """A hash made with the current parameters, checked for unknown names so that they cost
    what a real account's check costs (names cannot be probed by timing)."""
    return _hash("not anybody's password")


# --- accounts ------------------------------------------------------------------------------


_NAME = re.compile(r"[A-Za-z0-9._@-]{2,80}")


def check_new_name(engine: sa.Engine, name: str) -> str:
    """A name a new account may take: 2-80 letters, digits and . _ @ - (it appears in URLs,
    logs and terminals), not an active account's, whatever the capitals."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise UserError(
            f"'{printable(name, 80)}' cannot be a user name: use 2 to 80 letters, digits, "
            "dots, hyphens, underscores or @ (e.g. j.smith)."
        )
    with engine.connect() as conn:
        taken = [u.name for u in store.all_users(conn) if u.name.casefold() == name.casefold()]
    if taken:
        raise UserError(
            f"There is already a user called '{taken[0]}'. Choose another name, or change "
            "its role or password instead."
        )
    return name


def active_account(engine: sa.Engine, name: str) -> Account:
    """The active account called `name`, or UserError saying there is none."""
    with engine.connect() as conn:
        return _account(_require_user(conn, name))


def account_exists(engine: sa.Engine, name: str) -> bool:
    with engine.connect() as conn:
        return store.user(conn, name.strip()) is not None


def _active_admins(conn: sa.Connection) -> list[str]:
    return [u.name for u in store.all_users(conn) if "admin" in str(u.role).split(",")]


def add_user(
    engine: sa.Engine,
    name: str,
    role: str | tuple[str, ...] | list[str],
    password: str,
    must_change: bool = False,
) -> Account:
    """Add an account (or make a deactivated one of that name active again, as the same
    person). `must_change`: the password was set by someone else (an admin)."""
    name, roles = check_new_name(engine, name), parse_roles(role)
    check_password(name, password)
    password_hash = _hash(password)
    with store.transaction(engine) as conn:
        store.lock_accounts(conn)
        role_text = ",".join(roles)
        added = store.add_user(conn, name, role_text, password_hash, must_change)
        if not added and not store.reactivate_user(
            conn, name, role_text, password_hash, must_change
        ):
            raise UserError(
                f"There is already a user called '{name}'. Choose another name, or change "
                "its role or password instead."
            )
    return Account(name, roles, must_change)


def _require_user(conn: sa.Connection, name: str) -> Any:
    found = store.user(conn, name.strip())
    if found is None or not found.active:
        raise UserError(
            f"There is no active user called '{printable(name, 80)}' (`formtool users list`)."
        )
    return found


def _keep_an_admin(conn: sa.Connection, name: str, roles_after: tuple[str, ...]) -> None:
    admins = _active_admins(conn)
    if admins == [name] and "admin" not in roles_after:
        raise UserError(
            f"'{name}' is the only admin. Make another user an admin first "
            "(`formtool users add NAME --role admin`), so somebody can still manage accounts."
        )


def remove_user(engine: sa.Engine, name: str) -> None:
    """Deactivate an account and end its sessions (never deleted: history keeps it)."""
    with store.transaction(engine) as conn:
        store.lock_accounts(conn)
        found = _require_user(conn, name)
        _keep_an_admin(conn, found.name, ())
        store.deactivate_user(conn, found.name)


def set_roles(engine: sa.Engine, name: str, role: str | tuple[str, ...] | list[str]) -> Account:
    """Change an account's roles; its sessions end (it signs in again with the new rights)."""
    roles = parse_roles(role)
    with store.transaction(engine) as conn:
        store.lock_accounts(conn)
        found = _require_user(conn, name)
        _keep_an_admin(conn, found.name, roles)
        store.set_role(conn, found.name, ",".join(roles))
        store.end_user_sessions(conn, found.name)
        return _account(store.user(conn, found.name))


def set_password(engine: sa.Engine, name: str, password: str, must_change: bool = False) -> None:
    """A new password for `name`; every session of that user ends."""
    check_password(name.strip(), password)
    password_hash = _hash(password)
    with store.transaction(engine) as conn:
        found = _require_user(conn, name)
        store.set_password_hash(conn, found.name, password_hash, must_change)
        store.end_user_sessions(conn, found.name)


def change_own_password(engine: sa.Engine, name: str, current: str, new: str) -> None:
    """A signed-in user's own change: the current password is required; every session of the
    user ends, the one making the change too (the caller starts a fresh one), so a cookie
    copied before the change is worth nothing after it."""
    if authenticate(engine, name, current) is None:
        raise WrongPassword("The current password is not right. Nothing was changed.")
    if current == new:
        raise UserError("The new password must differ from the current one.")
    set_password(engine, name, new, must_change=False)


def list_users(engine: sa.Engine, include_inactive: bool = False) -> list[Account]:
    with engine.connect() as conn:
        return [_account(u) for u in store.all_users(conn, include_inactive)]


def has_admin(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(_active_admins(conn))


def authenticate(engine: sa.Engine, name: str, password: str) -> Account | None:
    """The active account, if the password is right (rehashing it if the parameters moved
    on). An account whose password is shorter than the policy must change it now."""
    with engine.connect() as conn:
        found = store.user(conn, name.strip())
    if found is None or not found.active:  # the same work as a real check: names cannot be
        _verify(_dummy_hash(), password)  # probed by timing
        return None
    if not _verify(found.password_hash, password):
        return None
    if _hasher().check_needs_rehash(found.password_hash):
        new_hash = _hash(password)
        with store.transaction(engine) as conn:
            store.rehash_password(conn, found.name, found.password_hash, new_hash)
    account = _account(found)
    if len(password) < MIN_PASSWORD and not account.must_change_password:
        with store.transaction(engine) as conn:
            store.set_password_hash(conn, found.name, found.password_hash, must_change=True)
        account = Account(account.name, account.roles, True)
    return account


# --- sessions ------------------------------------------------------------------------------


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _at(clock: Callable[[], float]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(clock()), dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class SessionRules:
    idle: dt.timedelta = dt.timedelta(minutes=30)
    lifetime: dt.timedelta = dt.timedelta(hours=8)
    clock: Callable[[], float] = time.time  # real time, not the business date

    @classmethod
    def of(
        cls,
        settings: Any,
        clock: Callable[[], float] = time.time,  # real time: seconds since the epoch
    ) -> SessionRules:
        """The council's session lifetimes (formtool.toml)."""
        return cls(
            dt.timedelta(minutes=settings.session_idle_minutes),
            dt.timedelta(hours=settings.session_hours),
            clock,
        )


def start_session(
    engine: sa.Engine, name: str, address: str, rules: SessionRules = SessionRules()
) -> str:
    """A new session for `name`: its random id, for the cookie (stored only hashed)."""
    session_id = secrets.token_urlsafe(32)
    with store.transaction(engine) as conn:
        store.add_session(conn, _id_hash(session_id), name, address, _at(rules.clock))
    return session_id


def session_account(
    engine: sa.Engine, session_id: str, rules: SessionRules = SessionRules()
) -> Account | None:
    """The account signed in by this session id, or None (unknown, ended, idle too long, too
    old, or the account was deactivated). Last-seen is written at most once a minute."""
    if not session_id or len(session_id) > 100:
        return None
    id_hash, at = _id_hash(session_id), _at(rules.clock)
    with engine.connect() as conn:
        found = store.session(conn, id_hash)
    if found is None:
        return None
    if (
        not found.active
        or at - found.last_seen_at > rules.idle
        or at - found.created_at > rules.lifetime
    ):
        end_session(engine, session_id)
        return None
    if (at - found.last_seen_at).total_seconds() >= TOUCH_SECONDS:
        with store.transaction(engine) as conn:
            store.touch_session(conn, id_hash, at)
    return _account_of(found.user_name, found.role, found.must_change_password)


def end_session(engine: sa.Engine, session_id: str) -> None:
    with store.transaction(engine) as conn:
        store.end_session(conn, _id_hash(session_id))


@dataclass(frozen=True)
class SessionInfo:
    user: str
    created: dt.datetime
    last_seen: dt.datetime
    address: str

    def as_dict(self) -> dict[str, str]:
        return {
            "user": self.user,
            "created": self.created.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "address": self.address,
        }


def list_sessions(engine: sa.Engine, rules: SessionRules = SessionRules()) -> list[SessionInfo]:
    """The sessions still valid (expired ones are removed first)."""
    at = _at(rules.clock)
    with store.transaction(engine) as conn:
        store.end_stale_sessions(conn, at - rules.idle, at - rules.lifetime)
        rows = store.all_sessions(conn)
    return [SessionInfo(r.user_name, r.created_at, r.last_seen_at, r.address) for r in rows]


def sign_out(engine: sa.Engine, name: str | None) -> int:
    """End the sessions of `name`, or of everybody (None): how many ended."""
    with store.transaction(engine) as conn:
        if name is None:
            return store.end_all_sessions(conn)
        found = store.user(conn, name.strip())
        if found is None:
            raise UserError(
                f"There is no user called '{printable(name, 80)}' (`formtool users list`)."
            )
        return store.end_user_sessions(conn, found.name)


# --- sign-in throttle ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """After `free` failures each retry waits twice as long as the last (1 s, 2 s, 4 s ... up
    to `cap`); after `lock_after` failures the key waits `lockout`. Failures are forgotten
    `lockout` seconds after the last one."""

    free: int
    cap: float = 60.0
    lock_after: int = 10
    lockout: float = 900.0

    def delay(self, failures: int) -> float:
        if failures >= self.lock_after:
            return self.lockout
        return 0.0 if failures < self.free else min(self.cap, 2.0 ** (failures - self.free))


ACCOUNT_AT_ADDRESS = Rule(free=3, lock_after=10)  # one account from one address
ADDRESS = Rule(free=10, lock_after=50)  # an office behind one address has many people
NAME_SOFT_AFTER = 10  # failures for a name from anywhere before each sign-in is slowed
NAME_SOFT_DELAY = 2.0  # seconds: slows an attacker, never locks the real user out


@dataclass(frozen=True)
class Admission:
    wait: float  # seconds before this name and address may try (0: now)
    slow: float  # seconds to hold this attempt back (the soft delay per account)


class SignInThrottle:
    """Sign-in failures counted in the database (several server processes agree), per
    address and per account+address, with a soft delay per account across addresses. Each
    attempt is counted as a failure before its password is checked and forgiven if right,
    in one locked transaction: however many arrive at once, only the allowed number are
    checked."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Callable[[], float] = time.time,  # real time: seconds since the epoch
    ) -> None:
        self.engine, self.clock = engine, clock

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str, str]:
        who = name.strip().casefold()[:80]
        return f"addr:{address}", f"acct:{who}|{address}", f"name:{who}"

    def admit(self, name: str, address: str) -> Admission:
        addr, acct, who = self._keys(name, address)
        with store.transaction(self.engine) as conn:
            store.lock(conn, "formtool sign-in")
            now = self.clock()  # read under the lock: no attempt is stored later than this
            rows = store.throttle_rows(conn, [addr, acct, who])
            wait = max(
                self._wait(rows.get(addr), ADDRESS, now),
                self._wait(rows.get(acct), ACCOUNT_AT_ADDRESS, now),
            )
            if wait > 0:
                return Admission(wait, 0.0)
            forget = now - ADDRESS.lockout
            for key in (addr, acct, who):
                store.count_failure(conn, key, now, forget)
            failures, last = rows.get(who, (0, 0.0))
            soft = failures >= NAME_SOFT_AFTER and last > forget
            return Admission(0.0, NAME_SOFT_DELAY if soft else 0.0)

    @staticmethod
    def _wait(found: tuple[int, float] | None, rule: Rule, now: float) -> float:
        if found is None:
            return 0.0
        failures, last = found
        elapsed = max(0.0, now - last)
        if elapsed >= rule.lockout:
            return 0.0
        return max(0.0, rule.delay(failures) - elapsed)

    def forget_old(self) -> None:
        """Remove counts too old to matter (a count restarts after `lockout` anyway; this only
        keeps the table small after an attack from many addresses)."""
        with store.transaction(self.engine) as conn:
            store.forget_old_failures(conn, self.clock() - ADDRESS.lockout)

    def forgive(self, name: str, address: str) -> None:
        """The attempt was never checked (the server was busy): it counts for nothing."""
        with store.transaction(self.engine) as conn:
            store.lock(conn, "formtool sign-in")
            for key in self._keys(name, address):
                store.forgive_failure(conn, key)

    def succeeded(self, name: str, address: str) -> None:
        """The password was right: forget this account's failures (the address's stay, less
        the one counted for this attempt)."""
        addr, acct, who = self._keys(name, address)
        with store.transaction(self.engine) as conn:
            store.lock(conn, "formtool sign-in")
            store.forget_failures(conn, [acct, who])
            store.forgive_failure(conn, addr)
