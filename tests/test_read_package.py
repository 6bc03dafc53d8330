"""The package layer: what a returned file really is, the main part found by relationships
as Office finds it, and a refusal with its own code wherever the package could be read two
ways or leads outside itself. Every pattern of tests/package_patterns.py is read or refused
as it says; the rest are the edges of those rules."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from hostile_files import OLE, member, with_member
from package_patterns import (
    PATTERNS,
    Pattern,
    case_twin,
    comment_with_end_signature,
    encrypted_entry,
    label_protected,
    main_target,
    members,
    password_protected,
    repack,
    strict,
)

from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.errors import IssueCode, Rejected
from formtool.generate import render
from formtool.read import read_bytes
from formtool.read.ooxml import Package

from conftest import answers_for, date_keys, make_cases


@pytest.fixture(scope="module")
def returns(tmp_path_factory) -> dict[str, bytes]:
    """A filled CSC return of each kind."""
    form = get_form("csc")
    case = make_cases(tmp_path_factory.mktemp("cases"), form, 1)[0]
    answers = answers_for(form)
    return {
        "docx": fill_docx(render(form, case, "docx"), answers),
        "xlsx": fill_xlsx(render(form, case, "xlsx"), answers, date_keys(form)),
    }


@pytest.fixture(scope="module")
def shown(returns) -> dict[str, dict[str, str]]:
    """What each untouched return reads as: what Office shows of it."""
    return {kind: read_bytes(data, f".{kind}").values for kind, data in returns.items()}


def refusal(data: bytes, suffix: str) -> Rejected:
    with pytest.raises(Rejected) as caught:
        read_bytes(data, suffix)
    return caught.value


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.name}-{p.takes}")
def test_each_pattern_is_read_as_office_shows_it_or_refused(returns, shown, pattern: Pattern):
    data = pattern.build(returns[pattern.takes])
    if pattern.code is None:
        assert read_bytes(data, pattern.saved_as()).values == shown[pattern.takes]
        return
    refused = refusal(data, pattern.saved_as())
    message = refused.issue(f"return{pattern.saved_as()}").message
    assert (refused.code, pattern.says in message) == (pattern.code, True), message
    assert "ZipInfo" not in message and "\n" not in message


def test_messages_say_what_the_file_is_and_what_to_ask(returns):
    docx = returns["docx"]
    doc = next(p for p in PATTERNS if p.name == "doc-named-docx").build(docx)
    assert refusal(doc, ".docx").issue("return.docx").message == (
        "[return.docx] is a Word 97-2003 document (.doc), which formtool cannot read as a form. "
        "Ask the auditor to send the completed form they were sent, saved as Word Document "
        "(.docx)."
    )
    password = refusal(password_protected(docx), ".docx").issue("return.docx").message
    assert password.startswith("[return.docx] is encrypted with a password, so it cannot be")
    assert "Encrypt with Password: delete it) and save it as Word Document (.docx)." in password
    label = refusal(label_protected(returns["xlsx"]), ".xlsx").issue("return.xlsx").message
    assert "is encrypted by a sensitivity label or rights management (IRM)" in label
    assert "Home > Sensitivity" in label and "password" not in label
    xlsb = next(p for p in PATTERNS if p.name == "xlsb-named-xlsx").build(returns["xlsx"])
    assert refusal(xlsb, ".xlsx").code is IssueCode.other_format  # was "contains macros"


def test_strict_is_refused_naming_the_format_to_save_as(returns):
    for kind, words in (("docx", "Word Document (.docx)"), ("xlsx", "Excel Workbook (.xlsx)")):
        message = refusal(strict(returns[kind]), f".{kind}").issue("r").message
        assert message == (
            "[r] was saved as Strict Open XML, which formtool does not read. Ask the auditor "
            f"to use File > Save As, choose {words} (not Strict Open XML) and send it again."
        )


def test_strict_main_part_under_transitional_relationships_is_still_strict(returns):
    """Only the namespaces changed: the main part's own namespace says Strict."""
    data = strict(returns["docx"])
    rels = member(returns["docx"], "_rels/.rels")
    assert refusal(with_member(data, "_rels/.rels", rels), ".docx").code is IssueCode.strict_ooxml


def test_the_main_part_is_the_relationship_target(returns):
    elsewhere = next(p for p in PATTERNS if p.name == "main-elsewhere" and p.takes == "docx")
    package = Package(elsewhere.build(returns["docx"]), "docx")
    assert package.main_part() == "word/main.xml"
    assert package.related("word/main.xml", "footer") == ["word/footer1.xml"]
    workbook = main_target(returns["xlsx"], "/xl/workbook.xml")  # as openpyxl writes it
    assert Package(workbook, "xlsx").main_part() == "xl/workbook.xml"


def test_part_names_are_matched_without_case(returns):
    """Office finds WORD/Document.XML by any spelling; only two spellings are refused."""
    parts = members(returns["docx"])
    renamed = repack(
        returns["docx"],
        lambda name, content: None if name == "word/document.xml" else content,
        (("Word/Document.XML", parts["word/document.xml"]),),
    )
    package = Package(renamed, "docx")
    assert package.main_part() == "Word/Document.XML"
    assert package.read("word/document.xml") == parts["word/document.xml"]
    twin = refusal(case_twin(returns["docx"]), ".docx")
    assert (twin.field, twin.value) == (
        "word/document.xml",
        "the file holds word/document.xml and WORD/DOCUMENT.XML, one part name to Office",
    )


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("document.xml", "word/document.xml"),
        ("./media/../document.xml", "word/document.xml"),
        ("/word/document.xml", "word/document.xml"),
        ("../customXml/item1.xml", "customXml/item1.xml"),
        ("/customXml/item1.xml", "customXml/item1.xml"),
    ],
)
def test_targets_inside_the_package_resolve(returns, target, name):
    assert Package(returns["docx"], "docx").target("word/document.xml", target) == name


@pytest.mark.parametrize(
    ("target", "mode"),
    [
        ("footer1.xml", "External"),
        ("../../footer1.xml", ""),
        ("/../footer1.xml", ""),
        ("file:///etc/passwd", ""),
        ("mailto:qa@example.org", ""),
        ("C:/forms/footer1.xml", ""),
        ("\\\\server\\share\\footer1.xml", ""),
        ("//server/share/footer1.xml", ""),
    ],
)
def test_targets_outside_the_package_are_refused(returns, target, mode):
    with pytest.raises(Rejected) as caught:
        Package(returns["docx"], "docx").target("word/document.xml", target, mode)
    assert (caught.value.code, caught.value.value, caught.value.field) == (
        IssueCode.outside_package,
        target,
        "word/_rels/document.xml.rels",
    )


def test_external_hyperlinks_are_not_followed_so_not_refused(returns):
    link = (
        b'<Relationship Id="rId90" Target="https://example.org/guidance" TargetMode="External" '
        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"/>'
    )
    rels = member(returns["docx"], "word/_rels/document.xml.rels")
    linked = rels.replace(b"</Relationships>", link + b"</Relationships>")
    data = with_member(returns["docx"], "word/_rels/document.xml.rels", linked)
    assert read_bytes(data, ".docx").values == read_bytes(returns["docx"], ".docx").values


def test_end_records_in_the_comment(returns):
    """A comment may hold the end record's signature: the real record is the one whose
    comment reaches the end of the file and whose directory ends where it starts. A comment
    holding a whole second directory and record is a second reading of the file."""
    data = comment_with_end_signature(returns["docx"])
    assert read_bytes(data, ".docx").values == read_bytes(returns["docx"], ".docx").values
    plain = returns["docx"]
    end = plain.rfind(b"PK\x05\x06")
    size, offset = struct.unpack_from("<II", plain, end + 12)
    empty = b"PK\x05\x06" + bytes(18)  # a record of no directory: not a reading
    assert Package(plain[: end + 20] + struct.pack("<H", 22) + empty, "docx").main_part()
    copy_at = end + 22
    second = plain[end : end + 12] + struct.pack("<IIH", size, copy_at, 0)
    comment = plain[offset : offset + size] + second
    forged = plain[: end + 20] + struct.pack("<H", len(comment)) + comment
    with pytest.raises(Rejected) as caught:
        Package(forged, "docx")
    assert (caught.value.code, caught.value.value) == (
        IssueCode.ambiguous,
        "two end-of-archive records",
    )


def test_encrypted_entry_is_said_plainly(returns):
    refused = refusal(encrypted_entry(returns["xlsx"]), ".xlsx")
    assert refused.issue("r.xlsx").message.startswith(
        "[r.xlsx] is damaged (part xl/workbook.xml is encrypted). Ask the auditor"
    )


def test_broken_parts_are_described_without_python_internals(returns):
    """Every damaged-part reason is words, not a repr of zipfile's objects or bytes."""
    data = returns["docx"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    renamed = bytearray(data)
    renamed[info.header_offset + 30] ^= 0x20  # the local header names the part differently
    scrambled = bytearray(data)
    for i in range(start + 10, start + 60):
        scrambled[i] ^= 0x5A
    crc = bytearray(data)
    central = data.find(b"PK\x01\x02" + data[info.header_offset + 4 : info.header_offset + 6])
    while data[central + 46 : central + 46 + 17] != b"word/document.xml":
        central = data.find(b"PK\x01\x02", central + 4)
    crc[central + 16] ^= 0xFF
    crc[info.header_offset + 14] ^= 0xFF
    for broken, words in (
        (
            renamed,
            "word/document.xml: the zip directory and the part's own header name it differently",
        ),
        (scrambled, "word/document.xml: its compressed data is corrupt"),
        (crc, "word/document.xml: its checksum does not match its contents"),
    ):
        refused = refusal(bytes(broken), ".docx")
        assert (refused.code, refused.value) == (IssueCode.damaged, words)


def test_damaged_ole_files_and_text_fragments_keep_their_old_codes():
    """An OLE header without a readable directory could be either; a line of text without
    a line end may be a cut-off file: neither is named more precisely than it can be."""
    assert refusal(OLE + b"\0" * 4096, ".docx").value == (
        "password-protected or an old binary Office file"
    )
    hostile = bytearray(password_protected(b"x" * 10))
    struct.pack_into("<I", hostile, 0x2C, 0xFFFFFF)  # more FAT sectors than the file holds
    assert refusal(bytes(hostile), ".docx").code is IssueCode.encrypted
    assert refusal(b"Dear QA team, please find attached...", ".docx").code is IssueCode.not_a_zip


def test_files_named_as_other_formats(returns):
    """A file not named as a form is what its name says, unless it is a form or a photo."""
    assert read_bytes(returns["docx"], ".bin").values == read_bytes(returns["docx"], ".docx").values
    assert refusal(b"%PDF-1.7", ".pdf").code is IssueCode.unsupported_type
    photo = next(p for p in PATTERNS if p.name == "jpeg").build(b"")
    assert refusal(photo, ".jpg").issue("scan.jpg").message == (
        "[scan.jpg] is a photo (JPEG): a photo or scan of a form cannot be read. Ask the auditor "
        "for the completed form file itself, saved as Word Document (.docx) or Excel Workbook "
        "(.xlsx)."
    )


def test_zips_that_are_not_office_files(returns):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("scans/form.pdf", b"%PDF-1.7")
    assert refusal(out.getvalue(), ".docx").value == "a zip archive (.zip)"
    unrelated = with_member(returns["docx"], "_rels/.rels", b"<Relationships/>")
    assert (
        refusal(unrelated, ".docx")
        .issue("r")
        .message.startswith("[r] has no Word document inside.")
    )


def test_relationships_of_one_part_are_bounded(returns):
    link = (
        '<Relationship Id="rId{}" Target="https://example.org/" TargetMode="External" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"/>'
    )
    many = "".join(link.format(n) for n in range(10_001))
    rels = member(returns["docx"], "word/_rels/document.xml.rels")
    data = with_member(
        returns["docx"],
        "word/_rels/document.xml.rels",
        rels.replace(b"</Relationships>", many.encode() + b"</Relationships>"),
    )
    refused = refusal(data, ".docx")
    assert (refused.code, refused.value) == (
        IssueCode.zip_bomb,
        "word/_rels/document.xml.rels: over 10,000 links",
    )
