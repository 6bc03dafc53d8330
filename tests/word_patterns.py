"""What Word really writes, applied to a filled formtool return: one builder per pattern, for
the reader's tests (tests/test_read_word.py), a LibreOffice oracle and a fuzzer.

Each builder takes a filled formtool .docx (demo.fill.fill_docx), its form and one answer's
key, rewrites word/document.xml as Word writes that pattern (checked against public
Word-saved files, and each opened by LibreOffice), and returns a `Built`: the file, what
formtool must read for the key (what Word shows: placeholder text counts as empty, a date
picker stands for the date Word understood), what LibreOffice shows where that differs (see
KNOWN_LIBREOFFICE_DIFFERENCES), the warnings the read must leave, or the code it must be
refused with. `PATTERNS` lists them with the answers each applies to.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from hostile_files import member, with_member
from lxml import etree

from formtool.definitions import Field, FormDefinition
from formtool.definitions.identity import bookmark_name
from formtool.definitions.layout import layout
from formtool.definitions.scales import KINDS, FieldKind

DOCUMENT = "word/document.xml"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W = f"{{{W_NS}}}"
NAMESPACES = {
    "w": W_NS,
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "wps": "http://schemas.microsoft.com/office/word/2010/wordprocessingShape",
    "w14": "http://schemas.microsoft.com/office/word/2010/wordml",
    "v": "urn:schemas-microsoft-com:vml",
    "o": "urn:schemas-microsoft-com:office:office",
}
REVISION = 'w:author="Auditor" w:date="2026-11-20T10:00:00Z"'
TYPED = "Typed beside the box."

#: Where LibreOffice 7.4 shows something other than Word, and so other than what formtool
#: reads: an oracle comparing formtool with LibreOffice's text export applies these.
KNOWN_LIBREOFFICE_DIFFERENCES = {
    "placeholder": (
        "LibreOffice shows a control's placeholder text (w:showingPlcHdr); Word shows it "
        "greyed out as a prompt, and formtool reads the control as empty"
    ),
    "full-date": (
        "LibreOffice shows a date picker's text and ignores w:fullDate; formtool reads the "
        "date Word understood from that text"
    ),
    "tracked-changes": (
        "LibreOffice's text export shows deleted and moved-away text as well (it keeps "
        "changes unaccepted); formtool reads the text as if every change were accepted"
    ),
    "text-box": (
        "LibreOffice's text export leaves out what text boxes hold; Word shows it, in the "
        "cell the box is anchored in"
    ),
    "symbols": (
        "LibreOffice's text export gives a symbol as the font's own code (w:sym Wingdings F0FC "
        "as U+F0FC, ü typed in Wingdings as ü) and keeps an optional hyphen as U+00AD; Word "
        "shows, and formtool reads, the character the font draws (✓) and no hyphen"
    ),
}


@dataclass(frozen=True)
class Built:
    """A return rewritten to one pattern, and what reading it must give for the key."""

    data: bytes
    expected: str  # the raw value formtool reads for the key (before validation)
    libreoffice: str | None = None  # what LibreOffice shows for it, where that differs
    difference: str = ""  # the KNOWN_LIBREOFFICE_DIFFERENCES entry that explains it
    notes: tuple[str, ...] = ()  # warning codes the read leaves
    refused: str = ""  # the code the file is refused with, if it must be


Builder = Callable[[bytes, FormDefinition, str], Built]


@dataclass(frozen=True)
class Pattern:
    build: Builder
    applies: Callable[[FormDefinition, str], bool]


# ---- reading and writing the document --------------------------------------------------


def xml(fragment: str) -> etree._Element:
    """One element from WordprocessingML text using the usual prefixes."""
    declared = " ".join(f'xmlns:{p}="{uri}"' for p, uri in NAMESPACES.items())
    return etree.fromstring(f"<root {declared}>{fragment}</root>")[0]


def run(text: str, tag: str = "t") -> str:
    return f'<w:r><w:{tag} xml:space="preserve">{escape(text)}</w:{tag}></w:r>'


def _rewrite(data: bytes, change: Callable[[etree._Element], None]) -> bytes:
    """The package with its document changed; every prefix declared on the root, as Word
    does (an mc:Choice names the prefixes it requires, which must be in scope)."""
    root = etree.fromstring(member(data, DOCUMENT))
    change(root)
    etree.cleanup_namespaces(root, top_nsmap=NAMESPACES, keep_ns_prefixes=list(NAMESPACES))
    text = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    return with_member(data, DOCUMENT, text)


def box(root: etree._Element, key: str) -> tuple[etree._Element, etree._Element]:
    """A key's bookmark start and the content control after it, as formtool writes them."""
    name = bookmark_name(key)
    mark = next(m for m in root.iter(W + "bookmarkStart") if m.get(W + "name") == name)
    control = mark.getnext()
    assert control is not None and control.tag == W + "sdt", key
    return mark, control


def shown(control: etree._Element) -> str:
    """A filled control's text as formtool's filler writes it (runs, line breaks)."""
    content = control.find(W + "sdtContent")
    assert content is not None
    pieces = [
        (el.text or "") if el.tag == W + "t" else "\n" for el in content.iter(W + "t", W + "br")
    ]
    return "".join(pieces)


def set_content(control: etree._Element, *runs: str) -> None:
    """Replace a control's content by these runs (WordprocessingML text)."""
    content = control.find(W + "sdtContent")
    assert content is not None
    for child in list(content):
        content.remove(child)
    for fragment in runs:
        content.append(xml(fragment))


def empty(control: etree._Element, field: Field | None, text: str = "") -> str:
    """Put a control back to showing its placeholder, as Word does when it is cleared;
    `text` is the prompt (else formtool's own)."""
    props = control.find(W + "sdtPr")
    assert props is not None
    if props.find(W + "showingPlcHdr") is None:
        props.insert(0, etree.Element(W + "showingPlcHdr"))
    kind = field.kind if field is not None else FieldKind.text
    words = text or (field.hint if field is not None else "") or KINDS[kind].placeholder
    style = '<w:rPr><w:rStyle w:val="PlaceholderText"/></w:rPr>'
    set_content(control, f"<w:r>{style}<w:t>{escape(words)}</w:t></w:r>")
    return words


def paragraph_of(el: etree._Element) -> etree._Element:
    return next(el.iterancestors(W + "p"))


def after_box(mark: etree._Element) -> etree._Element:
    """The bookmark end that closes a key's bookmark."""
    ident = mark.get(W + "id")
    return next(e for e in mark.itersiblings(W + "bookmarkEnd") if e.get(W + "id") == ident)


def typed_answer(field: Field | None) -> str:
    """What an auditor types for a field outside its box: a choice in lower case, a date, or
    a sentence."""
    if field is not None and field.kind is FieldKind.choice and field.scale is not None:
        return field.scale.choices[0].lower()
    if field is not None and field.kind is FieldKind.date:
        return "20/11/2026"
    return TYPED


def _field(form: FormDefinition, key: str) -> Field | None:
    return form.field_or_none(key)


def _kind_of(form: FormDefinition, key: str) -> FieldKind | None:
    found = _field(form, key)
    return found.kind if found is not None else None


def _is_text(form: FormDefinition, key: str) -> bool:
    found = _field(form, key)
    return found is not None and found.kind is FieldKind.text


# ---- 2. typed outside the box -----------------------------------------------------------


def typed_beside(data: bytes, form: FormDefinition, key: str) -> Built:
    """Typed to the right of the box, in the same paragraph (after the bookmark's end). A
    choice or date box is left empty, showing its placeholder; text follows a filled box."""
    field = _field(form, key)
    typed = typed_answer(field)
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        if typed == TYPED:
            result["box"] = shown(control)
        else:
            result["placeholder"] = empty(control, field)
        after_box(mark).addnext(xml(run(" " + typed if typed == TYPED else typed)))

    data = _rewrite(data, change)
    if typed == TYPED:
        return Built(data, result["box"] + " " + TYPED, notes=("typed-outside",))
    return Built(
        data,
        typed,
        result["placeholder"] + typed,
        "placeholder",
        notes=("typed-outside",),
    )


def typed_below(data: bytes, form: FormDefinition, key: str) -> Built:
    """Typed in a new paragraph of the same cell, below the box's paragraph."""
    field = _field(form, key)
    typed = typed_answer(field)
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        if typed == TYPED:
            result["box"] = shown(control)
        else:
            result["placeholder"] = empty(control, field)
        paragraph_of(mark).addnext(xml(f"<w:p>{run(typed)}</w:p>"))

    data = _rewrite(data, change)
    if typed == TYPED:
        return Built(data, result["box"] + "\n" + TYPED, notes=("typed-outside",))
    return Built(
        data, typed, result["placeholder"] + "\n" + typed, "placeholder", notes=("typed-outside",)
    )


def box_deleted(data: bytes, form: FormDefinition, key: str) -> Built:
    """The box deleted (Word keeps its bookmark, collapsed: start then end) and the answer
    typed after it in the cell."""
    typed = typed_answer(_field(form, key))

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        control.getparent().remove(control)
        after_box(mark).addnext(xml(run(typed)))

    return Built(_rewrite(data, change), typed, notes=("typed-outside",))


# ---- 3. tracked changes ------------------------------------------------------------------


def tracked_changes(data: bytes, form: FormDefinition, key: str) -> Built:
    """Changes tracked, not accepted: an insertion, a deletion, a formatting change and a
    sentence moved to the front (w:moveFrom holds ordinary w:t); for a choice, the old choice
    deleted and a new one inserted."""
    field = _field(form, key)
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        _, control = box(root, key)
        if field is not None and field.scale is not None:
            old, new = field.scale.choices[0], field.scale.choices[1]
            set_content(
                control,
                f'<w:del w:id="901" {REVISION}>{run(old, "delText")}</w:del>',
                f'<w:ins w:id="902" {REVISION}>{run(new)}</w:ins>',
            )
            result["read"], result["lo"] = new, old + new
            return
        value = shown(control).replace("\n", " ")
        moved = "Moved sentence. "
        set_content(
            control,
            f'<w:ins w:id="903" {REVISION}>{run("Checked. ")}</w:ins>',
            f'<w:moveToRangeStart w:id="904" w:name="move1" {REVISION}/>',
            f'<w:moveTo w:id="905" {REVISION}>{run(moved)}</w:moveTo>',
            '<w:moveToRangeEnd w:id="904"/>',
            '<w:r><w:rPr><w:b/><w:rPrChange w:id="906" w:author="Auditor"><w:rPr/>'
            f'</w:rPrChange></w:rPr><w:t xml:space="preserve">{escape(value)}</w:t></w:r>',
            f'<w:del w:id="907" {REVISION}>{run(" Removed.", "delText")}</w:del>',
            f'<w:moveFromRangeStart w:id="908" w:name="move1" {REVISION}/>',
            f'<w:moveFrom w:id="909" {REVISION}>{run(" " + moved.strip())}</w:moveFrom>',
            '<w:moveFromRangeEnd w:id="908"/>',
        )
        result["read"] = f"Checked. {moved}{value}"
        result["lo"] = f"Checked. {moved}{value} Removed. {moved.strip()}"

    data = _rewrite(data, change)
    return Built(data, result["read"], result["lo"], "tracked-changes", notes=("tracked-changes",))


def deleted_paragraph_mark(data: bytes, form: FormDefinition, key: str) -> Built:
    """A note typed below the answer's paragraph, then the paragraph mark between them
    deleted with changes tracked: accepted, the note runs on after the answer."""
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        result["box"] = shown(control)
        paragraph = paragraph_of(mark)
        props = paragraph.find(W + "pPr")
        if props is None:
            props = etree.SubElement(paragraph, W + "pPr")
            paragraph.insert(0, props)
        props.append(xml(f'<w:rPr><w:del w:id="910" {REVISION}/></w:rPr>'))
        paragraph.addnext(xml(f"<w:p>{run(' Run on.')}</w:p>"))

    data = _rewrite(data, change)
    return Built(
        data,
        result["box"] + " Run on.",
        result["box"] + "\n Run on.",
        "tracked-changes",
        notes=("typed-outside", "tracked-changes"),
    )


def deleted_row(data: bytes, form: FormDefinition, key: str) -> Built:
    """An action row deleted with changes tracked (w:trPr/w:del, its text in w:delText):
    accepted, the row is gone and the rows below move up, so the key now holds what the row
    below held (and every later row's keys shift too)."""
    positions = layout(form).positions
    t, r, c, i = positions[key]
    below = next(k for k, place in positions.items() if place == (t, r + 1, c, i))
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        result["below"], result["row"] = shown(box(root, below)[1]), shown(control)
        row = next(mark.iterancestors(W + "tr"))
        props = row.find(W + "trPr")
        if props is None:
            props = etree.Element(W + "trPr")
            row.insert(0, props)
        props.append(xml(f'<w:del w:id="920" {REVISION}/>'))
        for text in list(row.iter(W + "t")):
            text.tag = W + "delText"
            owner = text.getparent()
            wrapper = xml(f'<w:del w:id="921" {REVISION}/>')
            owner.addprevious(wrapper)
            wrapper.append(owner)

    data = _rewrite(data, change)
    return Built(
        data, result["below"], result["row"], "tracked-changes", notes=("tracked-changes",)
    )


# ---- 4. alternate content ----------------------------------------------------------------


def _alternate(choice: str, fallback: str) -> str:
    return (
        "<mc:AlternateContent>"
        f'<mc:Choice Requires="w14">{choice}</mc:Choice>'
        f"<mc:Fallback>{fallback}</mc:Fallback>"
        "</mc:AlternateContent>"
    )


def alternate_runs(data: bytes, form: FormDefinition, key: str) -> Built:
    """The box's text inside mc:AlternateContent, the same runs in Choice and Fallback (as
    Word writes runs with Word 2010 text effects)."""
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        _, control = box(root, key)
        result["box"] = value = shown(control)
        runs = "<w:r><w:br/></w:r>".join(run(line) for line in value.split("\n"))
        set_content(control, _alternate(runs, runs))

    data = _rewrite(data, change)
    return Built(data, result["box"])


def text_box(paragraphs: str, ident: int) -> str:
    """A Word 2010+ text box: DrawingML (wps) in mc:Choice, VML in mc:Fallback, each with
    the same w:txbxContent."""
    size = 'cx="1440000" cy="360000"'
    choice = (
        '<w:drawing><wp:anchor distT="0" distB="0" distL="114300" distR="114300" '
        'simplePos="0" relativeHeight="251659264" behindDoc="0" locked="0" layoutInCell="1" '
        'allowOverlap="1"><wp:simplePos x="0" y="0"/>'
        '<wp:positionH relativeFrom="column"><wp:posOffset>0</wp:posOffset></wp:positionH>'
        '<wp:positionV relativeFrom="paragraph"><wp:posOffset>0</wp:posOffset></wp:positionV>'
        f'<wp:extent {size}/><wp:effectExtent l="0" t="0" r="0" b="0"/>'
        f'<wp:wrapSquare wrapText="bothSides"/><wp:docPr id="{ident}" name="Text Box {ident}"/>'
        "<wp:cNvGraphicFramePr/><a:graphic><a:graphicData "
        'uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">'
        '<wps:wsp><wps:cNvSpPr txBox="1"/><wps:spPr><a:xfrm><a:off x="0" y="0"/>'
        f'<a:ext {size}/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></wps:spPr>'
        f"<wps:txbx><w:txbxContent>{paragraphs}</w:txbxContent></wps:txbx>"
        '<wps:bodyPr rot="0" vert="horz" wrap="square" anchor="t"><a:noAutofit/></wps:bodyPr>'
        "</wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing>"
    )
    fallback = (
        f'<w:pict><v:shape id="Text Box {ident}" o:spid="_x0000_s{1025 + ident}" '
        'type="#_x0000_t202" style="position:absolute;margin-left:0;margin-top:0;'
        'width:113.4pt;height:28.35pt;z-index:251659264">'
        f"<v:textbox><w:txbxContent>{paragraphs}</w:txbxContent></v:textbox></v:shape></w:pict>"
    )
    return (
        f'<w:r><mc:AlternateContent><mc:Choice Requires="wps">{choice}</mc:Choice>'
        f"<mc:Fallback>{fallback}</mc:Fallback></mc:AlternateContent></w:r>"
    )


def box_in_text_box(data: bytes, form: FormDefinition, key: str) -> Built:
    """The answer's box (bookmark and control) moved into a text box in its cell: Word
    writes it twice, once in each branch."""
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        result["box"] = shown(control)
        paragraph = paragraph_of(mark)
        end = after_box(mark)
        inner = xml("<w:p/>")
        for el in (mark, control, end):
            inner.append(el)  # moved out of the cell's paragraph
        paragraph.append(xml(text_box(etree.tostring(inner, encoding="unicode"), 7)))

    data = _rewrite(data, change)
    return Built(data, result["box"], "", "text-box")


def text_box_beside(data: bytes, form: FormDefinition, key: str) -> Built:
    """A text box holding a note, anchored in the answer's paragraph after the box."""
    note = "Box note."
    result: dict[str, str] = {}

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        result["box"] = shown(control)
        after_box(mark).addnext(xml(text_box(f"<w:p>{run(note)}</w:p>", 8)))

    data = _rewrite(data, change)
    read = result["box"] + "\n" + note
    return Built(data, read, result["box"], "text-box", notes=("typed-outside",))


# ---- 6. nested tables ----------------------------------------------------------------------


def nested_table(data: bytes, form: FormDefinition, key: str) -> Built:
    """A 2 x 2 table inserted into an action-table cell below its box (a cell must end with
    a paragraph, so an empty one follows)."""
    result: dict[str, str] = {}
    cells = ("A1", "B1", "A2", "B2")
    rows = "".join(
        "<w:tr>" + "".join(f"<w:tc><w:p>{run(t)}</w:p></w:tc>" for t in pair) + "</w:tr>"
        for pair in (cells[:2], cells[2:])
    )
    table = (
        '<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid>'
        f'<w:gridCol w:w="1000"/><w:gridCol w:w="1000"/></w:tblGrid>{rows}</w:tbl>'
    )

    def change(root: etree._Element) -> None:
        mark, control = box(root, key)
        result["box"] = shown(control)
        paragraph = paragraph_of(mark)
        paragraph.addnext(xml(table))
        paragraph.getnext().addnext(xml("<w:p/>"))

    data = _rewrite(data, change)
    return Built(data, result["box"] + "\n" + "\n".join(cells), notes=("typed-outside",))


# ---- 7. two places for one answer --------------------------------------------------------


def _partner(form: FormDefinition, key: str) -> str:
    """Another answer of the same kind, in a later cell, outside action tables (a reader
    refusing the two names the first: `key`)."""
    positions = layout(form).positions
    return next(
        k
        for k, place in positions.items()
        if k != key
        and _answer(form, k)
        and place[:3] > positions[key][:3]
        and _kind_of(form, k) is _kind_of(form, key)
    )


def _distinct(field: Field | None, first: bool) -> str:
    if field is not None and field.scale is not None:
        return field.scale.choices[0 if first else 1]
    if field is not None and field.kind is FieldKind.date:
        return "01/12/2026" if first else "02/12/2026"
    return "First answer." if first else "Second answer."


def swapped_bookmarks(data: bytes, form: FormDefinition, key: str) -> Built:
    """The bookmark named for this answer wraps another question's box, and that one's
    bookmark wraps this box (tags unchanged): which answer is which cannot be told."""
    other = _partner(form, key)

    def change(root: etree._Element) -> None:
        mine, my_box = box(root, key)
        theirs, their_box = box(root, other)
        field = _field(form, key)
        set_content(my_box, run(_distinct(field, True)))
        set_content(their_box, run(_distinct(field, False)))
        name = mine.get(W + "name")
        mine.set(W + "name", theirs.get(W + "name", ""))
        theirs.set(W + "name", name or "")

    return Built(_rewrite(data, change), "", refused="ambiguous")


def _copied(data: bytes, key: str, text: str | None) -> bytes:
    """The answer's box copied (Word keeps its tag, not its bookmark) into a new paragraph at
    the end of the document, its text then changed to `text` (None: left as it was)."""

    def change(root: etree._Element) -> None:
        _, control = box(root, key)
        copy_ = copy.deepcopy(control)
        if text is not None:
            set_content(copy_, run(text))
        body = root.find(W + "body")
        assert body is not None
        paragraph = etree.Element(W + "p")
        paragraph.append(copy_)
        body.insert(len(body) - 1, paragraph)  # before the section properties

    return _rewrite(data, change)


def copied_box_changed(data: bytes, form: FormDefinition, key: str) -> Built:
    field = _field(form, key)
    value = shown(box(etree.fromstring(member(data, DOCUMENT)), key)[1])
    other = next(t for t in (_distinct(field, True), _distinct(field, False)) if t != value)
    return Built(_copied(data, key, other), "", refused="ambiguous")


def copied_box_same(data: bytes, form: FormDefinition, key: str) -> Built:
    value = shown(box(etree.fromstring(member(data, DOCUMENT)), key)[1])
    return Built(_copied(data, key, None), value)


# ---- 8. symbols and hyphens ----------------------------------------------------------------


def symbols(data: bytes, form: FormDefinition, key: str) -> Built:
    """Insert > Symbol (w:sym in Wingdings, Symbol), a non-breaking hyphen and an optional
    hyphen, as Word writes them."""

    def sym(font: str, char: str) -> str:
        return f'<w:r><w:sym w:font="{font}" w:char="{char}"/></w:r>'

    def change(root: etree._Element) -> None:
        _, control = box(root, key)
        set_content(
            control,
            run("Smith"),
            "<w:r><w:noBreakHyphen/></w:r>",
            run("Jones "),
            sym("Wingdings", "F0FC"),
            run(" "),
            sym("Wingdings", "F0FB"),
            run(" "),
            sym("Wingdings 2", "F052"),
            run(" "),
            sym("Symbol", "F0B7"),
            run(" docu"),
            "<w:r><w:softHyphen/></w:r>",
            run("ment"),
        )

    return Built(
        _rewrite(data, change),
        "Smith\u2011Jones ✓ ✗ ☑ • document",
        "Smith\u2011Jones \uf0fc \uf0fb \uf052 \uf0b7 docu\u00adment",
        "symbols",
    )


def symbol_font_text(data: bytes, form: FormDefinition, key: str) -> Built:
    """Symbols as text in runs set in a symbol font: how LibreOffice saves an inserted
    symbol (the private-use code) and how Word keeps text typed in Wingdings (ü is ✓)."""

    def in_font(font: str, text: str) -> str:
        props = f'<w:rPr><w:rFonts w:ascii="{font}" w:hAnsi="{font}" w:cs="{font}"/></w:rPr>'
        return f'<w:r>{props}<w:t xml:space="preserve">{text}</w:t></w:r>'

    def change(root: etree._Element) -> None:
        _, control = box(root, key)
        set_content(
            control,
            run("Seen "),
            in_font("Wingdings", "\uf0fc"),
            run(" "),
            in_font("Wingdings", "û"),
        )

    return Built(_rewrite(data, change), "Seen ✓ ✗", "Seen \uf0fc û", "symbols")


# ---- dates and placeholders --------------------------------------------------------------


def date_picker(text: str, understood: bool = False) -> Builder:
    """A date picked or typed in Word's date box: its text as Word shows it, w:fullDate the
    date Word understood (20/11/2026). formtool reads the text when it is a date it reads
    (`understood` False: validation makes it ISO), else the date Word understood."""
    iso = "2026-11-20"

    def build(data: bytes, form: FormDefinition, key: str) -> Built:
        def change(root: etree._Element) -> None:
            _, control = box(root, key)
            date = control.find(f"{W}sdtPr/{W}date")
            assert date is not None, key
            date.set(W + "fullDate", f"{iso}T00:00:00Z")
            set_content(control, run(text))

        if understood:
            return Built(_rewrite(data, change), iso, text, "full-date")
        return Built(_rewrite(data, change), text)

    return build


def placeholder_flag(text: str) -> Builder:
    """A box showing its placeholder (w:showingPlcHdr) with `text` as the prompt, as an
    older Word template or another tool writes it."""

    def build(data: bytes, form: FormDefinition, key: str) -> Built:
        def change(root: etree._Element) -> None:
            _, control = box(root, key)
            empty(control, _field(form, key), text)

        return Built(_rewrite(data, change), "", text, "placeholder")

    return build


# ---- the list --------------------------------------------------------------------------------


def _answer(form: FormDefinition, key: str) -> bool:
    positions = layout(form).positions
    action = {t for t, b in enumerate(layout(form).tables) if b.repeating}
    return key in positions and positions[key][0] not in action and _field(form, key) is not None


def _kind(kind: FieldKind) -> Callable[[FormDefinition, str], bool]:
    def applies(form: FormDefinition, key: str) -> bool:
        found = _field(form, key)
        return _answer(form, key) and found is not None and found.kind is kind

    return applies


def _action(form: FormDefinition, key: str) -> bool:
    positions = layout(form).positions
    action = {t for t, b in enumerate(layout(form).tables) if b.repeating}
    return key in positions and positions[key][0] in action


def _above_another(form: FormDefinition, key: str) -> bool:
    """An action-table cell with a printed row below it."""
    positions = layout(form).positions
    if not _action(form, key):
        return False
    t, r, c, i = positions[key]
    return (t, r + 1, c, i) in positions.values()


def _dates_anywhere(form: FormDefinition, key: str) -> bool:
    found = _field(form, key)
    return key in layout(form).positions and found is not None and found.kind is FieldKind.date


def _not_date(form: FormDefinition, key: str) -> bool:
    return _answer(form, key) and not _dates_anywhere(form, key)


PATTERNS: dict[str, Pattern] = {
    "typed-beside": Pattern(typed_beside, _answer),
    "typed-below": Pattern(typed_below, _answer),
    "box-deleted": Pattern(box_deleted, _answer),
    "tracked-changes": Pattern(tracked_changes, _not_date),
    "deleted-paragraph-mark": Pattern(deleted_paragraph_mark, _kind(FieldKind.text)),
    "deleted-row": Pattern(deleted_row, _above_another),
    "alternate-runs": Pattern(alternate_runs, lambda f, k: _answer(f, k) or _action(f, k)),
    "box-in-text-box": Pattern(box_in_text_box, _answer),
    "text-box-beside": Pattern(text_box_beside, _kind(FieldKind.text)),
    "nested-table": Pattern(nested_table, _action),
    "swapped-bookmarks": Pattern(swapped_bookmarks, _answer),
    "copied-box-changed": Pattern(copied_box_changed, _answer),
    "copied-box-same": Pattern(copied_box_same, _answer),
    "symbols": Pattern(symbols, _kind(FieldKind.text)),
    "symbol-font-text": Pattern(symbol_font_text, _kind(FieldKind.text)),
    "date-ordinal": Pattern(date_picker("20th November 2026"), _dates_anywhere),
    "date-us": Pattern(date_picker("Nov 20, 2026"), _dates_anywhere),
    "date-abbreviated": Pattern(date_picker("20-Nov-2026"), _dates_anywhere),
    "date-weekday": Pattern(date_picker("Friday, 20 November 2026"), _dates_anywhere),
    "date-dots": Pattern(date_picker("20.11.26"), _dates_anywhere),
    "date-month-year": Pattern(date_picker("November 26", True), _dates_anywhere),
    "date-with-time": Pattern(date_picker("20/11/2026 09:30", True), _dates_anywhere),
    "placeholder-text": Pattern(placeholder_flag("Click here to enter text."), _is_text),
    "placeholder-date": Pattern(placeholder_flag("Click here to enter a date."), _dates_anywhere),
    "placeholder-choice": Pattern(placeholder_flag("Choose an item."), _kind(FieldKind.choice)),
}
