"""The admin's data-protection page: a subject access copy of one child's (or member of
staff's) records as a zip download, an erasure (shown first as what would go, then done once
the admin types the case number, or the name, to confirm), and the register of that work.

Each view calls the library function `formtool subject-access` and `formtool erase` call
(formtool.protect), which records the work in the access log and the register; the page is
for the admin role (capability "accounts"). Downloading a copy or erasing shows a child's
records, so it also needs a case role (capability "cases"), as every child's data does: an
admin alone sees the register only."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from formtool.access.roles import Account
from formtool.errors import printable
from formtool.web.pages import (
    ActionRoute,
    PageRoute,
    call,
    client_address,
    download,
    flash,
    redirect,
    render_page,
    ws_of,
)

PATH = "/admin/data-protection"
CAN = "accounts"  # the admin role


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return [
        page(PATH, data_protection_page, CAN, logs="viewed the data-protection register"),
        action(f"{PATH}/subject-access", subject_access_download, CAN),
        action(f"{PATH}/erase", erase_preview, CAN),
        action(f"{PATH}/erase/confirm", erase_confirm, CAN),
    ]


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    return " ".join(str(form.get(name, "")).split())[:limit]


def _subject(db: Any, form: FormData, who: Account) -> Any:
    """The child (case number) or member of staff (name) the form names; refused to an
    admin without a case role (the roles' rule: no child's data without one)."""
    from formtool.protect.subject_access import SubjectError, child, staff

    if not who.may("cases"):
        raise SubjectError(
            "A subject access copy or an erasure shows a child's records: it needs a case "
            "role (officer or moderator) as well as admin. Ask another admin to add one."
        )
    case_number, name = _text(form, "case_number", 80), _text(form, "staff", 200)
    if bool(case_number) == bool(name):
        raise SubjectError("Give a case number or a member of staff's name (one of them).")
    if case_number:
        return child(case_number)
    account = _text(form, "account", 80)
    return staff(db, name, logins=[account] if account else [])


async def data_protection_page(request: Request, who: Account) -> Response:
    rows = await call(ws_of(request).db.data_requests)
    return render_page(request, who, "data_protection.html", requests=list(reversed(rows)))


async def subject_access_download(request: Request, who: Account, form: FormData) -> Response:
    """The zip, straight to the browser (nothing is left on the server's disk)."""
    from formtool.protect.subject_access import subject_access

    db = ws_of(request).db
    subject = await call(_subject, db, form, who)
    access = await call(
        subject_access,
        db,
        subject,
        f"web:{who.name}",
        _text(form, "reference", 200),
        client_address(request),
    )
    return download(access.data, access.name)


async def erase_preview(request: Request, who: Account, form: FormData) -> Response:
    """What an erasure would remove, with the box to type the case number (or name) in."""
    from formtool.protect.erasure import plan_erasure

    db = ws_of(request).db
    subject = await call(_subject, db, form, who)
    plan = await call(plan_erasure, db, subject)
    for audit_id in plan.audit_ids or [""]:
        await call(
            db.log_access,
            f"web:{who.name}",
            "erasure dry run",
            audit_id or None,
            client_address(request),
            "listed what would go",
        )
    names = ("case_number", "staff", "account", "reason", "authorised_by")
    fields = {k: _text(form, k) for k in names}
    fields["reference"] = _text(form, "reference", 200)
    return render_page(request, who, "data_protection_erase.html", plan=plan, fields=fields)


async def erase_confirm(request: Request, who: Account, form: FormData) -> Response:
    from formtool.protect.erasure import erase_child, erase_staff, plan_erasure
    from formtool.protect.subject_access import SubjectError

    ws = ws_of(request)
    subject = await call(_subject, ws.db, form, who)
    typed = _text(form, "confirm", 200)
    expected = subject.case_number or subject.names[0]
    if typed.casefold() != expected.casefold():
        what = "the case number" if subject.case_number else "the name"
        raise SubjectError(
            f"The confirmation did not match: type {what} exactly as shown to erase. "
            "Nothing was erased."
        )
    plan = await call(plan_erasure, ws.db, subject)
    args = (_text(form, "reason"), _text(form, "authorised_by", 200), f"web:{who.name}")
    reference = _text(form, "reference", 200)
    if subject.kind == "child":
        done = await call(erase_child, ws.db, plan, *args, reference)
        said = f"Erased {len(done.audits)} audit(s) and {len(done.files)} file(s)"
    else:
        done = await call(erase_staff, ws.db, plan, *args, reference, ws.settings)
        said = f"The member of staff is now {done.pseudonym}; {len(done.files)} file(s) changed"
    left = [*(f"table {k}" for k in done.left), *done.files_left]
    if left:
        flash(
            request,
            f"{said} (request {done.request}), but it is still found in "
            f"{printable('; '.join(left), 300)}: check those by hand.",
            "error",
        )
    else:
        flash(request, f"{said} (request {done.request}). Checked: nothing holds it now.")
    return redirect(PATH)
