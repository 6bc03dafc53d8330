"""The web workspace's immediate concerns for a child's safety: the list of them (/concerns, as
`formtool concerns` prints it), raising one from an audit's page, recording the action taken,
and emailing them at once (after an import, or when raised) when formtool.toml names an SMTP
server. The rules are programme.concerns'; a concern's own words are shown only on its audit's
page, to the roles that run the cycle, and every view of them is in the access log."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from formtool.access.roles import Account
from formtool.errors import printable
from formtool.store import Concern, DatabaseError
from formtool.web import queries
from formtool.web.pages import Workspace, audit_url, call, flash, redirect, render_page, ws_of


@dataclass
class Emailing:
    """What sending the concerns' emails did: sent, what went wrong (one line each), and the
    loud line while any concern's email has still not gone ('' when all have)."""

    sent: list[tuple[Concern, tuple[str, ...]]] = field(default_factory=list)  # (it, to whom)
    problems: list[str] = field(default_factory=list)
    loud: str = ""

    def sentences(self) -> list[str]:
        return [
            f"Concern {c.id} ({c.audit_id}) emailed to {', '.join(to) or 'nobody'}."
            for c, to in self.sent
        ] + self.problems


def email_concerns(ws: Workspace, user: str, concerns: list[Concern] | None = None) -> Emailing:
    """Email the concerns not yet emailed (or just `concerns`) when the settings name an SMTP
    server; a failure is said, never raised (the import or the concern stands), and the loud
    line says what is still waiting."""
    from formtool.programme.concerns import loud_line, send_emails, unsent
    from formtool.programme.mail import MailError
    from formtool.programme.rules import active_policy

    done = Emailing()
    try:
        if ws.settings.smtp and unsent(ws.db, concerns):
            result = send_emails(ws.db, ws.settings, active_policy(ws.db), user, concerns)
            done.sent = result.sent
            done.problems = [
                f"Concern {c.id} ({c.audit_id}) not emailed: {error}" for c, error in result.failed
            ]
        done.loud = loud_line(ws.db)
    except MailError as exc:
        done.problems.append(f"Concern email not sent: {exc}")
        done.loud = _loud_or_blank(ws)
    except DatabaseError:
        done.problems.append(
            "Concern emails were not sent: the database could not be used just now. Make sure "
            "the contacts know now; the emails go with the next import, or with "
            "`formtool concerns --send`."
        )
    return done


def _loud_or_blank(ws: Workspace) -> str:
    from formtool.programme.concerns import loud_line

    try:
        return loud_line(ws.db)
    except DatabaseError:
        return ""


async def concerns_page(request: Request, who: Account) -> Response:
    from formtool.programme.audit_page import concern_entries

    entries = await call(concern_entries, ws_of(request).db)
    request.state.access_detail = f"{len(entries)} concern(s)"
    return render_page(request, who, "concerns.html", entries=entries, q=queries)


def _raise(ws: Workspace, audit_id: str, details: str, user: str) -> tuple[Concern, Emailing]:
    from formtool.programme.concerns import raise_by_officer
    from formtool.programme.rules import active_policy

    concern = raise_by_officer(ws.db, active_policy(ws.db), audit_id, details, user)
    return concern, email_concerns(ws, user, [concern])


async def concern_raise(request: Request, who: Account, form: FormData) -> Response:
    """An officer raises a concern from the audit's page, without a return."""
    audit_id = request.path_params["audit_id"]
    ws = ws_of(request)
    concern, emailing = await call(
        _raise, ws, audit_id, str(form.get("details", "")), f"web:{who.name}"
    )
    said = " ".join([f"{audit_id}: concern {concern.id} raised.", *emailing.sentences()])
    flash(request, said, "error" if emailing.problems else "ok")
    return redirect(audit_url(audit_id))


async def concern_action(request: Request, who: Account, form: FormData) -> Response:
    """The action taken on a concern: it closes the concern and lifts the banner."""
    from formtool.programme.concerns import ConcernError, record_action

    number = str(request.path_params["concern_id"])
    # ids are 32-bit whole numbers: anything else is simply not there
    if not (number.isdecimal() and len(number) < 10 and 0 < int(number) < 2**31):
        raise ConcernError(
            f"There is no concern {printable(number, 20)}. The Concerns page lists them with "
            "their numbers."
        )
    action = str(form.get("action", ""))
    concern = await call(record_action, ws_of(request).db, int(number), action, f"web:{who.name}")
    flash(request, f"Concern {concern.id} on {concern.audit_id}: action recorded.")
    if str(form.get("back", "")) == "concerns":
        return redirect("/concerns")
    return redirect(audit_url(concern.audit_id))
