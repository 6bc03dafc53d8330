"""A new private link to one audit's web form, when the QA team is asked for one: the link
expired, was locked after too many wrong codes, or its email was lost (`formtool relink`).

The link is for the stage the audit still owes (the preparer's or the auditor's) and goes to
the person that stage is with, never to an address typed at the command line. Over SMTP,
the earlier links of the stage stop once it has gone; written as an .eml draft, they stay
usable beside it (formtool cannot tell when, or whether, a draft goes from Outlook). Either
way the audit's history records it, without the link.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.definitions.identifiers import safe_file_stem
from formtool.errors import printable
from formtool.periods import show_date
from formtool.programme.mail import POLICY, display_name, signature, tool_title, valid_address
from formtool.programme.smtp import MailError, send_smtp
from formtool.programme.weblinks import (
    issue_link_until,
    link_lines,
    link_url,
    owed_stage,
    retire_older_links,
)
from formtool.settings import Settings
from formtool.store import Store


@dataclass(frozen=True)
class Relinked:
    """What `email_new_link` did: to whom, for which stage, until when, and how it went."""

    audit_id: str
    stage: str
    to: str
    until: dt.date
    sent_via: str = ""  # the SMTP server, when sent
    written: Path | None = None  # the .eml draft, when written
    notice: str = ""  # said when the mail went out unencrypted

    def as_dict(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "stage": self.stage,
            "to": self.to,
            "works_until": self.until.isoformat(),
            "sent_via": self.sent_via,
            "written": str(self.written) if self.written else "",
        }


def email_new_link(
    db: Store,
    audit_id: str,
    sender: str,
    settings: Settings,
    *,
    smtp: str | None = None,
    starttls: bool = False,
    smtp_user: str | None = None,
    out_dir: Path | None = None,
    today: dt.date | None = None,
    user: str = "",
    ssl_context: ssl.SSLContext | None = None,
) -> Relinked:
    """Email (over `smtp`, else as an .eml draft in `out_dir`) a new link to the audit's web
    form for the stage it still owes. MailError, changing nothing, when it owes no return,
    its person has no usable address, or the sender or web_address is missing."""
    today = today or clock.today()
    audit = db.require_audit(audit_id)
    stage = owed_stage(db, audit_id)
    if stage is None:
        raise MailError(
            f"Audit {audit_id} is '{audit.state}': it owes no return, so a link would open "
            "nothing. Reopen it or request an amendment first if it must be answered again."
        )
    preparing = stage == "prepare"
    name = audit.worker if preparing else audit.auditor
    address = (audit.preparer_email if preparing else audit.auditor_email).strip()
    _check(audit_id, sender, address, preparing, settings)
    made = issue_link_until(db, audit_id, stage, today)
    message = _message(
        audit, name, address, sender, settings, link_url(settings, made.token), made.until
    )
    to = f"{display_name(name)} <{address}>"
    if smtp:
        notice = send_smtp(
            smtp, starttls, smtp_user, lambda conn: conn.send_message(message), ssl_context
        )
        retire_older_links(db, audit_id, stage, made.link_id)
        db.record_events([(audit_id, "new form link emailed", f"to {address}")], user)
        return Relinked(audit_id, stage, to, made.until, smtp, None, notice)
    folder = out_dir or Path("outputs/mail")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"new-link-{safe_file_stem(audit_id, fallback='audit', part=True)}.eml"
    path.write_bytes(message.as_bytes())
    db.record_events([(audit_id, "new form link drafted", f"to {address}")], user)
    return Relinked(audit_id, stage, to, made.until, "", path)


def _check(audit_id: str, sender: str, address: str, preparing: bool, settings: Settings) -> None:
    """Every reason the email cannot go, before a link is made."""
    if not valid_address(sender):
        raise MailError(
            f"The sender address (--from) '{printable(sender)}' is not an email address."
        )
    if not valid_address(address):
        column = "preparer_email" if preparing else "auditor_email"
        raise MailError(
            f"{audit_id}: '{printable(address)}' is not an email address; correct {column} "
            "(formtool correct, or reassign the audit) and ask again."
        )
    if not settings.web_address.strip():
        raise MailError(
            "The web form's address is not set: set web_address in formtool.toml to the "
            "workspace's address (e.g. https://formtool.council.gov.uk) and ask again."
        )


def _message(
    audit: Any,
    name: str,
    address: str,
    sender: str,
    settings: Settings,
    url: str,
    until: dt.date,
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(addr_spec=sender.strip())
    message["To"] = Address(display_name(name), addr_spec=address)
    message["Subject"] = f"[{settings.marking}] A new link to your audit form"
    message["X-Unsent"] = "1"  # Outlook opens a saved .eml as a draft to send
    lines = [
        f"Dear {display_name(name)},",
        "",
        "Here is a new private link to the audit form below, as asked. Your answers saved in "
        "the form so far are kept.",
        "",
        f"  - {tool_title(audit.form_id)}: {audit.subject_kind} {audit.case_number}, audit "
        f"{audit.audit_id}, due {show_date(audit.due_date)}; link works until {show_date(until)}",
        f"    {url}",
        "",
        *link_lines(address, chase=True),
    ]
    message.set_content("\n".join(lines + signature(settings)))
    return message
