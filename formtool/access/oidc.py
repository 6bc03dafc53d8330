"""Signing in with the council's identity provider (OpenID Connect; almost always Microsoft
Entra ID): the authorization code flow with PKCE.

- `start`: a random state (kept in the store only as its SHA-256, with the nonce and the PKCE
  verifier, and in the browser's signed cookie so the answer must come back to the browser
  that asked), a nonce and an S256 code challenge; the browser goes to the provider.
- `finish`: the state is taken once (a replayed or 10-minute-old one is refused), the code is
  exchanged at the token endpoint with the verifier and the client secret, and the ID token's
  signature (RS256 or ES256, by a key from the provider's JWKS: cached, fetched again once
  for a key id it does not know), issuer, audience, expiry, issue time and nonce are checked.
- The roles come from the provider's group (or app role) claim on every sign-in, through the
  council's `oidc_role_map` (formtool.toml); a user whose groups give no role is refused. The
  account is made or updated with users.source "oidc" and users.oidc_subject "issuer|sub"; an
  account of the same name made here is never taken over.

The provider is reached with the standard library (its proxy settings apply), with a timeout,
and what it says is read up to a bound. Every failure is one line for the sign-in page
(`ProviderError`, `SignInRefused`), never a traceback; the refusal's `reason` goes to the
access log.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import jwt

from formtool.access.roles import Account, account_of, parse_roles
from formtool.errors import AccountError, FormtoolError, printable
from formtool.settings import Settings
from formtool.store import Store

SECRET_ENV = "FORMTOOL_OIDC_CLIENT_SECRET"  # the client secret: never in formtool.toml
CALLBACK_PATH = "/login/oidc/callback"  # the redirect URI registered with the provider
STATE_LIFETIME = dt.timedelta(minutes=10)  # to come back from the provider
ALGORITHMS = ("RS256", "ES256")
LEEWAY = 60  # seconds of clock difference allowed with the provider
HTTP_SECONDS = 10.0
MAX_ANSWER = 1_000_000  # bytes read from the provider at most
CACHE_SECONDS = 3600  # the discovery document and the keys are fetched again after this
MAX_GROUPS = 2000  # values of the roles claim looked at
_NAME = re.compile(r"[A-Za-z0-9._@-]{2,80}")  # as formtool.access.accounts' user names
_LOOPBACK = re.compile(r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)")


class ProviderError(FormtoolError):
    """The identity provider could not be used (unreachable, or an answer that is not
    OpenID Connect); the message is one line for the sign-in page."""


class SignInRefused(FormtoolError):
    """The provider's answer does not sign anybody in; the message is for the person, the
    reason for the access log, with the account name claimed when it is known."""

    def __init__(self, message: str, reason: str, name: str = "") -> None:
        super().__init__(message)
        self.reason, self.name = reason, name


def _again(what: str) -> str:
    return f"{what} Start again from the sign-in page."


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    roles_claim: str
    role_map: Mapping[str, tuple[str, ...]]
    name_claim: str

    @classmethod
    def of(cls, settings: Settings, environ: Mapping[str, str] = os.environ) -> OidcConfig | None:
        """The council's sign-in from formtool.toml and $FORMTOOL_OIDC_CLIENT_SECRET; None
        when it has none. AccountError names a role map entry that is not a formtool role."""
        if not settings.oidc:
            return None
        role_map: dict[str, tuple[str, ...]] = {}
        for group, roles in settings.oidc_role_map:
            try:
                role_map[group] = parse_roles(list(roles))
            except AccountError as exc:
                raise AccountError(f"[formtool.toml · oidc_role_map · {group}] {exc}") from None
        return cls(
            settings.oidc_issuer.strip(),
            settings.oidc_client_id.strip(),
            environ.get(SECRET_ENV, ""),
            settings.oidc_scopes,
            settings.oidc_roles_claim,
            role_map,
            settings.oidc_name_claim,
        )


@dataclass(frozen=True)
class Identity:
    """Who the provider signed in: the account's name, its roles and why, where to go."""

    subject: str  # issuer|sub
    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]  # the values of the roles claim that gave a role
    next: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _naive(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(at), dt.UTC).replace(tzinfo=None)


# --- talking to the provider ---------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return printable(exc.reason, 120)
    return printable(exc, 120)


def http_json(url: str, form: Mapping[str, str] | None = None, basic: str = "") -> Any:
    """GET `url` (POST `form`, with HTTP Basic `basic` credentials) and read its JSON answer,
    within HTTP_SECONDS and MAX_ANSWER bytes."""
    request = urllib.request.Request(
        url,
        data=urlencode(form).encode() if form is not None else None,
        headers={"Accept": "application/json", "User-Agent": "formtool"},
    )
    if basic:
        request.add_header("Authorization", f"Basic {basic}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_SECONDS) as answer:
            body = answer.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as exc:
        said = _error_said(exc)
        raise ProviderError(
            f"The council's sign-in service refused formtool's request (HTTP {exc.code}"
            f"{': ' + said if said else ''}). Try again; if it goes on, tell whoever runs "
            "formtool (check oidc_client_id and FORMTOOL_OIDC_CLIENT_SECRET)."
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ProviderError(
            f"The council's sign-in service could not be reached ({_reason(exc)}). Try again "
            "in a minute; if it goes on, tell whoever runs formtool."
        ) from None
    try:
        if len(body) > MAX_ANSWER:
            raise ValueError("too long")
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ProviderError(
            f"The council's sign-in service gave an answer formtool cannot read (from "
            f"{printable(url, 200)}). Check oidc_issuer in formtool.toml."
        ) from None


def _error_said(exc: urllib.error.HTTPError) -> str:
    """The OAuth error a refusal names (RFC 6749 5.2), if any."""
    try:
        said = json.loads(exc.read(20_000))
    except (ValueError, OSError):
        return ""
    if not isinstance(said, dict):
        return ""
    parts = (said.get("error"), said.get("error_description"))
    return printable(" - ".join(str(p) for p in parts if p), 200)


Fetch = Callable[..., Any]


class OidcClient:
    """One council's provider: its discovery document and keys, cached for the process."""

    def __init__(
        self,
        config: OidcConfig,
        clock: Callable[[], float] = time.time,  # real time: seconds since the epoch
        fetch: Fetch = http_json,
    ) -> None:
        self.config, self.clock, self.fetch = config, clock, fetch
        self._lock = threading.Lock()
        self._discovered: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None
        self._refetched_for: set[str] = set()  # key ids the keys were fetched again for

    # --- discovery and keys ------------------------------------------------------------

    def _url(self, doc: Mapping[str, Any], field: str) -> str:
        """An endpoint from the discovery document: https (http on this computer only, as a
        test provider is)."""
        url = doc.get(field)
        if not isinstance(url, str) or not (
            url.startswith("https://") or (_LOOPBACK.match(url) and _LOOPBACK.match(self.issuer))
        ):
            raise ProviderError(
                f"The council's sign-in service's discovery document has no usable {field} "
                f"(it must be an https:// address). Check oidc_issuer in formtool.toml."
            )
        return url

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def discovery(self) -> dict[str, Any]:
        """The provider's discovery document (cached CACHE_SECONDS)."""
        with self._lock:
            if self._discovered and self.clock() - self._discovered[0] < CACHE_SECONDS:
                return self._discovered[1]
        doc = self.fetch(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if not isinstance(doc, dict) or doc.get("issuer") != self.issuer:
            said = printable(doc.get("issuer"), 200) if isinstance(doc, dict) else "nothing"
            raise ProviderError(
                f"The council's sign-in service calls itself '{said}', not "
                f"'{printable(self.issuer, 200)}'. Put its exact issuer in oidc_issuer in "
                "formtool.toml."
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            self._url(doc, field)
        with self._lock:
            self._discovered = (self.clock(), doc)
        return doc

    def _key_set(self, again: bool = False) -> jwt.PyJWKSet:
        """The provider's signing keys (cached CACHE_SECONDS; fetched now if `again`)."""
        with self._lock:
            cached = self._keys
        if cached is not None and not again and self.clock() - cached[0] < CACHE_SECONDS:
            return cached[1]
        data = self.fetch(self._url(self.discovery(), "jwks_uri"))
        try:
            keys = jwt.PyJWKSet.from_dict(data)
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, ValueError, KeyError):
            raise ProviderError(
                "The council's sign-in service publishes no signing key formtool can use "
                "(RS256 or ES256). Tell whoever runs formtool."
            ) from None
        with self._lock:
            self._keys = (self.clock(), keys)
        return keys

    def signing_key(self, kid: str | None, alg: str) -> Any:
        """The provider's key named `kid` for `alg`; the keys are fetched again once for a
        key id not seen before (the provider rotated its keys)."""
        found = _find_key(self._key_set(), kid, alg)
        if found is None and kid is not None and kid not in self._refetched_for:
            with self._lock:
                if len(self._refetched_for) > 100:
                    self._refetched_for.clear()
                self._refetched_for.add(kid)
            found = _find_key(self._key_set(again=True), kid, alg)
        if found is None:
            raise SignInRefused(
                _again(
                    "The council's sign-in answer is signed with a key its service does not "
                    "publish, so it was not trusted."
                ),
                f"ID token signed with an unknown key (kid {printable(kid, 80)}, {alg})",
            )
        return found

    # --- the flow ----------------------------------------------------------------------

    def start(self, db: Store, redirect_uri: str, next_path: str, address: str) -> tuple[str, str]:
        """Start a sign-in: the provider's authorization address to send the browser to, and
        the state's hash for the browser's own cookie."""
        doc = self.discovery()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 asks 43 to 128
        at = _naive(self.clock())
        db.begin_oidc_sign_in(
            state_hash(state), nonce, verifier, next_path, address, at, at - STATE_LIFETIME
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self._url(doc, "authorization_endpoint")
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state_hash(state)

    def finish(
        self, db: Store, redirect_uri: str, answer: Mapping[str, str], bound: str | None
    ) -> Identity:
        """The provider's answer (the callback's query) to the sign-in begun in this browser
        (`bound`: the state hash its cookie holds): who signed in, with which roles."""
        state = answer.get("state", "")
        begun = db.take_oidc_sign_in(state_hash(state)) if 0 < len(state) <= 200 else None
        if begun is None or _naive(self.clock()) - begun.created_at > STATE_LIFETIME:
            raise SignInRefused(
                _again("This sign-in has already been used, or was started over 10 minutes ago."),
                "state unknown, already used or expired (a replayed or stale answer)",
            )
        if bound is None or not hmac.compare_digest(bound, state_hash(state)):
            raise SignInRefused(
                _again("This sign-in was started in another browser or window."),
                "state not started by this browser",
            )
        if "error" in answer:
            said = " - ".join(answer.get(k, "") for k in ("error", "error_description"))
            raise SignInRefused(
                _again(f"The council's sign-in did not complete ({printable(said, 200)})."),
                f"the provider answered {printable(said, 200)}",
            )
        if answer.get("iss", self.issuer) != self.issuer:  # RFC 9207: a mix-up of providers
            raise SignInRefused(
                _again("The sign-in answer came from another identity provider."),
                f"answer from issuer {printable(answer.get('iss'), 200)}",
            )
        code = answer.get("code", "")
        if not code or len(code) > 4000:
            raise SignInRefused(
                _again("The council's sign-in answer has no code."), "no authorization code"
            )
        id_token = self._exchange(code, str(begun.code_verifier), redirect_uri)
        claims = self.validate(id_token, str(begun.nonce), begun.created_at)
        return self.identity(claims, str(begun.next))

    def _exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token for `code`, from the token endpoint (the client authenticates with its
        secret, by HTTP Basic unless the provider only takes it in the form)."""
        doc, config = self.discovery(), self.config
        if not config.client_secret:
            raise ProviderError(
                f"The council sign-in is not set up on this server: {SECRET_ENV} is not set. "
                "Tell whoever runs formtool."
            )
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": config.client_id,
        }
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        basic = ""
        if "client_secret_basic" in methods:
            pair = f"{quote(config.client_id, safe='')}:{quote(config.client_secret, safe='')}"
            basic = base64.b64encode(pair.encode()).decode("ascii")
        else:
            form["client_secret"] = config.client_secret
        answer = self.fetch(self._url(doc, "token_endpoint"), form, basic)
        id_token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(id_token, str) or not id_token:
            raise ProviderError(
                "The council's sign-in service gave no ID token (check that oidc_scopes "
                'includes "openid"). Tell whoever runs formtool.'
            )
        return id_token

    def validate(self, id_token: str, nonce: str, begun_at: dt.datetime) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, expiry, issue time and
        nonce are right (SignInRefused saying which is not)."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInRefused(
                _again("The council's sign-in answer is not a valid ID token."),
                "the ID token cannot be read",
            ) from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise SignInRefused(
                _again("The council's sign-in answer is signed in a way formtool does not trust."),
                f"ID token signed with {printable(alg, 20)}, not RS256 or ES256",
            )
        key = self.signing_key(header.get("kid"), str(alg))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[str(alg)],
                audience=self.config.client_id,
                issuer=self.issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                    "verify_exp": False,  # checked below on this server's clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from None
        self._check_times(claims, begun_at)
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.config.client_id:
            raise SignInRefused(
                _again("The council's sign-in answer was made for another application."),
                "ID token with several audiences and another authorised party (azp)",
            )
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(
            claims["nonce"].encode(), nonce.encode()
        ):
            raise SignInRefused(
                _again("The council's sign-in answer does not belong to this sign-in."),
                "ID token nonce does not match the one sent (a replayed or injected token)",
            )
        return claims

    def _check_times(self, claims: Mapping[str, Any], begun_at: dt.datetime) -> None:
        """Expiry, issue time and not-before on this server's clock (real time), with LEEWAY
        for the difference between clocks: an ID token is issued during its own sign-in."""
        now, times = self.clock(), [claims.get(k) for k in ("exp", "iat", "nbf")]
        if not all(isinstance(t, int | float) for t in [*times[:2], times[2] or 0]):
            raise SignInRefused(
                _again("The council's sign-in answer's times cannot be read."),
                "ID token exp/iat/nbf not numbers",
            )
        exp, iat, nbf = (float(t or 0) for t in times)
        if exp < now - LEEWAY:
            raise SignInRefused(
                _again("The council's sign-in answer has expired."),
                "ID token expired (exp is past)",
            )
        started = begun_at.replace(tzinfo=dt.UTC).timestamp()
        if iat > now + LEEWAY or iat < started - LEEWAY:
            raise SignInRefused(
                _again(
                    "The council's sign-in answer was not issued for this sign-in (its time "
                    "is wrong; check this server's clock)."
                ),
                "ID token iat outside this sign-in (issued before it began, or in the future)",
            )
        if nbf > now + LEEWAY:
            raise SignInRefused(
                _again(
                    "The council's sign-in answer is not valid yet (check this server's clock)."
                ),
                "ID token not valid yet (nbf)",
            )

    def identity(self, claims: Mapping[str, Any], next_path: str) -> Identity:
        """The account's name and roles from the validated claims."""
        subject = f"{self.issuer}|{printable(claims['sub'], 250)}"
        name = claims.get(self.config.name_claim)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SignInRefused(
                f"Your council account's {self.config.name_claim} "
                f"('{printable(name, 80)}') cannot name a formtool account. Tell whoever "
                "runs formtool (oidc_name_claim in formtool.toml).",
                f"unusable {self.config.name_claim} claim for {subject}",
            )
        groups = self._groups(claims, name, subject)
        given = [g for g in groups if g in self.config.role_map]
        roles = [r for g in given for r in self.config.role_map[g]]
        if not roles:
            shown = ", ".join(printable(g, 60) for g in groups[:10]) or "none"
            raise SignInRefused(
                f"Your council account ({name}) is in none of the groups that give a formtool "
                "role, so it cannot sign in here. Ask your QA lead to have you added to one.",
                f"no mapped group for {subject} ({self.config.roles_claim}: {shown})",
                name,
            )
        return Identity(subject, name, parse_roles(roles), tuple(given), next_path)

    def _groups(self, claims: Mapping[str, Any], name: str, subject: str) -> list[str]:
        claim = self.config.roles_claim
        value = claims.get(claim)
        if value is None and claim in (claims.get("_claim_names") or {}):
            raise SignInRefused(
                "Your council account is in too many groups for its sign-in to list them, "
                "so formtool cannot tell your role. Ask IT to send only the groups assigned to "
                "formtool's app (or app roles) in the ID token.",
                f"{claim} claim not in the ID token (group overage) for {subject}",
                name,
            )
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            return []
        return [str(v)[:200] for v in value[:MAX_GROUPS] if isinstance(v, str)]


def _find_key(keys: jwt.PyJWKSet, kid: str | None, alg: str) -> Any:
    usable = [k for k in keys.keys if k.algorithm_name == alg and k.public_key_use in (None, "sig")]
    if kid is None:
        return usable[0].key if len(usable) == 1 else None
    return next((k.key for k in usable if k.key_id == kid), None)


def _refusal(exc: Exception) -> SignInRefused:
    """What PyJWT found wrong, for the person and the access log."""
    if isinstance(exc, jwt.InvalidAudienceError):
        return SignInRefused(
            _again(
                "The council's sign-in answer was made for another application (its "
                "audience is not formtool's client id)."
            ),
            f"ID token for another audience ({printable(exc, 120)})",
        )
    if isinstance(exc, jwt.InvalidIssuerError):
        return SignInRefused(
            _again("The council's sign-in answer comes from another issuer."),
            "ID token from another issuer",
        )
    if isinstance(exc, jwt.InvalidSignatureError):
        return SignInRefused(
            _again("The council's sign-in answer's signature is not right, so it was not trusted."),
            "ID token signature does not verify",
        )
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return SignInRefused(
            _again(f"The council's sign-in answer lacks the '{exc.claim}' claim."),
            f"ID token without {exc.claim}",
        )
    return SignInRefused(
        _again("The council's sign-in answer is not a valid ID token."),
        f"ID token refused ({printable(exc, 120)})",
    )


def sign_in(db: Store, who: Identity, at: float) -> Account:
    """The formtool account `who` signs in to, made or updated with the roles of this sign-in
    (SignInRefused when it is deactivated here, or its name is another account's)."""
    try:
        row = db.oidc_account(who.subject, who.name, ",".join(who.roles), _naive(at))
    except AccountError as exc:
        raise SignInRefused(str(exc), f"{exc} ({who.subject})", who.name) from None
    return account_of(row.name, row.role, False, row.active)


def redirect_uri(settings: Settings, base_url: str) -> str:
    """The callback address registered with the provider: under web_address when it is set
    (behind a proxy the server may not know its public address), else this request's."""
    base = settings.web_address.strip() or base_url
    return base.rstrip("/") + CALLBACK_PATH
