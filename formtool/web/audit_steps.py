"""The steps an officer takes from one audit's page: accept or amend (mailing.py), record a
manager's sign-off of an action, sign off and close, reopen, exempt, reassign to another
auditor, and download the audit's blank form again. Each is one library call, as its CLI
command makes it; the page offers a step only when it can succeed (audit_page._steps)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from formtool.access.roles import Account
from formtool.errors import FormtoolError
from formtool.periods import Month
from formtool.settings import Settings
from formtool.store import Store
from formtool.web.pages import (
    ActionRoute,
    PageRoute,
    audit_url,
    call,
    download,
    flash,
    redirect,
    ws_of,
)


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return [
        page(
            "/audits/{audit_id:path}/form.{fmt}",
            blank_form,
            "cases",
            logs="downloaded an audit's blank form",
        ),
        action("/audits/{audit_id:path}/step/{step}", audit_step, "cycle"),
        action("/audits/{audit_id:path}/sign-off", action_sign_off, "cycle"),
        action("/audits/{audit_id:path}/reopen", audit_reopen, "cycle"),
        action("/audits/{audit_id:path}/exempt", audit_exempt, "cycle"),
        action("/audits/{audit_id:path}/reassign", audit_reassign, "cycle"),
    ]


async def audit_step(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.workflow import close_audit, sign_off_actions

    audit_id, step = request.path_params["audit_id"], request.path_params["step"]
    run = {"signoff": sign_off_actions, "close": close_audit}.get(step)
    if run is None:
        raise HTTPException(404)
    await call(run, ws_of(request).db, audit_id, user=f"web:{who.name}")
    flash(request, f"{audit_id}: {'actions signed off' if step == 'signoff' else 'closed'}.")
    return redirect(audit_url(audit_id))


async def audit_reopen(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.workflow import reopen_audit

    audit_id = request.path_params["audit_id"]
    reason = str(form.get("reason", ""))
    db = ws_of(request).db
    result = await call(reopen_audit, db, audit_id, reason, user=f"web:{who.name}")
    since = " The return that arrived since is now current." if result.promoted else ""
    flash(request, f"{audit_id}: reopened (was {result.previous_state}).{since}")
    return redirect(audit_url(audit_id))


async def audit_exempt(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.workflow import exempt_audit

    audit_id = request.path_params["audit_id"]
    reason, agreed_by = str(form.get("reason", "")), str(form.get("agreed_by", ""))
    db = ws_of(request).db
    agrees = await call(who_agrees, db)
    result = await call(exempt_audit, db, audit_id, reason, agreed_by, f"web:{who.name}", agrees)
    flash(
        request,
        f"{audit_id}: exempted (was {result.previous_state}), agreed by {agreed_by.strip()}.",
    )
    return redirect(audit_url(audit_id))


async def action_sign_off(request: Request, who: Account, form: FormData) -> Response:
    """One action row's sign-off by its manager, as the officer was told it (name, day)."""
    from formtool.programme.workflow import sign_off_action

    audit_id = request.path_params["audit_id"]
    named = await call(
        sign_off_action,
        ws_of(request).db,
        audit_id,
        str(form.get("action", "")),
        str(form.get("signed_by", "")),
        str(form.get("signed_on", "")),
        user=f"web:{who.name}",
    )
    flash(request, f"{audit_id}: {named} signed off by {str(form.get('signed_by')).strip()}.")
    return redirect(audit_url(audit_id) + "#actions")


async def audit_reassign(request: Request, who: Account, form: FormData) -> Response:
    """`formtool reassign`: the audit goes to another auditor; its new copy is sent from the
    month's Allocate page, like every form."""
    from formtool.programme.workflow import reassign_audit

    ws = ws_of(request)
    audit_id = request.path_params["audit_id"]
    fields = {k: str(form.get(k, "")) for k in ("auditor", "email", "team", "reason", "format")}
    if fields["format"] not in ("", "docx", "xlsx"):
        raise FormtoolError("Choose the form's format: Word (.docx) or Excel (.xlsx).")
    with tempfile.TemporaryDirectory(prefix="reassign-", dir=ws.folder("forms")) as folder:
        result = await call(
            reassign_audit,
            ws.db,
            audit_id,
            fields["auditor"],
            fields["email"],
            fields["reason"],
            Path(folder),  # the month's forms are rebuilt from the store when sent
            f"web:{who.name}",
            ws.settings,
            fields["format"],
            fields["team"],
        )
    month = (await call(ws.db.require_audit, audit_id)).month
    flash(
        request,
        f"{audit_id}: reassigned to {result.auditor} (copy {result.copy}). Send the new copy "
        f"from the Allocate page for {Month(month).name}; the old copy, if it comes back, is "
        "held for an officer.",
    )
    return redirect(audit_url(audit_id))


def _blank_form(db: Store, audit_id: str, fmt: str, settings: Settings) -> tuple[str, bytes]:
    """The audit's pre-filled form as it was sent (generation is deterministic)."""
    from formtool.generate import regenerate

    row = db.require_audit(audit_id)
    with tempfile.TemporaryDirectory(prefix="formtool-form-") as folder:
        made = regenerate(db, row.month, Path(folder), (fmt,), settings, [audit_id])
        if not made:
            raise FormtoolError(f"Audit {audit_id} has no form to download.")
        return made[0].path.name, made[0].path.read_bytes()


async def blank_form(request: Request, who: Account) -> Response:
    audit_id, fmt = request.path_params["audit_id"], request.path_params["fmt"]
    if fmt not in ("docx", "xlsx"):
        raise HTTPException(404)
    ws = ws_of(request)
    name, data = await call(_blank_form, ws.db, audit_id, fmt, ws.settings)
    return download(data, name)


def who_agrees(db: Store) -> str:
    """The programme's words for who may agree an exemption ('' when it names nobody)."""
    from formtool.programme.rules import active_policy

    return active_policy(db).word("exemption")
