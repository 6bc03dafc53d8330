"""Long list sheets written straight as worksheet XML, a row at a time, into a workbook that
XlsxWriter wrote with a placeholder for each (its header row, formats, filter, frozen pane,
print setup): XlsxWriter costs ~5 µs a cell, too slow for a year's answers (millions of rows).

`splice` copies XlsxWriter's package and, for each placeholder sheet, writes its rows after the
header row, sets the sheet's `<dimension>` and column widths (as wide as their text, as
XlsxWriter's would be), and adds the shared strings the rows use. Repeating text (tools, teams,
questions, answers) is a shared string, written once; free text (evidence, actions) is written
in its cell. Text stays text whatever it looks like (a number, a formula); control characters
are escaped as Excel does (_xHHHH_) and text over Excel's 32,767 characters a cell is cut there,
as XlsxWriter does. Dates are Excel serial numbers in the sheet's date style.

A sheet holds at most `MAX_ROWS` rows, its header row included: the caller sends more to a
CSV file (`write_csv`), with text that starts like a formula quoted.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from formtool.packs.export import csv_safe

#: The rows an Excel sheet holds, its header row included (a test lowers it).
MAX_ROWS = 1_048_576
#: Deflate level of the package. A quarter of 10,000 audits measured: level 1 wrote the
#: workbook ~1 s faster than zlib's default 6, the file 18.8 MB against 14.9 MB.
COMPRESSLEVEL = 1
TEXT_MAX = 32_767  # characters (UTF-16 units) an Excel cell holds
EXCEL_EPOCH = dt.date(1899, 12, 30).toordinal()
SST = "xl/sharedStrings.xml"
SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
SST_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
#: What makes text need more than copying into the XML: markup, control characters (not tab or
#: newline), the two non-characters, and text that reads as Excel's own _xHHHH_ escape.
_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_ESCAPE_LIKE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
Row = Sequence[Any]


@dataclass
class LongSheet:
    """A list sheet whose rows are streamed: `rows()` yields them in order, `count` of them."""

    name: str
    headings: Sequence[str]
    count: int
    rows: Callable[[], Iterable[Row]]
    wide: dict[int, int] = field(default_factory=dict)  # column -> widest width (default 60)
    free_text: frozenset[int] = frozenset()  # columns written in their cells, not shared


def xml_text(text: str) -> str:
    """Text as worksheet XML content: cut at Excel's limit, markup and control characters
    escaped as XlsxWriter escapes them."""
    if len(text) > TEXT_MAX // 2 and len(text.encode("utf-16-le", "surrogatepass")) > 2 * TEXT_MAX:
        text = _utf16_cut(text)
    if _SPECIAL.search(text) is None:
        return text
    text = _ESCAPE_LIKE.sub(r"_x005F\1", text)  # literal "_x0041_" stays literal
    text = _CONTROL.sub(lambda m: f"_x{ord(m[0]):04X}_", text)
    text = text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _utf16_cut(text: str) -> str:
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > TEXT_MAX:
            return text[:index]
    return text


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class SharedStrings:
    """The package's shared string table: text -> index, and the <si> entries to write."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.entries: list[str] = []
        self.count = 0  # distinct texts
        self.uses = 0  # cells

    def find(self, text: str) -> int:
        """The index of `text`, added if new."""
        found = self.index.get(text)
        return self.add(text) if found is None else found

    def add(self, text: str) -> int:
        number = self.count
        self.index[text] = number
        self.count += 1
        self.entries.append(f'<si><t xml:space="preserve">{xml_text(text)}</t></si>')
        return number

    def xml(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
            f' count="{self.uses}" uniqueCount="{self.count}">' + "".join(self.entries) + "</sst>"
        )


def write_rows(
    rows: Iterable[Row],
    out: IO[str],
    strings: SharedStrings,
    free_text: frozenset[int],
    date_style: int,
    widths: list[int],
    first: int = 2,
) -> int:
    """Rows as <row> elements numbered from `first` into `out`; `widths` grows to the longest
    text each column holds. Returns the number of rows."""
    letters = [column_letter(c) for c in range(len(widths))]
    # each shared column's own text -> index: a column's width grows only when it meets new text
    seen: list[dict[str, int] | None] = [None if c in free_text else {} for c in range(len(widths))]
    number = first - 1
    buffer: list[str] = []
    put = buffer.append
    uses = 0
    for row in rows:
        number += 1
        put(f'<row r="{number}">')
        for c, value in enumerate(row):
            if type(value) is str:
                if not value:
                    continue
                column = seen[c]
                if column is None:
                    if len(value) > widths[c]:
                        widths[c] = len(value)
                    put(
                        f'<c r="{letters[c]}{number}" t="inlineStr"><is><t xml:space="preserve">'
                        f"{xml_text(value)}</t></is></c>"
                    )
                    continue
                at = column.get(value)
                if at is None:
                    at = column[value] = strings.find(value)
                    widths[c] = max(widths[c], len(value))
                put(f'<c r="{letters[c]}{number}" t="s"><v>{at}</v></c>')
                uses += 1
            elif value is not None:
                put(_other(value, f"{letters[c]}{number}", date_style, widths, c))
        put("</row>")
        if len(buffer) > 8192:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))
    strings.uses += uses
    return number - first + 1


def _other(value: Any, ref: str, date_style: int, widths: list[int], c: int) -> str:
    """A cell that is not text: a date, Yes/No, a number, or anything else as its text."""
    if isinstance(value, dt.date):
        widths[c] = max(widths[c], 10)  # dd/mm/yyyy
        serial = value.toordinal() - EXCEL_EPOCH
        if isinstance(value, dt.datetime):
            seconds = value.hour * 3600 + value.minute * 60 + value.second
            return f'<c r="{ref}" s="{date_style}"><v>{serial + seconds / 86400!r}</v></c>'
        return f'<c r="{ref}" s="{date_style}"><v>{serial}</v></c>'
    if isinstance(value, bool):
        value = "Yes" if value else "No"
    elif isinstance(value, int | float):
        widths[c] = max(widths[c], len(str(value)))
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    text = str(value)
    widths[c] = max(widths[c], len(text))
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{xml_text(text)}</t></is></c>'


def write_csv(sheet: LongSheet, path: Path) -> int:
    """The sheet's rows as CSV (UTF-8 with a byte-order mark, for Excel; quoted as Python's
    csv module quotes): dates as YYYY-MM-DD, text that starts like a formula quoted with an
    apostrophe. Returns the number of rows. Each distinct text is made a field once (the csv
    module took 5 µs a row: 20 s of a year's answers)."""
    fields = _Fields()
    field = fields.__getitem__
    written = 0
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        lines = [",".join(map(field, sheet.headings))]
        for row in sheet.rows():
            lines.append(",".join(map(field, row)))
            written += 1
            if len(lines) == 5000:
                lines.append("")
                out.write("\r\n".join(lines))
                lines.clear()
        lines.append("")
        out.write("\r\n".join(lines))
    return written


class _Fields(dict[Any, str]):
    """A cell's value -> its CSV field, made when first asked for. Text is kept (a bounded
    number: free text seldom repeats); other values are made each time (as keys, True and 1
    would be one)."""

    def __missing__(self, value: Any) -> str:
        if type(value) is not str:
            return _csv_text(value)  # a date, number, Yes/No or nothing: never a formula
        field = csv_safe(value)
        if any(c in field for c in ',"\r\n'):
            field = '"' + field.replace('"', '""') + '"'
        if len(self) >= 100_000:
            self.clear()
        self[value] = field
        return field


def _csv_text(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "" if value is None else str(value)


def excel_width(width: float) -> float:
    """A column width as XlsxWriter writes it (set_column's width in characters of the
    default font, plus its padding): 15 -> 15.7109375."""
    pixels = int(width * 12 + 0.5) if width <= 1 else int(width * 7 + 0.5) + 5
    return int(pixels / 7 * 256) / 256 if pixels > 12 else int(pixels / 12 * 256) / 256


def _cols(sheet: LongSheet, widths: list[int], text_style: int) -> str:
    cols = []
    for c, heading in enumerate(sheet.headings):
        longest = max(len(heading), widths[c])
        width = excel_width(min(sheet.wide.get(c, 60), max(9, longest + 2)))
        cols.append(
            f'<col min="{c + 1}" max="{c + 1}" width="{width}" style="{text_style}"'
            ' customWidth="1"/>'
        )
    return "<cols>" + "".join(cols) + "</cols>"


def splice(
    package: bytes,
    sheets: Sequence[LongSheet],
    date_style: int,
    text_style: int,
    compresslevel: int | None = None,
) -> bytes:
    """XlsxWriter's package with each sheet's rows written after its header row, and the
    shared strings they use. XlsxWriter must write no shared strings of its own (its
    constant_memory mode keeps text in the cells)."""
    level = COMPRESSLEVEL if compresslevel is None else compresslevel
    source = zipfile.ZipFile(io.BytesIO(package))
    if SST in source.namelist():
        raise ValueError("XlsxWriter wrote shared strings: open it in constant_memory mode")
    parts = _sheet_parts(source)
    streamed = {parts[s.name]: s for s in sheets}
    strings = SharedStrings()
    additions = {
        "[Content_Types].xml": (
            "</Types>",
            f'<Override PartName="/{SST}" ContentType="{SST_TYPE}"/>',
        ),
        "xl/_rels/workbook.xml.rels": (
            "</Relationships>",
            f'<Relationship Id="rIdStrings" Type="{SST_REL}" Target="sharedStrings.xml"/>',
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename in streamed:
                sheet = streamed[info.filename]
                _write_sheet(
                    data.decode(), sheet, info.filename, target, strings, date_style, text_style
                )
                continue
            if info.filename in additions:
                end, added = additions[info.filename]
                data = data.replace(end.encode(), (added + end).encode())
            target.writestr(info, data, zipfile.ZIP_DEFLATED, level)
        target.writestr(_info(SST, level), strings.xml())
    return out.getvalue()


def _sheet_parts(package: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its worksheet part, from the workbook and its relationships."""
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    rels = ElementTree.fromstring(package.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): str(r.get("Target")).lstrip("/") for r in rels}
    book = ElementTree.fromstring(package.read("xl/workbook.xml"))
    return {
        str(sheet.get("name")): _under_xl(targets[sheet.get(rel)])
        for sheet in book.iter(f"{main}sheet")
    }


def _under_xl(target: str) -> str:
    return target if target.startswith("xl/") else f"xl/{target}"


def _info(name: str, level: int | None = None) -> zipfile.ZipInfo:
    """A member dated 1980 (the same data, the same bytes), deflated at `level`."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = level  # type: ignore[attr-defined]  # what ZipFile.open reads
    return info


def _write_sheet(
    xml: str,
    sheet: LongSheet,
    part: str,
    target: zipfile.ZipFile,
    strings: SharedStrings,
    date_style: int,
    text_style: int,
) -> None:
    """The placeholder's XML around the streamed rows; the rows go through a temporary file
    first, so the widths they need are known before the columns are written."""
    widths = [0] * len(sheet.headings)
    with tempfile.TemporaryFile() as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=False)
        count = write_rows(sheet.rows(), text, strings, sheet.free_text, date_style, widths)
        text.flush()
        last = column_letter(len(sheet.headings) - 1)
        head, tail = xml.split("</sheetData>")
        head = re.sub(
            r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last}{count + 1}"/>', head, count=1
        )
        head = re.sub(r"<cols>.*?</cols>", _cols(sheet, widths, text_style), head, count=1)
        spool.seek(0)
        with target.open(_info(part, target.compresslevel), "w") as member:
            member.write(head.encode())
            shutil.copyfileobj(spool, member, 1 << 20)
            member.write(("</sheetData>" + tail).encode())
        text.detach()
