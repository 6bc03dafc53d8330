"""The Word half of render.py: a `Document` as a .docx, laid out as its PDF is (A4, the council
and the marking in the header and footer bands, "Page X of Y", DRAFT in red, tables with a
shaded header row repeated on each page, headings kept with what follows), with DejaVu Sans
embedded, cut down to the document's text.

python-docx makes the parts every pack shares once a process (`_skeleton`: styles, page,
header and footer, properties, with tokens where a document's own texts go); each document's
body is then written as XML directly, exactly as python-docx writes it, with its pictures and
fonts (a Word pack took ~110 ms through python-docx's API, ~15 ms this way).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import re
import struct
import uuid
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from docx import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Emu, Mm, Pt, RGBColor
from lxml import etree

from formtool.packs import fonts
from formtool.packs.render import (
    ACCENT,
    BODY,
    CELL,
    DRAFT_RED,
    HEADER_FILL,
    INK,
    MUTED,
    RULE,
    SHORT_ROW,
    SMALL,
    TEXT_W,
    Document,
    Part,
    Table,
    _png_width,
    _small,
    column_fractions,
)

__all__ = ["to_docx"]

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# --- the styles, the page, the header and footer ------------------------------------------

WORD_FONT = "DejaVu Sans"  # the PDF's font, in the file (_embedded): all but East Asian text
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


# --- Word: the parts every pack shares, made once ---------------------------------------------

#: Stand-ins for a document's own texts in the shared parts (header, footer, properties).
_TOKENS = {
    "title": "FORMTOOLTITLE",
    "subject": "FORMTOOLSUBJECT",
    "footer": "FORMTOOLFOOTER",
    "council": "FORMTOOLCOUNCIL",
    "marking": "FORMTOOLMARKING",
}
_STYLE_NAMES = ("Title", "Heading 1", "List Bullet", "Table Heading", "Table Text")


@dataclass(frozen=True)
class _Skeleton:
    """A Word file with no body: every part python-docx writes, a document's own texts left as
    tokens, and document.xml split where the body goes."""

    parts: dict[str, bytes]
    head: str  # document.xml up to the body's content
    tail: str  # the section properties (page, header and footer) and the end
    styles: dict[str, str]  # style name -> its id
    rel_ids: frozenset[str]  # the relationship ids document.xml.rels already uses


@functools.cache
def _skeleton(draft: bool) -> _Skeleton:
    """The styles, the A4 page, the header and footer bands and the properties, made with
    python-docx once a process (it took most of a Word pack's time, made again for each)."""
    word = WordDocument()
    _word_styles(word)
    tokens = Document(_TOKENS["title"], _TOKENS["subject"], [], _TOKENS["footer"], draft=draft)
    tokens.council, tokens.marking = _TOKENS["council"], _TOKENS["marking"]
    _word_page(word, tokens)
    word.core_properties.title = _TOKENS["title"]
    word.core_properties.subject = _TOKENS["subject"]
    word.core_properties.author = "formtool"
    styles = {name: word.styles[name].style_id for name in _STYLE_NAMES}
    out = io.BytesIO()
    word.save(out)
    with zipfile.ZipFile(out) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    head, tail = parts.pop(_MAIN).decode().split("<w:sectPr", 1)
    assert head.endswith("<w:body>"), "python-docx's template body is not empty"
    rels = etree.fromstring(parts[_MAIN_RELS])
    return _Skeleton(parts, head, "<w:sectPr" + tail, styles, frozenset(r.get("Id") for r in rels))


_TOKEN = re.compile("<w:t>(FORMTOOL[A-Z]+)</w:t>|(FORMTOOL[A-Z]+)")


def _with_texts(data: bytes, doc: Document) -> bytes:
    """A shared part with the document's texts in place of the tokens: a run's text as
    python-docx writes it, a property's as plain text."""
    values = (doc.title, doc.subtitle, doc.footer, doc.council, doc.marking)
    texts = {token: _clean(v) for token, v in zip(_TOKENS.values(), values, strict=True)}

    def put(found: re.Match[str]) -> str:
        if found[1]:
            return _w_content(texts[found[1]])
        return escape(texts[found[2]], {"\r": "&#13;"})

    return _TOKEN.sub(put, data.decode()).encode()


# --- Word: the body, written as python-docx writes it -------------------------------------------

_MAIN, _MAIN_RELS = "word/document.xml", "word/_rels/document.xml.rels"
_EMU_PER_TWIP = 635
_BLOCK_W = 6408000  # EMU: the A4 page less its margins, where python-docx's new tables start
_BORDERS = "".join(
    f'<w:{edge} w:val="single" w:sz="4" w:space="0" w:color="{RULE[1:]}"/>'
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV")
)
_TABLE_PR = (
    f'<w:tblPr><w:tblW w:type="auto" w:w="0"/><w:tblBorders>{_BORDERS}</w:tblBorders>'
    '<w:tblLayout w:type="fixed"/><w:tblCellMar><w:top w:w="40" w:type="dxa"/>'
    '<w:left w:w="80" w:type="dxa"/><w:bottom w:w="60" w:type="dxa"/>'
    '<w:right w:w="80" w:type="dxa"/></w:tblCellMar><w:tblLook w:firstColumn="1" '
    'w:firstRow="1" w:lastColumn="0" w:lastRow="0" w:noHBand="0" w:noVBand="1" w:val="04A0"/>'
    "</w:tblPr>"
)
_SHADE = f'<w:shd w:val="clear" w:color="auto" w:fill="{HEADER_FILL[1:]}"/>'
_BREAKS = re.compile(r"([\t\r\n])")


def _twips(emu: int) -> int:
    return round(emu / _EMU_PER_TWIP)


def _w_content(text: str) -> str:
    """A run's content: text in <w:t> (spaces at either end kept), a tab as <w:tab/>, a line
    break as <w:br/>."""
    out = []
    for piece in _BREAKS.split(text):
        if piece == "\t":
            out.append("<w:tab/>")
        elif piece in ("\r", "\n"):
            out.append("<w:br/>")
        elif piece:
            keep = ' xml:space="preserve"' if len(piece.strip()) < len(piece) else ""
            out.append(f"<w:t{keep}>{escape(piece)}</w:t>")
    return "".join(out)


def _w_paragraph(properties: str = "", runs: str = "") -> str:
    inner = (f"<w:pPr>{properties}</w:pPr>" if properties else "") + runs
    return f"<w:p>{inner}</w:p>" if inner else "<w:p/>"


class _WordBody:
    """The body's XML, the text it draws (for the embedded fonts) and its pictures."""

    def __init__(self, skeleton: _Skeleton) -> None:
        self.xml: list[str] = []
        self.text: list[str] = []
        self.styles = skeleton.styles
        self.images: dict[str, tuple[str, str, bytes]] = {}  # sha1 -> (rId, part name, PNG)
        self.pictures = 0
        self.free_ids = (f"rId{n}" for n in itertools.count(1) if f"rId{n}" not in skeleton.rel_ids)

    def run(self, text: str, properties: str = "") -> str:
        text = _clean(text)
        self.text.append(text)
        content = _w_content(text)
        if not (properties or content):
            return "<w:r/>"
        return f"<w:r>{f'<w:rPr>{properties}</w:rPr>' if properties else ''}{content}</w:r>"

    def paragraph(self, text: str, style: str = "", extra: str = "") -> None:
        """As python-docx's add_paragraph(text, style): no run for empty text."""
        properties = f'<w:pStyle w:val="{self.styles[style]}"/>{extra}' if style else ""
        self.xml.append(_w_paragraph(properties, self.run(text) if _clean(text) else ""))

    def part(self, part: Part) -> None:
        if part.heading:
            brk = "<w:pageBreakBefore/>" if part.page_break_before else ""
            self.paragraph(part.heading, "Heading 1", brk)
        elif part.page_break_before:
            self.xml.append('<w:p><w:r><w:br w:type="page"/></w:r></w:p>')
        for text in part.paragraphs:
            self.paragraph(text)
        for text in part.bullets:
            self.paragraph(text, "List Bullet")
        for i, image in enumerate(part.images):
            self.picture(image, part.alt(i))
        for table in part.tables:
            self.table(table)

    def picture(self, image: bytes, alt: str) -> None:
        """The image in a paragraph of its own, sized as python-docx sizes it; the same image
        twice is one part of the file."""
        from docx.image.image import Image as WordImage
        from docx.oxml.shape import CT_Inline

        picture = WordImage.from_blob(image)
        if picture.sha1 not in self.images:
            name = f"word/media/image{len(self.images) + 1}.{picture.ext}"
            self.images[picture.sha1] = (next(self.free_ids), name, image)
        rel = self.images[picture.sha1][0]
        width = Emu(int(min(TEXT_W, _png_width(image)) / 72 * 914400))
        cx, cy = picture.scaled_dimensions(width, None)
        self.pictures += 1  # python-docx numbers a document's shapes from 1
        inline = CT_Inline.new_pic_inline(self.pictures, rel, picture.filename, cx, cy)
        inline.docPr.set("descr", _clean(alt))  # its alternative text
        drawing = etree.tostring(inline, encoding="unicode")
        self.xml.append(f"<w:p><w:r><w:drawing>{drawing}</w:drawing></w:r></w:p>")

    def table(self, table: Table) -> None:
        widths = [int(f * int(TEXT_W / 72 * 914400)) for f in column_fractions(table)]
        spare = f'<w:tc><w:tcPr><w:tcW w:type="dxa" w:w="{_twips(_BLOCK_W // len(widths))}"/>'
        spare += "</w:tcPr><w:p/></w:tc>"  # a cell a ragged row leaves empty
        small = _small(table)  # kept on one page: each row kept with the next
        xml = ["<w:tbl>", _TABLE_PR, "<w:tblGrid>"]
        xml += [f'<w:gridCol w:w="{_twips(w)}"/>' for w in widths]
        xml.append("</w:tblGrid>")
        for n, texts in enumerate((table.headings, *table.rows)):
            header, keep = n == 0, small and n < len(table.rows)
            row = "<w:tblHeader/>" if header else ""
            if sum(len(t or "") for t in texts) < SHORT_ROW:
                row += "<w:cantSplit/>"  # short rows stay whole; long ones flow on
            xml.append(f"<w:tr><w:trPr>{row}</w:trPr>" if row else "<w:tr><w:trPr/>")
            style = self.styles["Table Heading" if header else "Table Text"]
            for i, (w, text) in enumerate(zip(widths, texts, strict=False)):
                properties = f'<w:pStyle w:val="{style}"/>' + keep * "<w:keepNext/>"
                properties += '<w:jc w:val="right"/>' if i in table.numeric else ""
                xml.append(f'<w:tc><w:tcPr><w:tcW w:type="dxa" w:w="{_twips(w)}"/>')
                xml.append(f"{_SHADE if header else ''}</w:tcPr>")
                xml.append(f"{_w_paragraph(properties, self.run(text or ''))}</w:tc>")
            xml += [spare] * (len(widths) - len(texts))
            xml.append("</w:tr>")
        xml.append("</w:tbl>")
        self.xml.append("".join(xml))
        self.xml.append(_w_paragraph('<w:spacing w:after="80"/>'))


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


@functools.lru_cache(maxsize=32)
def _embedded(draft: bool, extra: str) -> dict[str, bytes]:
    """The parts that embed WORD_FONT, regular and bold, cut down to KEEP and `extra` (as Word's
    "embed only the characters used" does): made once for each set of letters beyond KEEP.

    Without them, Word and LibreOffice draw "DejaVu Sans" with whatever font the machine offers
    in its place: Debian's fonts-urw-base35, for one, offers Nimbus Sans, which lacks ễ and ị.
    """
    shared = _skeleton(draft).parts
    parts: dict[str, bytes] = {}
    table = etree.fromstring(shared["word/fontTable.xml"])
    entry = etree.SubElement(table, qn("w:font"), {qn("w:name"): WORD_FONT})
    for tag, value in (
        ("panose1", "020B0603030804020204"),
        ("family", "swiss"),
        ("pitch", "variable"),
    ):
        etree.SubElement(entry, qn(f"w:{tag}"), {qn("w:val"): value})
    rels = etree.Element(f"{{{_RELS}}}Relationships", nsmap={None: _RELS})
    for n, (bold, tag) in enumerate(((False, "embedRegular"), (True, "embedBold")), start=1):
        font = fonts.dejavu_subset(bold, extra)
        key = f"{{{uuid.UUID(bytes=hashlib.sha256(font).digest()[:16])}}}".upper()
        parts[f"word/fonts/font{n}.odttf"] = _obfuscated(font, key)
        embed = {f"{{{_R}}}id": f"rIdFont{n}", qn("w:fontKey"): key, qn("w:subsetted"): "1"}
        etree.SubElement(entry, qn(f"w:{tag}"), embed)
        link = {"Id": f"rIdFont{n}", "Type": f"{_R}/font", "Target": f"fonts/font{n}.odttf"}
        etree.SubElement(rels, f"{{{_RELS}}}Relationship", link)
    parts["word/fontTable.xml"] = _xml(table)
    parts["word/_rels/fontTable.xml.rels"] = _xml(rels)
    settings = etree.fromstring(shared["word/settings.xml"])
    place = sum(1 for child in settings if etree.QName(child).localname in _BEFORE_EMBED)
    settings.insert(place, etree.Element(qn("w:saveSubsetFonts")))
    settings.insert(place, etree.Element(qn("w:embedTrueTypeFonts")))
    parts["word/settings.xml"] = _xml(settings)
    return parts


@functools.lru_cache(maxsize=4)
def _content_types(draft: bool, extensions: tuple[str, ...]) -> bytes:
    """[Content_Types].xml: the embedded fonts first, then python-docx's defaults (with those
    of the pictures' formats) in its order, by extension."""
    types = etree.fromstring(_skeleton(draft).parts["[Content_Types].xml"])
    defaults = {d.get("Extension"): d for d in types if etree.QName(d).localname == "Default"}
    for ext in extensions:
        if ext not in defaults:
            defaults[ext] = etree.Element(
                f"{{{_TYPES}}}Default", Extension=ext, ContentType=f"image/{ext}"
            )
    for ext in sorted(defaults, reverse=True):
        types.insert(0, defaults[ext])
    odttf = {"Extension": "odttf", "ContentType": _OBFUSCATED_FONT}
    types.insert(0, etree.Element(f"{{{_TYPES}}}Default", odttf))
    return _xml(types)


def _relationships(draft: bool, images: Sequence[tuple[str, str, bytes]]) -> bytes:
    rels = _skeleton(draft).parts[_MAIN_RELS]
    if not images:
        return rels
    links = "".join(
        f'<Relationship Id="{rel}" Type="{_R}/image" Target="{name.removeprefix("word/")}"/>'
        for rel, name, _ in images
    )
    return rels.replace(b"</Relationships>", links.encode() + b"</Relationships>")


# --- the zip ---------------------------------------------------------------------------------

_DOS_DATE = (1 << 5) | 1  # 1 January 1980, 00:00: the same document gives the same bytes


def _deflate(data: bytes) -> tuple[int, bytes]:
    """A part's CRC-32 and raw deflate stream (level 6, as zipfile's)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return zlib.crc32(data), packer.compress(data) + packer.flush()


#: The shared parts (styles, fonts, theme) deflated once a process: compressing ~900 KB of
#: them again for every file was half of what remained of a Word pack's time.
_deflate_shared = functools.lru_cache(maxsize=64)(_deflate)


def _zip(parts: dict[str, bytes], shared: set[str]) -> bytes:
    """The parts as a zip (deflated, fixed dates), those named in `shared` from the cache."""
    out, directory = io.BytesIO(), []
    for name, data in parts.items():
        crc, packed = (_deflate_shared if name in shared else _deflate)(data)
        sizes = (crc, len(packed), len(data), len(name.encode()), 0)
        directory.append((out.tell(), name.encode(), sizes))
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, _DOS_DATE, *sizes))
        out.write(name.encode() + packed)
    start = out.tell()
    for offset, encoded, sizes in directory:
        made_by = (3 << 8) | 20  # Unix, zip 2.0 (as zipfile writes it)
        out.write(struct.pack("<4s6H", b"PK\x01\x02", made_by, 20, 0, 8, 0, _DOS_DATE))
        out.write(struct.pack("<3L5H2L", *sizes, 0, 0, 0, 0o600 << 16, offset) + encoded)
    end = out.tell()
    count = len(directory)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, end - start, start, 0))
    return out.getvalue()


def to_docx(doc: Document) -> bytes:
    """The document as a Word file: the shared parts (`_skeleton`) with the document's texts,
    its body, its pictures and the fonts its text needs (`_embedded`)."""
    skeleton = _skeleton(doc.draft)
    body = _WordBody(skeleton)
    body.paragraph(doc.title, "Title")
    muted = f'<w:color w:val="{MUTED[1:]}"/><w:sz w:val="20"/>'
    body.xml.append(_w_paragraph('<w:spacing w:after="200"/>', body.run(doc.subtitle, muted)))
    for part in doc.parts:
        body.part(part)
    images = list(body.images.values())
    drawn = "".join([*body.text, doc.council, doc.marking, doc.footer])
    extra = "".join(sorted(set(_clean(drawn)) - set(fonts.KEEP) - set("\t\r\n")))
    parts = {
        name: _with_texts(data, doc) if b"FORMTOOL" in data else data
        for name, data in skeleton.parts.items()
    }
    parts[_MAIN] = (skeleton.head + "".join(body.xml) + skeleton.tail).encode()
    parts[_MAIN_RELS] = _relationships(doc.draft, images)
    parts["[Content_Types].xml"] = _content_types(
        doc.draft, tuple(sorted({name.rsplit(".", 1)[1] for _, name, _ in images}))
    )
    parts |= {name: data for _, name, data in images}
    embedded = _embedded(doc.draft, extra)
    parts |= embedded
    shared = {name for name, data in parts.items() if data is skeleton.parts.get(name)}
    return _zip(parts, shared | set(embedded))
