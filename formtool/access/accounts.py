"""Accounts for the web workspace: names, roles, passwords (argon2id hashes only), server-side
sessions and the sign-in throttle.

- Roles and what they may do are in roles.py. At least one active admin always exists once
  there is one.
- Passwords: at least 12 characters, not containing the user name, not one of the 30,000 most
  common; never taken on the command line. A password shorter than the policy (an account from
  an older release) or set by an admin must be changed at the next sign-in.
- Hashing is bounded: at most `HASH_SLOTS` argon2 computations run at once (each takes 64 MiB),
  the rest wait up to `HASH_WAIT` seconds and are then told to try again.
- Sessions live in the database: the browser's cookie holds a random id, the table only its
  SHA-256. Sign-out, a password reset, a role change and deactivation end them; they also end
  after an idle period and an absolute lifetime (settings). A session remembers how it signed
  in; one whose sign-in is not finished (an authenticator code still to give or to set up,
  totp.py) signs nobody in and ends after `PENDING_LIFETIME`.
- Accounts the council's identity provider signs in (oidc.py) have no password here.
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

from formtool.access.roles import Account, account_of, parse_roles
from formtool.errors import AccountError, printable
from formtool.store import Store

MIN_PASSWORD = 12
HASH_SLOTS = 2  # argon2 checks at once: 2 x 64 MiB, whatever the number of sign-ins
HASH_WAIT = 5.0  # seconds a sign-in waits for a slot before being told to try again
TOUCH_SECONDS = 60  # a session's last-seen time is written at most this often
#: How a session signed in, when that is not finished: the password was right and the
#: authenticator's code is still to come, or an admin must set an authenticator up first.
CODE_PENDING, ENROL_PENDING = "totp-pending", "totp-enrol"
PENDING_LIFETIME = dt.timedelta(minutes=10)  # to finish signing in after the password


#: An account cannot be added, changed or used; the message says why (the store raises it too).
UserError = AccountError


class WrongPassword(UserError):
    """A signed-in user's current password was not right (counted like a failed sign-in)."""


class HashingBusy(UserError):
    """Too many sign-ins at once: the caller should try again in a few seconds."""


def _account(row: Any) -> Account:
    return account_of(row.name, row.role, row.must_change_password, row.active)


# --- passwords -----------------------------------------------------------------------------


@cache
def common_passwords() -> frozenset[str]:
    data = (resources.files("formtool.access") / "common_passwords.txt.gz").read_bytes()
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


def check_new_name(db: Store, name: str) -> str:
    """A name a new account may take: 2-80 letters, digits and . _ @ - (it appears in URLs,
    logs and terminals), not an active account's, whatever the capitals."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise UserError(
            f"'{printable(name, 80)}' cannot be a user name: use 2 to 80 letters, digits, "
            "dots, hyphens, underscores or @ (e.g. j.smith)."
        )
    taken = [u.name for u in db.users() if u.name.casefold() == name.casefold()]
    if taken:
        raise UserError(
            f"There is already a user called '{taken[0]}'. Choose another name, or change "
            "its role or password instead."
        )
    return name


def active_account(db: Store, name: str) -> Account:
    """The active account called `name`, or UserError saying there is none."""
    return _account(db.active_user(name))


def account_exists(db: Store, name: str) -> bool:
    return db.user(name.strip()) is not None


def add_user(
    db: Store,
    name: str,
    role: str | tuple[str, ...] | list[str],
    password: str,
    must_change: bool = False,
) -> Account:
    """Add an account (or make a deactivated one of that name active again, as the same
    person). `must_change`: the password was set by someone else (an admin)."""
    name, roles = check_new_name(db, name), parse_roles(role)
    check_password(name, password)
    if not db.add_user(name, ",".join(roles), _hash(password), must_change):
        raise UserError(
            f"There is already a user called '{name}'. Choose another name, or change "
            "its role or password instead."
        )
    return Account(name, roles, must_change)


def remove_user(db: Store, name: str) -> None:
    """Deactivate an account and end its sessions (never deleted: history keeps it)."""
    db.deactivate_user(name)


def set_roles(db: Store, name: str, role: str | tuple[str, ...] | list[str]) -> Account:
    """Change an account's roles; its sessions end (it signs in again with the new rights)."""
    return _account(db.set_roles(name, parse_roles(role)))


def set_password(db: Store, name: str, password: str, must_change: bool = False) -> None:
    """A new password for `name`; every session of that user ends."""
    found = db.user(name.strip())
    if found is not None and found.source != "local":
        raise UserError(
            f"{found.name} signs in with the council's account, so formtool keeps no password "
            "for it: their password is changed with the council's IT."
        )
    check_password(name.strip(), password)
    db.set_password(name, _hash(password), must_change)


def change_own_password(db: Store, name: str, current: str, new: str) -> None:
    """A signed-in user's own change: the current password is required; every session of the
    user ends, the one making the change too (the caller starts a fresh one), so a cookie
    copied before the change is worth nothing after it."""
    if authenticate(db, name, current) is None:
        raise WrongPassword("The current password is not right. Nothing was changed.")
    if current == new:
        raise UserError("The new password must differ from the current one.")
    set_password(db, name, new, must_change=False)


def list_users(db: Store, include_inactive: bool = False) -> list[Account]:
    return [_account(u) for u in db.users(include_inactive)]


def has_admin(db: Store) -> bool:
    return bool(db.active_admins())


def authenticate(db: Store, name: str, password: str) -> Account | None:
    """The active account, if the password is right (rehashing it if the parameters moved
    on). An account whose password is shorter than the policy must change it now."""
    found = db.user(name.strip())
    if found is None or not found.active or found.source != "local":  # the same work as a
        _verify(_dummy_hash(), password)  # real check: names cannot be probed by timing
        return None
    if not _verify(found.password_hash, password):
        return None
    if _hasher().check_needs_rehash(found.password_hash):
        db.rehash_password(found.name, found.password_hash, _hash(password))
    account = _account(found)
    if len(password) < MIN_PASSWORD and not account.must_change_password:
        db.require_password_change(found.name, found.password_hash)
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
    db: Store,
    name: str,
    address: str,
    rules: SessionRules = SessionRules(),
    method: str = "password",
) -> str:
    """A new session for `name`, signed in by `method`: its random id, for the cookie (stored
    only hashed)."""
    session_id = secrets.token_urlsafe(32)
    db.add_signed_in_session(_id_hash(session_id), name, address, _at(rules.clock), method)
    return session_id


def finish_session(db: Store, session_id: str, rules: SessionRules, method: str) -> str | None:
    """The unfinished session's last step is done: a new session id replaces it (for the
    cookie), or None if it had ended meanwhile."""
    new_id = secrets.token_urlsafe(32)
    done = db.finish_session(_id_hash(session_id), _id_hash(new_id), _at(rules.clock), method)
    return new_id if done else None


@dataclass(frozen=True)
class SignedIn:
    """A live session: its account, how it signed in, and what the account signs in with."""

    account: Account
    method: str  # password, password+totp, oidc; CODE_PENDING or ENROL_PENDING: unfinished
    source: str  # "local" (a password here) or "oidc" (the council's identity provider)
    totp: bool  # the account has an authenticator set up

    def pending(self, oidc_configured: bool) -> str | None:
        """The step still to do before this session opens any page, or None: the code, or
        setting an authenticator up (an admin's password alone is not enough while the
        council's identity provider is not configured, also in a session from before)."""
        if self.method in (CODE_PENDING, ENROL_PENDING):
            return self.method
        admin = "admin" in self.account.roles
        if admin and self.source == "local" and not self.totp and not oidc_configured:
            return ENROL_PENDING
        return None


def session_sign_in(
    db: Store, session_id: str, rules: SessionRules = SessionRules()
) -> SignedIn | None:
    """The live session of this id, or None (unknown, ended, idle too long, too old, an
    unfinished sign-in left too long, or the account was deactivated). Last-seen is written
    at most once a minute."""
    if not session_id or len(session_id) > 100:
        return None
    id_hash, at = _id_hash(session_id), _at(rules.clock)
    found = db.signed_in_session(id_hash)
    if found is None:
        return None
    unfinished = found.method in (CODE_PENDING, ENROL_PENDING)
    if (
        not found.active
        or at - found.last_seen_at > rules.idle
        or at - found.created_at > rules.lifetime
        or (unfinished and at - found.created_at > PENDING_LIFETIME)
    ):
        end_session(db, session_id)
        return None
    if (at - found.last_seen_at).total_seconds() >= TOUCH_SECONDS:
        db.touch_session(id_hash, at)
    account = account_of(found.user_name, found.role, found.must_change_password)
    return SignedIn(account, str(found.method), str(found.source), bool(found.totp))


def session_account(
    db: Store, session_id: str, rules: SessionRules = SessionRules()
) -> Account | None:
    """The account signed in by this session id, or None (see `session_sign_in`; a session
    whose sign-in is unfinished signs nobody in)."""
    found = session_sign_in(db, session_id, rules)
    if found is None or found.method in (CODE_PENDING, ENROL_PENDING):
        return None
    return found.account


def end_session(db: Store, session_id: str) -> None:
    db.end_session(_id_hash(session_id))


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


def list_sessions(db: Store, rules: SessionRules = SessionRules()) -> list[SessionInfo]:
    """The sessions still valid (expired ones are removed first)."""
    at = _at(rules.clock)
    rows = db.live_sessions(at - rules.idle, at - rules.lifetime)
    return [SessionInfo(r.user_name, r.created_at, r.last_seen_at, r.address) for r in rows]


def sign_out(db: Store, name: str | None) -> int:
    """End the sessions of `name`, or of everybody (None): how many ended."""
    return db.sign_out(name)


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
#: Wrong authenticator codes for one account from anywhere: whoever types them knew the
#: password, so, unlike wrong passwords, they lock the account's codes for a while.
ACCOUNT_CODES = Rule(free=3, lock_after=10)
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
        db: Store,
        clock: Callable[[], float] = time.time,  # real time: seconds since the epoch
    ) -> None:
        self.db, self.clock = db, clock

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str, str]:
        who = name.strip().casefold()[:80]
        return f"addr:{address}", f"acct:{who}|{address}", f"name:{who}"

    def admit(self, name: str, address: str) -> Admission:
        addr, acct, who = self._keys(name, address)

        def decide(
            rows: dict[str, tuple[int, float]], now: float
        ) -> tuple[Admission, list[str], float]:
            wait = max(
                self._wait(rows.get(addr), ADDRESS, now),
                self._wait(rows.get(acct), ACCOUNT_AT_ADDRESS, now),
            )
            if wait > 0:
                return Admission(wait, 0.0), [], 0.0
            forget = now - ADDRESS.lockout
            failures, last = rows.get(who, (0, 0.0))
            soft = failures >= NAME_SOFT_AFTER and last > forget
            return Admission(0.0, NAME_SOFT_DELAY if soft else 0.0), [addr, acct, who], forget

        return self.db.throttle([addr, acct, who], self.clock, decide)

    def admit_code(self, name: str, address: str) -> Admission:
        """As `admit`, for an authenticator code: counted per address and account+address
        as passwords are, and per account from anywhere (ACCOUNT_CODES), which locks."""
        addr, acct, who = self._keys(name, address)
        code = "code:" + who.removeprefix("name:")

        def decide(
            rows: dict[str, tuple[int, float]], now: float
        ) -> tuple[Admission, list[str], float]:
            wait = max(
                self._wait(rows.get(addr), ADDRESS, now),
                self._wait(rows.get(acct), ACCOUNT_AT_ADDRESS, now),
                self._wait(rows.get(code), ACCOUNT_CODES, now),
            )
            if wait > 0:
                return Admission(wait, 0.0), [], 0.0
            return Admission(0.0, 0.0), [addr, acct, code], now - ADDRESS.lockout

        return self.db.throttle([addr, acct, code], self.clock, decide)

    def code_succeeded(self, name: str, address: str) -> None:
        """The code was right: forget this account's failures, codes and passwords."""
        addr, acct, who = self._keys(name, address)
        self.db.forgive([acct, who, "code:" + who.removeprefix("name:")], [addr])

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
        self.db.forget_old_failures(self.clock() - ADDRESS.lockout)

    def forgive(self, name: str, address: str) -> None:
        """The attempt was never checked (the server was busy): it counts for nothing."""
        self.db.forgive([], self._keys(name, address))

    def succeeded(self, name: str, address: str) -> None:
        """The password was right: forget this account's failures (the address's stay, less
        the one counted for this attempt)."""
        addr, acct, who = self._keys(name, address)
        self.db.forgive([acct, who], [addr])
