"""Makers of damaged and hostile returns from good ones, for tests/test_hostile.py and the
hostile batch of bench/import.py: broken zips, entity tricks, hidden macros and files built
to multiply memory. Each takes a good file's bytes and returns the bad file's bytes."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

from formtool.definitions import FormDefinition
from formtool.definitions.identity import bookmark_name

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted (password) OOXML, old .doc/.xls
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body></w:document>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:body><w:p><w:r><w:t>&lol3;</w:t></w:r></w:p></w:body></w:document>"""


def member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def with_member(data: bytes, name: str, content: bytes | None) -> bytes:
    """The package with one member replaced in place, added at the end, or (content None)
    left out."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
            elif content is not None:
                dst.writestr(name, content)
        if content is not None and name not in src.namelist():
            dst.writestr(name, content)
    return out.getvalue()


def utf16_xxe() -> bytes:
    """XXE, declared and encoded as UTF-16: no ASCII byte pattern finds its DOCTYPE."""
    return XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")


def zip_bomb(path: Path) -> None:
    """A real 1 GB member (zeros), about 1 MB on disk."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            chunk = b"\0" * (1 << 20)
            for _ in range(1024):
                part.write(chunk)


def corrupt_deflate(data: bytes) -> bytes:
    """Scramble the middle of document.xml's compressed bytes (CRC and lengths intact)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle = start + info.compress_size // 2
    damaged = bytearray(data)
    for i in range(middle, middle + 64):
        damaged[i] ^= 0x5A
    return bytes(damaged)


def future_zip_version(data: bytes) -> bytes:
    """Every central directory entry claims it needs zip version 9.9 to extract."""
    damaged = bytearray(data)
    for match in re.finditer(rb"PK\x01\x02", data):
        struct.pack_into("<H", damaged, match.start() + 6, 99)
    return bytes(damaged)


def wrong_directory_offset(data: bytes) -> bytes:
    damaged = bytearray(data)
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", damaged, end + 16, len(data) + 5000)
    return bytes(damaged)


def hidden_macros(data: bytes, by: str) -> bytes:
    """A VBA project under an innocent name, declared by content type or relationship."""
    data = with_member(data, "word/media/notes.dat", b"\xd0\xcf\x11\xe0" + b"\0" * 512)
    if by == "content type":
        types = member(data, "[Content_Types].xml").replace(
            b"</Types>",
            b'<Override PartName="/word/media/notes.dat" ContentType='
            b'"application/vnd.ms-office.vbaProject"/></Types>',
        )
        return with_member(data, "[Content_Types].xml", types)
    rels = member(data, "word/_rels/document.xml.rels").replace(
        b"</Relationships>",
        b'<Relationship Id="rIdV" Type="http://schemas.microsoft.com/'
        b'office/2006/relationships/vbaProject" Target="media/notes.dat"/>'
        b"</Relationships>",
    )
    return with_member(data, "word/_rels/document.xml.rels", rels)


def shared_string_bomb(xlsx: bytes, keep_identity: bool) -> bytes:
    """Every cell of the sheet points at one 1 MB shared string."""
    huge = "A" * 1_000_000
    strings = (
        f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="1" uniqueCount="1"><si><t>{huge}</t></si></sst>'
    ).encode()
    sheet = member(xlsx, "xl/worksheets/sheet1.xml").decode()
    sheet = re.sub(
        r'<c r="([A-Z]+\d+)"([^>]*?)(/>|>.*?</c>)',
        lambda m: f'<c r="{m[1]}" t="s"><v>0</v></c>',
        sheet,
        flags=re.S,
    )
    data = with_member(xlsx, "xl/worksheets/sheet1.xml", sheet.encode())
    data = with_member(data, "xl/sharedStrings.xml", strings)
    if not keep_identity:
        data = with_member(data, "docProps/custom.xml", b"<Properties/>")
    return data


def bookmark_bomb(docx: bytes, form: FormDefinition) -> bytes:
    """5,000 unclosed bookmarks (named after the form's keys) before 400 KB of text."""
    names = [bookmark_name(f.key) for f in form.fields()]
    marks = "".join(
        f'<w:bookmarkStart w:id="{i}" w:name="{names[i % len(names)]}"/>' for i in range(5000)
    )
    text = "".join(f"<w:r><w:t>{'word ' * 16}</w:t></w:r>" for _ in range(5000))
    document = (
        f'<w:document xmlns:w="{W}"><w:body>{marks}<w:p>{text}</w:p></w:body></w:document>'
    ).encode()
    return with_member(docx, "word/document.xml", document)
