"""Email to auditors: their pre-filled forms with the due date, as .eml drafts or over SMTP.

Messages are built with the standard library's `email` package under the strict SMTP
policy, which refuses line breaks in headers, so a name or address from a spreadsheet can
never inject headers. Addresses are checked before anything is written or sent. The SMTP
password is read from an environment variable, never from an option (it would end up in
shell history and process lists).
"""

from __future__ import annotations

import csv
import datetime as dt
import mimetypes
import os
import re
import smtplib
import ssl
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import sqlalchemy as sa

from formtool import store
from formtool.errors import FormtoolError
from formtool.store import queries

PASSWORD_ENV = "FORMTOOL_SMTP_PASSWORD"
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class MailError(FormtoolError):
    """Mail cannot be built or sent; the message names the auditor, address or server."""


@dataclass(frozen=True)
class Outgoing:
    auditor: str
    address: str
    message: EmailMessage
    audit_ids: tuple[str, ...]


def check_address(address: str, who: str) -> str:
    address = address.strip()
    if not _ADDRESS.fullmatch(address):
        raise MailError(f"Auditor '{_printable(who)}' has no usable email address "
                        f"('{_printable(address)}'). Fix auditor_email in the case list.")
    return address


def _printable(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


def _display_name(name: str) -> str:
    """A name safe for a header: control characters (CR/LF) removed."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip()


def find_forms(forms_dir: Path) -> dict[str, list[Path]]:
    """Audit id -> generated files, from every manifest.csv under the forms folder."""
    found: dict[str, list[Path]] = defaultdict(list)
    for manifest in sorted(forms_dir.rglob("manifest.csv")):
        with manifest.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                path = manifest.parent / row["file"]
                if path.is_file():
                    found[row["audit_id"]].append(path)
    return found


def _audits(engine: sa.Engine, month: str | None, states: Iterable[store.AuditState],
            overdue_on: dt.date | None = None) -> list:
    with engine.connect() as conn:
        rows = queries.audit_rows(conn, [month] if month else None,
                                  [s.value for s in states], overdue_on)
    return sorted(rows, key=lambda r: (r.auditor, r.audit_id))


def _body(name: str, audits: list, chase: bool, today: dt.date) -> str:
    due = min(a.due_date for a in audits)
    lines = [f"Dear {name},", ""]
    if chase:
        lines += [f"The case file audit(s) below were due on {due:%d/%m/%Y} and have not been "
                  f"returned as of {today:%d/%m/%Y}. Please complete and return them "
                  "within 3 working days, or tell the QA team today if you need an exemption "
                  "(only the Assistant Director can agree one).", ""]
    else:
        lines += [f"Please complete the case file audit(s) below by {due:%d/%m/%Y} (the last "
                  "day of the month). The forms are attached, pre-filled. Audit with the "
                  "allocated worker where you can, and raise any immediate safeguarding "
                  "concern with the team manager at once, not at the end of the audit.", ""]
    for audit in audits:
        lines.append(f"  - {audit.audit_id}: case {audit.case_number}, {audit.form_id}, "
                     f"due {audit.due_date:%d/%m/%Y}")
    lines += ["", "Return the completed forms by replying to this email. Please do not change "
              "the pre-filled details; the form checks them.", "", "QA team"]
    return "\n".join(lines)


def build_messages(engine: sa.Engine, sender: str, forms_dir: Path, month: str | None,
                   chase: bool = False, today: dt.date | None = None) -> list[Outgoing]:
    """One message per auditor: allocated audits (send) or overdue ones (chase)."""
    today = today or dt.date.today()
    sender = check_address(sender, "the sender (--from)")
    states = store.OUTSTANDING if chase else (store.AuditState.allocated,)
    audits = _audits(engine, month, states, overdue_on=today if chase else None)
    files = find_forms(forms_dir) if not chase else {}
    by_auditor: dict[tuple[str, str], list] = defaultdict(list)
    for audit in audits:
        by_auditor[(audit.auditor, audit.auditor_email)].append(audit)
    messages = []
    for (name, address), mine in by_auditor.items():
        address = check_address(address, name)
        missing = [a.audit_id for a in mine if not chase and not files.get(a.audit_id)]
        if missing:
            raise MailError(f"No generated form found for {', '.join(missing)} under "
                            f"{forms_dir}. Run `formtool generate` first or pass --forms DIR.")
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(addr_spec=sender)
        message["To"] = Address(_display_name(name), addr_spec=address)
        month_name = f"{mine[0].due_date:%B %Y}"
        message["Subject"] = (f"OVERDUE: {len(mine)} case file audit(s) for {month_name}"
                              if chase else
                              f"Case file audits for {month_name}: {len(mine)} due "
                              f"{min(a.due_date for a in mine):%d/%m/%Y}")
        message["X-Unsent"] = "1"  # Outlook opens a saved .eml as a draft to send
        message.set_content(_body(_display_name(name), mine, chase, today))
        for audit in mine:
            for path in files.get(audit.audit_id, []):
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                main, sub = kind.split("/", 1)
                message.add_attachment(path.read_bytes(), maintype=main, subtype=sub,
                                       filename=path.name)
        messages.append(Outgoing(name, address, message, tuple(a.audit_id for a in mine)))
    return messages


def write_eml(messages: list[Outgoing], out_dir: Path, prefix: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for outgoing in messages:
        safe = re.sub(r"[^A-Za-z0-9]+", "-", outgoing.auditor).strip("-") or "auditor"
        path = out_dir / f"{prefix}-{safe}.eml"
        path.write_bytes(outgoing.message.as_bytes())
        written.append(path)
    return written


def send_smtp(messages: list[Outgoing], server: str, starttls: bool, user: str | None,
              on_sent: Callable[[Outgoing], None]) -> None:
    """Send each message; `on_sent` records it at once, so a failure part-way loses nothing."""
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit():
        raise MailError(f"--smtp '{server}' is not HOST:PORT (e.g. smtp.council.gov.uk:587).")
    password = os.environ.get(PASSWORD_ENV)
    if user and not password:
        raise MailError(f"--user given but {PASSWORD_ENV} is not set. Export the password "
                        "in that variable (never on the command line).")
    try:
        with smtplib.SMTP(host, int(port), timeout=30) as smtp:
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, password or "")
            for outgoing in messages:
                smtp.send_message(outgoing.message)
                on_sent(outgoing)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"Sending through {server} failed: {exc}. Messages sent before the "
                        "failure are recorded; run the command again for the rest.") from None


def record_sent(engine: sa.Engine, messages: list[Outgoing], chase: bool,
                user: str = "") -> None:
    """Mark sent audits `sent` (chases are events only); an audit that moved on meanwhile
    keeps its state and the sending is still recorded."""
    allocated, sent = store.AuditState.allocated, store.AuditState.sent
    with store.transaction(engine) as conn:
        for outgoing in messages:
            for audit_id in outgoing.audit_ids:
                detail = f"to {outgoing.address}"
                if not chase and store.audit_state(conn, audit_id) is allocated:
                    store.move_state(conn, audit_id, [allocated], sent, "sent", detail, user)
                else:
                    store.record_event(conn, audit_id, "chased" if chase else "sent", detail,
                                       user)
