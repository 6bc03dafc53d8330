"""Returned Excel forms in: every answer by the defined name formtool gave its cell, stored
as the cell shows it.

Excel and LibreOffice Calc both keep defined names and custom document properties, and
sheet protection stops auditors moving the cells, so names are the one way to read. Parts are
found by the workbook's relationships, as Excel finds them. Sheets, the shared-string table
and the styles are streamed (lxml iterparse, comments and processing instructions dropped as
Excel ignores them) and only the cells and formats the names point to are kept, so a workbook
whose every cell repeats one huge string costs no more than any other.

What is stored is what the auditor saw: a number is shown through its cell's number format
(numfmt.py), so a date typed into a text answer is that date and 75% stays 75%; phonetic
guides (rPh) are not part of a string. Numbers in date answers are range-checked: a pasted
number is an invalid date, not a crash, and a serial typed as text is its date. A file where
that cannot be told is refused: answers on a sheet the auditor cannot see, two cells or two
definitions for one answer, and a sheet copied out of the form into a new workbook.
"""

from __future__ import annotations

import datetime as dt
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
from formtool.read import numfmt
from formtool.read.limits import TextBudget
from formtool.read.notes import Note
from formtool.read.ooxml import Package, custom_properties

S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_REF = re.compile(
    r"^(?:'?(?P<sheet>(?:[^']|'')+?)'?!)?\$?(?P<col>[A-Z]{1,3})\$?(?P<row>\d+)$", re.ASCII
)
_CELL = re.compile(r"(?P<col>[A-Z]{1,3})(?P<row>\d{1,7})", re.ASCII)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?", re.ASCII)
_SERIAL_TEXT = re.compile(r"\d{5}(?:\.0+)?", re.ASCII)
IDENTITY_CELL = 2000  # the identity line is short; longer cells are not searched
HIDDEN = ("hidden", "veryHidden")
#: Serials typed as text are dates only inside the answer cells' own validation range
#: (1/1/1990 to 31/12/2100, generate/xlsx.py): "2026" in a date box is not 18/07/1905.
TEXT_SERIALS = (32_874, 73_415)


@dataclass
class Workbook:
    """What formtool needs of a workbook: its parts, sheets and defined names."""

    package: Package
    sheets: dict[str, str]  # sheet name (case-folded, as Excel matches them) -> part
    names: dict[str, tuple[str, str]]  # defined name (case-folded) -> (sheet, "D12")
    date1904: bool = False
    hidden: dict[str, str] = field(default_factory=dict)  # folded -> name, of hidden sheets
    clashes: dict[str, str] = field(default_factory=dict)  # name -> its two targets
    shared: str | None = "xl/sharedStrings.xml"
    styles: str | None = None


@dataclass(frozen=True)
class RawCell:
    """One answer cell as stored: its type, its value's text and its style index."""

    kind: str
    value: str
    style: int = 0


def _iter(package: Package, part: str | None, tag: str) -> Iterator[etree._Element]:
    """The `tag` elements of a part, streamed; each is cleared once the caller is done."""
    data = package.read(part) if part else None
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
            remove_comments=True,  # <t>Partl<!-- -->y</t> is "Partly" to Excel
            remove_pis=True,
        ):
            if not checked:  # the DOCTYPE, if any, came before the first element
                info = element.getroottree().docinfo
                if info.doctype or info.internalDTD is not None:
                    raise Rejected(IssueCode.entities, field=part or "")
                checked = True
            yield element
            _forget(element)
    except etree.XMLSyntaxError as exc:
        raise Rejected(IssueCode.bad_xml, str(exc).splitlines()[0], field=part or "") from None


def _forget(element: etree._Element) -> None:
    """Free an element and everything parsed before it, so memory stays flat."""
    element.clear(keep_tail=False)
    node, parent = element, element.getparent()
    while parent is not None:
        while node.getprevious() is not None:
            del parent[0]
        node, parent = parent, parent.getparent()


def _string(item: etree._Element) -> str:
    """The text of a shared or inline string: its runs, without phonetic guides (rPh)."""
    return "".join(t.text or "" for t in item.iter(S + "t") if not _phonetic(t, item))


def _phonetic(t: etree._Element, item: etree._Element) -> bool:
    node = t.getparent()
    while node is not None and node is not item:
        if node.tag == S + "rPh":
            return True
        node = node.getparent()
    return False


#: The relationships of a workbook the reader follows; none of them may leave the package.
USED = ("worksheet", "sharedStrings", "styles")


def _relationships(package: Package, part: str) -> list[tuple[str, str, str]]:
    """(id, type, target part) of each internal relationship of a part; a sheet, string
    table or styles part outside the package is refused."""
    folder, base = posixpath.split(part)
    rels = package.xml(posixpath.join(folder, "_rels", base + ".rels"))
    found = []
    for rel in rels.iter(PKG_REL + "Relationship") if rels is not None else ():
        kind, target = rel.get("Type", "").rsplit("/", 1)[-1], rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            if kind in USED:
                raise Rejected(IssueCode.outside_package, target[:200], field=part)
            continue
        found.append((rel.get("Id", ""), kind, package.target(part, target)))
    return found


def open_xlsx(data: bytes) -> Workbook:
    package = Package(data, "xlsx")
    main = package.main_part()
    book = package.xml(main)
    if book is None:
        raise Rejected(IssueCode.no_document, expected="Excel workbook")
    rels = _relationships(package, main)
    targets = {rid: target for rid, _, target in rels}
    by_type = {}
    for _, kind, target in reversed(rels):  # the first of a type wins, as in Excel
        by_type[kind] = target
    sheets, hidden = {}, {}
    for sheet in book.iter(S + "sheet"):
        name = sheet.get("name", "")
        sheets[name.casefold()] = targets.get(sheet.get(REL + "id", ""), "")
        if sheet.get("state") in HIDDEN:
            hidden[name.casefold()] = name
    names, clashes = _defined_names(book)
    properties = book.find(S + "workbookPr")
    date1904 = properties is not None and properties.get("date1904") in ("1", "true")
    # without a relationship, the usual part (tests' hand-built workbooks lack it)
    shared = by_type.get("sharedStrings", "xl/sharedStrings.xml")
    styles = by_type.get("styles", "xl/styles.xml")
    return Workbook(package, sheets, names, date1904, hidden, clashes, shared, styles)


def _defined_names(book: etree._Element) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Workbook-scope defined names -> (sheet, cell), and the names defined twice with
    different targets (Excel matches names without regard to case)."""
    names: dict[str, tuple[str, str]] = {}
    seen: dict[str, str] = {}
    clashes: dict[str, str] = {}
    for name in book.iter(S + "definedName"):
        if name.get("localSheetId") is not None:
            continue
        key, text = name.get("name", "").casefold(), (name.text or "").strip()[:300]
        if key in seen and seen[key] != text:
            clashes[key] = f"defined twice: {seen[key][:100]} and {text[:100]}"
        seen.setdefault(key, text)
        match = _REF.match(text)
        if match and key not in names:
            sheet_name = (match["sheet"] or "").replace("''", "'")
            names[key] = (sheet_name, f"{match['col']}{match['row']}")
    return names, clashes


def _index(text: str) -> int | None:
    """A small non-negative integer written in ASCII digits, else None."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _column(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def _letters(number: int) -> str:
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _placed(book: Workbook, part: str) -> Iterator[tuple[str, etree._Element]]:
    """Each cell of a sheet with its reference; a cell or row without `r` follows the one
    before it, as the format allows and Excel reads it."""
    row_element, row, column = None, 0, 0
    for cell in _iter(book.package, part, S + "c"):
        parent = cell.getparent()
        if parent is not row_element:
            row_element, column = parent, 0
            number = _index(parent.get("r", "")) if parent is not None else None
            row = number if number is not None else row + 1
        ref = cell.get("r")
        found = _CELL.fullmatch(ref) if ref else None
        if found:
            column = _column(found["col"])
        elif ref is None:
            column += 1
            ref = f"{_letters(column)}{row}"
        yield ref, cell


def _cells(book: Workbook, wanted: dict[str, dict[str, str]]) -> dict[tuple[str, str], RawCell]:
    """(sheet, ref) -> the cell, for the wanted cells only (sheet -> ref -> answer key).
    A wanted cell written twice is two candidates for one answer: refused."""
    found: dict[tuple[str, str], RawCell] = {}
    for sheet, refs in wanted.items():
        part = book.sheets.get(sheet)
        if not part or not refs:
            continue
        for ref, cell in _placed(book, part):
            if ref not in refs:
                continue
            if (sheet, ref) in found:
                raise Rejected(IssueCode.ambiguous, f"cell {ref} written twice", field=refs[ref])
            found[(sheet, ref)] = RawCell(*_content(cell), _index(cell.get("s", "0")) or 0)
    return found


def _content(cell: etree._Element) -> tuple[str, str]:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(S + "is")
        return "str", _string(inline) if inline is not None else ""
    value = cell.find(S + "v")
    return kind, (value.text or "") if value is not None else ""


def _shared(book: Workbook, indexes: set[int], budget: TextBudget) -> dict[int, str]:
    """The shared strings at the given indexes (each cut at the per-field cap)."""
    found: dict[int, str] = {}
    if not indexes:
        return found
    last = max(indexes)
    for number, si in enumerate(_iter(book.package, book.shared, S + "si")):
        if number in indexes:
            found[number] = _string(si)[: budget.field_limit + 1]
        if number >= last:
            break
    return found


def _formats(book: Workbook, styles: set[int]) -> dict[int, str]:
    """Style index -> number format code, for the given cell styles only: the cellXfs
    entries are streamed up to the last one wanted, then their numFmts looked up."""
    ids: dict[int, int] = {}
    if styles and book.styles:
        last, index = max(styles), -1
        for xf in _iter(book.package, book.styles, S + "xf"):
            parent = xf.getparent()
            if parent is None or parent.tag != S + "cellXfs":
                continue
            index += 1
            if index in styles:
                ids[index] = _index(xf.get("numFmtId", "0")) or 0
            if index >= last:
                break
    custom: dict[int, str] = {}
    if any(ids.values()):
        wanted = set(ids.values())
        for element in _iter(book.package, book.styles, S + "numFmt"):
            number = _index(element.get("numFmtId", ""))
            if number is not None and number in wanted:
                custom.setdefault(number, element.get("formatCode", ""))
    return {style: numfmt.format_code(ids.get(style, 0), custom) for style in styles}


def _number(raw: str) -> float | None:
    """A cell's number as Excel writes it (no NaN, infinity, underscores or other digits)."""
    if not _NUMBER.fullmatch(raw.strip()):
        return None
    number = float(raw)
    return number if abs(number) != float("inf") else None


def _date_text(text: str, date1904: bool) -> str:
    """A date answer typed as text: a serial stored as text is its date (within the
    validation range); anything else is left for the date parser."""
    if _SERIAL_TEXT.fullmatch(text) and TEXT_SERIALS[0] <= float(text) <= TEXT_SERIALS[1]:
        day = excel_serial_date(float(text), date1904)
        if day is not None:
            return show_date(day)
    return text


def _text(cell: RawCell, shared: dict[int, str], code: str, is_date: bool, date1904: bool) -> str:
    """What the cell shows, as the answer's text."""
    kind, raw = cell.kind, cell.value
    if kind in ("s", "str", "inlineStr"):
        if kind == "s":
            index = _index(raw)
            if index is None or index not in shared:
                raise Rejected(IssueCode.damaged, "a cell points past the shared-string table")
            raw = shared[index]
        text = numfmt.shown_text(raw, code).strip()
        return _date_text(text, date1904) if is_date else text
    if kind == "b":
        return "TRUE" if raw == "1" else "FALSE"
    if kind == "d":  # an ISO 8601 date cell (Strict files, some writers)
        try:
            return show_date(dt.date.fromisoformat(raw.strip()[:10]))
        except ValueError:
            return raw.strip()
    if kind == "n" and raw:
        number = _number(raw)
        if number is None:
            return raw.strip()
        if is_date:
            day = excel_serial_date(number, date1904)
            return show_date(day) if day else raw.strip()
        return numfmt.shown(number, code, date1904).strip()
    return raw.strip()


def xlsx_identity(book: Workbook) -> Identity | None:
    found = from_properties(custom_properties(book.package))
    if found is not None:
        return found
    for si in _iter(book.package, book.shared, S + "si"):
        identity = parse_visible(_string(si)[:IDENTITY_CELL])
        if identity is not None:
            return identity
    for part in dict.fromkeys(book.sheets.values()):
        for inline in _iter(book.package, part, S + "is"):
            identity = parse_visible(_string(inline)[:IDENTITY_CELL])
            if identity is not None:
                return identity
    return None


def _answer_cells(book: Workbook, form: FormDefinition) -> dict[str, tuple[str, str]]:
    """key -> (sheet, cell) of each answer and fact whose name points into a sheet; refused
    when none does (the sheet was copied out of the form), when a name is defined twice,
    or when an answer is on a sheet the auditor cannot see."""
    where = {}
    for key in layout(form).positions:
        name = defined_name(key).casefold()
        if name in book.clashes:
            raise Rejected(IssueCode.ambiguous, book.clashes[name], field=key)
        if name in book.names:
            sheet, ref = book.names[name]
            if sheet.casefold() in book.sheets:
                where[key] = (sheet.casefold(), ref)
    if not where:
        raise Rejected(IssueCode.copied_sheet)
    answers_first = [f.key for f in form.fields() if f.key in where] + list(where)
    for key in answers_first:
        sheet = where[key][0]
        if sheet in book.hidden:
            raise Rejected(IssueCode.hidden_answers, book.hidden[sheet], field=key)
    return where


def read_values(
    book: Workbook, form: FormDefinition, notes: list[Note]
) -> tuple[dict[str, str], str]:
    dates = {f.key for f in form.fields() if f.kind is FieldKind.date}
    where = _answer_cells(book, form)
    wanted: dict[str, dict[str, str]] = {}
    for key, (sheet, ref) in where.items():
        wanted.setdefault(sheet, {}).setdefault(ref, key)
    raw = _cells(book, wanted)
    budget = TextBudget()
    indexes = {i for c in raw.values() if c.kind == "s" and (i := _index(c.value)) is not None}
    shared = _shared(book, indexes, budget)
    formats = _formats(book, {c.style for c in raw.values()})
    values = {}
    for key, place in where.items():
        cell = raw.get(place, RawCell("", ""))
        code = formats.get(cell.style, numfmt.GENERAL)
        values[key] = budget.take(key, _text(cell, shared, code, key in dates, book.date1904))
    return values, "defined names"
