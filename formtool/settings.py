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
"""

from __future__ import annotations

import os
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
    return _checked(path, Settings(**data))


#: Settings written as text.
_TEXTS = ("council", "marking", "programme", "smtp", "smtp_user", "mail_from", "web_address")


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
    return replace(settings, council=settings.council.strip(), marking=settings.marking.upper())


#: The durations a council sets, with the longest that makes sense for each.
_DURATIONS = {
    "session_idle_minutes": ("minutes", 24 * 60),
    "session_hours": ("hours", 7 * 24),
    "access_log_days": ("days", 100 * 366),
}
