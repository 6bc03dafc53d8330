"""Returned Word forms in: every answer by its stable key, however the file was saved.

Three ways to find an answer, tried in order for each key:
1. the bookmark named after the key (written by formtool; kept by Word and LibreOffice);
2. the content control's `w:tag` (kept by Word; LibreOffice 7.4 drops it);
3. the cell at the key's position in the form's table layout (for files whose controls and
   bookmarks were stripped, e.g. by Google Docs, leaving the answers as plain cell text).
"""

from __future__ import annotations

from functools import cache

from lxml import etree

from formtool.definitions import FormDefinition
from formtool.generate.docx import PLACEHOLDERS, W_NS
from formtool.identity import Identity, bookmark_name, from_properties, parse_visible
from formtool.layout import layout
from formtool.read.ooxml import Package, UnreadableFile, custom_properties

W = f"{{{W_NS}}}"
DOCUMENT = "word/document.xml"


def _clean(text: str) -> str:
    text = text.strip()
    return "" if text in PLACEHOLDERS else text


_TEXT_TAGS = (W + "p", W + "t", W + "br", W + "cr", W + "tab")


def _piece(el: etree._Element) -> str:
    """The text one element contributes: a run's text, a break, a tab, or a paragraph start."""
    tag = el.tag
    if tag == W + "t":
        return el.text or ""
    if tag == W + "tab":
        return "\t"
    return "\n" if tag in (W + "br", W + "cr", W + "p") else ""


def element_text(element: etree._Element) -> str:
    """An element's text: runs, breaks and tabs, a newline between paragraphs.

    Walks only the tags that carry text (lxml filters them in C); a paragraph contributes
    its newline where the next one starts, which is the same text as at its end.
    """
    parts = []
    for el in element.iter(*_TEXT_TAGS):
        parts.append(_piece(el))
    return "".join(parts).strip()


_MARK_TAGS = (
    W + "bookmarkStart",
    W + "bookmarkEnd",
    W + "p",
    W + "t",
    W + "br",
    W + "cr",
    W + "tab",
)


def bookmarked_text(body: etree._Element) -> dict[str, str]:
    """Bookmark name -> the text between its start and end, in document order.

    Walks only the elements that matter (lxml filters by tag in C), and marks a paragraph
    break when a new paragraph starts inside an open bookmark.
    """
    open_marks: dict[str, list[str]] = {}
    found: dict[str, list[str]] = {}
    for el in body.iter(*_MARK_TAGS):
        tag = el.tag
        if tag == W + "bookmarkStart":
            buffer: list[str] = []
            open_marks[el.get(W + "id", "")] = buffer
            found.setdefault(el.get(W + "name", ""), buffer)
        elif tag == W + "bookmarkEnd":
            open_marks.pop(el.get(W + "id", ""), None)
        elif open_marks:
            piece = _piece(el)
            if piece:
                for buffer in open_marks.values():
                    buffer.append(piece)
    return {name: "".join(parts).strip() for name, parts in found.items()}


def tagged_text(body: etree._Element) -> dict[str, str]:
    found = {}
    for sdt in body.iter(W + "sdt"):
        tag = sdt.find(f"{W}sdtPr/{W}tag")
        content = sdt.find(W + "sdtContent")
        if tag is not None and content is not None:
            found[tag.get(W + "val", "")] = element_text(content)
    return found


def positional_text(body: etree._Element, form: FormDefinition) -> dict[str, str]:
    """Answers read from the table cells where the layout put them."""
    tables = body.findall(W + "tbl")
    found = {}
    for key, (t, r, c) in layout(form).positions.items():
        try:
            cell = tables[t].findall(W + "tr")[r].findall(W + "tc")[c]
        except IndexError:
            continue
        found[key] = element_text(cell)
    return found


def docx_identity(package: Package, body: etree._Element) -> Identity | None:
    found = from_properties(custom_properties(package))
    if found is not None:
        return found
    texts = [element_text(body)]
    for name in sorted(package.names):
        if name.startswith(("word/footer", "word/header")):
            part = package.xml(name)
            if part is not None:
                texts.append(element_text(part))
    return parse_visible("\n".join(texts))


def open_docx(data: bytes) -> tuple[Package, etree._Element]:
    package = Package(data, "docx")
    root = package.xml(DOCUMENT)
    if root is None:
        raise UnreadableFile(
            "has no Word document inside. Is it a .docx saved by Word, LibreOffice or Google Docs?"
        )
    body = root.find(W + "body")
    if body is None:
        raise UnreadableFile("has an empty Word document. Ask for the file again.")
    return package, body


@cache
def _bookmark_keys(form: FormDefinition) -> dict[str, str]:
    return {bookmark_name(key): key for key in layout(form).positions}


def read_values(body: etree._Element, form: FormDefinition) -> tuple[dict[str, str], str]:
    """Every field of the form by key, and which way was used ("bookmarks", "tags", ...).

    Action tables are read row by row wherever they are found, so rows an auditor added
    with Word's repeating-section button come back as rows 6, 7, ...
    """
    keys = list(layout(form).positions)
    by_mark = bookmarked_text(body)
    marked = {k: by_mark[name] for name, k in _bookmark_keys(form).items() if name in by_mark}
    if len(marked) == len(keys):
        values, method = {k: _clean(v) for k, v in marked.items()}, "bookmarks"
    else:
        tagged = tagged_text(body)
        positional = positional_text(body, form) if len(marked) + len(tagged) < len(keys) \
            else {}
        values = {}
        for key in keys:
            for source in (marked, tagged, positional):
                if key in source:
                    values[key] = _clean(source[key])
                    break
        method = "bookmarks" if marked else "tags" if tagged else "table layout"
    values.update(action_rows(body, form))
    return values, method


def _table_of(marks: dict[str, etree._Element], tables: list[etree._Element],
              form: FormDefinition, item) -> etree._Element | None:
    """The Word table holding an action table: found by its first bookmark, else by order."""
    mark = marks.get(bookmark_name(item.cell_key(1, item.columns[0])))
    if mark is not None:
        return next(mark.iterancestors(W + "tbl"), None)
    index = [b.name for b in layout(form).tables].index(item.key)
    return tables[index] if index < len(tables) else None


def action_rows(body: etree._Element, form: FormDefinition) -> dict[str, str]:
    """Every row of every action table by position, including rows the auditor added."""
    found: dict[str, str] = {}
    marks = {m.get(W + "name", ""): m for m in body.iter(W + "bookmarkStart")}
    tables = body.findall(W + "tbl")
    for _, item in form.items():
        if item.kind != "table":
            continue
        table = _table_of(marks, tables, form, item)
        if table is None:
            continue
        rows = list(table.iter(W + "tr"))[1:]  # row 0 is the column headings
        for number, row in enumerate(rows, start=1):
            cells = row.findall(W + "tc")
            for column, cell in zip(item.columns, cells, strict=False):
                found[item.cell_key(number, column)] = _clean(element_text(cell))
    return found
