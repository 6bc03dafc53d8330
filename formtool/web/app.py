"""The web workspace's routes (Datasette is the model: app.py holds the routes, each view is
thin and calls the library, templates are Jinja2 with autoescape). The views live in views.py
and allocate.py; what they share (rendering, the workspace) in pages.py.

Views check nothing themselves: every route is declared through `_page` (GET) or `_action`
(POST), which sign the user in, enforce the role, and for POSTs check the Origin, parse the
form under the upload limits and compare the CSRF token before the view runs. Library calls
run in a worker thread (they are blocking), and a `FormtoolError` from the library becomes
the page's one-line message, as the CLI prints it.
"""

from __future__ import annotations

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
import sqlalchemy as sa
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

from formtool.errors import FormtoolError, printable
from formtool.settings import Settings
from formtool.users import Account, authenticate, list_users
from formtool.web import allocate, queries, views
from formtool.web.pages import (
    MailConfig,
    Workspace,
    audit_url,
    call,
    flash,
    problem,
    redirect,
    render,
    ws_of,
)
from formtool.web.security import (
    CAPABILITY_NAMES,
    SESSION_HOURS,
    Limits,
    SecurityHeaders,
    SignInGuard,
    UploadRefused,
    csrf_ok,
    may,
    read_upload,
    same_origin,
)

HERE = Path(__file__).parent
log = logging.getLogger("formtool.web")
View = Callable[[Request, Account], Awaitable[Response]]
Action = Callable[[Request, Account, FormData], Awaitable[Response]]

# --- sign-in and the route wrappers --------------------------------------------------------


async def current_account(request: Request) -> Account | None:
    """The signed-in account, checked against the store on every request (a removed user is
    signed out at once, a changed role applies at once)."""
    name, since = request.session.get("user"), request.session.get("since", 0)
    if not isinstance(name, str) or not isinstance(since, int | float):
        return None
    if time.time() - since > SESSION_HOURS * 3600:  # real time
        request.session.clear()
        return None
    accounts = {a.name: a for a in await call(list_users, ws_of(request).engine)}
    return accounts.get(name)


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
    try:
        return await run()
    except FormtoolError as exc:
        return problem(request, who, 400, "That did not work", str(exc), back)
    except HTTPException:
        raise
    except Exception:
        log.exception("unexpected error on %s", request.url.path)
        return problem(
            request,
            who,
            500,
            "Something went wrong",
            "formtool stopped on an unexpected problem. Nothing more was changed. "
            "The details are in the server's log; please report it.",
            back,
        )


def _page(path: str, view: View, can: str) -> Route:
    """A GET route: signed in, with the capability, or sent to the sign-in page."""

    async def endpoint(request: Request) -> Response:
        who = await current_account(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/login?next={quote(target)}")
        if not may(who.role, can):
            return _refused(request, who, can)
        return await _guarded(request, who, lambda: view(request, who), "/")

    return Route(path, endpoint, methods=["GET"])


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
        if not may(who.role, can):
            return _refused(request, who, can)
        if not same_origin(request):
            return _csrf_refused(request, who)
        ws = ws_of(request)
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
            if not csrf_ok(request.session, form.get("csrf")):
                return _csrf_refused(request, who)
            response = await _guarded(
                request, who, lambda: view(request, who, form), request.url.path
            )
            ws.reports.clear()  # something may have changed: reports are drawn again
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


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


async def login_page(request: Request) -> Response:
    if await current_account(request) is not None:
        return redirect(_next(request.query_params.get("next")))
    has_users = bool(await call(list_users, ws_of(request).engine))
    return render(
        request,
        None,
        "login.html",
        200 if has_users else 503,
        has_users=has_users,
        next=_next(request.query_params.get("next")),
    )


async def login(request: Request) -> Response:
    ws = ws_of(request)
    form = await request.form(max_files=0, max_fields=5, max_part_size=4096)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = _next(str(form.get("next", "")))
    if not same_origin(request) or not csrf_ok(request.session, form.get("csrf")):
        return _csrf_refused(request, None)
    wait = ws.guard.wait(name, _client(request))
    if wait > 0:
        seconds = int(wait + 0.999)
        response = render(
            request,
            None,
            "login.html",
            429,
            has_users=True,
            next=target,
            name=name,
            error=f"Too many failed sign-ins for this name or from "
            f"this computer. Wait {seconds} second(s) and try again.",
        )
        response.headers["retry-after"] = str(seconds)
        return response
    account = await call(authenticate, ws.engine, name, password) if name and password else None
    if account is None:
        ws.guard.failed(name, _client(request))
        return render(
            request,
            None,
            "login.html",
            401,
            has_users=True,
            next=target,
            name=name,
            error="That name and password do not match an account. Check them and try again.",
        )
    ws.guard.succeeded(name)
    request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
    request.session.update(user=account.name, since=int(time.time()))  # real time
    return redirect(target)


async def logout(request: Request, who: Account, form: FormData) -> Response:
    request.session.clear()
    flash(request, "You are signed out.")
    return redirect("/login")


# --- the application -----------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        _action("/logout", logout, "figures"),
        _page("/", views.dashboard, "figures"),
        _page("/status.json", views.status_json, "cases"),
        _page("/audits", views.audit_list, "cases"),
        _page("/audits/{audit_id:path}/pack.{fmt}", views.audit_pack, "cases"),
        _page("/audits/{audit_id:path}", views.audit_page, "cases"),
        _action("/audits/{audit_id:path}/check", views.audit_check, "cycle"),
        _action("/audits/{audit_id:path}/moderate", views.audit_moderate, "moderate"),
        _action("/audits/{audit_id:path}/step/{step}", views.audit_step, "cycle"),
        _page("/returns/{return_id:int}/file", views.return_download, "cases"),
        _page("/returns", views.returns_page, "cycle"),
        _action("/returns", views.returns_upload, "cycle", upload=True),
        _page("/allocate", allocate.allocate_page, "cycle"),
        _action("/allocate", allocate.allocate_preview, "cycle", upload=True),
        _action("/allocate/confirm", allocate.allocate_confirm, "cycle"),
        _page("/allocate/{month}/forms.zip", allocate.allocate_forms, "cycle"),
        _action("/allocate/{month}/send", allocate.allocate_send, "cycle"),
        _page("/allocate/{month}/emails.zip", allocate.allocate_mail, "cycle"),
        _page("/moderation", views.moderation_page, "cases"),
        _action("/moderation", views.moderation_record, "moderate"),
        _page("/reports", views.reports_page, "figures"),
        _page("/reports/pmu.{kind}", views.report_download, "figures"),
        _page("/forms", views.forms_page, "figures"),
        _page("/forms/{form_id}", views.form_page, "figures"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    who = await current_account(request) if "session" in request.scope else None
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
    engine: sa.Engine,
    settings: Settings,
    behind_https: bool = False,
    *,
    limits: Limits | None = None,
    mail: MailConfig | None = None,
    allowed_hosts: list[str] | None = None,
    work_dir: Path | None = None,
    clock: Callable[[], float] | None = None,
) -> Starlette:
    """The web workspace on this store. `allowed_hosts` limits the Host header (serve sets it
    to the loopback names when bound to 127.0.0.1); `clock` is for tests of the sign-in
    throttle."""
    from formtool.store import server_secret

    private = work_dir or Path(tempfile.mkdtemp(prefix="formtool-web-"))
    private.mkdir(parents=True, exist_ok=True, mode=0o700)
    ws = Workspace(
        engine,
        settings,
        behind_https,
        SignInGuard(clock) if clock else SignInGuard(),
        limits or Limits(),
        mail or MailConfig(),
        private,
        environment(),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if work_dir is None:  # the uploads and generated forms hold personal data
            shutil.rmtree(private, ignore_errors=True)

    middleware = [Middleware(SecurityHeaders, behind_https=behind_https)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    middleware.append(
        Middleware(
            SessionMiddleware,
            secret_key=server_secret(engine),
            session_cookie="formtool_session",
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=behind_https,
        )
    )
    app = Starlette(
        routes=routes(),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _not_found},
    )
    app.state.ws = ws
    if work_dir is None:  # also when the app is dropped without a shutdown (tests)
        weakref.finalize(app, shutil.rmtree, private, True)
    return app
