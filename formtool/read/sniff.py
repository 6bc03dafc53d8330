"""What a returned file's bytes really are, whatever its name says.

Auditors send what they have: a Word 97 .doc renamed .docx, a PDF, a photo of the printed
form, a workbook protected by a sensitivity label. Each is said in words a QA officer knows
("a Word 97-2003 document (.doc)", "a photo (JPEG)") with what to ask the auditor, instead of
"not a zip". Only the first few kilobytes are looked at, except for OLE compound files, whose
directory is read with olefile after its header is checked against the file's size. Zip-based
formats (.odt, .xlsb, a .docx named .xlsx) are told apart by ooxml.Package, which opens zips.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

import olefile

from formtool.errors import IssueCode, Rejected

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .doc/.xls, and encrypted OOXML
HEAD = 4096  # bytes looked at to tell a format
MAX_DATASPACE_BYTES = 65_536  # one DataSpaces stream: a few hundred bytes in real files
#: How the form kinds are called in Word's and Excel's Save As box.
SAVE_AS = {
    "docx": "Word Document (.docx)",
    "xlsx": "Excel Workbook (.xlsx)",
    "": "Word Document (.docx) or Excel Workbook (.xlsx)",
}
#: The form kinds as what a file is.
FORM_WORDS = {"docx": "a Word document (.docx)", "xlsx": "an Excel workbook (.xlsx)"}
PASSWORD_OR_OLD = "password-protected or an old binary Office file"


@dataclass(frozen=True)
class Found:
    """What a file was found to be: the code it is refused with, and its name in words."""

    code: IssueCode
    what: str

    def rejected(self, kind: str) -> Rejected:
        """The refusal of a file that should have been a form of `kind` ("docx", "xlsx", "")."""
        return Rejected(self.code, self.what, SAVE_AS[kind])


_PREFIXES = (
    (b"%PDF-", Found(IssueCode.other_format, "a PDF")),
    (b"{\\rtf", Found(IssueCode.other_format, "a Rich Text document (.rtf)")),
    (b"\xff\xd8\xff", Found(IssueCode.picture, "a photo (JPEG)")),
    (b"\x89PNG\r\n\x1a\n", Found(IssueCode.picture, "a picture (PNG)")),
    (b"GIF87a", Found(IssueCode.picture, "a picture (GIF)")),
    (b"GIF89a", Found(IssueCode.picture, "a picture (GIF)")),
    (b"II*\x00", Found(IssueCode.picture, "a scan (TIFF)")),
    (b"MM\x00*", Found(IssueCode.picture, "a scan (TIFF)")),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1"}
_OLE_STREAMS = (  # a stream's name (upper case) -> what the compound file is
    ("WORDDOCUMENT", "a Word 97-2003 document (.doc)"),
    ("WORKBOOK", "an Excel 97-2003 workbook (.xls)"),
    ("BOOK", "an Excel 5.0/95 workbook (.xls)"),
    ("POWERPOINT DOCUMENT", "a PowerPoint 97-2003 presentation (.ppt)"),
    ("__PROPERTIES_VERSION1.0", "an Outlook email (.msg)"),
    ("VISIODOCUMENT", "a Visio 2003-2010 drawing (.vsd)"),
)
#: Rights management (IRM), which sensitivity labels with encryption use, names its data space
#: and transform "DRMEncryptedDataSpace", "Microsoft.Metadata.DRMTransform" (\x09DRMDataSpace
#: in old binary files); a password names StrongEncryptionDataSpace ([MS-OFFCRYPTO] 2.2, 2.3).
_DRM = "DRM"
_DRM_UTF16 = _DRM.encode("utf-16-le")
_XML_PROGRAMS = {
    "word.document": "a Word 2003 XML document (.xml)",
    "excel.sheet": "an Excel 2003 XML spreadsheet (.xml)",
}
_PROGID = re.compile(r"<\?mso-application\s+progid=\"([^\"]{1,40})\"")
_HEADER_LINE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,40}:[ \t]")
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def sniff(data: bytes) -> Found | None:
    """What `data` is when it is not a zip (None when it cannot be told)."""
    if data.startswith(OLE_MAGIC):
        return _ole(data)
    head = data[:HEAD]
    for prefix, found in _PREFIXES:
        if head.startswith(prefix):
            return found
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Found(IssueCode.picture, "a picture (WebP)")
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return Found(IssueCode.picture, "a photo (HEIC)")
    if b"%PDF-" in head[:1024]:  # Acrobat reads PDFs with a little junk in front
        return Found(IssueCode.other_format, "a PDF")
    return _text(head)


def refuse_other(data: bytes, kind: str) -> None:
    """Raise the refusal saying what `data` is, if it is something formtool can name."""
    found = sniff(data)
    if found is not None:
        raise found.rejected(kind)


# ---- text: web pages, XML, emails, plain text ----------------------------------------------


def _decoded(head: bytes) -> str | None:
    """The start of the file as text, or None if it is binary."""
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[2 : len(head) & ~1].decode(codec, errors="replace")
    if _BINARY.search(head):
        return None
    return head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")


def _text(head: bytes) -> Found | None:
    text = _decoded(head)
    if text is None:
        return None
    start = text.lstrip().lower()
    if start.startswith("{\\rtf"):
        return Found(IssueCode.other_format, "a Rich Text document (.rtf)")
    if start.startswith("<!doctype html") or "<html" in start[:1024]:
        return Found(IssueCode.other_format, "a web page (HTML)")
    if start.startswith("<?xml") or start.startswith("<"):
        program = _PROGID.search(start[:1024])
        what = _XML_PROGRAMS.get(program[1] if program else "", "an XML file")
        return Found(IssueCode.other_format, what)
    if _HEADER_LINE.match(start) and "mime-version:" in start:
        if "multipart/related" in start:
            return Found(IssueCode.other_format, "a single-file web page (.mht)")
        return Found(IssueCode.other_format, "an email (.eml)")
    if "\n" in text or "\r" in text:  # a text file has lines; a fragment may be a cut-off file
        return Found(IssueCode.other_format, "a plain text file")
    return None


# ---- OLE compound files: old binary Office files and encrypted OOXML ------------------------


def _ole(data: bytes) -> Found:
    unknown = Found(IssueCode.encrypted, PASSWORD_OR_OLD)
    if not _plausible_cfb(data):
        return unknown
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return _ole_kind(ole) or unknown
    except Exception:  # a damaged compound file is an unknown one, never a crash
        return unknown


def _plausible_cfb(data: bytes) -> bool:
    """Whether the header's counts and sector numbers fit in the file, so olefile cannot be
    sent looping through made-up tables (as message.py checks .msg files)."""
    if len(data) < 1024:
        return False
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):
        return False
    sectors = (len(data) + (1 << shift) - 1) // (1 << shift) - 1
    first_dir, fat_count = struct.unpack_from("<I", data, 0x30)[0], data[0x2C:0x30]
    counts = (
        struct.unpack("<I", fat_count)[0],
        struct.unpack_from("<I", data, 0x40)[0],
        struct.unpack_from("<I", data, 0x48)[0],
    )
    if any(count > sectors for count in counts) or first_dir >= sectors:
        return False
    fat = struct.unpack_from("<109I", data, 0x4C)[: min(counts[0], 109)]
    return all(sector < sectors for sector in fat)


def _ole_kind(ole: olefile.OleFileIO) -> Found | None:
    paths = ["/".join(path) for path in ole.listdir(streams=True, storages=False)]
    names = {path.rsplit("/", 1)[-1].upper() for path in paths}
    spaces = [p for p in paths if p.upper().startswith("\x06DATASPACES/")]
    if spaces or names & {"ENCRYPTEDPACKAGE", "ENCRYPTIONINFO"}:
        if any(_DRM in p.upper() for p in spaces) or any(
            _DRM_UTF16 in _stream(ole, p) for p in spaces[:16]
        ):
            return Found(
                IssueCode.label_protected, "a sensitivity label or rights management (IRM)"
            )
        return Found(IssueCode.encrypted, "encrypted with a password")
    for stream, what in _OLE_STREAMS:
        if stream in names:
            return Found(IssueCode.other_format, what)
    return None


def _stream(ole: olefile.OleFileIO, path: str) -> bytes:
    """A small stream's bytes (olefile reads a stream whole: larger ones are not read)."""
    if ole.get_size(path) > MAX_DATASPACE_BYTES:
        return b""
    with ole.openstream(path) as stream:
        return bytes(stream.read())
