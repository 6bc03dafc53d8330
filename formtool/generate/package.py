"""What the Word and Excel generators share: a compiled template with fact slots, and
deterministic zip writing (fixed timestamps and order, so same inputs give the same bytes)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SLOT = "{{ft:%s}}"  # a fact slot in a compiled template part
_SLOT_RE = re.compile(r"\{\{ft:([a-z0-9_]+)\}\}")


def slot(name: str) -> str:
    return SLOT % name


def xml_text(value: str) -> str:
    """Text escaped for XML content, with characters XML 1.0 forbids removed."""
    return escape(_XML_ILLEGAL.sub("", value))


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class CompiledPart:
    """One zip member, split at its fact slots so filling it is a single join."""

    name: str
    pieces: tuple[str, ...]  # literal, slot name, literal, slot name, ..., literal
    static: bytes | None = None  # members without slots are stored ready-encoded

    @classmethod
    def of(cls, name: str, content: str | bytes) -> CompiledPart:
        if isinstance(content, bytes):
            return cls(name, (), content)
        pieces = tuple(_SLOT_RE.split(content))
        if len(pieces) == 1:
            return cls(name, (), content.encode("utf-8"))
        return cls(name, pieces)

    def fill(self, values: Mapping[str, str]) -> bytes:
        if self.static is not None:
            return self.static
        out = list(self.pieces)
        for i in range(1, len(out), 2):
            out[i] = values[out[i]]
        return "".join(out).encode("utf-8")


@dataclass(frozen=True)
class CompiledPackage:
    """A form compiled once; `fill` makes one case's file from it."""

    parts: tuple[CompiledPart, ...]

    def fill(self, values: Mapping[str, str]) -> bytes:
        return write_zip((p.name, p.fill(values)) for p in self.parts)


def write_zip(members: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()
