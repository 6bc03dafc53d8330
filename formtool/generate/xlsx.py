"""Fillable Excel forms: one sheet laid out like the form, compiled once with openpyxl.

Answer cells are unlocked, with list validation (error alert on) for scales and date
validation for dates; everything else is locked under sheet protection. Every answer cell
also carries a defined name after its stable key, which survives LibreOffice Calc.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from functools import cache

from openpyxl import Workbook
from openpyxl.packaging.custom import StringProperty
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from formtool.definitions import Field, FormDefinition
from formtool.generate.package import CompiledPackage, CompiledPart, slot, xml_text
from formtool.identity import PROPERTY_NAMES, defined_name
from formtool.layout import GRID, Block, Cell, layout
from formtool.scales import EXCEL_DATE_FORMAT, FieldKind

SHEET = "Audit"
COLUMN_WIDTH = 15.5  # characters; 8 columns fit A4 landscape at fit-to-width
CHARS_PER_COLUMN = 17
LINE_HEIGHT = 12.75

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
_STYLES = {
    "heading": (Font(bold=True, color="FFFFFF", size=9), PatternFill("solid", fgColor="1F3864")),
    "label": (Font(size=9), PatternFill("solid", fgColor="F2F2F2")),
    "blank": (Font(size=9), PatternFill("solid", fgColor="D9D9D9")),
    "fact": (Font(size=9, bold=True), PatternFill(None)),
    "answer": (Font(size=10, color="1F3864"), PatternFill("solid", fgColor="FFFFFF")),
}


class _SheetWriter:
    """Writes layout blocks row by row and remembers where each answer went."""

    def __init__(self, sheet: Worksheet) -> None:
        self.sheet = sheet
        self.row = 1
        self.names: dict[str, str] = {}
        self.validations: dict[str, DataValidation] = {}

    def line(self, text: str, font: Font, height: float | None = None) -> None:
        cell = self.sheet.cell(self.row, 1, text)
        cell.font = font
        cell.alignment = _WRAP
        self.sheet.merge_cells(
            start_row=self.row, start_column=1, end_row=self.row, end_column=GRID
        )
        lines = max(1, math.ceil(len(text) / (CHARS_PER_COLUMN * GRID * 1.1)))
        self.sheet.row_dimensions[self.row].height = height or LINE_HEIGHT * lines + 2
        self.row += 1

    def table(self, block: Block) -> None:
        for row in block.rows:
            column = 1
            lines = 1
            for cell in row.cells:
                lines = max(lines, self._cell(cell, column))
                column += cell.span
            self.sheet.row_dimensions[self.row].height = min(409, LINE_HEIGHT * lines + 3)
            self.row += 1
        self.row += 1

    def _cell(self, cell: Cell, column: int) -> int:
        """Write one layout cell; return how many text lines it needs."""
        target = self.sheet.cell(self.row, column)
        font, fill = _STYLES[cell.kind]
        text = cell.text
        if cell.guidance:
            text += "\n" + "\n".join(cell.guidance)
        if cell.kind == "fact":
            text = slot("fact_" + cell.fact)
            self.names[defined_name(f"header.{cell.fact}")] = self._ref(column)
        if text:
            target.value = text
        if cell.span > 1:
            self.sheet.merge_cells(
                start_row=self.row,
                start_column=column,
                end_row=self.row,
                end_column=column + cell.span - 1,
            )
        for offset in range(cell.span):  # borders and fill on every merged cell
            part = self.sheet.cell(self.row, column + offset)
            part.border = _BORDER
            part.fill = fill
        target.font = font
        target.alignment = _WRAP
        if cell.kind == "answer" and cell.field is not None:
            self._answer(target, cell.field, column)
            return 4 if cell.field.kind is FieldKind.text else 1
        width = CHARS_PER_COLUMN * cell.span
        return sum(max(1, math.ceil(len(part) / width)) for part in (text or " ").split("\n"))

    def _answer(self, target, field: Field, column: int) -> None:
        target.protection = Protection(locked=False)
        self.names[defined_name(field.key)] = self._ref(column)
        if field.kind is FieldKind.choice and field.scale is not None:
            self._validation(
                field.scale.id,
                lambda s=field.scale: DataValidation(
                    type="list",
                    formula1=s.excel_list(),
                    allow_blank=True,
                    showErrorMessage=True,
                    errorTitle="Not on the list",
                    error=f"Pick one of: {' / '.join(s.choices)}.",
                    showInputMessage=True,
                    promptTitle=s.label[:32],
                    prompt="Pick from the list.",
                ),
            ).add(target)
        elif field.kind is FieldKind.date:
            target.number_format = EXCEL_DATE_FORMAT
            self._validation(
                "date",
                lambda: DataValidation(
                    type="date",
                    operator="greaterThan",
                    formula1="DATE(1990,1,1)",
                    allow_blank=True,
                    showErrorMessage=True,
                    errorTitle="Not a date",
                    error="Enter a date as DD/MM/YYYY.",
                ),
            ).add(target)

    def _validation(self, key: str, make) -> DataValidation:
        if key not in self.validations:
            self.validations[key] = make()
            self.sheet.add_data_validation(self.validations[key])
        return self.validations[key]

    def _ref(self, column: int) -> str:
        return f"'{SHEET}'!${get_column_letter(column)}${self.row}"


def _build_workbook(form: FormDefinition) -> Workbook:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET
    for column in range(1, GRID + 1):
        sheet.column_dimensions[get_column_letter(column)].width = COLUMN_WIDTH
    writer = _SheetWriter(sheet)
    for block in layout(form).blocks:
        if block.kind == "title":
            writer.line(block.text, Font(bold=True, size=16, color="1F3864"), 24)
        elif block.kind == "identity":
            writer.line(slot("identity"), Font(size=8, color="595959"), 14)
        elif block.kind == "heading":
            writer.line(block.text, Font(bold=True, size=12, color="1F3864"))
        elif block.kind == "subheading":
            writer.line(block.text, Font(bold=True, size=10, color="2F5496"))
        elif block.kind == "guidance":
            for line in block.lines:
                writer.line("•  " + line, Font(italic=True, size=9, color="404040"))
        else:
            writer.table(block)
    for name, ref in writer.names.items():
        workbook.defined_names[name] = DefinedName(name, attr_text=ref)
    _protect_and_print(sheet, form)
    for key, name in PROPERTY_NAMES.items():
        workbook.custom_doc_props.append(StringProperty(name=name, value=slot("prop_" + key)))
    workbook.properties.title = form.title
    workbook.properties.creator = "formtool"
    return workbook


def _protect_and_print(sheet: Worksheet, form: FormDefinition) -> None:
    sheet.protection.sheet = True
    sheet.protection.formatRows = False  # auditors may make rows taller for long evidence
    sheet.protection.formatColumns = False
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:2"
    sheet.print_options.gridLines = False
    sheet.oddFooter.left.text = slot("identity")
    sheet.oddFooter.left.size = 7
    sheet.oddFooter.right.text = "Page &P of &N"
    sheet.oddHeader.center.text = form.title
    sheet.freeze_panes = None


@cache
def compile_xlsx(form: FormDefinition) -> CompiledPackage:
    """The form as an Excel package with slots for the case's facts and identity.

    openpyxl stamps the save time into docProps/core.xml; those stamps are pinned here so
    the same inputs give byte-identical files.
    """
    buffer = io.BytesIO()
    _build_workbook(form).save(buffer)
    parts = []
    with zipfile.ZipFile(buffer) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "docProps/core.xml":
                data = _pin_times(data.decode("utf-8")).encode("utf-8")
            if b"{{ft:" in data:
                parts.append(CompiledPart.of(name, data.decode("utf-8")))
            else:
                parts.append(CompiledPart.of(name, data))
    return CompiledPackage(tuple(parts))


def _pin_times(core: str) -> str:
    import re

    return re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*", r"\g<1>2000-01-01T00:00:00Z", core)


def xlsx_values(facts: Mapping[str, str], identity: Mapping[str, str]) -> dict[str, str]:
    """Slot values for one case, escaped for SpreadsheetML text."""
    values = {"fact_" + k: xml_text(v) for k, v in facts.items()}
    values.update({"prop_" + k: xml_text(str(v)) for k, v in identity.items()})
    values["identity"] = xml_text(identity["visible"])  # has no "&", so no footer codes
    return values
