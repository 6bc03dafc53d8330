"""The fixed parts of every generated Word package: content types, relationships, styles."""

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_OD = "application/vnd.openxmlformats-officedocument"

CONTENT_TYPES = _XML + (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/word/document.xml" ContentType="{_OD}.wordprocessingml.document.main+xml"/>'
    f'<Override PartName="/word/styles.xml" ContentType="{_OD}.wordprocessingml.styles+xml"/>'
    f'<Override PartName="/word/settings.xml" ContentType="{_OD}.wordprocessingml.settings+xml"/>'
    f'<Override PartName="/word/header1.xml" ContentType="{_OD}.wordprocessingml.header+xml"/>'
    f'<Override PartName="/word/footer1.xml" ContentType="{_OD}.wordprocessingml.footer+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    f'<Override PartName="/docProps/app.xml" ContentType="{_OD}.extended-properties+xml"/>'
    f'<Override PartName="/docProps/custom.xml" ContentType="{_OD}.custom-properties+xml"/>'
    "</Types>"
)

ROOT_RELS = _XML + (
    f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
    'metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/extended-properties" Target="docProps/app.xml"/>'
    f'<Relationship Id="rId4" Type="{_REL}/custom-properties" Target="docProps/custom.xml"/>'
    "</Relationships>"
)

DOCUMENT_RELS = _XML + (
    f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rIdStyles" Type="{_REL}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rIdSettings" Type="{_REL}/settings" Target="settings.xml"/>'
    f'<Relationship Id="rIdHeader" Type="{_REL}/header" Target="header1.xml"/>'
    f'<Relationship Id="rIdFooter" Type="{_REL}/footer" Target="footer1.xml"/>'
    "</Relationships>"
)

APP = _XML + (
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>formtool</Application></Properties>"
)

SETTINGS = _XML + (
    f'<w:settings xmlns:w="{_W}"><w:defaultTabStop w:val="284"/>'
    '<w:characterSpacingControl w:val="doNotCompress"/><w:compat>'
    '<w:compatSetting w:name="compatibilityMode" w:uri="http://schemas.microsoft.com/office/word" '
    'w:val="15"/></w:compat></w:settings>'
)


def _style(
    kind: str,
    sid: str,
    name: str,
    ppr: str = "",
    rpr: str = "",
    based: str = "Normal",
    extra: str = "",
) -> str:
    based_on = f'<w:basedOn w:val="{based}"/>' if based else ""
    return (
        f'<w:style w:type="{kind}" w:styleId="{sid}"><w:name w:val="{name}"/>{based_on}'
        f"{extra}<w:qFormat/>"
        + (f"<w:pPr>{ppr}</w:pPr>" if ppr else "")
        + f"<w:rPr>{rpr}</w:rPr></w:style>"
    )


_TIGHT = '<w:spacing w:before="20" w:after="20"/>'
#: A header group heading ("Social Worker/Team Details"): it heads the rows under it, not the
#: table's columns, so it is not a column heading's style.
_GROUP_HEADING = _style(
    "paragraph",
    "GroupHeading",
    "Table group heading",
    _TIGHT,
    '<w:b/><w:color w:val="FFFFFF"/><w:sz w:val="18"/>',
)
STYLES = _XML + (
    f'<w:styles xmlns:w="{_W}"><w:docDefaults><w:rPrDefault><w:rPr>'
    '<w:rFonts w:ascii="Arial" w:hAnsi="Arial" w:eastAsia="Arial" w:cs="Arial"/>'
    '<w:sz w:val="19"/><w:szCs w:val="19"/><w:lang w:val="en-GB"/></w:rPr></w:rPrDefault>'
    '<w:pPrDefault><w:pPr><w:spacing w:after="60" w:line="252" w:lineRule="auto"/></w:pPr>'
    "</w:pPrDefault></w:docDefaults>"
    + _style("paragraph", "Normal", "Normal", based="", extra="")
    + _style(
        "paragraph",
        "Title",
        "Title",
        '<w:spacing w:after="60"/>',
        '<w:b/><w:color w:val="1F3864"/><w:sz w:val="36"/>',
    )
    + _style(
        "paragraph",
        "Identity",
        "Form identity",
        '<w:spacing w:after="200"/>',
        '<w:color w:val="595959"/><w:sz w:val="16"/>',
    )
    + _style(
        "paragraph",
        "Heading1",
        "heading 1",
        '<w:keepNext/><w:spacing w:before="240" w:after="80"/><w:outlineLvl w:val="0"/>',
        '<w:b/><w:color w:val="1F3864"/><w:sz w:val="24"/>',
    )
    + _style(
        "paragraph",
        "Heading2",
        "heading 2",
        '<w:keepNext/><w:spacing w:before="120" w:after="60"/><w:outlineLvl w:val="1"/>',
        '<w:b/><w:color w:val="2F5496"/><w:sz w:val="20"/>',
    )
    + _style(
        "paragraph",
        "Guidance",
        "Guidance",
        '<w:spacing w:after="20"/><w:ind w:left="284" w:hanging="284"/>',
        '<w:i/><w:color w:val="404040"/><w:sz w:val="17"/>',
    )
    + _style(
        "paragraph",
        "TableHeading",
        "Table heading",
        _TIGHT,
        '<w:b/><w:color w:val="FFFFFF"/><w:sz w:val="17"/>',
    )
    + _GROUP_HEADING
    + _style("paragraph", "CellLabel", "Cell label", _TIGHT, "")
    + _style(
        "paragraph",
        "CellGuidance",
        "Cell guidance",
        _TIGHT,
        '<w:i/><w:color w:val="595959"/><w:sz w:val="16"/>',
    )
    + _style("paragraph", "Answer", "Answer", _TIGHT, '<w:color w:val="000000"/>')
    + _style(
        "paragraph",
        "SmallHeading",
        "Small table heading",
        _TIGHT,
        '<w:b/><w:color w:val="FFFFFF"/><w:sz w:val="15"/>',
    )
    + _style("paragraph", "SmallAnswer", "Small answer", _TIGHT, '<w:sz w:val="16"/>')
    + _style(
        "paragraph", "Stage", "Stage", _TIGHT, '<w:b/><w:color w:val="1F3864"/><w:sz w:val="17"/>'
    )
    + _style(
        "paragraph",
        "Marking",
        "Protective marking",
        '<w:jc w:val="center"/>',
        '<w:b/><w:color w:val="C00000"/><w:sz w:val="16"/>',
    )
    + _style("paragraph", "Spacer", "Spacer", '<w:spacing w:after="0"/>', '<w:sz w:val="8"/>')
    + _style("paragraph", "Header", "header", "", '<w:color w:val="595959"/><w:sz w:val="16"/>')
    + _style("paragraph", "Footer", "footer", "", '<w:color w:val="595959"/><w:sz w:val="15"/>')
    + _style(
        "character",
        "PlaceholderText",
        "Placeholder Text",
        based="",
        rpr='<w:color w:val="808080"/>',
    )
    + '<w:style w:type="table" w:styleId="FormTable"><w:name w:val="Form Table"/>'
    "<w:tblPr><w:tblBorders>"
    + "".join(
        f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="808080"/>'
        for side in ("top", "left", "bottom", "right", "insideH", "insideV")
    )
    + '</w:tblBorders><w:tblCellMar><w:left w:w="85" w:type="dxa"/>'
    '<w:right w:w="85" w:type="dxa"/></w:tblCellMar></w:tblPr></w:style>'
    "</w:styles>"
)
