"""Which programme policy is in force, and the amendment deadline that follows from it.

The database keeps the active policy as a versioned snapshot (`formtool programme use`); a
database where nobody chose one runs the shipped default (`hull`). formtool.toml's
`programme =` (or a command's --programme) never switches the rules for one run: if it names
another policy than the database's, the command stops and says how to switch.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from formtool.periods import Month
from formtool.programme.policy import (
    Policy,
    PolicyError,
    default_policy,
    load_policy,
    policy_from_snapshot,
    policy_snapshot,
)
from formtool.store import Store


def active_policy(db: Store) -> Policy:
    """The policy in force: the database's active version, else the shipped default."""
    stored = db.active_policy()
    if stored is None:
        return default_policy()
    return policy_from_snapshot(stored.snapshot, stored.version)


def use_policy(
    db: Store, name_or_path: str | Path, team_dir: Path | None, user: str
) -> tuple[Policy, bool]:
    """Check the policy and make it the database's active one (a new version if it
    changed since it was last used); (the policy as stored, whether it is a new version)."""
    policy = load_policy(name_or_path, team_dir)
    stored, new = db.use_policy(policy.name, policy_snapshot(policy), user)
    return policy_from_snapshot(stored.snapshot, stored.version), new


def recorded(db: Store, policy: Policy, user: str) -> Policy:
    """The policy as the database keeps it: the shipped default a database runs without
    having chosen one is stored (version 1) the first time rules are applied under it, so
    an allocation can always say exactly which rules it ran under."""
    if policy.version:
        return policy
    stored, _new = db.use_policy(policy.name, policy_snapshot(policy), user)
    return policy_from_snapshot(stored.snapshot, stored.version)


def agree(db: Store, named: str | None, where: str) -> Policy:
    """The active policy, after checking that `named` (from formtool.toml or --programme)
    is the same one: rules never switch silently for one run."""
    policy = active_policy(db)
    if named and named.strip() and named.strip() != policy.name:
        raise PolicyError(
            f"{where} names programme '{named.strip()}', but this database runs "
            f"'{policy.name}'{_version(policy)}. Switch for everyone with `formtool programme "
            f"use {named.strip()}` (it is recorded), or change {where}."
        )
    return policy


def _version(policy: Policy) -> str:
    return f" (version {policy.version})" if policy.version else " (the default)"


def amendment_due_for(
    policy: Policy, form_id: str, month: str, requested: dt.date
) -> dt.date | None:
    """When an amendment requested on `requested` is due back under the policy; None when
    the policy sets no deadline for amendments (the audit's due date then stays)."""
    m = Month(month)
    return policy.due("amendment", form_id, m.year, m.number, after=requested)
