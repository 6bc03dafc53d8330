"""Email to auditors: their pre-filled forms, as .eml drafts or over SMTP; reminders (chases).

One attachment per audit, in the format the auditor prefers (Word unless the auditors file
says Excel), with the tool's title, the due date, and how to fill and return it in the body
and the protective marking in the subject. Two-stage tools go first to the worker who
prepares the file, then (once picked for audit) to the auditor with the prepared file.

Every address is checked before anything is written or sent, and all the problems are listed
at once. Messages are built under the strict SMTP policy, which refuses line breaks in
headers, so a name from a spreadsheet can never inject headers. The SMTP password is read
from an environment variable, never from an option (it would end up in shell history).

Each email is sent once (the outbox, store/outbox.py): every message is claimed in the
database before it goes, per audit, purpose and round, and its outcome recorded after:

- distribution (an audit's form to its auditor, or to the worker preparing a two-stage
  file) and picked for audit (the prepared file on to its auditor): once per audit;
- chase: once per audit per chase round, and a round is the chase date (one a day);
- amendment: once per amendment request (the round is the request's number: the audit's
  first, second... "amendment requested"), to whoever made the return sent back
  (programme/amendment.py).

A message the server refused is `failed` and tried again by the next send. One cut off
mid-send (formtool stopped, the connection dropped) is `unknown`: it may have gone, so it is
reported with its audits ("unknown: check the Sent Items") and never sent again on its own;
the officer chooses per message, naming any of its audits: marks it sent (`formtool send
--mark-sent MONTH --audit ID`) or sends it again (`--resend-unknown --audit ID`). `.eml`
drafts are `drafted`: their audits stay `allocated` with a "drafts written" event, and
become `sent` when the officer marks the drafts sent; until then the day the drafts were
written counts as the day the audit went out (deadlines.distribution_date). A run so slow
that another took its message over as unknown and sent it again still records its own
outcome, and says a second copy may have gone (`MailResult.superseded`).
"""

from __future__ import annotations

import csv
import datetime as dt
import mimetypes
import re
import smtplib
import ssl
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from formtool import clock
from formtool.definitions import PREPARED, FormDefinition, all_forms
from formtool.definitions.identifiers import audit_file_name, audit_id_problem, safe_file_stem
from formtool.errors import printable
from formtool.generate import FORMATS
from formtool.periods import show_date
from formtool.programme.deadlines import DRAFTS_EVENT, SENT_EVENTS, distribution_date
from formtool.programme.rules import active_policy
from formtool.programme.smtp import MailError, send_smtp
from formtool.programme.weblinks import (
    LINK_LATER,
    issue_link_until,
    link_lines,
    link_url,
    retire_older_links,
)
from formtool.settings import DEFAULT, Settings
from formtool.store import (
    EMAIL_DRAFT,
    OUTSTANDING,
    AuditState,
    Delivery,
    MessageState,
    OutboxMessage,
    Store,
)

#: Strict about line breaks in headers; headers folded only past RFC 5322's hard limit, so a
#: subject never begins with the space a fold after "Subject:" leaves.
POLICY = SMTP.clone(max_line_length=998)
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
S = AuditState
M = MessageState

#: What a message is for: each audit gets one of each (a chase, one per round).
DISTRIBUTION = "distribution"
PICKED_FOR_AUDIT = "picked_for_audit"
CHASE = "chase"
AMENDMENT = "amendment"  # the reason, the date and the return to amend (amendment.py)
#: The events an amendment email's outcome records (a draft written, then sent).
AMENDMENT_EVENTS = {"drafted": "amendment email drafted", "sent": "amendment emailed"}
#: A claim held by a message in these states stops another message for it; a failed one does
#: not (the next send tries again), and `--resend-unknown` lifts unknown ones and drafts.
HOLDING = frozenset({M.sent, M.queued, M.unknown, M.drafted})
RESEND = frozenset({M.unknown, M.drafted})
WEB = "web"  # the web form: the email carries a private link instead of a file
#: `send --format`: each audit's own format (the auditors list's), or one for every audit.
SEND_FORMATS = ("auditors", *FORMATS, WEB)


@dataclass(frozen=True)
class Outgoing:
    auditor: str
    address: str
    message: EmailMessage
    audit_ids: tuple[str, ...]
    stage: str = "audit"  # "prepare" for the first stage of a two-stage tool
    purpose: str = DISTRIBUTION
    month: str = ""
    message_id: int | None = None  # the outbox row, once claimed
    links: tuple[tuple[str, int], ...] = ()  # (audit, link id) of the web links it carries

    @property
    def attachments(self) -> list[str]:
        return [str(a.get_filename()) for a in self.message.iter_attachments()]


def outbox_entry(m: OutboxMessage) -> dict[str, Any]:
    return {
        "to": m.recipient,
        "subject": m.subject,
        "audits": list(m.audit_ids),
        "purpose": m.purpose,
        "attempts": m.attempts,
        "error": m.last_error,
        "at": m.created_at.isoformat(),
    }


@dataclass
class MailResult:
    """What a send or chase did: the messages sent (or written, or that would go) now, and
    what the outbox already holds for the same audits: sent before, being sent by another
    run, written as drafts not yet marked sent, failed now (tried again next time) and
    unknown (check the Sent Items). A chase also names the overdue audits never sent."""

    messages: list[Outgoing]
    written: list[Path] = field(default_factory=list)
    sent_via: str = ""  # the SMTP server, when sent
    dry_run: bool = False
    notice: str = ""  # one line when mail went out unencrypted
    already_sent: list[OutboxMessage] = field(default_factory=list)
    in_progress: list[OutboxMessage] = field(default_factory=list)
    drafted: list[OutboxMessage] = field(default_factory=list)
    failed: list[OutboxMessage] = field(default_factory=list)
    unknown: list[OutboxMessage] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)  # chase: overdue, never sent
    #: This run's messages that another run took over meanwhile (this one took so long it
    #: looked unknown), each with the audits it carried: a second copy may have gone.
    superseded: list[OutboxMessage] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        """A message failed or may have gone: the command exits 1."""
        return bool(self.failed or self.unknown)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": [
                {
                    "auditor": m.auditor,
                    "to": m.address,
                    "stage": m.stage,
                    "purpose": m.purpose,
                    "audits": list(m.audit_ids),
                    "attachments": m.attachments,
                }
                for m in self.messages
            ],
            "eml": [str(p) for p in self.written],
            "sent_via": self.sent_via,
            "dry_run": self.dry_run,
            "notice": self.notice,
            "sent": 0 if self.dry_run or not self.sent_via else len(self.messages),
            "already_sent": len(self.already_sent),
            "in_progress": [outbox_entry(m) for m in self.in_progress],
            "drafted": [outbox_entry(m) for m in self.drafted],
            "failed": [outbox_entry(m) for m in self.failed],
            "unknown": [outbox_entry(m) for m in self.unknown],
            "not_sent": self.not_sent,
            "superseded": [
                outbox_entry(m) | {"state": m.state.value, "superseded_by": m.superseded_by}
                for m in self.superseded
            ],
        }


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.fullmatch(address.strip()))


def display_name(name: str) -> str:
    """A name safe for a header: control characters (CR/LF) removed."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", name).strip()


def tool_title(form_id: str) -> str:
    """How an email names an audit's tool: its title (the id, if the tool is not installed)."""
    form = all_forms().get(form_id)
    return form.title if form is not None else form_id


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
    """One audit to mention and attach: what, to whom, which file (name, bytes), what for,
    and (chasing) when it went out."""

    audit: Any
    form: FormDefinition
    stage: str
    name: str
    address: str
    file: tuple[str, bytes] | None
    purpose: str = DISTRIBUTION
    distributed: dt.date | None = None
    fmt: str = "docx"  # docx, xlsx or web
    link: str = ""  # web: the private link, once made (when the email is sent or drafted)
    link_until: dt.date | None = None
    link_id: int = 0


def distribution_dates(db: Store, audit_ids: Collection[str]) -> dict[str, dt.date | None]:
    """Audit id -> the day it went out (drafts not marked sent count from the day they were
    written), or None if it never did."""
    found = db.events_named(audit_ids, {*SENT_EVENTS, DRAFTS_EVENT})
    return {a: distribution_date(found.get(a, [])) for a in audit_ids}


def _purpose(audit: Any, chase: bool) -> str:
    if chase:
        return CHASE
    if audit.state == S.awaiting_audit.value:
        return PICKED_FOR_AUDIT
    copy = getattr(audit, "copy", 1) or 1
    # A reassigned audit's new copy is a new distribution: its own claim, sent once.
    return DISTRIBUTION if copy == 1 else f"{DISTRIBUTION} copy {copy}"


def _sending(purpose: str) -> bool:
    """A message that sends a form (the first copy, a reassigned copy, or a picked file)."""
    return purpose.startswith(DISTRIBUTION) or purpose == PICKED_FOR_AUDIT


def _round(chase: bool, today: dt.date) -> str:
    """A chase round is the chase date: one chase per audit per day."""
    return today.isoformat() if chase else ""


def _letters(
    db: Store,
    month: str | None,
    forms_dir: Path,
    chase: bool,
    today: dt.date,
    again: Collection[MessageState] = (),
    only: Collection[str] | None = None,
    chosen: str | None = None,
) -> tuple[list[_Letter], list[str], list[str]]:
    """What to send now (audits whose message the outbox does not already hold; only those
    in `only` when given), every problem that stops it (all of them, at once) and, chasing,
    the overdue audits never sent (they are not chased)."""
    forms = all_forms()
    states = OUTSTANDING if chase else {S.allocated, S.awaiting_audit}
    audits = db.audit_rows(
        [month] if month else None, [s.value for s in states], today if chase else None
    )
    if only is not None:
        audits = [a for a in audits if a.audit_id in only]
    held = db.held_claims(
        [a.audit_id for a in audits], {_purpose(a, chase) for a in audits}, _round(chase, today)
    )
    holding = HOLDING - set(again)
    audits = [a for a in audits if held.get((a.audit_id, _purpose(a, chase))) not in holding]
    distributed = distribution_dates(db, [a.audit_id for a in audits]) if chase else {}
    not_sent = [a.audit_id for a in audits if chase and distributed[a.audit_id] is None]
    audits = [a for a in audits if a.audit_id not in not_sent]
    prepared = db.prepared_returns(a.audit_id for a in audits if a.state == S.awaiting_audit.value)
    files = find_forms(forms_dir) if not chase else {}
    linked = db.linked_stages([a.audit_id for a in audits]) if chase else set()
    letters, problems = [], []
    for audit in audits:
        form = forms.get(audit.form_id)
        preparing = form is not None and form.two_stage and _with_preparer(db, audit, chase)
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
        stage = "prepare" if preparing else "audit"
        fmt = _format_for(audit, stage, chase, chosen, linked)
        file = None
        if not chase and fmt != WEB:
            generated = files.get(audit.audit_id, {})
            file = _attachment(fmt, generated, prepared.get(audit.audit_id))
            if file is None:
                problems.append(
                    f"{audit.audit_id}: no generated form under {forms_dir}; run "
                    "`formtool generate` first or pass --forms DIR"
                )
        if form is not None:
            letters.append(
                _Letter(
                    audit,
                    form,
                    stage,
                    name,
                    address.strip(),
                    file,
                    _purpose(audit, chase),
                    distributed.get(audit.audit_id),
                    fmt,
                )
            )
    return letters, problems, not_sent


def _format_for(
    audit: Any, stage: str, chase: bool, chosen: str | None, linked: set[tuple[str, str]]
) -> str:
    """How the audit goes: the format chosen for the send, else the auditor's; a chase goes
    as the audit went (web once a link was sent for the stage)."""
    if chase:  # only the link matters: a chase attaches nothing
        return WEB if (audit.audit_id, stage) in linked else "docx"
    return chosen if chosen and chosen != "auditors" else str(audit.form_format)


def _with_preparer(db: Store, audit: Any, chase: bool) -> bool:
    """Whether a two-stage audit's email goes to the worker preparing it: its distribution
    while allocated; a chase while the prepared file has not come back (the chase, and a
    web form's link in it, is for the stage that is late)."""
    if not chase:
        return bool(audit.state == S.allocated.value)
    return bool(db.return_context(audit.audit_id, True)[1] == PREPARED)


def _attachment(fmt: str, generated: dict[str, Path], prepared: Any) -> tuple[str, bytes] | None:
    """The file to attach: the prepared return (stage two), else the generated form in the
    format (the other format if only that was generated)."""
    if prepared is not None:
        return prepared.file_name.split(" › ")[-1], prepared.content
    path = generated.get(fmt) or next(iter(generated.values()), None)
    return (path.name, path.read_bytes()) if path is not None else None


def instructions(form_format: str) -> list[str]:
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
    name: str,
    letters: list[_Letter],
    chase: bool,
    today: dt.date,
    settings: Settings,
    exemption: str = "",
) -> str:
    """The message's text; `exemption`: what the policy's words say of who agrees one."""
    due = min(letter.audit.due_date for letter in letters)
    lines = [f"Dear {name},", ""]
    stage, audits = letters[0].stage, _audits_word(letters)
    if chase:
        lines += [
            f"The {audits} below were due on {show_date(due)} and have not "
            f"been returned as of {show_date(today)}. Please complete and return them "
            "within 3 working days, or tell the QA team today if you need an exemption"
            + (f" ({exemption})." if exemption else "."),
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
        how = "" if all(x.fmt == WEB for x in letters) else "attached, "
        lines += [
            f"Please complete the {audits} below by {show_date(due)}. The "
            f"forms are {how}pre-filled. Audit with the allocated worker where you "
            "can, and raise any immediate safeguarding concern with the team manager at "
            "once, not at the end of the audit.",
            "",
        ]
    for letter in letters:
        audit = letter.audit
        lines.append(
            f"  - {letter.form.title}: {_subject_kind(audit)} {audit.case_number}, audit "
            f"{audit.audit_id}, due {show_date(audit.due_date)}"
            + (f", sent {show_date(letter.distributed)}" if letter.distributed else "")
            + (f" ({letter.file[0]})" if letter.file else "")
            + (f"; link works until {show_date(letter.link_until)}" if letter.link_until else "")
        )
        if letter.fmt == WEB:
            lines.append(f"    {letter.link or LINK_LATER}")  # the link on its own line
    web = [x for x in letters if x.fmt == WEB]
    if web:
        lines += ["", *link_lines(web[0].address, chase)]
    paper = [x for x in letters if x.fmt != WEB]
    if paper and not chase:
        lines += ["", *instructions(paper[0].fmt), RETURN_HOW]
    return "\n".join(lines + signature(settings))


#: How to send a form back, as every email carrying one says it.
RETURN_HOW = (
    "How to return it: save it (keep the name and the .docx or .xlsx format) and reply to "
    "this email with the completed form attached. Please do not change the pre-filled "
    "details; the form checks them."
)


def signature(settings: Settings) -> list[str]:
    """The lines every email ends with: its marking and who sent it."""
    return [
        "",
        f"This email and its attachments are {settings.marking}.",
        "",
        f"QA team, {settings.print_lines()['council']}",
    ]


def _groups(
    db: Store,
    sender: str,
    forms_dir: Path,
    month: str | None,
    chase: bool,
    today: dt.date,
    again: Collection[MessageState],
    only: Collection[str] | None = None,
    chosen: str | None = None,
    settings: Settings = DEFAULT,
) -> tuple[list[list[_Letter]], list[str]]:
    """The letters to send, one group per message (month, purpose, person, stage), and the
    overdue audits never sent; MailError listing every problem before anything goes."""
    if not valid_address(sender):
        raise MailError(
            f"The sender address (--from) '{printable(sender)}' is not an email address."
        )
    if chosen is not None and chosen not in SEND_FORMATS:
        raise MailError(f"--format '{printable(chosen)}' is not one of {', '.join(SEND_FORMATS)}.")
    found = _letters(db, month, forms_dir, chase, today, again, only, chosen)
    letters, problems, not_sent = found
    web = [x.audit.audit_id for x in letters if x.fmt == WEB]
    if web and not settings.web_address.strip():
        problems.append(
            f"{web[0]}{' and others' if len(web) > 1 else ''} go as web forms, but no "
            "web_address is set for their links: set web_address in formtool.toml to the web "
            "workspace's address"
        )
    if problems:
        raise MailError(
            f"Nothing was sent: {len(problems)} problem(s). " + "; ".join(problems) + "."
        )
    grouped: dict[tuple[str, str, str, str, str], list[_Letter]] = defaultdict(list)
    for letter in letters:
        key = (letter.audit.month, letter.purpose, letter.name, letter.address, letter.stage)
        grouped[key].append(letter)
    return list(grouped.values()), not_sent


def build_messages(
    db: Store,
    sender: str,
    forms_dir: Path,
    month: str | None,
    chase: bool = False,
    today: dt.date | None = None,
    settings: Settings = DEFAULT,
    again: Collection[MessageState] = (),
) -> list[Outgoing]:
    """One message per person and purpose: audits to send (or, chasing, overdue ones) that
    the outbox does not already hold. Raises MailError listing every address or file problem
    before any message is made."""
    today = today or clock.today()
    groups, _ = _groups(db, sender, forms_dir, month, chase, today, again, settings=settings)
    exemption = active_policy(db).word("exemption")
    return [_message(sender, group, chase, today, settings, exemption) for group in groups]


def _audits_word(letters: list[_Letter]) -> str:
    """ "case file audit(s)", or "audit(s)" when a programme activity (an observation, a dip
    sample) is among them."""
    return "audit(s)" if any(letter.audit.activity for letter in letters) else "case file audit(s)"


def _subject_kind(audit: Any) -> str:
    """What an audit looks at, as an email line names it: a case, or a member of staff."""
    return str(audit.subject_kind) if audit.subject_kind != "case" else "case"


def _subject(letters: list[_Letter], chase: bool, settings: Settings) -> str:
    month_name = f"{letters[0].audit.due_date:%B %Y}"
    due = show_date(min(letter.audit.due_date for letter in letters))
    audits = _audits_word(letters)
    what = {"prepare": "quality practice file(s) to prepare", "audit": audits}[letters[0].stage]
    subject = (
        f"OVERDUE: {len(letters)} {audits} for {month_name}"
        if chase
        else f"{len(letters)} {what} for {month_name}, due {due}"
    )
    return f"[{settings.marking}] {subject}"


def _message(
    sender: str,
    letters: list[_Letter],
    chase: bool,
    today: dt.date,
    settings: Settings,
    exemption: str = "",
) -> Outgoing:
    first = letters[0]
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(addr_spec=sender.strip())
    message["To"] = Address(display_name(first.name), addr_spec=first.address)
    message["Subject"] = _subject(letters, chase, settings)
    message["X-Unsent"] = "1"  # Outlook opens a saved .eml as a draft to send
    message.set_content(_body(display_name(first.name), letters, chase, today, settings, exemption))
    for letter in letters:
        if letter.file is not None:
            file_name, data = letter.file
            kind = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
            main, sub = kind.split("/", 1)
            message.add_attachment(data, maintype=main, subtype=sub, filename=file_name)
    return Outgoing(
        first.name,
        first.address,
        message,
        tuple(x.audit.audit_id for x in letters),
        first.stage,
        first.purpose,
        first.audit.month,
        links=tuple((x.audit.audit_id, x.link_id) for x in letters if x.link_id),
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


def deliveries(message: OutboxMessage) -> list[Delivery]:
    """What a message's outcome means for each audit it carries: drafts written get an event
    only; a sent form moves its audit from `allocated` to `sent` (a chase, and a prepared
    file sent on to its auditor, are events only)."""
    to = f"to {message.recipient}"
    if message.purpose == AMENDMENT:  # an event only: never a distribution
        event = AMENDMENT_EVENTS["drafted" if message.state is M.drafted else "sent"]
        return [Delivery(a, event, to) for a in message.audit_ids]
    if message.state is M.drafted:
        event = "chase drafted" if message.purpose == CHASE else DRAFTS_EVENT
        return [Delivery(a, event, to) for a in message.audit_ids]
    if message.purpose == CHASE:
        event = "chased"
    else:
        event = "sent to preparer" if message.stage == "prepare" else "sent"
    first = message.purpose.startswith(DISTRIBUTION)
    return [Delivery(a, event, to, first) for a in message.audit_ids]


class _Sender:
    """One run's messages: each claimed in the outbox, then sent or written, then settled."""

    def __init__(
        self,
        db: Store,
        sender: str,
        chase: bool,
        today: dt.date,
        settings: Settings,
        user: str,
        again: Collection[MessageState],
        result: MailResult,
        exemption: str = "",
    ) -> None:
        self.db, self.sender, self.chase, self.today = db, sender, chase, today
        self.settings, self.user, self.again, self.result = settings, user, again, result
        self.exemption = exemption  # the policy's words on who agrees an exemption

    def claim(self, letters: list[_Letter]) -> Outgoing | None:
        """Claim the group's audits; the message for the ones claimed (None: none were)."""
        by_id = {letter.audit.audit_id: letter for letter in letters}
        first = letters[0]
        claim = self.db.claim_message(
            first.audit.month,
            first.purpose,
            _round(self.chase, self.today),
            first.stage,
            first.address,
            list(by_id),
            lambda ids: _subject([by_id[i] for i in ids], self.chase, self.settings),
            self.user,
            self.again,
        )
        if claim.message_id is None:
            return None
        mine = [self._linked(by_id[i]) for i in claim.audit_ids]
        outgoing = _message(
            self.sender, mine, self.chase, self.today, self.settings, self.exemption
        )
        return replace(outgoing, message_id=claim.message_id)

    def _linked(self, letter: _Letter) -> _Letter:
        """A web letter with its private link, made now that its email is going (only the
        token's hash is kept; a newer link replaces the stage's earlier ones)."""
        if letter.fmt != WEB:
            return letter
        made = issue_link_until(self.db, letter.audit.audit_id, letter.stage, self.today)
        url = link_url(self.settings, made.token)
        return replace(letter, link=url, link_until=made.until, link_id=made.link_id)

    def settle(self, outgoing: Outgoing, state: MessageState, error: str = "") -> None:
        """Record the outcome. A message another run took over meanwhile (this one took so
        long it counted as unknown, and was sent again) is reported as superseded: a failure
        or unknown fate is then that run's to settle, and one that went may have gone twice."""
        assert outgoing.message_id is not None  # claimed
        settled = self.db.settle_message(outgoing.message_id, state, deliveries, self.user, error)
        if state is M.sent:  # gone: the links it carries replace the earlier ones
            for audit_id, link_id in outgoing.links:
                retire_older_links(self.db, audit_id, outgoing.stage, link_id)
        if settled.superseded_by is not None and len(settled.audit_ids) < len(outgoing.audit_ids):
            self.result.superseded.append(replace(settled, audit_ids=outgoing.audit_ids))
        if state in (M.sent, M.drafted):
            self.result.messages.append(outgoing)
        elif settled.audit_ids:  # the audits it still holds: failed or unknown
            (self.result.failed if state is M.failed else self.result.unknown).append(settled)

    def write(self, groups: list[list[_Letter]], out_dir: Path, prefix: str) -> None:
        for letters in groups:
            outgoing = self.claim(letters)
            if outgoing is None:
                continue
            try:
                [path] = write_eml([outgoing], out_dir, prefix)
            except OSError as exc:
                reason = printable(str(exc), 200)
                self.settle(outgoing, M.failed, f"the draft could not be written: {reason}")
                raise MailError(
                    f"Could not write the email drafts in {out_dir}: {reason}. Drafts written "
                    "before it are recorded; free the space or choose another --out and run "
                    "the command again."
                ) from None
            self.settle(outgoing, M.drafted)
            self.result.written.append(path)
            ids, month = outgoing.audit_ids, outgoing.month or None  # tracked for retention
            self.db.record_files([path], EMAIL_DRAFT, user=self.user, audit_ids=ids, month=month)

    def send(self, groups: list[list[_Letter]], smtp: smtplib.SMTP, server: str) -> None:
        """Each group claimed, sent and settled in turn. A refusal fails that message (the
        next send tries it again); a connection lost mid-message leaves it unknown and stops
        the run: MailError."""
        for letters in groups:
            if getattr(smtp, "sock", None) is None:
                raise smtplib.SMTPServerDisconnected("the server closed the connection")
            outgoing = self.claim(letters)
            if outgoing is None:
                continue
            try:
                smtp.send_message(outgoing.message)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                self.settle(outgoing, M.failed, _refusal(exc))
                continue
            except (OSError, smtplib.SMTPException) as exc:
                reason = printable(str(exc).rstrip("."), 200) or type(exc).__name__
                self.settle(outgoing, M.unknown, f"the connection failed mid-message: {reason}")
                raise MailError(
                    f"Sending through {printable(server)} stopped: {reason}. "
                    f"{len(self.result.messages)} message(s) were sent and recorded before it. "
                    f"The message to {outgoing.address} may have gone: check the Sent Items "
                    f"(`formtool send --mark-sent {outgoing.month} --audit "
                    f"{outgoing.audit_ids[0]}` if it is there, --resend-unknown --audit "
                    f"{outgoing.audit_ids[0]} if not); run the command again for the rest."
                ) from None
            self.settle(outgoing, M.sent)


def _refusal(exc: smtplib.SMTPException) -> str:
    said: bytes | str
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, said = next(iter(exc.recipients.values()), (0, b""))
    else:
        assert isinstance(exc, smtplib.SMTPResponseException)
        code, said = exc.smtp_code, exc.smtp_error
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    return printable(f"the server refused it: {code} {text}".rstrip("."), 200)


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
    again: Collection[MessageState] = (),
    audit_ids: Collection[str] | None = None,
    form_format: str | None = None,
) -> MailResult:
    """`formtool send` / `chase`: build every message (all checks first), then write .eml
    drafts or send over SMTP (encrypted whenever the server allows; see `send_smtp`), each
    claimed in the outbox before it goes and settled after. `again` lifts the claims of
    unknown messages and drafts not marked sent (`--resend-unknown`); `audit_ids` (`--audit`)
    limits the run to the messages carrying those audits; `form_format` (`--format`) sends
    every audit as docx, xlsx or a web form (None or "auditors": each audit's own format). A
    web form's email carries a private link, made only when the email is sent or written."""
    today = today or clock.today()
    only = _whole_messages(db, month, chase, today, audit_ids)
    groups, not_sent = _groups(
        db, sender, forms_dir, month, chase, today, again, only, form_format, settings
    )
    result = MailResult([], dry_run=dry_run, not_sent=not_sent)
    exemption = active_policy(db).word("exemption")
    run = _Sender(db, sender, chase, today, settings, user, again, result, exemption)
    if dry_run:
        result.messages = [_message(sender, g, chase, today, settings, exemption) for g in groups]
    elif smtp:
        result.sent_via = smtp
        if groups:  # nothing to send: no connection
            notice = send_smtp(
                smtp, starttls, smtp_user, lambda conn: run.send(groups, conn, smtp), ssl_context
            )
            result.notice = notice if result.messages else ""  # said when mail went out
    elif groups:
        run.write(groups, out_dir, "chase" if chase else "audits")
    _summarise(db, result, month, chase, today)
    return result


def _run_messages(db: Store, month: str | None, chase: bool, today: dt.date) -> list[OutboxMessage]:
    """The outbox's messages of the kind this run sends: the day's chases, or forms."""
    if chase:
        return db.outbox_messages(month, [CHASE], _round(chase, today))
    return [m for m in db.outbox_messages(month, None, "") if _sending(m.purpose)]


def _whole_messages(
    db: Store, month: str | None, chase: bool, today: dt.date, audit_ids: Collection[str] | None
) -> set[str] | None:
    """The named audits and the others carried by the same unknown message or draft: naming
    one audit picks its whole email."""
    if audit_ids is None:
        return None
    named = set(audit_ids)
    for m in _run_messages(db, month, chase, today):
        if m.state in RESEND and not named.isdisjoint(m.audit_ids):
            named.update(m.audit_ids)
    return named


def _summarise(
    db: Store, result: MailResult, month: str | None, chase: bool, today: dt.date
) -> None:
    """What the outbox already holds for the run's month and purposes (and chase round)."""
    now = {o.message_id for o in result.messages} | {m.id for m in result.failed}
    now |= {m.id for m in result.unknown}
    held = [m for m in _run_messages(db, month, chase, today) if m.id not in now]
    result.already_sent = [m for m in held if m.state is M.sent]
    result.in_progress = [m for m in held if m.state is M.queued]
    result.drafted = [m for m in held if m.state is M.drafted]
    result.unknown += [m for m in held if m.state is M.unknown]
