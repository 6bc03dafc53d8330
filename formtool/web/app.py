"""The web workspace's routes (Datasette is the model: app.py holds the routes, each view is
thin and calls the library, templates are Jinja2 with autoescape). The views live in views.py
and allocate.py; what they share (rendering, the workspace) in pages.py.

Views check nothing themselves: every route is declared through `_page` (GET) or `_action`
(POST), which sign the user in, enforce the role, and for POSTs check the Origin, parse the
form under the upload limits and compare the CSRF token before the view runs. Library calls
run in a worker thread (they are blocking), and a `FormtoolError` from the library becomes
the page's one-line message, as the CLI prints it. A database that is unreachable, full,
damaged or read-only is a 503 page on every route saying so and what was saved, never a bare
"Internal Server Error".
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from formtool.access.accounts import (
    HashingBusy,
    SessionRules,
    SignInThrottle,
    account_exists,
    authenticate,
    end_session,
    list_users,
    session_sign_in,
)
from formtool.access.log import purge
from formtool.access.oidc import OidcClient, OidcConfig
from formtool.access.roles import CAPABILITY_NAMES, Account
from formtool.errors import FormtoolError, NotPermittedError, printable
from formtool.programme.activities import check_results
from formtool.settings import Settings
from formtool.store import DatabaseError, DriverError, Store, acting_as
from formtool.web import (
    accounts,
    allocate,
    audit_steps,
    concerns,
    data_protection,
    lists,
    mailing,
    oidc,
    queries,
    to_chase,
    totp,
    views,
    webform,
)
from formtool.web.duties import NightlyBackups, ServerDuties
from formtool.web.pages import (
    MailConfig,
    Workspace,
    audit_url,
    call,
    call_hashing,
    client_address,
    database_problem,
    flash,
    log_access,
    problem,
    redirect,
    render_page,
    route_name,
    saved_sentence,
    site_path,
    workspace_changed,
    ws_of,
)
from formtool.web.security import (
    SESSION_COOKIE,
    Limits,
    RequestGuard,
    SecurityHeaders,
    UploadRefused,
    csrf_ok,
    read_upload,
    same_origin,
)

HERE = Path(__file__).parent
log = logging.getLogger("formtool.web")
View = Callable[[Request, Account], Awaitable[Response]]
Action = Callable[[Request, Account, FormData], Awaitable[Response]]

# --- sign-in and the route wrappers --------------------------------------------------------

#: Pages an account that must change its password may still reach.
PASSWORD_PAGES = ("/account/password", "/logout")


async def current_account(request: Request) -> Account | None:
    """The account of the server-side session named by the cookie, checked against the store
    on every request: sign-out, a password reset, a role change or deactivation end it at
    once, and so do the idle and absolute lifetimes. Looked up once per request. A session
    whose sign-in is unfinished (a code still to give or an authenticator to set up, totp.py)
    signs nobody in: it is kept in `request.state.pending` for those pages only."""
    if hasattr(request.state, "who"):
        found: Account | None = request.state.who
        return found
    ws = ws_of(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    signed = await call(session_sign_in, ws.db, session_id, ws.sessions) if session_id else None
    pending = signed is not None and signed.pending(ws.settings.oidc) is not None
    who = signed.account if signed is not None and not pending else None
    request.state.who = who
    request.state.sign_in = signed if who else None
    request.state.pending = signed if pending else None
    request.state.session_id = session_id if who else None
    return who


def _refused(request: Request, who: Account, capability: str) -> HTMLResponse:
    return problem(
        request,
        who,
        403,
        "Not allowed",
        f"Your account ({who.name}, {who.role}) may not "
        f"{CAPABILITY_NAMES[capability]}. Ask your QA lead if you need this.",
    )


async def _guarded(
    request: Request, who: Account, run: Callable[[], Awaitable[Response]], back: str
) -> Response:
    """The view, acting as the signed-in user (every event it records carries their name;
    the request's `Work` counts what it saved), its failures as formtool pages."""
    with acting_as(f"web:{who.name}") as work:
        request.state.work = work
        try:
            return await run()
        except DatabaseError as exc:
            return database_problem(request, who, exc, back)
        except NotPermittedError as exc:
            return problem(request, who, 403, "Not allowed", str(exc), back)
        except FormtoolError as exc:
            return problem(request, who, 400, "That did not work", str(exc), back)
        except HTTPException:
            raise
        except Exception:
            log.exception("unexpected error on %s", route_name(request))
            return problem(
                request,
                who,
                500,
                "Something went wrong",
                f"formtool stopped on an unexpected problem. {saved_sentence(work)} "
                "The details are in the server's log; please report it.",
                back,
            )


async def _database_down(request: Request, exc: Exception) -> Response:
    """A database failure outside a view (signing in, the session lookup): the same page."""
    return database_problem(request, getattr(request.state, "who", None), exc)


def _must_change(request: Request, who: Account) -> Response | None:
    if who.must_change_password and request.url.path not in PASSWORD_PAGES:
        return redirect("/account/password")
    return None


async def _log_view(request: Request, who: Account, what: str) -> None:
    """A view or download in the access log. A view may name the audit it showed
    (`request.state.audit_id`) and say more (`request.state.access_detail`)."""
    params = request.path_params
    detail = ", ".join(f"{k} {v}" for k, v in params.items() if k != "audit_id")
    parts = (getattr(request.state, "access_detail", ""), detail, str(request.url.query)[:200])
    await log_access(
        request,
        who.name,
        what,
        audit_id=getattr(request.state, "audit_id", None) or params.get("audit_id"),
        detail="; ".join(x for x in parts if x),
    )


def _page(
    path: str, view: View, can: str, logs: str | None = None, cases_only_log: bool = False
) -> Route:
    """A GET route: signed in, with the capability, or sent to the sign-in page. `logs`:
    the page shows personal data, and each successful view is recorded in the access log
    (with `cases_only_log`, only for the roles that see case-level data on it)."""

    async def endpoint(request: Request) -> Response:
        who = await current_account(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/login?next={quote(target)}")
        if not who.may(can):
            return _refused(request, who, can)
        changing = _must_change(request, who)
        if changing is not None:
            return changing

        async def run() -> Response:
            await _staff_data_guard(request, who)
            if who.may("cycle"):  # the navigation's count of open concerns, on every page
                request.state.open_concerns = len(await call(ws_of(request).db.concerns, True))
            return await view(request, who)

        response = await _guarded(request, who, run, "/")
        personal = who.sees_names or not cases_only_log
        if logs and personal and response.status_code == 200:
            await _log_view(request, who, logs)
        return response

    return Route(path, endpoint, methods=["GET"])


async def _staff_data_guard(request: Request, who: Account) -> None:
    """Every page and step of one audit (a route with {audit_id}) is refused (403) to a role
    the programme keeps a member of staff's results from (NotPermittedError)."""
    audit_id = request.path_params.get("audit_id")
    if audit_id is not None:
        await call(check_results, ws_of(request).db, str(audit_id), who.roles)


def _action(path: str, view: Action, can: str, upload: bool = False) -> Route:
    """A POST route: signed in, with the capability, from this site, within the upload
    limits, and carrying the session's CSRF token; refused before the view runs otherwise."""

    async def endpoint(request: Request) -> Response:
        who = await current_account(request)
        if who is None:
            return problem(
                request,
                None,
                401,
                "Signed out",
                "Your session has ended. Sign in again and repeat what you did.",
                "/login",
            )
        if not who.may(can):
            return _refused(request, who, can)
        ws = ws_of(request)
        if not same_origin(request, ws.trusted_proxy is not None):
            return _csrf_refused(request, who)
        try:
            multipart = request.headers.get("content-type", "").startswith("multipart/")
            form = await (
                read_upload(request, ws.limits)
                if upload and multipart
                else request.form(
                    max_files=0, max_fields=ws.limits.fields, max_part_size=ws.limits.field_bytes
                )
            )
        except UploadRefused as exc:
            return problem(request, who, 413, "Upload refused", exc.message, request.url.path)
        try:
            if not csrf_ok(request, form.get("csrf")):
                return _csrf_refused(request, who)
            changing = _must_change(request, who)
            if changing is not None:
                return changing

            async def run() -> Response:
                await _staff_data_guard(request, who)
                return await view(request, who, form)

            response = await _guarded(request, who, run, request.url.path)
            await workspace_changed(ws)  # reports are drawn again, on every worker
            return response
        finally:
            await form.close()

    return Route(path, endpoint, methods=["POST"])


def _csrf_refused(request: Request, who: Account | None) -> HTMLResponse:
    return problem(
        request,
        who,
        403,
        "Security check failed",
        "This form did not come from this formtool page, or the page is too old "
        "(the security token did not match). Nothing was changed. Go back, reload "
        "the page and try again.",
    )


def _next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    return target if target and site_path(target) else "/"


async def login_page(request: Request) -> Response:
    if await current_account(request) is not None:
        return redirect(_next(request.query_params.get("next")))
    pending = request.state.pending
    if pending is not None:  # the password was right: the code (or set-up) is next
        step = totp.PENDING_PAGES[pending.pending(ws_of(request).settings.oidc)]
        return redirect(f"{step}?next={quote(_next(request.query_params.get('next')), safe='')}")
    has_users = bool(await call(list_users, ws_of(request).db))
    return render_page(
        request,
        None,
        "login.html",
        200 if has_users or ws_of(request).settings.oidc else 503,
        has_users=has_users,
        next=_next(request.query_params.get("next")),
    )


def _login_refused(
    request: Request, status: int, name: str, target: str, error: str, wait: float = 0
) -> Response:
    response = render_page(
        request, None, "login.html", status, has_users=True, next=target, name=name, error=error
    )
    if wait > 0:
        response.headers["retry-after"] = str(int(wait + 0.999))
    return response


async def login(request: Request) -> Response:
    ws = ws_of(request)
    form = await request.form(max_files=0, max_fields=5, max_part_size=4096)
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    if not same_origin(request, ws.trusted_proxy is not None) or not csrf_ok(
        request, form.get("csrf")
    ):
        return _csrf_refused(request, None)
    if not name or not password:
        return _login_refused(request, 400, name, target, "Give your user name and password.")
    address = client_address(request)
    admission = await call(ws.throttle.admit, name, address)
    if admission.wait > 0:
        seconds = int(admission.wait + 0.999)
        await _log_sign_in(request, name, "sign-in throttled")
        return _login_refused(
            request,
            429,
            name,
            target,
            f"Too many failed sign-ins for this name or from this computer. Wait {seconds} "
            "second(s) and try again.",
            admission.wait,
        )
    if admission.slow > 0:  # many failures for this name from elsewhere: slow, never lock
        await _log_sign_in(request, name, "sign-in slowed")
        await asyncio.sleep(admission.slow)
    try:
        account = await call_hashing(ws, authenticate, ws.db, name, password)
    except HashingBusy as exc:  # never checked: it counts for nothing
        await call(ws.throttle.forgive, name, address)
        await _log_sign_in(request, name, "sign-in refused: server busy")
        return _login_refused(request, 429, name, target, str(exc), 5)
    if account is None:
        await _log_sign_in(request, name, "sign-in failed")
        return _login_refused(
            request,
            401,
            name,
            target,
            "That name and password do not match an account. Check them and try again.",
        )
    return await totp.after_password(request, account, target)  # signed in, or the code next


async def _log_sign_in(request: Request, name: str, what: str) -> None:
    """A sign-in event in the access log, under the account's name; a name that is no
    account's is not kept (people type their password into the name box)."""
    known = await call(account_exists, ws_of(request).db, name)
    await log_access(request, name if known else "(unknown name)", what)


async def logout(request: Request, who: Account, form: FormData) -> Response:
    ws = ws_of(request)
    await call(end_session, ws.db, request.state.session_id)
    await log_access(request, who.name, "signed out")
    request.state.session_id = None
    flash(request, "You are signed out.")
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=ws.behind_https)
    return response


# --- the application -----------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        _action("/logout", logout, "figures"),
        _page("/account/password", accounts.password_page, "figures"),
        _action("/account/password", accounts.password_change, "figures"),
        *totp.routes(_page, _action, current_account),  # the code after the password
        *oidc.routes(_next),  # the council's identity provider
        *webform.routes(),  # auditors' web forms: a private link, no account
        _page("/admin/users", accounts.users_page, "accounts"),
        _action("/admin/users", accounts.user_add, "accounts"),
        _action("/admin/users/{name}/{change}", accounts.user_change, "accounts"),
        _page("/admin/sessions", accounts.sessions_page, "accounts"),
        _action("/admin/sessions", accounts.sessions_end, "accounts"),
        _page("/admin/access-log", accounts.access_log_page, "access_log"),
        # the feature modules' routes first: "/audits/{audit_id:path}" would take their paths
        *lists.routes(_page, _action),
        *to_chase.routes(_page, _action),
        *mailing.routes(_page, _action),
        *audit_steps.routes(_page, _action),
        *data_protection.routes(_page, _action),
        _page("/", views.dashboard, "figures", logs="viewed the dashboard", cases_only_log=True),
        _page("/status.json", views.status_json, "cases", logs="viewed the status list"),
        _page(
            "/audits/{audit_id:path}/pack.{fmt}",
            views.audit_pack,
            "cases",
            logs="downloaded a file pack",
        ),
        _page("/audits/{audit_id:path}", views.audit_page, "cases", logs="viewed an audit"),
        _action("/audits/{audit_id:path}/moderate", views.audit_moderate, "moderate"),
        _action("/audits/{audit_id:path}/concern", concerns.concern_raise, "cycle"),
        _page("/concerns", concerns.concerns_page, "cycle", logs="viewed the concerns"),
        _action("/concerns/{concern_id}/action", concerns.concern_action, "cycle"),
        _page("/held", views.held_page, "cycle", logs="viewed the held returns"),
        _action("/held/{return_id:int}/{decision}", views.held_decide, "cycle"),
        _page(
            "/returns/{return_id:int}/file",
            views.return_download,
            "cases",
            logs="downloaded a return file",
        ),
        _page("/returns", views.returns_page, "cycle"),
        _action("/returns", views.returns_upload, "cycle", upload=True),
        _page(
            "/allocate",
            allocate.allocate_page,
            "cycle",
            logs="viewed the allocation and its emails",  # recipients and audit ids
        ),
        _action("/allocate", allocate.allocate_preview, "cycle", upload=True),
        _action("/allocate/confirm", allocate.allocate_confirm, "cycle"),
        _page(
            "/allocate/{month}/forms.zip",
            allocate.allocate_forms,
            "cycle",
            logs="downloaded the month's forms",
        ),
        _action("/allocate/{month}/send", allocate.allocate_send, "cycle"),
        _action("/allocate/{month}/mark-sent", allocate.allocate_mark_sent, "cycle"),
        _page(
            "/allocate/{month}/emails.zip",
            allocate.allocate_mail,
            "cycle",
            logs="downloaded the month's email drafts",
        ),
        _page("/moderation", views.moderation_page, "cases", logs="viewed the moderation list"),
        _action("/moderation", views.moderation_record, "moderate"),
        _page(
            "/reports", views.reports_page, "figures", logs="viewed a report", cases_only_log=True
        ),
        _page(
            "/reports/pmu.{kind}", views.report_download, "figures", logs="downloaded a PMU pack"
        ),
        _page("/forms", views.forms_page, "figures"),
        _page("/forms/{form_id}", views.form_page, "figures"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    try:
        who = await current_account(request) if "session" in request.scope else None
    except DatabaseError as down:
        return database_problem(request, None, down)
    status = getattr(exc, "status_code", 500)
    if who is None and status == 404:
        return redirect("/login")  # nothing, not even which pages exist, before signing in
    return problem(
        request,
        who,
        status,
        "Not found" if status == 404 else "Not possible",
        "There is no such page here."
        if status == 404
        else str(getattr(exc, "detail", "The request could not be handled.")),
    )


def _purge_once(ws: Workspace) -> bool:
    """The access log's retention (with the sign-in counts too old to matter), run by the one
    worker that claims the day (duties.py), when the server starts and daily after. A
    database role that may not remove log entries (see README) leaves that to `formtool
    access-log --purge` run by the owner, and says so once (False: not tried again)."""
    ws.throttle.forget_old()
    try:
        purge(ws.db, ws.settings.access_log_days, "formtool serve")
    except DriverError:
        log.warning(
            "The access log was not purged: this database role may not remove entries. "
            "Run `formtool access-log --purge` as the database owner (e.g. daily from cron)."
        )
        return False
    return True


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["day"] = queries.day
    env.filters["url"] = lambda text: quote(str(text), safe="")
    env.filters["audit_url"] = audit_url
    env.filters["printable"] = printable
    env.filters["sentence"] = queries.sentence
    env.globals["tool_names"] = queries.tool_names
    return env


def create_app(
    db: Store,
    settings: Settings,
    behind_https: bool = False,
    *,
    limits: Limits | None = None,
    mail: MailConfig | None = None,
    allowed_hosts: list[str] | None = None,
    work_dir: Path | None = None,
    clock: Callable[[], float] | None = None,
    trusted_proxy: str | None = None,
    body_seconds: float = 120.0,
    purge_daily: bool = False,
    heartbeat: bool = False,
    backups: NightlyBackups | None = None,
) -> Starlette:
    """The web workspace on this store. `allowed_hosts` limits the Host header (serve sets it
    to the names of the address it is bound to on this computer); `clock` (seconds since the
    epoch) is for tests of sessions and the sign-in throttle; `trusted_proxy` is the one
    address whose X-Forwarded-For/-Proto/-Host are believed (`serve --proxy`); a request body
    must arrive within `body_seconds`; `purge_daily` applies the access log's retention when
    the server starts and every day after, by one worker a day (serve); `heartbeat` keeps
    this server's row in the database fresh so `formtool restore` knows it runs, and
    `backups` takes the nightly backup (serve, duties.py)."""

    private = work_dir or Path(tempfile.mkdtemp(prefix="formtool-web-"))
    private.mkdir(parents=True, exist_ok=True, mode=0o700)
    real_time = clock or time.time  # real time: sessions and the throttle
    ws = Workspace(
        db,
        settings,
        behind_https,
        SignInThrottle(db, real_time),
        limits or Limits(),
        mail or MailConfig(),
        private,
        environment(),
        sessions=SessionRules.of(settings, real_time),
        trusted_proxy=trusted_proxy,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        daily = (lambda: _purge_once(ws)) if purge_daily else None
        tidy = (lambda: allocate.purge_expired(ws)) if heartbeat else None
        duties = ServerDuties(db, heartbeat, backups, purge=daily, tidy=tidy)
        await duties.start()
        yield
        await duties.stop()
        if work_dir is None:  # the uploads and generated forms hold personal data
            shutil.rmtree(private, ignore_errors=True)

    middleware = [
        Middleware(SecurityHeaders, behind_https=behind_https),
        Middleware(RequestGuard, body_seconds=body_seconds),
    ]
    if trusted_proxy:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        middleware.insert(0, Middleware(ProxyHeadersMiddleware, trusted_hosts=[trusted_proxy]))
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    middleware.append(
        Middleware(
            SessionMiddleware,  # anonymous only: the sign-in page's CSRF token and flashes
            secret_key=db.server_secret(),
            session_cookie="formtool_session",
            max_age=None,
            same_site="lax",
            https_only=behind_https,
        )
    )
    app = Starlette(
        routes=routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _not_found, DatabaseError: _database_down},
    )
    app.state.ws = ws
    config = OidcConfig.of(settings)  # a role map naming no formtool role stops serve here
    app.state.oidc = OidcClient(config, real_time) if config else None
    if work_dir is None:  # also when the app is dropped without a shutdown (tests)
        weakref.finalize(app, shutil.rmtree, private, True)
    return app
