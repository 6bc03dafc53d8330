"""What keeps the web workspace safe, in one place.

- Roles and what each may do live in formtool.access.roles (`ROLES`); the route wrappers in
  app.py check them on every request. Sessions and the sign-in throttle are in
  formtool.access.accounts, their records in the store.
- CSRF: one token per session (derived from the server-side session's id once signed in), in a
  hidden field of every form, compared in constant time on every POST; a POST whose Origin
  names another site is refused before its body is read.
- Upload limits: per file, per request and a file count, enforced while the body streams
  (`read_upload`), so an oversized upload is refused before anything is stored.
- Response headers: a strict Content-Security-Policy (no inline script), no framing, no
  referrer, no sniffing, no caching of pages that may hold personal data (`SecurityHeaders`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from formtool.read.limits import MAX_FILE_BYTES

log = logging.getLogger("formtool.web")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
CSRF_FIELD = "csrf"
SESSION_COOKIE = "formtool_sid"  # the random id of a server-side session (formtool.access.accounts)


# --- CSRF ---------------------------------------------------------------------------------


def _expected_csrf(request: Request) -> object:
    """The token this browser's forms must carry: derived from the server-side session's id
    when signed in (a new session, a new token), else whatever the anonymous cookie holds."""
    session_id = getattr(request.state, "session_id", None)
    if session_id:
        return hashlib.sha256(f"csrf:{session_id}".encode()).hexdigest()
    return request.session.get(CSRF_FIELD)


def csrf_token(request: Request) -> str:
    """The CSRF token for this browser's forms (made and kept in the anonymous cookie on
    first use, before signing in)."""
    token = _expected_csrf(request)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    token = _expected_csrf(request)
    return (
        isinstance(token, str)
        and isinstance(sent, str)
        and len(token) >= 32
        and hmac.compare_digest(token.encode(), sent.encode())
    )


def same_origin(request: Request, trust_forwarded_host: bool = False) -> bool:
    """False when the browser says the request comes from another site: Sec-Fetch-Site, or an
    Origin naming another host. ("Origin: null", which browsers send under Referrer-Policy
    no-referrer, proves nothing either way: the CSRF token decides.) X-Forwarded-Host counts
    only behind a named proxy (`serve --proxy`)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    names = ("host", "x-forwarded-host") if trust_forwarded_host else ("host",)
    hosts = {request.headers.get(h, "").lower() for h in names}
    return re.sub(r"^[a-z][a-z0-9+.-]*://", "", origin.lower()) in hosts - {""}


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

    def current_upload(self) -> UploadFile | None:
        """The file whose bytes `on_part_data` is being given, or None inside a plain field.

        Starlette has no public way to say which part is streaming, so this reads its private
        `MultiPartParser._current_part` (made in `on_part_begin`, its `file` set once the part's
        headers are read). pyproject bounds starlette to versions tested with it, and
        tests/test_fences.py fails if a new one no longer keeps the part there.
        """
        return self._current_part.file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self.current_upload()
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


# --- slow and broken requests -------------------------------------------------------------


class BodyTimeout(Exception):
    """A request body did not arrive within the time allowed."""


class RequestGuard:
    """Cuts off a request whose body takes longer than `body_seconds` to arrive (408: a client
    trickling bytes would otherwise hold a worker forever), and turns a client that goes away
    mid-request into one INFO line in the log instead of an error with a traceback. Neither
    line names the page: paths carry audit ids, and the server log holds no personal data."""

    def __init__(self, app: ASGIApp, body_seconds: float = 120.0) -> None:
        self.app, self.body_seconds = app, body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import anyio
        from starlette.requests import ClientDisconnect

        deadline = anyio.current_time() + self.body_seconds
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except ClientDisconnect:
            log.info("%s request ended early: the client disconnected", scope.get("method"))
        except BodyTimeout:
            log.info(
                "%s request cut off: its body took over %.0f s to arrive",
                scope.get("method"),
                self.body_seconds,
            )
            if not started:
                await _plain(send, 408, "The request took too long to arrive. Try again.")


async def _plain(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})
