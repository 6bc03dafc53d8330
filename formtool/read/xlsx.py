"""Returned Excel forms in: every answer by the defined name formtool gave its cell.

Excel and LibreOffice Calc both keep defined names and custom document properties, and
sheet protection stops auditors moving the cells, so names are the one way to read. The
workbook is read with lxml straight from its parts (about 100x faster than loading it with
openpyxl), after the same hostile-file checks as Word returns.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass

from lxml import etree

from formtool.definitions import FormDefinition
from formtool.identity import Identity, defined_name, from_properties, parse_visible
from formtool.layout import layout
from formtool.read.ooxml import Package, UnreadableFile, custom_properties
from formtool.scales import FieldKind, format_date

S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_REF = re.compile(r"^(?:'?(?P<sheet>(?:[^']|'')+?)'?!)?\$?(?P<col>[A-Z]{1,3})\$?(?P<row>\d+)$")


@dataclass
class Workbook:
    """The parts of a workbook formtool needs: names, and each sheet's cell texts."""

    names: dict[str, tuple[str, str]]  # defined name -> (sheet, "D12")
    cells: dict[str, dict[str, tuple[str, str]]]  # sheet -> ref -> (type, raw text)
    date1904: bool = False

    def text(self, sheet: str, ref: str, is_date: bool) -> str:
        kind, raw = self.cells.get(sheet, {}).get(ref, ("", ""))
        if is_date and kind in ("n", "") and raw:
            try:
                serial = float(raw)
            except ValueError:
                return raw
            epoch = dt.date(1904, 1, 1) if self.date1904 else dt.date(1899, 12, 30)
            return format_date(epoch + dt.timedelta(days=int(serial)))
        if kind in ("n", "") and raw.endswith(".0"):
            return raw[:-2]
        return raw.strip()


def _shared_strings(package: Package) -> list[str]:
    root = package.xml("xl/sharedStrings.xml")
    if root is None:
        return []
    return [
        "".join(
            t.text or "" for t in si.iter(S + "t") if t.getparent().tag != S + "rPh"
        )  # skip phonetic guides
        for si in root.iter(S + "si")
    ]


def _sheet_cells(root: etree._Element, shared: list[str]) -> dict[str, tuple[str, str]]:
    cells = {}
    for cell in root.iter(S + "c"):
        kind = cell.get("t", "n")
        if kind == "inlineStr":
            text = "".join(t.text or "" for t in cell.iter(S + "t"))
            cells[cell.get("r", "")] = ("s", text)
            continue
        value = cell.find(S + "v")
        raw = value.text or "" if value is not None else ""
        if kind == "s" and raw:
            try:
                raw = shared[int(raw)]
            except (ValueError, IndexError):
                raise UnreadableFile(
                    "has a damaged shared-string table. Ask the auditor to save it again in Excel."
                ) from None
        elif kind == "b":
            raw = "TRUE" if raw == "1" else "FALSE"
        cells[cell.get("r", "")] = (kind, raw)
    return cells


def open_xlsx(data: bytes) -> tuple[Package, Workbook]:
    package = Package(data, "xlsx")
    book = package.xml("xl/workbook.xml")
    rels = package.xml("xl/_rels/workbook.xml.rels")
    if book is None or rels is None:
        raise UnreadableFile(
            "has no Excel workbook inside. Is it an .xlsx saved by Excel or LibreOffice?"
        )
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(PKG_REL + "Relationship")}
    shared = _shared_strings(package)
    cells = {}
    for sheet in book.iter(S + "sheet"):
        target = targets.get(sheet.get(REL + "id"), "")
        part = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join("xl", target))
        )
        root = package.xml(part)
        if root is not None:
            cells[sheet.get("name", "")] = _sheet_cells(root, shared)
    names = {}
    for name in book.iter(S + "definedName"):
        match = _REF.match((name.text or "").strip())
        if match and name.get("localSheetId") is None:
            sheet = (match["sheet"] or "").replace("''", "'")
            names[name.get("name", "")] = (sheet, f"{match['col']}{match['row']}")
    properties = book.find(S + "workbookPr")
    date1904 = properties is not None and properties.get("date1904") in ("1", "true")
    return package, Workbook(names, cells, date1904)


def xlsx_identity(package: Package, workbook: Workbook) -> Identity | None:
    found = from_properties(custom_properties(package))
    if found is not None:
        return found
    texts = [raw for sheet in workbook.cells.values() for _, raw in sheet.values()]
    return parse_visible("\n".join(texts))


def read_values(workbook: Workbook, form: FormDefinition) -> tuple[dict[str, str], str]:
    dates = {f.key for f in form.fields() if f.kind is FieldKind.date}
    values = {}
    for key in layout(form).positions:
        where = workbook.names.get(defined_name(key))
        if where is not None:
            values[key] = workbook.text(*where, is_date=key in dates)
    return values, "defined names"
