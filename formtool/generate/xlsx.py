"""Fillable Excel forms: one sheet laid out like the form, compiled once with openpyxl.

Answer cells are unlocked, with list validation (error alert on) for scales and date
validation for dates; everything else is locked under sheet protection. Every answer cell
also carries a defined name after its stable key, which survives LibreOffice Calc.

Rows are as tall as their text: printed text is measured when the form is compiled, and the
header rows, whose names come with each case, are measured per case (their heights are slots).
Every page break is written into the sheet: the writer follows the printed page (A4
landscape, one page wide, the title rows repeated) and breaks before a row that would not fit,
so neither Excel nor LibreOffice needs a break of its own and both print the same pages. A
heading, a header group heading and a table's column headings never end a printed page: the
break goes before them, keeping them with the first row they head. A table that runs on to
another page has its column headings again at the top of it. No break is made that gains
nothing: a tall row shares a page whenever it fits (`page_breaks` says why each break is
there).
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

from formtool import clock
from formtool.definitions import Field, FormDefinition
from formtool.definitions.forms import case_heading
from formtool.definitions.identity import PROPERTY_NAMES, defined_name
from formtool.definitions.layout import GRID, Block, Cell, Row, layout
from formtool.definitions.scales import KINDS, FieldKind
from formtool.generate.docx import heading_slot
from formtool.generate.package import CompiledPackage, CompiledPart, slot, xml_text

SHEET = "Audit"
COLUMN_WIDTH = 15.5  # characters; 8 columns fit A4 landscape at fit-to-width
CHARS_PER_COLUMN = 17  # characters of 9-point text a column holds
LINE_HEIGHT = 12.75  # points per line of 9-10 point text
MARGIN = 0.55  # inches above and below the rows; the page header and footer sit at 0.3"
#: Points of rows on a landscape A4 page between the margins (595.3 - 2 x 39.6), less a
#: little for rounding. Excel prints the 8 columns at 100%; LibreOffice scales them to the
#: page width when its font is wider than Calibri (about 87% with DejaVu Sans), so its pages
#: hold more: every break is ours, and both print the same pages.
PAGE_HEIGHT = 508.0
TITLE_HEIGHT = 24.0 + 14.0  # the title and identity rows, repeated at the top of every page
#: Points for rows under the title rows. A row taller than this with its column headings
#: (seed 000's longest guidance) is shortened to fit, so the headings are not left alone.
ROOM = PAGE_HEIGHT - TITLE_HEIGHT
HEADER_HEIGHT_BASE = 900  # sentinel row heights 901, 902, ...: see height_slots

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
_STYLES = {
    "heading": (Font(bold=True, color="FFFFFF", size=9), PatternFill("solid", fgColor="1F3864")),
    "group": (Font(bold=True, color="FFFFFF", size=10), PatternFill("solid", fgColor="1F3864")),
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
    """Writes layout blocks row by row, remembers where each answer went, and follows the
    printed page to put every page break in the sheet."""

    def __init__(self, sheet: Worksheet) -> None:
        self.sheet = sheet
        self.row = 1
        self.names: dict[str, str] = {}
        self.validations: dict[str, DataValidation] = {}
        self.header_rows: list[tuple[int, tuple[Cell, ...]]] = []  # measured per case
        self.page_used = 0.0  # points of rows on the printed page, with the title rows
        self.held = False  # the last row is a heading: it stays with the row under it
        #: (points used, points the next page's first rows needed) at each page break
        self.breaks: list[tuple[float, float]] = []

    def _advance(self, height: float, printed: float | None = None, held: bool = False) -> None:
        """Set this row's height and move on; `printed` is its height on the page when
        `height` is a sentinel to be replaced per case. A row that does not fit starts a
        page, as Excel would start one; `held` rows (headings) keep with the next row."""
        self.sheet.row_dimensions[self.row].height = height
        on_page = height if printed is None else printed
        if self.page_used > TITLE_HEIGHT and self.page_used + on_page > PAGE_HEIGHT:
            self._break(on_page)
        self.page_used += on_page
        self.row += 1
        self.held = held

    def _break(self, needed: float) -> None:
        self.breaks.append((self.page_used, needed))
        self.sheet.row_breaks.append(Break(id=self.row - 1))  # after the row above
        self.page_used = TITLE_HEIGHT  # the repeated title rows

    def keep_together(self, height: float) -> None:
        """Start a new printed page here unless `height` points still fit on this one. A
        heading above decided already (it is kept with what follows), and an empty page
        gains nothing from a break."""
        if self.held or self.page_used <= TITLE_HEIGHT:
            return
        if self.page_used + height > PAGE_HEIGHT:
            self._break(height)

    def room(self) -> float:
        """Points left on this printed page."""
        return PAGE_HEIGHT - self.page_used

    def line(self, text: str, font: Font, height: float | None = None, held: bool = False) -> None:
        cell = self.sheet.cell(self.row, 1, text)
        cell.font = font
        cell.alignment = _WRAP
        self.sheet.merge_cells(
            start_row=self.row, start_column=1, end_row=self.row, end_column=GRID
        )
        self._advance(height or _height(lines_needed(text, GRID)), held=held)

    def table(self, block: Block) -> None:
        header = block.name == "header"
        if not header:  # column headings stay with the first row they head
            self.keep_together(min(self.start_height(block), ROOM))
        stage_rows = self._stage_rows(block)
        # a table that runs on to another page has its column headings again at the top (Excel
        # repeats only the title rows), but not inside a stage cell merged down its rows
        heads = [] if stage_rows else [r for r in block.rows if r.header]
        rows = block.rows
        for index, row in enumerate(rows):
            if _is_group(row) and index + 1 < len(rows):  # a group heading and its first fact
                self.keep_together(2 * 2 * LINE_HEIGHT)
            elif heads and not row.header and self._starts_page(row):
                for head in heads:
                    self._write_row(head, False, 1)
            self._write_row(row, header, stage_rows.get(index, 1))
        self._advance(LINE_HEIGHT)  # a gap under the table

    def _starts_page(self, row: Row) -> bool:
        """Start a new page before `row` unless it fits on this one (with the judge's comment
        under it, when both fit a page); whether it did."""
        full = self._full_height(row)
        breaks = len(self.breaks)
        self.keep_together(full if full <= ROOM else self._row_height(row))
        return len(self.breaks) > breaks

    def start_height(self, block: Block) -> float:
        """A table's column-heading rows and its first row (with its comment row)."""
        height = 0.0
        for row in block.rows:
            height += self._full_height(row)
            if not row.header:
                break
        return height

    def _full_height(self, row: Row) -> float:
        split = any(len(c.fields) > 1 for c in row.cells)
        return self._row_height(row) + (_height(KINDS[FieldKind.text].lines) if split else 0)

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
        height = self._row_height(row)
        if split and self._full_height(row) <= ROOM:  # the answer and the judge's comment
            self.keep_together(self._full_height(row))  # under it print on one page
        if self.held and height > self.room():  # too tall to follow its heading on any page:
            height = max(self.room(), _height(2))  # shortened (see ROOM) rather than stranded
        column = 1
        for cell in row.cells:
            down = (
                stage_rows if cell.kind == "stage" else (2 if split and len(cell.fields) < 2 else 1)
            )
            self._cell(cell, column, down)
            column += cell.span
        if header:
            self.header_rows.append((self.row, row.cells))
            self._advance(sentinel_height(len(self.header_rows)), 2 * LINE_HEIGHT, _is_group(row))
        else:
            self._advance(height, held=row.header)
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
        if cell.kind == "group":  # filled per case, like the facts
            text = slot(heading_slot(cell.text))
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


@cache  # compiling, measuring the header rows and `page_breaks` share one build
def _build_workbook(form: FormDefinition) -> tuple[Workbook, _SheetWriter]:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET
    for column in range(1, GRID + 1):
        sheet.column_dimensions[get_column_letter(column)].width = COLUMN_WIDTH
    writer = _SheetWriter(sheet)
    blocks = layout(form).blocks
    for index, block in enumerate(blocks):
        if block.kind == "title":
            writer.line(block.text, Font(bold=True, size=16, color="1F3864"), 24)
        elif block.kind == "identity":
            writer.line(slot("identity"), Font(size=8, color="595959"), 14)
        elif block.kind == "heading":
            writer.keep_together(_lead_height(writer, blocks, index))
            writer.line(block.text, Font(bold=True, size=12, color="1F3864"), held=True)
        elif block.kind == "subheading":
            writer.keep_together(_lead_height(writer, blocks, index))
            writer.line(block.text, Font(bold=True, size=10, color="2F5496"), held=True)
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
    return workbook, writer


def _is_group(row: Row) -> bool:
    """A header group heading ("Social Worker/Team Details"): kept with the facts under it."""
    return any(c.kind == "group" for c in row.cells)


def _lead_height(writer: _SheetWriter, blocks: tuple[Block, ...], index: int) -> float:
    """A heading and what must print on its page: the headings under it, then the first
    guidance line, or a table's column headings and first row."""
    height = 0.0
    for block in blocks[index:]:
        if block.kind in ("heading", "subheading"):
            height += _height(lines_needed(block.text, GRID))
            continue
        if block.kind == "guidance" and block.lines:
            height += _height(lines_needed("•  " + block.lines[0], GRID))
        elif block.kind == "table":
            height += writer.start_height(block)
        break
    return height


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
    sheet.page_margins.top = sheet.page_margins.bottom = MARGIN
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
    return tuple(_build_workbook(form)[1].header_rows)


def page_breaks(form: FormDefinition) -> list[tuple[float, float]]:
    """Each page break the form's sheet has: (points the page holds, points the rows that
    start the next page needed). Every break is needed: those rows did not fit, and they
    fit a page (`ROOM`)."""
    return _build_workbook(form)[1].breaks


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
    today = clock.today()
    for number, (_, cells) in enumerate(_header_layout(form), start=1):
        printed = {c.text: case_heading(c.text, facts, today) for c in cells if c.kind == "group"}
        values.update({heading_slot(t): xml_text(text) for t, text in printed.items()})
        lines = max(
            lines_needed(
                facts.get(c.fact, "") if c.kind == "fact" else printed.get(c.text, c.text), c.span
            )
            for c in cells
        )
        values[height_slot(number)] = f"{_height(lines):g}"
    return values
