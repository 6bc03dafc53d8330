"""Returned forms in: identify the audit and read every answer by its stable key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from formtool.definitions import FormDefinition, get_form
from formtool.errors import DefinitionError
from formtool.identity import Identity
from formtool.read import docx as docx_reader
from formtool.read import xlsx as xlsx_reader
from formtool.read.ooxml import UnreadableFile

READABLE = (".docx", ".xlsx")


@dataclass(frozen=True)
class RawReturn:
    """What a returned file says, before validation: identity and answers by key."""

    identity: Identity
    form: FormDefinition
    values: dict[str, str] = field(default_factory=dict)
    method: str = ""  # how the answers were found: bookmarks, tags, table layout, names


def read_bytes(data: bytes, suffix: str) -> RawReturn:
    """Read one returned form. Raises UnreadableFile with the reason if it cannot be read."""
    suffix = suffix.lower()
    if suffix == ".docx":
        package, body = docx_reader.open_docx(data)
        identity = docx_reader.docx_identity(package, body)
    elif suffix == ".xlsx":
        package, workbook = xlsx_reader.open_xlsx(data)
        identity = xlsx_reader.xlsx_identity(package, workbook)
    else:
        raise UnreadableFile(
            f"is a {suffix or 'extensionless'} file; formtool reads .docx and .xlsx returns."
        )
    if identity is None:
        raise UnreadableFile(
            "carries no formtool audit identity (no properties and no "
            "'Audit ID:' line). Was it made by `formtool generate`?"
        )
    try:
        form = get_form(identity.form_id)
    except DefinitionError:
        raise UnreadableFile(
            f"is form '{identity.form_id}', which this formtool does not "
            "know. Check templates/forms."
        ) from None
    if suffix == ".docx":
        values, method = docx_reader.read_values(body, form)
    else:
        values, method = xlsx_reader.read_values(workbook, form)
    return RawReturn(identity, form, values, method)


def read_path(path: str | Path) -> RawReturn:
    path = Path(path)
    return read_bytes(path.read_bytes(), path.suffix)
