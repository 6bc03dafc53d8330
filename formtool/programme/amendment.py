"""The amendment email: when an officer sends a return back (`formtool check --amend`, the
audit page's "Request amendment"), whoever made that return (its auditor; for a two-stage
tool's prepared file, the worker who prepared it) is emailed the reason, the day it is due
back (or that the programme sets none) and their own return to amend, with the instructions
the distribution email gives for completing and returning a form.

It goes through the outbox (mail.AMENDMENT), once per request: the round is the request's
number (the audit's first, second... "amendment requested" event), so repeating a request
never emails twice, and a second request after a new return emails again. It is sent over
SMTP, or recorded as an .eml draft: written to a folder (the command line) or built again
from the store whenever the browser downloads it. A refused message is `failed` and the next
`email_amendment` for the request tries again; one cut off mid-send is `unknown`.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from formtool.definitions import PREPARED
from formtool.definitions.identifiers import safe_file_stem
from formtool.errors import printable
from formtool.periods import show_date
from formtool.programme.mail import (
    AMENDMENT,
    HOLDING,
    POLICY,
    RETURN_HOW,
    MailError,
    deliveries,
    display_name,
    instructions,
    send_smtp,
    signature,
    tool_title,
    valid_address,
)
from formtool.programme.weblinks import (
    LINK_LATER,
    issue_link_until,
    keep_newest_link,
    link_lines,
    link_url,
)
from formtool.settings import DEFAULT, Settings
from formtool.store import (
    EMAIL_DRAFT,
    WEB_METHOD,
    AuditState,
    MessageState,
    Store,
    unknown_audit,
)

M = MessageState
REQUESTED = "amendment requested"  # workflow.check_audit's event (and the audit's state)


@dataclass(frozen=True)
class Amendment:
    """One amendment request, as the store holds it: the audit, the officer's reason, the
    day it is due back, the request's number (the outbox round), who made the return sent
    back and that return's original file (name, bytes; none for a web return, whose
    amendment email carries a new private link instead)."""

    audit: Any
    reason: str
    due: dt.date | None
    round: str
    name: str
    address: str
    stage: str  # "audit", or "prepare" for a two-stage tool's prepared file
    file: tuple[str, bytes] | None


@dataclass(frozen=True)
class AmendmentMail:
    """What `email_amendment` did: `outcome` is sent, drafted, failed or unknown now, or
    `held` when this request's email already went, is being sent or is a draft (`held` says
    which)."""

    audit_id: str
    name: str
    to: str
    outcome: str
    held: MessageState | None = None
    written: Path | None = None
    sent_via: str = ""
    notice: str = ""  # mail went out unencrypted
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "to": self.to,
            "outcome": self.outcome,
            "held": self.held.value if self.held else None,
            "eml": str(self.written) if self.written else None,
            "sent_via": self.sent_via,
            "notice": self.notice,
            "error": self.error,
        }

    def said(self) -> str:
        """One plain sentence for the officer."""
        who = f"{printable(self.name) or 'the auditor'} ({self.to})"
        if self.outcome == "sent":
            return f"{who} was emailed the reason, the date and their return to amend."
        if self.outcome == "drafted":
            return f"The email to {who} is ready as an .eml draft: send it from Outlook."
        if self.outcome == "failed":
            return f"The email to {who} was refused ({self.error}); sending it again tries again."
        if self.outcome == "unknown":
            return f"The email to {who} may have gone ({self.error}): check the Sent Items."
        return {
            M.sent: f"The email to {who} for this request has already gone.",
            M.queued: f"The email to {who} for this request is being sent now.",
            M.drafted: f"The email to {who} for this request is already an .eml draft.",
            M.unknown: f"The email to {who} for this request may have gone: check the Sent Items.",
        }.get(self.held or M.sent, "")


def amendment_of(db: Store, audit_id: str) -> Amendment:
    """The audit's current amendment request, with whom to email and the file to attach;
    MailError (one line, with the fix) when there is none or it cannot be emailed."""
    records = db.audit_records(audit_id)
    if records is None:
        raise unknown_audit(audit_id)
    row = records.row
    if row.state != AuditState.amendment_requested.value:
        raise MailError(
            f"Audit {audit_id} is {row.state}, not waiting for an amendment: there is no "
            "amendment request to email."
        )
    requests = [e for e in records.events if e.event == REQUESTED]
    if not requests:
        raise MailError(f"Audit {audit_id} has no amendment request on record to email")
    # check_audit records "amend by DD/MM/YYYY: reason" (else "amend (the programme sets no
    # deadline): reason");
    # while the audit is back with its auditor its due date is the amendment's.
    head, _, reason = requests[-1].detail.partition(": ")
    due = row.due_date if head.startswith("amend by ") else None
    preparer = row.stage == PREPARED
    name, address = (
        (row.worker, row.preparer_email) if preparer else (row.auditor, row.auditor_email)
    )
    if not valid_address(address or ""):
        field = "preparer_email" if preparer else "auditor_email"
        raise MailError(
            f"{printable(name) or 'The auditor'} has no usable email address "
            f"('{printable(address or '')}') for audit {audit_id} ({field}): tell them yourself"
        )
    stage = "prepare" if preparer else "audit"
    if row.method == WEB_METHOD:  # amended through a new link, not a file
        request = str(len(requests))
        return Amendment(row, reason.strip(), due, request, name, address.strip(), stage, None)
    file = db.return_content(row.return_id) if row.return_id else None
    if file is None:
        raise MailError(f"Audit {audit_id} has no current return to attach")
    attached = (file.file_name.split(" › ")[-1], bytes(file.content))
    return Amendment(
        row, reason.strip(), due, str(len(requests)), name, address.strip(), stage, attached
    )


def _what(amendment: Amendment) -> str:
    if amendment.stage == "prepare":
        return "prepared file"
    return "audit" if amendment.audit.activity else "case file audit"


def _subject(amendment: Amendment, settings: Settings) -> str:
    due = f", due back {show_date(amendment.due)}" if amendment.due else ""
    return (
        f"[{settings.marking}] Amendment needed: {_what(amendment)} {amendment.audit.audit_id}{due}"
    )


def _body(amendment: Amendment, settings: Settings, link: tuple[str, dt.date] | None) -> str:
    if amendment.file is None:
        return _web_body(amendment, settings, link)
    file_name = amendment.file[0]
    when = (
        f"Please amend the attached form (the one you returned) and send it back by "
        f"{show_date(amendment.due)}."
        if amendment.due
        else "Please amend the attached form (the one you returned) and send it back as soon "
        "as you can: the programme sets no date for amendments."
    )
    lines = [
        *_opening(amendment, f" ({file_name})"),
        when,
        "",
        *instructions("xlsx" if file_name.lower().endswith(".xlsx") else "docx"),
        RETURN_HOW,
    ]
    return "\n".join(lines + signature(settings))


def _opening(amendment: Amendment, after: str, *under: str) -> list[str]:
    """What both amendment emails begin with: the greeting, the audit (with `after` on its
    line and `under` beneath it) and the reason."""
    audit = amendment.audit
    return [
        f"Dear {display_name(amendment.name)},",
        "",
        f"Thank you for your {_what(amendment)} below. The QA team has checked it and needs it "
        "amended before it can be accepted.",
        "",
        f"  - {tool_title(audit.form_id)}: {audit.subject_kind} {audit.case_number}, audit "
        f"{audit.audit_id}{after}",
        *under,
        "",
        f"What needs amending: {amendment.reason}",
        "",
    ]


def _web_body(amendment: Amendment, settings: Settings, link: tuple[str, dt.date] | None) -> str:
    """A web return's amendment email: the reason, the date, and a new private link."""
    by = f"by {show_date(amendment.due)}" if amendment.due else "as soon as you can"
    until = f"; link works until {show_date(link[1])}" if link else ""
    lines = [
        *_opening(amendment, until, f"    {link[0] if link else LINK_LATER}"),
        f"Please amend your answers through the private link above and submit them again {by}"
        + ("." if amendment.due else ": the programme sets no date for amendments."),
        "",
        *link_lines(amendment.address),
        "Use this email's link: the one in the earlier email may no longer work.",
    ]
    return "\n".join(lines + signature(settings))


def new_link(db: Store, amendment: Amendment, settings: Settings) -> tuple[str, dt.date] | None:
    """A web return's new private link and the day it works until; None for a return made
    in Word or Excel. The stage's earlier links are revoked when an email carrying it is
    sent over SMTP (`_send`), never for a draft (which may go from Outlook, or not)."""
    if amendment.file is not None:
        return None
    made = issue_link_until(db, amendment.audit.audit_id, amendment.stage)
    return link_url(settings, made.token), made.until


def amendment_message(
    amendment: Amendment,
    sender: str,
    settings: Settings,
    link: tuple[str, dt.date] | None = None,
) -> EmailMessage:
    """The email, built only from the store (the same every time, so a draft can be built
    again for download); a web return's carries `link` (url, works until) instead of a file."""
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(addr_spec=sender.strip())
    message["To"] = Address(display_name(amendment.name), addr_spec=amendment.address)
    message["Subject"] = _subject(amendment, settings)
    message["X-Unsent"] = "1"  # Outlook opens a saved .eml as a draft to send
    message.set_content(_body(amendment, settings, link))
    if amendment.file is None:
        return message
    file_name, data = amendment.file
    kind = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    main, sub = kind.split("/", 1)
    message.add_attachment(data, maintype=main, subtype=sub, filename=file_name)
    return message


def draft_name(amendment: Amendment) -> str:
    """The draft's file name: one per request, so writing it again replaces it."""
    stem = safe_file_stem(amendment.audit.audit_id, fallback="audit", part=True)
    return f"amendment-{stem}-{amendment.round}.eml"


def email_amendment(
    db: Store,
    audit_id: str,
    sender: str,
    smtp: str | None = None,
    starttls: bool = False,
    smtp_user: str | None = None,
    out_dir: Path | None = None,
    settings: Settings = DEFAULT,
    user: str = "",
    ssl_context: ssl.SSLContext | None = None,
) -> AmendmentMail:
    """Email the audit's current amendment request (once: see the module's docstring), over
    SMTP when `smtp` is given, else as an .eml draft (written to `out_dir` when given).
    MailError when it cannot be built or the server cannot be reached: nothing is claimed."""
    if not valid_address(sender):
        raise MailError(f"The sender address '{printable(sender)}' is not an email address")
    amendment = amendment_of(db, audit_id)
    if amendment.file is None and not settings.web_address.strip():
        raise MailError(
            f"Audit {audit_id} was returned through a web form, so its amendment email carries a "
            "new link, but no web_address is set: set web_address in formtool.toml to the web "
            "workspace's address, then send it"
        )
    held = db.held_claims([audit_id], [AMENDMENT], amendment.round).get((audit_id, AMENDMENT))
    if held in HOLDING:
        return AmendmentMail(audit_id, amendment.name, amendment.address, "held", held)

    def message() -> EmailMessage:
        """Built once the claim is ours and the email goes (sent, or a draft written to a
        folder; a draft downloaded gets its web link then): a web return's new link."""
        return amendment_message(amendment, sender, settings, new_link(db, amendment, settings))

    if not smtp:
        return _draft(db, amendment, message, out_dir, user, settings)
    done: list[AmendmentMail] = []
    try:
        notice = send_smtp(
            smtp,
            starttls,
            smtp_user,
            lambda conn: done.append(_send(db, amendment, message, conn, user, settings)),
            ssl_context,
        )
    except MailError as exc:
        if not done:  # nothing claimed: the server was never reached; one message, no "rest"
            raise MailError(str(exc).split(". Messages sent before")[0]) from None
        notice = ""  # it failed closing the connection, after the message was recorded
    return replace(done[0], sent_via=smtp, notice=notice)


def _claim(db: Store, amendment: Amendment, settings: Settings, user: str) -> Any:
    audit = amendment.audit
    return db.claim_message(
        audit.month,
        AMENDMENT,
        amendment.round,
        amendment.stage,
        amendment.address,
        [audit.audit_id],
        lambda _: _subject(amendment, settings),
        user,
    )


def _draft(
    db: Store,
    amendment: Amendment,
    message: Callable[[], EmailMessage],
    out_dir: Path | None,
    user: str,
    settings: Settings,
) -> AmendmentMail:
    audit_id = amendment.audit.audit_id
    claim = _claim(db, amendment, settings, user)
    if claim.message_id is None:  # another run took it meanwhile
        return AmendmentMail(
            audit_id, amendment.name, amendment.address, "held", claim.held.get(audit_id)
        )
    path = None
    if out_dir is not None:
        path = out_dir / draft_name(amendment)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(message().as_bytes())
        except OSError as exc:
            reason = printable(str(exc), 200)
            db.settle_message(claim.message_id, M.failed, deliveries, user, reason)
            raise MailError(f"The draft could not be written in {out_dir}: {reason}") from None
    db.settle_message(claim.message_id, M.drafted, deliveries, user)
    if path is not None:  # tracked, so retention and erasure find it on disk
        month = amendment.audit.month
        db.record_files([path], EMAIL_DRAFT, user=user, audit_ids=[audit_id], month=month)
    return AmendmentMail(audit_id, amendment.name, amendment.address, "drafted", written=path)


def _send(
    db: Store,
    amendment: Amendment,
    message: Callable[[], EmailMessage],
    smtp: smtplib.SMTP,
    user: str,
    settings: Settings,
) -> AmendmentMail:
    """Claim, send and settle the one message on an open connection."""
    audit_id, name, to = amendment.audit.audit_id, amendment.name, amendment.address
    claim = _claim(db, amendment, settings, user)
    if claim.message_id is None:
        return AmendmentMail(audit_id, name, to, "held", claim.held.get(audit_id))
    try:
        smtp.send_message(message())
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
        error = printable(str(exc), 200)
        db.settle_message(claim.message_id, M.failed, deliveries, user, error)
        return AmendmentMail(audit_id, name, to, "failed", error=error)
    except (OSError, smtplib.SMTPException) as exc:
        error = f"the connection failed mid-message: {printable(str(exc), 200)}"
        db.settle_message(claim.message_id, M.unknown, deliveries, user, error)
        return AmendmentMail(audit_id, name, to, "unknown", error=error)
    db.settle_message(claim.message_id, M.sent, deliveries, user)
    if amendment.file is None:  # a web return's new link has gone: the earlier ones stop
        keep_newest_link(db, audit_id, amendment.stage)
    return AmendmentMail(audit_id, name, to, "sent")


def amendment_email_state(db: Store, audit_id: str) -> MessageState | None:
    """Where the email of the audit's current amendment request is (None: the audit is not
    waiting for an amendment, or no email was made for the request yet). For the audit page:
    `drafted` offers the draft to download and "I have sent it"; None or `failed` offers
    sending it (again)."""
    row = db.audit_row(audit_id)
    if row is None or row.state != AuditState.amendment_requested.value:
        return None
    requests = db.events_named([audit_id], {REQUESTED}).get(audit_id, [])
    return db.held_claims([audit_id], [AMENDMENT], str(len(requests))).get((audit_id, AMENDMENT))


def amendment_draft(db: Store, audit_id: str, sender: str, settings: Settings) -> tuple[str, bytes]:
    """The .eml draft of the audit's current amendment request (file name, bytes), built
    again from the store; MailError when the request's email is not a draft."""
    amendment = amendment_of(db, audit_id)
    held = db.held_claims([audit_id], [AMENDMENT], amendment.round).get((audit_id, AMENDMENT))
    if held is not M.drafted:
        raise MailError(
            f"The amendment email of audit {audit_id} is not a draft"
            + (f" (it is {held.value})" if held else " (none was made yet)")
        )
    # A web return's draft gets a new link each time it is downloaded (the token is never
    # kept): the draft downloaded last is the one whose link works.
    link = new_link(db, amendment, settings)
    return draft_name(amendment), amendment_message(amendment, sender, settings, link).as_bytes()


def mark_amendment_sent(db: Store, audit_id: str, user: str = "") -> int:
    """The officer sent the draft (or found an email of unknown fate in the Sent Items): the
    request's email is `sent`, with an "amendment emailed" event. How many were marked."""
    amendment = amendment_of(db, audit_id)
    marked = db.mark_messages_sent(None, deliveries, user, [audit_id], [AMENDMENT], amendment.round)
    return len(marked)
