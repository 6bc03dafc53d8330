"""Fillable Word forms: a definition compiled once to WordprocessingML, filled per case.

Answers are content controls (dropdowns for scales, rich text for evidence and comments,
date pickers for dates), each inside a bookmark named after its stable key, because
LibreOffice keeps bookmarks but drops `w:tag`. Pre-filled facts are locked controls, and so is
every piece of printed text (questions, guidance, grade descriptors): hidden content-locked
controls stop accidental edits in Word while every answer stays fillable, and LibreOffice,
which ignores the lock, keeps the text. Council, protective marking and identity are slots.

The form is an accessible document: its title and language (en-GB) set, real heading styles
whose levels never skip (a subheading before the first section heading, such as the grading
key or the auditing guidance, stands on its own as a Heading 1), and every table's column
headings a header row repeated on each page.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from xml.sax.saxutils import quoteattr

from formtool import clock
from formtool.definitions import Field, FormDefinition
from formtool.definitions.forms import case_heading
from formtool.definitions.identity import PROPERTY_NAMES, bookmark_name
from formtool.definitions.layout import GRID, Block, Cell, Row, layout
from formtool.definitions.namespaces import MC_NS, R_NS, W15_NS, W_NS
from formtool.definitions.scales import DATE_DISPLAY, KINDS, FieldKind
from formtool.generate.package import CompiledPackage, CompiledPart, slot, xml_text

TEXT_WIDTH = 9638  # A4 less 2 cm margins, in twentieths of a point
COL = TEXT_WIDTH // GRID
HEADING_FILL = "1F3864"
LABEL_FILL = "F2F2F2"
STAGE_FILL = "DCE3F0"


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


def _locked(content: str, ids: _Counter) -> str:
    """Printed text inside a hidden, content-locked control: Word will not let it be edited
    by accident; LibreOffice ignores the lock and keeps the text."""
    return (
        f'<w:sdt><w:sdtPr><w:id w:val="{ids.next()}"/><w:lock w:val="sdtContentLocked"/>'
        f'<w15:appearance w15:val="hidden"/></w:sdtPr><w:sdtContent>{content}'
        "</w:sdtContent></w:sdt>"
    )


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


def _text_para(text: str, style: str, ids: _Counter, keep_next: bool = False) -> str:
    return _para(_locked(_run(text), ids), style, keep_next)


def _control_type(field: Field) -> str:
    """The sdtPr element of a field's control, from the kind table in scales.py."""
    control = KINDS[field.kind].word_control
    if field.kind is FieldKind.choice:
        assert field.scale is not None
        items = "".join(
            f"<w:listItem w:displayText={_attr(c)} w:value={_attr(c)}/>"
            for c in field.scale.choices
        )
        return f"<w:{control}>{items}</w:{control}>"
    if field.kind is FieldKind.date:
        return (
            f'<w:{control}><w:dateFormat w:val="{DATE_DISPLAY}"/><w:lid w:val="en-GB"/>'
            '<w:storeMappedDataAs w:val="dateTime"/><w:calendar w:val="gregorian"/>'
            f"</w:{control}>"
        )
    return ""  # rich text: LibreOffice 7.4 loses line breaks in plain-text (w:text) controls


def placeholder(field: Field) -> str:
    """A short prompt that says what to write: the field's hint, else its kind's default."""
    return field.hint or KINDS[field.kind].placeholder


def _control(
    key: str,
    alias: str,
    type_xml: str,
    content: str,
    ids: _Counter,
    locked: bool = False,
    showing_placeholder: bool = False,
) -> str:
    """An inline content control wrapped in a bookmark named after its key."""
    n = ids.next()
    lock = '<w:lock w:val="sdtContentLocked"/>' if locked else ""
    plc = "<w:showingPlcHdr/>" if showing_placeholder else ""
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


def _answer(field: Field, ids: _Counter, style: str) -> str:
    run = (
        f'<w:r><w:rPr><w:rStyle w:val="PlaceholderText"/></w:rPr>'
        f"<w:t>{xml_text(placeholder(field))}</w:t></w:r>"
    )
    return _para(
        _control(field.key, field.label, _control_type(field), run, ids, showing_placeholder=True),
        style,
    )


HEADING_SLOT = "heading_"


def heading_slot(template: str) -> str:
    """The slot a header group heading becomes. Its template travels in the slot's name, so
    `CaseValues` fills it from the case's facts alone ("Details of Child: {given_names} ...")."""
    return HEADING_SLOT + template.encode("utf-8").hex()


class CaseValues(dict[str, str]):
    """One case's slot values; a group heading's slot is filled when the template asks for it,
    from the case's facts and today's date (an age in years), escaped for XML."""

    def __init__(self, values: Mapping[str, str], facts: Mapping[str, str]) -> None:
        super().__init__(values)
        self.facts = facts

    def __missing__(self, name: str) -> str:
        if not name.startswith(HEADING_SLOT):
            raise KeyError(name)
        template = bytes.fromhex(name.removeprefix(HEADING_SLOT)).decode("utf-8")
        return xml_text(case_heading(template, self.facts, clock.today()))


def _cell_body(cell: Cell, ids: _Counter, small: bool, keep: bool = False) -> str:
    if cell.kind == "heading":  # a header row is kept with the row under it
        return _text_para(cell.text, "SmallHeading" if small else "TableHeading", ids, keep)
    if cell.kind == "group":
        return _text_para(slot(heading_slot(cell.text)), "GroupHeading", ids, True)
    if cell.kind == "stage":  # let "Screening/Referral" break after its slash
        return (
            _text_para(cell.text.replace("/", "/\u200b"), "Stage", ids) if cell.down else _para("")
        )
    if cell.kind == "label":
        return _text_para(cell.text, "CellLabel", ids) + "".join(
            _text_para(line, "CellGuidance", ids) for line in cell.guidance
        )
    if cell.kind == "fact":
        key = f"header.{cell.fact}"
        run = f'<w:r><w:t xml:space="preserve">{slot("fact_" + cell.fact)}</w:t></w:r>'
        return _para(_control(key, key, "<w:text/>", run, ids, locked=True), "Answer")
    if cell.fields:
        return "".join(_answer(f, ids, "SmallAnswer" if small else "Answer") for f in cell.fields)
    return _para("")


def _cell(cell: Cell, width: int, ids: _Counter, small: bool, keep: bool = False) -> str:
    props = f'<w:tcW w:w="{width}" w:type="dxa"/>'
    if cell.span > 1:
        props += f'<w:gridSpan w:val="{cell.span}"/>'
    if cell.kind == "stage":
        props += '<w:vMerge w:val="restart"/>' if cell.down else "<w:vMerge/>"
    fill = {
        "heading": HEADING_FILL,
        "group": HEADING_FILL,
        "label": LABEL_FILL,
        "stage": STAGE_FILL,
    }.get(cell.kind)
    if fill:
        props += f'<w:shd w:val="clear" w:color="auto" w:fill="{fill}"/>'
    return f"<w:tc><w:tcPr>{props}</w:tcPr>{_cell_body(cell, ids, small, keep)}</w:tc>"


def _row(row: Row, grid: list[int], ids: _Counter, small: bool) -> str:
    # a row with guidance paragraphs may be long: let it break across pages, not leave a gap
    split = "" if any(c.guidance for c in row.cells) else "<w:cantSplit/>"
    trpr = f"<w:trPr>{split}" + ("<w:tblHeader/>" if row.header else "") + "</w:trPr>"
    cells, column = [], 0
    for cell in row.cells:
        width = sum(grid[column : column + cell.span])
        cells.append(_cell(cell, width, ids, small, row.header))
        column += cell.span
    return "<w:tr>" + trpr + "".join(cells) + "</w:tr>"


def _rows(block: Block, grid: list[int], ids: _Counter) -> str:
    """Table rows; an action table's body rows sit in a Word repeating section, so auditors
    can add rows with the + button. LibreOffice drops the wrapper and keeps the rows."""
    small = block.wide
    if not block.repeating:
        return "".join(_row(r, grid, ids, small) for r in block.rows)
    head = "".join(_row(r, grid, ids, small) for r in block.rows if r.header)
    items = "".join(
        f'<w:sdt><w:sdtPr><w:id w:val="{ids.next()}"/><w15:repeatingSectionItem/></w:sdtPr>'
        f"<w:sdtContent>{_row(r, grid, ids, small)}</w:sdtContent></w:sdt>"
        for r in block.rows
        if not r.header
    )
    return (
        f'{head}<w:sdt><w:sdtPr><w:alias w:val="Add or remove action rows"/>'
        f'<w:tag w:val="{block.name}"/><w:id w:val="{ids.next()}"/>'
        f"<w15:repeatingSection/></w:sdtPr><w:sdtContent>{items}</w:sdtContent></w:sdt>"
    )


def _grid(block: Block) -> list[int]:
    """Column widths: the 8-column grid, or for a wide action table widths weighted to each
    column's heading and kind, so it fits a portrait page without breaking words."""
    if not block.wide:
        if any(c.kind == "stage" for r in block.rows for c in r.cells):
            # the stage column (one grid column) takes width from the evidence and judgement
            # columns (empty when printed), so "Implementation" fits unbroken
            return [COL * 3 // 2, *[COL] * 3, *[COL * 7 // 8] * (GRID - 4)]
        return [COL] * GRID
    first = next(r for r in block.rows if not r.header)
    heads = next(r for r in block.rows if r.header)
    weights = []
    for head, cell in zip(heads.cells, first.cells, strict=True):
        longest = max((len(w) for w in head.text.split()), default=4)
        if cell.field is not None and cell.field.kind is FieldKind.date:
            weights.append(max(longest, 12))  # "31/12/2026" and "Required" fit unbroken
        else:
            weights.append(max(longest, 10) + 3)
    widths = [TEXT_WIDTH * w // sum(weights) for w in weights]
    spans = [c.span for c in heads.cells]
    grid: list[int] = []
    for width, span in zip(widths, spans, strict=True):  # one grid column per cell span
        grid += [width // span] * span
    return grid


def _table(block: Block, ids: _Counter) -> str:
    grid = _grid(block)
    columns = "".join(f'<w:gridCol w:w="{w}"/>' for w in grid)
    return (
        '<w:tbl><w:tblPr><w:tblStyle w:val="FormTable"/>'
        f'<w:tblW w:w="{sum(grid)}" w:type="dxa"/><w:tblLayout w:type="fixed"/>'
        '<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" '
        'w:lastColumn="0" w:noHBand="0" w:noVBand="1"/></w:tblPr>'
        f"<w:tblGrid>{columns}</w:tblGrid>"
        + _rows(block, grid, ids)
        + "</w:tbl>"
        + _para("", "Spacer")
    )


def _block(block: Block, ids: _Counter, subheading: str = "Heading2") -> str:
    if block.kind == "title":
        return _text_para(block.text, "Title", ids)
    if block.kind == "identity":
        return _para(_run(slot("identity")), "Identity")
    if block.kind == "heading":
        return _text_para(block.text, "Heading1", ids, keep_next=True)
    if block.kind == "subheading":
        return _text_para(block.text, subheading, ids, keep_next=True)
    if block.kind == "guidance":
        return "".join(
            _text_para("•\t" + line, "Guidance", ids, keep_next=True) for line in block.lines
        )
    return _table(block, ids)


def _document(form: FormDefinition) -> str:
    ids = _Counter()
    pieces, headed = [], False
    for block in layout(form).blocks:
        headed = headed or block.kind == "heading"
        pieces.append(_block(block, ids, "Heading2" if headed else "Heading1"))
    body = "".join(pieces)
    sect = (
        '<w:sectPr><w:headerReference w:type="default" r:id="rIdHeader"/>'
        '<w:footerReference w:type="default" r:id="rIdFooter"/>'
        '<w:pgSz w:w="11906" w:h="16838"/>'
        '<w:pgMar w:top="1134" w:right="1134" w:bottom="1134" w:left="1134" '
        'w:header="567" w:footer="567" w:gutter="0"/></w:sectPr>'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}" xmlns:w15="{W15_NS}" '
        f'xmlns:mc="{MC_NS}" mc:Ignorable="w15"><w:body>{body}{sect}</w:body>'
        "</w:document>"
    )


def _header_footer(tag: str, content: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:{tag} xmlns:w="{W_NS}" xmlns:r="{R_NS}">{content}</w:{tag}>'
    )


def _header(form: FormDefinition) -> str:
    return _header_footer(
        "hdr",
        _para(_run(slot("marking")), "Marking")
        + _para(_run(f"{slot('council')} · {form.title}"), "Header"),
    )


def _footer() -> str:
    page = (
        '<w:fldSimple w:instr=" PAGE "><w:r><w:t>1</w:t></w:r></w:fldSimple>'
        '<w:r><w:t xml:space="preserve"> of </w:t></w:r>'
        '<w:fldSimple w:instr=" NUMPAGES "><w:r><w:t>1</w:t></w:r></w:fldSimple>'
    )
    return _header_footer(
        "ftr",
        _para(_run(slot("identity") + " · Page ") + page, "Footer")
        + _para(_run(slot("marking")), "Marking"),
    )


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
        CompiledPart.of("word/header1.xml", _header(form)),
        CompiledPart.of("word/footer1.xml", _footer()),
    ]
    return CompiledPackage(tuple(parts))


def docx_values(
    facts: Mapping[str, str], identity: Mapping[str, str], print_lines: Mapping[str, str]
) -> dict[str, str]:
    """Slot values for one case, escaped for WordprocessingML text."""
    values = {
        "fact_" + k: xml_text(v).replace("\n", '</w:t><w:br/><w:t xml:space="preserve">')
        for k, v in facts.items()
    }
    values.update({"prop_" + k: xml_text(str(v)) for k, v in identity.items()})
    values["audit_id"] = xml_text(str(identity["audit_id"]))
    values["identity"] = xml_text(identity["visible"])
    values.update({k: xml_text(v) for k, v in print_lines.items()})
    return CaseValues(values, facts)
