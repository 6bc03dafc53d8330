"""The council's settings: its name and protective marking (printed on every form and pack)
and the smallest base findings may be drawn from.

Read from `formtool.toml` beside the SQLite database, or the file named by FORMTOOL_CONFIG;
without either, the defaults apply (no council name, OFFICIAL-SENSITIVE, a base of 5):

    council = "Example Council"
    marking = "OFFICIAL-SENSITIVE"
    min_base = 5                 # findings, shares and charts need this many audits
    session_idle_minutes = 30    # the web workspace signs out after this long unused
    session_hours = 8            # and after this long in any case
    access_log_days = 730        # access log entries kept this long, then purged
    allowed_senders = ["business.support@example.gov.uk", "@example.gov.uk"]
                                 # emailed returns from these (besides the auditor) are not
                                 # held for an officer; "@domain" allows a whole domain
    programme = "hull"           # the programme policy this database must run (a check:
                                 # switch with `formtool programme use NAME`)
    smtp = "mail.example.gov.uk:587"   # urgent-concern emails go at once through this server
    smtp_user = "qa-team"        # (password from $FORMTOOL_SMTP_PASSWORD), from mail_from
    mail_from = "qa-team@example.gov.uk"
    web_address = "https://formtool.example.gov.uk"  # links in emails point here

Signing in with the council's identity provider (OpenID Connect, e.g. Microsoft Entra ID); the
client secret is never in this file: set FORMTOOL_OIDC_CLIENT_SECRET for `formtool serve`.
Without oidc_issuer only local accounts sign in (and every admin must use an authenticator app):

    oidc_issuer = "https://login.microsoftonline.com/TENANT-ID/v2.0"   # exactly as the
                                 # provider's discovery document says it
    oidc_client_id = "00000000-0000-0000-0000-000000000000"   # the app registration's id
    oidc_scopes = ["openid", "profile", "email"]               # "openid" is required
    oidc_roles_claim = "groups"  # or "roles" (Entra app roles): the claim roles come from
    oidc_name_claim = "preferred_username"   # the claim that names the formtool account
    [oidc_role_map]              # a group (or app role) -> the formtool roles it gives;
    "11111111-2222-3333-4444-555555555555" = ["officer"]       # a user in none is refused
    "66666666-7777-8888-9999-000000000000" = ["officer", "admin"]
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from formtool.errors import FormtoolError

CONFIG_ENV = "FORMTOOL_CONFIG"
FILE_NAME = "formtool.toml"
MARKINGS = ("OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "TOP SECRET")


class SettingsError(FormtoolError):
    """The settings file cannot be used; the message names the file and the setting."""


@dataclass(frozen=True)
class Settings:
    council: str = ""
    marking: str = "OFFICIAL-SENSITIVE"
    min_base: int = 5  # audits of one tool needed before its findings and charts are given
    session_idle_minutes: int = 30
    session_hours: int = 8
    access_log_days: int = 730
    allowed_senders: tuple[str, ...] = ()  # addresses or "@domain": returns not held
    programme: str = ""  # the programme policy the database must be running ("": any)
    smtp: str = ""  # HOST:PORT for email sent without an officer (urgent concerns)
    smtp_user: str = ""
    mail_from: str = ""
    web_address: str = ""  # the web workspace's address, for links in emails
    oidc_issuer: str = ""  # the council's OpenID Connect issuer ("": local accounts only)
    oidc_client_id: str = ""
    oidc_scopes: tuple[str, ...] = ("openid", "profile", "email")
    oidc_roles_claim: str = "groups"  # the ID token's claim the roles are mapped from
    oidc_role_map: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (group, roles) pairs
    oidc_name_claim: str = "preferred_username"  # the claim that names the account

    @property
    def oidc(self) -> bool:
        """Whether staff may sign in with the council's identity provider."""
        return bool(self.oidc_issuer)

    def print_lines(self) -> dict[str, str]:
        """What forms and packs print in their headers and footers."""
        return {"council": self.council or "Children's Services", "marking": self.marking}


DEFAULT = Settings()


def settings_path(db_url: str | None = None) -> Path | None:
    """FORMTOOL_CONFIG, else formtool.toml beside an SQLite database (or in the current
    folder for any other database), if that file exists."""
    named = os.environ.get(CONFIG_ENV, "").strip()
    if named:
        return Path(named)
    folder = Path.cwd()
    if db_url and db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        folder = Path(db_url.removeprefix("sqlite:///")).parent
    candidate = folder / FILE_NAME
    return candidate if candidate.is_file() else None


def load_settings(db_url: str | None = None) -> Settings:
    path = settings_path(db_url)
    if path is None:
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"[{path}] does not exist. Check FORMTOOL_CONFIG.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f'[{path}] is not valid TOML ({exc}). Write it as council = "Example Council".'
        ) from None
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"[{path} · {unknown[0]}] is not a setting. Use {', '.join(sorted(known))}."
        )
    senders = data.get("allowed_senders", [])
    if not isinstance(senders, list) or not all(isinstance(x, str) and x for x in senders):
        raise SettingsError(
            f'[{path} · allowed_senders] must be a list of addresses, e.g. ["a@x.gov.uk", '
            '"@x.gov.uk"].'
        )
    data["allowed_senders"] = tuple(x.strip().lower() for x in senders)
    data.update(_oidc_lists(path, data))
    return _checked(path, Settings(**data))


def _oidc_lists(path: Path, data: dict[str, object]) -> dict[str, object]:
    """oidc_scopes and oidc_role_map as the Settings hold them (tuples); their role names are
    checked where they are used (formtool.access.oidc), above this module."""
    found: dict[str, object] = {}
    scopes = data.get("oidc_scopes", list(Settings.oidc_scopes))
    if not isinstance(scopes, list) or not all(isinstance(x, str) and x for x in scopes):
        raise SettingsError(
            f'[{path} · oidc_scopes] must be a list of scopes, e.g. ["openid", "profile"].'
        )
    found["oidc_scopes"] = tuple(scopes)
    table = data.get("oidc_role_map", {})
    if not isinstance(table, dict) or not all(
        isinstance(v, str) or (isinstance(v, list) and all(isinstance(r, str) for r in v))
        for v in table.values()
    ):
        raise SettingsError(
            f"[{path} · oidc_role_map] must be a table of group = [roles], e.g. "
            '[oidc_role_map] then "qa-officers" = ["officer"].'
        )
    found["oidc_role_map"] = tuple(
        (str(group), tuple(roles.split(",") if isinstance(roles, str) else roles))
        for group, roles in table.items()
    )
    return found


#: Settings written as text.
_TEXTS = (
    "council",
    "marking",
    "programme",
    "smtp",
    "smtp_user",
    "mail_from",
    "web_address",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_roles_claim",
    "oidc_name_claim",
)


def _checked(path: Path, settings: Settings) -> Settings:
    for name in _TEXTS:
        if not isinstance(getattr(settings, name), str):
            raise SettingsError(f'[{path} · {name}] is text: put it in quotes ({name} = "...").')
    if settings.marking.upper() not in MARKINGS:
        raise SettingsError(
            f"[{path} · marking] '{settings.marking}' is not a Government "
            f"Security Classification. Use one of {', '.join(MARKINGS)}."
        )
    if not isinstance(settings.min_base, int) or settings.min_base < 1:
        raise SettingsError(f"[{path} · min_base] must be a whole number of audits, 1 or more.")
    for name, (unit, most) in _DURATIONS.items():
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
            raise SettingsError(
                f"[{path} · {name}] must be a whole number of {unit}, from 1 to {most}."
            )
    _check_oidc(path, settings)
    return replace(settings, council=settings.council.strip(), marking=settings.marking.upper())


def _check_oidc(path: Path, settings: Settings) -> None:
    """The council sign-in settings hang together (the provider itself is asked only when
    somebody signs in)."""
    if not settings.oidc:
        return
    issuer = settings.oidc_issuer
    local = re.match(r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)", issuer)
    if not issuer.startswith("https://") and not local:
        raise SettingsError(
            f"[{path} · oidc_issuer] must be an https:// address (the provider's issuer, e.g. "
            "https://login.microsoftonline.com/TENANT-ID/v2.0)."
        )
    if not settings.oidc_client_id.strip():
        raise SettingsError(
            f"[{path} · oidc_client_id] is needed with oidc_issuer: the application (client) "
            "id of formtool's app registration."
        )
    if "openid" not in settings.oidc_scopes:
        raise SettingsError(f'[{path} · oidc_scopes] must include "openid".')
    if settings.oidc_roles_claim not in ("groups", "roles"):
        raise SettingsError(f'[{path} · oidc_roles_claim] must be "groups" or "roles".')
    if not settings.oidc_role_map:
        raise SettingsError(
            f"[{path} · oidc_role_map] is needed with oidc_issuer: which groups give which "
            'formtool roles, e.g. [oidc_role_map] then "qa-officers" = ["officer"].'
        )


#: The durations a council sets, with the longest that makes sense for each.
_DURATIONS = {
    "session_idle_minutes": ("minutes", 24 * 60),
    "session_hours": ("hours", 7 * 24),
    "access_log_days": ("days", 100 * 366),
}
