"""Identifiers are data, never paths: the one pattern an audit id must match, and the one way
any text (a case number, a name) becomes part of a file name.

An audit id names the form files, the file pack and the emails' attachments, so one that
came from a case list or a database is checked here before any file is named from it. Other
text is never refused for a file name: it is turned into a safe stem instead.
"""

from __future__ import annotations

import hashlib
import re

from formtool.errors import FormtoolError, printable

AUDIT_ID_MAX = 80
EXAMPLE = "CSC-SYN0001-202611"
_AUDIT_ID = re.compile(r"[A-Za-z0-9-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
#: Names Windows keeps for devices, whatever the extension: `CON.docx` cannot be saved there.
_DEVICE = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])", re.IGNORECASE)


class IdentifierError(FormtoolError):
    """An identifier formtool would name a file from is not one; nothing was written."""


def audit_id_problem(text: str) -> str:
    """'' if `text` is an audit id; otherwise how to fix it, as a clause for a message."""
    if not text:
        return "give every row one, or leave out the audit_id column so formtool makes them"
    if not _AUDIT_ID.fullmatch(text):
        return f"use letters, digits and hyphens only (e.g. {EXAMPLE})"
    if len(text) > AUDIT_ID_MAX:
        return f"use at most {AUDIT_ID_MAX} characters, not {len(text)} (e.g. {EXAMPLE})"
    if _DEVICE.fullmatch(text):
        return f"Windows keeps that name for a device; make it longer (e.g. CSC-{text}-202611)"
    return ""


def audit_file_name(audit_id: str, suffix: str) -> str:
    """The file name `audit_id` gives a file (`CSC-P1-202611` + `.docx`), or IdentifierError
    if it is not an audit id (say one recorded before ids were checked)."""
    problem = audit_id_problem(audit_id)
    if problem:
        raise IdentifierError(
            f"'{printable(audit_id, 120)}' is not an audit id: {problem}. No file was named "
            "from it; correct or remove that audit in the database (`formtool allocate "
            "--replace` drops a month's audits not yet sent)."
        )
    return audit_id + suffix


def safe_file_stem(text: str, limit: int = 60, fallback: str = "file", part: bool = False) -> str:
    """Any text as (`part` of) a file name on every system: runs of anything but ASCII
    letters and digits become one hyphen (`12/345` -> `12-345`), never hidden, at most `limit`
    characters; text that is too long or has nothing usable gets a short hash, so different
    texts keep different stems. A whole name is never a device name (`CON` -> `CON-`); a part
    joined to other text (`CSC-CON-202611`) needs no such guard."""
    stem = _UNSAFE.sub("-", text).strip("-")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    if not stem:
        return digest if text else fallback
    if len(stem) > limit:
        stem = stem[: max(limit - len(digest) - 1, 1)].rstrip("-") + "-" + digest
    return f"{stem}-" if not part and _DEVICE.fullmatch(stem) else stem
