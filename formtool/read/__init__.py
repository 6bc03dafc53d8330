"""Returned forms in: tell what a file really is (sniff.py), identify the audit and read every
answer by its stable key (docx.py, xlsx.py, over the hostile-file-safe ooxml.py and
limits.py), check what was read (validate.py), and import batches of files and emails
(batch.py, message.py) and the answers given in the web form (web.py); case lists come in
here too (cases.py).

`read_bytes` raises `Rejected` (one issue code, one reason) for anything that cannot be read
as a form; what it returns has not been validated yet (see read/validate.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from formtool.definitions import Field, FormDefinition, FormResolver, get_form
from formtool.definitions.identity import Identity
from formtool.definitions.scales import KINDS, LEGACY_PLACEHOLDERS, FieldKind
from formtool.errors import DefinitionError, IssueCode, Rejected
from formtool.read import docx as docx_reader
from formtool.read import xlsx as xlsx_reader
from formtool.read.notes import Note
from formtool.read.ooxml import Package, saved_at
from formtool.read.sniff import sniff

READABLE = (".docx", ".xlsx")
#: Finds the definition a return names: (form id, version) -> form, or Rejected.


@dataclass(frozen=True)
class RawReturn:
    """What a returned file says, before validation: identity and answers by key."""

    identity: Identity
    form: FormDefinition
    values: dict[str, str] = field(default_factory=dict)
    method: str = ""  # how the answers were found: bookmarks, tags, table layout, names
    saved_at: dt.datetime | None = None  # core properties dcterms:modified, UTC
    notes: tuple[Note, ...] = ()  # what the reader warns about (typed outside a box, ...)


def installed_form(form_id: str, version: int) -> FormDefinition:
    """The definition from the forms folders (the default resolver, without a database)."""
    try:
        return get_form(form_id, version)
    except DefinitionError:
        raise Rejected(IssueCode.unknown_form, form_id) from None


def _saved(text: str) -> dt.datetime | None:
    """dcterms:modified as naive UTC; None when absent, unreadable or in the future."""
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is not None:  # 9999-12-31T23:00-05:00 has no UTC date: not a date
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    latest = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)  # real time
    if stamp.year < 2001 or stamp > latest:
        return None  # formtool's own unsaved forms carry 2000-01-01; clocks can be wrong
    return stamp.replace(microsecond=0)


@lru_cache(maxsize=8192)
def _placeholders(form: FormDefinition, key: str) -> frozenset[str]:
    """What a key's empty control shows (worked out once per form and key: every return asks)."""
    found: Field | None = form.field_or_none(key)
    kind = found.kind if found is not None else FieldKind.text
    return frozenset({KINDS[kind].placeholder, *(found.placeholders() if found else ())})


def _clean(form: FormDefinition, values: dict[str, str]) -> dict[str, str]:
    """Empty controls still show their placeholder text: read those as empty."""
    return {
        k: "" if v in LEGACY_PLACEHOLDERS or v in _placeholders(form, k) else v
        for k, v in values.items()
    }


def form_kind(data: bytes, suffix: str) -> str:
    """What the bytes are as a form: "docx" or "xlsx", whatever the name says. A file named
    as a form but something else is refused saying what it is (a .doc, a PDF, a photo, an
    encrypted file...); one named as something else is that, unless it is a form package
    or a picture (a photo of the form is worth saying so)."""
    return _package(data, suffix).kind


def _package(data: bytes, suffix: str) -> Package:
    """The bytes as the form package they are (see form_kind)."""
    suffix = suffix.lower()
    named = suffix[1:] if suffix in READABLE else ""
    if not named and not data.startswith(b"PK"):
        found = sniff(data)
        if found is not None and found.code is IssueCode.picture:
            raise found.rejected(named)
        raise Rejected(
            IssueCode.unsupported_type, f"a {suffix} file" if suffix else "no file extension"
        )
    return Package(data, named, detect=True)


def read_bytes(data: bytes, suffix: str, resolve: FormResolver = installed_form) -> RawReturn:
    """Read one returned form. Raises Rejected with the reason if it cannot be read.

    It is read as what its bytes are: a Word document named .xlsx is read as the Word
    document Word would open."""
    detected = _package(data, suffix)
    kind = detected.kind
    if kind == "docx":  # the package as detected is the package as a Word document
        package, body = docx_reader.open_package(detected)
        identity = docx_reader.docx_identity(package, body)
    else:
        book = xlsx_reader.open_xlsx(data)
        package = book.package
        identity = xlsx_reader.xlsx_identity(book)
    if identity is None:
        raise Rejected(IssueCode.no_identity)
    form = resolve(identity.form_id, identity.form_version)
    notes: list[Note] = []
    if kind == "docx":
        values, method = docx_reader.read_values(body, form, notes)
    else:
        values, method = xlsx_reader.read_values(book, form, notes)
    return RawReturn(
        identity, form, _clean(form, values), method, _saved(saved_at(package)), tuple(notes)
    )


def read_path(path: str | Path, resolve: FormResolver = installed_form) -> RawReturn:
    path = Path(path)
    return read_bytes(path.read_bytes(), path.suffix, resolve)
