"""Returned Excel forms in: every answer by the defined name formtool gave its cell.

Excel and LibreOffice Calc both keep defined names and custom document properties, and
sheet protection stops auditors moving the cells, so names are the one way to read. Sheets
and the shared-string table are streamed (lxml iterparse) and only the cells the names point
to are kept, so a workbook whose every cell repeats one huge string costs no more than any
other. Numbers in date cells are range-checked: a pasted number is an invalid date, not a crash.
"""

from __future__ import annotations

import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from formtool.definitions import FormDefinition
from formtool.definitions.identity import Identity, defined_name, from_properties, parse_visible
from formtool.definitions.layout import layout
from formtool.definitions.scales import FieldKind, excel_serial_date
from formtool.errors import IssueCode, Rejected
from formtool.periods import show_date
from formtool.read.limits import TextBudget
from formtool.read.ooxml import Package, custom_properties

S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
SHARED = "xl/sharedStrings.xml"
_REF = re.compile(r"^(?:'?(?P<sheet>(?:[^']|'')+?)'?!)?\$?(?P<col>[A-Z]{1,3})\$?(?P<row>\d+)$")
IDENTITY_CELL = 2000  # the identity line is short; longer cells are not searched


@dataclass
class Workbook:
    """What formtool needs of a workbook: its sheets' parts and its defined names."""

    package: Package
    sheets: dict[str, str]  # sheet name -> part
    names: dict[str, tuple[str, str]]  # defined name -> (sheet, "D12")
    date1904: bool = False
    _raw: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


def _iter(package: Package, part: str, tag: str) -> Iterator[etree._Element]:
    """The `tag` elements of a part, streamed; each is cleared once the caller is done."""
    data = package.read(part)
    if data is None:
        return
    checked = False
    try:
        for _, element in etree.iterparse(
            io.BytesIO(data),
            events=("end",),
            tag=tag,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        ):
            if not checked:  # the DOCTYPE, if any, came before the first element
                info = element.getroottree().docinfo
                if info.doctype or info.internalDTD is not None:
                    raise Rejected(IssueCode.entities, field=part)
                checked = True
            yield element
            _forget(element)
    except etree.XMLSyntaxError as exc:
        raise Rejected(IssueCode.bad_xml, str(exc).splitlines()[0], field=part) from None


def _forget(element: etree._Element) -> None:
    """Free an element and everything parsed before it, so memory stays flat."""
    element.clear(keep_tail=False)
    node, parent = element, element.getparent()
    while parent is not None:
        while node.getprevious() is not None:
            del parent[0]
        node, parent = parent, parent.getparent()


def open_xlsx(data: bytes) -> Workbook:
    package = Package(data, "xlsx")
    book = package.xml("xl/workbook.xml")
    rels = package.xml("xl/_rels/workbook.xml.rels")
    if book is None or rels is None:
        raise Rejected(IssueCode.no_document, expected="Excel workbook")
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(PKG_REL + "Relationship")}
    sheets = {}
    for sheet in book.iter(S + "sheet"):
        target = targets.get(sheet.get(REL + "id"), "")
        sheets[sheet.get("name", "")] = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join("xl", target))
        )
    names = {}
    for name in book.iter(S + "definedName"):
        match = _REF.match((name.text or "").strip())
        if match and name.get("localSheetId") is None:
            sheet_name = (match["sheet"] or "").replace("''", "'")
            names[name.get("name", "")] = (sheet_name, f"{match['col']}{match['row']}")
    properties = book.find(S + "workbookPr")
    date1904 = properties is not None and properties.get("date1904") in ("1", "true")
    return Workbook(package, sheets, names, date1904)


def _cells(book: Workbook, wanted: dict[str, set[str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(sheet, ref) -> (type, raw value) for the wanted cells only."""
    found = {}
    for sheet, refs in wanted.items():
        part = book.sheets.get(sheet)
        if part is None or not refs:
            continue
        for cell in _iter(book.package, part, S + "c"):
            ref = cell.get("r", "")
            if ref not in refs:
                continue
            kind = cell.get("t", "n")
            if kind == "inlineStr":
                found[(sheet, ref)] = ("str", "".join(t.text or "" for t in cell.iter(S + "t")))
            else:
                value = cell.find(S + "v")
                found[(sheet, ref)] = (kind, (value.text or "") if value is not None else "")
    return found


def _shared(book: Workbook, indexes: set[int], budget: TextBudget) -> dict[int, str]:
    """The shared strings at the given indexes (each cut at the per-field cap)."""
    found: dict[int, str] = {}
    if not indexes:
        return found
    last = max(indexes)
    for number, si in enumerate(_iter(book.package, SHARED, S + "si")):
        if number in indexes:
            texts = (
                t.text or ""
                for t in si.iter(S + "t")
                if t.getparent() is not None and t.getparent().tag != S + "rPh"
            )
            found[number] = "".join(texts)[: budget.field_limit + 1]
        if number >= last:
            break
    return found


def _text(kind: str, raw: str, shared: dict[int, str], is_date: bool, date1904: bool) -> str:
    if kind == "s":
        try:
            return shared[int(raw)].strip()
        except (ValueError, KeyError):
            raise Rejected(
                IssueCode.damaged, "a cell points past the shared-string table"
            ) from None
    if kind == "b":
        return "TRUE" if raw == "1" else "FALSE"
    if kind == "n" and raw:
        try:
            number = float(raw)
        except ValueError:
            return raw.strip()
        if is_date:
            day = excel_serial_date(number, date1904)
            return show_date(day) if day else raw.strip()
        return raw[:-2] if raw.endswith(".0") else raw.strip()
    return raw.strip()


def xlsx_identity(book: Workbook) -> Identity | None:
    found = from_properties(custom_properties(book.package))
    if found is not None:
        return found
    for si in _iter(book.package, SHARED, S + "si"):
        text = "".join(t.text or "" for t in si.iter(S + "t"))[:IDENTITY_CELL]
        identity = parse_visible(text)
        if identity is not None:
            return identity
    for part in book.sheets.values():
        for inline in _iter(book.package, part, S + "is"):
            identity = parse_visible(
                "".join(t.text or "" for t in inline.iter(S + "t"))[:IDENTITY_CELL]
            )
            if identity is not None:
                return identity
    return None


def read_values(book: Workbook, form: FormDefinition) -> tuple[dict[str, str], str]:
    keys = {defined_name(key): key for key in layout(form).positions}
    dates = {f.key for f in form.fields() if f.kind is FieldKind.date}
    where = {keys[n]: book.names[n] for n in keys if n in book.names}
    wanted: dict[str, set[str]] = {}
    for sheet, ref in where.values():
        wanted.setdefault(sheet, set()).add(ref)
    raw = _cells(book, wanted)
    budget = TextBudget()
    indexes = set()
    for kind, value in raw.values():
        if kind == "s" and value.strip().isdigit():
            indexes.add(int(value))
    shared = _shared(book, indexes, budget)
    values = {}
    for key, place in where.items():
        kind, value = raw.get(place, ("", ""))
        values[key] = budget.take(key, _text(kind, value, shared, key in dates, book.date1904))
    return values, "defined names"
