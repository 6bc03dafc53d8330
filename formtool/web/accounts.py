"""Accounts in the web workspace: a user changes their own password; an admin adds accounts,
changes roles, resets passwords, deactivates accounts, ends sessions and reads the access log.
Each calls the same library function as its `formtool users` / `formtool access-log` command,
and every change is recorded in the access log with the admin's name."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from formtool.access.accounts import (
    MIN_PASSWORD,
    UserError,
    WrongPassword,
    add_user,
    change_own_password,
    list_sessions,
    list_users,
    remove_user,
    set_password,
    set_roles,
    sign_out,
    start_session,
)
from formtool.access.log import access_entries
from formtool.access.roles import ROLES, Account
from formtool.clock import parse_day
from formtool.errors import FormtoolError, printable
from formtool.web.pages import (
    call,
    call_hashing,
    client_address,
    flash,
    log_access,
    redirect,
    render_page,
    set_session_cookie,
    ws_of,
)

SHOWN_ENTRIES = 500  # the access log page shows the newest this many; the CLI shows all


def _new_password(form: FormData) -> str:
    new, again = str(form.get("new", "")), str(form.get("again", ""))
    if new != again:
        raise UserError("The two new passwords differ. Type the same one twice.")
    return new


# --- one's own password --------------------------------------------------------------------


async def password_page(request: Request, who: Account) -> Response:
    signed = getattr(request.state, "sign_in", None)
    council = signed is not None and signed.source == "oidc"  # no password kept here
    return render_page(
        request, who, "account_password.html", min_password=MIN_PASSWORD, council=council
    )


async def password_change(request: Request, who: Account, form: FormData) -> Response:
    """The current password is checked like a sign-in (throttled, hashed a few at a time,
    logged when wrong); on success every session of the user ends and this browser gets a
    fresh one, so a cookie copied before the change is worth nothing after it."""
    ws = ws_of(request)
    new, address = _new_password(form), client_address(request)
    admission = await call(ws.throttle.admit, who.name, address)
    if admission.wait > 0:
        raise UserError(
            f"Too many wrong passwords. Wait {int(admission.wait + 0.999)} second(s) and try again."
        )
    current = str(form.get("current", ""))
    try:
        await call_hashing(ws, change_own_password, ws.db, who.name, current, new)
    except WrongPassword:
        await log_access(
            request, who.name, "password change refused", detail="the current password was wrong"
        )
        raise
    except UserError:
        await call(ws.throttle.forgive, who.name, address)
        raise
    await call(ws.throttle.succeeded, who.name, address)
    signed = getattr(request.state, "sign_in", None)  # the new session signed in the same way
    method = signed.method if signed is not None else "password"
    session_id = await call(start_session, ws.db, who.name, address, ws.sessions, method)
    await log_access(
        request, who.name, "changed own password", detail="every earlier session ended"
    )
    flash(request, "Your password is changed. Your other sessions have been signed out.")
    response = redirect("/")
    set_session_cookie(response, ws, session_id)
    return response


# --- accounts (admin) ----------------------------------------------------------------------


async def users_page(request: Request, who: Account) -> Response:
    ws = ws_of(request)
    accounts = await call(list_users, ws.db, True)
    sessions = await call(list_sessions, ws.db, ws.sessions)
    counts = {a.name: sum(s.user == a.name for s in sessions) for a in accounts}
    return render_page(
        request,
        who,
        "admin_users.html",
        accounts=accounts,
        counts=counts,
        roles=ROLES,
        min_password=MIN_PASSWORD,
        sign_in=await call(ws.db.sign_in_facts),  # name -> (source, TOTP on)
        role_map=ws.settings.oidc_role_map,  # (group, roles): the council sign-in's mapping
    )


def _roles(form: FormData) -> list[str]:
    return [str(r) for r in form.getlist("roles")]


async def user_add(request: Request, who: Account, form: FormData) -> Response:
    name = str(form.get("name", "")).strip()
    ws = ws_of(request)
    account = await call_hashing(ws, add_user, ws.db, name, _roles(form), _new_password(form), True)
    await log_access(request, who.name, "account added", detail=f"{account.name} as {account.role}")
    flash(
        request,
        f"{account.name} added as {account.role}. Give them the password in person or by "
        "phone; they choose their own at first sign-in.",
    )
    return redirect("/admin/users")


async def user_change(request: Request, who: Account, form: FormData) -> Response:
    ws = ws_of(request)
    name, change = request.path_params["name"], request.path_params["change"]
    if change == "roles":
        account = await call(set_roles, ws.db, name, _roles(form))
        done = f"{account.name} is now {account.role}; their sessions ended"
    elif change == "password":
        await call_hashing(ws, set_password, ws.db, name, _new_password(form), True)
        done = f"{name}'s password reset (to be changed at next sign-in); their sessions ended"
    elif change == "deactivate":
        if name == who.name:
            raise FormtoolError("You cannot deactivate your own account here.")
        await call(remove_user, ws.db, name)
        done = f"{name} deactivated; their sessions ended"
    else:
        raise HTTPException(404)
    await log_access(request, who.name, f"account {change}", detail=printable(done, 200))
    flash(request, done + ".")
    return redirect("/admin/users")


async def sessions_page(request: Request, who: Account) -> Response:
    ws = ws_of(request)
    return render_page(
        request,
        who,
        "admin_sessions.html",
        sessions=await call(list_sessions, ws.db, ws.sessions),
    )


async def sessions_end(request: Request, who: Account, form: FormData) -> Response:
    name = str(form.get("name", "")).strip() or None
    ended = await call(sign_out, ws_of(request).db, name)
    await log_access(
        request, who.name, "sessions ended", detail=f"{ended} of {name or 'everybody'}"
    )
    flash(request, f"{ended} session(s) ended.")
    return redirect("/login" if name in (None, who.name) else "/admin/sessions")


async def access_log_page(request: Request, who: Account) -> Response:
    params = request.query_params
    user, audit = params.get("user") or None, params.get("audit") or None
    since_text = params.get("since") or ""
    since = parse_day(since_text, "since") if since_text else None
    entries = await call(access_entries, ws_of(request).db, user, audit, since, SHOWN_ENTRIES)
    return render_page(
        request,
        who,
        "access_log.html",
        entries=list(reversed(entries)),
        user=user or "",
        audit=audit or "",
        since=since_text,
        shown=SHOWN_ENTRIES,
    )
