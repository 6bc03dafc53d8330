"""Email to auditors: their pre-filled forms, as .eml drafts or over SMTP.

One attachment per audit, in the format the auditor prefers (Word unless the auditors file
says Excel), with the tool's title, the due date, and how to fill and return it in the body
and the protective marking in the subject. Two-stage tools go first to the worker who
prepares the file, then (once picked for audit) to the auditor with the prepared file.

Every address is checked before anything is written or sent, and all the problems are listed
at once. Messages are built under the strict SMTP policy, which refuses line breaks in
headers, so a name from a spreadsheet can never inject headers. The SMTP password is read
from an environment variable, never from an option (it would end up in shell history).
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
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.definitions import FormDefinition, all_forms
from formtool.definitions.identifiers import audit_file_name, audit_id_problem, safe_file_stem
from formtool.errors import FormtoolError, printable
from formtool.generate import FORMATS
from formtool.periods import show_date
from formtool.settings import DEFAULT, Settings
from formtool.store import OUTSTANDING, AuditState, Store

PASSWORD_ENV = "FORMTOOL_SMTP_PASSWORD"
IMPLICIT_TLS_PORTS = frozenset({465})  # SMTPS: TLS from the first byte, no STARTTLS
SMTP_TIMEOUT = 30  # seconds
#: Strict about line breaks in headers; headers folded only past RFC 5322's hard limit, so a
#: subject never begins with the space a fold after "Subject:" leaves.
POLICY = SMTP.clone(max_line_length=998)
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
S = AuditState


class MailError(FormtoolError):
    """Mail cannot be built or sent; the message names the auditor, address or server."""


@dataclass(frozen=True)
class Outgoing:
    auditor: str
    address: str
    message: EmailMessage
    audit_ids: tuple[str, ...]
    stage: str = "audit"  # "prepare" for the first stage of a two-stage tool

    @property
    def attachments(self) -> list[str]:
        return [str(a.get_filename()) for a in self.message.iter_attachments()]


@dataclass
class MailResult:
    messages: list[Outgoing]
    written: list[Path] = field(default_factory=list)
    sent_via: str = ""  # the SMTP server, when sent
    dry_run: bool = False
    notice: str = ""  # one line when mail went out unencrypted

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": [
                {
                    "auditor": m.auditor,
                    "to": m.address,
                    "stage": m.stage,
                    "audits": list(m.audit_ids),
                    "attachments": m.attachments,
                }
                for m in self.messages
            ],
            "eml": [str(p) for p in self.written],
            "sent_via": self.sent_via,
            "dry_run": self.dry_run,
            "notice": self.notice,
        }


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.fullmatch(address.strip()))


def _display_name(name: str) -> str:
    """A name safe for a header: control characters (CR/LF) removed."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip()


def find_forms(forms_dir: Path) -> dict[str, dict[str, Path]]:
    """Audit id -> format -> generated file, from every manifest.csv under the folder. A row
    is only believed for the file `formtool generate` would have named: the manifest is data,
    never a path to follow (a changed one cannot attach some other file)."""
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    for manifest in sorted(forms_dir.rglob("manifest.csv")):
        with manifest.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                audit_id, fmt = row.get("audit_id") or "", row.get("format") or ""
                if fmt in FORMATS and not audit_id_problem(audit_id):
                    path = manifest.parent / audit_file_name(audit_id, f".{fmt}")
                    if row.get("file") == path.name and path.is_file():
                        found[audit_id][fmt] = path
    return found


@dataclass(frozen=True)
class _Letter:
    """One audit to mention and attach: what, to whom, which file (name, bytes)."""

    audit: Any
    form: FormDefinition
    stage: str
    name: str
    address: str
    file: tuple[str, bytes] | None


def _letters(
    db: Store, month: str | None, forms_dir: Path, chase: bool, today: dt.date
) -> tuple[list[_Letter], list[str]]:
    """What to send, and every problem that stops it (all of them, at once)."""
    forms = all_forms()
    states = OUTSTANDING if chase else {S.allocated, S.awaiting_audit}
    audits = db.audit_rows(
        [month] if month else None, [s.value for s in states], today if chase else None
    )
    prepared = db.prepared_returns(a.audit_id for a in audits if a.state == S.awaiting_audit.value)
    files = find_forms(forms_dir) if not chase else {}
    letters, problems = [], []
    for audit in audits:
        form = forms.get(audit.form_id)
        preparing = form is not None and form.two_stage and audit.state == S.allocated.value
        name, address = (
            (audit.worker, audit.preparer_email)
            if preparing
            else (audit.auditor, audit.auditor_email)
        )
        who = "preparer_email" if preparing else "auditor_email"
        if not valid_address(address):
            problems.append(
                f"{audit.audit_id}: {printable(name) or 'no name'} has no usable "
                f"email address ('{printable(address)}'); fix {who} in the case "
                "list and generate again"
            )
        file = None
        if not chase:
            file = _attachment(audit, files.get(audit.audit_id, {}), prepared.get(audit.audit_id))
            if file is None:
                problems.append(
                    f"{audit.audit_id}: no generated form under {forms_dir}; run "
                    "`formtool generate` first or pass --forms DIR"
                )
        if form is not None:
            letters.append(
                _Letter(
                    audit, form, "prepare" if preparing else "audit", name, address.strip(), file
                )
            )
    return letters, problems


def _attachment(audit: Any, generated: dict[str, Path], prepared: Any) -> tuple[str, bytes] | None:
    """The file to attach: the prepared return (stage two), else the generated form in the
    auditor's format (the other format if only that was generated)."""
    if prepared is not None:
        return prepared.file_name.split(" › ")[-1], prepared.content
    path = generated.get(audit.form_format) or next(iter(generated.values()), None)
    return (path.name, path.read_bytes()) if path is not None else None


def _instructions(form_format: str) -> list[str]:
    if form_format == "xlsx":
        return [
            "How to complete it: open the attached Excel file; fill the white cells (the "
            "grey ones hold the questions and are protected) and pick answers from each "
            "cell's list. Set the status to Final when the audit is complete."
        ]
    return [
        "How to complete it: open the attached Word file; click each grey prompt (Choose, "
        "Evidence, Type here, Date) and type or pick your answer. Use the + button under "
        "an action table to add rows. Set the status to Final when the audit is complete."
    ]


def _body(
    name: str, letters: list[_Letter], chase: bool, today: dt.date, settings: Settings
) -> str:
    due = min(letter.audit.due_date for letter in letters)
    lines = [f"Dear {name},", ""]
    stage = letters[0].stage
    if chase:
        lines += [
            f"The case file audit(s) below were due on {show_date(due)} and have not "
            f"been returned as of {show_date(today)}. Please complete and return them "
            "within 3 working days, or tell the QA team today if you need an exemption "
            "(only the Assistant Director can agree one).",
            "",
        ]
    elif stage == "prepare":
        lines += [
            f"Please prepare the file(s) below for quality practice audit by "
            f"{show_date(due)}: with your supervisor, list in the evidence column "
            "what is on file, when and where for each standard. The service manager or "
            "auditor then judges whether each standard is met.",
            "",
        ]
    else:
        lines += [
            f"Please complete the case file audit(s) below by {show_date(due)}. The "
            "forms are attached, pre-filled. Audit with the allocated worker where you "
            "can, and raise any immediate safeguarding concern with the team manager at "
            "once, not at the end of the audit.",
            "",
        ]
    for letter in letters:
        audit = letter.audit
        lines.append(
            f"  - {letter.form.title}: case {audit.case_number}, audit "
            f"{audit.audit_id}, due {show_date(audit.due_date)}"
            + (f" ({letter.file[0]})" if letter.file else "")
        )
    if not chase:
        lines += [
            "",
            *_instructions(letters[0].audit.form_format),
            "How to return it: save it (keep the name and the .docx or .xlsx format) and "
            "reply to this email with the completed form attached. Please do not change "
            "the pre-filled details; the form checks them.",
        ]
    lines += [
        "",
        f"This email and its attachments are {settings.marking}.",
        "",
        f"QA team, {settings.print_lines()['council']}",
    ]
    return "\n".join(lines)


def build_messages(
    db: Store,
    sender: str,
    forms_dir: Path,
    month: str | None,
    chase: bool = False,
    today: dt.date | None = None,
    settings: Settings = DEFAULT,
) -> list[Outgoing]:
    """One message per person: audits to send (or, chasing, overdue ones). Raises MailError
    listing every address or file problem before any message is made."""
    today = today or clock.today()
    if not valid_address(sender):
        raise MailError(
            f"The sender address (--from) '{printable(sender)}' is not an email address."
        )
    letters, problems = _letters(db, month, forms_dir, chase, today)
    if problems:
        raise MailError(
            f"Nothing was sent: {len(problems)} problem(s). " + "; ".join(problems) + "."
        )
    grouped: dict[tuple[str, str, str], list[_Letter]] = defaultdict(list)
    for letter in letters:
        grouped[(letter.name, letter.address, letter.stage)].append(letter)
    return [
        _message(sender, name, address, mine, chase, today, settings)
        for (name, address, _), mine in grouped.items()
    ]


def _message(
    sender: str,
    name: str,
    address: str,
    letters: list[_Letter],
    chase: bool,
    today: dt.date,
    settings: Settings,
) -> Outgoing:
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(addr_spec=sender.strip())
    message["To"] = Address(_display_name(name), addr_spec=address)
    month_name = f"{letters[0].audit.due_date:%B %Y}"
    due = show_date(min(letter.audit.due_date for letter in letters))
    what = {"prepare": "quality practice file(s) to prepare", "audit": "case file audit(s)"}[
        letters[0].stage
    ]
    subject = (
        f"OVERDUE: {len(letters)} case file audit(s) for {month_name}"
        if chase
        else f"{len(letters)} {what} for {month_name}, due {due}"
    )
    message["Subject"] = f"[{settings.marking}] {subject}"
    message["X-Unsent"] = "1"  # Outlook opens a saved .eml as a draft to send
    message.set_content(_body(_display_name(name), letters, chase, today, settings))
    for letter in letters:
        if letter.file is not None:
            file_name, data = letter.file
            kind = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
            main, sub = kind.split("/", 1)
            message.add_attachment(data, maintype=main, subtype=sub, filename=file_name)
    return Outgoing(
        name, address, message, tuple(x.audit.audit_id for x in letters), letters[0].stage
    )


def write_eml(messages: list[Outgoing], out_dir: Path, prefix: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for outgoing in messages:
        safe = safe_file_stem(outgoing.auditor, fallback="auditor", part=True)
        path = out_dir / f"{prefix}-{outgoing.stage}-{safe}.eml"
        number = 1
        while path.exists():  # an earlier draft for the same person is never overwritten
            number += 1
            path = out_dir / f"{prefix}-{outgoing.stage}-{safe}-{number}.eml"
        path.write_bytes(outgoing.message.as_bytes())
        written.append(path)
    return written


def send_smtp(
    messages: list[Outgoing],
    server: str,
    starttls: bool,
    user: str | None,
    on_sent: Callable[[Outgoing], None],
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """Send each message; `on_sent` records it at once, so a failure part-way loses nothing.

    The connection is encrypted whenever it can be: implicit TLS on port 465, else STARTTLS
    when the server offers it. A user name and password (or `starttls`) require that, and
    nothing is sent without it; otherwise the messages go out in clear and the notice this
    returns says so ('' when encrypted). `ssl_context` is for tests trusting their own server.
    """
    host, port = _host_port(server)
    password = os.environ.get(PASSWORD_ENV)
    if user and not password:
        raise MailError(
            f"--user given but {PASSWORD_ENV} is not set. Export the password "
            "in that variable (never on the command line)."
        )
    context = ssl_context or ssl.create_default_context()
    try:
        with _connect(host, port, context) as smtp:
            notice = _encrypt(smtp, server, port, context, starttls, bool(user))
            if user:
                smtp.login(user, password or "")
            for outgoing in messages:
                smtp.send_message(outgoing.message)
                on_sent(outgoing)
    except (OSError, smtplib.SMTPException) as exc:
        reason = printable(str(exc).rstrip("."), 200)
        raise MailError(
            f"Sending through {printable(server)} failed: {reason}. Messages sent before the "
            "failure are recorded; run the command again for the rest."
        ) from None
    return notice


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MailError(
            f"--smtp '{printable(server)}' is not HOST:PORT (e.g. smtp.council.gov.uk:587)."
        )
    return host, int(port)


def _connect(host: str, port: int, context: ssl.SSLContext) -> smtplib.SMTP:
    if port in IMPLICIT_TLS_PORTS:
        return smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
    return smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)


def _encrypt(
    smtp: smtplib.SMTP,
    server: str,
    port: int,
    context: ssl.SSLContext,
    required: bool,
    login: bool,
) -> str:
    """Encrypt the connection if it is not yet (STARTTLS); '' once encrypted, else the
    one-line notice that the mail goes out in clear, or MailError if that is not allowed."""
    if port in IMPLICIT_TLS_PORTS:
        return ""
    smtp.ehlo_or_helo_if_needed()
    if smtp.has_extn("starttls"):
        smtp.starttls(context=context)
        smtp.ehlo()
        return ""
    if login or required:
        why = (
            "a user name and password are never sent unencrypted"
            if login
            else "STARTTLS was asked for"
        )
        raise MailError(
            f"Mail to {printable(server)} was not sent: the server does not offer STARTTLS "
            f"and {why}. Use the server's implicit TLS port (465) or one that offers STARTTLS."
        )
    return f"Mail to {printable(server)} went out unencrypted: the server does not offer STARTTLS."


def record_sent(db: Store, messages: Iterable[Outgoing], chase: bool, user: str = "") -> None:
    """Mark sent audits `sent` (chases, and a prepared file sent on to its auditor, are
    events only); an audit that moved on meanwhile keeps its state."""
    sent = [
        (
            audit_id,
            "chased" if chase else ("sent to preparer" if o.stage == "prepare" else "sent"),
            f"to {o.address}",
        )
        for o in messages
        for audit_id in o.audit_ids
    ]
    db.record_sent(sent, move_allocated=not chase, user=user)


def deliver(
    db: Store,
    sender: str,
    forms_dir: Path,
    month: str | None,
    out_dir: Path,
    chase: bool = False,
    smtp: str | None = None,
    starttls: bool = False,
    smtp_user: str | None = None,
    dry_run: bool = False,
    today: dt.date | None = None,
    settings: Settings = DEFAULT,
    user: str = "",
    ssl_context: ssl.SSLContext | None = None,
) -> MailResult:
    """`formtool send` / `chase`: build every message (all checks first), then write .eml
    drafts or send over SMTP (encrypted whenever the server allows; see `send_smtp`),
    recording each message as it goes."""
    messages = build_messages(db, sender, forms_dir, month, chase, today, settings)
    result = MailResult(messages, dry_run=dry_run)
    if dry_run or not messages:
        return result
    if smtp:
        result.notice = send_smtp(
            messages,
            smtp,
            starttls,
            smtp_user,
            on_sent=lambda o: record_sent(db, [o], chase, user),
            ssl_context=ssl_context,
        )
        result.sent_via = smtp
    else:
        result.written = write_eml(messages, out_dir, "chase" if chase else "audits")
        record_sent(db, messages, chase, user)
    return result
