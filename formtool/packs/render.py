"""One small document model, two renderers: PDF (reportlab, here) and Word (word.py).

Both packs describe their content as `Part`s (a heading, paragraphs, tables, images); the
renderers lay them out the same way: A4 portrait, the council and the protective marking at
the top and bottom of every page, "Page X of Y", DRAFT on every page of a draft, tables with a
shaded header row repeated on each page and columns sized to their content, headings kept with
what follows, and rows that flow across pages however long a comment is. Both carry DejaVu Sans
(see fonts.py), the PDF whole and the Word file cut down to its text, so every name prints in
it whatever fonts the reader's machine has; the same input gives the same bytes.

Both are accessible documents (the Public Sector Bodies Accessibility Regulations 2018): title
and language (en-GB) set, the title then one level of real headings, table header rows marked
and repeated, alternative text on every chart (`Part.alts`), and the PDF tagged
(tagged_pdf.py) with its structure in reading order.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from PIL import Image as PilImage
from reportlab.lib.colors import HexColor
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

from formtool.packs.fonts import BOLD, REGULAR, markup, measure, register, unprintable
from formtool.packs.tagged_pdf import (
    LANGUAGE,
    Element,
    TaggedCanvas,
    TaggedImage,
    TaggedParagraph,
    TaggedPdf,
)

__all__ = [
    "Document",
    "Part",
    "Table",
    "column_fractions",
    "to_docx",
    "to_pdf",
    "to_tagged_pdf",
    "unprintable",
]

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


# Colours as reportlab's objects: drawing a paragraph looks a hex string up afresh each time.
ROOT = dict(fontName=REGULAR, bulletFontName=REGULAR, textColor=HexColor(INK))
STYLES: dict[str, tuple[str, dict[str, Any]]] = {  # name: (parent, settings)
    "body": ("", dict(fontSize=BODY, leading=BODY * 1.35, spaceAfter=4)),
    "cell": ("body", dict(fontSize=CELL, leading=CELL * 1.3, spaceAfter=0)),
    "cell-right": ("cell", dict(alignment=TA_RIGHT)),
    "head": ("cell", dict(fontName=BOLD)),
    "head-right": ("head", dict(alignment=TA_RIGHT)),
    "bullet": ("body", dict(leftIndent=12, bulletIndent=3)),
    "title": ("body", dict(fontName=BOLD, fontSize=17, leading=21, textColor=HexColor(ACCENT))),
    "subtitle": ("body", dict(fontSize=10, leading=13, textColor=HexColor(MUTED), spaceAfter=10)),
    "heading": ("title", dict(fontSize=12, leading=15, spaceBefore=10, spaceAfter=5)),
    "small": ("cell", dict(fontSize=SMALL, leading=SMALL * 1.25)),
    "small-centre": ("small", dict(fontName=BOLD, alignment=TA_CENTER)),
    "small-right": (
        "small",
        dict(fontName=BOLD, alignment=TA_RIGHT, textColor=HexColor(DRAFT_RED)),
    ),
}
TABLE_STYLE = [
    ("FONT", (0, 0), (-1, -1), REGULAR, CELL),  # no Helvetica (not embedded) anywhere
    ("BACKGROUND", (0, 0), (-1, 0), HexColor(HEADER_FILL)),
    ("LINEBELOW", (0, 0), (-1, 0), 0.8, HexColor(ACCENT)),
    ("INNERGRID", (0, 0), (-1, -1), 0.3, HexColor(RULE)),
    ("BOX", (0, 0), (-1, -1), 0.5, HexColor(RULE)),
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
    return to_tagged_pdf(doc).data


def to_tagged_pdf(doc: Document) -> TaggedPdf:
    """The PDF with the structure tree it was drawn with (for a bundle: tagged_pdf.merge)."""
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
    return TaggedPdf(out.getvalue(), root)


def to_docx(doc: Document) -> bytes:
    """The document as a Word file (word.py)."""
    from formtool.packs.word import to_docx as word_file

    return word_file(doc)
