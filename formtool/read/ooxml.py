"""Safe opening of returned Office files: bounded unzip, entity-free XML parsing, and the
package's relationships followed as Office follows them.

Returned forms arrive by email from outside the QA team, so every archive is hostile until
shown otherwise. Bounds hold by construction: the zip directory is sized before Python parses
it, members are size-checked before they are inflated and read with a limit, XML is parsed
without DTDs, entities or network access, and every way a damaged archive can fail becomes
one `Rejected` with its own code. Macros are found by content type and relationship type,
whatever the parts are called.

What is read is what Office opens: the main part is the target of the package's
officeDocument relationship (not whichever part carries the usual name), part names are
matched without regard to case as OPC requires, and what the file really is comes from the
main part's content type, so a .docx named .xlsx is read as the Word document it is. Where
two parts could be the one Office shows (duplicate or case-twin zip entries, two main parts)
or a relationship leads out of the file, the package is refused rather than guessed at.
"""

from __future__ import annotations

import io
import lzma
import posixpath
import re
import struct
import zipfile
import zlib
from typing import NamedTuple

from lxml import etree

from formtool.errors import IssueCode, Rejected
from formtool.read.sniff import FORM_WORDS, SAVE_AS, Found, refuse_other

MAX_MEMBERS = 4000  # a form has about 20 parts; thousands of entries is not a form
MAX_PART_BYTES = 10 * 1024 * 1024  # one XML part; a filled form's largest is well under 1 MB
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # everything inside, pictures included (never inflated)
MAX_RATIO = 200  # deflate rarely beats 100:1 on real XML; bombs reach 1000:1
MAX_RELATIONSHIPS = 10_000  # of one part: a form's document has about 10, a long report 500
MAX_HEAD_BYTES = 8192  # of the main part: its root element and namespaces (Strict or not)
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
CORE_NS = "http://purl.org/dc/terms/"
CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)
STRICT_OFFICE_DOCUMENT = "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument"
STRICT_MAIN = re.compile(rb"http://purl\.oclc\.org/ooxml/(?:wordprocessingml|spreadsheetml)/main")
MACRO_CONTENT = ("vbaproject", "macroenabled", "vbadata", "ms-office.activex")
MACRO_RELATIONSHIPS = (
    "/vbaproject",
    "/vbaprojectsignature",
    "/wordvbadata",
    "/keymapcustomizations",
)
_WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml."
_EXCEL = "application/vnd.openxmlformats-officedocument.spreadsheetml."
#: The content types of a main part formtool reads (macro-enabled ones are refused as macros).
MAIN_TYPES = {
    _WORD + "document.main+xml": "docx",
    _WORD + "template.main+xml": "docx",
    "application/vnd.ms-word.document.macroenabled.main+xml": "docx",
    "application/vnd.ms-word.template.macroenabledtemplate.main+xml": "docx",
    _EXCEL + "sheet.main+xml": "xlsx",
    _EXCEL + "template.main+xml": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": "xlsx",
    "application/vnd.ms-excel.template.macroenabled.main+xml": "xlsx",
    "application/vnd.ms-excel.addin.macroenabled.main+xml": "xlsx",
}
#: Main parts of Office files that are not forms, by the start of their content type.
OTHER_MAIN_TYPES = (
    ("application/vnd.ms-excel.sheet.binary", "an Excel Binary Workbook (.xlsb)"),
    ("application/vnd.openxmlformats-officedocument.presentationml.", "a PowerPoint file (.pptx)"),
    ("application/vnd.ms-powerpoint.", "a PowerPoint file (.pptm)"),
    ("application/vnd.ms-visio.", "a Visio drawing (.vsdx)"),
)
ROOTS = {b"document": "docx", b"workbook": "xlsx"}  # a main part's root element: what it is
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(document|workbook)[\s>/]")
ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "an OpenDocument text document (.odt)",
    "application/vnd.oasis.opendocument.spreadsheet": "an OpenDocument spreadsheet (.ods)",
}
XPS_RELATIONSHIP = "/fixedrepresentation"
_RELS_NAME = re.compile(r"((?:[^/]+/)*)_rels/([^/]*)\.rels")  # folder, part name
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # http:, file:, mailto:, and C: (a drive)
END_RECORD = b"PK\x05\x06"
END_RECORD_SIZE = 22
ENCRYPTED_FLAGS = 0x1 | 0x40  # traditional and strong zip encryption

#: Everything a damaged or hostile archive raises while being opened or inflated.
ZIP_FAILURES = (
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    ValueError,
    OSError,
    EOFError,
    RuntimeError,
    struct.error,
    KeyError,
    IndexError,
    OverflowError,
    UnicodeDecodeError,
    lzma.LZMAError,
)

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


class Relationship(NamedTuple):
    """One relationship of a part, as written in its .rels part."""

    id: str
    type: str
    target: str
    mode: str  # TargetMode: "" (internal) or "External"


def _size(count: int) -> str:
    return f"{count / 1_048_576:.1f} MB" if count >= 1_048_576 else f"{count // 1024} KB"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


_ZIP_WORDS = {  # zipfile's own words for a damaged archive, in a QA officer's
    "Bad magic number for file header": "the part is not where the zip directory says",
    "Bad magic number for central directory": "not where the end-of-archive record says",
    "Truncated file header": "the part is cut short",
    "Truncated central directory": "cut short",
}


def _reason(where: str, error: Exception) -> str:
    """What went wrong inflating `where`, in words, never Python's internals."""
    text = _first_line(error)
    if isinstance(error, RuntimeError | NotImplementedError) and "encrypt" in text:
        return f"part {where} is encrypted"
    if isinstance(error, zlib.error | EOFError | OSError | lzma.LZMAError):
        return f"{where}: its compressed data is corrupt"
    if isinstance(error, zipfile.BadZipFile) and text.startswith("Bad CRC-32"):
        return f"{where}: its checksum does not match its contents"
    if isinstance(error, zipfile.BadZipFile) and text.startswith("File name in directory"):
        return f"{where}: the zip directory and the part's own header name it differently"
    if isinstance(error, NotImplementedError):
        return f"{where}: compressed in a way Office never writes"
    if isinstance(error, struct.error | KeyError | IndexError | OverflowError):
        return f"{where}: the zip structure is inconsistent"
    if isinstance(error, UnicodeDecodeError):
        return f"{where}: a part name is not valid text"
    return f"{where}: {_ZIP_WORDS.get(text, text)}"


def _end_record(data: bytes) -> int | None:
    """Where the zip's end-of-central-directory record starts (None if there is none).

    The record ends with a comment of any bytes, which may itself hold the record's
    signature; Python's zipfile takes the last signature and so misreads such files.
    The real record is the one whose comment runs exactly to the end of the file (and, if
    two comments do, whose central directory ends where it starts); two such records are
    two readings of the file, refused. With none, junk follows the archive: the last record
    whose directory ends where it starts is taken, else the last signature.
    """
    low = max(0, len(data) - 65_535 - END_RECORD_SIZE)
    found: list[int] = []  # from the end backwards
    end = len(data)
    while (at := data.rfind(END_RECORD, low, end)) >= 0:
        end = at + len(END_RECORD) - 1
        if at + END_RECORD_SIZE <= len(data):
            found.append(at)
    exact = [
        at
        for at in found
        if at + END_RECORD_SIZE + struct.unpack_from("<H", data, at + 20)[0] == len(data)
    ]
    whole = [at for at in found if _directory_ends_at(data, at)]
    both = [at for at in exact if at in whole]
    if len(both or exact) > 1:
        raise Rejected(IssueCode.ambiguous, "two end-of-archive records", field="the zip directory")
    best = both or exact or whole or found
    return best[0] if best else None


def _directory_ends_at(data: bytes, at: int) -> bool:
    """Whether the central directory an end record declares ends where the record starts
    (or a ZIP64 locator stands there, whose record holds the real numbers)."""
    size, offset = struct.unpack_from("<II", data, at + 12)
    return offset + size == at or data[max(0, at - 20) : at - 16] == b"PK\x06\x07"


def _without_comment(data: bytes, end: int) -> bytes:
    """The zip with its comment removed when the comment would mislead zipfile."""
    if data.find(END_RECORD, end + 4) < 0:
        return data
    return data[: end + 20] + b"\0\0"


def _directory_entries(data: bytes, end: int) -> int:
    """How many entries the zip's end-of-central-directory record at `end` declares."""
    entries = struct.unpack_from("<H", data, end + 10)[0]
    locator = data.rfind(b"PK\x06\x07", max(0, end - 20), end)
    if entries == 0xFFFF and locator >= 0 and locator + 20 <= len(data):
        offset = struct.unpack_from("<Q", data, locator + 8)[0]
        if offset + 40 <= len(data) and data[offset : offset + 4] == b"PK\x06\x06":
            return int(struct.unpack_from("<Q", data, offset + 32)[0])
    return int(entries)


def rels_part(source: str) -> str:
    """The .rels part holding the relationships of `source` ("" for the package's own)."""
    folder, base = posixpath.split(source)
    return posixpath.join(folder, "_rels", base + ".rels")


def _outside(target: str) -> bool:
    """A target naming something outside any package: a URI with a scheme (http:, file:),
    a drive (C:\\), a network share (\\\\server, //server) or a Windows rooted path."""
    return bool(_SCHEME.match(target)) or target.startswith(("\\", "//"))


class Package:
    """The members of an OOXML zip, inflated on demand within size limits.

    `kind` is what the file is named as ("docx", "xlsx", or "" if its name does not say).
    A package of the other form kind is refused as that, unless `detect`: then `kind`
    becomes what the package really is.
    """

    def __init__(self, data: bytes, kind: str, detect: bool = False) -> None:
        self.kind = kind
        expected = f".{kind}" if kind else ".docx or .xlsx"
        if not data.startswith(b"PK"):
            refuse_other(data, kind)
            raise Rejected(IssueCode.not_a_zip, expected=expected)
        end = _end_record(data)
        if end is None:
            raise Rejected(IssueCode.not_a_zip, expected=expected)
        entries = _directory_entries(data, end)
        if entries > MAX_MEMBERS:
            raise Rejected(IssueCode.zip_bomb, f"{entries} parts")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(_without_comment(data, end)))
            infos = self.zip.infolist()
        except ZIP_FAILURES as exc:
            raise Rejected(IssueCode.damaged, _reason("zip directory", exc)) from None
        self._check_sizes(infos)
        self.names = {i.filename for i in infos}
        self._parts = _part_names(infos)
        self._relationships: dict[str, list[Relationship]] = {}
        self._content_types: tuple[dict[str, str], dict[str, str]] | None = None
        self._types_twice: set[str] = set()  # parts given two different content types
        self._main = self._find_main(detect)
        self._check_macros()

    def _check_sizes(self, infos: list[zipfile.ZipInfo]) -> None:
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise Rejected(IssueCode.zip_bomb, f"{_size(total)} inside")
        for info in infos:
            ratio = info.file_size / info.compress_size if info.compress_size else 0
            if info.file_size > 1_048_576 and ratio > MAX_RATIO:
                raise Rejected(IssueCode.zip_bomb, f"{info.filename}: {ratio:.0f}:1")

    def _check_macros(self) -> None:
        named = sorted(n for n in self.names if n.lower().endswith("vbaproject.bin"))
        if named:
            raise Rejected(IssueCode.macros, f"part {named[0]}", f".{self.kind}")
        types = self.xml("[Content_Types].xml")
        if types is not None:
            for entry in types.iter(CT_NS + "Default", CT_NS + "Override"):
                content = entry.get("ContentType", "").lower()
                if any(m in content for m in MACRO_CONTENT):
                    raise Rejected(IssueCode.macros, f"content type {content}", f".{self.kind}")
        for name in sorted(n for n in self.names if n.endswith(".rels")):
            rels = self._rels_in(name)
            for rel in rels:
                kind = rel.type.lower()
                if kind.endswith(MACRO_RELATIONSHIPS):
                    raise Rejected(
                        IssueCode.macros, f"relationship {kind.rsplit('/', 1)[-1]}", f".{self.kind}"
                    )
            self._check_targets(name, rels)

    def _check_targets(self, name: str, rels: list[Relationship]) -> None:
        """Every internal relationship leads to a part name inside the package (external
        ones, such as hyperlinks, are never followed)."""
        found = _RELS_NAME.fullmatch(name)
        source = found[1] + found[2] if found else ""
        for rel in rels if found else ():
            if rel.mode.lower() != "external":
                self.target(source, rel.target)

    # ---- what the package is, and its main part -------------------------------------------

    def _find_main(self, detect: bool) -> str:
        """The main part's name; sets `kind` to what the package really is (see the class)."""
        office = [
            r for r in self.relationships("") if r.type in (OFFICE_DOCUMENT, STRICT_OFFICE_DOCUMENT)
        ]
        if not office:
            raise self._not_a_form()
        targets = {self.target("", r.target, r.mode): r for r in office}
        if len({t.lower() for t in targets}) > 1:
            first, second = sorted(targets)[:2]
            raise Rejected(
                IssueCode.ambiguous, f"two main parts: {first} and {second}", field="_rels/.rels"
            )
        main, rel = next(iter(targets.items()))
        content = self.content_type(main)
        real = MAIN_TYPES.get(content) or self._other_main(main, content)
        head = self._head(main)
        if rel.type == STRICT_OFFICE_DOCUMENT or STRICT_MAIN.search(head):
            raise Rejected(IssueCode.strict_ooxml, expected=SAVE_AS[real])
        if main.lower() not in self._parts:
            raise Rejected(IssueCode.no_document, expected=_document_words(real))
        self._check_agrees(main, real, head)
        if real != self.kind and self.kind and not detect:
            raise Rejected(IssueCode.other_format, FORM_WORDS[real], SAVE_AS[self.kind])
        self.kind = real
        return main

    def _check_agrees(self, main: str, kind: str, head: bytes) -> None:
        """[Content_Types].xml names the main part once, and as what the part is: Word
        refuses a workbook typed as a document, so a guess either way is refused too."""
        if main.lower() in self._types_twice:
            raise Rejected(
                IssueCode.ambiguous, f"two content types for {main}", field="[Content_Types].xml"
            )
        root = _ROOT.search(head)
        if root is not None and ROOTS.get(root[1]) not in (None, kind):
            raise Rejected(
                IssueCode.ambiguous,
                f"typed as {FORM_WORDS[kind]} but it holds {FORM_WORDS[ROOTS[root[1]]]}",
                field=main,
            )

    def _not_a_form(self) -> Rejected:
        """The refusal of a zip without an officeDocument relationship, saying what it is."""
        mimetype = self._head("mimetype")[:100].decode("ascii", "replace").strip()
        if mimetype in ODF_TYPES:
            return Found(IssueCode.other_format, ODF_TYPES[mimetype]).rejected(self.kind)
        if any(r.type.lower().endswith(XPS_RELATIONSHIP) for r in self.relationships("")):
            return Found(IssueCode.other_format, "an XPS document (.xps)").rejected(self.kind)
        if self._parts and not {"[content_types].xml", "_rels/.rels"} & set(self._parts):
            return Found(IssueCode.other_format, "a zip archive (.zip)").rejected(self.kind)
        return Rejected(IssueCode.no_document, expected=_document_words(self.kind))

    def _other_main(self, main: str, content: str) -> str:
        """Refuse a main part that is not a form's: another Office file, or a part that
        [Content_Types].xml does not give a document's type."""
        for start, what in OTHER_MAIN_TYPES:
            if content.startswith(start):
                raise Rejected(IssueCode.other_format, what, SAVE_AS[self.kind])
        claimed = sorted(p for p, t in self._overrides().items() if t in MAIN_TYPES)
        if claimed:
            raise Rejected(
                IssueCode.ambiguous,
                f"_rels/.rels names {main} but [Content_Types].xml names /{claimed[0]}",
                field="the main part",
            )
        if "[content_types].xml" not in self._parts:
            raise Rejected(IssueCode.damaged, "its [Content_Types].xml part is missing")
        raise Rejected(
            IssueCode.damaged, f"[Content_Types].xml gives the main part {main} no document type"
        )

    def _head(self, name: str) -> bytes:
        """The first bytes of a part (empty if absent or unreadable: reading it says why)."""
        actual = self._parts.get(name.lower())
        if actual is None:
            return b""
        try:
            with self.zip.open(self.zip.getinfo(actual)) as member:
                return bytes(member.read(MAX_HEAD_BYTES))
        except ZIP_FAILURES:
            return b""

    def main_part(self) -> str:
        """The part Office opens as the document or workbook (the package relationship of
        type officeDocument), not whichever part happens to carry the usual name."""
        return self._main

    # ---- content types and relationships -------------------------------------------------

    def _types(self) -> tuple[dict[str, str], dict[str, str]]:
        """[Content_Types].xml: (defaults by extension, overrides by part name), lower case."""
        if self._content_types is None:
            self._content_types = self._read_types()
        return self._content_types

    def _read_types(self) -> tuple[dict[str, str], dict[str, str]]:
        root = self.xml("[Content_Types].xml")
        defaults: dict[str, str] = {}
        overrides: dict[str, str] = {}
        for entry in root.iter(CT_NS + "Default") if root is not None else ():
            defaults.setdefault(entry.get("Extension", "").lower(), entry.get("ContentType", ""))
        for entry in root.iter(CT_NS + "Override") if root is not None else ():
            name = entry.get("PartName", "").lstrip("/").lower()
            content = entry.get("ContentType", "").lower()
            if overrides.setdefault(name, content) != content:
                self._types_twice.add(name)
        return defaults, overrides

    def _overrides(self) -> dict[str, str]:
        return self._types()[1]

    def content_type(self, name: str) -> str:
        """A part's content type, lower case: its Override, else the Default of its extension."""
        defaults, overrides = self._types()
        found = overrides.get(name.lower())
        if found is None:
            found = defaults.get(posixpath.splitext(name)[1].lstrip(".").lower(), "")
        return found.lower()

    def relationships(self, source: str) -> list[Relationship]:
        """The relationships of part `source` ("" for the package), as written."""
        name = rels_part(source)
        if name.lower() not in self._relationships:
            self._relationships[name.lower()] = self._rels_in(name)
        return self._relationships[name.lower()]

    def _rels_in(self, name: str) -> list[Relationship]:
        """The relationships a .rels part holds, at most MAX_RELATIONSHIPS of them."""
        if name.lower() in self._relationships:
            return self._relationships[name.lower()]
        root = self.xml(name)
        found: list[Relationship] = []
        for rel in root.iter(PKG_REL + "Relationship") if root is not None else ():
            if len(found) == MAX_RELATIONSHIPS:
                raise Rejected(IssueCode.zip_bomb, f"{name}: over {MAX_RELATIONSHIPS:,} links")
            found.append(
                Relationship(
                    rel.get("Id", ""),
                    rel.get("Type", ""),
                    rel.get("Target", ""),
                    rel.get("TargetMode", ""),
                )
            )
        return found

    def target(self, source: str, target: str, mode: str = "") -> str:
        """The part a relationship of `source` points to, as a name inside the package.

        A target starting with "/" is a part name from the package root (openpyxl writes
        those); others are relative to the source's folder. External targets, URIs with a
        scheme, drive and network paths and "../" climbing out of the package are refused:
        a form's parts are all inside it."""
        if mode.lower() == "external" or _outside(target):
            raise Rejected(IssueCode.outside_package, target, field=rels_part(source))
        path = [] if target.startswith("/") else posixpath.dirname(source).split("/")
        for segment in target.split("/"):
            if segment == "..":
                if not path or path == [""]:
                    raise Rejected(IssueCode.outside_package, target, field=rels_part(source))
                path.pop()
            elif segment not in ("", "."):
                path.append(segment)
        name = "/".join(p for p in path if p)
        return self._parts.get(name.lower(), name)

    def related(self, source: str, kind: str) -> list[str]:
        """Members a part points to by relationship type (e.g. headers of the document)."""
        return [
            self.target(source, rel.target, rel.mode)
            for rel in self.relationships(source)
            if rel.type.endswith("/" + kind)
        ]

    # ---- reading parts -------------------------------------------------------------------

    def read(self, name: str) -> bytes | None:
        """A member's bytes (None if absent), never more than MAX_PART_BYTES. Part names are
        matched without regard to case, as in Office."""
        actual = self._parts.get(name.lower())
        if actual is None:
            return None
        try:
            info = self.zip.getinfo(actual)
            if info.flag_bits & ENCRYPTED_FLAGS:
                raise Rejected(IssueCode.damaged, f"part {actual} is encrypted")
            if info.file_size > MAX_PART_BYTES:
                raise Rejected(IssueCode.zip_bomb, f"{actual}: {_size(info.file_size)}")
            with self.zip.open(info) as member:
                data = member.read(MAX_PART_BYTES + 1)
        except Rejected:
            raise
        except ZIP_FAILURES as exc:
            raise Rejected(IssueCode.damaged, _reason(actual, exc)) from None
        if len(data) > MAX_PART_BYTES:  # the directory lied about the size
            raise Rejected(IssueCode.zip_bomb, f"{actual}: over {_size(MAX_PART_BYTES)}")
        return data

    def xml(self, name: str) -> etree._Element | None:
        """A member parsed as XML, refusing any DTD or entity declaration (any encoding)."""
        data = self.read(name)
        if data is None:
            return None
        try:
            root = etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise Rejected(IssueCode.bad_xml, _first_line(exc), field=name) from None
        except ValueError as exc:  # e.g. an encoding declaration lxml cannot honour
            raise Rejected(IssueCode.bad_xml, _first_line(exc), field=name) from None
        info = root.getroottree().docinfo
        if info.doctype or info.internalDTD is not None:
            raise Rejected(IssueCode.entities, field=name)
        return root


def _part_names(infos: list[zipfile.ZipInfo]) -> dict[str, str]:
    """Part names by their lower case; two entries for one part name (the same name twice,
    or names differing only in case, which OPC treats as one) are refused."""
    parts: dict[str, str] = {}
    for info in infos:
        name = info.filename
        if name.endswith("/"):
            continue  # a folder entry some zip tools add: not a part
        seen = parts.get(name.lower())
        if seen is None:
            parts[name.lower()] = name
            continue
        twice = (
            "the file holds two parts of this name"
            if seen == name
            else f"the file holds {seen} and {name}, one part name to Office"
        )
        raise Rejected(IssueCode.ambiguous, twice, field=seen)
    return parts


def _document_words(kind: str) -> str:
    return {"docx": "Word document", "xlsx": "Excel workbook"}.get(
        kind, "Word document or workbook"
    )


def custom_properties(package: Package) -> dict[str, str]:
    root = package.xml("docProps/custom.xml")
    if root is None:
        return {}
    return {
        prop.get("name", ""): "".join(prop.itertext()).strip()[:200]
        for prop in root.iter(f"{{{CUSTOM_NS}}}property")
    }


def saved_at(package: Package) -> str:
    """When the file says it was last saved (core properties `dcterms:modified`), as text."""
    root = package.xml("docProps/core.xml")
    found = root.find(f"{{{CORE_NS}}}modified") if root is not None else None
    return (found.text or "").strip()[:40] if found is not None else ""
