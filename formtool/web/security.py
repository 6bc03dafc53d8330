"""What keeps the web workspace safe, in one place.

- Roles -> what each may do (`CAN`), checked by the route wrappers in app.py on every request.
- Sign-in throttling: failure counters per name and per client address, an increasing wait
  and a lockout, in memory (`Throttle`).
- CSRF: one random token per session, in a hidden field of every form, compared in constant
  time on every POST; a POST whose Origin names another site is refused before its body is read.
- Upload limits: per file, per request and a file count, enforced while the body streams
  (`read_upload`), so an oversized upload is refused before anything is stored.
- Response headers: a strict Content-Security-Policy (no inline script), no framing, no
  referrer, no sniffing, no caching of pages that may hold personal data (`SecurityHeaders`).
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from formtool.read.limits import MAX_FILE_BYTES

#: What each role may do. viewer: anonymised figures; officer: also case pages and the monthly
#: cycle (allocate, send, import, check, sign off, close, file packs); moderator: also
#: moderation (seed 004: a head of service's moderated grade overrides the auditor's).
CAN: dict[str, frozenset[str]] = {
    "viewer": frozenset({"figures"}),
    "officer": frozenset({"figures", "cases", "cycle"}),
    "moderator": frozenset({"figures", "cases", "cycle", "moderate"}),
}
CAPABILITY_NAMES = {
    "figures": "see the figures",
    "cases": "see case files",
    "cycle": "run the audit cycle",
    "moderate": "moderate audits",
}

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
SESSION_HOURS = 8  # a working day; signed in again after it
CSRF_FIELD = "csrf"


def may(role: str, capability: str) -> bool:
    return capability in CAN.get(role, frozenset())


# --- CSRF ---------------------------------------------------------------------------------


def csrf_token(session: dict[str, object]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_ok(session: dict[str, object], sent: object) -> bool:
    token = session.get(CSRF_FIELD)
    return (
        isinstance(token, str)
        and isinstance(sent, str)
        and len(token) >= 32
        and hmac.compare_digest(token.encode(), sent.encode())
    )


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site: Sec-Fetch-Site, or an
    Origin naming another host. ("Origin: null", which browsers send under Referrer-Policy
    no-referrer, proves nothing either way: the CSRF token decides.)"""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    hosts = {request.headers.get(h, "").lower() for h in ("host", "x-forwarded-host")}
    return re.sub(r"^[a-z][a-z0-9+.-]*://", "", origin.lower()) in hosts - {""}


# --- sign-in throttling --------------------------------------------------------------------


@dataclass
class _Failures:
    count: int
    last: float


class Throttle:
    """Failed sign-ins per key (a name, a client address): after `free` failures each retry
    waits twice as long as the last (1 s, 2 s, 4 s ... up to `cap`); after `lock_after`
    failures the key is locked out for `lockout` seconds. Forgotten `lockout` seconds after the
    last failure; never more than `max_keys` remembered (the oldest go first)."""

    def __init__(
        self,
        free: int = 3,
        cap: float = 60.0,
        lock_after: int = 10,
        lockout: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.free, self.cap, self.lock_after, self.lockout = free, cap, lock_after, lockout
        self.clock, self.max_keys = clock, max_keys
        self._seen: dict[str, _Failures] = {}

    def _delay(self, count: int) -> float:
        if count >= self.lock_after:
            return self.lockout
        return 0.0 if count < self.free else min(self.cap, 2.0 ** (count - self.free))

    def wait(self, key: str) -> float:
        """Seconds before `key` may try again (0: now)."""
        found = self._seen.get(key)
        if found is None:
            return 0.0
        elapsed = self.clock() - found.last
        if elapsed >= self.lockout:
            del self._seen[key]
            return 0.0
        return max(0.0, self._delay(found.count) - elapsed)

    def failed(self, key: str) -> None:
        found = self._seen.pop(key, None)  # re-inserted last: the dict stays oldest-first
        self._seen[key] = _Failures((found.count if found else 0) + 1, self.clock())
        while len(self._seen) > self.max_keys:
            del self._seen[next(iter(self._seen))]

    def succeeded(self, key: str) -> None:
        self._seen.pop(key, None)


class SignInGuard:
    """The two throttles a sign-in passes: one per name, a looser one per client address (an
    office behind one address has many people)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.names = Throttle(free=3, lock_after=10, clock=clock)
        self.addresses = Throttle(free=10, lock_after=50, clock=clock)

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return name.strip().casefold()[:80], address

    def wait(self, name: str, address: str) -> float:
        who, where = self._keys(name, address)
        return max(self.names.wait(who), self.addresses.wait(where))

    def failed(self, name: str, address: str) -> None:
        who, where = self._keys(name, address)
        self.names.failed(who)
        self.addresses.failed(where)

    def succeeded(self, name: str) -> None:
        self.names.succeeded(self._keys(name, "")[0])


# --- uploads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    file_bytes: int = MAX_FILE_BYTES  # formtool import refuses bigger files anyway
    request_bytes: int = 100 * 1024 * 1024
    files: int = 200
    fields: int = 20
    field_bytes: int = 64 * 1024  # a reason or comment


class UploadRefused(MultiPartException):
    """An upload over a limit; the message says which and what to do."""


def megabytes(size: int) -> str:
    return f"{size / 1_048_576:.0f} MB" if size >= 1_048_576 else f"{size / 1024:.0f} KB"


class _LimitedParser(MultiPartParser):
    """Starlette's streaming multipart parser, refusing a file as soon as it passes the
    per-file limit (so it is never written out whole)."""

    def __init__(
        self, headers: Headers, stream: AsyncGenerator[bytes, None], limits: Limits
    ) -> None:
        super().__init__(
            headers,
            stream,
            max_files=limits.files,
            max_fields=limits.fields,
            max_part_size=limits.field_bytes,
        )
        self.limits = limits
        self._file_size = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self._current_part.file
        if upload is not None:
            self._file_size += end - start
            if self._file_size > self.limits.file_bytes:
                raise UploadRefused(
                    f"{printable_name(upload.filename or 'A file')} is over "
                    f"{megabytes(self.limits.file_bytes)}, the most a return may be. Nothing "
                    "was imported: ask the auditor to remove pasted images and save it again, "
                    "then upload the files again."
                )
        super().on_part_data(data, start, end)


async def _counted(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise UploadRefused(too_big(limit))
        yield chunk


def too_big(limit: int) -> str:
    return (
        f"The upload is over {megabytes(limit)}, the most one upload may be. Nothing was "
        "imported: upload the files in smaller batches."
    )


async def read_upload(request: Request, limits: Limits) -> FormData:
    """The multipart form, parsed as it streams in; UploadRefused past any limit (the
    Content-Length is checked before a byte is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.request_bytes:
        raise UploadRefused(too_big(limits.request_bytes))
    try:
        return await _LimitedParser(
            request.headers, _counted(request.stream(), limits.request_bytes), limits
        ).parse()
    except UploadRefused:
        raise
    except MultiPartException as exc:
        raise UploadRefused(
            f"The upload could not be read ({exc.message}). Nothing was "
            f"imported: send at most {limits.files} files at a time."
        ) from None


#: Characters a saved upload's name never keeps: control and bidirectional characters, path
#: separators, and (on Windows, where they are not allowed) :*?"<>|.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f/\\\u200e\u200f\u202a-\u202e\u2066-\u2069"
    + (r':*?"<>|' if os.name == "nt" else "")
    + "]"
)


def printable_name(name: str) -> str:
    from formtool.errors import printable

    return printable(name, 120)


def safe_file_name(name: str, taken: set[str]) -> str:
    """An uploaded file's name, safe to create in a private folder and as close to the
    auditor's name as that allows (people recognise their files): the last path part only, no
    control, bidirectional or reserved characters, not hidden, at most about 110 characters,
    extension kept, unique in `taken` (which it joins). Pages escape it when they show it."""
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = _UNSAFE.sub("_", unicodedata.normalize("NFC", base)).strip(" .") or "upload"
    stem, dot, suffix = base.rpartition(".")
    if not dot or len(suffix) > 10:
        stem, suffix = base, ""
    stem = stem[:100].lstrip(".") or "upload"
    candidate, n = stem + (f".{suffix}" if suffix else ""), 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n})" + (f".{suffix}" if suffix else "")
    taken.add(candidate.casefold())
    return candidate


# --- response headers --------------------------------------------------------------------


class SecurityHeaders:
    """Adds the security headers to every response, `Cache-Control: no-store` to every page
    but the static files, and `Server-Timing` (the app's own time, for the benchmark)."""

    def __init__(self, app: ASGIApp, behind_https: bool = False) -> None:
        self.app, self.behind_https = app, behind_https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"cache-control" or static
                ]
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (
                        b"server-timing",
                        f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode(),
                    ),
                ]
                headers.append((b"cache-control", b"max-age=3600" if static else b"no-store"))
                if self.behind_https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
