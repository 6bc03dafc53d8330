"""Bounded fuzzing of imports: a few thousand seeded byte-, zip-, XML- and email-level mutations
of real returns go through the importer, and every one is imported, unchanged or rejected with
a code: never a crash, never `read-failed` (that code means a reader bug), never a message of
more than one line, never a second current return for an audit.

Mutant `index` of a kind is drawn from `random.Random(f"{SEED}:{kind}:{index}")`, so the suite
sees the same files on every run and any one case can be rebuilt alone with
`mutant(corpus, kind, index)`. A failure names the first (lowest index) case of each distinct
failure, its exception and the innermost formtool frame of its traceback; each failure found
is also kept below as a minimised case (one small change to a good return) on both databases.
About 30 s of CPU: most of it is formtool reading the mutants that are still forms.
"""

from __future__ import annotations

import copy
import datetime as dt
import email
import email.policy
import functools
import hashlib
import io
import random
import re
import struct
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from lxml import etree

from formtool import store
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx, fill_xlsx, stamp_saved
from formtool.errors import IssueCode
from formtool.generate import write_forms
from formtool.read import READABLE, FormResolver, read_bytes
from formtool.read.batch import STATUSES, ImportOutcome, import_paths, import_return
from formtool.read.message import read_message
from formtool.read.validate import validate_return

from conftest import answers_for, date_keys, make_cases

SEED = 20261122
TODAY = dt.date(2026, 11, 22)
COUNTS = {"bytes": 800, "zip": 120, "xml": 120}  # imported from memory by import_return
PATH_SAMPLE = 20  # more of each kind, written to a folder and imported by import_paths
EMAILS = 250  # .eml files, imported by import_paths
STORED = ("imported", "updated", "history")  # outcomes that add a row to `returns`
CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)  # bidi overrides too
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
PKG = "http://schemas.openxmlformats.org/package/2006"
SUBTYPES = {
    ".docx": "vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

Op = Callable[[random.Random, bytes], bytes]
TreeOp = Callable[[random.Random, etree._Element], None]
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Base:
    name: str  # "csc-1.docx"; its suffix says how it is read
    data: bytes


@dataclass
class Corpus:
    db: store.Store
    resolve: FormResolver
    forms: list[Base]
    emails: list[Base]
    accepted: list[ImportOutcome]  # the unmutated forms, imported first


@dataclass(frozen=True)
class Mutant:
    kind: str
    index: int
    op: str
    base: str
    data: bytes

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index:04d}-{self.op}{Path(self.base).suffix}"


@dataclass
class Findings:
    """What the fuzz saw: outcome tallies, and the first case of each distinct failure."""

    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    failures: dict[str, tuple[str, int]] = field(default_factory=dict)  # why -> (case, seen)

    def fail(self, why: str, case: str) -> None:
        first, seen = self.failures.get(why, (case, 0))
        self.failures[why] = (first, seen + 1)

    def report(self) -> str:
        return "\n".join(
            f"{why}\n    first: {case} ({seen} cases)"
            for why, (case, seen) in self.failures.items()
        )


def _table(*ops: F) -> dict[str, F]:
    """Mutations by name (the function's, hyphenated), as a mutant's name shows them."""
    return {op.__name__.replace("_", "-"): op for op in ops}


# ---- byte level: the whole file, or one member's bytes -------------------------------------


def _span(rng: random.Random, size: int, most: int) -> tuple[int, int]:
    start = rng.randrange(max(size, 1))
    return start, min(size, start + rng.randint(1, most))


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data or b"\0")
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def insert_run(rng: random.Random, data: bytes) -> bytes:
    at = rng.randint(0, len(data))
    return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]


def delete_run(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, len(data), 256)
    return data[:start] + data[end:]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(max(len(data), 1))]


def duplicate_region(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, len(data), 2048)
    at = rng.randint(0, len(data))
    return data[:at] + data[start:end] + data[at:]


def zero_region(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, len(data), 512)
    return data[:start] + bytes(end - start) + data[end:]


BYTE_OPS = _table(flip, insert_run, delete_run, truncate, duplicate_region, zero_region)


# ---- zip level: members and header fields ---------------------------------------------------

Entry = tuple[str, bytes, int]  # member name, content, compression method
XML_PARTS = {  # the parts formtool reads, and how often each is picked
    "word/document.xml": 6,
    "xl/worksheets/sheet1.xml": 5,
    "xl/sharedStrings.xml": 3,
    "xl/workbook.xml": 4,
    "docProps/custom.xml": 3,
    "[Content_Types].xml": 1,
    "word/_rels/document.xml.rels": 1,
    "xl/_rels/workbook.xml.rels": 1,
    "word/footer1.xml": 1,
    "docProps/core.xml": 2,
}


def unzip(data: bytes) -> list[Entry]:
    return list(_members(data))


@functools.cache
def _members(data: bytes) -> tuple[Entry, ...]:  # the bases are unzipped again and again
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return tuple((i.filename, archive.read(i), i.compress_type) for i in archive.infolist())


def rezip(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of some mutations
        with zipfile.ZipFile(out, "w") as archive:
            for name, content, method in entries:
                archive.writestr(
                    zipfile.ZipInfo(name, (2026, 11, 20, 9, 30, 0)),
                    content,
                    method,
                    compresslevel=1,
                )
    return out.getvalue()


def member(data: bytes, name: str) -> bytes:
    return next(c for n, c, _ in _members(data) if n == name)


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    return rezip([(n, content if n == name else c, m) for n, c, m in unzip(data)])


def _pick_member(rng: random.Random, entries: list[Entry]) -> int:
    """A member index, the parts formtool reads three times as likely as the rest."""
    weights = [3 * XML_PARTS.get(name, 0) + 1 for name, _, _ in entries]
    return rng.choices(range(len(entries)), weights)[0]


def rewrite_member(rng: random.Random, data: bytes) -> bytes:
    entries = unzip(data)
    i = _pick_member(rng, entries)
    name, content, method = entries[i]
    entries[i] = (name, rng.choice(list(BYTE_OPS.values()))(rng, content), method)
    return rezip(entries)


def drop_member(rng: random.Random, data: bytes) -> bytes:
    entries = unzip(data)
    del entries[_pick_member(rng, entries)]
    return rezip(entries)


def duplicate_name(rng: random.Random, data: bytes) -> bytes:
    entries = unzip(data)
    i = _pick_member(rng, entries)
    name, content, method = entries[i]
    twin = rng.choice([content, rng.choice(entries)[1], flip(rng, content)])
    entries.insert(rng.choice([i, i + 1, len(entries)]), (name, twin, method))
    return rezip(entries)


def rename_member(rng: random.Random, data: bytes) -> bytes:
    entries = unzip(data)
    i = _pick_member(rng, entries)
    name, content, method = entries[i]
    renamed = rng.choice(
        [name.upper(), "/" + name, "./" + name, name.replace("/", "\\"), name + " ", "../" + name]
    )
    entries[i] = (renamed, content, method)
    return rezip(entries)


def add_member(rng: random.Random, data: bytes) -> bytes:
    name = rng.choice(
        [
            *("../../evil.xml", "word/media/image1.png", "x" * 300, "word/", "customXml/item1.xml"),
            *("word/ドキュメント.xml", "_rels/.rels"),
        ]
    )
    content = rng.choice([b"", b"<a/>", rng.randbytes(256), b"<?xml version='1.0'?><x>"])
    entries = unzip(data)
    entries.insert(rng.randint(0, len(entries)), (name, content, zipfile.ZIP_DEFLATED))
    return rezip(entries)


def recompress(rng: random.Random, data: bytes) -> bytes:
    """Valid, but not how Office writes: every member stored, bzip2- or lzma-compressed."""
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
    return rezip([(name, content, method) for name, content, _ in unzip(data)])


#: Header field offsets after each signature, as PKWARE's APPNOTE lays them out; the fields
#: at FOUR_BYTES are 4 bytes wide (CRCs, sizes, offsets), the rest 2.
HEADER_FIELDS = {
    b"PK\x03\x04": (4, 6, 8, 14, 18, 22, 26, 28),
    b"PK\x01\x02": (6, 8, 10, 16, 20, 24, 28, 30, 32, 34, 42),
    b"PK\x05\x06": (4, 6, 8, 10, 12, 16, 20),
}
FOUR_BYTES = {b"PK\x03\x04": {14, 18, 22}, b"PK\x01\x02": {16, 20, 24, 42}, b"PK\x05\x06": {12, 16}}
METHODS = (0, 1, 6, 8, 9, 12, 14, 19, 93, 95, 98, 99, 0xFFFF)  # incl. AES (99), unknown


def _headers(data: bytes, signature: bytes) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(signature), data)]


def _patch(rng: random.Random, data: bytearray, at: int, size: int) -> None:
    if at + size > len(data):
        return
    fmt = "<H" if size == 2 else "<I"
    old = struct.unpack_from(fmt, data, at)[0]
    top = (1 << (8 * size)) - 1
    new = rng.choice(
        [0, 1, top, top - 1, old + 1, max(old - 1, 0), rng.randint(0, top), old * 2, old // 2]
    )
    struct.pack_into(fmt, data, at, new & top)


def patch_header(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        signature = rng.choice(list(HEADER_FIELDS))
        found = _headers(data, signature)
        if found:
            offset = rng.choice(HEADER_FIELDS[signature])
            size = 4 if offset in FOUR_BYTES[signature] else 2
            _patch(rng, out, rng.choice(found) + offset, size)
    return bytes(out)


def patch_compression(rng: random.Random, data: bytes) -> bytes:
    """Change one member's compression method and flags, in its local or central header or
    both (encrypted, data-descriptor and strong-encryption bits included)."""
    out = bytearray(data)
    local, central = _headers(data, b"PK\x03\x04"), _headers(data, b"PK\x01\x02")
    i = rng.randrange(min(len(local), len(central)))
    method, flags = rng.choice(METHODS), rng.choice([0, 1, 8, 9, 0x40, 0x800, 0x41, 0xFFFF])
    for place, offset in rng.choice([[(local, 6)], [(central, 8)], [(local, 6), (central, 8)]]):
        at = place[i] + offset
        struct.pack_into(
            "<HH",
            out,
            at,
            flags if rng.random() < 0.5 else struct.unpack_from("<H", out, at)[0],
            method,
        )
    return bytes(out)


def frame(rng: random.Random, data: bytes) -> bytes:
    """Junk before or after the archive, or an archive comment that looks like a directory."""
    junk = rng.choice(
        [rng.randbytes(rng.randint(1, 600)), b"PK\x05\x06" + bytes(18), b"PK\x03\x04" * 8]
    )
    where = rng.choice(["before", "after", "comment"])
    if where == "before":
        return junk + data
    if where == "after":
        return data + junk
    out = bytearray(data + junk[:0xFFFF])
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<H", out, end + 20, len(junk[:0xFFFF]))
    return bytes(out)


ZIP_OPS = _table(rewrite_member, drop_member, duplicate_name, rename_member, add_member)
ZIP_OPS |= _table(recompress, patch_header, patch_compression, frame)


# ---- XML level: one part parsed, changed structurally, written back ------------------------

ATTRIBUTES = {  # attributes the readers rely on, by element local name
    "bookmarkStart": ("name", "id"),
    "bookmarkEnd": ("id",),
    "tag": ("val",),
    "c": ("r", "t"),
    "definedName": ("name", "localSheetId"),
    "sheet": ("name", "id"),
    "workbookPr": ("date1904",),
    "Relationship": ("Target", "Type", "Id", "TargetMode"),
    "property": ("name",),
    "Override": ("ContentType", "PartName"),
    "Default": ("ContentType",),
}
TEXTS = ("t", "v", "definedName", "lpwstr", "modified", "f")
OVERFLOWS = ("99999999999999999999999999", "2147483648", "9" * 5000)  # past 64 and 32 bits
NUMBERS = (
    *OVERFLOWS,
    *("1e309", "nan", "-inf", "-1", "0", "١٢", "2958466", "1.5", "0x1F", "1_000", " 7 ", ""),
)
DATES = (
    *("0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "2026-13-45T99:99:99Z"),
    *("2026-11-20T09:00:00+25:00", "2026-11-20", "1999-01-01T00:00:00Z", "2999-01-01T00:00Z"),
)
NASTY = (
    *NUMBERS,
    *DATES,
    *(" ", "1", "\u202e", "a\u0085b", "../../etc/passwd", "http://example.invalid/x"),
    *("ft_kss1_seen_alone", "#REF!", "'Audit'!$D$30", "'It''s'!C3", "Audit'!$D$30"),
    *("Audit!A1:B2", "Final", "Yes", "true", "$D$30", "A0", "a1", "XFD1048577", "ZZZZ1"),
    *("s", "inlineStr", "e", "str", "b", "d"),  # cell types
    *("x" * 5000, "Audit ID: CSC-NOPE-1 · Form: csc v1 · Checksum: 00"),
)
_VERSION = re.compile(r"(Form: *[a-z_]+ *v)\d+")
LONG_TEXTS = ("y" * 60_000, "Seen.\n" * 9_000)  # past the per-field cap of 50,000 characters


def _local(name: str) -> str:
    return name.rpartition("}")[2]


def _elements(root: etree._Element) -> list[etree._Element]:
    """Real elements below the root (no comments or processing instructions)."""
    return list(root.iter(etree.Element))[1:]


def _attribute(element: etree._Element, local: str) -> str | None:
    return next((a for a in element.attrib if _local(a) == local), None)


def delete_elements(rng: random.Random, root: etree._Element) -> None:
    found = _elements(root)
    for el in rng.sample(found, min(len(found), rng.choice([1, 1, 2, 5, 20]))):
        if el.getparent() is not None:
            el.getparent().remove(el)


def duplicate_subtree(rng: random.Random, root: etree._Element) -> None:
    found = _elements(root)
    if not found:
        return
    el = rng.choice(found)
    target = rng.choice([el.getparent(), rng.choice(found)])
    twin = copy.deepcopy(el)  # copied first: the target may be inside the element itself
    small = sum(1 for _ in el.iter()) <= 20  # only small subtrees are repeated hundreds of times
    for _ in range(rng.choice([1, 1, 2, 3, 250 if small else 3])):
        target.insert(rng.randint(0, len(target)), copy.deepcopy(twin))


def swap_siblings(rng: random.Random, root: etree._Element) -> None:
    parents = [el for el in [root, *_elements(root)] if len(el) > 1]
    if parents:
        parent = rng.choice(parents)
        children = list(parent)
        i, j = rng.sample(range(len(children)), 2)
        children[i], children[j] = children[j], children[i]
        parent[:] = children


def move_element(rng: random.Random, root: etree._Element) -> None:
    found = _elements(root)
    if not found:
        return
    el = rng.choice(found)
    for target in (rng.choice([root, *found]) for _ in range(10)):
        if target is not el and el not in target.iterancestors():  # not into itself
            target.insert(rng.randint(0, len(target)), el)
            return


def set_attribute(rng: random.Random, root: etree._Element) -> None:
    """A reader's attribute (bookmark names, cell refs, types, relationship targets) set to
    another element's value or a nasty one; else any attribute of any element."""
    found = [
        (el, a)
        for el in root.iter(*(f"{{*}}{tag}" for tag in ATTRIBUTES))
        for local in ATTRIBUTES[_local(el.tag)]
        if (a := _attribute(el, local)) is not None
    ]
    if not found:
        found = [(el, a) for el in _elements(root) for a in el.attrib]
    if not found:
        return
    values: dict[str, list[str]] = {}
    for el, name in found:
        values.setdefault(name, []).append(el.get(name, ""))
    for el, name in rng.sample(found, min(len(found), rng.choice([1, 1, 3, 30]))):
        el.set(name, rng.choice(values[name] if rng.random() < 0.4 else NASTY))


def set_text(rng: random.Random, root: etree._Element) -> None:
    """Text the readers take (answers, cell values, defined names, properties) made odd."""
    found = list(root.iter(*(f"{{*}}{tag}" for tag in TEXTS))) or _elements(root)
    if found:
        el = rng.choice(found)
        el.text = rng.choice(LONG_TEXTS) if rng.random() < 0.05 else rng.choice(NASTY)


def metadata(rng: random.Random, root: etree._Element) -> None:
    """What identifies a return made odd: property values (the audit, form, version and
    checksum), the saved date, the form version in the visible identity line."""
    for el in root.iter("{*}lpwstr", "{*}modified", "{*}created", "{*}t"):
        text = el.text or ""
        if _local(el.tag) == "t" and _VERSION.search(text):
            el.text = _VERSION.sub(lambda m: m[1] + rng.choice(OVERFLOWS), text)
        elif _local(el.tag) in ("modified", "created"):
            el.text = rng.choice(DATES)
        elif _local(el.tag) != "t" and rng.random() < 0.5:
            el.text = rng.choice(rng.choice([OVERFLOWS, NUMBERS]))


def shared_index(rng: random.Random, root: etree._Element) -> None:
    """Cells turned into shared-string references past (or before) the table's end."""
    cells = list(root.iter("{*}c"))
    for cell in rng.sample(cells, min(len(cells), rng.choice([1, 5, 100]))):
        for child in list(cell):
            cell.remove(child)
        cell.set("t", "s")
        value = etree.SubElement(cell, S + "v")
        value.text = rng.choice(["-1", "1000000", str(10**30), "1.0", "", " 3", "٣", "40"])


def deep_nest(rng: random.Random, root: etree._Element) -> None:
    found = _elements(root)
    if not found:
        return
    el = rng.choice(found)
    parent = el.getparent()
    outer = inner = etree.Element(rng.choice([el.tag, parent.tag]))
    for _ in range(rng.choice([40, 300, 3000])):
        inner = etree.SubElement(inner, inner.tag)
    parent.replace(el, outer)
    inner.append(el)


TAGS = (  # what an element may be renamed to
    *("p", "r", "t", "tbl", "tr", "tc", "bookmarkStart", "bookmarkEnd", "sdt", "sdtContent"),
    *("c", "v", "is", "si", "row", "definedName", "sheet", "property", "Relationship"),
)


def rename_tag(rng: random.Random, root: etree._Element) -> None:
    found = _elements(root)
    if found:
        el = rng.choice(found)
        local = rng.choice(TAGS)
        namespace = etree.QName(el).namespace if rng.random() < 0.7 else "urn:fuzz"
        el.tag = etree.QName(namespace, local).text


TREE_OPS: dict[str, TreeOp] = _table(delete_elements, duplicate_subtree, swap_siblings)
TREE_OPS |= _table(move_element, set_attribute, set_text, metadata, shared_index, deep_nest)
TREE_OPS |= _table(rename_tag)
TREE_WEIGHTS = {"metadata": 3, "set-attribute": 2, "set-text": 2}  # picked more often
CONTROLS = (
    *(b"\x01", b"\x0b", b"\x1b[31m", b"\x7f", b"\xc2\x85", b"\r\n", b"\t"),  # raw
    *(b"&#1;", b"&#x1b;", b"&#x7f;", b"&#x85;", b"&#x9b;", b"&#x202e;", b"&#xfffe;"),
    *(b"&#xd800;", b"&#0;", b"&#10;&#13;"),
)
BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82")
ENCODINGS = (
    *("UTF-16", "utf-16-le", "UTF-32", "ISO-8859-1", "cp1252", "ascii", "utf-7"),
    *("EBCDIC-US", "bogus-42", ""),
)
_DECLARATION = re.compile(rb"encoding=['\"][^'\"]*['\"]")


def _after_tag(rng: random.Random, text: bytes) -> int:
    ends = [m.end() for m in re.finditer(rb">", text)]
    return rng.choice(ends) if ends else 0


def inject(rng: random.Random, text: bytes) -> bytes:
    """Control characters (raw or as references) or invalid UTF-8 between tags."""
    at = _after_tag(rng, text)
    piece = rng.choice(CONTROLS) if rng.random() < 0.6 else rng.choice(BAD_UTF8)
    return text[:at] + piece * rng.choice([1, 1, 3, 400]) + text[at:]


def change_encoding(rng: random.Random, text: bytes) -> bytes:
    """Declare another encoding (truthfully re-encoded, or not), or drop the declaration."""
    name = rng.choice(ENCODINGS)
    declared = _DECLARATION.sub(f'encoding="{name}"'.encode() if name else b"", text, count=1)
    if rng.random() < 0.5 or name in ("", "bogus-42", "EBCDIC-US"):
        return declared if rng.random() < 0.8 else b"\xef\xbb\xbf" + declared
    return declared.decode("utf-8").encode(name, errors="xmlcharrefreplace")


def add_doctype(rng: random.Random, text: bytes) -> bytes:
    doctype = rng.choice(
        [
            b'<!DOCTYPE x [<!ENTITY a "b">]>',
            b"<!DOCTYPE x>",
            b'<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd">',
        ]
    )
    end = text.find(b"?>") + 2 if text.startswith(b"<?xml") else 0
    return text[:end] + doctype + text[end:]


TEXT_OPS = _table(inject, change_encoding, add_doctype)


def mutate_part(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """One XML part of the package: 1-3 structural changes, then perhaps a textual one."""
    entries = unzip(data)
    parts = [name for name, _, _ in entries if name in XML_PARTS]
    name = rng.choices(parts, [XML_PARTS[p] for p in parts])[0]
    root = etree.fromstring(member(data, name))
    weights = [TREE_WEIGHTS.get(op, 1) for op in TREE_OPS]
    ops = rng.choices(list(TREE_OPS), weights, k=rng.randint(1, 3)) if rng.random() < 0.8 else []
    for op in ops:
        TREE_OPS[op](rng, root)
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    if not ops or rng.random() < 0.25:
        op = rng.choice(list(TEXT_OPS))
        text = TEXT_OPS[op](rng, text)
        ops.append(op)
    return f"{Path(name).stem}-{'+'.join(ops)}", with_member(data, name, text)


# ---- emails --------------------------------------------------------------------------------


def email_with(
    attachments: list[tuple[str, bytes]], forwarded: EmailMessage | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Auditor One <auditor.one@example.org>"
    msg["To"] = "qa@example.org"
    msg["Subject"] = "Completed audit"
    msg["Date"] = "Mon, 23 Nov 2026 10:15:00 +0000"
    msg.set_content("Please find the completed form attached.\n")
    for name, data in attachments:
        subtype = SUBTYPES.get(Path(name).suffix, "octet-stream")
        msg.add_attachment(data, maintype="application", subtype=subtype, filename=name)
    if forwarded is not None:
        msg.add_attachment(forwarded)
    if msg.is_multipart():  # a boundary from its content, not a random one, so runs agree
        inside = [n.encode() + d for n, d in attachments] + [
            forwarded.as_bytes() if forwarded else b""
        ]
        msg.set_boundary(f"fuzz-{hashlib.sha256(b''.join(inside)).hexdigest()[:24]}")
    return msg


def _parsed(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


HEADER_VALUES = (
    *(b"", b"=?utf-8?b?####?=", b"=?x-unknown?q?abc?=", b"multipart/mixed; boundary="),
    *(b"attachment; filename*=utf-8''%ff%fe%00.docx", b"x" * 5000),
    *(b'attachment; filename="a.docx"; filename="b.xlsx"', b'multipart/alternative; boundary=""'),
    *(b"attachment; filename*0*=utf-8''a; filename*1=b.docx", b"text/plain; charset=bogus"),
    *(b'application/octet-stream; name="\xff\xfe.docx"', b"message/rfc822"),
    *(b"base64", b"quoted-printable", b"x-uuencode", b"8bit"),  # transfer encodings
)
_HEADER_LINE = re.compile(rb"^([A-Za-z-]+): (.*)$", re.M)
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/=]{40,}\r?$", re.M)
ATTACHMENT_NAMES = (
    *("CSC.DOCX", "form.docm", "renamed.xlsx", "", "../../etc/form.docx", "form.docx.exe"),
    *("evil\x1b[31m.docx", "a\u202excod.docx", "x" * 300 + ".docx", "form"),
    "=?utf-8?q?enc=C3=A9.docx?=",
)


def mangle_header(rng: random.Random, data: bytes) -> bytes:
    lines = list(_HEADER_LINE.finditer(data))
    line = rng.choice(lines)
    return data[: line.start(2)] + rng.choice(HEADER_VALUES) + data[line.end(2) :]


def corrupt_base64(rng: random.Random, data: bytes) -> bytes:
    lines = list(_BASE64_LINE.finditer(data))
    out = data
    for line in sorted(
        rng.sample(lines, min(len(lines), rng.randint(1, 5))), key=lambda m: -m.start()
    ):
        piece = rng.choice([b"", b"!!!", line[0][::-1], line[0] * 2, line[0].rstrip(b"=")])
        out = out[: line.start()] + piece + out[line.end() :]
    return out


def nest(rng: random.Random, data: bytes) -> bytes:
    """The email forwarded inside emails, one to five deep."""
    msg = _parsed(data)
    for _ in range(rng.randint(1, 5)):
        msg = email_with([], msg)
    return msg.as_bytes()


def swap_attachment(rng: random.Random, data: bytes) -> bytes:
    """A form attached to the email renamed, or replaced by a byte, zip or XML mutant of it."""
    msg = _parsed(data)
    parts = [p for p in msg.walk() if Path(p.get_filename() or "").suffix in READABLE]
    part = rng.choice(parts)
    content, name = part.get_content(), part.get_filename() or ""
    if rng.random() < 0.3:
        name = rng.choice(ATTACHMENT_NAMES)
    else:
        ops = [*BYTE_OPS.values(), *ZIP_OPS.values(), lambda r, d: mutate_part(r, d)[1]]
        content = rng.choice(ops)(rng, content)
    part.set_content(content, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


EMAIL_OPS = BYTE_OPS | _table(mangle_header, corrupt_base64, nest, swap_attachment)


# ---- the corpus and the mutants ------------------------------------------------------------


def with_shared_strings(xlsx: bytes) -> bytes:
    """The workbook with its inline strings moved to a shared-string table, as Excel saves."""
    sheet = etree.fromstring(member(xlsx, "xl/worksheets/sheet1.xml"))
    table = etree.Element(S + "sst")
    for cell in sheet.iter(S + "c"):
        inline = cell.find(S + "is")
        if cell.get("t") == "inlineStr" and inline is not None:
            etree.SubElement(etree.SubElement(table, S + "si"), S + "t").text = "".join(
                inline.itertext()
            )
            cell.remove(inline)
            cell.set("t", "s")
            etree.SubElement(cell, S + "v").text = str(len(table) - 1)
    table.set("count", str(len(table)))
    entries = [
        (n, etree.tostring(sheet) if n == "xl/worksheets/sheet1.xml" else c, m)
        for n, c, m in unzip(xlsx)
    ]
    types = etree.fromstring(member(xlsx, "[Content_Types].xml"))
    etree.SubElement(
        types,
        f"{{{PKG}/content-types}}Override",
        PartName="/xl/sharedStrings.xml",
        ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml",
    )
    entries = [
        (n, etree.tostring(types) if n == "[Content_Types].xml" else c, m) for n, c, m in entries
    ]
    return rezip([*entries, ("xl/sharedStrings.xml", etree.tostring(table), zipfile.ZIP_DEFLATED)])


def filled_returns(db: store.Store, folder: Path) -> list[Base]:
    """Two csc audits as Word and Excel, one early help audit as Word, all filled in Final
    and saved an hour apart (as Word and Excel stamp them)."""
    bases: list[Base] = []
    for form_id, formats, count in (("csc", ("docx", "xlsx"), 2), ("early_help", ("docx",), 1)):
        form = get_form(form_id)
        answers = {**answers_for(form), "completion.status": "Final"}
        made = write_forms(form, make_cases(folder, form, count), folder / form_id, formats, db=db)
        for made_form in made:
            blank = made_form.path.read_bytes()
            data = (
                fill_docx(blank, answers)
                if made_form.format == "docx"
                else fill_xlsx(blank, answers, date_keys(form))
            )
            saved = dt.datetime(2026, 11, 20, 9) + dt.timedelta(hours=len(bases))
            bases.append(Base(made_form.path.name, stamp_saved(data, saved)))
    excel = next(b for b in bases if b.name.endswith(".xlsx"))
    bases.append(Base(f"shared-strings-{excel.name}", with_shared_strings(excel.data)))
    return bases


def emails(forms: list[Base]) -> list[Base]:
    docx = next(b for b in forms if b.name.endswith(".docx"))
    xlsx = next(b for b in forms if b.name.endswith(".xlsx"))
    inner = email_with([(xlsx.name, xlsx.data)])
    return [
        Base("reply.eml", email_with([(docx.name, docx.data)]).as_bytes()),
        Base(
            "forwarded.eml",
            email_with([("notes.pdf", b"%PDF-1.7"), (docx.name, docx.data)], inner).as_bytes(),
        ),
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    folder = tmp_path_factory.mktemp("fuzz")
    db = store.open_store(f"sqlite:///{folder / 'store.db'}")
    resolve = db.resolver()
    forms = filled_returns(db, folder)
    accepted = [import_return(db, b.name, b.data, today=TODAY, resolve=resolve) for b in forms]
    yield Corpus(db, resolve, forms, emails(forms), accepted)
    db.engine.dispose()


def mutant(corpus: Corpus, kind: str, index: int) -> Mutant:
    """Mutant `index` of a kind ("bytes", "zip", "xml" or "email"), the same on every run."""
    rng = random.Random(f"{SEED}:{kind}:{index}")
    base = rng.choice(corpus.emails if kind == "email" else corpus.forms)
    if kind == "xml":
        op, data = mutate_part(rng, base.data)
        return Mutant(kind, index, op, base.name, data)
    ops = {"bytes": BYTE_OPS, "zip": ZIP_OPS, "email": EMAIL_OPS}[kind]
    op = rng.choice(list(ops))
    return Mutant(kind, index, op, base.name, ops[op](rng, base.data))


# ---- checking outcomes ---------------------------------------------------------------------


def outcome_problems(outcome: ImportOutcome) -> list[str]:
    """What is wrong with an outcome (nothing, for a well-behaved importer)."""
    problems = []
    if outcome.status not in STATUSES:
        problems.append(f"unknown status {outcome.status!r}")
    if outcome.status == "rejected" and not outcome.issues:
        problems.append("rejected without an issue")
    for issue in outcome.issues:
        if issue.code is IssueCode.read_failed:
            problems.append(f"read-failed ({issue.value.split(':')[0]})")
        if CONTROL.search(issue.message):
            problems.append(f"{issue.code.label}: message not on one line")
    return problems


def innermost(exc: BaseException) -> str:
    """The deepest formtool frame of an exception's traceback: file:line in function."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "/formtool/" in f.filename and "/tests/" not in f.filename
    ]
    if not frames:
        return "no formtool frame"
    last = frames[-1]
    return f"{last.filename.split('/formtool/')[-1]}:{last.lineno} in {last.name}: {last.line}"


def diagnose(corpus: Corpus, name: str, data: bytes) -> str:
    """Read (and validate) a file again outside the importer, to see where it broke."""
    if name.endswith(".eml"):
        found = [
            diagnose(corpus, a.name, a.data)
            for a in read_message(data, ".eml").attachments
            if Path(a.name).suffix.lower() in READABLE
        ]
        return next((f for f in found if f != "not reproduced"), "not reproduced")
    try:
        raw = read_bytes(data, Path(name).suffix, corpus.resolve)
        validate_return(raw, name, None, TODAY)
    except Exception as exc:
        if type(exc).__name__ != "Rejected":
            return f"{type(exc).__name__} at formtool/{innermost(exc)}"
    return "not reproduced"


Unit = tuple[str, Callable[[], list[ImportOutcome]]]  # what it imports, and how


def check_batch(
    corpus: Corpus,
    cases: list[tuple[str, bytes]],
    units: list[Unit],
    owner: Callable[[ImportOutcome], str],
) -> Findings:
    """Run the imports; tally their outcomes, note each failure once, check the database."""
    findings = Findings()
    before = _stored_rows(corpus.db)
    by_name = dict(cases)
    seen = set()
    for unit, run in units:
        try:
            outcomes = run()
        except Exception as exc:  # escaped: in a batch, no file after this one is imported
            findings.fail(f"escaped {type(exc).__name__} at formtool/{innermost(exc)}", unit)
            continue
        for outcome in outcomes:
            findings.statuses[outcome.status] += 1
            findings.codes.update(i.code.label for i in outcome.issues)
            case = owner(outcome)
            seen.add(case)
            for problem in outcome_problems(outcome):
                where = (
                    diagnose(corpus, case, by_name.get(case, b""))
                    if problem.startswith("read-failed")
                    else ""
                )
                findings.fail(f"{problem} {where}".strip(), case)
    for case in by_name.keys() - seen:
        findings.fail("no outcome for the file", case)
    stored = sum(findings.statuses[s] for s in STORED)
    if _stored_rows(corpus.db) != before + stored:
        findings.fail("returns rows do not match the stored outcomes", "database")
    if _audits_with_two_current(corpus.db):
        findings.fail("an audit has more than one current return", "database")
    return findings


def _stored_rows(db: store.Store) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.returns)).scalar_one())


def _audits_with_two_current(db: store.Store) -> list[str]:
    r = store.returns.c
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(r.audit_id)
                .where(r.is_current)
                .group_by(r.audit_id)
                .having(sa.func.count() > 1)
            ).scalars()
        )


def summary(kind: str, count: int, cpu: float, findings: Findings) -> str:
    return (
        f"{kind}: {count} files in {cpu:.1f}s of CPU; {dict(findings.statuses)}; "
        f"codes {dict(findings.codes.most_common())}"
    )


# ---- the tests -----------------------------------------------------------------------------


def test_unmutated_returns_are_accepted(corpus: Corpus) -> None:
    """The fuzz starts from returns the importer takes, or it would only test rejection."""
    statuses = Counter(o.status for o in corpus.accepted)
    assert statuses == {"imported": 3, "updated": 3}  # three audits, each also as .xlsx
    assert not [i for o in corpus.accepted for i in o.issues if not i.is_warning]


@pytest.mark.parametrize("kind", list(COUNTS))
def test_mutated_returns_import_or_reject(corpus: Corpus, kind: str) -> None:
    started = time.process_time()
    mutants = [mutant(corpus, kind, i) for i in range(COUNTS[kind])]
    cases = [(m.name, m.data) for m in mutants]

    def importer(name: str, data: bytes) -> Callable[[], list[ImportOutcome]]:
        return lambda: [import_return(corpus.db, name, data, today=TODAY, resolve=corpus.resolve)]

    units = [(name, importer(name, data)) for name, data in cases]
    findings = check_batch(corpus, cases, units, lambda outcome: outcome.file)
    print(summary(kind, len(cases), time.process_time() - started, findings))
    assert not findings.failures, findings.report()


@pytest.mark.parametrize("kind", ["forms", "emails"])
def test_mutated_files_through_import_paths(corpus: Corpus, kind: str, tmp_path: Path) -> None:
    """Files on disk, through discovery, safe opening and (for emails) the message reader."""
    started = time.process_time()
    if kind == "forms":
        mutants = [
            mutant(corpus, k, i)
            for k, first in COUNTS.items()
            for i in range(first, first + PATH_SAMPLE)
        ]
    else:
        mutants = [mutant(corpus, "email", i) for i in range(EMAILS)]
    for m in mutants:
        (tmp_path / m.name).write_bytes(m.data)
    cases = [(m.name, m.data) for m in mutants]

    def owner(outcome: ImportOutcome) -> str:
        return Path(outcome.file.split(" › ")[0]).name

    units = [("import_paths", lambda: import_paths(corpus.db, [tmp_path], TODAY))]
    findings = check_batch(corpus, cases, units, owner)
    print(summary(kind, len(cases), time.process_time() - started, findings))
    assert not findings.failures, findings.report()


# ---- failures the fuzz found, minimised: one small change to a good return -----------------

CUSTOM = "{http://schemas.openxmlformats.org/officeDocument/2006/custom-properties}"


def with_property(docx: bytes, name: str, value: str) -> bytes:
    """The return with one custom document property's value replaced."""
    custom = etree.fromstring(member(docx, "docProps/custom.xml"))
    for prop in custom.iter(CUSTOM + "property"):
        if prop.get("name") == name:
            prop[0].text = value
    return with_member(docx, "docProps/custom.xml", etree.tostring(custom))


def with_saved_text(docx: bytes, text: str) -> bytes:
    """The return saved at a time `stamp_saved` cannot write (an offset, an odd year)."""
    stamped = stamp_saved(docx, dt.datetime(2026, 11, 20, 9))
    core = member(stamped, "docProps/core.xml")
    return with_member(
        stamped, "docProps/core.xml", core.replace(b"2026-11-20T09:00:00Z", text.encode())
    )


def attached_as(docx: bytes, encoded_name: str) -> bytes:
    """An email carrying the return under a raw (RFC 2231) file name."""
    msg = email_with([("form.docx", docx)]).as_bytes()
    return msg.replace(b'filename="form.docx"', f"filename*={encoded_name}".encode())


MINIMISED: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    # xml-0254-custom-metadata: FormtoolFormVersion past 64 bits (past 32 on PostgreSQL)
    "version-out-of-range": (
        "bad.docx",
        lambda docx: with_property(docx, "FormtoolFormVersion", "99999999999999999999999999"),
    ),
    # xml-0077-core-metadata: dcterms:modified that leaves the calendar when made UTC
    # (0001-01-01T00:00:00+01:00 fails the same way)
    "saved-date-overflows": (
        "bad.docx",
        lambda docx: with_saved_text(docx, "9999-12-31T23:00:00-05:00"),
    ),
    # found by review, not by the SQLite fuzz: a NUL in an attachment's name
    "nul-in-attachment-name": ("bad.eml", lambda docx: attached_as(docx, "utf-8''%00form.docx")),
}


@pytest.mark.parametrize("case", list(MINIMISED))
def test_minimised_failures(db: store.Store, tmp_path: Path, case: str) -> None:
    """Each failure on both databases: the batch goes on, the file gets an outcome with a
    code, and what is stored could be stored on either database."""
    form = get_form("csc")
    made = write_forms(form, make_cases(tmp_path, form, 2), tmp_path / "forms", ("docx",), db=db)
    answers = {**answers_for(form), "completion.status": "Final"}
    bad, good = (fill_docx(m.path.read_bytes(), answers) for m in made)
    name, damage = MINIMISED[case]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(damage(bad))
    (folder / "zz-good.docx").write_bytes(good)
    outcomes = import_paths(db, [folder], TODAY)
    assert [o.status for o in outcomes][-1] == "imported"  # the batch went on
    assert [p for o in outcomes for p in outcome_problems(o)] == []
    with db.engine.connect() as conn:
        names = conn.execute(sa.select(store.returns.c.file_name)).scalars().all()
    assert not [n for n in names if "\x00" in n]
