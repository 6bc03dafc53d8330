"""The "To chase" list: overdue audits, and every returned file that was rejected (against its
audit when its identity was readable, else as an unmatched file), with what to do about each.

The page shows what programme.rejections.to_chase returns for the signed-in roles (audits
whose results the programme keeps from them are left out). Its chase buttons post to /chase
(web/mailing.py); an unmatched file is marked dealt with here, with a note, as
`formtool rejected --dismiss ID --note TEXT` does.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from formtool.access.roles import Account
from formtool.errors import printable
from formtool.web.pages import ActionRoute, PageRoute, call, flash, redirect, render_page, ws_of

PATH = "/to-chase"


def routes(page: PageRoute, action: ActionRoute) -> list[BaseRoute]:
    return [
        page(PATH, to_chase_page, "cycle", logs="viewed the to-chase list"),
        action(f"{PATH}/unmatched/{{rejection_id}}/done", unmatched_done, "cycle"),
    ]


async def to_chase_page(request: Request, who: Account) -> Response:
    from formtool.programme.rejections import to_chase

    found = await call(to_chase, ws_of(request).db, who.roles)
    request.state.access_detail = (
        f"{len(found.overdue)} overdue, {len(found.rejected)} with a rejected file, "
        f"{len(found.unmatched)} unmatched file(s)"
    )
    return render_page(request, who, "to_chase.html", found=found, back=PATH)


async def unmatched_done(request: Request, who: Account, form: FormData) -> Response:
    """An officer marks an unmatched file dealt with, with a note saying what was done."""
    from formtool.programme.rejections import RejectionError, deal_with

    number = str(request.path_params["rejection_id"])
    if not (number.isdecimal() and len(number) < 10):  # ids are 32-bit whole numbers
        raise RejectionError(
            f"There is no rejected file {printable(number, 20)}. The To chase page lists the "
            "unmatched files."
        )
    note = str(form.get("note", ""))
    entry = await call(deal_with, ws_of(request).db, int(number), note, f"web:{who.name}")
    flash(request, f"Unmatched file {entry.id} ({entry.file_name}): marked dealt with.")
    return redirect(PATH)
