"""Tagged PDF for the packs: the structure a screen reader follows (ISO 32000-1 §14.7-14.8,
PDF/UA-1), written by reportlab in the same pass that draws the pages.

ReportLab's open-source edition has no tagged-PDF API, but it lets a canvas put literal
operators in a page's content stream and a document carry any catalog entry. So the packs'
flowables are tagged ones (`TaggedParagraph`, `TaggedImage`) that know their structure element:
drawn, each wraps its content in a marked-content sequence (`/P <</MCID 3>> BDC … EMC`), and
everything else on a page (header, footer, page number, DRAFT, table rules and shading, a
table's header row repeated on a later page) is marked as an artifact. At the end the canvas
writes the structure tree (Document > H1, P, Sect > H2, P, L > LI > LBody, Figure with its /Alt,
Table > TR > TH/TD), the parent tree that maps each page's marked content back to it, MarkInfo,
DisplayDocTitle and XMP metadata naming the title, the language and PDF/UA-1. Nothing drawn
changes: the marks are not painted, so the pages look exactly as before.

`merge` puts several tagged PDFs into one (the file pack's bundle) with pypdf, each document's
tree (from the `Element`s it was drawn with: `TaggedPdf`) under a Part of the bundle's.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)
from reportlab.pdfbase.pdfdoc import (
    PDFArray,
    PDFDictionary,
    PDFObject,
    PDFObjectReference,
    PDFStream,
    PDFString,
)
from reportlab.pdfbase.pdfdoc import format as pdf_format
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, Paragraph

__all__ = [
    "LANGUAGE",
    "Element",
    "TaggedCanvas",
    "TaggedImage",
    "TaggedParagraph",
    "TaggedPdf",
    "merge",
    "xmp",
]

LANGUAGE = "en-GB"
ARTIFACT = "/Artifact BMC"
END = "EMC"


@dataclass(eq=False)
class Element:
    """A structure element: its standard role, and its kids in reading order (elements, or
    (page index, MCID) pairs of marked content)."""

    role: str  # Document, Sect, H1, H2, P, L, LI, LBody, Figure, Table, TR, TH, TD
    parent: Element | None = None
    alt: str = ""  # Figure: the text a screen reader says instead
    scope: str = ""  # TH: "Column"
    bbox: tuple[float, float, float, float] | None = None  # Figure: where it is on its page
    kids: list[Element | tuple[int, int]] = field(default_factory=list)

    def add(self, role: str, **details: Any) -> Element:
        child = Element(role, self, **details)
        self.kids.append(child)
        return child

    def walk(self) -> Iterator[Element]:
        yield self
        for kid in self.kids:
            if isinstance(kid, Element):
                yield from kid.walk()

    def content(self) -> bool:
        """Whether anything drawn belongs to this element or one below it."""
        return any(not isinstance(k, Element) or k.content() for k in self.kids)


class TaggedParagraph(Paragraph):
    """A paragraph whose drawing is marked as its structure element's content; the parts it is
    split into across pages belong to the same element. Drawn a second time (a table's header
    row repeated at the top of a page), it stays an artifact."""

    struct: Element | None = None
    _marked = False
    _wrapped: tuple[float, tuple[float, float]] | None = None  # (width, size) last laid out

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        """Laid out once for each width (its lines depend on nothing else): a table measures
        its cells' paragraphs several times over at the same width (its rows' heights, its
        split across pages, its drawing), which was two thirds of the packs' line breaking."""
        wrapped = self._wrapped
        if wrapped is not None and wrapped[0] == availWidth and hasattr(self, "blPara"):
            return wrapped[1]  # (a split that finds no room drops blPara: laid out again)
        size = super().wrap(availWidth, availHeight)
        self._wrapped = (availWidth, size)
        return size

    def split(self, availWidth: float, availHeight: float) -> list[Any]:
        parts = super().split(availWidth, availHeight)
        for part in parts:
            part.struct = self.struct
        return parts

    def drawOn(self, canvas: Any, x: float, y: float, _sW: float = 0) -> None:
        if self.struct is None or self._marked or not isinstance(canvas, TaggedCanvas):
            super().drawOn(canvas, x, y, _sW)
            return
        self._marked = True
        with canvas.marked(self.struct):
            super().drawOn(canvas, x, y, _sW)


class TaggedImage(Image):
    """An image drawn as a Figure's content, its place on the page kept as the Figure's box."""

    struct: Element | None = None

    def drawOn(self, canvas: Any, x: float, y: float, _sW: float = 0) -> None:
        if self.struct is None or not isinstance(canvas, TaggedCanvas):
            super().drawOn(canvas, x, y, _sW)
            return
        left = self._hAlignAdjust(x, _sW)
        self.struct.bbox = (left, y, left + self.drawWidth, y + self.drawHeight)
        with canvas.marked(self.struct):
            super().drawOn(canvas, x, y, _sW)


class TaggedCanvas(Canvas):
    """A canvas that keeps every page's content marked: a tagged flowable's as marked content
    with an MCID, the rest as an artifact; `save` writes the structure tree."""

    _code: list[str]  # the page's content stream, operator by operator (reportlab's)

    def __init__(self, *args: Any, root: Element, title: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root, self.title = root, title
        self.page_names: list[str] = []  # the PDF's name of each page written
        self.mcids: dict[int, list[Element]] = {}  # page index -> the element of each MCID
        self._code.append(ARTIFACT)

    def page_index(self) -> int:
        """The index of the page being drawn (a subclass holding pages back says otherwise)."""
        return len(self.page_names)

    def open_artifact(self) -> None:
        self._code.append(ARTIFACT)

    @contextmanager
    def marked(self, element: Element) -> Iterator[None]:
        page = self.page_index()
        on_page = self.mcids.setdefault(page, [])
        element.kids.append((page, len(on_page)))
        self._code += [END, f"/{element.role} <</MCID {len(on_page)}>> BDC"]
        on_page.append(element)
        try:
            yield
        finally:
            self._code += [END, ARTIFACT]

    def showPage(self) -> None:
        """Close the page's artifact, write the page with its key in the parent tree, and open
        the next page's artifact."""
        self._code.append(END)
        name = self._doc.thisPageName()
        super().showPage()
        page = self._doc.idToObject[name]
        page.StructParents = len(self.page_names)
        page.__NoDefault__ = [*page.__NoDefault__, "StructParents"]
        self.page_names.append(name)
        self.open_artifact()

    def save(self) -> None:
        if self._code == [ARTIFACT]:
            self._code = []  # no page after the last one
        self._write_tree()
        super().save()

    def _write_tree(self) -> None:
        doc = self._doc
        elements = [e for e in self.root.walk() if e.content()]
        entries = {id(e): _StructElement() for e in elements}
        refs = {id(e): doc.Reference(entries[id(e)]) for e in elements}
        tree = PDFDictionary({"Type": "/StructTreeRoot", "K": refs[id(self.root)]})
        tree_ref = doc.Reference(tree)
        for element in elements:
            parent = refs[id(element.parent)] if element.parent else tree_ref
            entries[id(element)].entries = _element_entries(element, parent, refs, self.page_names)
        nums: list[Any] = []
        for page in sorted(self.mcids):
            nums += [page, PDFArray([refs[id(e)] for e in self.mcids[page]])]
        tree["ParentTree"] = doc.Reference(PDFDictionary({"Nums": PDFArray(nums)}))
        tree["ParentTreeNextKey"] = len(self.page_names)
        catalog = doc.Catalog
        catalog.StructTreeRoot = tree_ref
        catalog.MarkInfo = PDFDictionary({"Marked": "true"})
        catalog.Metadata = _PlainStream(
            PDFDictionary({"Type": "/Metadata", "Subtype": "/XML"}), xmp(self.title)
        )
        self.setViewerPreference("DisplayDocTitle", "true")


class _PlainStream(PDFStream):
    """A stream written as it is, without a Filter entry (reportlab writes an empty one when
    told not to compress), so XMP metadata reads as plain XML."""

    def format(self, document: Any) -> bytes:
        content = document.encrypt.encode(self.content)
        head = PDFDictionary({**self.dictionary.dict, "Length": len(content)})
        return bytes(pdf_format(head, document)) + b"\nstream\n" + content + b"endstream\n"


class _StructElement(PDFObject):
    """A structure element's dictionary, written straight to bytes: reportlab's PDFDictionary
    formats each name and value through its general machinery, which for the ~300 elements
    of each document (~23,000 in a month's packs) was most of the tree's cost."""

    def __init__(self) -> None:
        self.entries: dict[str, Any] = {}

    def format(self, document: Any) -> bytes:
        pairs = (b"/%s %s" % (k.encode(), _raw(v, document)) for k, v in self.entries.items())
        return b"<< " + b" ".join(pairs) + b" >>"


def _raw(value: Any, document: Any) -> bytes:
    """A value of a structure element: a name ("/P"), a number, a reference or a list of them
    as they are; anything else (text, dictionaries) as reportlab formats it."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, PDFObjectReference):
        return bytes(value.format(document))
    if isinstance(value, list):
        return b"[" + b" ".join(_raw(v, document) for v in value) + b"]"
    return bytes(pdf_format(value, document))


def _element_entries(
    element: Element, parent: Any, refs: dict[int, Any], pages: list[str]
) -> dict[str, Any]:
    entries: dict[str, Any] = {"Type": "/StructElem", "S": f"/{element.role}", "P": parent}
    marks = [k for k in element.kids if not isinstance(k, Element)]
    home = marks[0][0] if marks else None
    if home is not None:
        entries["Pg"] = PDFObjectReference(pages[home])
    kids: list[Any] = []
    for kid in element.kids:
        if isinstance(kid, Element):
            if kid.content():
                kids.append(refs[id(kid)])
        elif kid[0] == home:
            kids.append(kid[1])
        else:  # continued on a later page
            page = PDFObjectReference(pages[kid[0]])
            kids.append(PDFDictionary({"Type": "/MCR", "Pg": page, "MCID": kid[1]}))
    entries["K"] = kids[0] if len(kids) == 1 else kids
    if element.alt:
        entries["Alt"] = PDFString(element.alt)
    if element.scope:
        entries["A"] = PDFDictionary({"O": "/Table", "Scope": f"/{element.scope}"})
    if element.bbox:
        entries["A"] = PDFDictionary(
            {"O": "/Layout", "BBox": PDFArray([round(v, 2) for v in element.bbox])}
        )
    return entries


def xmp(title: str) -> bytes:
    """XMP metadata: the title and language, and that the file claims PDF/UA-1."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt>'
        f"</dc:title><dc:language><rdf:Bag><rdf:li>{LANGUAGE}</rdf:li></rdf:Bag></dc:language>"
        "<pdfuaid:part>1</pdfuaid:part></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


# --- many tagged PDFs in one ----------------------------------------------------------------


@dataclass(frozen=True)
class TaggedPdf:
    """A tagged PDF and the structure tree it was drawn with (its marks' pages counted from 0),
    so a bundle can build its own tree without reading the file's back."""

    data: bytes
    root: Element


def merge(pdfs: Sequence[tuple[str, TaggedPdf]], title: str) -> bytes:
    """One tagged PDF of many, each with a bookmark (its label) and its structure tree under a
    Part of the whole's; pages, bookmarks and marked content as in the originals.

    The trees are written from the `Element`s each PDF was drawn with, as TaggedCanvas writes
    them: reading ~23,000 elements back out of a month's PDFs took most of the bundle's time."""
    writer = PdfWriter()
    tree = DictionaryObject({NameObject("/Type"): NameObject("/StructTreeRoot")})
    tree_ref = writer._add_object(tree)
    document = _pypdf_element("/Document", tree_ref)
    document_ref = writer._add_object(document)
    parents: dict[int, dict[int, Any]] = {}  # page index -> MCID -> element
    pages: list[Any] = []  # each page's reference (pypdf counts the pages at each lookup)
    for label, pdf in pdfs:
        start = len(pages)
        writer.append(PdfReader(io.BytesIO(pdf.data)))
        writer.add_outline_item(title=label, page_number=start)
        for index in range(start, len(writer.pages)):
            appended = writer.pages[index]
            appended[NameObject("/StructParents")] = NumberObject(index)
            pages.append(appended.indirect_reference)
        # the document's tree under a Part, which takes the place of its Document
        part = replace(pdf.root, role="Part")
        document["/K"].append(_Tree(writer, pages[start:], start, parents).add(part, document_ref))
    nums = ArrayObject()
    for page in sorted(parents):
        nums += [NumberObject(page), ArrayObject(parents[page][m] for m in sorted(parents[page]))]
    tree[NameObject("/K")] = document_ref
    tree[NameObject("/ParentTree")] = writer._add_object(
        DictionaryObject({NameObject("/Nums"): nums})
    )
    tree[NameObject("/ParentTreeNextKey")] = NumberObject(len(pages))
    _catalog(writer, tree_ref, title)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pypdf_element(role: str, parent: Any) -> Any:
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/StructElem"),
            NameObject("/S"): NameObject(role),
            NameObject("/P"): parent,
            NameObject("/K"): ArrayObject(),
        }
    )


class _Tree:
    """Writes one document's structure elements into the bundle (as `_element_entries` does
    into the document), its marks on the pages appended from it."""

    def __init__(
        self, writer: Any, pages: list[Any], start: int, parents: dict[int, dict[int, Any]]
    ) -> None:
        self.writer, self.pages, self.start, self.parents = writer, pages, start, parents

    def add(self, element: Element, parent: Any) -> Any:
        entry = _pypdf_element(f"/{element.role}", parent)
        ref = self.writer._add_object(entry)
        marks = [k for k in element.kids if not isinstance(k, Element)]
        home = marks[0][0] if marks else None
        if home is not None:
            entry[NameObject("/Pg")] = self.pages[home]
        kids: list[Any] = []
        for kid in element.kids:
            if isinstance(kid, Element):
                if kid.content():
                    kids.append(self.add(kid, ref))
                continue
            page, mcid = kid
            self.parents.setdefault(self.start + page, {})[mcid] = ref
            kids.append(NumberObject(mcid) if page == home else self._mcr(page, mcid))
        entry[NameObject("/K")] = kids[0] if len(kids) == 1 else ArrayObject(kids)
        if element.alt:
            entry[NameObject("/Alt")] = TextStringObject(element.alt)
        if element.scope:
            entry[NameObject("/A")] = _dictionary(O="/Table", Scope=f"/{element.scope}")
        if element.bbox:
            box = ArrayObject(FloatObject(round(v, 2)) for v in element.bbox)
            entry[NameObject("/A")] = _dictionary(O="/Layout", BBox=box)
        return ref

    def _mcr(self, page: int, mcid: int) -> Any:
        """Marked content on a later page than the element's own."""
        return _dictionary(Type="/MCR", Pg=self.pages[page], MCID=NumberObject(mcid))


def _dictionary(**entries: Any) -> Any:
    """A pypdf dictionary; a value "/Name" is a name."""
    return DictionaryObject(
        {
            NameObject(f"/{k}"): NameObject(v) if isinstance(v, str) else v
            for k, v in entries.items()
        }
    )


def _catalog(writer: Any, tree_ref: Any, title: str) -> None:
    root = writer._root_object
    root[NameObject("/StructTreeRoot")] = tree_ref
    root[NameObject("/MarkInfo")] = DictionaryObject({NameObject("/Marked"): BooleanObject(True)})
    root[NameObject("/Lang")] = TextStringObject(LANGUAGE)
    root[NameObject("/ViewerPreferences")] = DictionaryObject(
        {NameObject("/DisplayDocTitle"): BooleanObject(True)}
    )
    metadata = StreamObject()
    metadata.set_data(xmp(title))
    metadata[NameObject("/Type")] = NameObject("/Metadata")
    metadata[NameObject("/Subtype")] = NameObject("/XML")
    root[NameObject("/Metadata")] = writer._add_object(metadata)
    writer.add_metadata({"/Title": title})
