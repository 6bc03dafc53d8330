"""Excel returns as Excel and LibreOffice really write them, built from formtool's own filled
.xlsx forms: one builder per pattern, for tests/test_read_excel.py, a LibreOffice oracle and the
fuzzer.

Each builder takes a filled return's bytes, its form and the key of one answer of the kind it
needs (`Pattern.kind`), and returns the changed file and an `Expected`: what Excel shows the
auditor in that answer's cell, what formtool must store for it, or the code the return must be
refused with. The XML is what Excel writes (ECMA-376 part 1, 18.3 and 18.8): styles appended to
cellXfs, shared strings in a part reached by the workbook's relationship, sheets listed in
workbook.xml with their state.

Known LibreOffice differences (`LIBREOFFICE` below, per pattern) for whoever runs these through
soffice as an oracle: its CSV export shows formatted numbers only with the "as shown" token of
the filter options (`csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true`), dates
in the format of the cell (5 November 2026, not formtool's 05/11/2026: compare dates as dates),
General numbers to the column's width rather than Excel's 11 characters, the built-in short
date (14) in its own locale (soffice needs LANG=en_GB.UTF-8 and a fresh profile for UK order),
the visible sheet of a workbook whose names point at a hidden one and the last of two cells
written for one place (formtool refuses those, so the oracle checks the refusal instead).
Checked by hand with soffice 7 on every pattern here: it opens each file and, allowing for
those differences, shows what `Expected.shown` says.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from formtool.definitions import FormDefinition
from formtool.definitions.identity import defined_name
from formtool.definitions.scales import FieldKind, parse_date

S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "http://schemas.openxmlformats.org/package/2006/content-types"
SHEET = "xl/worksheets/sheet1.xml"
WORKBOOK = "xl/workbook.xml"
STYLES = "xl/styles.xml"
SHARED = "xl/sharedStrings.xml"
SHARED_TYPE = f"{R}/sharedStrings"
SHARED_CONTENT = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
SHEET_TYPE = f"{R}/worksheet"
SHEET_CONTENT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CUSTOM_TYPE = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"
)
PARTLY = "Partly recorded: the plan was seen"


@dataclass(frozen=True)
class Expected:
    """What a pattern must come to: `shown` is what Excel shows in the answer's cell,
    `stored` what formtool stores for it (the same text, except a date formtool writes its own
    way), or `refused` the issue code label the whole return must be refused with, naming
    `field` (None: whichever part or answer the reader meets first)."""

    shown: str = ""
    stored: str = ""
    refused: str = ""
    field: str | None = None

    @classmethod
    def text(cls, text: str) -> Expected:
        return cls(text, text)


Builder = Callable[[bytes, FormDefinition, str], tuple[bytes, Expected]]


@dataclass(frozen=True)
class Pattern:
    """One way Excel or LibreOffice writes an answer: its builder, the kind of answer it
    needs, and how LibreOffice's shown text differs from Excel's, if it does."""

    name: str
    build: Builder
    kind: FieldKind
    libreoffice: str = ""


# ---- the package, parts and cells -----------------------------------------------------------


def parts_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def package(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return out.getvalue()


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def text_of(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def answer_cell(data: bytes, key: str) -> str:
    """The cell ("E42") formtool's defined name for `key` points to."""
    book = parts_of(data)[WORKBOOK].decode()
    found = re.search(rf'<definedName name="{defined_name(key)}">[^<]*\$([A-Z]+)\$(\d+)<', book)
    if found is None:
        raise KeyError(key)
    return f"{found[1]}{found[2]}"


def _cell(sheet: etree._Element, ref: str) -> etree._Element:
    return next(c for c in sheet.iter(f"{{{S}}}c") if c.get("r") == ref)


def _replace_cell(parts: dict[str, bytes], ref: str, inner: str, **attributes: str) -> None:
    """The cell `ref` of the audit sheet rewritten: its attributes (s kept unless given) and
    its children from `inner`, SpreadsheetML without the namespace."""
    sheet = xml(parts[SHEET])
    cell = _cell(sheet, ref)
    style = attributes.pop("s", cell.get("s"))
    cell.attrib.clear()
    cell.set("r", ref)
    if style is not None:
        cell.set("s", style)
    for name, value in attributes.items():
        cell.set(name, value)
    for child in list(cell):
        cell.remove(child)
    if inner:
        holder = etree.fromstring(f'<x xmlns="{S}">{inner}</x>')
        cell.text = holder.text
        cell.extend(list(holder))
    parts[SHEET] = text_of(sheet)


def _add_style(
    parts: dict[str, bytes], base: str | None, number_format: int, code: str = ""
) -> str:
    """A cellXfs entry like the cell's own style `base` with another number format (and
    `code` as a custom numFmt when given), as Excel appends one; returns its index."""
    styles = xml(parts[STYLES])
    if code:
        formats = styles.find(f"{{{S}}}numFmts")
        if formats is None:
            formats = etree.Element(f"{{{S}}}numFmts")
            styles.insert(0, formats)
        etree.SubElement(formats, f"{{{S}}}numFmt", numFmtId=str(number_format), formatCode=code)
        formats.set("count", str(len(formats)))
    xfs = styles.find(f"{{{S}}}cellXfs")
    model = xfs[int(base or 0)]
    twin = etree.fromstring(etree.tostring(model))
    twin.set("numFmtId", str(number_format))
    twin.set("applyNumberFormat", "1")
    xfs.append(twin)
    xfs.set("count", str(len(xfs)))
    parts[STYLES] = text_of(styles)
    return str(len(xfs) - 1)


def _share(parts: dict[str, bytes], inner: str) -> str:
    """A shared string (`inner` is the si's content) in the workbook's table, made as Excel
    makes it when there is none: the part, its relationship and its content type."""
    if SHARED not in parts:
        parts[SHARED] = f'<sst xmlns="{S}" count="0" uniqueCount="0"></sst>'.encode()
        rels = xml(parts["xl/_rels/workbook.xml.rels"])
        etree.SubElement(
            rels,
            f"{{{PKG}}}Relationship",
            Id="rIdShared",
            Type=SHARED_TYPE,
            Target="sharedStrings.xml",
        )
        parts["xl/_rels/workbook.xml.rels"] = text_of(rels)
        _content_type(parts, "/" + SHARED, SHARED_CONTENT)
    table = xml(parts[SHARED])
    table.append(etree.fromstring(f'<si xmlns="{S}">{inner}</si>'))
    table.set("count", str(len(table)))
    table.set("uniqueCount", str(len(table)))
    parts[SHARED] = text_of(table)
    return str(len(table) - 1)


def _content_type(parts: dict[str, bytes], name: str, content: str) -> None:
    types = xml(parts["[Content_Types].xml"])
    etree.SubElement(types, f"{{{CT}}}Override", PartName=name, ContentType=content)
    parts["[Content_Types].xml"] = text_of(types)


def _style_of(parts: dict[str, bytes], ref: str) -> str | None:
    return _cell(xml(parts[SHEET]), ref).get("s")


# ---- strings: what Excel shows is the runs' text --------------------------------------------


def comment_in_inline_string(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """An XML comment inside an inline string's text: XML parsers, Excel's included, skip it."""
    parts, ref = parts_of(data), answer_cell(data, key)
    text = PARTLY.replace("Partly", "Partl<!-- checked -->y", 1)
    _replace_cell(parts, ref, f'<is><t xml:space="preserve">{text}</t></is>', t="inlineStr")
    return package(parts), Expected.text(PARTLY)


def comment_in_shared_string(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """The same comment inside a shared string, in a rich-text run."""
    parts, ref = parts_of(data), answer_cell(data, key)
    index = _share(
        parts,
        "<r><t>Partl<!-- checked -->y</t></r>"
        '<r><t xml:space="preserve"> recorded: the plan was seen</t></r>',
    )
    _replace_cell(parts, ref, f"<v>{index}</v>", t="s")
    return package(parts), Expected.text(PARTLY)


def phonetic_inline_string(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A phonetic guide (rPh, Japanese furigana) on an inline string: shown above the text
    only when asked for, never part of the value."""
    parts, ref = parts_of(data), answer_cell(data, key)
    inner = (
        f"<is><t>{PARTLY}</t>"
        '<rPh sb="0" eb="6"><t>\u3071\u30fc\u3068\u308a\u30fc</t></rPh>'
        '<phoneticPr fontId="0" type="noConversion"/></is>'
    )
    _replace_cell(parts, ref, inner, t="inlineStr")
    return package(parts), Expected.text(PARTLY)


def phonetic_shared_string(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    parts, ref = parts_of(data), answer_cell(data, key)
    index = _share(
        parts,
        f'<t>{PARTLY}</t><rPh sb="0" eb="6"><t>\u3071\u30fc\u3068</t></rPh>'
        '<phoneticPr fontId="0"/>',
    )
    _replace_cell(parts, ref, f"<v>{index}</v>", t="s")
    return package(parts), Expected.text(PARTLY)


# ---- numbers in text answers: shown through the cell's number format ------------------------


def _number(data: bytes, key: str, value: str, number_format: int, code: str = "") -> bytes:
    parts, ref = parts_of(data), answer_cell(data, key)
    style = _add_style(parts, _style_of(parts, ref), number_format, code)
    _replace_cell(parts, ref, f"<v>{value}</v>", s=style)
    return package(parts)


def date_in_text_answer(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """05/11/2026 typed into a text answer: UK Excel stores the serial with the short-date
    format (built-in 14)."""
    return _number(data, key, "46331", 14), Expected.text("05/11/2026")


def long_date_in_text_answer(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A date shown through a custom long format: formtool stores its own date text."""
    built = _number(data, key, "46331", 164 + 40, "d mmmm yyyy")
    return built, Expected("5 November 2026", "05/11/2026")


def percent_in_text_answer(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """75% typed: 0.75 with the built-in percent format 9."""
    return _number(data, key, "0.75", 9), Expected.text("75%")


def decimals_in_text_answer(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A custom thousands format with two decimals (the binary fraction is Excel's own)."""
    return _number(data, key, "1234.5", 164 + 41, "#,##0.00"), Expected.text("1,234.50")


def general_fraction(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """=0.1+0.2 as Excel stores it: 17 significant digits, shown as General (0.3)."""
    parts, ref = parts_of(data), answer_cell(data, key)
    _replace_cell(parts, ref, "<v>0.30000000000000004</v>")
    return package(parts), Expected.text("0.3")


def general_long_number(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A 12-digit number in General: Excel shows at most 11 characters."""
    parts, ref = parts_of(data), answer_cell(data, key)
    _replace_cell(parts, ref, "<v>123456789012</v>")
    return package(parts), Expected.text("1.23457E+11")


def text_format_typed(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A cell formatted as Text (@, built-in 49) before typing: Excel keeps what was typed."""
    parts, ref = parts_of(data), answer_cell(data, key)
    style = _add_style(parts, _style_of(parts, ref), 49)
    index = _share(parts, "<t>05/11/2026</t>")
    _replace_cell(parts, ref, f"<v>{index}</v>", t="s", s=style)
    return package(parts), Expected.text("05/11/2026")


# ---- date answers ---------------------------------------------------------------------------

#: What Word's date box writes (UK and US lists) and auditors copy into Excel, each 20/11/2026.
WORD_SPELLINGS = (
    "20th November 2026",
    "Nov 20, 2026",
    "20-Nov-2026",
    "Friday, 20 November 2026",
    "20.11.26",
    "November 20, 2026",
    "20 Nov. 26",
)


def typed_date(spelling: str) -> Builder:
    """A date typed as text (a text-formatted cell keeps it as typed) in a date answer."""

    def build(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
        parts, ref = parts_of(data), answer_cell(data, key)
        _replace_cell(parts, ref, f"<is><t>{spelling}</t></is>", t="inlineStr")
        return package(parts), Expected(spelling, spelling)

    build.__name__ = f"typed_date_{re.sub(r'[^a-z0-9]+', '_', spelling.lower())}"
    return build


def serial_as_text(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A serial stored as text in a date answer (pasted from a system export): its date."""
    parts, ref = parts_of(data), answer_cell(data, key)
    _replace_cell(parts, ref, "<is><t>46346</t></is>", t="inlineStr")
    return package(parts), Expected("46346", "20/11/2026")


def iso_date_cell(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A date cell of type d (ISO 8601 text), as Strict and some writers store dates."""
    parts, ref = parts_of(data), answer_cell(data, key)
    _replace_cell(parts, ref, "<v>2026-11-20T00:00:00</v>", t="d")
    return package(parts), Expected("20/11/2026", "20/11/2026")


# ---- where the answer is: refused when the auditor saw something else -----------------------


def _hidden_copy(data: bytes, form: FormDefinition, key: str, state: str) -> tuple[bytes, Expected]:
    """A second copy of the sheet, hidden, holding other answers, with formtool's names
    pointed at it: the auditor sees the visible sheet's answers. The refusal names the
    form's first answer."""
    parts, ref = parts_of(data), answer_cell(data, key)
    visible = parts[SHEET]
    _replace_cell(parts, ref, "<is><t>Hidden answer</t></is>", t="inlineStr")
    parts["xl/worksheets/sheet2.xml"], parts[SHEET] = parts[SHEET], visible
    rels = xml(parts["xl/_rels/workbook.xml.rels"])
    etree.SubElement(
        rels,
        f"{{{PKG}}}Relationship",
        Id="rIdHidden",
        Type=SHEET_TYPE,
        Target="worksheets/sheet2.xml",
    )
    parts["xl/_rels/workbook.xml.rels"] = text_of(rels)
    _content_type(parts, "/xl/worksheets/sheet2.xml", SHEET_CONTENT)
    book = xml(parts[WORKBOOK])
    sheets = book.find(f"{{{S}}}sheets")
    etree.SubElement(
        sheets,
        f"{{{S}}}sheet",
        {"name": "Audit (2)", "sheetId": "2", "state": state, f"{{{R}}}id": "rIdHidden"},
    )
    for name in book.iter(f"{{{S}}}definedName"):
        if name.text and name.get("localSheetId") is None:
            name.text = name.text.replace("'Audit'!", "'Audit (2)'!")
    parts[WORKBOOK] = text_of(book)
    return package(parts), Expected(refused="hidden-answers", field=form.fields()[0].key)


def very_hidden_sheet(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    return _hidden_copy(data, form, key, "veryHidden")


def hidden_sheet(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    return _hidden_copy(data, form, key, "hidden")


def duplicate_cell(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """The answer's cell written twice in its row with different text."""
    parts, ref = parts_of(data), answer_cell(data, key)
    sheet = xml(parts[SHEET])
    cell = _cell(sheet, ref)
    twin = etree.fromstring(
        f'<c xmlns="{S}" r="{ref}" t="inlineStr"><is><t>Other answer</t></is></c>'
    )
    cell.addnext(twin)
    parts[SHEET] = text_of(sheet)
    return package(parts), Expected(refused="ambiguous", field=key)


def duplicate_name(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """The answer's defined name given twice, the second pointing at another cell."""
    parts = parts_of(data)
    book = xml(parts[WORKBOOK])
    names = book.find(f"{{{S}}}definedNames")
    twin = etree.SubElement(names, f"{{{S}}}definedName", name=defined_name(key))
    twin.text = "'Audit'!$A$1"
    parts[WORKBOOK] = text_of(book)
    return package(parts), Expected(refused="ambiguous", field=key)


def cells_without_references(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """A writer that leaves out the optional r of cells (ECMA-376 18.3.1.4), as some
    exporters do: each cell follows the one before it in its row. Only the answer's row is
    written so; a gap before the answer is filled with empty cells, as such writers do."""
    parts, ref = parts_of(data), answer_cell(data, key)
    sheet = xml(parts[SHEET])
    row = _cell(sheet, ref).getparent()
    cells = {_column_of(c.get("r", "")): c for c in row}
    for child in list(row):
        row.remove(child)
    for column in range(1, max(cells) + 1):
        element = cells.get(column, etree.Element(f"{{{S}}}c"))
        element.attrib.pop("r", None)
        row.append(element)
    _set_inline(row[_column_of(ref) - 1], "Typed without references")
    parts[SHEET] = text_of(sheet)
    return package(parts), Expected.text("Typed without references")


def _column_of(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    number = 0
    for letter in letters[0] if letters else "":
        number = number * 26 + ord(letter) - 64
    return number


def _set_inline(cell: etree._Element, text: str) -> None:
    for child in list(cell):
        cell.remove(child)
    cell.set("t", "inlineStr")
    inline = etree.SubElement(cell, f"{{{S}}}is")
    etree.SubElement(inline, f"{{{S}}}t").text = text


def external_sheet(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """The sheet's relationship pointed at a file outside the package (TargetMode External):
    Office never writes it for a sheet."""
    parts = parts_of(data)
    rels = xml(parts["xl/_rels/workbook.xml.rels"])
    for rel in rels:
        if rel.get("Type") == SHEET_TYPE:
            rel.set("Target", "file:///C:/Users/auditor/Desktop/other.xlsx")
            rel.set("TargetMode", "External")
    parts["xl/_rels/workbook.xml.rels"] = text_of(rels)
    return package(parts), Expected(refused="outside-package")


def copied_to_new_workbook(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """Excel's Move or Copy > (new book), and LibreOffice's Move/Copy Sheet > - new document -:
    the sheet (cells, styles, validation, protection, print titles) goes into a new workbook;
    defined names nobody's formula uses and the document's custom properties stay behind.
    The identity line is still on the sheet."""
    parts = parts_of(data)
    book = xml(parts[WORKBOOK])
    for name in list(book.iter(f"{{{S}}}definedName")):
        if not (name.get("name") or "").startswith("_xlnm."):
            name.getparent().remove(name)
    parts[WORKBOOK] = text_of(book)
    _drop_custom_properties(parts)
    return package(parts), Expected(refused="copied-sheet", field="")


def copied_with_names(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """Excel's copy into a new book also carries the workbook names that refer to the copied
    sheet (it asks about clashes when the destination has them), written without quotes;
    strings go to a shared table as Excel always saves them, and the custom properties stay
    behind. The answers are where they were: read as usual."""
    parts, ref = parts_of(data), answer_cell(data, key)
    sheet = xml(parts[SHEET])
    shown = "".join(_cell(sheet, ref).itertext()).strip()
    for cell in sheet.iter(f"{{{S}}}c"):
        inline = cell.find(f"{{{S}}}is")
        if cell.get("t") == "inlineStr" and inline is not None:
            inner = "".join(etree.tostring(child, encoding="unicode") for child in inline)
            index = _share(parts, inner)
            cell.remove(inline)
            cell.set("t", "s")
            etree.SubElement(cell, f"{{{S}}}v").text = index
    parts[SHEET] = text_of(sheet)
    parts[WORKBOOK] = parts[WORKBOOK].replace(b"'Audit'!", b"Audit!")
    _drop_custom_properties(parts)
    return package(parts), Expected.text(shown)


def names_lost_to_ref_errors(data: bytes, form: FormDefinition, key: str) -> tuple[bytes, Expected]:
    """The same copy where the names came along but point at the old book's sheet, which
    Excel writes as #REF!."""
    parts = parts_of(data)
    book = xml(parts[WORKBOOK])
    for name in book.iter(f"{{{S}}}definedName"):
        if not (name.get("name") or "").startswith("_xlnm."):
            name.text = "#REF!"
    parts[WORKBOOK] = text_of(book)
    _drop_custom_properties(parts)
    return package(parts), Expected(refused="copied-sheet", field="")


def _drop_custom_properties(parts: dict[str, bytes]) -> None:
    parts.pop("docProps/custom.xml", None)
    rels = xml(parts["_rels/.rels"])
    for rel in list(rels):
        if rel.get("Type") == CUSTOM_TYPE:
            rels.remove(rel)
    parts["_rels/.rels"] = text_of(rels)
    types = xml(parts["[Content_Types].xml"])
    for entry in list(types):
        if entry.get("PartName") == "/docProps/custom.xml":
            types.remove(entry)
    parts["[Content_Types].xml"] = text_of(types)


AS_SHOWN = "LibreOffice's CSV shows formatted numbers only with the 'as shown' option"
PATTERNS = (
    Pattern("comment-in-inline-string", comment_in_inline_string, FieldKind.text),
    Pattern("comment-in-shared-string", comment_in_shared_string, FieldKind.text),
    Pattern("phonetic-inline-string", phonetic_inline_string, FieldKind.text),
    Pattern("phonetic-shared-string", phonetic_shared_string, FieldKind.text),
    Pattern(
        "date-in-text-answer",
        date_in_text_answer,
        FieldKind.text,
        AS_SHOWN + "; built-in 14 follows LibreOffice's locale: run soffice with "
        "LANG=en_GB.UTF-8 and a fresh profile (a profile keeps the locale it was made "
        "with; the system need not have the locale), or it shows 11/5/2026",
    ),
    Pattern(
        "long-date-in-text-answer",
        long_date_in_text_answer,
        FieldKind.text,
        AS_SHOWN + "; it shows the cell's format, formtool stores DD/MM/YYYY",
    ),
    Pattern("percent-in-text-answer", percent_in_text_answer, FieldKind.text, AS_SHOWN),
    Pattern("decimals-in-text-answer", decimals_in_text_answer, FieldKind.text, AS_SHOWN),
    Pattern("general-fraction", general_fraction, FieldKind.text, AS_SHOWN),
    Pattern(
        "general-long-number",
        general_long_number,
        FieldKind.text,
        "LibreOffice's General shows as many digits as the column has room for (123456789012)",
    ),
    Pattern("text-format-typed", text_format_typed, FieldKind.text),
    *(Pattern(f"typed-date-{s}", typed_date(s), FieldKind.date) for s in WORD_SPELLINGS),
    Pattern("serial-as-text", serial_as_text, FieldKind.date, "both show the text 46346"),
    Pattern("iso-date-cell", iso_date_cell, FieldKind.date, "shown in the cell's format"),
    Pattern("very-hidden-sheet", very_hidden_sheet, FieldKind.text, "shows the visible sheet"),
    Pattern("hidden-sheet", hidden_sheet, FieldKind.text, "shows the visible sheet"),
    Pattern("duplicate-cell", duplicate_cell, FieldKind.text, "shows the last of the two"),
    Pattern("duplicate-name", duplicate_name, FieldKind.text),
    Pattern("cells-without-references", cells_without_references, FieldKind.text),
    Pattern("external-sheet", external_sheet, FieldKind.text, "LibreOffice opens no sheet"),
    Pattern("copied-to-new-workbook", copied_to_new_workbook, FieldKind.text),
    Pattern("names-lost-to-ref-errors", names_lost_to_ref_errors, FieldKind.text),
    Pattern("copied-with-names", copied_with_names, FieldKind.text),
)


def key_for(form: FormDefinition, kind: FieldKind) -> str:
    """The first answer of a kind, the one a pattern of that kind is built on."""
    return next(f.key for f in form.fields() if f.kind is kind)


def as_date(text: str) -> dt.date | None:
    """A shown or stored date, for comparing LibreOffice's display with formtool's value."""
    return parse_date(text)
