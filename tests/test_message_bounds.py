"""Every email is bounded, whatever it holds: what makes Python's email parser slow or big is
counted before the parser sees a byte, in any line-ending convention, and refused with a plain
reason; real replies still read. Attachments keep their names as one name, type included.

The shape builders are plain functions `(count, ending) -> bytes`, so bench/email_bounds.py
measures at full size the very emails tested here small (with small limits injected).
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.feedparser
import email.policy
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from formtool import store
from formtool.errors import IssueCode, Rejected
from formtool.read import message
from formtool.read.batch import import_file, shown_name
from formtool.read.message import Attachment, read_message

from msgfile import Attached, Msg, msg_bytes

ENDINGS = {"CRLF": b"\r\n", "LF": b"\n", "CR": b"\r"}
FROM = b"From: Auditor A1 (synthetic) <a1@example.invalid>"
DOCX_TYPE = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SMALL = 50  # each limit, injected: a shape of SMALL + 10 is over it


# ---- the shapes: plain functions (count, line ending) -> the .eml file's bytes -----------


def header_lines(count: int, eol: bytes = b"\n") -> bytes:
    """An email whose header has `count` short extra lines (the issue's 2.3M in 18 MB)."""
    return FROM + eol + (b"X-Ab: 1" + eol) * count + eol + b"body" + eol


def soft_breaks(count: int, eol: bytes = b"\n") -> bytes:
    """A quoted-printable attachment of `count` soft breaks ("=" at a line's end): no data."""
    head = (
        b"Content-Type: multipart/mixed; boundary=B",
        b"",
        b"--B",
        b"Content-Type: " + DOCX_TYPE,
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Disposition: attachment; filename=form.docx",
        b"",
    )
    return eol.join((FROM, *head)) + eol + (b"=" + eol) * count + b"--B--" + eol


def newline_run(count: int, eol: bytes = b"\n") -> bytes:
    """An email whose body is `count` empty lines."""
    return FROM + eol + b"Subject: s" + eol + eol + eol * count


def mime_parts(count: int, eol: bytes = b"\n") -> bytes:
    """A multipart email of `count` one-line parts (the issue's 1M, CR-only, in 6 MB)."""
    head = FROM + eol + b"Content-Type: multipart/mixed; boundary=B" + eol + eol
    return head + (b"--B" + eol + eol + b"x" + eol) * count + b"--B--" + eol


def nested_sections(count: int, eol: bytes = b"\n") -> bytes:
    """`count` multipart sections, each inside the one before: every line of the innermost is
    checked against all their boundaries."""
    out = [FROM + eol + b"Content-Type: multipart/mixed; boundary=B0" + eol + eol]
    for level in range(1, count):
        out.append(
            b"--B%d%sContent-Type: multipart/mixed; boundary=B%d%s"
            % (level - 1, eol, level, eol * 2)
        )
    return b"".join([*out, b"--B%d%s%sinnermost%s" % (count - 1, eol, eol, eol)])


def encoded_boundary(inner: bytes, eol: bytes = b"\n") -> bytes:
    """An email whose multipart type and boundary hide in an encoded word (`=?..?q?..?=`), which
    Python's header parser decodes and no count of "boundary" sees, around `inner` (a part)."""
    content_type = b"Content-Type: =?us-ascii?q?multipart/mixed;_bo=75ndary=3DB?="
    return eol.join((FROM, content_type, b"", b"--B", inner, b"--B--", b""))


def attached_as(raw_name: bytes, eol: bytes = b"\n") -> bytes:
    """An email carrying one small attachment under a raw Content-Disposition file name."""
    return eol.join(
        (
            FROM,
            b"Content-Type: multipart/mixed; boundary=B",
            b"",
            b"--B",
            b"Content-Type: " + DOCX_TYPE,
            b"Content-Disposition: attachment; " + raw_name,
            b"",
            b"synthetic",
            b"--B--",
            b"",
        )
    )


def real_reply(size: int, eol: bytes = b"\r\n", seed: int = 19) -> bytes:
    """A reply as mail programs write one: text and HTML bodies, and three attachments of random
    bytes in base64 at 76 characters a line, about `size` bytes in all."""
    rng = random.Random(seed)
    lines = [
        FROM,
        b"To: qa-team@example.invalid",
        b"Subject: Re: audit return (synthetic)",
        b"Date: Fri, 20 Nov 2026 10:30:15 +0000",
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/mixed; boundary="==outer=="',
        b"",
        b"--==outer==",
        b'Content-Type: multipart/alternative; boundary="==inner=="',
        b"",
        b"--==inner==",
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        b"The completed forms are attached.",
        b"",
        b"-- ",
        b"Auditor A1",
        b"--==inner==",
        b"Content-Type: text/html; charset=utf-8",
        b"",
        b"<p>The completed forms are attached.</p>",
        b"--==inner==--",
    ]
    for i in range(3):
        encoded = base64.encodebytes(rng.randbytes(size * 3 // 4 // 3)).splitlines()
        lines += [
            b"--==outer==",
            b"Content-Type: " + DOCX_TYPE,
            b"Content-Transfer-Encoding: base64",
            b'Content-Disposition: attachment; filename="CSC-A%d-202611.docx"' % i,
            b"",
            *encoded,
        ]
    return eol.join([*lines, b"--==outer==--", b""])


Shape = Callable[[int, bytes], bytes]
SHAPES: dict[str, tuple[Shape, str, str]] = {  # shape, the limit it crosses, the reason
    "header lines": (header_lines, "MAX_HEADER_LINES", "more than 50 header lines"),
    "soft breaks": (soft_breaks, "MAX_LINES", "more than 50 lines"),
    "run of newlines": (newline_run, "MAX_LINES", "more than 50 lines"),
    "MIME parts": (mime_parts, "MAX_BOUNDARIES", "more than 50 MIME boundaries"),
    "nested sections": (nested_sections, "MAX_MULTIPARTS", "more than 50 multipart sections"),
}
LIMITS = ("MAX_HEADER_LINES", "MAX_LINES", "MAX_BOUNDARIES", "MAX_MULTIPARTS")


# ---- helpers -----------------------------------------------------------------------------


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every piece Python's email parser is fed, by any route (its size); none if refused
    before parsing."""
    pieces: list[int] = []
    feed = email.feedparser.FeedParser.feed

    def counted(self: email.feedparser.FeedParser, data: str) -> None:
        pieces.append(len(data))
        feed(self, data)

    monkeypatch.setattr(email.feedparser.FeedParser, "feed", counted)
    return pieces


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for limit in LIMITS:
        monkeypatch.setattr(message, limit, SMALL)


def rejection(data: bytes, suffix: str = ".eml") -> str:
    with pytest.raises(Rejected) as caught:
        read_message(data, suffix)
    assert caught.value.code is IssueCode.bad_message
    return caught.value.value


# ---- refused before parsing --------------------------------------------------------------


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_costly_shape_is_refused_before_parsing_whatever_its_line_endings(
    shape: str, ending: str, small_limits: None, parsed: list[int]
) -> None:
    build, _, reason = SHAPES[shape]
    assert rejection(build(SMALL + 10, ENDINGS[ending])) == reason
    assert parsed == []


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_shape_within_its_limit_is_read(
    shape: str, ending: str, small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count is of what the parser will really do: just under a limit, the email is read
    (with the other limits out of the way, as a shape also has a few lines of each kind)."""
    build, limit, _ = SHAPES[shape]
    for other in LIMITS:
        if other != limit:
            monkeypatch.setattr(message, other, 10_000)
    read_message(build(SMALL - 10, ENDINGS[ending]), ".eml")


def test_the_issues_emails_are_refused_before_parsing_at_full_size(parsed: list[int]) -> None:
    """The four emails of issue 19, at their size, with the limits as shipped."""
    assert rejection(header_lines(2_300_000)) == "more than 100,000 header lines"
    assert rejection(soft_breaks(9_000_000)) == "more than 500,000 lines"
    assert rejection(newline_run(18_000_000)) == "more than 500,000 lines"
    assert rejection(mime_parts(1_000_000, b"\r")) == "more than 2,000 MIME boundaries"
    assert parsed == []


def test_colons_in_a_body_are_not_counted_as_header_lines(
    small_limits: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Colons are counted first, quickly; past the limit the lines are looked at, and a body's
    "at 10:30" is not a header line."""
    monkeypatch.setattr(message, "MAX_LINES", 10_000)
    body = b"".join(b"Seen at 10:30, visit %d\n" % i for i in range(SMALL + 10))
    raw = FROM + b"\nSubject: times\n\n" + body
    assert read_message(raw, ".eml").subject == "times"
    assert rejection(raw.replace(b"Seen at", b"Seen:")) == "more than 50 header lines"


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_boundary_hidden_in_an_encoded_word_is_not_a_multipart(ending: str) -> None:
    """Python's parser decodes `=?us-ascii?q?multipart/mixed;_boundary=3DB?=`; mail programs
    do not, and counting "boundary" could not bound what it nests: the email is one text part,
    its "attachment" part of the text."""
    eol = ENDINGS[ending]
    part = eol.join((b"Content-Disposition: attachment; filename=form.docx", b"", b"x"))
    raw = encoded_boundary(part, eol)
    assert b"boundary" not in raw.lower()
    assert read_message(raw, ".eml").attachments == ()


def test_emails_are_parsed_as_email_message_from_bytes_parses_them() -> None:
    """Fed piece by piece from the bytes, the parse is Python's own, also where a line ending
    falls across two pieces."""
    for eol in ENDINGS.values():
        reply = real_reply(60_000, eol)
        pad = next(
            b"X-Pad: " + b"p" * n + eol
            for n in range(100)
            if (b"X-Pad: " + b"p" * n + eol + reply).startswith(eol, message.PARSE_CHUNK - 1)
        )
        ours = message._parse(pad + reply)
        python = email.message_from_bytes(pad + reply, policy=message._POLICY)
        assert ours.as_bytes() == python.as_bytes()
        assert [p.get_payload(decode=True) for p in ours.walk()] == [
            p.get_payload(decode=True) for p in python.walk()
        ]


# ---- real replies still read ---------------------------------------------------------------


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_the_largest_real_reply_reads_with_the_limits_as_shipped(ending: str) -> None:
    """19 MB, 270,000 lines of base64 (at the file size limit): read whole."""
    raw = real_reply(19_000_000, ENDINGS[ending])
    assert len(raw) <= message.MAX_ATTACHMENT_BYTES
    names = [a.name for a in read_message(raw, ".eml").attachments]
    assert names == ["CSC-A0-202611.docx", "CSC-A1-202611.docx", "CSC-A2-202611.docx"]


# ---- attachment names ----------------------------------------------------------------------

LONG = "Audit return for the team " + "x" * 300 + " CSC-A1-202611.docx"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b'filename="forms/CSC-A1.docx"', "forms_CSC-A1.docx"),
        (b'filename="C:\\\\Users\\\\a1\\\\CSC-A1.docx"', "C:_Users_a1_CSC-A1.docx"),
        (b"filename*=utf-8''forms%2FCSC-A1.docx", "forms_CSC-A1.docx"),
    ],
)
def test_an_attachment_name_with_a_path_separator_stays_one_name(raw: bytes, name: str) -> None:
    assert [a.name for a in read_message(attached_as(raw), ".eml").attachments] == [name]


def test_a_long_rfc2231_name_is_cut_in_the_middle_keeping_its_type() -> None:
    raw = attached_as(b"filename*=utf-8''" + LONG.replace(" ", "%20").encode())
    (attachment,) = read_message(raw, ".eml").attachments
    assert len(attachment.name) == message.MAX_NAME_CHARS
    assert attachment.name.startswith("Audit return for the team xxx")
    assert attachment.name.endswith("xxx CSC-A1-202611.docx") and "…" in attachment.name
    longest = f"{'x' * 251}.eml › {attachment.name}"  # as stored, after the longest email name
    assert len(longest) <= 500  # the store keeps file names in a String(500)


def test_msg_attachment_names_are_kept_the_same_way() -> None:
    outlook = Msg("s", attachments=(Attached("forms/CSC-A1.docx", b"a"), Attached(LONG, b"b")))
    first, second = read_message(msg_bytes(outlook), ".msg").attachments
    assert first == Attachment("forms_CSC-A1.docx", b"a")
    assert len(second.name) == message.MAX_NAME_CHARS and second.name.endswith("202611.docx")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[store.Store]:
    db = store.open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield db
    db.engine.dispose()


def test_the_import_keeps_the_email_name_and_reads_the_attachment_as_a_form(
    db: store.Store, tmp_path: Path
) -> None:
    """`reply.eml › forms/CSC-A1.docx`, shown by its last path part, lost the email's name;
    a long name cut at its end lost `.docx`, so the form was skipped as "not a form"."""
    path = tmp_path / "reply.eml"
    shown = []
    for raw in (b'filename="forms/CSC-A1.docx"', b"filename*=utf-8''" + LONG.encode()):
        path.write_bytes(attached_as(raw.replace(b" ", b"%20")))
        (outcome,) = import_file(db, path, dt.date(2026, 11, 22))
        assert outcome.status == "rejected"  # read as a form: the synthetic bytes are no zip
        assert outcome.issues[0].code is not IssueCode.not_a_form
        shown.append(shown_name(outcome))
    assert shown[0] == "reply.eml › forms_CSC-A1.docx"
    assert shown[1].startswith("reply.eml › Audit return") and shown[1].endswith("202611.docx")
