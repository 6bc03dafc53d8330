"""Emails in: .eml and .msg files give their sender, sent date, subject and attachments; damaged
or hostile files give one Rejected(bad-message) with a one-line reason, and nothing else."""

from __future__ import annotations

import datetime as dt
import io
import random
import time
from email.message import EmailMessage
from pathlib import Path

import olefile
import pytest

from formtool.errors import IssueCode, Rejected
from formtool.read.message import MAX_ATTACHMENTS, Attachment, Message, read_message

from conftest import missing
from msgfile import Attached, Msg, msg_bytes, set_stream_size, write_cfb

OUTLOOK = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "outlook-msg"
SENDER = "Auditor A1 (synthetic) <a1@example.invalid>"
SENT = dt.datetime(2026, 11, 20, 9, 30, 15)  # naive UTC
SUBJECT = "Audit return · case C-0001 (synthetic) é"
DOCX = b"PK\x03\x04 synthetic docx " + bytes(range(256)) * 20  # > 4096: a chain of sectors
PNG = b"\x89PNG\r\n\x1a\n synthetic image"
DOCX_TYPE = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
FORM = Attachment("Audit A1 · résumé.docx", DOCX)
IMAGE = Attachment("signature.png", PNG)


def rejection(data: bytes, suffix: str) -> str:
    """The reason `read_message` gives for refusing `data`; it must be bad-message, one line."""
    with pytest.raises(Rejected) as caught:
        read_message(data, suffix)
    assert caught.value.code is IssueCode.bad_message
    assert caught.value.value.isprintable() and caught.value.value, caught.value.value
    return caught.value.value


# ---- .eml ---------------------------------------------------------------------------------


def eml(*attachments: Attachment | EmailMessage, subject: str = SUBJECT) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = '"Auditor A1 (synthetic)" <a1@example.invalid>'
    msg["To"] = "qa-team@example.invalid"
    msg["Subject"] = subject
    msg["Date"] = "Fri, 20 Nov 2026 10:30:15 +0100"  # 09:30:15 UTC
    msg.set_content("The completed form is attached. (synthetic)")
    for item in attachments:
        if isinstance(item, EmailMessage):
            msg.add_attachment(item)  # message/rfc822: a forwarded email
        elif item.name.endswith(".png"):
            msg.add_attachment(item.data, "image", "png", filename=item.name)
        else:
            msg.add_attachment(item.data, *DOCX_TYPE, filename=item.name)
    return msg


def test_eml_gives_sender_date_subject_and_attachments():
    message = read_message(eml(FORM, IMAGE).as_bytes(), ".EML")
    assert message == Message(SENDER, SENT, SUBJECT, (FORM, IMAGE))


def test_eml_finds_the_form_inside_a_forwarded_email():
    forwarded = eml(FORM, subject="Fwd: return (synthetic)")
    message = read_message(eml(IMAGE, forwarded).as_bytes(), ".eml")
    assert message.attachments == (IMAGE, FORM)


def test_eml_opens_forwards_three_deep_and_refuses_four():
    inner = eml(FORM)
    for _ in range(3):
        inner = eml(inner)
    assert read_message(inner.as_bytes(), ".eml").attachments == (FORM,)
    assert rejection(eml(inner).as_bytes(), ".eml") == "emails forwarded more than 3 deep"


def test_eml_attachment_without_a_file_name_is_kept_unnamed():
    msg = eml()
    msg.add_attachment(b"no name", "application", "octet-stream")
    assert read_message(msg.as_bytes(), ".eml").attachments == (Attachment("", b"no name"),)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Fri, 20 Nov 2026 09:30:15 -0000", SENT),  # zone unknown: taken as UTC
        ("Fri, 20 Nov 2026 04:30:15 -0500", SENT),
        ("next Tuesday", None),
        ("Mon, 1 Jan 1900 00:00:00 +0000", None),  # a broken clock, not a send date
        (None, None),
    ],
)
def test_eml_dates_become_naive_utc_or_none(header, expected):
    msg = eml(FORM)
    del msg["Date"]
    if header is not None:
        msg["Date"] = header
    assert read_message(msg.as_bytes(), ".eml").sent_at == expected


def test_eml_sender_and_subject_are_one_line():
    raw = (
        eml(FORM)
        .as_bytes()
        .replace(b"Subject: ", b"Subject: =?utf-8?q?line_one=0Aline=09two?= ", 1)
    )
    message = read_message(raw, ".eml")
    assert message.subject.startswith("line one line two ")
    assert message.sender == SENDER


def test_eml_header_parsing_stays_fast_on_a_hostile_subject():
    raw = b"Subject: " + b"=?utf-8?q?a?= " * 30_000 + b"\nFrom: x@example.invalid\n\nbody"
    started = time.perf_counter()
    message = read_message(raw, ".eml")
    assert time.perf_counter() - started < 2  # uncut, Python's parser takes over 10 s
    assert message.sender == "x@example.invalid" and len(message.subject) <= 1000


def test_random_bytes_and_pdfs_are_not_emails():
    noise = random.Random(1234).randbytes(4000)
    assert rejection(noise, ".eml") == "no email headers"
    assert rejection(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", ".eml") == (
        "no email headers"
    )
    assert rejection(b"", ".eml") == "no email headers"


def test_eml_with_too_many_attachments_is_refused():
    msg = eml(*[Attachment(f"form{i}.docx", b"x") for i in range(MAX_ATTACHMENTS + 1)])
    assert rejection(msg.as_bytes(), ".eml") == "more than 50 attachments"


def test_eml_with_thousands_of_mime_parts_is_refused_before_parsing():
    parts = b"".join(b"--B\nContent-Type: text/plain\n\nx\n" for _ in range(3000))
    raw = b"From: a@example.invalid\nContent-Type: multipart/mixed; boundary=B\n\n" + parts
    assert rejection(raw + b"--B--\n", ".eml") == "more than 2,000 MIME boundaries"


def test_eml_nested_past_the_parser_recursion_limit():
    raw = b"From: a@example.invalid\n" + b"Content-Type: message/rfc822\n\n" * 2000 + b"body"
    assert rejection(raw, ".eml") == "damaged email: parts nested too deeply"


def test_eml_attachment_headers_python_cannot_parse():
    raw = (
        b"From: a1@example.invalid\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        b"Content-Disposition: attachment; filename*\n\nform\n--B--\n"
    )
    assert rejection(raw, ".eml") == "damaged email: unreadable attachment headers"


def test_other_suffixes_are_refused():
    assert rejection(b"anything", ".pdf") == "'.pdf' is not .eml or .msg"


# ---- the test .msg writer ------------------------------------------------------------------


def in_order(ole: olefile.OleFileIO, sid: int) -> list[str]:
    """Names of a sibling tree in search order (left subtree, node, right subtree)."""
    if sid == olefile.NOSTREAM:
        return []
    entry = ole.direntries[sid]
    return [*in_order(ole, entry.sid_left), entry.name, *in_order(ole, entry.sid_right)]


def test_cfb_writer_output_reads_back_strictly_with_olefile():
    streams = {
        "tiny": b"x",
        "empty": b"",
        "just_below_cutoff": b"a" * 4095,
        "at_cutoff": b"b" * 4096,
        "big": bytes(range(256)) * 100,
        **{f"folder/inner/s{i}": f"stream {i}".encode() for i in range(12)},
        "folder/Z": b"z",
        "folder/aa": b"aa",
    }
    data = write_cfb(streams)
    assert len(data) % 512 == 0
    with olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT) as ole:
        assert ole.parsing_issues == []
        assert {"/".join(p) for p in ole.listdir()} == set(streams)
        for path, content in streams.items():
            assert ole.openstream(path).read() == content
        for entry in ole.direntries:
            if entry is not None and entry.entry_type in (
                olefile.STGTY_STORAGE,
                olefile.STGTY_ROOT,
            ):
                names = in_order(ole, entry.sid_child)
                assert names == sorted(names, key=lambda n: (len(n), n.upper()))


def test_msg_writer_lays_out_an_outlook_message():
    data = msg_bytes(Msg("s", attachments=(Attached("a.docx", b"a"),)))
    with olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT) as ole:
        assert ole.exists("__properties_version1.0")
        assert ole.openstream("__attach_version1.0_#00000000/__substg1.0_3707001F").read() == (
            "a.docx".encode("utf-16-le")
        )
        assert ole.get_size("__properties_version1.0") % 16 == 0  # 32-byte header, entries


# ---- .msg ---------------------------------------------------------------------------------

RETURN = Msg(
    SUBJECT,
    "Auditor A1 (synthetic)",
    "a1@example.invalid",
    SENT,
    attachments=(Attached(FORM.name, FORM.data), Attached(IMAGE.name, IMAGE.data)),
)


def test_msg_gives_sender_date_subject_and_attachments():
    assert read_message(msg_bytes(RETURN), ".MSG") == Message(SENDER, SENT, SUBJECT, (FORM, IMAGE))


def test_msg_with_8bit_strings_short_names_and_only_a_delivery_time():
    msg = Msg(
        "Caf\xe9 return (synthetic)",
        "Auditor A1 (synthetic)",
        "a1@example.invalid",
        delivered_at=SENT,
        ansi=True,
        attachments=(
            Attached(short_name="FORM~1.DOC", data=b"doc"),
            Attached("Caf\xe9.xlsx", b"xlsx"),
        ),
    )
    message = read_message(msg_bytes(msg), ".msg")
    assert (message.subject, message.sent_at) == ("Caf\xe9 return (synthetic)", SENT)
    assert message.attachments == (
        Attachment("FORM~1.DOC", b"doc"),
        Attachment("Caf\xe9.xlsx", b"xlsx"),
    )


def test_msg_without_sender_or_date():
    message = read_message(msg_bytes(Msg("only a subject")), ".msg")
    assert message == Message("", None, "only a subject", ())


@pytest.mark.parametrize(
    "stamp", [dt.datetime(1601, 1, 1), dt.datetime(1970, 1, 1), dt.datetime(9999, 12, 31)]
)
def test_msg_odd_dates_are_none(stamp):
    assert read_message(msg_bytes(Msg("s", sent_at=stamp)), ".msg").sent_at is None


def test_msg_finds_forms_in_embedded_emails_to_three_deep():
    inner = Msg("forwarded (synthetic)", attachments=(Attached(FORM.name, FORM.data),))
    for _ in range(2):
        inner = Msg("fwd", attachments=(Attached("fwd.msg", message=inner),))
    outer = Msg(
        "outer", attachments=(Attached(IMAGE.name, IMAGE.data), Attached("fwd.msg", message=inner))
    )
    assert read_message(msg_bytes(outer), ".msg").attachments == (IMAGE, FORM)
    deeper = Msg("outer", attachments=(Attached("fwd.msg", message=outer),))
    assert rejection(msg_bytes(deeper), ".msg") == "emails forwarded more than 3 deep"


def test_msg_with_too_many_attachments_is_refused():
    many = tuple(Attached(f"f{i}.docx", b"x") for i in range(MAX_ATTACHMENTS + 1))
    assert rejection(msg_bytes(Msg("many", attachments=many)), ".msg") == (
        "more than 50 attachments"
    )


# ---- real Outlook files --------------------------------------------------------------------


def outlook_file(name: str) -> bytes:
    if not OUTLOOK.is_dir():
        missing(f"real Outlook test files not found at {OUTLOOK} (shared fixtures)")
    return (OUTLOOK / name).read_bytes()


def test_real_outlook_message_with_two_attachments():
    message = read_message(outlook_file("unicode.msg"), ".msg")
    assert message.subject == "Test for TIF files"
    assert message.sent_at == dt.datetime(2013, 11, 18, 8, 26, 24)  # PidTagClientSubmitTime
    assert message.sender.count("<") == 1 and message.sender.endswith("@gmail.com>")
    assert [(a.name, len(a.data), a.data[:4]) for a in message.attachments] == [
        ("import OleFileIO.tif", 969_674, b"II*\x00"),  # little-endian TIFF images
        ("raised value error.tif", 1_033_142, b"II*\x00"),
    ]


def test_real_outlook_message_never_sent_has_no_date():
    message = read_message(outlook_file("strangeDate.msg"), ".msg")
    # saved as a draft: no submit or delivery time, no sender, no attachment
    assert message == Message("", None, "MSG Test File", ())


# ---- damaged and hostile files -------------------------------------------------------------


def test_truncated_msg():
    data = msg_bytes(RETURN)
    assert rejection(data[: len(data) // 2], ".msg").startswith("truncated")
    assert rejection(data[:300], ".msg").startswith("truncated")


def test_random_bytes_are_not_an_outlook_message():
    noise = random.Random(1234).randbytes(4000)
    assert rejection(noise, ".msg") == "not an Outlook message: no OLE header"
    assert rejection(b"", ".msg") == "not an Outlook message: no OLE header"


def test_ole_file_that_is_not_a_message():
    data = write_cfb({"WordDocument": b"an old Word file (synthetic)", "1Table": b"t"})
    assert rejection(data, ".msg") == "not an Outlook message: no message properties"


@pytest.mark.parametrize("size", [0x7FFF_FFFF, 0xFFFF_FFF0])
def test_attachment_stream_declared_huge(size):
    data = set_stream_size(msg_bytes(RETURN), "__substg1.0_37010102", size)
    assert rejection(data, ".msg") == "damaged Outlook file: a stream is larger than the file"


def test_header_counting_more_tables_than_the_file_holds():
    data = bytearray(msg_bytes(RETURN))
    data[0x2C:0x30] = (1_000_000).to_bytes(4, "little")  # FAT sectors
    assert rejection(bytes(data), ".msg") == "damaged Outlook file: tables larger than the file"


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One byte-level mutation: bits flipped, bytes inserted or deleted, or the tail cut off."""
    out = bytearray(data)
    at = rng.randrange(len(out))
    operation = rng.choice(("flip", "insert", "delete", "truncate"))
    if operation == "flip":
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif operation == "insert":
        out[at:at] = rng.randbytes(rng.randint(1, 64))
    elif operation == "delete":
        del out[at : at + rng.randint(1, 64)]
    else:
        del out[at:]
    return bytes(out)


@pytest.mark.parametrize("suffix", [".msg", ".eml"])
def test_mutated_files_give_a_message_or_one_rejection(suffix):
    # small attachments, so that most mutations land in the structure, not in the data
    form, image = Attachment("form.docx", b"PK synthetic form"), Attachment("f.png", PNG)
    if suffix == ".msg":
        files = (Attached(form.name, form.data), Attached(image.name, image.data))
        fwd = Attached("fwd.msg", message=Msg("fwd (synthetic)", attachments=files))
        original = msg_bytes(
            Msg(
                SUBJECT,
                "Auditor A1 (synthetic)",
                "a1@example.invalid",
                SENT,
                attachments=(*files, fwd),
            )
        )
    else:
        original = eml(form, image, eml(form)).as_bytes()
    rng = random.Random(1234)
    outcomes = {"read": 0, "rejected": 0}
    for _ in range(300):
        try:
            result = read_message(mutate(original, rng), suffix)
        except Rejected as exc:
            assert exc.code is IssueCode.bad_message
            assert exc.value.isprintable() and exc.value
            outcomes["rejected"] += 1
        else:
            assert isinstance(result, Message)
            outcomes["read"] += 1
    assert outcomes["read"], outcomes
