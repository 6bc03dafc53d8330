"""Fill generated forms in code, the way an auditor's Word or Excel would.

Used by `formtool demo` to make realistic returns and by the tests' round trips. Also
`strip_controls`, which flattens a .docx the way Google Docs does (answers left as text), and
`concern_answers`, the urgent-concern question answered as the demo's auditors answer it.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from formtool.definitions import FormDefinition
from formtool.definitions.identity import bookmark_name, defined_name
from formtool.definitions.namespaces import W15, XML_SPACE, W
from formtool.definitions.scales import FieldKind, parse_date
from formtool.generate.package import write_zip
from formtool.periods import show_date

#: The demo's one urgent concern: what the auditor found, and whom they told (synthetic).
CONCERN_DETAILS = (
    "Synthetic: the latest home visit record notes an unexplained injury and no safety plan "
    "has been made since."
)
CONCERN_TOLD = "Team Manager (synthetic), by telephone on {day}"

DOCUMENT = "word/document.xml"
CORE = "docProps/core.xml"
DCTERMS = "http://purl.org/dc/terms/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _rewrite(data: bytes, name: str, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(i.filename, archive.read(i.filename)) for i in archive.infolist()]
    out = []
    for member, content in members:
        if member == name:
            root = etree.fromstring(content)
            change(root)
            content = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
        out.append((member, content))
    return write_zip(out)


def _set_control(sdt: etree._Element, value: str) -> None:
    props = sdt.find(W + "sdtPr")
    placeholder = props.find(W + "showingPlcHdr") if props is not None else None
    if placeholder is not None:
        props.remove(placeholder)
    date = props.find(W + "date") if props is not None else None
    if date is not None and value:
        parsed = parse_date(value)
        if parsed is not None:
            date.set(W + "fullDate", f"{parsed.isoformat()}T00:00:00Z")
    content = sdt.find(W + "sdtContent")
    marks = [c for c in content if c.tag in (W + "bookmarkStart", W + "bookmarkEnd")]
    for child in list(content):
        content.remove(child)
    starts = [m for m in marks if m.tag == W + "bookmarkStart"]  # LibreOffice moves them in
    for mark in starts:
        content.append(mark)
    run = etree.SubElement(content, W + "r")
    for i, line in enumerate(value.split("\n")):
        if i:
            etree.SubElement(run, W + "br")
        text = etree.SubElement(run, W + "t")
        text.text = line
        text.set(XML_SPACE, "preserve")
    for mark in marks:
        if mark.tag == W + "bookmarkEnd":
            content.append(mark)


def _control_of(mark: etree._Element) -> etree._Element | None:
    """The content control a key's bookmark wraps: next to it as formtool writes it, or
    around it as LibreOffice saves it."""
    following = mark.getnext()
    if following is not None and following.tag == W + "sdt":
        return following
    parent = mark.getparent()
    if parent is not None and parent.tag == W + "sdtContent":
        return parent.getparent()
    return None


def stamp_saved(data: bytes, when: dt.datetime) -> bytes:
    """Stamp the time a file was last saved (`dcterms:modified`), as Word and Excel do."""

    def change(root: etree._Element) -> None:
        found = root.find(f"{{{DCTERMS}}}modified")
        if found is None:
            found = etree.SubElement(root, f"{{{DCTERMS}}}modified")
            found.set(f"{{{XSI}}}type", "dcterms:W3CDTF")
        found.text = when.strftime("%Y-%m-%dT%H:%M:%SZ")

    return _rewrite(data, CORE, change)


def fill_docx(data: bytes, answers: Mapping[str, str]) -> bytes:
    """Put each answer into the content control inside the bookmark named after its key."""
    wanted = {bookmark_name(k): v for k, v in answers.items()}

    def change(root: etree._Element) -> None:
        for mark in root.iter(W + "bookmarkStart"):
            value = wanted.get(mark.get(W + "name", ""))
            if value is None:
                continue
            sdt = _control_of(mark)
            if sdt is None:
                raise KeyError(f"no content control at bookmark {mark.get(W + 'name')}")
            _set_control(sdt, value)

    return _rewrite(data, DOCUMENT, change)


def add_action_row(data: bytes, table_key: str, values: Mapping[str, str]) -> bytes:
    """Add a row to an action table as Word's repeating-section + button does: copy the
    last row (its controls, not its bookmarks) and type `values` (column id -> text) in."""
    import copy

    section_tag = W15 + "repeatingSection"

    def change(root: etree._Element) -> None:
        for sdt in root.iter(W + "sdt"):
            props = sdt.find(W + "sdtPr")
            tag = props.find(W + "tag") if props is not None else None
            if (
                props is None
                or props.find(section_tag) is None
                or tag is None
                or tag.get(W + "val") != table_key
            ):
                continue
            items = sdt.find(W + "sdtContent")
            row = copy.deepcopy(items[-1])
            for mark in list(row.iter(W + "bookmarkStart", W + "bookmarkEnd")):
                mark.getparent().remove(mark)
            for control in row.iter(W + "sdt"):
                tag = control.find(f"{W}sdtPr/{W}tag")
                if tag is not None:  # the row's own wrapper has none
                    column = tag.get(W + "val").rsplit(".", 1)[-1]
                    _set_control(control, values.get(column, ""))
            items.append(row)
            return
        raise KeyError(f"no repeating section for {table_key}")

    return _rewrite(data, DOCUMENT, change)


def strip_controls(data: bytes) -> bytes:
    """Unwrap every content control and drop every bookmark, keeping the text."""

    def change(root: etree._Element) -> None:
        for tag in ("bookmarkStart", "bookmarkEnd"):
            for mark in list(root.iter(W + tag)):
                mark.getparent().remove(mark)
        for sdt in list(root.iter(W + "sdt")):
            parent = sdt.getparent()
            index = parent.index(sdt)
            content = sdt.find(W + "sdtContent")
            for offset, child in enumerate(list(content) if content is not None else []):
                parent.insert(index + offset, child)
            parent.remove(sdt)

    return _rewrite(data, DOCUMENT, change)


_SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_OFFICE_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_CELL = re.compile(r"([A-Z]+)(\d+)")


def fill_xlsx(
    data: bytes, answers: Mapping[str, str], date_keys: frozenset[str] = frozenset()
) -> bytes:
    """Type each answer into the cell named after its key as openpyxl saves it: text as an
    inline string (never a formula), a date as its day number in the cell's own date format,
    an empty answer as an empty cell. (openpyxl itself took ~140 ms a workbook, most of it
    restyling every merged cell, and stamped the machine's clock as the time saved.)"""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    book = _Book(parts)
    for key, value in answers.items():
        parsed = parse_date(value) if key in date_keys and value else None
        book.type_in(defined_name(key), value, parsed)
    return write_zip(book.saved())


class _Book:
    """A workbook's parts, and the sheets being typed into."""

    def __init__(self, parts: dict[str, bytes]) -> None:
        self.parts = parts
        workbook = etree.fromstring(parts["xl/workbook.xml"])
        self.names = {d.get("name"): d.text or "" for d in workbook.iter(_SHEET + "definedName")}
        properties = workbook.find(_SHEET + "workbookPr")
        late = properties is not None and properties.get("date1904") in ("1", "true")
        self.epoch = dt.date(1904, 1, 1) if late else dt.date(1899, 12, 30)
        rels = etree.fromstring(parts["xl/_rels/workbook.xml.rels"])
        targets = {r.get("Id"): _part_name(r.get("Target", "")) for r in rels}
        sheets = workbook.iter(_SHEET + "sheet")
        self.sheet_parts = {s.get("name"): targets[s.get(_OFFICE_REL + "id")] for s in sheets}
        self.sheets: dict[str, Any] = {}  # part name -> its XML, once typed into

    def type_in(self, name: str, value: str, day: dt.date | None) -> None:
        sheet_name, ref = self.names[name].rsplit("!", 1)
        cell = self._cell(sheet_name.strip("'").replace("''", "'"), ref.replace("$", ""))
        for attribute in [a for a in cell.attrib if a not in ("r", "s")]:
            del cell.attrib[attribute]
        for child in list(cell):
            cell.remove(child)
        if day is not None:
            etree.SubElement(cell, _SHEET + "v").text = str((day - self.epoch).days)
        elif value:
            cell.set("t", "inlineStr")
            text = etree.SubElement(etree.SubElement(cell, _SHEET + "is"), _SHEET + "t")
            text.text = value
            if value.strip() and value != value.strip():
                text.set(XML_SPACE, "preserve")

    def _cell(self, sheet_name: str, ref: str) -> Any:
        """The cell at `ref`, made (in its row, in column order) if the sheet has none."""
        part = self.sheet_parts[sheet_name]
        if part not in self.sheets:
            self.sheets[part] = etree.fromstring(self.parts[part])
        data = self.sheets[part].find(_SHEET + "sheetData")
        row = _child(data, "row", str(_position(ref)[0]), int)
        return _child(row, "c", ref, lambda r: _position(r)[1:])

    def saved(self) -> list[tuple[str, bytes]]:
        parts = dict(self.parts)
        for part, sheet in self.sheets.items():
            parts[part] = etree.tostring(
                sheet, xml_declaration=True, encoding="UTF-8", standalone=True
            )
        return list(parts.items())


def _position(ref: str) -> tuple[int, int, str]:
    """(row, letters in the column, column): the order a sheet keeps its cells in."""
    found = _CELL.fullmatch(ref)
    if found is None:
        raise KeyError(f"not a cell reference: {ref}")
    return int(found[2]), len(found[1]), found[1]


def _child(parent: Any, tag: str, ref: str, order: Callable[[str], Any]) -> Any:
    """`parent`'s row or cell `tag` at `ref`, made in its place if there is none (LibreOffice
    leaves empty cells out)."""
    wanted = order(ref)
    for n, child in enumerate(parent):
        have = order(child.get("r", ""))
        if have == wanted:
            return child
        if have > wanted:
            made = etree.Element(_SHEET + tag, r=ref)
            parent.insert(n, made)
            return made
    return etree.SubElement(parent, _SHEET + tag, r=ref)


def _part_name(target: str) -> str:
    """A workbook relationship's target as a part name in the package."""
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def fill_return(data: bytes, fmt: str, form: FormDefinition, answers: Mapping[str, str]) -> bytes:
    """Fill a generated (or already part-filled) form in its own format."""
    if fmt == "docx":
        return fill_docx(data, answers)
    dates = frozenset(f.key for f in form.fields() if f.kind is FieldKind.date)
    return fill_xlsx(data, answers, dates)


def concern_answers(form: FormDefinition, raised: bool, day: dt.date) -> dict[str, str]:
    """The urgent-concern question answered: No (its texts left as sent), or Yes with what the
    concern is and who was told on `day`; {} for a form version that does not ask it."""
    if not form.judgements.concern:
        return {}
    if not raised:
        return {form.judgements.concern: "No"}
    texts = [item.key for item in form.concern_texts()]
    written = (CONCERN_DETAILS, CONCERN_TOLD.format(day=show_date(day)))
    return {form.judgements.concern: "Yes"} | dict(zip(texts, written, strict=False))
