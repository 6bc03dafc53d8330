"""A second factor for local accounts: time-based one-time codes (TOTP, RFC 6238: 6 digits,
30-second steps, HMAC-SHA1, as every authenticator app makes them), by pyotp.

- Setting it up: a new random secret is shown as text (base32) and as a QR code drawn here
  (segno, an inline SVG: nothing is fetched, no script runs), and saved only once a code made
  from it is typed back.
- Signing in: after the right password, the code. One step of clock drift either way is
  allowed, and each code is accepted once only (the store keeps the last step used).
- An admin must have it while the council's identity provider is not configured (`required`).
- A lost authenticator: `reset` (`formtool users totp-reset NAME`) removes the secret and ends
  the account's sessions.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

import pyotp
import segno

from formtool.access.roles import Account
from formtool.errors import AccountError
from formtool.settings import Settings
from formtool.store import Store

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # a code of the step before or after now is still accepted
ISSUER = "formtool"  # the label an authenticator app shows above the code
_CODE = re.compile(r"\d{6}")


class CodeError(AccountError):
    """A code was not accepted; the message says why (counted like a wrong password)."""


def new_secret() -> str:
    """A new random secret: 32 base32 characters (160 bits, RFC 4226's recommendation)."""
    return pyotp.random_base32()


def shown_secret(secret: str) -> str:
    """The secret in groups of four, as people type it into an app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, name: str, council: str = "") -> str:
    """The otpauth:// address a QR code carries: the app shows `council` (or formtool) and
    the account's name above the code."""
    issuer = f"{ISSUER} ({council})" if council else ISSUER
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as an inline SVG element (no XML declaration), labelled for
    screen readers."""
    svg: str = segno.make(uri, error="m").svg_inline(
        scale=4, light="#fff", title="QR code to scan with your authenticator app"
    )
    return svg


def code_text(text: str) -> str:
    """The code typed (spaces allowed), or CodeError if it is not 6 digits."""
    code = re.sub(r"\s", "", text)[:20]
    if not _CODE.fullmatch(code):
        raise CodeError(
            f"The code is the {DIGITS} digits your authenticator app shows now. Type them again."
        )
    return code


def matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step whose code is `code`, within the allowed drift of `at` (seconds since
    the epoch), or None."""
    totp, now = pyotp.TOTP(secret), int(at) // STEP_SECONDS
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def required(account: Account, settings: Settings, source: str = "local") -> bool:
    """An admin's local account must have an authenticator while the council's identity
    provider is not configured (then the break-glass admin is the only way in)."""
    return "admin" in account.roles and source == "local" and not settings.oidc


def enrolled(db: Store, name: str) -> bool:
    return bool(db.totp_state(name).totp_secret)


def enrol(db: Store, name: str, secret: str, code: str, at: float) -> None:
    """Save `secret` for `name` once `code` shows the app holds it (CodeError if not). The
    confirming code cannot then sign in."""
    found = db.totp_state(name)
    if found.source != "local":
        raise AccountError(
            f"{found.name} signs in with the council's account, whose own sign-in asks for "
            "the second factor: formtool keeps no authenticator for it."
        )
    if not re.fullmatch(r"[A-Z2-7]{32}", secret):
        raise AccountError("The new secret was not recognised. Reload the page and start again.")
    step = matching_step(secret, code_text(code), at)
    if step is None:
        raise CodeError(
            "That code does not match the new secret. Check the app added the account shown "
            "here, and type the code it shows now (check the phone's clock is set "
            "automatically)."
        )
    db.enrol_totp(found.name, secret, step, dt.datetime.fromtimestamp(int(at), dt.UTC))


def check(db: Store, name: str, code: str, at: float) -> None:
    """Accept `code` for `name`'s sign-in, once only (CodeError saying why not)."""
    found = db.totp_state(name)
    if not found.totp_secret:
        raise CodeError(f"{found.name} has no authenticator set up. Sign in again.")
    step = matching_step(found.totp_secret, code_text(code), at)
    if step is None:
        raise CodeError(
            "That code is not right. Type the code your authenticator app shows now (check "
            "the phone's clock is set automatically)."
        )
    if not db.use_totp_step(found.name, step):
        raise CodeError(
            "That code has already been used. Wait for the app to show a new one and type it."
        )


def turn_off(db: Store, account: Account, code: str, at: float, settings: Settings) -> None:
    """Remove a user's own authenticator, proved by a current code (not for an admin who must
    keep it); every session of the account ends."""
    if required(account, settings):
        raise AccountError(
            "An admin must keep an authenticator while formtool has no council sign-in. To "
            "move to a new phone, ask another admin to run `formtool users totp-reset "
            f"{account.name}`, then set it up again."
        )
    check(db, account.name, code, at)
    db.remove_totp(account.name)


def reset(db: Store, name: str) -> int:
    """Remove `name`'s authenticator (lost or replaced) and end its sessions; how many ended.
    It signs in with its password alone next (an admin is then asked to set one up)."""
    return int(db.remove_totp(name))


@dataclass(frozen=True)
class Enrolment:
    """A new secret being set up, as the page shows it."""

    secret: str
    shown: str
    svg: str

    @classmethod
    def of(cls, secret: str, name: str, council: str = "") -> Enrolment:
        return cls(secret, shown_secret(secret), qr_svg(provisioning_uri(secret, name, council)))
