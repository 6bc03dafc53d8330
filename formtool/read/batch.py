"""Batch import of returned forms: read -> validate -> store, one transaction per return.

A bad file is rejected with one reason and the batch goes on; a rejected file stores nothing
of its answers, but goes on record (store/rejections.py): against its audit when its identity
names one (an event on the audit says so), else as an unmatched file for an officer. Emails
(.eml, .msg) are opened and each attached form imported as a return of its own, with the
sender and sent date kept. Files are opened safely: regular files only, never more than the
size limit read, whatever the path points to.

If the database itself fails part-way (a server stopped, a full disk), the batch stops with
`ImportStopped`, holding the outcome of every return dealt with before: each of those was
stored whole (or rejected), and importing the same files again finds them `unchanged`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formtool import clock, store
from formtool.errors import Issue, IssueCode, Rejected, printable
from formtool.periods import show_time
from formtool.read import READABLE, FormResolver, RawReturn, installed_form, read_bytes
from formtool.read.cases import facts_checksum
from formtool.read.concern import YES, concern_answer, concern_text, raise_answered_concern
from formtool.read.limits import MAX_FILE_BYTES
from formtool.read.validate import ReadResult, two_stage, validate_return
from formtool.store import DatabaseError, Store, StoreError, current_work, failure

if TYPE_CHECKING:
    from formtool.read.message import Message

MESSAGES = (".eml", ".msg")
MACRO_ENABLED = (".docm", ".xlsm", ".dotm", ".xltm")
STATUSES = ("imported", "updated", "history", "held", "unchanged", "skipped", "rejected")
#: Files a folder search passes over without a word: Office's lock files and the folder
#: metadata operating systems leave; everything else found is read or reported.
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
_NAMED_ID = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+")


@dataclass
class ImportOutcome:
    file: str  # as shown: the path, or "message.msg › attachment.docx"
    status: str  # one of STATUSES
    audit_id: str = ""
    issues: list[Issue] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "audit_id": self.audit_id,
            "status": self.status,
            "issues": [i.as_dict() for i in self.issues],
        }


class ImportStopped(StoreError):
    """The database failed part-way through a batch. `outcomes`: every return dealt with
    before it failed (each stored whole, or rejected); `file`: the file being imported when
    it failed; `left`: how many files after it were not read."""

    def __init__(
        self, outcomes: list[ImportOutcome], file: str, left: int, cause: BaseException, db: Store
    ) -> None:
        self.outcomes, self.file, self.left = outcomes, file, left
        self.failure = failure(cause, db.url)
        stored = sum(o.status in ("imported", "updated", "history", "held") for o in outcomes)
        before = (
            f"{stored} return(s) listed above were stored before it stopped"
            if stored
            else "nothing was stored before it stopped"
        )
        doubt = current_work().in_doubt  # the database went while confirming the last save
        this = "may or may not have been stored" if doubt else "was not stored"
        super().__init__(
            f"{self.failure.text()} The import stopped at {printable(file)}: {before}; the "
            f"return it was importing from {printable(Path(file).name)} {this}; {left} file(s) "
            "after it were not read. Run the same command again: stored returns will be "
            "`unchanged`."
        )


@dataclass(frozen=True)
class Envelope:
    """Where a return came from: its file, and the email that carried it (if any)."""

    sender: str = ""
    sent_at: dt.datetime | None = None
    message_name: str = ""


@dataclass
class _Batch:
    """What every return of one import shares: the database, the programme's today, how a
    return's definition is found, who imports, and who besides an audit's auditor may send
    its returns (addresses or `@domain`s)."""

    db: Store
    today: dt.date | None = None
    resolve: FormResolver = installed_form
    user: str = ""
    senders: Collection[str] = ()
    _key: bytes | None = field(default=None, repr=False)  # a secret: never printed

    def identity_key(self) -> bytes:
        """The database's identity key, read once a batch rather than once a return."""
        if self._key is None:
            self._key = self.db.identity_key()
        return self._key


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Paths named, and every file under folders named: forms and emails are read, anything
    else is reported as not read (Office lock files, hidden files and folder metadata are
    passed over; links to folders are not followed, so a loop cannot trap the search)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(path)
            continue
        for root, folders, files in os.walk(path):
            folders[:] = sorted(f for f in folders if not f.startswith("."))
            found += [Path(root, f) for f in sorted(files) if not _ignored(f)]
    return list(dict.fromkeys(found))


def _ignored(name: str) -> bool:
    return name.startswith(("~$", ".")) or name.lower() in IGNORED_NAMES


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_file(path: Path) -> bytes:
    """A file's bytes, refusing anything but a regular file within the size limit.

    Opened non-blocking and checked on the open descriptor, so a named pipe cannot block
    and a link to /dev/zero cannot be read until memory runs out.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise Rejected(IssueCode.not_found) from None
    except IsADirectoryError:
        raise Rejected(IssueCode.not_a_file, "a folder") from None
    except OSError as exc:
        raise Rejected(IssueCode.not_a_file, exc.strerror or "cannot be opened") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Rejected(IssueCode.not_a_file, _kind(info.st_mode))
        if info.st_size > MAX_FILE_BYTES:
            raise Rejected(
                IssueCode.too_large, _megabytes(info.st_size), _megabytes(MAX_FILE_BYTES)
            )
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:  # it grew while we read it
        raise Rejected(
            IssueCode.too_large, f"over {_megabytes(MAX_FILE_BYTES)}", _megabytes(MAX_FILE_BYTES)
        )
    return data


def _megabytes(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def _rejected(name: str, issue: Issue, audit_id: str = "") -> ImportOutcome:
    return ImportOutcome(name, "rejected", audit_id, [issue])


def named_audit(db: Store, name: str) -> str:
    """The audit a file's name carries (`CSC-A1-202611.docx`, `Copy of CSC-A1-202611 (2).pdf`),
    if it is one in the database: a file that cannot be read still says whom to chase."""
    stem = Path(name.rsplit(" › ", 1)[-1]).stem
    for candidate in _NAMED_ID.findall(stem)[:5]:
        if db.audit_row(candidate) is not None:
            return candidate
    return ""


def _refused(db: Store, name: str, exc: Rejected) -> ImportOutcome:
    """A file that cannot be read, naming the audit its file name carries (if any)."""
    audit_id = named_audit(db, name)
    return _rejected(name, exc.issue(name, audit_id), audit_id)


def import_return(
    db: Store,
    name: str,
    data: bytes,
    envelope: Envelope = Envelope(),
    today: dt.date | None = None,
    resolve: FormResolver = installed_form,
    user: str = "",
    senders: Collection[str] = (),
) -> ImportOutcome:
    """Import one returned form (its bytes); the outcome says what happened and why.
    `senders`: addresses (or `@domain`s) besides the auditor's whose emailed returns are
    taken as the auditor's; a return from anyone else is held for an officer. A rejection is
    not recorded here: `import_file` and `import_paths`, which take the files that came, do."""
    return _import_one(_Batch(db, today, resolve, user, senders), name, data, envelope)


def _import_one(batch: _Batch, name: str, data: bytes, envelope: Envelope) -> ImportOutcome:
    """`import_return` within a batch."""
    try:
        return _import_return(batch, name, data, envelope)
    except Rejected as exc:
        return _refused(batch.db, name, exc)
    except DatabaseError:
        raise  # the database, not the file: the command stops with a one-line error
    except Exception as exc:  # a reader bug must not stop the batch; its own code says so
        return _rejected(
            name, Issue(IssueCode.read_failed, name, value=f"{type(exc).__name__}: {exc}")
        )


def _noted(
    batch: _Batch, outcome: ImportOutcome, data: bytes | None, envelope: Envelope = Envelope()
) -> ImportOutcome:
    """The outcome, a rejected file recorded first (see store/rejections.py): what came
    (`data`, None when it could not be read), when, from whom and why. A path that was not
    there (mistyped) is no file that came, and is not recorded."""
    if outcome.status != "rejected" or not outcome.issues:
        return outcome
    first = next((i for i in outcome.issues if not i.is_warning), outcome.issues[0])
    if first.code is IssueCode.not_found:
        return outcome
    shown = shown_name(outcome)
    # as shown (never a private upload folder), and without what was typed: a rejected
    # file's answers are not kept, not even in the reason
    reason = dataclasses.replace(first, file=shown, value="…" if first.value else "").message
    more = sum(not i.is_warning for i in outcome.issues) - 1
    if more > 0:
        reason += f" (and {more} more problem(s) in the file)"
    seen = data if data is not None else f"{shown}\0{first.code.label}".encode()
    rejection = store.Rejection(
        hashlib.sha256(seen).hexdigest(),
        shown,
        first.code.label,
        reason,
        outcome.audit_id,
        first.audit_id,
        envelope.sender,
        envelope.sent_at,
        batch.today or clock.today(),
    )
    batch.db.record_rejection(rejection, batch.user)
    return outcome


def _import_return(batch: _Batch, name: str, data: bytes, envelope: Envelope) -> ImportOutcome:
    db = batch.db
    content_hash = hashlib.sha256(data).hexdigest()
    seen = db.known_return(content_hash)
    if seen is not None:
        return _seen_before(batch, name, seen, envelope)
    raw = read_bytes(data, Path(name).suffix, batch.resolve)
    audit_id = raw.identity.audit_id
    audit, stage, prepared = db.return_context(audit_id, two_stage(raw.form))
    if audit is None:
        return _rejected(name, Issue(IssueCode.not_in_database, name, audit_id=audit_id))
    if (audit.form_id, audit.form_version) != (raw.form.id, raw.identity.form_version):
        return _rejected(
            name,
            Issue(
                IssueCode.wrong_form,
                name,
                value=f"{raw.form.id} v{raw.identity.form_version}",
                expected=f"{audit.form_id} v{audit.form_version}",
                audit_id=audit_id,
            ),
            audit_id,
        )
    # A copy the audit had before it was reassigned is read against its own facts.
    copy = None
    if raw.identity.checksum != audit.checksum:
        copy = db.earlier_copy(audit_id, raw.identity.checksum)
    facts = json.loads(copy.facts) if copy is not None else store.audit_facts(audit)
    scheme = copy.checksum_scheme if copy is not None else audit.checksum_scheme
    key = batch.identity_key() if scheme == "hmac" else None
    facts = _as_issued(raw, copy if copy is not None else audit, facts, key)
    issued = audit.created_at.date()
    result = validate_return(raw, name, facts, batch.today, stage, prepared, key, issued)
    if not result.accepted:
        return _rejected_with_concern(
            batch, name, raw, ImportOutcome(name, "rejected", audit_id, result.issues)
        )
    if result.record is not None and result.record.blank:
        return _rejected(name, Issue(IssueCode.returned_blank, name, audit_id=audit_id), audit_id)
    if copy is not None:  # the work may be good: an officer decides, it is never thrown away
        result.issues.append(
            Issue(
                IssueCode.reassigned,
                name,
                value=copy.auditor,
                expected=audit.auditor,
                audit_id=audit_id,
            )
        )
        concern = _concern(raw, result)
        hold = store.HELD_REASSIGNED
        return _store(batch, name, data, content_hash, raw, result, envelope, stage, hold, concern)
    stranger = _stranger(envelope.sender, audit, batch.senders)
    if stranger:
        result.issues.append(
            Issue(
                IssueCode.held_sender,
                name,
                value=stranger,
                expected=audit.auditor_email,
                audit_id=audit_id,
            )
        )
    hold = store.HELD_SENDER if stranger else ""
    concern = _concern(raw, result)
    return _store(batch, name, data, content_hash, raw, result, envelope, stage, hold, concern)


def _as_issued(
    raw: RawReturn, issued: Any, facts: dict[str, str], key: bytes | None
) -> dict[str, str]:
    """The facts a return is checked against. A fact corrected since its form was sent
    (`formtool correct`) comes back as it was printed: the audit keeps the checksum of the
    facts as issued, so a header whose own checksum is that one is the form as sent, unedited,
    and is read against itself (the corrected facts stay the audit's)."""
    if raw.identity.checksum != issued.checksum:
        return facts
    read = {h.column: raw.values.get(h.key, "") for h in raw.form.header}
    own = facts_checksum(raw.identity.audit_id, raw.form.id, raw.identity.form_version, read, key)
    return read if own == issued.checksum else facts


def _rejected_with_concern(
    batch: _Batch, name: str, raw: RawReturn, outcome: ImportOutcome
) -> ImportOutcome:
    """A rejected return that says Yes to the immediate concern still raises it: the child's
    safety does not wait for the auditor to fix a typo. Its answers are not stored."""
    raised = raise_answered_concern(batch.db, outcome.audit_id, raw.form, raw.values, batch.user)
    if raised is not None:
        outcome.issues.append(
            Issue(IssueCode.concern_raised, name, value=str(raised), audit_id=outcome.audit_id)
        )
    return outcome


def _concern(raw: RawReturn, result: ReadResult) -> store.RaisedConcern | None:
    """What the return raises: a concern when it answers Yes to the immediate-concern
    question (a draft too: a child's safety does not wait for the Final return)."""
    record = result.record
    assert record is not None  # accepted
    if concern_answer(raw.form, record.answers) != YES:
        return None
    details, told = concern_text(raw.form, record.answers)
    return store.RaisedConcern(details, told)


def _seen_before(batch: _Batch, name: str, seen: Any, envelope: Envelope) -> ImportOutcome:
    """The same bytes again: `unchanged`, except where what happened to them matters. A
    file an officer refused is refused again, saying so; one held from a stranger that now
    comes from the auditor (or an allowed sender) is taken in; one kept since the audit was
    accepted says it waits for a reopen."""
    db, audit_id = batch.db, str(seen.audit_id)
    if seen.held == store.REFUSED:
        issue = Issue(IssueCode.refused_before, name, value=f"return {seen.id}", audit_id=audit_id)
        return _rejected(name, issue, audit_id)
    if seen.held == store.HELD_LOCKED:
        state = str(db.audit_state(audit_id))
        issue = Issue(IssueCode.after_close, name, value=state, audit_id=audit_id)
        return ImportOutcome(name, "unchanged", audit_id, [issue])
    if seen.held == store.HELD_SENDER and envelope.sender:
        audit = db.audit_row(audit_id)
        if audit is not None and not _stranger(envelope.sender, audit, batch.senders):
            try:
                stored = db.accept_held(seen.id, batch.user)
            except store.StateError:
                pass  # it stays held: the officer decides (formtool held)
            else:
                return ImportOutcome(name, stored.status, audit_id)
    return ImportOutcome(name, "held" if seen.held == store.HELD_SENDER else "unchanged", audit_id)


def sender_address(sender: str) -> str:
    """The address in a From line ("Name <a@b>" or "a@b"), lower-cased; "" if none."""
    return parseaddr(sender)[1].strip().lower()


def _stranger(sender: str, audit: Any, senders: Collection[str]) -> str:
    """The sender's address if an emailed return came from someone other than the audit's
    auditor (or preparer, or an allowed sender); "" when it did not, or cannot be told."""
    address = sender_address(sender)
    own = {e.strip().lower() for e in (audit.auditor_email, audit.preparer_email) if e}
    if "@" not in address or not own or address in own:  # a bare name or an Exchange path
        return ""
    allowed = {s.strip().lower() for s in senders}
    domain = "@" + address.rsplit("@", 1)[-1]
    return "" if address in allowed or domain in allowed else address


def return_record(
    result: ReadResult, concern: store.RaisedConcern | None = None
) -> store.ReturnRecord:
    """An accepted return as the store takes it (a file's, or the web form's: read/web.py)."""
    record = result.record
    assert record is not None  # accepted
    return store.ReturnRecord(
        record.audit_id,
        record.method,
        record.final,
        record.answers,
        [a.as_store_row() for a in record.actions],
        record.grade,
        record.moderated_grade,
        [i.as_data() for i in result.issues],
        concern,
    )


def _store(
    batch: _Batch,
    name: str,
    data: bytes,
    content_hash: str,
    raw: RawReturn,
    result: ReadResult,
    envelope: Envelope,
    stage: str,
    hold: str,
    concern: store.RaisedConcern | None = None,
) -> ImportOutcome:
    row = return_record(result, concern)
    audit_id = row.audit_id
    envelope_file = store.ReturnFile(
        Path(name).name,
        data,
        content_hash,
        raw.saved_at,
        envelope.sender,
        envelope.sent_at,
        envelope.message_name,
        batch.today or clock.today(),
    )
    try:
        stages = two_stage(raw.form)
        stored = batch.db.store_return(row, envelope_file, stage, stages, batch.user, hold)
    except store.StateError as exc:
        return _rejected(
            name, Issue(IssueCode.state_changed, name, value=str(exc), audit_id=audit_id), audit_id
        )
    issues = list(result.issues)
    if stored.concern is not None:
        issues.append(
            Issue(
                IssueCode.concern_raised,
                name,
                value=str(stored.concern.id),
                audit_id=audit_id,
            )
        )
    if stored.held == store.HELD_LOCKED:
        state = str(stored.state or "")
        issues.append(Issue(IssueCode.after_close, name, value=state, audit_id=audit_id))
    elif stored.status == "history" and stored.previous_date is not None:
        issues.append(
            Issue(
                IssueCode.older_return,
                name,
                value=f"{_dated(envelope_file)} {show_time(envelope_file.order_date)}",
                expected=f"{stored.previous_kind} {show_time(stored.previous_date)}",
                audit_id=audit_id,
            )
        )
    return ImportOutcome(name, stored.status, audit_id, issues)


def _dated(file: store.ReturnFile) -> str:
    """What a return's order date is: when it was saved, sent, or (neither known) imported."""
    return "saved" if file.saved_at else "sent" if file.sent_at else "imported"


def _message_returns(
    batch: _Batch, path: Path, message: Message, data: bytes
) -> Iterator[ImportOutcome]:
    """Each attached form's outcome as soon as it is stored (so a batch that stops part-way
    still reports the attachments before). `data`: the email's own bytes."""
    name = str(path)
    envelope = Envelope(message.sender, message.sent_at, path.name)
    forms = 0
    for attachment in message.attachments:
        shown = f"{name} › {attachment.name or 'unnamed attachment'}"
        if Path(attachment.name).suffix.lower() not in READABLE:
            yield ImportOutcome(
                shown,
                "skipped",
                issues=[
                    Issue(
                        IssueCode.not_a_form,
                        shown,
                        value=Path(attachment.name).suffix or "no type",
                    )
                ],
            )
            continue
        forms += 1
        outcome = _import_one(batch, shown, attachment.data, envelope)
        yield _noted(batch, outcome, attachment.data, envelope)
    if not forms:
        yield _noted(batch, _rejected(name, Issue(IssueCode.no_attachment, name)), data, envelope)


def import_file(
    db: Store,
    path: Path,
    today: dt.date | None = None,
    resolve: FormResolver = installed_form,
    user: str = "",
    senders: Collection[str] = (),
) -> list[ImportOutcome]:
    """Import one file: a form, or an email with forms attached (one outcome per form)."""
    return list(_file_outcomes(_Batch(db, today, resolve, user, senders), path))


def _file_outcomes(batch: _Batch, path: Path) -> Iterator[ImportOutcome]:
    """`import_file`, each outcome as soon as it is known. Any file but an email is read
    as a form: what it really is (a PDF, a photo, an old .doc) is said by the reader."""
    name = str(path)
    suffix = path.suffix.lower()
    data: bytes | None = None
    try:
        if suffix in MACRO_ENABLED:
            raise Rejected(IssueCode.macros, f"a {suffix} file", f".{suffix[1:-1]}x")
        data = read_file(path)
        message = None
        if suffix in MESSAGES:
            from formtool.read.message import read_message

            message = read_message(data, path.suffix)
    except Rejected as exc:
        yield _noted(batch, _refused(batch.db, name, exc), data)
        return
    if message is None:
        yield _noted(batch, _import_one(batch, name, data, Envelope()), data)
    else:
        yield from _message_returns(batch, path, message, data)


def import_paths(
    db: Store,
    paths: Iterable[str | Path],
    today: dt.date | None = None,
    progress: Callable[[list[Path]], Iterator[Path]] | None = None,
    resolve: FormResolver | None = None,
    user: str = "",
    senders: Collection[str] = (),
) -> list[ImportOutcome]:
    """Import every file (folders searched); one outcome per return, in file order.
    Returns are read with the definition version that made them (`catalog.resolver`).
    Each return is stored in its own transaction; if the database fails part-way,
    ImportStopped carries the outcomes so far."""
    batch = _Batch(db, today, resolve or db.resolver(), user, senders)
    files = discover(paths)
    outcomes: list[ImportOutcome] = []
    for index, path in enumerate((progress or iter)(files)):
        try:
            for outcome in _file_outcomes(batch, path):
                outcomes.append(outcome)
        except DatabaseError as exc:
            raise ImportStopped(outcomes, str(path), len(files) - index - 1, exc, db) from exc
    return outcomes


def shown_name(outcome: ImportOutcome) -> str:
    """The outcome's file name (the message carries its folder) for a terminal or page,
    control characters escaped: `reply.msg › CSC-A1-202611.docx` for an attachment."""
    return printable(Path(outcome.file).name)


def counts(outcomes: Iterable[ImportOutcome]) -> dict[str, int]:
    tally = dict.fromkeys(STATUSES, 0)
    for outcome in outcomes:
        tally[outcome.status] += 1
    return tally
