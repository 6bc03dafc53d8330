"""One small document model, two renderers: Word (python-docx) and PDF (reportlab).

Both packs describe their content as `Part`s (a heading, paragraphs, tables, images); the
renderers lay them out the same way: A4 portrait, the council and the protective marking at
the top and bottom of every page, "Page X of Y", DRAFT on every page of a draft, tables with a
shaded header row repeated on each page and columns sized to their content, headings kept with
what follows, and rows that flow across pages however long a comment is. Both carry DejaVu Sans
(see fonts.py), the PDF whole and the Word file cut down to its text (`embed_fonts`), so every
name prints in it whatever fonts the reader's machine has; the same input gives the same PDF
bytes.

Both are accessible documents (the Public Sector Bodies Accessibility Regulations 2018): title
and language (en-GB) set, the title then one level of real headings, table header rows marked
and repeated, alternative text on every chart (`Part.alts`), and the PDF tagged
(tagged_pdf.py) with its structure in reading order.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from docx import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Emu, Mm, Pt, RGBColor
from lxml import etree
from PIL import Image as PilImage
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from formtool.packs import fonts
from formtool.packs.fonts import BOLD, REGULAR, markup, measure, register, unprintable
from formtool.packs.tagged_pdf import (
    LANGUAGE,
    Element,
    TaggedCanvas,
    TaggedImage,
    TaggedParagraph,
)

__all__ = ["Document", "Part", "Table", "column_fractions", "to_docx", "to_pdf", "unprintable"]

MM = 72 / 25.4  # points per millimetre
PAGE_W, PAGE_H = 210 * MM, 297 * MM  # A4 portrait
MARGIN = 16 * MM
TEXT_W = PAGE_W - 2 * MARGIN
HEADER_FILL, RULE, ACCENT, MUTED, DRAFT_RED = "#DCE3F0", "#9AA5B8", "#1F3864", "#555555", "#C00000"
INK = "#1A1A1A"
BODY, CELL, SMALL = 9.0, 8.5, 7.5  # font sizes, pt
PAD = 4.0  # cell padding left and right, pt
MIN_COLUMN, MAX_WORD = 0.07, 0.35  # fractions of the text width
SHORT_ROW = 400  # characters: rows this short are kept on one page
SMALL_TABLE = 10  # rows: a table of this many short rows is kept on one page
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Table:
    headings: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...] | None = None  # fractions of the text width; None = sized to content
    numeric: tuple[int, ...] = ()  # column indexes of numbers: right-aligned


@dataclass
class Part:
    heading: str = ""
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)  # PNG
    bullets: list[str] = field(default_factory=list)
    page_break_before: bool = False
    alts: list[str] = field(default_factory=list)  # each image's alternative text

    def alt(self, index: int) -> str:
        """What a screen reader says for the image: its alternative text, or where to find
        its figures."""
        if index < len(self.alts) and self.alts[index].strip():
            return self.alts[index]
        about = f" for {self.heading}" if self.heading else ""
        return f"Chart{about}; the table that follows gives its figures."


@dataclass
class Document:
    title: str
    subtitle: str
    parts: list[Part]
    footer: str  # e.g. "Audit CSC-A1-202611 · Case File Audit Tool, version 1"
    council: str = ""  # printed in the header of every page
    marking: str = "OFFICIAL-SENSITIVE"  # protective marking, top and bottom of every page
    draft: bool = False  # DRAFT marked on every page (a draft return filed on request)


# --- column widths, shared by both renderers ------------------------------------------------


def column_fractions(table: Table) -> tuple[float, ...]:
    """Column widths as fractions of the text width: `table.widths` scaled to 1, or sized to
    content: each column between its longest word and its longest line (as browsers lay out
    tables), number columns served first, space beyond the longest lines going to the text
    columns."""
    if table.widths:
        return tuple(w / sum(table.widths) for w in table.widths)
    n = len(table.headings)  # measured in the PDF's fonts, for Word too
    low, high = [MIN_COLUMN * TEXT_W] * n, [MIN_COLUMN * TEXT_W] * n
    for row_index, row in enumerate((table.headings, *table.rows)):
        for i, text in enumerate(row[:n]):
            word, line = (w + 2 * PAD + 1 for w in measure(text or "", row_index == 0, CELL))
            low[i] = max(low[i], min(word, MAX_WORD * TEXT_W))
            high[i] = max(high[i], min(line, TEXT_W), low[i])
    prose = [i not in table.numeric for i in range(n)]
    firm = [lo if t else hi for lo, hi, t in zip(low, high, prose, strict=True)]
    if sum(firm) <= TEXT_W:  # number columns first get their heading on one line
        low = firm
    widths = _fit(low, high, prose)
    return tuple(w / sum(widths) for w in widths)


def _fit(low: list[float], high: list[float], text: list[bool]) -> list[float]:
    if sum(low) >= TEXT_W:
        return low
    if sum(high) <= TEXT_W:
        grow = [h if t else 0.0 for h, t in zip(high, text, strict=True)]
        if not any(grow):
            grow = high
        spare = TEXT_W - sum(high)
        return [h + spare * g / sum(grow) for h, g in zip(high, grow, strict=True)]
    share = (TEXT_W - sum(low)) / (sum(high) - sum(low))
    return [lo + (hi - lo) * share for lo, hi in zip(low, high, strict=True)]


def _small(table: Table) -> bool:
    return len(table.rows) <= SMALL_TABLE and all(
        sum(len(t or "") for t in row) < SHORT_ROW for row in table.rows
    )


def _png_width(image: bytes) -> float:
    """The image's printed width in points, from its resolution (96 dpi when it has none)."""
    with PilImage.open(io.BytesIO(image)) as picture:
        dpi = float(picture.info.get("dpi", (96, 96))[0]) or 96.0
        return picture.width * 72 / dpi


# --- PDF ------------------------------------------------------------------------------------


ROOT = dict(fontName=REGULAR, bulletFontName=REGULAR, textColor=INK)
STYLES: dict[str, tuple[str, dict[str, Any]]] = {  # name: (parent, settings)
    "body": ("", dict(fontSize=BODY, leading=BODY * 1.35, spaceAfter=4)),
    "cell": ("body", dict(fontSize=CELL, leading=CELL * 1.3, spaceAfter=0)),
    "cell-right": ("cell", dict(alignment=TA_RIGHT)),
    "head": ("cell", dict(fontName=BOLD)),
    "head-right": ("head", dict(alignment=TA_RIGHT)),
    "bullet": ("body", dict(leftIndent=12, bulletIndent=3)),
    "title": ("body", dict(fontName=BOLD, fontSize=17, leading=21, textColor=ACCENT)),
    "subtitle": ("body", dict(fontSize=10, leading=13, textColor=MUTED, spaceAfter=10)),
    "heading": ("title", dict(fontSize=12, leading=15, spaceBefore=10, spaceAfter=5)),
    "small": ("cell", dict(fontSize=SMALL, leading=SMALL * 1.25)),
    "small-centre": ("small", dict(fontName=BOLD, alignment=TA_CENTER)),
    "small-right": ("small", dict(fontName=BOLD, alignment=TA_RIGHT, textColor=DRAFT_RED)),
}
TABLE_STYLE = [
    ("FONT", (0, 0), (-1, -1), REGULAR, CELL),  # no Helvetica (not embedded) anywhere
    ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
    ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
    ("INNERGRID", (0, 0), (-1, -1), 0.3, RULE),
    ("BOX", (0, 0), (-1, -1), 0.5, RULE),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), PAD),
    ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
]
PDF_SETTINGS = dict(author="formtool", creator="formtool", lang=LANGUAGE, invariant=1)


def _styles() -> dict[str, ParagraphStyle]:
    built: dict[str, ParagraphStyle] = {}
    for name, (parent, settings) in STYLES.items():
        base = built.get(parent)
        built[name] = ParagraphStyle(name, parent=base, **(settings if base else ROOT | settings))
    return built


def _tagged(text: str, style: Any, struct: Element, **kwargs: Any) -> TaggedParagraph:
    paragraph = TaggedParagraph(text, style, **kwargs)
    paragraph.struct = struct
    return paragraph


def _pdf_table(table: Table, styles: dict[str, Any], struct: Element) -> Any:
    """The table, each cell tagged TH (the header row, its scope the column) or TD."""
    widths = [f * TEXT_W for f in column_fractions(table)]

    def row(texts: Sequence[str], kind: str) -> list[Any]:
        texts = [*texts[: len(widths)], *[""] * (len(widths) - len(texts))]  # ragged rows
        tr = struct.add("TR")
        return [
            _tagged(
                markup(t or "", kind == "head", w - 2 * PAD, CELL),
                styles[f"{kind}-right" if i in table.numeric else kind],
                tr.add("TH", scope="Column") if kind == "head" else tr.add("TD"),
            )
            for i, (t, w) in enumerate(zip(texts, widths, strict=True))
        ]

    data = [row(table.headings, "head"), *(row(r, "cell") for r in table.rows)]
    grid = PdfTable(data, colWidths=widths, repeatRows=1, splitInRow=1, hAlign="LEFT")
    grid.setStyle(TableStyle(TABLE_STYLE))
    return grid


def _pdf_image(image: bytes, struct: Element) -> Any:
    picture = TaggedImage(io.BytesIO(image))
    picture.struct = struct
    width = min(TEXT_W, _png_width(image))
    picture.drawHeight *= width / picture.drawWidth
    picture.drawWidth = width
    picture.hAlign = "LEFT"
    return picture


def _pdf_part(part: Part, styles: dict[str, Any], sect: Element) -> list[Any]:
    """The part's flowables: its heading kept with what follows, short tables whole; each
    tagged in `sect`, in reading order."""
    h2 = sect.add("H2") if part.heading else None
    body = [
        _tagged(markup(t, width=TEXT_W), styles["body"], sect.add("P")) for t in part.paragraphs
    ]
    items = sect.add("L") if part.bullets else None
    body += [
        _tagged(
            markup(t, width=TEXT_W - 12),
            styles["bullet"],
            items.add("LI").add("LBody"),
            bulletText="\u2022",
        )
        for t in part.bullets
        if items is not None
    ]
    body += [
        item
        for i, image in enumerate(part.images)
        for item in (_pdf_image(image, sect.add("Figure", alt=part.alt(i))), Spacer(1, 6))
    ]
    grids = [(_pdf_table(t, styles, sect.add("Table")), _small(t)) for t in part.tables]
    body += [item for grid, _ in grids for item in (grid, Spacer(1, 8))]
    whole = {id(grid) for grid, small in grids if small}
    # the heading stays with an introduction of up to two paragraphs and what comes next
    lead = (len(part.paragraphs) + 1 if len(part.paragraphs) <= 2 else 1) if part.heading else 0
    body = [KeepTogether([f]) if id(f) in whole and i >= lead else f for i, f in enumerate(body)]
    if h2 is not None:
        heading = _tagged(markup(part.heading, True, TEXT_W, 12), styles["heading"], h2)
        body[:lead] = [KeepTogether([heading, *body[:lead]])]
    return [PageBreak(), *body] if part.page_break_before else body


def _page_decoration(doc: Document, styles: dict[str, Any]) -> Any:
    """Draws the header, footer and DRAFT watermark (onPage: under the page's content)."""
    third = TEXT_W / 3
    side = TEXT_W / 2 - stringWidth(doc.marking, BOLD, SMALL) / 2 - 6  # left of the marking
    size = max(6.0, min(SMALL, SMALL * side / (stringWidth(doc.footer, REGULAR, SMALL) or 1)))
    footer = ParagraphStyle("footer", parent=styles["small"], fontSize=size, leading=size * 1.2)

    def place(canvas: Any, text: str, style: Any, x: float, y: float, width: float) -> None:
        para = Paragraph(markup(text, style.fontName == BOLD, width, style.fontSize), style)
        para.wrapOn(canvas, width, 40)
        para.drawOn(canvas, x, y - para.height)

    def decorate(canvas: Any, _template: Any) -> None:
        if doc.draft:
            canvas.saveState()
            canvas.setFillColor("#E4E4E4")
            canvas.setFont(BOLD, 110)
            canvas.translate(PAGE_W / 2, PAGE_H / 2)
            canvas.rotate(52)
            canvas.drawCentredString(0, -38, "DRAFT")
            canvas.restoreState()
            place(
                canvas, "DRAFT", styles["small-right"], MARGIN + 2 * third, PAGE_H - 8 * MM, third
            )
        place(canvas, doc.council, styles["small"], MARGIN, PAGE_H - 8 * MM, side)
        place(canvas, doc.footer, footer, MARGIN, 11.5 * MM, side)
        for y in (PAGE_H - 8 * MM, 11.5 * MM):
            place(canvas, doc.marking, styles["small-centre"], MARGIN + third, y, third)
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, PAGE_H - 12.5 * MM, PAGE_W - MARGIN, PAGE_H - 12.5 * MM)
        canvas.line(MARGIN, 12.5 * MM, PAGE_W - MARGIN, 12.5 * MM)
        canvas.restoreState()

    return decorate


class NumberedCanvas(TaggedCanvas):
    """A canvas that holds its pages until the end, then stamps "Page X of Y" on each (part of
    the page's artifact: tagged_pdf.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def page_index(self) -> int:
        return len(self._pages)

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()
        self.open_artifact()

    def save(self) -> None:
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            self.setFont(REGULAR, SMALL)
            self.setFillColor(INK)
            label = f"Page {number} of {len(self._pages)}"
            self.drawRightString(PAGE_W - MARGIN, 11.5 * MM - SMALL, label)
            super().showPage()
        super().save()


def to_pdf(doc: Document) -> bytes:
    """The document as a tagged PDF (tagged_pdf.py): its title the H1, each part a section
    headed H2."""
    register()
    styles = _styles()
    root = Element("Document")
    story: list[Any] = [
        _tagged(markup(doc.title, True, TEXT_W, 17), styles["title"], root.add("H1")),
        _tagged(markup(doc.subtitle, width=TEXT_W, size=10), styles["subtitle"], root.add("P")),
    ]
    for part in doc.parts:
        story += _pdf_part(part, styles, root.add("Sect"))
    frame = Frame(MARGIN, MARGIN, TEXT_W, PAGE_H - 2 * MARGIN, 0, 0, 0, 0)  # no padding
    decorate = PageTemplate("page", [frame], onPage=_page_decoration(doc, styles))
    out = io.BytesIO()
    BaseDocTemplate(
        out,
        pagesize=(PAGE_W, PAGE_H),
        pageTemplates=[decorate],
        title=doc.title,
        subject=doc.subtitle,
        initialFontName=REGULAR,
        initialFontSize=BODY,
        **PDF_SETTINGS,
    ).build(story, canvasmaker=partial(NumberedCanvas, root=root, title=doc.title))
    return out.getvalue()


# --- Word -----------------------------------------------------------------------------------

WORD_FONT = "DejaVu Sans"  # the PDF's font, in the file (embed_fonts): all but East Asian text
WORD_FONTS = {
    "ascii": WORD_FONT,
    "hAnsi": WORD_FONT,
    "cs": WORD_FONT,
    "eastAsia": "Microsoft YaHei",
}


def _el(tag: str, **attrs: str) -> Any:
    element = OxmlElement(tag)
    for key, value in attrs.items():
        element.set(qn(f"w:{key}"), value)
    return element


_RPR = (  # the schema's order of children, which Word insists on
    "rStyle rFonts b bCs i iCs caps smallCaps strike dstrike outline shadow emboss imprint noProof"
    " snapToGrid vanish webHidden color spacing w kern position sz szCs highlight u effect bdr shd"
    " fitText vertAlign rtl cs em lang eastAsianLayout specVanish oMath"
)
_TBLPR = (
    "tblStyle tblpPr tblOverlap bidiVisual tblStyleRowBandSize tblStyleColBandSize tblW jc"
    " tblCellSpacing tblInd tblBorders shd tblLayout tblCellMar tblLook tblCaption tblDescription"
)
ORDER = [names.split() for names in (_RPR, _TBLPR)]


def _set(parent: Any, child: Any) -> None:
    """Put `child` in `parent` where the schema orders it, replacing any of its tag."""
    tag = child.tag.split("}")[1]
    for old in parent.findall(child.tag):
        parent.remove(old)
    order = next(o for o in ORDER if tag in o)
    parent.insert_element_before(child, *(f"w:{t}" for t in order[order.index(tag) + 1 :]))


def _fonts(rpr: Any, size: float) -> None:
    """Explicit fonts for every script (no theme fonts) and the complex-script size too."""
    rfonts = rpr.get_or_add_rFonts()
    rfonts.attrib.clear()
    for key, value in WORD_FONTS.items():
        rfonts.set(qn(f"w:{key}"), value)
    _set(rpr, _el("w:szCs", val=str(round(size * 2))))


def _word_styles(word: Any) -> None:
    styles = word.styles
    defaults = styles.element.find(".//{*}rPrDefault/{*}rPr")
    _fonts(defaults, BODY)
    for lang in defaults.findall(qn("w:lang")):
        lang.set(qn("w:val"), "en-GB")  # British spelling for the spelling checker
    specs = {"Normal": (BODY, INK), "Title": (17, ACCENT), "Heading 1": (12, ACCENT)}
    for name, (size, colour) in {**specs, "List Bullet": (BODY, INK)}.items():
        style = styles[name]
        style.font.size, style.font.bold = Pt(size), colour == ACCENT
        style.font.color.rgb = RGBColor.from_string(colour[1:])
        _fonts(style.element.get_or_add_rPr(), size)
        style.paragraph_format.space_after = Pt(4)
    for rule in styles["Title"].element.findall(".//{*}pBdr/{*}bottom"):
        rule.attrib.clear()
        rule.attrib.update(
            {qn("w:val"): "single", qn("w:sz"): "6", qn("w:space"): "4", qn("w:color"): RULE[1:]}
        )
    styles["Heading 1"].paragraph_format.space_before = Pt(10)
    styles["Heading 1"].paragraph_format.keep_with_next = True
    for name, size, bold in (("Table Text", CELL, False), ("Table Heading", CELL, True)):
        style = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = styles["Normal"]
        style.font.size, style.font.bold = Pt(size), bold
        _fonts(style.element.get_or_add_rPr(), size)
        style.paragraph_format.space_after = Pt(0)


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text or "")


def _field(paragraph: Any, instruction: str) -> None:
    """A PAGE or NUMPAGES field, updated by Word and LibreOffice when shown or printed."""
    code = _el("w:instrText")
    code.set(qn("xml:space"), "preserve")
    code.text = f" {instruction} "
    for element in (
        _el("w:fldChar", fldCharType="begin"),
        code,
        _el("w:fldChar", fldCharType="separate"),
    ):
        paragraph.add_run()._r.append(element)
    paragraph.add_run("1")  # shown until the field is updated
    paragraph.add_run()._r.append(_el("w:fldChar", fldCharType="end"))


def _band(part: Any, edge: str) -> list[Any]:
    """A borderless row of three cells (left, centre, right) ruled on `edge`, for the header or
    footer: a long footer wraps in its cell instead of pushing the marking aside."""
    band = part.add_table(1, 3, Mm(178))
    band.autofit = False
    rules = _el("w:tblBorders")
    for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
        line = "single" if side == edge else "nil"
        rules.append(_el(f"w:{side}", val=line, sz="4", space="0", color=RULE[1:]))
    _set(band._tbl.tblPr, rules)
    part.paragraphs[0]._p.addprevious(band._tbl)  # the part's own paragraph goes last
    part.paragraphs[0].paragraph_format.space_after = Pt(0)
    aligns = (WD_ALIGN_PARAGRAPH.LEFT, WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.RIGHT)
    for cell, share, align in zip(band.rows[0].cells, (0.38, 0.24, 0.38), aligns, strict=True):
        cell.width = int(Mm(178) * share)
        cell.paragraphs[0].style, cell.paragraphs[0].alignment = "Table Text", align
    return [cell.paragraphs[0] for cell in band.rows[0].cells]


def _word_page(word: Any, doc: Document) -> None:
    section = word.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    for side in ("left", "right", "top", "bottom"):
        setattr(section, f"{side}_margin", Mm(16))
    section.header_distance = section.footer_distance = Mm(7)
    council, marking, draft = _band(section.header, "bottom")
    council.add_run(_clean(doc.council))
    marking.add_run(_clean(doc.marking)).bold = True
    if doc.draft:
        stamp = draft.add_run("DRAFT")
        stamp.bold, stamp.font.color.rgb = True, RGBColor.from_string(DRAFT_RED[1:])
    footer, marking_, page = _band(section.footer, "top")
    footer.add_run(_clean(doc.footer))
    marking_.add_run(_clean(doc.marking)).bold = True
    page.add_run("Page ")
    _field(page, "PAGE")
    page.add_run(" of ")
    _field(page, "NUMPAGES")
    for paragraph in (council, marking, draft, footer, marking_, page):
        for run in paragraph.runs:
            run.font.size = Pt(SMALL)


def _word_borders(table: Any) -> None:
    tbl_pr = table._tbl.tblPr
    borders = _el("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        borders.append(_el(f"w:{edge}", val="single", sz="4", space="0", color=RULE[1:]))
    _set(tbl_pr, borders)
    margins = _el("w:tblCellMar")
    for edge, twips in (("top", "40"), ("left", "80"), ("bottom", "60"), ("right", "80")):
        margins.append(_el(f"w:{edge}", w=twips, type="dxa"))
    _set(tbl_pr, margins)


def _word_row(
    row: Any,
    texts: Sequence[str],
    table: Table,
    widths: list[int],
    header: bool,
    keep: bool,
    style_id: str,
) -> None:
    for i, (cell, text) in enumerate(zip(row.cells, texts, strict=False)):
        cell.width = widths[i]
        paragraph = cell.paragraphs[0]
        # The style by its id: python-docx's name lookup scans every style for each cell,
        # which was most of the time a file pack took.
        paragraph._p.style = style_id
        paragraph.add_run(_clean(text))
        paragraph.paragraph_format.keep_with_next = keep or None
        if i in table.numeric:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        if header:
            cell._tc.get_or_add_tcPr().append(
                _el("w:shd", val="clear", color="auto", fill=HEADER_FILL[1:])
            )
    tr_pr = row._tr.get_or_add_trPr()
    if header:
        tr_pr.append(_el("w:tblHeader"))  # repeated at the top of each page
    if sum(len(t or "") for t in texts) < SHORT_ROW:
        tr_pr.append(_el("w:cantSplit"))  # short rows stay whole; long ones flow on


def _word_table(word: Any, table: Table) -> None:
    width = int(TEXT_W / 72 * 914400)
    widths = [int(f * width) for f in column_fractions(table)]
    grid = word.add_table(rows=1 + len(table.rows), cols=len(table.headings))
    grid.autofit = False
    _word_borders(grid)
    for column, w in zip(grid.columns, widths, strict=True):
        column.width = w
    small = _small(table)  # kept on one page: each row kept with the next
    heading, text = (word.styles[name].style_id for name in ("Table Heading", "Table Text"))
    for n, (row, texts) in enumerate(zip(grid.rows, (table.headings, *table.rows), strict=True)):
        keep = small and n < len(table.rows)
        _word_row(row, texts, table, widths, n == 0, keep, heading if n == 0 else text)
    word.add_paragraph().paragraph_format.space_after = Pt(4)


def _word_part(word: Any, part: Part) -> None:
    if part.heading:
        heading = word.add_paragraph(_clean(part.heading), style="Heading 1")
        heading.paragraph_format.page_break_before = part.page_break_before or None
    elif part.page_break_before:
        word.add_page_break()
    for text in part.paragraphs:
        word.add_paragraph(_clean(text))
    for text in part.bullets:
        word.add_paragraph(_clean(text), style="List Bullet")
    for i, image in enumerate(part.images):
        picture = word.add_picture(
            io.BytesIO(image), width=Emu(int(min(TEXT_W, _png_width(image)) / 72 * 914400))
        )
        picture._inline.docPr.set("descr", _clean(part.alt(i)))  # its alternative text
    for table in part.tables:
        _word_table(word, table)


# --- Word: the fonts travel in the file ------------------------------------------------------

_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"
_OBFUSCATED_FONT = "application/vnd.openxmlformats-officedocument.obfuscatedFont"
#: The settings the schema puts before embedTrueTypeFonts (Word insists on the order).
_BEFORE_EMBED = {
    "writeProtection",
    "view",
    "zoom",
    "removePersonalInformation",
    "removeDateAndTime",
    "doNotDisplayPageBoundaries",
    "displayBackgroundShape",
    "printPostScriptOverText",
    "printFractionalCharacterWidth",
    "printFormsData",
}


def _obfuscated(font: bytes, key: str) -> bytes:
    """A font as Word files embed it (ECMA-376 part 1, 17.8.1): its first 32 bytes XORed with
    the bytes of its key (a GUID) in reverse order, twice over."""
    mask = bytes.fromhex(key.strip("{}").replace("-", ""))[::-1] * 2
    return bytes(a ^ b for a, b in zip(font[:32], mask, strict=True)) + font[32:]


def _xml(element: Any) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", standalone=True)


def embed_fonts(docx: bytes) -> bytes:
    """The Word file with WORD_FONT, regular and bold, embedded in it, cut down to the glyphs
    its text needs (as Word's "embed only the characters used" does).

    Without them, Word and LibreOffice draw "DejaVu Sans" with whatever font the machine offers
    in its place: Debian's fonts-urw-base35, for one, offers Nimbus Sans, which lacks ễ and ị.
    """
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    stories = [n for n in parts if re.fullmatch(r"word/(document|header\d*|footer\d*)\.xml", n)]
    text = "".join(
        t.text or "" for n in stories for t in etree.fromstring(parts[n]).iter(qn("w:t"))
    )
    table = etree.fromstring(parts["word/fontTable.xml"])
    entry = etree.SubElement(table, qn("w:font"), {qn("w:name"): WORD_FONT})
    for tag, value in (
        ("panose1", "020B0603030804020204"),
        ("family", "swiss"),
        ("pitch", "variable"),
    ):
        etree.SubElement(entry, qn(f"w:{tag}"), {qn("w:val"): value})
    rels = etree.Element(f"{{{_RELS}}}Relationships", nsmap={None: _RELS})
    for n, (bold, tag) in enumerate(((False, "embedRegular"), (True, "embedBold")), start=1):
        font = fonts.dejavu_subset(bold, text)
        key = f"{{{uuid.UUID(bytes=hashlib.sha256(font).digest()[:16])}}}".upper()
        parts[f"word/fonts/font{n}.odttf"] = _obfuscated(font, key)
        embed = {f"{{{_R}}}id": f"rIdFont{n}", qn("w:fontKey"): key, qn("w:subsetted"): "1"}
        etree.SubElement(entry, qn(f"w:{tag}"), embed)
        link = {"Id": f"rIdFont{n}", "Type": f"{_R}/font", "Target": f"fonts/font{n}.odttf"}
        etree.SubElement(rels, f"{{{_RELS}}}Relationship", link)
    parts["word/fontTable.xml"] = _xml(table)
    parts["word/_rels/fontTable.xml.rels"] = _xml(rels)
    types = etree.fromstring(parts["[Content_Types].xml"])
    odttf = {"Extension": "odttf", "ContentType": _OBFUSCATED_FONT}
    types.insert(0, etree.Element(f"{{{_TYPES}}}Default", odttf))
    parts["[Content_Types].xml"] = _xml(types)
    settings = etree.fromstring(parts["word/settings.xml"])
    place = sum(1 for child in settings if etree.QName(child).localname in _BEFORE_EMBED)
    settings.insert(place, etree.Element(qn("w:saveSubsetFonts")))
    settings.insert(place, etree.Element(qn("w:embedTrueTypeFonts")))
    parts["word/settings.xml"] = _xml(settings)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def to_docx(doc: Document) -> bytes:
    word = WordDocument()
    _word_styles(word)
    _word_page(word, doc)
    word.core_properties.title = _clean(doc.title)
    word.core_properties.subject = _clean(doc.subtitle)
    word.core_properties.author = "formtool"
    word.add_paragraph(_clean(doc.title), style="Title")
    subtitle = word.add_paragraph()
    subtitle.paragraph_format.space_after = Pt(10)
    run = subtitle.add_run(_clean(doc.subtitle))
    run.font.size, run.font.color.rgb = Pt(10), RGBColor.from_string(MUTED[1:])
    for part in doc.parts:
        _word_part(word, part)
    out = io.BytesIO()
    word.save(out)
    return embed_fonts(out.getvalue())
