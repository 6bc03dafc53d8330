"""The web workspace's roles, the one table of them: what each may do and how it is described
(the command line's --role choices and help, the admin page, the refusal a page gives).

`viewer` sees anonymised figures; `officer` also case files and the monthly cycle; `moderator`
also moderation; `admin` manages accounts and reads the access log, and sees no child's data
unless also given a case role. An account may hold several roles (`officer,admin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formtool.errors import AccountError, printable


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


def parse_roles(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Roles from 'officer,admin' or a list of names: known, unique, in ROLES order."""
    names = text.split(",") if isinstance(text, str) else list(text)
    wanted = {n.strip().lower() for n in names if n.strip()}
    if not wanted:
        raise AccountError(f"Choose at least one role ({', '.join(ROLES)}).")
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise AccountError(f"Role '{printable(unknown[0], 40)}' is not one of {', '.join(ROLES)}.")
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


def account_of(name: str, role: str, must_change: bool, active: bool = True) -> Account:
    roles = tuple(r for r in str(role).split(",") if r in ROLES)
    return Account(name, roles, bool(must_change), bool(active))
