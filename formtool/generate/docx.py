"""Fillable Word forms: a definition compiled once to WordprocessingML, filled per case.

Answers are content controls (dropdowns for scales, multi-line plain text for evidence and
comments, date pickers for dates), each inside a bookmark named after its stable key,
because LibreOffice keeps bookmarks but drops `w:tag`. Pre-filled facts are locked controls.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from xml.sax.saxutils import quoteattr

from formtool.definitions import Field, FormDefinition
from formtool.generate.package import CompiledPackage, CompiledPart, slot, xml_text
from formtool.identity import PROPERTY_NAMES, bookmark_name
from formtool.layout import GRID, Block, Cell, Row, layout
from formtool.scales import DATE_DISPLAY, FieldKind

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
W15_NS = "http://schemas.microsoft.com/office/word/2012/wordml"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
TEXT_WIDTH = 9638  # A4 less 2 cm margins, in twentieths of a point
COL = TEXT_WIDTH // GRID
CHOOSE_PLACEHOLDER = "Choose an item."
TEXT_PLACEHOLDER = "Click or tap here to enter text."
DATE_PLACEHOLDER = "Click or tap to enter a date."
PLACEHOLDERS = frozenset({CHOOSE_PLACEHOLDER, TEXT_PLACEHOLDER, DATE_PLACEHOLDER})

HEADING_FILL = "1F3864"
LABEL_FILL = "F2F2F2"
BLANK_FILL = "D9D9D9"


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _attr(value: str) -> str:
    return quoteattr(value)


def _run(text: str, props: str = "") -> str:
    rpr = f"<w:rPr>{props}</w:rPr>" if props else ""
    lines = xml_text(text).split("\n")
    body = "<w:br/>".join(f'<w:t xml:space="preserve">{line}</w:t>' for line in lines)
    return f"<w:r>{rpr}{body}</w:r>"


def _para(content: str, style: str = "", keep_next: bool = False) -> str:
    ppr = ""
    if style or keep_next:
        ppr = (
            "<w:pPr>"
            + (f'<w:pStyle w:val="{style}"/>' if style else "")
            + ("<w:keepNext/>" if keep_next else "")
            + "</w:pPr>"
        )
    return f"<w:p>{ppr}{content}</w:p>"


def _control_type(field: Field) -> tuple[str, str]:
    """The sdtPr type element and placeholder text for a field."""
    if field.kind is FieldKind.choice:
        assert field.scale is not None
        items = "".join(
            f"<w:listItem w:displayText={_attr(c)} w:value={_attr(c)}/>"
            for c in field.scale.choices
        )
        return f"<w:dropDownList>{items}</w:dropDownList>", CHOOSE_PLACEHOLDER
    if field.kind is FieldKind.date:
        return (
            f'<w:date><w:dateFormat w:val="{DATE_DISPLAY}"/><w:lid w:val="en-GB"/>'
            '<w:storeMappedDataAs w:val="dateTime"/><w:calendar w:val="gregorian"/></w:date>',
            DATE_PLACEHOLDER,
        )
    return "", TEXT_PLACEHOLDER  # rich text: LibreOffice 7.4 loses line breaks in w:text


def _control(
    key: str,
    alias: str,
    type_xml: str,
    content: str,
    ids: _Counter,
    locked: bool = False,
    placeholder: bool = False,
) -> str:
    """An inline content control wrapped in a bookmark named after its key."""
    n = ids.next()
    lock = '<w:lock w:val="sdtContentLocked"/>' if locked else ""
    plc = "<w:showingPlcHdr/>" if placeholder else ""
    alias = alias if len(alias) <= 60 else alias[:57] + "..."
    sdt = (
        f"<w:sdt><w:sdtPr><w:alias w:val={_attr(alias)}/><w:tag w:val={_attr(key)}/>"
        f'<w:id w:val="{n}"/>{lock}{plc}{type_xml}</w:sdtPr>'
        f"<w:sdtContent>{content}</w:sdtContent></w:sdt>"
    )
    return (
        f'<w:bookmarkStart w:id="{n}" w:name="{bookmark_name(key)}"/>{sdt}'
        f'<w:bookmarkEnd w:id="{n}"/>'
    )


def _cell(cell: Cell, ids: _Counter, header: bool) -> str:
    props = f'<w:tcW w:w="{COL * cell.span}" w:type="dxa"/>'
    if cell.span > 1:
        props += f'<w:gridSpan w:val="{cell.span}"/>'
    fill = HEADING_FILL if header else {"label": LABEL_FILL, "blank": BLANK_FILL}.get(cell.kind)
    if fill:
        props += f'<w:shd w:val="clear" w:color="auto" w:fill="{fill}"/>'
    if cell.kind == "heading":
        body = _para(_run(cell.text), "TableHeading")
    elif cell.kind == "label":
        body = _para(_run(cell.text), "CellLabel") + "".join(
            _para(_run(line), "CellGuidance") for line in cell.guidance
        )
    elif cell.kind == "fact":
        key = f"header.{cell.fact}"
        run = f'<w:r><w:t xml:space="preserve">{slot("fact_" + cell.fact)}</w:t></w:r>'
        body = _para(_control(key, key, "<w:text/>", run, ids, locked=True), "Answer")
    elif cell.kind == "answer" and cell.field is not None:
        type_xml, placeholder = _control_type(cell.field)
        run = (
            f'<w:r><w:rPr><w:rStyle w:val="PlaceholderText"/></w:rPr><w:t>{placeholder}</w:t></w:r>'
        )
        body = _para(
            _control(cell.field.key, cell.field.label, type_xml, run, ids, placeholder=True),
            "Answer",
        )
    else:
        body = _para("")
    return f"<w:tc><w:tcPr>{props}</w:tcPr>{body}</w:tc>"


def _row(row: Row, ids: _Counter) -> str:
    trpr = "<w:trPr><w:cantSplit/>" + ("<w:tblHeader/>" if row.header else "") + "</w:trPr>"
    return "<w:tr>" + trpr + "".join(_cell(c, ids, row.header) for c in row.cells) + "</w:tr>"


def _rows(block: Block, ids: _Counter) -> str:
    """Table rows; an action table's body rows sit in a Word repeating section, so auditors
    can add rows with the + button. LibreOffice drops the wrapper and keeps the rows."""
    if not block.repeating:
        return "".join(_row(r, ids) for r in block.rows)
    head = "".join(_row(r, ids) for r in block.rows if r.header)
    items = "".join(
        f'<w:sdt><w:sdtPr><w:id w:val="{ids.next()}"/><w15:repeatingSectionItem/></w:sdtPr>'
        f"<w:sdtContent>{_row(r, ids)}</w:sdtContent></w:sdt>"
        for r in block.rows if not r.header)
    return (f'{head}<w:sdt><w:sdtPr><w:alias w:val="Add or remove action rows"/>'
            f'<w:tag w:val="{block.name}"/><w:id w:val="{ids.next()}"/>'
            f"<w15:repeatingSection/></w:sdtPr><w:sdtContent>{items}</w:sdtContent></w:sdt>")


def _table(block: Block, ids: _Counter) -> str:
    grid = "".join(f'<w:gridCol w:w="{COL}"/>' for _ in range(GRID))
    return (
        '<w:tbl><w:tblPr><w:tblStyle w:val="FormTable"/>'
        f'<w:tblW w:w="{COL * GRID}" w:type="dxa"/><w:tblLayout w:type="fixed"/>'
        '<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" '
        'w:lastColumn="0" w:noHBand="0" w:noVBand="1"/></w:tblPr>'
        f"<w:tblGrid>{grid}</w:tblGrid>"
        + _rows(block, ids)
        + "</w:tbl>"
        + _para("", "Spacer")
    )


def _block(block: Block, ids: _Counter) -> str:
    if block.kind == "title":
        return _para(_run(block.text), "Title")
    if block.kind == "identity":
        return _para(_run(slot("identity")), "Identity")
    if block.kind == "heading":
        return _para(_run(block.text), "Heading1", keep_next=True)
    if block.kind == "subheading":
        return _para(_run(block.text), "Heading2", keep_next=True)
    if block.kind == "guidance":
        return "".join(
            _para(_run("•\t" + line), "Guidance", keep_next=True) for line in block.lines
        )
    return _table(block, ids)


def _document(form: FormDefinition) -> str:
    ids = _Counter()
    body = "".join(_block(b, ids) for b in layout(form).blocks)
    sect = (
        '<w:sectPr><w:headerReference w:type="default" r:id="rIdHeader"/>'
        '<w:footerReference w:type="default" r:id="rIdFooter"/>'
        '<w:pgSz w:w="11906" w:h="16838"/>'
        '<w:pgMar w:top="1134" w:right="1134" w:bottom="1134" w:left="1134" '
        'w:header="567" w:footer="567" w:gutter="0"/></w:sectPr>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}" xmlns:w15="{W15_NS}" '
        f'xmlns:mc="{MC_NS}" mc:Ignorable="w15"><w:body>{body}{sect}</w:body>'
        "</w:document>"
    )


def _header_footer(tag: str, content: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:{tag} xmlns:w="{W_NS}" xmlns:r="{R_NS}">{content}</w:{tag}>'
    )


def _footer() -> str:
    page = (
        '<w:fldSimple w:instr=" PAGE "><w:r><w:t>1</w:t></w:r></w:fldSimple>'
        '<w:r><w:t xml:space="preserve"> of </w:t></w:r>'
        '<w:fldSimple w:instr=" NUMPAGES "><w:r><w:t>1</w:t></w:r></w:fldSimple>'
    )
    return _header_footer("ftr", _para(_run(slot("identity") + " · Page ") + page, "Footer"))


def _custom_properties() -> str:
    props = "".join(
        f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{pid}" '
        f'name="{name}"><vt:lpwstr>{slot("prop_" + key)}</vt:lpwstr></property>'
        for pid, (key, name) in enumerate(PROPERTY_NAMES.items(), start=2)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/'
        f'2006/docPropsVTypes">{props}</Properties>'
    )


def _core(form: FormDefinition) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{xml_text(form.title)} {slot('audit_id')}</dc:title>"
        f"<dc:subject>{xml_text(form.id)} v{form.version}</dc:subject>"
        "<dc:creator>formtool</dc:creator></cp:coreProperties>"
    )


@cache
def compile_docx(form: FormDefinition) -> CompiledPackage:
    """The form as a Word package with slots for the case's facts and identity."""
    from formtool.generate import word_parts  # static parts kept apart: they are long XML

    parts = [
        CompiledPart.of("[Content_Types].xml", word_parts.CONTENT_TYPES),
        CompiledPart.of("_rels/.rels", word_parts.ROOT_RELS),
        CompiledPart.of("docProps/core.xml", _core(form)),
        CompiledPart.of("docProps/app.xml", word_parts.APP),
        CompiledPart.of("docProps/custom.xml", _custom_properties()),
        CompiledPart.of("word/_rels/document.xml.rels", word_parts.DOCUMENT_RELS),
        CompiledPart.of("word/document.xml", _document(form)),
        CompiledPart.of("word/styles.xml", word_parts.STYLES),
        CompiledPart.of("word/settings.xml", word_parts.SETTINGS),
        CompiledPart.of(
            "word/header1.xml", _header_footer("hdr", _para(_run(form.title), "Header"))
        ),
        CompiledPart.of("word/footer1.xml", _footer()),
    ]
    return CompiledPackage(tuple(parts))


def docx_values(facts: Mapping[str, str], identity: Mapping[str, str]) -> dict[str, str]:
    """Slot values for one case, escaped for WordprocessingML text."""
    values = {
        "fact_" + k: xml_text(v).replace("\n", '</w:t><w:br/><w:t xml:space="preserve">')
        for k, v in facts.items()
    }
    values.update({"prop_" + k: xml_text(str(v)) for k, v in identity.items()})
    values["audit_id"] = xml_text(str(identity["audit_id"]))
    values["identity"] = xml_text(identity["visible"])
    return values
