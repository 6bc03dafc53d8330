"""One small document model, two renderers: Word (python-docx) and PDF (reportlab).

Both packs describe their content as `Part`s (a heading, paragraphs, tables, images); the
renderers lay them out. PDF is made without Microsoft Office or LibreOffice.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Table:
    headings: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...]  # fractions of the text width


@dataclass
class Part:
    heading: str = ""
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    parts: list[Part]
    footer: str


def to_docx(doc: Document) -> bytes:
    from docx import Document as WordDocument
    from docx.shared import Cm, Pt, RGBColor

    word = WordDocument()
    section = word.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(1.8)
    word.styles["Normal"].font.name = "Arial"
    word.styles["Normal"].font.size = Pt(9.5)
    word.core_properties.title = doc.title
    word.core_properties.author = "formtool"
    word.add_heading(doc.title, level=0)
    word.add_paragraph(doc.subtitle)
    for part in doc.parts:
        if part.heading:
            word.add_heading(part.heading, level=2)
        for text in part.paragraphs:
            word.add_paragraph(text)
        for text in part.bullets:
            word.add_paragraph(text, style="List Bullet")
        for image in part.images:
            word.add_picture(io.BytesIO(image), width=Cm(16))
        for table in part.tables:
            _docx_table(word, table, Cm(17.4))
    footer = section.footer.paragraphs[0]
    footer.text = doc.footer
    footer.runs[0].font.size = Pt(7)
    footer.runs[0].font.color.rgb = RGBColor(0x59, 0x59, 0x59)
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


def _docx_table(word, table: Table, width) -> None:
    grid = word.add_table(rows=1, cols=len(table.headings))
    grid.style = "Table Grid"
    for cell, text, share in zip(grid.rows[0].cells, table.headings, table.widths, strict=True):
        cell.text = text
        cell.paragraphs[0].runs[0].bold = True
        cell.width = int(width * share)
    for row in table.rows:
        cells = grid.add_row().cells
        for cell, text, share in zip(cells, row, table.widths, strict=True):
            cell.text = text or ""
            cell.width = int(width * share)
    word.add_paragraph()


def _pdf_text(text: str) -> str:
    """Text for reportlab's paragraph markup: escaped, line breaks kept."""
    return escape(text or "").replace("\n", "<br/>")


def to_pdf(doc: Document) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, TableStyle
    from reportlab.platypus import Table as PdfTable

    styles = getSampleStyleSheet()
    body = styles["BodyText"].clone("cell", fontSize=8, leading=10)
    bold = body.clone("heading-cell", fontName="Helvetica-Bold")
    width = A4[0] - 30 * mm
    story = [
        Paragraph(_pdf_text(doc.title), styles["Title"]),
        Paragraph(_pdf_text(doc.subtitle), styles["BodyText"]),
        Spacer(1, 4),
    ]
    for part in doc.parts:
        if part.heading:
            story.append(Paragraph(_pdf_text(part.heading), styles["Heading3"]))
        story += [Paragraph(_pdf_text(t), styles["BodyText"]) for t in part.paragraphs]
        story += [Paragraph("\u2022 " + _pdf_text(t), styles["BodyText"]) for t in part.bullets]
        for image in part.images:
            picture = Image(io.BytesIO(image))
            scale = min(1.0, width / picture.drawWidth)
            picture.drawWidth *= scale
            picture.drawHeight *= scale
            story.append(picture)
        for table in part.tables:
            data = [[Paragraph(_pdf_text(h), bold) for h in table.headings]]
            data += [[Paragraph(_pdf_text(c), body) for c in row] for row in table.rows]
            grid = PdfTable(data, colWidths=[width * w for w in table.widths], repeatRows=1)
            grid.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DCE3F0")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story += [grid, Spacer(1, 6)]

    def on_page(canvas, page) -> None:
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, f"{doc.footer} · page {page.page}")

    out = io.BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=doc.title,
        author="formtool",
        invariant=1,
    ).build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()
