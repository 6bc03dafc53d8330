"""Email from the workspace: chasing overdue audits (one, selected or every overdue one) and the
amendment request that emails the auditor the reason, the deadline and the form to return.
Both send as `formtool chase` and `formtool check --amend` do, with the server's mail settings
(ws.mail): over SMTP when it has a server, else as .eml drafts the officer downloads and then
marks sent; each message is claimed in the outbox first so it goes once.

Routes (all for the `cycle` capability; the downloads are in the access log):
- POST /chase: `audit` (repeated) or `all=overdue`, and `back` (a path on this site);
- GET /chase/{day}: that day's chase emails, with its drafts to download and mark sent;
- GET /chase/{day}/emails.zip, POST /chase/{day}/mark-sent;
- POST /audits/{id}/check (accept, or decision=amend with a reason: the email goes too);
- POST /audits/{id}/amendment/send: email the current amendment request (again);
- GET /audits/{id}/amendment.eml and POST /audits/{id}/amendment/sent: its draft.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from formtool import clock
from formtool.access.roles import Account
from formtool.errors import FormtoolError, printable
from formtool.web import queries
from formtool.web.pages import (
    ActionRoute,
    PageRoute,
    audit_url,
    call,
    download,
    flash,
    redirect,
    render_page,
    site_path,
    ws_of,
)

DEFAULT_BACK = "/to-chase"


#: A path on this site: one leading slash (never `//host` or `/\host`), printable, no `\`.
def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return [
        action("/chase", chase, "cycle"),
        page("/chase/{day}", chase_page, "cycle", logs="viewed the day's chase emails"),
        page(
            "/chase/{day}/emails.zip",
            chase_drafts,
            "cycle",
            logs="downloaded the day's chase email drafts",
        ),
        action("/chase/{day}/mark-sent", chase_mark_sent, "cycle"),
        action("/audits/{audit_id:path}/check", audit_check, "cycle"),
        action("/audits/{audit_id:path}/amendment/send", amendment_send, "cycle"),
        action("/audits/{audit_id:path}/amendment/sent", amendment_sent, "cycle"),
        page(
            "/audits/{audit_id:path}/amendment.eml",
            amendment_eml,
            "cycle",
            logs="downloaded an amendment email draft",
        ),
    ]


def local_path(given: object, default: str = DEFAULT_BACK) -> str:
    """Where to go back to: a path on this site, else FormtoolError (never another site)."""
    text = str(given or "").strip() or default
    if not site_path(text):
        raise FormtoolError(
            f"Where to go back to ('{printable(text, 80)}') is not a page of this site: it must "
            "be a path starting with one /. Nothing was done; go back and try again."
        )
    return text


def _day(request: Request) -> dt.date:
    text = request.path_params["day"]
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise FormtoolError(f"'{printable(text, 20)}' is not a day: give it as YYYY-MM-DD.")


# --- chasing -------------------------------------------------------------------------------


async def chase(request: Request, who: Account, form: FormData) -> Response:
    """Chase the named audits, or (`all=overdue`) every overdue one, as `formtool chase`
    does; one summary in the flash. Drafts written go to the day's chase page."""
    from formtool.programme.chasing import chase_audits

    back = local_path(form.get("back"))
    everything = form.get("all")
    if everything not in (None, "overdue"):
        raise FormtoolError("Chase all=overdue or name the audits; nothing was chased.")
    named = [str(a).strip() for a in form.getlist("audit") if str(a).strip()]
    if everything is None and not named:
        raise FormtoolError("Choose the audits to chase (tick them), or chase every overdue one.")
    ws, today = ws_of(request), clock.today()
    chased = await call(
        chase_audits,
        ws.db,
        None if everything else named,
        who.roles,
        ws.mail.sender,
        ws.folder("chase", today.isoformat()),
        smtp=ws.mail.smtp or None,
        starttls=ws.mail.starttls,
        smtp_user=ws.mail.user or None,
        settings=ws.settings,
        user=f"web:{who.name}",
    )
    flash(request, chased.summary(), "error" if chased.needs_attention else "ok")
    if chased.mail.written:  # drafts to download and mark sent: the day's chase page
        return redirect(f"/chase/{today.isoformat()}?back={quote(back, safe='/')}")
    return redirect(back)


async def chase_page(request: Request, who: Account) -> Response:
    """The day's chase emails: the drafts to download and mark sent, and those that went."""
    from formtool.programme.mail import CHASE
    from formtool.store import MessageState

    day = _day(request)
    messages = await call(ws_of(request).db.outbox_messages, None, [CHASE], day.isoformat())
    folder = ws_of(request).work_dir / "chase" / day.isoformat()
    return render_page(
        request,
        who,
        "chase.html",
        day=day,
        back=local_path(request.query_params.get("back")),
        drafted=[m for m in messages if m.state is MessageState.drafted],
        others=[m for m in messages if m.state is not MessageState.drafted],
        downloadable=any(folder.glob("*.eml")),
    )


async def chase_drafts(request: Request, who: Account) -> Response:
    day = _day(request)
    folder = ws_of(request).work_dir / "chase" / day.isoformat()
    if not any(folder.glob("*.eml")):
        raise FormtoolError(
            f"No chase email drafts were written on {queries.day(day)} since this server "
            "started. Chase from the To chase list first."
        )
    data = await call(queries.zip_folder, folder, ("*.eml",))
    return download(data, f"chase-emails-{day.isoformat()}.zip")


async def chase_mark_sent(request: Request, who: Account, form: FormData) -> Response:
    """ "I have sent these drafts": the day's chase drafts are sent; their audits' chases
    are recorded (`chased` events)."""
    from formtool.programme.chasing import mark_chases_sent

    day = _day(request)
    back = local_path(form.get("back"), f"/chase/{day.isoformat()}")
    marked = await call(mark_chases_sent, ws_of(request).db, day, f"web:{who.name}")
    # gone: a later chase the same day offers only its own new drafts, never these again
    for sent in (ws_of(request).work_dir / "chase" / day.isoformat()).glob("*.eml"):
        sent.unlink(missing_ok=True)
    flash(
        request,
        f"{len(marked)} chase email(s) of {queries.day(day)} marked sent; "
        f"{sum(len(m.audit_ids) for m in marked)} audit(s) are recorded as chased.",
    )
    return redirect(back)


# --- the amendment request -----------------------------------------------------------------


AGAIN = "Press “Email the auditor” on the audit's page to try again."
DRAFT_LINK = "Download the amendment email draft (.eml)"


async def _email_amendment(request: Request, who: Account, audit_id: str, said: str) -> None:
    """Email the audit's amendment request with the server's mail settings and flash `said`
    with what became of it: an error when it did not go, saying how to send it again; a
    draft's flash carries the link to download it."""
    from formtool.programme.amendment import email_amendment
    from formtool.programme.mail import MailError
    from formtool.store import MessageState

    ws = ws_of(request)
    try:
        mail = await call(
            email_amendment,
            ws.db,
            audit_id,
            ws.mail.sender,
            smtp=ws.mail.smtp or None,
            starttls=ws.mail.starttls,
            smtp_user=ws.mail.user or None,
            settings=ws.settings,
            user=f"web:{who.name}",
        )
    except MailError as exc:
        went = f"The request is recorded, but no email went: {str(exc).rstrip('.')}. {AGAIN}"
        flash(request, f"{said} {went}".strip(), "error")
        return
    draft = mail.outcome == "drafted" or mail.held is MessageState.drafted
    text = " ".join(
        part
        for part in (
            said,
            mail.said(),
            "Download it from the audit's page, then press “I have sent it” once it has gone."
            if draft
            else "",
            AGAIN if mail.outcome == "failed" else "",
            mail.notice,
        )
        if part
    )
    flash(request, text, "error" if mail.outcome in ("failed", "unknown") else "ok")
    if draft:  # base.html may show the flash's link; the audit page offers it too
        request.session["flash"]["link"] = {
            "href": audit_url(audit_id) + "/amendment.eml",
            "text": DRAFT_LINK,
        }


async def audit_check(request: Request, who: Account, form: FormData) -> Response:
    """Accept the return, or (decision=amend) send it back with the reason: the request is
    recorded first, then whoever made the return is emailed (`formtool check --amend`)."""
    from formtool.programme.workflow import check_audit

    audit_id = request.path_params["audit_id"]
    amend = form.get("decision") == "amend"
    reason = str(form.get("reason", "")) if amend else None
    db = ws_of(request).db
    result = await call(check_audit, db, audit_id, reason, user=f"web:{who.name}")
    if result.state != "amendment requested":
        flash(request, f"{audit_id}: accepted.")
        return redirect(audit_url(audit_id))
    said = (
        f"{audit_id}: returned for amendment, due back by {queries.day(result.amend_by)}."
        if result.amend_by
        else f"{audit_id}: returned for amendment (the programme sets no deadline)."
    )
    await _email_amendment(request, who, audit_id, said)
    return redirect(audit_url(audit_id))


async def amendment_send(request: Request, who: Account, form: FormData) -> Response:
    """Email the audit's current amendment request (again, after it failed): once."""
    audit_id = request.path_params["audit_id"]
    await _email_amendment(request, who, audit_id, "")
    return redirect(audit_url(audit_id))


async def amendment_sent(request: Request, who: Account, form: FormData) -> Response:
    """ "I have sent it": the amendment email's draft is recorded as sent."""
    from formtool.programme.amendment import mark_amendment_sent

    audit_id = request.path_params["audit_id"]
    marked = await call(mark_amendment_sent, ws_of(request).db, audit_id, f"web:{who.name}")
    flash(
        request,
        f"{audit_id}: the amendment email is recorded as sent."
        if marked
        else f"{audit_id}: there was no amendment email draft to mark sent.",
    )
    return redirect(audit_url(audit_id))


async def amendment_eml(request: Request, who: Account) -> Response:
    """The .eml draft of the audit's current amendment request, built from the store."""
    from formtool.programme.amendment import amendment_draft

    ws = ws_of(request)
    audit_id = request.path_params["audit_id"]
    name, data = await call(amendment_draft, ws.db, audit_id, ws.mail.sender, ws.settings)
    return download(data, name)
