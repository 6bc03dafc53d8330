"""Returned Excel forms in: every answer by the defined name formtool gave its cell.

Excel and LibreOffice Calc both keep defined names and custom document properties, and
sheet protection stops auditors moving the cells, so names are the one way to read.
"""

from __future__ import annotations

import datetime as dt
import io

from formtool.definitions import FormDefinition
from formtool.identity import PROPERTY_NAMES, Identity, defined_name, parse_visible
from formtool.layout import layout
from formtool.read.ooxml import Package, UnreadableFile, custom_properties
from formtool.scales import format_date


def open_xlsx(data: bytes):
    """The workbook, after the same hostile-file checks as Word returns."""
    import openpyxl

    package = Package(data, "xlsx")
    for name in sorted(package.names):
        if name.endswith(".xml") or name.endswith(".rels"):
            package.xml(name)  # refuses entity declarations and malformed XML
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged parts
        raise UnreadableFile(
            f"cannot be read as an Excel workbook ({type(exc).__name__}). "
            "Ask the auditor to save it again as .xlsx."
        ) from None
    return package, workbook


def xlsx_identity(package: Package, workbook) -> Identity | None:
    props = custom_properties(package)
    names = PROPERTY_NAMES
    if props.get(names["audit_id"]) and props.get(names["form_id"]):
        try:
            return Identity(
                props[names["audit_id"]],
                props[names["form_id"]],
                int(props.get(names["form_version"], "0") or 0),
                props.get(names["checksum"], ""),
            )
        except ValueError:
            pass
    sheet = workbook.worksheets[0]
    top = [str(c.value) for row in sheet.iter_rows(max_row=5) for c in row if c.value]
    return parse_visible("\n".join(top))


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return format_date(value.date())
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_values(workbook, form: FormDefinition) -> tuple[dict[str, str], str]:
    values = {}
    for key in layout(form).positions:
        name = workbook.defined_names.get(defined_name(key))
        if name is None:
            continue
        for sheet_name, ref in name.destinations:
            if sheet_name in workbook.sheetnames:
                values[key] = _cell_text(workbook[sheet_name][ref.replace("$", "")].value)
                break
    return values, "defined names"
