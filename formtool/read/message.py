"""Emails in: the sender, sent date, subject and attachments of one saved .eml or .msg file.

Auditors reply with the completed form attached; QA officers save the reply from Outlook (.msg,
a Compound File Binary file) or another mail program (.eml, MIME text). Forwarded emails are
opened too, to three levels, so a form inside a forwarded reply is found.

.msg files are read with `olefile` (BSD licence) and the few MS-OXMSG properties formtool needs,
rather than with `extract-msg`, whose GPL-3.0 licence would bind how formtool may be distributed.

Every file is hostile until shown otherwise: what would make an .eml costly to parse (lines,
header lines, MIME parts, multipart sections, in any line-ending convention) is counted before
the parser sees it, .msg streams are size-checked against the file before they are read,
nesting and the number of attachments are bounded, and every way a damaged file can fail
becomes one `Rejected(bad_message)` with a short one-line reason. An attachment's name is kept
as one name (a "/" in it would hide the email's name where outcomes are shown by their last
path part), cut in the middle when too long, so that ".docx" stays.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email
import email.feedparser
import email.policy
import io
import itertools
import re
import struct
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import olefile

from formtool.errors import IssueCode, Rejected
from formtool.read.limits import MAX_FILE_BYTES

MAX_ATTACHMENTS = 50  # across forwarded emails too; a reply carries a handful of forms
MAX_DEPTH = 3  # an email forwarded inside an email, three times over
MAX_ATTACHMENT_BYTES = MAX_FILE_BYTES
# What makes Python's email parser slow or big, counted before it sees the bytes (CRLF, LF and a
# lone CR each end a line for it): it keeps a string per line (twice for a header line), an
# object per part, and checks every line against the boundary of each multipart section around
# it. Within these limits the costliest 20 MB emails bench/email_bounds.py builds take under
# 220 MB (the process's peak, imports included) and 5 s of CPU; real replies are far inside.
MAX_BOUNDARIES = 2000  # lines starting "--": one per MIME part (and a few signature lines)
MAX_MULTIPARTS = 100  # "boundary" spelt out: one per multipart section (a reply has a few)
MAX_LINES = 500_000  # a 20 MB email of base64 attachments, 76 characters a line, has 270,000
MAX_HEADER_LINES = 100_000  # lines that could be header lines; a reply's headers fill hundreds
PARSE_CHUNK = 8192  # bytes fed to the parser at a time, as email.parser does
MAX_HEADER_CHARS = 4000  # email's header parser is quadratic on long headers; real ones are short
MAX_TEXT_CHARS = 1000  # sender and subject as kept; more is not a real header
MAX_REASON_CHARS = 100
MAX_NAME_CHARS = 240  # an attachment's name as kept, longer ones cut in the middle: after
# `reply.eml › ` (a file name has at most 255 characters) it fits the store's 500
EARLIEST, LATEST = dt.datetime(1980, 1, 1), dt.datetime(2100, 1, 1)  # outside: a broken clock
EMAIL_HEADERS = frozenset(
    {"from", "to", "date", "subject", "message-id", "mime-version", "content-type", "received"}
)

# MS-OXMSG: property streams and tags (the id is the high 16 bits of a tag, the type the low)
PROPERTIES = "__properties_version1.0"
ATTACH_PREFIX = "__attach_version1.0_#"
TOP_HEADER, EMBEDDED_HEADER, ATTACHMENT_HEADER = 32, 24, 8  # bytes before the 16-byte entries
PT_LONG, PT_SYSTIME = 0x0003, 0x0040
PID_SUBJECT, PID_SENDER_NAME = 0x0037, 0x0C1A
PID_SENDER_SMTP, PID_SENDER_ADDRESS = 0x5D01, 0x0C1F
PID_SUBMIT_TIME, PID_DELIVERY_TIME = 0x0039, 0x0E06
PID_MESSAGE_CODEPAGE, PID_INTERNET_CODEPAGE = 0x3FFD, 0x3FDE
PID_ATTACH_LONG_NAME, PID_ATTACH_NAME, PID_ATTACH_METHOD = 0x3707, 0x3704, 0x3705
ATTACH_DATA = "__substg1.0_37010102"  # PidTagAttachDataBinary
ATTACH_EMBEDDED = "__substg1.0_3701000D"  # PidTagAttachDataObject holding a message
ATTACH_EMBEDDED_MESSAGE = 5
FILETIME_EPOCH = dt.datetime(1601, 1, 1)
CODEPAGES = {65001: "utf-8", 20127: "ascii", 28591: "latin-1"}  # the rest are "cp<number>"

OlePath = tuple[str, ...]  # storage and stream names from the root, as olefile takes them
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True)
class Attachment:
    name: str  # the file name as the sender's mail program gave it ("" if none)
    data: bytes


@dataclass(frozen=True)
class Message:
    sender: str  # "Name <addr@x>", or the address (or name) alone; "" if unknown
    sent_at: dt.datetime | None  # naive UTC; None if absent or unreadable
    subject: str
    attachments: tuple[Attachment, ...]  # every attachment, forms or not, in order


def read_message(data: bytes, suffix: str) -> Message:
    """The email saved in `data`; `suffix` is ".eml" or ".msg" (any case).

    Raises `Rejected(IssueCode.bad_message)` for anything that cannot be read, and nothing else.
    """
    kind = suffix.lower()
    readers = {".eml": (_read_eml, "damaged email"), ".msg": (_read_msg, "damaged Outlook file")}
    if kind not in readers:
        raise _bad(f"'{suffix}' is not .eml or .msg")
    reader, damaged = readers[kind]
    try:
        return reader(data)
    except Rejected:
        raise
    except Exception as exc:  # a hostile file must cost the batch one reason, never a crash
        raise _bad(f"{damaged}: {_detail(exc)}") from exc


# ---- shared helpers -----------------------------------------------------------------------


def _one_line(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Text on one line: control characters become spaces, runs of spaces one, capped."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _bad(reason: str) -> Rejected:
    return Rejected(IssueCode.bad_message, _one_line(reason, MAX_REASON_CHARS))


def _detail(exc: Exception) -> str:
    """What went wrong, for people: olefile's own words (OSError), else the kind of failure."""
    if isinstance(exc, RecursionError):
        return "parts nested too deeply"
    text = _one_line(str(exc), 60)
    if isinstance(exc, OSError) and text:
        return text
    return f"unreadable structure, {type(exc).__name__}"


def _person(name: str, address: str) -> str:
    name, address = _one_line(name), _one_line(address)
    if name and address and name != address:
        return f"{name} <{address}>"
    return address or name


def _plausible(stamp: dt.datetime) -> dt.datetime | None:
    return stamp if EARLIEST <= stamp < LATEST else None


class _Count:
    """Attachments (and embedded emails) seen so far in one file, within MAX_ATTACHMENTS."""

    def __init__(self) -> None:
        self.seen = 0

    def add(self) -> None:
        self.seen += 1
        if self.seen > MAX_ATTACHMENTS:
            raise _bad(f"more than {MAX_ATTACHMENTS} attachments")


def _attachment(name: str, data: bytes) -> Attachment:
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise _bad(f"an attachment is larger than {MAX_ATTACHMENT_BYTES // 1_048_576} MB")
    return Attachment(_file_name(name), data)


def _file_name(name: str) -> str:
    """An attachment's name as shown and stored: one clean line that stays one name. A path
    separator becomes "_" (`reply.eml › a/b.docx` would otherwise be shown as `b.docx`), and a
    long name is cut in the middle, so its type (".docx") and the end of its name stay."""
    if len(name) > 4 * MAX_NAME_CHARS:  # no real name: spare _one_line a megabyte of it
        name = name[: 2 * MAX_NAME_CHARS] + " " + name[-2 * MAX_NAME_CHARS :]
    name = _one_line(name, len(name)).replace("/", "_").replace("\\", "_")
    if len(name) <= MAX_NAME_CHARS:
        return name
    tail = (MAX_NAME_CHARS - 1) // 2
    return f"{name[: MAX_NAME_CHARS - 1 - tail]}…{name[-tail:]}"


# ---- .eml ---------------------------------------------------------------------------------


class _BoundedPolicy(email.policy.EmailPolicy):
    """`email.policy.default`, with header values cut before they are parsed (the structured
    header parser takes seconds on a hostile header of a few hundred kilobytes), and without
    multipart boundaries that are not spelt out (see `_check_cost`)."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        value = value[:MAX_HEADER_CHARS]
        header = super().header_fetch_parse(name, value)
        if (
            name.lower() == "content-type"
            and "boundary" in str(header).lower()
            and "boundary" not in value.lower()
        ):  # a boundary only inside an encoded word: mail programs ignore it, and so must the
            # parser, or nested parts would escape the count of "boundary" in `_check_cost`
            return super().header_fetch_parse(name, "text/plain")
        return header


_POLICY = _BoundedPolicy()
# email.feedparser's headerRE at a line's start: a line the parser may take as a header line
_HEADER_LINE = re.compile(rb"(?<![^\r\n])(?:From |[!-9;-~]*:|[\t ])")


def _read_eml(data: bytes) -> Message:
    _check_cost(data)
    msg = _parse(data)
    names = {key.lower() for key in msg}  # header names, not yet parsed
    if not isinstance(msg, EmailMessage) or not names & EMAIL_HEADERS:
        raise _bad("no email headers")  # random bytes, a PDF, a renamed .msg
    return Message(_eml_sender(msg), _eml_date(msg), _eml_subject(msg), _mime_attachments(msg))


def _check_cost(data: bytes) -> None:
    """Refuse an email whose parsing would cost too much, counted before the parser sees it,
    in any line-ending convention: multipart sections (each line is checked against the
    boundary of every section it lies in), MIME parts, header lines, and lines (each empty line
    of a run, and each quoted-printable soft break, "=" at a line's end, is a line)."""
    if data.lower().count(b"boundary") > MAX_MULTIPARTS:  # the parameter, however it is spelt
        raise _bad(f"more than {MAX_MULTIPARTS:,} multipart sections")
    boundaries = data.count(b"\n--") + data.count(b"\r--")  # a CRLF line counted once
    if boundaries > MAX_BOUNDARIES:
        raise _bad(f"more than {MAX_BOUNDARIES:,} MIME boundaries")
    lines = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    if lines > MAX_HEADER_LINES and _too_many_header_lines(data):
        raise _bad(f"more than {MAX_HEADER_LINES:,} header lines")
    if lines > MAX_LINES:
        raise _bad(f"more than {MAX_LINES:,} lines")


def _too_many_header_lines(data: bytes) -> bool:
    """Whether more than MAX_HEADER_LINES lines could be header lines, wherever they are.
    Colons, "From " and indented lines are counted first, in C (at least one per such line);
    only an email with more of them than the limit (no real one) is scanned line by line."""
    quick = 1 + data.count(b":") + data.count(b"From ")
    quick += sum(data.count(end + space) for end in (b"\n", b"\r") for space in (b" ", b"\t"))
    if quick <= MAX_HEADER_LINES:
        return False
    beyond = itertools.islice(_HEADER_LINE.finditer(data), MAX_HEADER_LINES, None)
    return next(beyond, None) is not None


def _parse(data: bytes) -> Any:
    """`email.message_from_bytes`, fed in the same 8 KB pieces but straight from the bytes: it
    would first copy the whole email into a str and then a StringIO (4 bytes a character)."""
    parser = email.feedparser.BytesFeedParser(policy=_POLICY)
    for start in range(0, len(data), PARSE_CHUNK):
        parser.feed(data[start : start + PARSE_CHUNK])
    return parser.close()


def _eml_sender(msg: EmailMessage) -> str:
    try:  # an unparseable From must not cost the forms attached
        header = msg["From"]
        if header is None:
            return ""
        people = [_person(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())]
        return _one_line(", ".join(p for p in people if p) or str(header))
    except Exception:
        return ""


def _eml_date(msg: EmailMessage) -> dt.datetime | None:
    try:
        stamp = getattr(msg["Date"], "datetime", None)
        if not isinstance(stamp, dt.datetime):
            return None
        if stamp.tzinfo is not None:  # "-0000" (zone unknown) parses naive: taken as UTC
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        return _plausible(stamp)
    except Exception:
        return None


def _eml_subject(msg: EmailMessage) -> str:
    try:
        return _one_line(str(msg["Subject"] or ""))
    except Exception:
        return ""


def _mime_attachments(msg: EmailMessage) -> tuple[Attachment, ...]:
    """Parts with a file name (or marked attachment), in order; forwarded emails
    (message/rfc822) are opened, not listed. Walked with a stack, so deep MIME cannot recurse."""
    found: list[Attachment] = []
    count = _Count()
    stack: list[tuple[EmailMessage, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        if part.is_multipart():
            forwarded = part.get_content_type() == "message/rfc822"
            if forwarded:
                count.add()
                if depth >= MAX_DEPTH:
                    raise _bad(f"emails forwarded more than {MAX_DEPTH} deep")
            inner = depth + 1 if forwarded else depth
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, inner) for c in reversed(children) if isinstance(c, EmailMessage))
            continue
        name = _part_name(part)
        if name is None:
            continue  # the body text
        count.add()
        payload = part.get_payload(decode=True)
        found.append(_attachment(name, payload if isinstance(payload, bytes) else b""))
    return tuple(found)


def _part_name(part: EmailMessage) -> str | None:
    """An attachment's file name ("" if it has none); None for a body part."""
    try:
        name = part.get_filename()
        disposition = part.get_content_disposition()
    except Exception as exc:  # Python's header parser fails on some broken parameters
        raise _bad("damaged email: unreadable attachment headers") from exc
    if name is None and disposition != "attachment":
        return None
    return str(name or "")


# ---- .msg ---------------------------------------------------------------------------------


def _read_msg(data: bytes) -> Message:
    if not data.startswith(olefile.MAGIC):
        raise _bad("not an Outlook message: no OLE header")
    _check_cfb_header(data)
    with olefile.OleFileIO(io.BytesIO(data)) as ole:
        return _MsgReader(ole, len(data)).message()


def _check_cfb_header(data: bytes) -> None:
    """Refuse counts and sector numbers the file cannot hold, before olefile trusts them
    (a hostile header can otherwise make it loop through gigabytes of made-up tables)."""
    if len(data) < 512:
        raise _bad("truncated: shorter than an OLE header")
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):
        raise _bad("damaged Outlook file: bad sector size")
    size = 1 << shift
    sectors = (len(data) + size - 1) // size - 1  # after the header sector, as olefile counts
    (first_dir,) = struct.unpack_from("<I", data, 0x30)
    counts = (
        struct.unpack_from("<I", data, 0x2C)
        + struct.unpack_from("<I", data, 0x40)
        + struct.unpack_from("<I", data, 0x48)
    )  # FAT, mini FAT and DIFAT sector counts
    if any(count > sectors for count in counts):
        raise _bad("damaged Outlook file: tables larger than the file")
    fat = struct.unpack_from("<109I", data, 0x4C)[: min(counts[0], 109)]
    if first_dir >= sectors or any(sector >= sectors for sector in fat):
        raise _bad("truncated: its tables lie beyond the end of the file")


class _MsgReader:
    """One open .msg file, read within a budget: its streams together hold at most the file."""

    def __init__(self, ole: Any, size: int) -> None:
        self.ole, self.left, self.count = ole, size, _Count()
        if ole.root.size > size:  # the mini stream, read whole on the first small stream
            raise _bad("damaged Outlook file: mini stream larger than the file")
        self.storages = {tuple(p) for p in ole.listdir(streams=False, storages=True)}
        self.attached: dict[OlePath, list[OlePath]] = {}  # message storage -> its attachments
        for path in sorted(self.storages, key=lambda p: [name.upper() for name in p]):
            if path[-1].upper().startswith(ATTACH_PREFIX.upper()):
                self.attached.setdefault(path[:-1], []).append(path)

    def message(self) -> Message:
        props = self.properties((), TOP_HEADER)
        if props is None:
            raise _bad("not an Outlook message: no message properties")
        codepage = _codepage(props)
        name = self.text((), PID_SENDER_NAME, codepage)
        address = self.text((), PID_SENDER_SMTP, codepage) or self.text(
            (), PID_SENDER_ADDRESS, codepage
        )
        if "@" not in address:  # an Exchange directory name, not an address people can use
            address = ""
        sent = _systime(props, PID_SUBMIT_TIME) or _systime(props, PID_DELIVERY_TIME)
        subject = self.text((), PID_SUBJECT, codepage)
        found: list[Attachment] = []
        self.attachments((), codepage, 0, found)
        return Message(_person(name, address), sent, _one_line(subject), tuple(found))

    def attachments(
        self, parent: OlePath, codepage: str, depth: int, found: list[Attachment]
    ) -> None:
        """Append the attachments of the message stored at `parent`; embedded messages are
        opened (to MAX_DEPTH), not listed, as forwarded emails are in .eml files."""
        for storage in self.attached.get(parent, []):  # in attachment-number order
            self.count.add()
            props = self.properties(storage, ATTACHMENT_HEADER) or {}
            embedded = (*storage, ATTACH_EMBEDDED)
            if (
                _long(props, PID_ATTACH_METHOD) == ATTACH_EMBEDDED_MESSAGE
                and embedded in self.storages
            ):
                if depth >= MAX_DEPTH:
                    raise _bad(f"emails forwarded more than {MAX_DEPTH} deep")
                inner = self.properties(embedded, EMBEDDED_HEADER) or {}
                self.attachments(embedded, _codepage(inner, codepage), depth + 1, found)
                continue
            name = self.text(storage, PID_ATTACH_LONG_NAME, codepage) or self.text(
                storage, PID_ATTACH_NAME, codepage
            )
            data = self.read((*storage, ATTACH_DATA)) or b""  # none: by reference or OLE object
            found.append(_attachment(name, data))

    def read(self, path: OlePath) -> bytes | None:
        """A stream's bytes (None if absent), refused if it claims more than the file holds."""
        if not self.ole.exists(list(path)) or self.ole.get_type(list(path)) != olefile.STGTY_STREAM:
            return None
        size = self.ole.get_size(list(path))
        if size > self.left:
            raise _bad("damaged Outlook file: a stream is larger than the file")
        data = self.ole.openstream(list(path)).read(size)
        if len(data) != size:
            raise _bad("truncated: a stream is shorter than declared")
        self.left -= size
        return bytes(data)

    def properties(self, path: OlePath, header: int) -> dict[int, bytes] | None:
        """The fixed-size property entries of the object at `path`: tag -> 8-byte value."""
        raw = self.read((*path, PROPERTIES))
        if raw is None:
            return None
        if len(raw) < header:
            raise _bad("damaged Outlook file: property table too short")
        entries = range(header, len(raw) - 15, 16)
        return {struct.unpack_from("<I", raw, at)[0]: raw[at + 8 : at + 16] for at in entries}

    def text(self, path: OlePath, pid: int, codepage: str) -> str:
        """A string property: the Unicode stream (001F) if present, else the 8-bit one (001E)."""
        stream = f"__substg1.0_{pid:04X}"
        wide = self.read((*path, stream + "001F"))
        if wide is not None:
            return wide.decode("utf-16-le", errors="replace").rstrip("\x00")
        narrow = self.read((*path, stream + "001E"))
        return "" if narrow is None else narrow.decode(codepage, errors="replace").rstrip("\x00")


def _long(props: dict[int, bytes], pid: int) -> int | None:
    value = props.get(pid << 16 | PT_LONG)
    return None if value is None else int.from_bytes(value[:4], "little")


def _systime(props: dict[int, bytes], pid: int) -> dt.datetime | None:
    """A PT_SYSTIME (FILETIME: 100 ns steps since 1601, UTC) as naive UTC; odd values None."""
    value = props.get(pid << 16 | PT_SYSTIME)
    if value is None:
        return None
    try:
        stamp = FILETIME_EPOCH + dt.timedelta(microseconds=int.from_bytes(value, "little") // 10)
    except OverflowError:
        return None
    return _plausible(stamp)


def _codepage(props: dict[int, bytes], default: str = "cp1252") -> str:
    """The Python codec for a message's 8-bit strings (Outlook's default is Windows-1252)."""
    number = _long(props, PID_MESSAGE_CODEPAGE) or _long(props, PID_INTERNET_CODEPAGE)
    if number is None:
        return default
    name = CODEPAGES.get(number, f"cp{number}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return default
