"""Package-level patterns of returned files, for tests/test_read_package.py and later for a
LibreOffice oracle and a structure-aware fuzzer: what a file really is (a .doc, a PDF, a photo,
a password or a sensitivity label), how its relationships lead to the main part, and the
zip-level tricks that give one file two readings.

Each builder is `(data: bytes) -> bytes`: it takes a filled formtool return (.docx or .xlsx,
as `Pattern.takes` says) and gives the transformed file. `PATTERNS` lists each with the name
it is saved under, and either the code formtool must refuse it with (and words its message
must hold) or None: then formtool reads it, and what it stores is what Office shows, the
answers of the untouched return. Files of other formats are built small but shaped as their
programs write them (OLE streams, signatures, ODF's first `mimetype` entry); their content
is not a real document.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from formtool.errors import IssueCode

from msgfile import write_cfb

Edit = Callable[[str, bytes], bytes | None]  # (part name, bytes) -> new bytes, None: left out

TRANSITIONAL_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships"
OFFICE_DOCUMENT = TRANSITIONAL_REL + "/officeDocument"
MAIN_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
}
MAIN = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml"}
STRICT_NAMESPACES = (
    (
        b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        b"http://purl.oclc.org/ooxml/wordprocessingml/main",
    ),
    (
        b"http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        b"http://purl.oclc.org/ooxml/spreadsheetml/main",
    ),
    (TRANSITIONAL_REL.encode(), STRICT_REL.encode()),
)


@dataclass(frozen=True)
class Pattern:
    """One way a return can arrive, and what formtool must make of it."""

    name: str
    takes: str  # "docx" or "xlsx": the filled return the builder transforms
    build: Callable[[bytes], bytes]
    suffix: str = ""  # the name's suffix ("" keeps the input's)
    code: IssueCode | None = None  # refused with this; None: read, as the input's answers
    says: str = ""  # words the refusal's message holds

    def saved_as(self) -> str:
        return self.suffix or f".{self.takes}"


# ---- zip helpers -------------------------------------------------------------------------


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def repack(
    data: bytes,
    edit: Edit | None = None,
    extra: tuple[tuple[str, bytes], ...] = (),
    comment: bytes = b"",
) -> bytes:
    """The package with each part passed through `edit`, then `extra` parts appended (a name
    already present is written twice, as some zip tools do), and the zip comment set."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": meant
        for name, content in members(data).items():
            changed = edit(name, content) if edit else content
            if changed is not None:
                dst.writestr(name, changed)
        for name, content in extra:
            dst.writestr(name, content)
        dst.comment = comment
    return out.getvalue()


def kind_of(data: bytes) -> str:
    return "docx" if "word/document.xml" in members(data) else "xlsx"


def decoy(name: str, content: bytes) -> bytes:
    """A second main part that reads differently: every Word text becomes DECOY, every
    Excel defined name points at an empty cell."""
    if name.startswith("word/"):
        return re.sub(rb"(<w:t(?: [^>]*)?>)[^<]*(</w:t>)", rb"\1DECOY\2", content)
    return re.sub(rb"(<definedName [^>]*>[^<!]*!)\$[A-Z]+\$[0-9]+", rb"\1$Z$999", content)


def _set_attribute(xml: bytes, element: str, attribute: str, value: str) -> bytes:
    """`attribute` of the first `element` whose Type is officeDocument set to `value`."""
    pattern = rb"<%s\b[^>]*%s[^>]*>" % (element.encode(), re.escape(OFFICE_DOCUMENT.encode()))

    def change(match: re.Match[bytes]) -> bytes:
        tag = re.sub(rb' %s="[^"]*"' % attribute.encode(), b"", match[0])
        return tag.replace(
            b"<%s" % element.encode(),
            b'<%s %s="%s"' % (element.encode(), attribute.encode(), value.encode()),
            1,
        )

    return re.sub(pattern, change, xml, count=1)


def main_target(data: bytes, target: str, mode: str = "") -> bytes:
    """The package's officeDocument relationship pointed at `target` (TargetMode `mode`)."""

    def edit(name: str, content: bytes) -> bytes:
        if name != "_rels/.rels":
            return content
        content = _set_attribute(content, "Relationship", "Target", target)
        return _set_attribute(content, "Relationship", "TargetMode", mode) if mode else content

    return repack(data, edit)


# ---- what the file really is: other formats -------------------------------------------------


def _ole(streams: dict[str, bytes]) -> bytes:
    return write_cfb(streams)


def _unicode(text: str) -> bytes:
    """[MS-OFFCRYPTO] UNICODE-LP-P4: length, UTF-16 text, padded to 4 bytes."""
    raw = text.encode("utf-16-le")
    return struct.pack("<I", len(raw)) + raw + b"\0" * (-len(raw) % 4)


def _data_spaces(
    space: str, transform: str, transform_id: str, transform_name: str
) -> dict[str, bytes]:
    """The \\x06DataSpaces storage of an encrypted OOXML file: one data space over the
    EncryptedPackage stream, and its transform ([MS-OFFCRYPTO] 2.1, 2.2)."""
    entry = struct.pack("<II", 1, 0) + _unicode("EncryptedPackage") + _unicode(space)
    version = _unicode("Microsoft.Container.DataSpaces") + struct.pack("<HHHHHH", 1, 0, 1, 0, 1, 0)
    primary = struct.pack("<II", 8 + len(_unicode(transform_id)), 1) + _unicode(transform_id)
    primary += _unicode(transform_name) + struct.pack("<HHHHHH", 1, 0, 1, 0, 1, 0)
    return {
        "\x06DataSpaces/Version": version,
        "\x06DataSpaces/DataSpaceMap": struct.pack("<II", 8, 1)
        + struct.pack("<I", 4 + len(entry))
        + entry,
        f"\x06DataSpaces/DataSpaceInfo/{space}": struct.pack("<II", 8, 1) + _unicode(transform),
        f"\x06DataSpaces/TransformInfo/{transform}/\x06Primary": primary,
    }


def password_protected(data: bytes) -> bytes:
    """Encrypted with a password (File > Info > Encrypt with Password), agile encryption.
    The package stands in for its ciphertext: formtool must not get that far."""
    info = (
        struct.pack("<HHI", 4, 4, 0x40)
        + b'<?xml version="1.0"?><encryption xmlns="http://schemas.microsoft.com/office/2006/encryption"/>'
    )
    return _ole(
        {
            "EncryptionInfo": info,
            "EncryptedPackage": struct.pack("<Q", len(data)) + data,
            **_data_spaces(
                "StrongEncryptionDataSpace",
                "StrongEncryptionTransform",
                "{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}",
                "Microsoft.Container.EncryptionTransform",
            ),
        }
    )


def label_protected(data: bytes) -> bytes:
    """Encrypted by a sensitivity label or rights management (IRM): the DRM data space."""
    return _ole(
        {
            "EncryptedPackage": struct.pack("<Q", len(data)) + data,
            **_data_spaces(
                "DRMEncryptedDataSpace",
                "DRMEncryptedTransform",
                "{C73DFACD-061F-43B0-8B64-0C620D2A8B50}",
                "Microsoft.Metadata.DRMTransform",
            ),
        }
    )


def word_97(data: bytes) -> bytes:
    """A Word 97-2003 .doc: a WordDocument stream opening with its FIB (wIdent 0xA5EC)."""
    return _ole({"WordDocument": b"\xec\xa5\xc1\x00" + b"\0" * 5000, "1Table": b"\0" * 512})


def excel_97(data: bytes) -> bytes:
    """An Excel 97-2003 .xls: a Workbook stream opening with a BIFF8 BOF record."""
    return _ole({"Workbook": b"\x09\x08\x10\x00\x00\x06\x05\x00" + b"\0" * 5000})


def _odf(mimetype: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", mimetype, zipfile.ZIP_STORED)  # first and stored, as ODF says
        archive.writestr(
            "content.xml",
            '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:'
            'office:1.0"/>',
            zipfile.ZIP_DEFLATED,
        )
        archive.writestr("META-INF/manifest.xml", "<manifest:manifest/>", zipfile.ZIP_DEFLATED)
    return out.getvalue()


def opendocument_text(data: bytes) -> bytes:
    return _odf("application/vnd.oasis.opendocument.text")


def opendocument_spreadsheet(data: bytes) -> bytes:
    return _odf("application/vnd.oasis.opendocument.spreadsheet")


def excel_binary(data: bytes) -> bytes:
    """An Excel Binary Workbook (.xlsb): the main part xl/workbook.bin, binary content type."""
    binary = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"

    def edit(name: str, content: bytes) -> bytes | None:
        if name == "xl/workbook.xml":
            return None
        if name == "xl/_rels/workbook.xml.rels":
            return None
        if name == "[Content_Types].xml":
            return content.replace(b"/xl/workbook.xml", b"/xl/workbook.bin").replace(
                MAIN_TYPES["xlsx"].encode(), binary.encode()
            )
        if name == "_rels/.rels":
            return re.sub(rb'Target="/?xl/workbook.xml"', b'Target="xl/workbook.bin"', content)
        return content

    rels = members(data)["xl/_rels/workbook.xml.rels"]
    return repack(
        data,
        edit,
        (("xl/workbook.bin", b"\x83\x01\x00\x80\x01\x00"), ("xl/_rels/workbook.bin.rels", rels)),
    )


def pdf(data: bytes) -> bytes:
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def rich_text(data: bytes) -> bytes:
    return b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Calibri;}}\\f0 Audit ID: see form\\par}"


def jpeg(data: bytes) -> bytes:
    return b"\xff\xd8\xff\xe1\x00\x16Exif\x00\x00MM\x00*" + b"\0" * 64 + b"\xff\xd9"


def png(data: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + b"IHDR" + header + b"\0" * 4


def heic(data: bytes) -> bytes:
    """An iPhone photo: an ISO media file of brand heic."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 64


def gif(data: bytes) -> bytes:
    return b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


def tiff(data: bytes) -> bytes:
    return b"II*\x00\x08\x00\x00\x00" + b"\0" * 32


def webp(data: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + b"\0" * 22


def web_page(data: bytes) -> bytes:
    """What Excel's "Web Page" save (or a system's "export to Excel") writes."""
    return (
        b'<html xmlns:o="urn:schemas-microsoft-com:office:office" '
        b'xmlns:x="urn:schemas-microsoft-com:office:excel">\r\n<head><meta charset="utf-8">'
        b"</head>\r\n<body><table><tr><td>Audit ID</td></tr></table></body></html>\r\n"
    )


def plain_text(data: bytes) -> bytes:
    """The form's text pasted into Notepad and saved under the form's name."""
    return "Audit ID: CSC-SYNCS0001-202611\r\nChild seen alone: Yes\r\n".encode("utf-8-sig")


def same(data: bytes) -> bytes:
    """The return itself: with another suffix, a Word document named .xlsx or the reverse."""
    return data


# ---- relationships: where the main part is ----------------------------------------------


def main_part_elsewhere(data: bytes) -> bytes:
    """The main part moved (word/main.xml, xl/main.xml) with its relationships and content
    type; a decoy left at the usual name. Office and LibreOffice open the moved one."""
    kind = kind_of(data)
    usual = MAIN[kind]
    moved = usual.rsplit("/", 1)[0] + "/main.xml"
    parts = members(data)
    rels = parts[f"{usual.rsplit('/', 1)[0]}/_rels/{usual.rsplit('/', 1)[1]}.rels"]

    def edit(name: str, content: bytes) -> bytes:
        if name == usual:
            return decoy(name, content)
        if name == "[Content_Types].xml":
            return content.replace(f'"/{usual}"'.encode(), f'"/{moved}"'.encode())
        return content

    out = repack(
        data,
        edit,
        ((moved, parts[usual]), (f"{moved.rsplit('/', 1)[0]}/_rels/main.xml.rels", rels)),
    )
    return main_target(out, moved)


def main_part_from_root(data: bytes) -> bytes:
    """The main part named from the package root ("/word/document.xml"), as openpyxl writes."""
    return main_target(data, "/" + MAIN[kind_of(data)])


def two_main_parts(data: bytes) -> bytes:
    """A second officeDocument relationship, to a decoy: which one is the document?"""
    kind = kind_of(data)
    second = MAIN[kind].replace(".xml", "2.xml")
    rel = f'<Relationship Id="rId99" Type="{OFFICE_DOCUMENT}" Target="{second}"/>'.encode()

    def edit(name: str, content: bytes) -> bytes:
        return (
            content.replace(b"</Relationships>", rel + b"</Relationships>")
            if name == "_rels/.rels"
            else content
        )

    return repack(data, edit, ((second, decoy(MAIN[kind], members(data)[MAIN[kind]])),))


def types_disagree(data: bytes) -> bytes:
    """The relationship names a copy (word/main.xml) that [Content_Types].xml gives no
    document type, while it still names the usual part as the document."""
    kind = kind_of(data)
    moved = MAIN[kind].rsplit("/", 1)[0] + "/main.xml"
    return main_target(
        repack(data, None, ((moved, decoy(MAIN[kind], members(data)[MAIN[kind]])),)), moved
    )


def _retyped(data: bytes, twice: bool) -> bytes:
    kind = kind_of(data)
    other = MAIN_TYPES["xlsx" if kind == "docx" else "docx"]
    override = f'<Override PartName="/{MAIN[kind]}" ContentType="{other}"/>'.encode()

    def edit(name: str, content: bytes) -> bytes:
        if name != "[Content_Types].xml":
            return content
        if twice:
            return content.replace(b"</Types>", override + b"</Types>")
        return content.replace(MAIN_TYPES[kind].encode(), other.encode())

    return repack(data, edit)


def typed_as_other_kind(data: bytes) -> bytes:
    """[Content_Types].xml calls a Word document's main part a workbook (or the reverse):
    Word and Excel refuse it; LibreOffice goes by what the part holds."""
    return _retyped(data, twice=False)


def typed_twice(data: bytes) -> bytes:
    """Two Overrides for the main part: a document's type, then a workbook's."""
    return _retyped(data, twice=True)


def _outside(target: str, mode: str = "") -> Callable[[bytes], bytes]:
    def build(data: bytes) -> bytes:
        return main_target(data, target, mode)

    build.__name__ = "main_part_at_" + re.sub(r"\W+", "_", target).strip("_")
    build.__doc__ = f"The officeDocument relationship pointed at {target!r} {mode}".strip()
    return build


def climbing_part(data: bytes) -> bytes:
    """A part of the main part pointed at "../../" (a worksheet, or a footer): out of the
    package."""
    kind = kind_of(data)
    rels = "xl/_rels/workbook.xml.rels" if kind == "xlsx" else "word/_rels/document.xml.rels"
    wanted = rb"worksheets/sheet1\.xml" if kind == "xlsx" else rb"footer1\.xml"

    def edit(name: str, content: bytes) -> bytes:
        return (
            re.sub(
                rb'Target="[^"]*' + wanted + b'"',
                b'Target="../../' + wanted.replace(b"\\", b"") + b'"',
                content,
            )
            if name == rels
            else content
        )

    return repack(data, edit)


# ---- two readings at the zip level -------------------------------------------------------


def duplicate_entry(data: bytes) -> bytes:
    """The main part's name twice in the zip (Python's zipfile silently takes the last)."""
    main = MAIN[kind_of(data)]
    return repack(data, None, ((main, decoy(main, members(data)[main])),))


def case_twin(data: bytes) -> bytes:
    """WORD/DOCUMENT.XML beside word/document.xml: one part name to OPC, two to a zip."""
    main = MAIN[kind_of(data)]
    return repack(data, None, ((main.upper(), decoy(main, members(data)[main])),))


def comment_with_end_signature(data: bytes) -> bytes:
    """A zip comment holding the end-of-archive signature: Office opens it."""
    return repack(data, comment=b"Saved by ScanSafe PK\x05\x06 gateway, checked")


def encrypted_entry(data: bytes) -> bytes:
    """The main part's entry flagged as zip-encrypted (flag bit 0) in its local header and
    the central directory, as a zip tool's "encrypt" option leaves it."""
    main = MAIN[kind_of(data)].encode()
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        local = archive.getinfo(main.decode()).header_offset
    out[local + 6] |= 1
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        size = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + size] == main:
            out[at + 8] |= 1
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(out)


def strict(data: bytes) -> bytes:
    """Saved as Strict Open XML (Word's "Strict Open XML Document", Excel's "Strict Open
    XML Spreadsheet"): purl.oclc.org namespaces and relationship types, conformance="strict"."""

    def edit(name: str, content: bytes) -> bytes:
        if not name.endswith((".xml", ".rels")) or name.startswith(("docProps/", "[")):
            return content
        for old, new in STRICT_NAMESPACES:
            content = content.replace(old, new)
        content = re.sub(rb"<w:document\b", b'<w:document w:conformance="strict"', content, count=1)
        return re.sub(rb"<workbook\b", b'<workbook conformance="strict"', content, count=1)

    return repack(data, edit)


_OTHER = IssueCode.other_format
_PICTURE = IssueCode.picture
_OUTSIDE = IssueCode.outside_package
_AMBIGUOUS = IssueCode.ambiguous
#: (name, builder, code, words of the message) for each form kind; None: read as Office shows.
_EITHER: tuple[tuple[str, Callable[[bytes], bytes], IssueCode | None, str], ...] = (
    ("password", password_protected, IssueCode.encrypted, "is encrypted with a password"),
    ("label", label_protected, IssueCode.label_protected, "by a sensitivity label"),
    ("pdf", pdf, _OTHER, "is a PDF"),
    ("rtf", rich_text, _OTHER, "is a Rich Text document (.rtf)"),
    ("jpeg", jpeg, _PICTURE, "is a photo (JPEG)"),
    ("png", png, _PICTURE, "is a picture (PNG)"),
    ("heic", heic, _PICTURE, "is a photo (HEIC)"),
    ("gif", gif, _PICTURE, "is a picture (GIF)"),
    ("tiff", tiff, _PICTURE, "is a scan (TIFF)"),
    ("webp", webp, _PICTURE, "is a picture (WebP)"),
    ("html", web_page, _OTHER, "is a web page (HTML)"),
    ("text", plain_text, _OTHER, "is a plain text file"),
    ("main-elsewhere", main_part_elsewhere, None, ""),
    ("main-from-root", main_part_from_root, None, ""),
    ("two-mains", two_main_parts, _AMBIGUOUS, "_rels/.rels] "),
    ("types-disagree", types_disagree, _AMBIGUOUS, "[Content_Types].xml names"),
    ("typed-as-other", typed_as_other_kind, _AMBIGUOUS, "but it holds"),
    ("typed-twice", typed_twice, _AMBIGUOUS, "(two content types for"),
    ("climbing-part", climbing_part, _OUTSIDE, "points outside the file (../../"),
    ("duplicate", duplicate_entry, _AMBIGUOUS, "two parts of this name"),
    ("case-twin", case_twin, _AMBIGUOUS, "one part name to Office"),
    ("comment", comment_with_end_signature, None, ""),
    ("encrypted-entry", encrypted_entry, IssueCode.damaged, "is encrypted)"),
)
_TARGETS = (  # the main part's relationship pointed outside the package: target, mode
    ("external", "file:///C:/forms/{main}", "External"),
    ("http", "https://example.org/{main}", ""),
    ("drive", "C:\\forms\\{main}", ""),
    ("unc", "\\\\server\\forms\\{main}", ""),
    ("climbing", "../{main}", ""),
)
_NAMED_AS_FORMS = (  # another format under a form's name
    Pattern("doc-named-docx", "docx", word_97, "", _OTHER, "a Word 97-2003 document (.doc)"),
    Pattern("xls-named-xlsx", "xlsx", excel_97, "", _OTHER, "an Excel 97-2003 workbook (.xls)"),
    Pattern("odt-named-docx", "docx", opendocument_text, "", _OTHER, "OpenDocument text"),
    Pattern("ods-named-xlsx", "xlsx", opendocument_spreadsheet, "", _OTHER, "OpenDocument spread"),
    Pattern("xlsb-named-xlsx", "xlsx", excel_binary, "", _OTHER, "Excel Binary Workbook (.xlsb)"),
    Pattern("docx-named-xlsx", "docx", same, ".xlsx"),
    Pattern("xlsx-named-docx", "xlsx", same, ".docx"),
    Pattern("strict", "docx", strict, "", IssueCode.strict_ooxml, "choose Word Document (.docx)"),
    Pattern("strict", "xlsx", strict, "", IssueCode.strict_ooxml, "choose Excel Workbook (.xlsx)"),
)


def _patterns() -> list[Pattern]:
    found = list(_NAMED_AS_FORMS)
    for takes in ("docx", "xlsx"):
        found += [
            Pattern(name, takes, build, "", code, says) for name, build, code, says in _EITHER
        ]
        for name, target, mode in _TARGETS:
            where = target.format(main=MAIN[takes])
            found.append(Pattern(name, takes, _outside(where, mode), "", _OUTSIDE, f"({where})"))
    return found


PATTERNS = _patterns()
