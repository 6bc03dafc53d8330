"""A form's identity: which audit, form and version it is, and a checksum of its facts.

Written three ways so at least one survives whatever the auditor's software does:
custom document properties (kept by Word and LibreOffice), a visible line in the body and
footer (kept even by Google Docs), and bookmarks / defined names around every answer.
`w:tag` on content controls is written too but never relied on: LibreOffice 7.4 drops it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: Custom document property names (docProps/custom.xml in both .docx and .xlsx).
PROPERTY_NAMES = {
    "audit_id": "FormtoolAuditId",
    "form_id": "FormtoolFormId",
    "form_version": "FormtoolFormVersion",
    "checksum": "FormtoolChecksum",
}

_VISIBLE = "Audit ID: {audit_id} · Form: {form_id} v{form_version} · Checksum: {checksum}"
_VISIBLE_RE = re.compile(
    r"Audit ID:\s*(?P<audit_id>[A-Za-z0-9-]+)\s*·\s*Form:\s*(?P<form_id>[a-z0-9_]+)\s*"
    r"v(?P<form_version>[0-9]{1,6})\s*·\s*Checksum:\s*(?P<checksum>[0-9a-f]+)"
)


@dataclass(frozen=True)
class Identity:
    audit_id: str
    form_id: str
    form_version: int
    checksum: str

    def visible(self) -> str:
        """The one-line form of the identity printed in the body and footer."""
        return _VISIBLE.format(**self.__dict__)

    def properties(self) -> dict[str, str]:
        return {PROPERTY_NAMES[k]: str(v) for k, v in self.__dict__.items()}


def from_properties(props: dict[str, str]) -> Identity | None:
    """The identity kept in custom document properties, if they are all there."""
    names = PROPERTY_NAMES
    if not (props.get(names["audit_id"]) and props.get(names["form_id"])):
        return None
    version_text = props.get(names["form_version"], "")
    if not re.fullmatch(r"[0-9]{1,6}", version_text):  # ASCII digits, a sane size: a version
        return None
    version = int(version_text)
    return Identity(
        props[names["audit_id"]], props[names["form_id"]], version, props.get(names["checksum"], "")
    )


def parse_visible(text: str) -> Identity | None:
    """The identity printed in a document's text, if it is still there."""
    match = _VISIBLE_RE.search(text)
    if not match:
        return None
    return Identity(
        match["audit_id"], match["form_id"], int(match["form_version"]), match["checksum"]
    )


def bookmark_name(key: str) -> str:
    """A Word bookmark name for a stable key (letters, digits, _; at most 40 characters)."""
    name = "ft_" + re.sub(r"[^A-Za-z0-9]", "_", key)
    if len(name) <= 40:
        return name
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return f"{name[:31]}_{digest}"


def defined_name(key: str) -> str:
    """An Excel defined name for a stable key (never mistaken for a cell reference)."""
    return "ft_" + re.sub(r"[^A-Za-z0-9]", "_", key)
