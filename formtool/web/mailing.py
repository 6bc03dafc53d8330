"""Email from the workspace: chasing overdue audits (one, selected or every overdue one) and the
amendment request that emails the auditor the reason, the deadline and the form to return.
Both send as `formtool chase` and `formtool check --amend` do: over SMTP when the server has
one, else as .eml drafts, each message claimed in the outbox first so it goes once."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from formtool.access.roles import Account
from formtool.web import queries
from formtool.web.pages import ActionRoute, PageRoute, audit_url, call, flash, redirect, ws_of


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return [action("/audits/{audit_id:path}/check", audit_check, "cycle")]


async def audit_check(request: Request, who: Account, form: FormData) -> Response:
    from formtool.programme.workflow import check_audit

    audit_id = request.path_params["audit_id"]
    amend = form.get("decision") == "amend"
    reason = str(form.get("reason", "")) if amend else None
    db = ws_of(request).db
    result = await call(check_audit, db, audit_id, reason, user=f"web:{who.name}")
    flash(
        request,
        f"{audit_id}: returned for amendment, due back by {queries.day(result.amend_by)}."
        if result.amend_by
        else f"{audit_id}: returned for amendment (the programme sets no deadline)."
        if result.state == "amendment requested"
        else f"{audit_id}: accepted.",
    )
    return redirect(audit_url(audit_id))
