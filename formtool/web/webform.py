"""The web form: an auditor answers an audit tool in the browser, through the private link in
their email (programme/weblinks.py), without an account. The page is drawn from the same
definition as the Word and Excel tools (webform_page.py) and what is submitted goes through the
same validation and store as a returned file (read/web.py).

The link is a bearer key to a child's data, and emails are forwarded and opened by mail
scanners, so a GET of the link changes nothing and shows no facts: it offers a one-time code
sent to the allocated person's address, and a POST exchanges link and code for a short session
bound to that audit and stage (a cookie scoped to /form). Only then is the form shown.

Routes (none needs a workspace account; each POST checks the origin and the CSRF token of the
browser's anonymous session, and each view of the form, save and submission is in the access
log under "form:<address>"):
- GET /form/{token}: the code page (or why the link no longer opens);
- POST /form/code: email a one-time code; POST /form/enter: the code opens the form;
- GET /form/fill: the form, with the draft; POST /form/fill: intent "save" (the draft),
  "concern" (the immediate concern raised now) or "final" (validate and store);
- POST /form/save: the autosave (webform.js), answering JSON;
- GET /form/receipt: the PDF of the answers as submitted, for 30 minutes after submitting,
  in the same browser (never later through the link);
- POST /form/leave: end the form session.
Outside loopback, the form routes require HTTPS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from formtool.definitions import PREPARED, FormDefinition
from formtool.errors import FormtoolError, Issue, printable
from formtool.periods import show_time
from formtool.programme import weblinks
from formtool.programme.weblinks import LinkAccess, LinkRefused
from formtool.read import web
from formtool.read.concern import raise_answered_concern
from formtool.store import AuditRecords
from formtool.web import webform_page
from formtool.web.pages import (
    Workspace,
    call,
    download,
    log_access,
    redirect,
    ws_of,
)
from formtool.web.security import csrf_ok, csrf_token, same_origin

log = logging.getLogger("formtool.web")

#: The form session's cookie: HttpOnly, SameSite=Strict, only sent to /form.
FORM_COOKIE = "formtool_form"
FORM_PATH = "/form"
#: How long the PDF of a submission stays downloadable in the submitting browser.
RECEIPT_SECONDS = 30 * 60
#: Limits of the form's POSTs, checked before anything is read: a long tool has a few
#: hundred fields, and a text up to 20,000 characters, up to 12 bytes each once a browser
#: has percent-encoded it; the whole body is bounded too (a few answers can be that long).
MAX_FIELDS = 3000
MAX_PART_BYTES = 250_000
MAX_BODY_BYTES = 8_000_000
#: Autosaves are in the access log at most this often per form session (every save is kept).
AUTOSAVE_LOG_SECONDS = 10 * 60
#: What a refused request is told.
INSECURE = (
    "The audit form opens only over a secure (https) connection. Ask the QA team for the "
    "address to use."
)
FORGED = (
    "This page is too old or did not come from the audit form (the security check did not "
    "match). Nothing was changed. Go back, reload the page and try again."
)
TOO_LARGE = (
    "What was sent is too large for the audit form, or could not be read as it. Nothing was "
    "saved from it. Shorten the longest answers (20,000 characters each at most) and try again."
)
NO_FORM = "Open the audit form from the link in your email: this browser has no form open."


def routes() -> list[BaseRoute]:
    return [
        _route("/form/code", request_code, "POST"),
        _route("/form/enter", enter, "POST"),
        _route("/form/fill", form_page, "GET"),
        _route("/form/fill", form_post, "POST"),
        _route("/form/save", autosave, "POST"),
        _route("/form/receipt", receipt, "GET"),
        _route("/form/leave", leave, "POST"),
        _route("/form/{token}", link_page, "GET"),
    ]


def _route(path: str, view: Callable[[Request], Awaitable[Response]], method: str) -> Route:
    """A form route: a FormtoolError from the library (an audit no longer in the database, a
    form version it does not hold) is the page's one plain line, never a traceback."""

    async def endpoint(request: Request) -> Response:
        try:
            return await view(request)
        except LinkRefused as exc:  # the link or session stopped opening the form meanwhile
            return _refused(request, str(exc), 410)
        except FormtoolError as exc:
            return _refused(request, f"{exc} Ask the QA team.", 409)

    return Route(path, endpoint, methods=[method])


# --- helpers ---------------------------------------------------------------------------------


def _now() -> dt.datetime:
    """Real time, UTC, naive (codes and sessions run on it, as staff sessions do)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # real time


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    ws = ws_of(request)
    html = ws.env.get_template(template).render(
        csrf=csrf_token(request), settings=ws.settings, **context
    )
    return HTMLResponse(html, status_code=status)


def _refused(request: Request, message: str, status: int = 403) -> HTMLResponse:
    return _render(request, "webform_refused.html", status, message=message, title="Audit form")


class Refusal(NamedTuple):
    """Why a request is refused (the words the person reads) and its status."""

    message: str
    status: int


def _secure(request: Request) -> bool:
    """HTTPS (the workspace's own, or a proxy's that says so), or a browser and a server both
    on this computer with no proxy between: a child's data never crosses a network in clear."""
    ws = ws_of(request)
    if request.url.scheme == "https" or ws.behind_https:
        return True
    if ws.trusted_proxy is not None:  # a proxy passing plain http: the network sees it all
        return False
    server = request.scope.get("server") or ("", 0)
    client = request.client.host if request.client else ""
    return _loopback(str(server[0])) and _loopback(client)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _insecure(request: Request) -> HTMLResponse:
    return _refused(request, INSECURE)


async def _posted(request: Request) -> FormData | Refusal:
    """The POSTed form: over a secure connection, from this site, of a size it says and
    within the limits (checked before it is read), with this browser's CSRF token."""
    ws = ws_of(request)
    if not _secure(request):
        return Refusal(INSECURE, 403)
    if not same_origin(request, ws.trusted_proxy is not None):
        return Refusal(FORGED, 403)
    size = request.headers.get("content-length", "")
    if not size.isdigit() or int(size) > MAX_BODY_BYTES:
        return Refusal(TOO_LARGE, 413)
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_PART_BYTES)
    except Exception:  # too many fields, an answer too long, or not a form at all
        return Refusal(TOO_LARGE, 413)
    if not csrf_ok(request, form.get("csrf")):
        await form.close()
        return Refusal(FORGED, 403)
    return form


def _who(access: LinkAccess) -> str:
    """Who the access log names: the address the link was sent to."""
    return f"form:{access.address}"


async def _session(request: Request) -> LinkAccess | None:
    token = request.cookies.get(FORM_COOKIE, "")
    if not token:
        return None
    return await call(weblinks.form_session, ws_of(request).db, token, _now())


def _mask(address: str) -> str:
    """An address as the code page shows it: enough to recognise, not to harvest."""
    name, _, domain = address.partition("@")
    return f"{name[:1]}{'•' * max(len(name) - 1, 1)}@{domain}"


# --- the link and the code -------------------------------------------------------------------


async def link_page(request: Request) -> Response:
    """The page the email's link opens: nothing changes and no fact is shown."""
    if not _secure(request):
        return _insecure(request)
    token = str(request.path_params["token"])
    try:
        await call(weblinks.check_link, ws_of(request).db, token)
    except LinkRefused as exc:
        return _refused(request, str(exc), 410 if exc.reason != "unknown" else 404)
    return _code_page(request, token)


def _code_page(
    request: Request, token: str, sent_to: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    return _render(
        request,
        "webform_code.html",
        status,
        title="Audit form",
        token=token,
        request_url="/form/code",
        enter_url="/form/enter",
        sent_to=sent_to,
        error=error,
    )


async def request_code(request: Request) -> Response:
    """Email a one-time code to the address the link was sent to."""
    form = await _posted(request)
    if isinstance(form, Refusal):
        return _refused(request, *form)
    token = str(form.get("token", ""))[:200]
    ws = ws_of(request)
    try:
        access, code = await call(weblinks.request_code, ws.db, token, _now())
    except LinkRefused as exc:
        if exc.reason == "throttled":
            return _code_page(request, token, error=str(exc), status=429)
        return _refused(request, str(exc), 410)
    try:
        await call(_send_code, ws, access, code)
    except (FormtoolError, OSError) as exc:  # the reason is the QA team's, not the visitor's
        log.warning("A web form's one-time code was not emailed: %s", printable(str(exc), 300))
        await _log(request, access, "one-time code not sent", printable(str(exc), 200))
        return _code_page(
            request,
            token,
            error="The code could not be emailed just now. Try again in a few minutes; if it "
            "still does not come, tell the QA team (their mail server may need attention).",
            status=503,
        )
    await _log(request, access, "one-time code emailed for the web form")
    return _code_page(request, token, sent_to=_mask(access.address))


def _send_code(ws: Workspace, access: LinkAccess, code: str) -> None:
    from formtool.programme.smtp import MailError, send_smtp

    server = ws.settings.smtp or ws.mail.smtp
    if not server:
        raise MailError("this formtool server has no mail server set")
    sender = ws.settings.mail_from or ws.mail.sender
    message = weblinks.code_message(access, code, sender, ws.settings)
    user = ws.settings.smtp_user or ws.mail.user or None
    send_smtp(server, ws.mail.starttls, user, lambda smtp: smtp.send_message(message))


async def enter(request: Request) -> Response:
    """Link and code exchanged for the form session."""
    form = await _posted(request)
    if isinstance(form, Refusal):
        return _refused(request, *form)
    token = str(form.get("token", ""))[:200]
    code = "".join(str(form.get("code", "")).split())[:20]
    try:
        session, access = await call(weblinks.exchange_code, ws_of(request).db, token, code, _now())
    except LinkRefused as exc:
        if exc.reason in ("wrong_code", "no_code"):  # "locked" and the rest: the link is done
            return _code_page(request, token, error=str(exc), status=400)
        return _refused(request, str(exc), 410)
    await _log(request, access, "opened the web form with a one-time code")
    response = redirect("/form/fill")
    response.set_cookie(
        FORM_COOKIE,
        session,
        httponly=True,
        samesite="strict",
        secure=ws_of(request).behind_https or request.url.scheme == "https",
        path=FORM_PATH,
    )
    return response


async def _log(request: Request, access: LinkAccess, what: str, detail: str = "") -> None:
    stage = "preparer's stage" if access.stage == "prepare" else "auditor's stage"
    detail = "; ".join(x for x in (stage, detail) if x)
    await log_access(request, _who(access), what, audit_id=access.audit_id, detail=detail)


# --- the form --------------------------------------------------------------------------------


def flat_answers(form: FormDefinition, found: AuditRecords | None) -> dict[str, str]:
    """A stored return's answers as the form's fields hold them (key -> value, evidence and
    comment keys, action cells): what an amendment starts from."""
    if found is None:
        return {}
    values = prepared_values(form, found.answers)
    tables = {item.key: item for item in form.tables()}
    for action in found.actions:
        item = tables.get(str(action.table_key))
        if item is None:
            continue
        for column in item.columns:
            cell = getattr(action, column.role, None)
            if cell:
                text = cell.isoformat() if isinstance(cell, dt.date) else str(cell)
                values[item.cell_key(int(action.row), column)] = text
    return values


def prepared_values(
    form: FormDefinition, answers: Mapping[str, tuple[str, str]] | None
) -> dict[str, str]:
    """Stored answers (key -> (value, evidence)) as flat field values: a prepared return's
    (two-stage tools), or the questions of a return being amended."""
    values: dict[str, str] = {}
    for key, (value, evidence) in (answers or {}).items():
        values[key] = value
        item = form.item(key)
        if item is not None and item.evidence and evidence:
            values[item.evidence_key] = evidence
    return values


def _form_audit(db: Any, access: LinkAccess) -> web.WebAudit:
    """The audit behind a form session, whose return stage must be the link's (the link
    decides what the page asks; the store what a return would be now: they agree, or the
    form is not shown rather than shown for the wrong person)."""
    found = web.web_audit(db, access.audit_id)
    if web.RETURN_STAGES[access.stage] != found.stage:
        raise LinkRefused("closed")
    return found


def _page_context(
    db: Any, access: LinkAccess
) -> tuple[web.WebAudit, dict[str, str], dict[str, str], str]:
    """The audit, the values to show (the draft, else the stage's current return when it is
    being amended), the prepared evidence and when the draft was saved."""
    found = _form_audit(db, access)
    values = weblinks.load_draft(db, access)
    saved = ""
    if not values and access.amendment:
        records = db.audit_records(access.audit_id)
        values = flat_answers(found.form, records)
    elif values:
        saved = values.pop("_saved_at", "")
    return found, values, prepared_values(found.form, found.prepared), saved


def _form_response(
    request: Request,
    access: LinkAccess,
    found: web.WebAudit,
    values: Mapping[str, str],
    prepared: Mapping[str, str],
    issues: list[Issue] | tuple[Issue, ...] = (),
    saved: str = "",
    status: int = 200,
    notice: str = "",
) -> HTMLResponse:
    stage = access.stage
    context = webform_page.form_context(
        found.form,
        stage,
        found.facts,
        values,
        issues,
        prepared if found.form.two_stage and stage == "audit" else None,
        access.amendment,
        saved,
    )
    return _render(
        request,
        "webform.html",
        status,
        title=found.form.title,
        save_url="/form/save",
        submit_url="/form/fill",
        concern_url="/form/fill",
        leave_url="/form/leave",
        notice=notice,
        **context,
    )


async def form_page(request: Request) -> Response:
    if not _secure(request):
        return _insecure(request)
    try:
        access = await _session(request)
        if access is None:
            return _refused(request, NO_FORM)
        db = ws_of(request).db
        found, values, prepared, saved = await call(_page_context, db, access)
    except LinkRefused as exc:
        return _refused(request, str(exc), 410)
    await _log(request, access, "viewed the web form")
    notice = str(request.session.pop("form_notice", ""))[:300]
    return _form_response(request, access, found, values, prepared, saved=saved, notice=notice)


def _saved(request: Request, notice: str) -> Response:
    """After a save: back to the form (a reload never posts twice), saying what happened."""
    request.session["form_notice"] = notice
    return redirect("/form/fill")


def _answers(found: web.WebAudit, access: LinkAccess, form: FormData) -> dict[str, str]:
    return webform_page.posted_values(found.form, access.stage, form)


async def _posting(request: Request) -> tuple[LinkAccess, FormData] | Refusal:
    """A form POST (see `_posted`) in a live form session."""
    form = await _posted(request)
    if isinstance(form, Refusal):
        return form
    try:
        access = await _session(request)
    except LinkRefused as exc:
        await form.close()
        return Refusal(str(exc), 410)
    if access is None:
        await form.close()
        return Refusal(NO_FORM, 403)
    return access, form


async def autosave(request: Request) -> Response:
    """webform.js saves the draft: JSON in, never a concern raised (only saving the concern
    answer on purpose, or submitting, raises one)."""
    posting = await _posting(request)
    if isinstance(posting, Refusal):  # the script shows the words: what to do next
        return JSONResponse({"saved": False, "message": posting.message}, posting.status)
    access, form = posting
    db = ws_of(request).db
    try:
        found = await call(_form_audit, db, access)
    except LinkRefused as exc:
        return JSONResponse({"saved": False, "message": str(exc)}, 410)
    saved = await call(_save_draft, db, access, _answers(found, access, form))
    last = float(request.session.get("form_autosave_logged", 0))
    if time.time() - last > AUTOSAVE_LOG_SECONDS:  # real time
        request.session["form_autosave_logged"] = time.time()  # real time
        await _log(request, access, "saved a draft of the web form", "autosave")
    return JSONResponse({"saved": True, "at": saved})


def _save_draft(db: Any, access: LinkAccess, values: Mapping[str, str]) -> str:
    now = _now()
    shown = show_time(now)
    weblinks.save_draft(db, access, {**values, "_saved_at": shown}, now)
    return shown


async def form_post(request: Request) -> Response:
    """The form's buttons without JavaScript, and the only way to submit: save the draft,
    raise the immediate concern now, or submit as final."""
    posting = await _posting(request)
    if isinstance(posting, Refusal):
        return _refused(request, *posting)
    access, form = posting
    intent = str(form.get("intent", "save"))
    ws = ws_of(request)
    found = await call(_form_audit, ws.db, access)
    prepared = prepared_values(found.form, found.prepared)
    answers = _answers(found, access, form)
    saved = await call(_save_draft, ws.db, access, answers)
    if intent == "concern":
        return await _concern(request, access, found, answers)
    if intent != "final":
        await _log(request, access, "saved a draft of the web form")
        return _saved(request, f"Draft saved at {saved}.")
    return await _submit(request, access, found, answers, prepared, saved)


async def _concern(
    request: Request, access: LinkAccess, found: web.WebAudit, answers: Mapping[str, str]
) -> Response:
    ws = ws_of(request)
    raised = await call(
        raise_answered_concern, ws.db, access.audit_id, found.form, answers, _who(access)
    )
    if raised is None:
        notice = (
            "The immediate concern question does not say Yes, or this concern was already "
            "raised: nothing new was sent to the QA team. Your draft is saved."
        )
    else:
        await call(_email_concern, ws, raised)
        notice = "The QA team has been told of the immediate concern now. Your draft is saved."
    await _log(request, access, "saved the immediate concern answer in the web form")
    return _saved(request, notice)


def _email_concern(ws: Workspace, concern_id: int) -> None:
    """The concern emailed to its contacts where a mail server is set (as an import does);
    a failure leaves it on the concerns page, never hides it."""
    from formtool.web.concerns import email_concerns

    concerns = [c for c in ws.db.concerns(True) if c.id == concern_id]
    email_concerns(ws, "web form", concerns)


def _with_prepared(
    found: web.WebAudit, answers: Mapping[str, str], prepared: Mapping[str, str]
) -> dict[str, str]:
    """What the auditor's stage submits: the prepared evidence as it was prepared (shown
    read-only) with the auditor's own answers."""
    if found.form.two_stage and found.stage != PREPARED:
        return {**prepared, **answers}
    return dict(answers)


async def _submit(
    request: Request,
    access: LinkAccess,
    found: web.WebAudit,
    answers: Mapping[str, str],
    prepared: Mapping[str, str],
    saved: str,
) -> Response:
    ws = ws_of(request)
    values = _with_prepared(found, answers, prepared)
    outcome = await call(
        web.submit, ws.db, access.audit_id, access.stage, values, access.address, _who(access)
    )
    if outcome.concern_id is not None:  # raised even when the answers are not yet accepted
        await call(_email_concern, ws, outcome.concern_id)
    if not outcome.stored:
        errors = [i for i in outcome.issues if not i.is_warning]
        await _log(
            request, access, "submitted the web form: not accepted", f"{len(errors)} problem(s)"
        )
        notice = (
            "The QA team has been told of the immediate concern now."
            if outcome.concern_id is not None
            else ""
        )
        return _form_response(
            request, access, found, answers, prepared, outcome.issues, saved, 422, notice
        )
    await call(weblinks.drop_draft, ws.db, access.audit_id, access.stage)
    pdf_ready = False
    if outcome.return_id is not None:
        pdf_ready = await call(_keep_receipt, ws, access.audit_id, outcome.return_id)
        request.session["form_receipt"] = {
            "return_id": outcome.return_id,
            "audit_id": access.audit_id,
            "by": _who(access),
            "until": time.time() + RECEIPT_SECONDS,  # real time
        }
    await _log(request, access, "submitted the web form", outcome.status)
    token = request.cookies.get(FORM_COOKIE, "")
    await call(weblinks.end_form_session, ws.db, token)
    response = _render(
        request,
        "webform_done.html",
        title=found.form.title,
        stored_at=show_time(_now()),
        held=outcome.status == "held",
        pdf_url="/form/receipt" if pdf_ready else "",
        warnings=[i for i in outcome.issues if i.is_warning],
    )
    response.delete_cookie(FORM_COOKIE, path=FORM_PATH)
    return response


def _keep_receipt(ws: Workspace, audit_id: str, return_id: int) -> bool:
    """The PDF of the answers as submitted (the file pack's page), kept beside the return.
    Made from the audit's current return: a held submission has none (False)."""
    from formtool.packs.file import as_document, audit_view
    from formtool.packs.render import to_pdf

    records = ws.db.audit_records(audit_id)
    if records is None or records.row.return_id != return_id:
        return False
    view = audit_view(ws.db, audit_id, include_drafts=True)
    ws.db.set_return_receipt(return_id, to_pdf(as_document(view, ws.settings)))
    return True


async def receipt(request: Request) -> Response:
    """The PDF of a submission, in the browser that submitted it, for 30 minutes."""
    if not _secure(request):
        return _insecure(request)
    held = request.session.get("form_receipt") or {}
    if not held or float(held.get("until", 0)) < time.time():  # real time
        return _refused(
            request,
            "The PDF of your answers can be downloaded only just after submitting, from the same "
            "browser. Ask the QA team for a copy.",
            410,
        )
    pdf = await call(ws_of(request).db.return_receipt, int(held["return_id"]))
    if pdf is None:
        return _refused(request, "No PDF was kept for this submission. Ask the QA team.", 404)
    audit_id = str(held["audit_id"])
    who = str(held.get("by", "form:unknown"))
    await log_access(request, who, "downloaded the PDF of a web form", audit_id=audit_id)
    return download(pdf, f"{audit_id} answers.pdf")


async def leave(request: Request) -> Response:
    """End the form session (the draft stays)."""
    form = await _posted(request)
    if isinstance(form, Refusal):
        return _refused(request, *form)
    await form.close()
    token = request.cookies.get(FORM_COOKIE, "")
    if token:
        await call(weblinks.end_form_session, ws_of(request).db, token)
    response = _refused(
        request,
        "You have left the audit form. Your draft is saved; open the link again to go on.",
        200,
    )
    response.delete_cookie(FORM_COOKIE, path=FORM_PATH)
    return response
