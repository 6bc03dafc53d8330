"""The authenticator code in the web workspace (formtool.access.totp): the sign-in's second
page after the password, an admin's set-up before anything else when the council's identity
provider is not configured, and each user's own set-up on their account page.

A session whose sign-in is unfinished (app.current_account finds it in
`request.state.pending`) reaches only these pages; every other page sends it to sign in.
Wrong codes count in the sign-in throttle like wrong passwords, and every sign-in, refusal
and change is recorded in the access log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import markupsafe
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from formtool.access import totp
from formtool.access.accounts import (
    CODE_PENDING,
    ENROL_PENDING,
    SignedIn,
    end_session,
    finish_session,
    start_session,
)
from formtool.access.roles import Account
from formtool.errors import AccountError
from formtool.web.pages import (
    ActionRoute,
    PageRoute,
    call,
    client_address,
    flash,
    log_access,
    problem,
    redirect,
    render_page,
    set_session_cookie,
    site_path,
    ws_of,
)
from formtool.web.security import SESSION_COOKIE, csrf_ok, same_origin

#: app.current_account: the signed-in account, setting request.state.pending on the way.
Current = Callable[[Request], Awaitable[Account | None]]
NEW_SECRET = "totp_new"  # the anonymous (signed) cookie's key for a secret being set up
PENDING_PAGES = {CODE_PENDING: "/login/code", ENROL_PENDING: "/login/enrol"}


def _next(target: object) -> str:
    text = str(target or "")
    return text if site_path(text) else "/"


def _now(request: Request) -> float:
    return ws_of(request).sessions.clock()


# --- after the password (app.login) --------------------------------------------------------


async def after_password(request: Request, account: Account, target: str) -> Response:
    """The password was right: sign in, or first ask for the code (an account with an
    authenticator) or for setting one up (an admin who must have one)."""
    ws, address = ws_of(request), client_address(request)
    state = await call(ws.db.totp_state, account.name)
    if state.totp_secret:
        method = CODE_PENDING
    elif totp.required(account, ws.settings):
        method = ENROL_PENDING
    else:
        method = "password"
    if method == "password":
        await call(ws.throttle.succeeded, account.name, address)
    else:  # this attempt counts for nothing; earlier failures stay until the code is right
        await call(ws.throttle.forgive, account.name, address)
    session_id = await call(start_session, ws.db, account.name, address, ws.sessions, method)
    what = {
        "password": ("signed in", "with a password"),
        CODE_PENDING: ("sign-in code asked", "password right; authenticator code asked"),
        ENROL_PENDING: (
            "sign-in enrolment asked",
            "password right; an admin must set up an authenticator first",
        ),
    }[method]
    await log_access(request, account.name, what[0], detail=what[1])
    request.session.clear()  # the anonymous cookie keeps nothing from before signing in
    if method == "password":
        response = redirect("/account/password" if account.must_change_password else target)
    else:
        response = redirect(f"{PENDING_PAGES[method]}?next={quote(target, safe='')}")
    set_session_cookie(response, ws, session_id)
    return response


# --- the unfinished sign-in's pages ---------------------------------------------------------


def _pending(request: Request, kind: str) -> SignedIn | None:
    found: SignedIn | None = getattr(request.state, "pending", None)
    if found is None or found.pending(ws_of(request).settings.oidc) != kind:
        return None
    return found


async def _form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=6, max_part_size=4096)


def _refused_form(request: Request) -> Response:
    return problem(
        request,
        None,
        403,
        "Security check failed",
        "This form did not come from this formtool page, or the page is too old. Nothing "
        "was changed. Go back, reload the page and try again.",
        "/login",
    )


def _to_sign_in(request: Request) -> Response:
    """A page of an unfinished sign-in without one: the sign-in page."""
    return redirect(f"/login?next={quote(_next(request.query_params.get('next')), safe='')}")


def _signed_out(request: Request) -> Response:
    return problem(
        request,
        None,
        401,
        "Signed out",
        "This sign-in has ended (the code is awaited for 10 minutes). Sign in again.",
        "/login",
    )


def routes(page: PageRoute, action: ActionRoute, current: Current) -> list[BaseRoute]:
    """The sign-in's code and set-up pages (reached before signing in is finished), and the
    account page's authenticator set-up."""

    async def posted(
        request: Request, kind: str, then: Callable[[SignedIn, FormData], Awaitable[Response]]
    ) -> Response:
        """A form of the unfinished sign-in `kind`: from this site, with its CSRF token."""
        await current(request)
        form = await _form(request)
        signed = _pending(request, kind)
        if signed is None:
            return _signed_out(request)
        trusted = ws_of(request).trusted_proxy is not None
        if not same_origin(request, trusted) or not csrf_ok(request, form.get("csrf")):
            return _refused_form(request)
        return await then(signed, form)

    async def code_page(request: Request) -> Response:
        await current(request)
        if _pending(request, CODE_PENDING) is None:
            return _to_sign_in(request)
        return _code_form(request, _next(request.query_params.get("next")))

    async def code_given(request: Request) -> Response:
        async def check(signed: SignedIn, form: FormData) -> Response:
            code, target = str(form.get("code", "")), _next(form.get("next"))
            return await _check_code(request, signed, code, target)

        return await posted(request, CODE_PENDING, check)

    async def enrol_page(request: Request) -> Response:
        await current(request)
        signed = _pending(request, ENROL_PENDING)
        if signed is None:
            return _to_sign_in(request)
        return _enrol_form(request, None, signed.account, _next(request.query_params.get("next")))

    async def enrol_given(request: Request) -> Response:
        async def enrol(signed: SignedIn, form: FormData) -> Response:
            return await _enrol_at_sign_in(request, signed, form)

        return await posted(request, ENROL_PENDING, enrol)

    async def cancel(request: Request) -> Response:
        await current(request)
        form = await _form(request)
        pending: SignedIn | None = getattr(request.state, "pending", None)
        if pending is None or not csrf_ok(request, form.get("csrf")):
            return _signed_out(request)
        await call(end_session, ws_of(request).db, request.cookies.get(SESSION_COOKIE, ""))
        await log_access(request, pending.account.name, "sign-in cancelled")
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
        return response

    return [
        Route("/login/code", code_page, methods=["GET"]),
        Route("/login/code", code_given, methods=["POST"]),
        Route("/login/enrol", enrol_page, methods=["GET"]),
        Route("/login/enrol", enrol_given, methods=["POST"]),
        Route("/login/cancel", cancel, methods=["POST"]),
        page("/account/totp", account_page, "figures"),
        action("/account/totp", account_change, "figures"),
    ]


def _code_form(request: Request, target: str, status: int = 200, error: str = "") -> Response:
    return render_page(
        request, None, "login_code.html", status, next=target, error=error, wait_seconds=0
    )


async def _check_code(request: Request, signed: SignedIn, code: str, target: str) -> Response:
    """The sign-in's code: throttled like a password, used once; right, the unfinished
    session is replaced by a signed-in one."""
    ws, name, address = ws_of(request), signed.account.name, client_address(request)
    admission = await call(ws.throttle.admit_code, name, address)
    if admission.wait > 0:
        seconds = int(admission.wait + 0.999)
        await log_access(request, name, "sign-in throttled", detail="authenticator code")
        response = _code_form(
            request,
            target,
            429,
            f"Too many wrong codes or passwords for this name or from this computer. Wait "
            f"{seconds} second(s) and try again.",
        )
        response.headers["retry-after"] = str(seconds)
        return response
    if admission.slow > 0:
        await asyncio.sleep(admission.slow)
    try:
        await call(totp.check, ws.db, name, code, _now(request))
    except AccountError as exc:
        await log_access(request, name, "sign-in failed", detail=f"authenticator code: {exc}")
        return _code_form(request, target, 401, str(exc))
    await call(ws.throttle.code_succeeded, name, address)
    return await _finish(request, signed, "password+totp", target, "with a password and code")


async def _finish(
    request: Request, signed: SignedIn, method: str, target: str, how: str
) -> Response:
    ws = ws_of(request)
    old = request.cookies.get(SESSION_COOKIE, "")
    session_id = await call(finish_session, ws.db, old, ws.sessions, method)
    if session_id is None:
        return redirect("/login")
    await log_access(request, signed.account.name, "signed in", detail=how)
    request.session.clear()
    response = redirect("/account/password" if signed.account.must_change_password else target)
    set_session_cookie(response, ws, session_id)
    return response


# --- setting an authenticator up -----------------------------------------------------------


def _new_secret(request: Request, name: str) -> str:
    """The secret being set up for `name` in this browser: the same one until it is saved,
    so a reload does not change the QR code after it was scanned."""
    kept = request.session.get(NEW_SECRET)
    if isinstance(kept, dict) and kept.get("name") == name and isinstance(kept.get("secret"), str):
        return str(kept["secret"])
    secret = totp.new_secret()
    request.session[NEW_SECRET] = {"name": name, "secret": secret}
    return secret


def _enrol_form(
    request: Request,
    who: Account | None,
    account: Account,
    target: str,
    status: int = 200,
    error: str = "",
) -> Response:
    enrolment = totp.Enrolment.of(
        _new_secret(request, account.name), account.name, ws_of(request).settings.council
    )
    return render_page(
        request,
        who,
        "totp_enrol.html",
        status,
        account=account,
        enrolment=enrolment,
        qr=_markup(enrolment.svg),
        next=target,
        error=error,
        at_sign_in=who is None,
        enrolled=False,
        required=True if who is None else totp.required(account, ws_of(request).settings),
    )


def _markup(svg: str) -> Any:
    """The QR code's SVG, made here from the secret and the account name (segno escapes its
    title), as markup the template may include."""
    return markupsafe.Markup(svg)  # drawn by segno from the secret: no text from a request


async def _enrol(request: Request, name: str, form: FormData) -> None:
    """Save the secret this browser was shown once the code from it is right (CodeError or
    AccountError saying why not; counted like a wrong password)."""
    ws, address = ws_of(request), client_address(request)
    admission = await call(ws.throttle.admit, name, address)
    if admission.wait > 0:
        raise AccountError(
            f"Too many wrong codes or passwords. Wait {int(admission.wait + 0.999)} second(s) "
            "and try again."
        )
    try:
        await call(
            totp.enrol,
            ws.db,
            name,
            _new_secret(request, name),
            str(form.get("code", "")),
            _now(request),
        )
    except AccountError as exc:
        await log_access(request, name, "TOTP enrolment refused", detail=str(exc))
        raise
    await call(ws.throttle.succeeded, name, address)
    request.session.pop(NEW_SECRET, None)
    await log_access(request, name, "TOTP enrolled", detail="authenticator app set up")


async def _enrol_at_sign_in(request: Request, signed: SignedIn, form: FormData) -> Response:
    target = _next(form.get("next"))
    try:
        await _enrol(request, signed.account.name, form)
    except AccountError as exc:
        return _enrol_form(request, None, signed.account, target, 400, str(exc))
    return await _finish(
        request, signed, "password+totp", target, "with a password and a new authenticator"
    )


async def account_page(request: Request, who: Account) -> Response:
    signed: SignedIn | None = getattr(request.state, "sign_in", None)
    if signed is not None and signed.source != "local":
        return render_page(request, who, "totp_enrol.html", oidc_account=True, account=who)
    if signed is not None and signed.totp:
        return render_page(
            request,
            who,
            "totp_enrol.html",
            account=who,
            enrolled=True,
            required=totp.required(who, ws_of(request).settings),
            error="",
        )
    return _enrol_form(request, who, who, "/account/totp")


async def account_change(request: Request, who: Account, form: FormData) -> Response:
    """Set up an authenticator (with a code from it), or turn it off (with a current code)."""
    ws = ws_of(request)
    if form.get("change") == "off":
        try:
            await call(
                totp.turn_off, ws.db, who, str(form.get("code", "")), _now(request), ws.settings
            )
        except AccountError as exc:
            await log_access(request, who.name, "TOTP turn-off refused", detail=str(exc))
            raise
        await log_access(request, who.name, "TOTP turned off", detail="every session ended")
        flash(request, "Your authenticator is turned off, and your sessions have ended.")
        return redirect("/login")
    if await call(totp.enrolled, ws.db, who.name):  # replacing it needs the old one first
        raise AccountError(
            "You already have an authenticator. To move to a new one, turn this one off with a "
            "code from it, then set up the new one."
        )
    try:
        await _enrol(request, who.name, form)
    except AccountError as exc:
        return _enrol_form(request, who, who, "/account/totp", 400, str(exc))
    flash(request, "Your authenticator is set up: from now on signing in asks for its code.")
    return redirect("/account/totp")
