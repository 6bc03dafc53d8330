"""Fillable Excel forms: one sheet laid out like the form, compiled once with openpyxl.

Answer cells are unlocked, with list validation (error alert on) for scales and date
validation for dates; everything else is locked under sheet protection. Every answer cell
also carries a defined name after its stable key, which survives LibreOffice Calc.

Rows are as tall as their text: printed text is measured when the form is compiled, and the
header rows, whose names come with each case, are measured per case (their heights are slots).
A heading never ends a printed page: a page break goes before it instead.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Callable, Mapping
from functools import cache

from openpyxl import Workbook
from openpyxl.packaging.custom import StringProperty
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from formtool.definitions import Field, FormDefinition
from formtool.definitions.identity import PROPERTY_NAMES, defined_name
from formtool.definitions.layout import GRID, Block, Cell, Row, layout
from formtool.definitions.scales import KINDS, FieldKind
from formtool.generate.package import CompiledPackage, CompiledPart, slot, xml_text

SHEET = "Audit"
COLUMN_WIDTH = 15.5  # characters; 8 columns fit A4 landscape at fit-to-width
CHARS_PER_COLUMN = 17  # characters of 9-point text a column holds
LINE_HEIGHT = 12.75  # points per line of 9-10 point text
PAGE_HEIGHT = 470.0  # points of rows on a landscape A4 page between the margins
HEADER_HEIGHT_BASE = 900  # sentinel row heights 901, 902, ...: see height_slots

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
_STYLES = {
    "heading": (Font(bold=True, color="FFFFFF", size=9), PatternFill("solid", fgColor="1F3864")),
    "label": (Font(size=9), PatternFill("solid", fgColor="F2F2F2")),
    "stage": (Font(size=9, bold=True, color="1F3864"), PatternFill("solid", fgColor="DCE3F0")),
    "fact": (Font(size=9, bold=True), PatternFill(None)),
    "answer": (Font(size=10, color="1F3864"), PatternFill("solid", fgColor="FFFFFF")),
}


def lines_needed(text: str, span: int) -> int:
    """How many lines `text` wraps to in a cell `span` columns wide."""
    width = CHARS_PER_COLUMN * span
    return sum(max(1, math.ceil(len(part) / width)) for part in (text or " ").split("\n"))


def _height(lines: int) -> float:
    return min(409.0, LINE_HEIGHT * lines + 3)


class _SheetWriter:
    """Writes layout blocks row by row and remembers where each answer went."""

    def __init__(self, sheet: Worksheet) -> None:
        self.sheet = sheet
        self.row = 1
        self.names: dict[str, str] = {}
        self.validations: dict[str, DataValidation] = {}
        self.header_rows: list[tuple[int, tuple[Cell, ...]]] = []  # measured per case
        self.page_used = 0.0

    def _advance(self, height: float, printed: float | None = None) -> None:
        """Set this row's height and move on; `printed` is its height on the page when
        `height` is a sentinel to be replaced per case."""
        self.sheet.row_dimensions[self.row].height = height
        self.page_used += height if printed is None else printed
        self.row += 1

    def keep_together(self, height: float) -> None:
        """Start a new printed page unless `height` points still fit on this one."""
        if self.page_used and self.page_used + height > PAGE_HEIGHT:
            self.sheet.row_breaks.append(Break(id=self.row - 1))
            self.page_used = 0.0

    def line(self, text: str, font: Font, height: float | None = None) -> None:
        cell = self.sheet.cell(self.row, 1, text)
        cell.font = font
        cell.alignment = _WRAP
        self.sheet.merge_cells(
            start_row=self.row, start_column=1, end_row=self.row, end_column=GRID
        )
        self._advance(height or _height(lines_needed(text, GRID)))

    def table(self, block: Block) -> None:
        first = next((r for r in block.rows if not r.header), None)
        stage_rows = self._stage_rows(block)
        for index, row in enumerate(block.rows):
            if row is first and block.name != "header":
                self.keep_together(self._row_height(row) + 2 * LINE_HEIGHT)
            self._write_row(row, block.name == "header", stage_rows.get(index, 1))
        self.row += 1
        self.page_used += LINE_HEIGHT

    @staticmethod
    def _stage_rows(block: Block) -> dict[int, int]:
        """Row index of each stage cell -> sheet rows it covers (its group's rows, plus the
        comment row under each of them)."""
        covered: dict[int, int] = {}
        group = -1
        for index, row in enumerate(block.rows):
            stage = next((c for c in row.cells if c.kind == "stage"), None)
            if stage is None:
                continue
            if stage.down:
                group, covered[index] = index, 0
            covered[group] += 2 if any(len(c.fields) > 1 for c in row.cells) else 1
        return covered

    def _row_height(self, row: Row) -> float:
        lines = 1
        for cell in row.cells:
            if cell.kind == "stage":
                continue  # merged down: measured across its rows
            text = cell.text + ("\n" + "\n".join(cell.guidance) if cell.guidance else "")
            if cell.fields:
                text = "\n" * (KINDS[cell.fields[0].kind].lines - 1)
            lines = max(lines, lines_needed(text, cell.span))
        return _height(lines)

    def _write_row(self, row: Row, header: bool, stage_rows: int) -> None:
        split = any(len(c.fields) > 1 for c in row.cells)
        column = 1
        for cell in row.cells:
            down = (
                stage_rows if cell.kind == "stage" else (2 if split and len(cell.fields) < 2 else 1)
            )
            self._cell(cell, column, down)
            column += cell.span
        if header:
            self.header_rows.append((self.row, row.cells))
            self._advance(sentinel_height(len(self.header_rows)), 2 * LINE_HEIGHT)
        else:
            self._advance(self._row_height(row))
        if split:  # the judge's comment box sits in a second row under the answer
            self._advance(_height(KINDS[FieldKind.text].lines))

    def _cell(self, cell: Cell, column: int, down: int) -> None:
        if cell.kind == "stage" and not cell.down:
            return  # covered by the merged stage cell above
        target = self.sheet.cell(self.row, column)
        font, fill = _STYLES.get(cell.kind, _STYLES["label"])
        text = cell.text + ("\n" + "\n".join(cell.guidance) if cell.guidance else "")
        if cell.kind == "fact":
            text = slot("fact_" + cell.fact)
            self.names[defined_name(f"header.{cell.fact}")] = self._ref(column)
        if text and not cell.fields:
            target.value = text
        self._merge(column, cell.span, down)
        self._paint(column, cell.span, down, fill)
        target.font = font
        target.alignment = _WRAP
        if cell.fields:
            self._answer(target, cell.fields[0], column)
        if len(cell.fields) > 1:  # a comment under the judgement, in the same column
            row = self.row + 1
            below = self.sheet.cell(row, column)
            self._merge(column, cell.span, 1, row)
            self._paint(column, cell.span, 1, fill, row)
            below.font, below.alignment = font, _WRAP
            self._answer(below, cell.fields[1], column, row)

    def _merge(self, column: int, span: int, down: int, row: int | None = None) -> None:
        row = row or self.row
        if span > 1 or down > 1:
            self.sheet.merge_cells(
                start_row=row,
                start_column=column,
                end_row=row + down - 1,
                end_column=column + span - 1,
            )

    def _paint(
        self, column: int, span: int, down: int, fill: PatternFill, row: int | None = None
    ) -> None:
        row = row or self.row
        for r in range(row, row + down):  # borders and fill on every merged cell
            for c in range(column, column + span):
                part = self.sheet.cell(r, c)
                part.border = _BORDER
                part.fill = fill

    def _answer(self, target, field: Field, column: int, row: int | None = None) -> None:
        target.protection = Protection(locked=False)
        self.names[defined_name(field.key)] = self._ref(column, row)
        spec = KINDS[field.kind]
        if spec.excel_format:
            target.number_format = spec.excel_format
        if spec.excel_validation == "list" and field.scale is not None:
            scale = field.scale
            self._validation(
                scale.id,
                lambda: DataValidation(
                    type="list",
                    formula1=scale.excel_list(),
                    allow_blank=True,
                    showErrorMessage=True,
                    errorTitle="Not on the list",
                    error=f"Pick one of: {' / '.join(scale.choices)}.",
                    showInputMessage=True,
                    promptTitle=scale.label[:32],
                    prompt="Pick from the list.",
                ),
            ).add(target)
        elif spec.excel_validation == "date":
            self._validation(
                "date",
                lambda: DataValidation(
                    type="date",
                    operator="between",
                    formula1="DATE(1990,1,1)",
                    formula2="DATE(2100,12,31)",
                    allow_blank=True,
                    showErrorMessage=True,
                    errorTitle="Not a date",
                    error="Enter a date as DD/MM/YYYY.",
                ),
            ).add(target)

    def _validation(self, key: str, make: Callable[[], DataValidation]) -> DataValidation:
        if key not in self.validations:
            self.validations[key] = make()
            self.sheet.add_data_validation(self.validations[key])
        return self.validations[key]

    def _ref(self, column: int, row: int | None = None) -> str:
        return f"'{SHEET}'!${get_column_letter(column)}${row or self.row}"


def _build_workbook(form: FormDefinition) -> tuple[Workbook, list[tuple[int, tuple[Cell, ...]]]]:
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
            writer.keep_together(4 * LINE_HEIGHT)
            writer.line(block.text, Font(bold=True, size=12, color="1F3864"))
        elif block.kind == "subheading":
            writer.keep_together(3 * LINE_HEIGHT)
            writer.line(block.text, Font(bold=True, size=10, color="2F5496"))
        elif block.kind == "guidance":
            for line in block.lines:
                writer.line("•  " + line, Font(italic=True, size=9, color="404040"))
        else:
            writer.table(block)
    for name, ref in writer.names.items():
        workbook.defined_names[name] = DefinedName(name, attr_text=ref)
    _protect_and_print(sheet, form)
    sheet.print_area = f"A1:{get_column_letter(GRID)}{writer.row}"  # LibreOffice then fits the
    # width exactly
    for key, name in PROPERTY_NAMES.items():
        workbook.custom_doc_props.append(StringProperty(name=name, value=slot("prop_" + key)))
    workbook.properties.title = form.title
    workbook.properties.creator = "formtool"
    return workbook, writer.header_rows


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
    sheet.page_margins.left = sheet.page_margins.right = 0.5
    sheet.page_margins.top = sheet.page_margins.bottom = 0.75
    sheet.page_margins.header = sheet.page_margins.footer = 0.3
    sheet.print_options.gridLines = False
    sheet.oddHeader.left.text = slot("council")
    sheet.oddHeader.center.text = slot("marking")
    sheet.oddHeader.center.font = "Arial,Bold"
    sheet.oddHeader.right.text = form.title
    sheet.oddFooter.left.text = slot("identity")
    sheet.oddFooter.left.size = 7
    sheet.oddFooter.center.text = slot("marking")
    sheet.oddFooter.right.text = "Page &P of &N"
    sheet.freeze_panes = None


# --- header-row heights: sentinel heights in the sheet, slots in the package ---------------

#: A sentinel height as openpyxl writes it in a worksheet part: `<row r="3" ht="901" ...>`.
_SENTINEL = re.compile(r'ht="(9\d\d)(?:\.0)?"')


def sentinel_height(number: int) -> float:
    """The row height that marks the `number`th header row (from 1) for `height_slots`: 900 +
    number points, which no real row has (Excel allows at most 409)."""
    if not 0 < number < 100:
        raise ValueError(f"header row {number}: sentinel heights run from 901 to 999")
    return float(HEADER_HEIGHT_BASE + number)


def height_slot(number: int) -> str:
    """The name of the slot that holds the `number`th header row's height."""
    return f"height_{HEADER_HEIGHT_BASE + number}"


def height_slots(sheet_xml: str) -> str:
    """A worksheet part as openpyxl wrote it, each sentinel row height (`sentinel_height`)
    turned into the slot `height_slot(number)`, which `xlsx_values` fills per case.

    Why the trick: a form is compiled once, but its header rows are as tall as the names each
    case puts in them, and openpyxl has no way to write a placeholder into an attribute. So the
    header rows get heights no real row can have, and the written XML is rewritten here. This
    relies on openpyxl writing a height of 901.0 as `ht="901"` (or `ht="901.0"`);
    tests/test_fences.py fails if it stops doing so.
    """
    return _SENTINEL.sub(
        lambda m: f'ht="{slot(height_slot(int(m[1]) - HEADER_HEIGHT_BASE))}"', sheet_xml
    )


@cache
def compile_xlsx(form: FormDefinition) -> CompiledPackage:
    """The form as an Excel package with slots for the case's facts, identity, council,
    marking and header-row heights (`height_slots`).

    openpyxl stamps the save time into docProps/core.xml; those stamps are pinned here so
    the same inputs give byte-identical files.
    """
    buffer = io.BytesIO()
    workbook, _ = _build_workbook(form)
    workbook.save(buffer)
    parts = []
    with zipfile.ZipFile(buffer) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "docProps/core.xml":
                data = _pin_times(data.decode("utf-8")).encode("utf-8")
            if name.startswith("xl/worksheets/"):
                data = height_slots(data.decode("utf-8")).encode("utf-8")
            if b"{{ft:" in data:
                parts.append(CompiledPart.of(name, data.decode("utf-8")))
            else:
                parts.append(CompiledPart.of(name, data))
    return CompiledPackage(tuple(parts))


@cache
def _header_layout(form: FormDefinition) -> tuple[tuple[int, tuple[Cell, ...]], ...]:
    return tuple(_build_workbook(form)[1])


def _pin_times(core: str) -> str:
    return re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*", r"\g<1>2000-01-01T00:00:00Z", core)


def xlsx_values(
    form: FormDefinition,
    facts: Mapping[str, str],
    identity: Mapping[str, str],
    print_lines: Mapping[str, str],
) -> dict[str, str]:
    """Slot values for one case, escaped for SpreadsheetML text; header rows as tall as the
    names this case puts in them."""
    values = {"fact_" + k: xml_text(v) for k, v in facts.items()}
    values.update({"prop_" + k: xml_text(str(v)) for k, v in identity.items()})
    values["identity"] = xml_text(identity["visible"])  # has no "&", so no footer codes
    values.update({k: xml_text(v.replace("&", "&&")) for k, v in print_lines.items()})
    for number, (_, cells) in enumerate(_header_layout(form), start=1):
        lines = max(
            lines_needed(facts.get(c.fact, "") if c.kind == "fact" else c.text, c.span)
            for c in cells
        )
        values[height_slot(number)] = f"{_height(lines):g}"
    return values
