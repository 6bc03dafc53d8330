"""Returned Word forms in: every answer by its stable key, however the file was saved.

Three ways to find an answer, tried in order for each key:
1. the bookmark named after the key (written by formtool; kept by Word and LibreOffice);
2. the content control's `w:tag` (kept by Word; LibreOffice 7.4 drops it);
3. the cell at the key's position in the form's table layout (for files whose controls and
   bookmarks were stripped, e.g. by Google Docs, leaving the answers as plain cell text).

Text is gathered only for the form's own keys and within the caps of `read.limits`, so a
hostile file (thousands of unclosed bookmarks, deep nesting) cannot multiply memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from lxml import etree

from formtool.definitions import FormDefinition, Item
from formtool.definitions.identity import Identity, bookmark_name, from_properties, parse_visible
from formtool.definitions.layout import layout
from formtool.definitions.namespaces import W
from formtool.errors import IssueCode, Rejected
from formtool.read.limits import MAX_ROWS, TextBudget
from formtool.read.ooxml import Package, custom_properties

DOCUMENT = "word/document.xml"
_TEXT_TAGS = (W + "p", W + "t", W + "br", W + "cr", W + "tab")
_MARK_TAGS = (W + "bookmarkStart", W + "bookmarkEnd", *_TEXT_TAGS)
IDENTITY_SCAN = 200_000  # characters of visible text searched for the identity line


def _piece(el: etree._Element) -> str:
    """The text one element contributes: a run's text, a break, a tab, or a paragraph start."""
    tag = el.tag
    if tag == W + "t":
        return el.text or ""
    if tag == W + "tab":
        return "\t"
    return "\n" if tag in (W + "br", W + "cr", W + "p") else ""


def element_text(element: etree._Element, limit: int) -> str:
    """An element's text (runs, breaks, tabs, a newline between paragraphs), at most
    `limit` + 1 characters: the caller sees that it was cut."""
    parts: list[str] = []
    size = 0
    for el in element.iter(*_TEXT_TAGS):
        piece = _piece(el)
        parts.append(piece)
        size += len(piece)
        if size > limit:
            break
    return "".join(parts).strip()[: limit + 1]


def bookmarked_text(
    body: etree._Element, wanted: dict[str, str], budget: TextBudget
) -> dict[str, str]:
    """Key -> the text between the start and end of the bookmark named for it.

    Only the form's own bookmarks are followed, each at most once at a time, so the work per
    piece of text is bounded by the number of keys and the text by the budget.
    """
    names: dict[str, str] = {}  # open bookmark id -> key
    for el in body.iter(*_MARK_TAGS):
        tag = el.tag
        if tag == W + "bookmarkStart":
            key = wanted.get(el.get(W + "name", ""))
            if key is not None and not budget.seen(key):
                names[el.get(W + "id", "")] = key
                budget.start(key)
        elif tag == W + "bookmarkEnd":
            names.pop(el.get(W + "id", ""), None)
        elif names:
            piece = _piece(el)
            if piece:
                for key in set(names.values()):
                    budget.add(key, piece)
    return budget.texts()


def tagged_text(body: etree._Element, keys: set[str], budget: TextBudget) -> dict[str, str]:
    found = {}
    for sdt in body.iter(W + "sdt"):
        tag = sdt.find(f"{W}sdtPr/{W}tag")
        key = tag.get(W + "val", "") if tag is not None else ""
        content = sdt.find(W + "sdtContent")
        if key in keys and key not in found and content is not None:
            found[key] = budget.take(key, element_text(content, budget.field_limit))
    return found


def positional_text(
    body: etree._Element, form: FormDefinition, budget: TextBudget
) -> dict[str, str]:
    """Answers read from the table cells where the layout put them. A cell holding a
    judgement and its comment gives its first paragraph to the one, the rest to the other."""
    tables = body.findall(W + "tbl")
    shared = _shared_cells(form)
    found = {}
    for key, (t, r, c, i) in layout(form).positions.items():
        try:
            cell = tables[t].findall(f"{W}tr")[r].findall(W + "tc")[c]
        except IndexError:
            continue
        if (t, r, c) in shared:
            paragraphs = [element_text(p, budget.field_limit) for p in cell.findall(W + "p")]
            text = paragraphs[0] if i == 0 and paragraphs else "\n".join(paragraphs[1:])
        else:
            text = element_text(cell, budget.field_limit)
        found[key] = budget.take(key, text[: budget.field_limit + 1])
    return found


@cache
def _shared_cells(form: FormDefinition) -> frozenset[tuple[int, int, int]]:
    """Cells that hold more than one field."""
    places = [p[:3] for p in layout(form).positions.values()]
    return frozenset(p for p in places if places.count(p) > 1)


def visible_text(parts: Iterable[etree._Element]) -> Iterable[str]:
    """Paragraph texts of the parts, up to IDENTITY_SCAN characters in all."""
    left = IDENTITY_SCAN
    for part in parts:
        for paragraph in part.iter(W + "p"):
            text = element_text(paragraph, 2000)
            left -= len(text)
            if left < 0:
                return
            yield text


def docx_identity(package: Package, body: etree._Element) -> Identity | None:
    found = from_properties(custom_properties(package))
    if found is not None:
        return found
    parts = [body]
    for name in package.related(DOCUMENT, "footer") + package.related(DOCUMENT, "header"):
        part = package.xml(name)
        if part is not None:
            parts.append(part)
    return next(filter(None, map(parse_visible, visible_text(parts))), None)


def open_docx(data: bytes) -> tuple[Package, etree._Element]:
    package = Package(data, "docx")
    root = package.xml(DOCUMENT)
    if root is None:
        raise Rejected(IssueCode.no_document, expected="Word document")
    body = root.find(W + "body")
    if body is None:
        raise Rejected(IssueCode.no_document, expected="Word document body")
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
    budget = TextBudget()
    marked = bookmarked_text(body, _bookmark_keys(form), budget)
    if len(marked) == len(keys):
        values, method = marked, "bookmarks"
    else:
        missing = set(keys) - set(marked)
        tagged = tagged_text(body, missing, budget)
        missing -= set(tagged)
        positional = positional_text(body, form, budget) if missing else {}
        values = {}
        for key in keys:
            for source in (marked, tagged, positional):
                if key in source:
                    values[key] = source[key]
                    break
        method = "bookmarks" if marked else "tags" if tagged else "table layout"
    values.update(action_rows(body, form, budget))
    return values, method


def _table_of(
    marks: dict[str, etree._Element], tables: list[etree._Element], form: FormDefinition, item: Item
) -> etree._Element | None:
    """The Word table holding an action table: found by its first bookmark, else by order."""
    mark = marks.get(bookmark_name(item.cell_key(1, item.columns[0])))
    if mark is not None:
        return next(mark.iterancestors(W + "tbl"), None)
    index = [b.name for b in layout(form).tables].index(item.key)
    return tables[index] if index < len(tables) else None


def action_rows(body: etree._Element, form: FormDefinition, budget: TextBudget) -> dict[str, str]:
    """Every row of every action table by position, including rows the auditor added."""
    found: dict[str, str] = {}
    wanted = set(_bookmark_keys(form))
    marks = {
        m.get(W + "name", ""): m
        for m in body.iter(W + "bookmarkStart")
        if m.get(W + "name", "") in wanted
    }
    tables = body.findall(W + "tbl")
    for item in form.tables():
        table = _table_of(marks, tables, form, item)
        if table is None:
            continue
        rows = list(table.iter(W + "tr"))[1:]  # row 0 is the column headings
        if len(rows) > MAX_ROWS:
            raise Rejected(
                IssueCode.field_too_long, f"{len(rows)} rows", f"{MAX_ROWS} rows", field=item.key
            )
        for number, row in enumerate(rows, start=1):
            cells = row.findall(W + "tc")
            for column, cell in zip(item.columns, cells, strict=False):
                key = item.cell_key(number, column)
                found[key] = budget.take(key, element_text(cell, budget.field_limit))
    return found
