"""Signing in to the web workspace with the council's identity provider (formtool.access.oidc):
"Sign in with <council> account" on the sign-in page starts it (GET /login/oidc, a link, so
the strict Content-Security-Policy's form-action never meets the provider's address), and the
provider sends the browser back to /login/oidc/callback.

The state's hash rides in the browser's signed anonymous cookie as well as in the store, so
an answer is only taken by the browser that asked. The session, its cookie and everything
after are the password sign-in's (sessions.method "oidc"). Every sign-in and refusal is in
the access log; a refusal or a provider that cannot be reached is one line on the sign-in
page, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from formtool.access.accounts import start_session
from formtool.access.oidc import (
    OidcClient,
    ProviderError,
    SignInRefused,
    redirect_uri,
    sign_in,
)
from formtool.errors import FormtoolError, printable
from formtool.store import DatabaseError
from formtool.web.pages import (
    call,
    client_address,
    log_access,
    redirect,
    render_page,
    set_session_cookie,
    ws_of,
)

log = logging.getLogger("formtool.web")
BOUND = "oidc_state"  # the anonymous cookie's key for the state hash of the sign-in begun
UNKNOWN = "(council account)"  # the access log's name for a refusal before a name is known


def _client(request: Request) -> OidcClient | None:
    """The council's provider, None when formtool.toml configures none."""
    client: OidcClient | None = request.app.state.oidc
    return client


def _sign_in_page(target: str) -> Response:
    return redirect(f"/login?next={quote(target, safe='')}")


def _callback(request: Request) -> str:
    return redirect_uri(ws_of(request).settings, str(request.base_url))


def _refused(request: Request, status: int, message: str, target: str = "/") -> Response:
    """The sign-in page again, with one line saying what went wrong."""
    return render_page(
        request,
        None,
        "login.html",
        status,
        has_users=True,
        next=target,
        error=printable(message, 600),
    )


def _log_name(name: str) -> str:
    return name or UNKNOWN


def routes(next_path: Callable[[str | None], str]) -> list[BaseRoute]:
    """`next_path`: app._next, where to go after signing in (a path on this site only)."""

    async def begin(request: Request) -> Response:
        client = _client(request)
        ws, target = ws_of(request), next_path(request.query_params.get("next"))
        if client is None:  # not configured: the sign-in page, without the button
            return _sign_in_page(target)
        try:
            url, bound = await call(
                client.start, ws.db, _callback(request), target, client_address(request)
            )
        except FormtoolError as exc:
            await log_access(request, UNKNOWN, "sign-in refused", detail=f"provider: {exc}")
            return _refused(request, 502, str(exc), target)
        request.session[BOUND] = bound
        return redirect(url)

    async def finish(request: Request) -> Response:
        client = _client(request)
        if client is None:
            return _sign_in_page("/")
        ws, address = ws_of(request), client_address(request)
        bound = request.session.pop(BOUND, None)
        try:
            who = await call(
                client.finish,
                ws.db,
                _callback(request),
                dict(request.query_params),
                bound if isinstance(bound, str) else None,
            )
            account = await call(sign_in, ws.db, who, ws.sessions.clock())
        except SignInRefused as exc:
            await log_access(request, _log_name(exc.name), "sign-in refused", detail=exc.reason)
            return _refused(request, 403, str(exc))
        except ProviderError as exc:
            await log_access(request, UNKNOWN, "sign-in refused", detail=f"provider: {exc}")
            return _refused(request, 502, str(exc))
        except (DatabaseError, HTTPException):
            raise
        except Exception:  # a bug: one line here, the details in the server's log
            log.exception("unexpected error finishing a council sign-in")
            return _refused(
                request,
                500,
                "formtool stopped on an unexpected problem signing you in. The details are in "
                "the server's log; please report it, and sign in again.",
            )
        session_id = await call(start_session, ws.db, account.name, address, ws.sessions, "oidc")
        claim = client.config.roles_claim
        await log_access(
            request,
            account.name,
            "signed in",
            detail=printable(
                f"with the council's account {who.subject}; roles {account.role} from "
                f"{claim} {', '.join(who.groups)}",
                1000,
            ),
        )
        request.session.clear()  # the anonymous cookie keeps nothing from before signing in
        response = redirect(next_path(who.next))
        set_session_cookie(response, ws, session_id)
        return response

    return [
        Route("/login/oidc", begin, methods=["GET"]),
        Route("/login/oidc/callback", finish, methods=["GET"]),
    ]
