"""Safe opening of returned Office files: size-capped unzip and entity-free XML parsing.

Returned forms arrive by email from outside the QA team, so every archive is treated as
hostile: members are size-checked before they are inflated (zip bombs), XML is parsed
without DTDs, entities or network access (XXE, billion laughs), and macro-enabled or
encrypted files are refused with a reason the QA officer can act on.
"""

from __future__ import annotations

import io
import zipfile

from lxml import etree

from formtool.errors import FormtoolError

MAX_MEMBER_BYTES = 50 * 1024 * 1024  # a filled audit form is well under 1 MB of XML
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200  # deflate rarely beats 100:1 on real XML; bombs reach 1000:1
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML and old .doc/.xls

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


class UnreadableFile(FormtoolError):
    """A returned file that cannot be opened as a form; the message says why and what to do."""


class Package:
    """The members of an OOXML zip, inflated on demand within size limits."""

    def __init__(self, data: bytes, kind: str) -> None:
        if data.startswith(OLE_MAGIC):
            raise UnreadableFile(
                f"is password-protected or an old binary .{kind[:3]} file. Ask the auditor to "
                f"remove the password (File > Info) and save as .{kind}."
            )
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, ValueError, OSError):
            raise UnreadableFile(
                f"is not a .{kind} file (not a valid zip: damaged, truncated or renamed). "
                "Ask the auditor to send the file again."
            ) from None
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES or any(
            i.file_size > MAX_MEMBER_BYTES
            or (
                i.compress_size
                and i.file_size / i.compress_size > MAX_RATIO
                and i.file_size > 1024 * 1024
            )
            for i in infos
        ):
            raise UnreadableFile(
                "expands to far more data than a form holds (a zip bomb?); it was not opened."
            )
        self.names = {i.filename for i in infos}
        if any(n.lower().endswith("vbaproject.bin") for n in self.names):
            raise UnreadableFile(
                f"contains macros. Save it as a plain .{kind} (no macros) and send it again."
            )

    def read(self, name: str) -> bytes | None:
        if name not in self.names:
            return None
        try:
            with self.zip.open(name) as member:
                data = member.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
            raise UnreadableFile(f"is damaged ({name}: {exc}). Ask for the file again.") from None
        if len(data) > MAX_MEMBER_BYTES:
            raise UnreadableFile("expands to far more data than a form holds; not opened.")
        return data

    def xml(self, name: str) -> etree._Element | None:
        data = self.read(name)
        if data is None:
            return None
        if b"<!DOCTYPE" in data[:2048] or b"<!ENTITY" in data:
            raise UnreadableFile(
                f"{name} declares XML entities, which Office never writes; it was not read."
            )
        try:
            return etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise UnreadableFile(
                f"{name} is not well-formed XML ({exc}). Ask for the file again."
            ) from None


CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"


def custom_properties(package: Package) -> dict[str, str]:
    root = package.xml("docProps/custom.xml")
    if root is None:
        return {}
    return {
        prop.get("name", ""): "".join(prop.itertext()).strip()
        for prop in root.iter(f"{{{CUSTOM_NS}}}property")
    }
