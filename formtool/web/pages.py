"""What every page of the web workspace shares: the workspace (store, settings, private
folder), rendering a template with the signed-in user, one-line problems, flash messages and
downloads."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from formtool.access import accounts
from formtool.access.accounts import SessionRules, SignInThrottle
from formtool.access.roles import Account
from formtool.errors import printable
from formtool.settings import Settings
from formtool.store import Store, Work, failure
from formtool.web import queries
from formtool.web.security import SESSION_COOKIE, Limits, csrf_token

log = logging.getLogger("formtool.web")

MIME = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook",
}


@dataclass(frozen=True)
class MailConfig:
    """Where `Send` goes: SMTP when a server is set (FORMTOOL_SMTP=HOST:PORT), else .eml
    drafts to download."""

    sender: str = "qa-team@example.invalid"
    smtp: str = ""
    starttls: bool = False
    user: str = ""


@dataclass
class Draft:
    """An allocation previewed and not yet confirmed: its choices, and its uploaded files as
    written for this request into `folder` (the database keeps them between requests, so any
    worker confirms what another previewed: allocate.py)."""

    folder: Path
    month: str
    seed: int
    user: str
    files: dict[str, Path]


REPORT_SECONDS = 60  # a report page's figures are reused this long (see views._report)
#: The workspace_state generation every change through the workspace moves on, on any worker.
REPORTS_GENERATION = "reports"


@dataclass
class CachedReport:
    """A period's PMU figures and report as last computed, with its charts as data: URLs."""

    figures: Any
    document: Any
    images: list[list[str]]  # per part of the document
    key: str  # digest of what the figures were drawn from (queries.figures_key)
    as_of: dt.date
    generation: int  # the workspace's generation when drawn (store.generation("reports"))
    made: float = field(default_factory=time.monotonic)
    made_at: dt.datetime = field(default_factory=dt.datetime.now)  # real time

    def fresh(self, today: dt.date, generation: int) -> bool:
        """Drawn today, within REPORT_SECONDS, and nothing changed since on any worker."""
        young = time.monotonic() - self.made < REPORT_SECONDS
        return self.as_of == today and self.generation == generation and young


@dataclass
class Workspace:
    """What every view shares: the store, the settings and the server's private folder."""

    db: Store
    settings: Settings
    behind_https: bool
    throttle: SignInThrottle
    limits: Limits
    mail: MailConfig
    work_dir: Path
    env: jinja2.Environment
    sessions: SessionRules = field(default_factory=SessionRules)
    trusted_proxy: str | None = None  # the one address whose X-Forwarded-* headers count
    hashing: int = 0  # password hashes being computed now (see call_hashing)
    #: This worker's reports by period and audience, each used only while the database's
    #: generation is the one it was drawn at (views._report); previews and the last allocation
    #: shown live in the database (allocate.py), so any worker answers any request.
    reports: OrderedDict[str, CachedReport] = field(default_factory=OrderedDict)

    def folder(self, *parts: str) -> Path:
        path = self.work_dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path


async def workspace_changed(ws: Workspace) -> None:
    """Something may have changed: every worker's cached reports are drawn again (the
    generation moves on in the database, in its own transaction). A database that cannot
    take it is logged: this worker's cache is cleared all the same, the others' age out."""
    ws.reports.clear()
    try:
        await call(ws.db.bump_generation, REPORTS_GENERATION)
    except Exception as exc:  # the view's own page already says what the database did
        log.warning("Could not tell the other workers to redraw reports: %s", printable(exc, 300))


#: `app._page` and `app._action`, handed to each feature module's `routes()` so that every
#: route of every module is signed in, role-checked and (POST) CSRF-checked the same way.
PageRoute = Callable[..., Any]
ActionRoute = Callable[..., Any]


#: A path on this site: one leading /, no backslash, no control character or space (never
#: `//host` or `/\\host`, which browsers treat as another site).
_SITE_PATH = re.compile(r"/(?![/\\])[^\\\x00-\x20\x7f]*")


def site_path(text: str) -> bool:
    """Whether `text` is a path on this site, safe to redirect to (sign-in's `next`, a
    step's `back`)."""
    return len(text) < 2000 and _SITE_PATH.fullmatch(text) is not None


def ws_of(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.ws
    return workspace


async def call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a (blocking) library function in a worker thread."""
    return await run_in_threadpool(func, *args, **kwargs)


async def call_hashing(ws: Workspace, func: Callable[..., Any], *args: Any) -> Any:
    """Run a library call that computes password hashes once one of the few hashing slots is
    free. The wait happens here, on the event loop, not in a worker thread: however many
    sign-ins arrive, pages keep their threads. HashingBusy after accounts.HASH_WAIT seconds."""
    deadline = time.monotonic() + accounts.HASH_WAIT
    while ws.hashing >= accounts.HASH_SLOTS:
        if time.monotonic() >= deadline:
            raise accounts.HashingBusy(
                "Too many people are signing in at once. Wait a few seconds and try again."
            )
        await asyncio.sleep(0.02)
    ws.hashing += 1
    try:
        return await call(func, *args)
    finally:
        ws.hashing -= 1


# --- rendering -----------------------------------------------------------------------------


def render_page(
    request: Request, who: Account | None, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    ws = ws_of(request)
    html = ws.env.get_template(template).render(
        who=who,
        csrf=csrf_token(request),
        flash=request.session.pop("flash", None),
        settings=ws.settings,
        path=request.url.path,
        may=lambda c: bool(who and who.may(c)),
        open_concerns=getattr(request.state, "open_concerns", 0),  # app._page counts them
        **context,
    )
    return HTMLResponse(html, status_code=status)


def problem(
    request: Request, who: Account | None, status: int, title: str, message: str, back: str = "/"
) -> HTMLResponse:
    return render_page(
        request, who, "problem.html", status, title=title, message=message, back=back
    )


#: The first sentence of every page the database's failure makes (see database_problem), and
#: what to do, the last.
DATABASE_DOWN = "The database is unreachable or cannot be used just now, so this could not be done."
AFTER_OUTAGE = (
    "Try again in a minute or two. If it goes on, tell whoever runs formtool: the server's log "
    "says what failed and how to fix it."
)


def route_name(request: Request) -> str:
    """The route's pattern, for the server log: the path itself may carry an audit id."""
    route = request.scope.get("route")
    return getattr(route, "path", "a page")


def saved_sentence(work: Work | None) -> str:
    """What this request had saved when the database failed, as a true sentence."""
    if work is None or (work.saved == 0 and not work.in_doubt):
        return "Nothing was changed."
    if work.in_doubt:
        return (
            f"{work.saved} change(s) were saved before it failed; the last one may or may not "
            "have been: check before doing it again."
        )
    return f"{work.saved} change(s) were saved before it failed; the one after was not."


def database_problem(
    request: Request, who: Account | None, exc: BaseException, back: str = "/"
) -> HTMLResponse:
    """The database failed: 503 with what happened and what to do when it is down, full,
    damaged or read-only (the details, with where the database is, go to the server's log
    only); a 500 like any other bug when formtool used it wrongly."""
    told = failure(exc, ws_of(request).db.url)
    saved = saved_sentence(getattr(request.state, "work", None))
    if not told.outage:
        log.error("database error on %s: %s", route_name(request), told.text())
        return problem(
            request,
            who,
            500,
            "Something went wrong",
            f"formtool stopped on an unexpected problem with its database. {saved} The "
            "details are in the server's log; please report it.",
            back,
        )
    log.warning("%s on %s: %s", told.title, route_name(request), told.text())
    response = problem(
        request, who, 503, told.title, f"{DATABASE_DOWN} {saved} {AFTER_OUTAGE}", back
    )
    response.headers["retry-after"] = "60"
    return response


def flash(request: Request, text: str, kind: str = "ok") -> None:
    request.session["flash"] = {"kind": kind, "text": printable(text, 600)}


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def download(data: bytes, name: str) -> Response:
    safe = queries.download_name(name)
    return Response(
        data,
        media_type=MIME.get(Path(safe).suffix.lower(), "application/octet-stream"),
        headers={
            "content-disposition": f'attachment; filename="{safe}"; '
            f"filename*=UTF-8''{quote(printable(name))}"
        },
    )


def client_address(request: Request) -> str:
    """The client's address: the connection's peer, or what a named proxy says it is
    (`serve --proxy`; X-Forwarded-For from anyone else is ignored)."""
    return request.client.host if request.client else "unknown"


async def log_access(
    request: Request, user: str, action: str, *, audit_id: str | None = None, detail: str = ""
) -> None:
    """An entry in the access log for `user` (an account name) at this client's address."""
    from formtool.access.log import record_access

    await call(
        record_access,
        ws_of(request).db,
        f"web:{user}",
        action,
        audit_id,
        client_address(request),
        detail,
    )


def set_session_cookie(response: Response, ws: Workspace, session_id: str) -> None:
    """The cookie naming a server-side session: HttpOnly, SameSite=Lax, Secure behind HTTPS,
    for the session's absolute lifetime at most."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(ws.sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=ws.behind_https,
    )


def audit_url(audit_id: str) -> str:
    return "/audits/" + quote(audit_id, safe="")
