"""Safe opening of returned Office files: bounded unzip and entity-free XML parsing.

Returned forms arrive by email from outside the QA team, so every archive is hostile until
shown otherwise. Bounds hold by construction: the zip directory is sized before Python parses
it, members are size-checked before they are inflated and read with a limit, XML is parsed
without DTDs, entities or network access, and every way a damaged archive can fail becomes
one `Rejected` with its own code. Macros are found by content type and relationship type,
whatever the parts are called.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib

from lxml import etree

from formtool.errors import IssueCode, Rejected

MAX_MEMBERS = 4000  # a form has about 20 parts; thousands of entries is not a form
MAX_PART_BYTES = 10 * 1024 * 1024  # one XML part; a filled form's largest is well under 1 MB
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # everything inside, pictures included (never inflated)
MAX_RATIO = 200  # deflate rarely beats 100:1 on real XML; bombs reach 1000:1
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML and old .doc/.xls
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
CORE_NS = "http://purl.org/dc/terms/"
CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MACRO_CONTENT = ("vbaproject", "macroenabled", "vbadata", "ms-office.activex")
MACRO_RELATIONSHIPS = (
    "/vbaproject",
    "/vbaprojectsignature",
    "/wordvbadata",
    "/keymapcustomizations",
)

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
)

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def _size(count: int) -> str:
    return f"{count / 1_048_576:.1f} MB" if count >= 1_048_576 else f"{count // 1024} KB"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _directory_entries(data: bytes) -> int | None:
    """How many entries the zip's end-of-central-directory record declares (None if absent)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return None
    entries = struct.unpack_from("<H", data, end + 10)[0]
    locator = data.rfind(b"PK\x06\x07", max(0, end - 20), end)
    if entries == 0xFFFF and locator >= 0 and locator + 20 <= len(data):
        offset = struct.unpack_from("<Q", data, locator + 8)[0]
        if offset + 40 <= len(data) and data[offset : offset + 4] == b"PK\x06\x06":
            return int(struct.unpack_from("<Q", data, offset + 32)[0])
    return int(entries)


class Package:
    """The members of an OOXML zip, inflated on demand within size limits."""

    def __init__(self, data: bytes, kind: str) -> None:
        self.kind = kind  # "docx" or "xlsx"
        if data.startswith(OLE_MAGIC):
            raise Rejected(IssueCode.encrypted, expected=f".{kind}")
        entries = _directory_entries(data)
        if entries is None or not data.startswith(b"PK"):
            raise Rejected(IssueCode.not_a_zip, expected=f".{kind}")
        if entries > MAX_MEMBERS:
            raise Rejected(IssueCode.zip_bomb, f"{entries} parts")
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except ZIP_FAILURES as exc:
            raise Rejected(IssueCode.damaged, f"zip directory: {_first_line(exc)}") from None
        self._check_sizes(infos)
        self.names = {i.filename for i in infos}
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
            rels = self.xml(name)
            for rel in rels.iter(PKG_REL + "Relationship") if rels is not None else ():
                kind = rel.get("Type", "").lower()
                if kind.endswith(MACRO_RELATIONSHIPS):
                    raise Rejected(
                        IssueCode.macros, f"relationship {kind.rsplit('/', 1)[-1]}", f".{self.kind}"
                    )

    def read(self, name: str) -> bytes | None:
        """A member's bytes (None if absent), never more than MAX_PART_BYTES."""
        if name not in self.names:
            return None
        try:
            info = self.zip.getinfo(name)
            if info.file_size > MAX_PART_BYTES:
                raise Rejected(IssueCode.zip_bomb, f"{name}: {_size(info.file_size)}")
            with self.zip.open(info) as member:
                data = member.read(MAX_PART_BYTES + 1)
        except Rejected:
            raise
        except ZIP_FAILURES as exc:
            raise Rejected(IssueCode.damaged, f"{name}: {_first_line(exc)}") from None
        if len(data) > MAX_PART_BYTES:  # the directory lied about the size
            raise Rejected(IssueCode.zip_bomb, f"{name}: over {_size(MAX_PART_BYTES)}")
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

    def related(self, source: str, kind: str) -> list[str]:
        """Members a part points to by relationship type (e.g. headers of the document)."""
        folder, base = posixpath.split(source)
        rels = self.xml(posixpath.join(folder, "_rels", base + ".rels"))
        found = []
        for rel in rels.iter(PKG_REL + "Relationship") if rels is not None else ():
            if rel.get("Type", "").endswith("/" + kind) and rel.get("TargetMode") != "External":
                target = rel.get("Target", "")
                found.append(
                    target.lstrip("/")
                    if target.startswith("/")
                    else posixpath.normpath(posixpath.join(folder, target))
                )
        return found


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
