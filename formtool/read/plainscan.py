"""The fast path for the common Word return: nothing but answers in their boxes.

The full reader (docx.py `scan`) walks every element of the body in Python so that it sees
what Word shows: text typed beside a box, tracked changes, alternate content, symbols,
placeholders, date pickers. Most returns hold none of that: each answer is in its content
control, alone in its cell. For those, `plain_scan` finds the same places and the same cell
texts with lxml's C-level passes (`iter` with tags, `tostring` as text) and looks in Python
only at the boxes, the bookmarks and the tables' rows.

It is exactly as safe as the walk because it declines (returns None, and the walk reads the
file) whenever it is not sure: anything the walk treats specially (tracked changes,
`mc:AlternateContent`, `w:sym`, symbol fonts, hyphens Word draws), fields, hidden text,
drawings and text boxes, a content control around cells or rows, a table in a cell, a box
inside another control or holding one, one key's places in two cells, a place outside the
tables, too much text for the caps to be left to the answers. A cell is given its text only
when it holds one box (or none) and nothing else that shows (its visible characters are the
box's): then what the walk gathers there is the box's text. Any other cell is left out, and
docx.py reads it on its own as the walk would (`read_cell`). tests/test_read_fast_path.py
checks, for every return file the suite builds, that this path declines or gives exactly
what the walk gives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping

from lxml import etree

from formtool.definitions.namespaces import MC_NS, W
from formtool.definitions.scales import parse_date
from formtool.read.limits import MAX_FIELD_CHARS, MAX_TEXT_CHARS
from formtool.read.places import Anchor, CellText, Scan
from formtool.read.wordtext import (
    SYMBOL_FONTS,
    _date_text,
    _full_date,
    _locked,
    shown_text,
    tag_of,
)

_MC = f"{{{MC_NS}}}"
#: What only the full walk follows: tracked changes, alternate content (text boxes, shapes),
#: symbols and hyphens Word draws, fields, hidden text, drawings, embedded and custom XML.
_UNSURE = (
    *(
        W + name
        for name in (
            "ins",
            "del",
            "moveFrom",
            "moveTo",
            "moveFromRangeStart",
            "moveToRangeStart",
            "sym",
            "noBreakHyphen",
            "softHyphen",
            "ptab",
            "fldSimple",
            "fldChar",
            "instrText",
            "delText",
            "vanish",
            "specVanish",
            "webHidden",
            "customXml",
            "txbxContent",
            "drawing",
            "pict",
            "object",
            "altChunk",
            "subDoc",
            "smartTag",
        )
    ),
    _MC + "AlternateContent",
    _MC + "Choice",
    _MC + "Fallback",
)
_T, _P, _TAB, _BR, _CR = (W + t for t in ("t", "p", "tab", "br", "cr"))
_TC, _TR, _TBL, _BODY = W + "tc", W + "tr", W + "tbl", W + "body"
_SDT, _SDTPR, _CONTENT = W + "sdt", W + "sdtPr", W + "sdtContent"
_TAG, _LOCK, _FONTS, _MARK = W + "tag", W + "lock", W + "rFonts", W + "bookmarkStart"
_PLACEHOLDER, _DATE, _FULL = W + "showingPlcHdr", W + "date", W + "fullDate"
_INSIDE = (_P, _TAB, _BR, _CR)  # in a box: its text is walked


class Unsure(Exception):
    """Raised inside the fast path: the body holds something only the walk reads right."""


def _symbol_font(fonts: etree._Element) -> bool:
    font = fonts.get(W + "ascii") or fonts.get(W + "hAnsi") or ""
    return "".join(font.lower().split()) in SYMBOL_FONTS


def _holder(el: etree._Element) -> etree._Element | None:
    """The nearest control or cell around an element (a paragraph in a cell first: the
    common place of a box and its bookmark), None outside both."""
    parent = el.getparent()
    above = parent.getparent() if parent is not None and parent.tag == _P else None
    if above is not None and above.tag == _TC:
        return above
    return next(el.iterancestors(_SDT, _TC), None)


def _cell(el: etree._Element) -> etree._Element | None:
    holder = _holder(el)
    return holder if holder is None or holder.tag == _TC else next(holder.iterancestors(_TC), None)


def size(el: etree._Element) -> int:
    """At least as many characters as a walk gathers from the element: its text, and one
    for each paragraph, tab and break."""
    text = etree.tostring(el, method="text", encoding=str, with_tail=False)
    return len(text) + sum(1 for _ in el.iter(*_INSIDE))


def _role(sdt: etree._Element, keys: Collection[str]) -> str:
    """What the walk makes of a control: an answer "box", "printed" text, or ""."""
    name = tag_of(sdt)
    if name and name in keys:
        return "box"
    return "printed" if _locked(sdt) else ""


def _marked(sdt: etree._Element, tag: str) -> bool:
    """Whether a control shows its placeholder (or is a date picker holding a date), as
    wordtext's _Marked finds them: in any of its property blocks."""
    wanted = "x" if tag == _PLACEHOLDER else ""  # a placeholder shown; a date with its value
    blocks = [props for props in sdt if props.tag == _SDTPR]
    return any(el.get(_FULL, wanted) for props in blocks for el in props.iterchildren(tag))


class _Fast:
    """The fast path's passes over one body, raising Unsure where it is not sure."""

    def __init__(self, names: Mapping[str, str], reading: Collection[str], per_key: int):
        self.names, self.reading, self.per_key = names, reading, per_key
        self.keys = set(names.values()) | set(reading)
        self.found = Scan()
        self.boxes: dict[etree._Element, list[etree._Element]] = defaultdict(list)  # by cell
        self.runs: dict[etree._Element, list[str]] = {}  # each box's runs' text
        self.walked: set[etree._Element] = set()  # controls holding paragraphs or breaks
        self.dirty: set[etree._Element | None] = set()  # cells showing text outside a box
        self.passed: set[etree._Element] = set()  # controls around rows, looked at
        self.placeholders: set[etree._Element] = set()  # as wordtext's _Marked finds them
        self.dates: set[etree._Element] = set()

    def tables(self, body: etree._Element, most: int) -> None:
        """No table in a cell; no control around a cell; controls around tables or rows
        (Word's repeating sections) that the walk passes through; at most `most` cells
        (the walk keeps no more)."""
        cells = 0
        for el in body.iter(_TBL, _TR):
            parent = el.getparent()
            if el.tag == _TR:
                if el.find(_SDT) is not None:
                    raise Unsure
                cells += len(el)
            if parent is not None and parent.tag not in (_BODY, _TBL):
                self._wrapped(el)
        if cells >= most:
            raise Unsure

    def _wrapped(self, el: etree._Element) -> None:
        """The controls around a table or row: none may be a box or printed text, show a
        placeholder or hold a date (each changes what the walk gathers inside)."""
        for above in el.iterancestors():
            if above.tag in (_TBL, _BODY) or above in self.passed:
                return
            if above.tag == _TC:
                raise Unsure  # a table in a cell
            if above.tag == _SDT:
                if _role(above, self.keys) or _marked(above, _PLACEHOLDER) or _marked(above, _DATE):
                    raise Unsure
                self.passed.add(above)

    def controls(self, body: etree._Element) -> None:
        """Each tagged box: its cell, and a place for a key being read."""
        keys, reading, tags, seen = self.keys, self.reading, self.found.tags, set()
        for tag in body.iter(_TAG):
            props = tag.getparent()
            sdt = props.getparent() if props is not None else None
            if sdt is None or props.tag != _SDTPR or sdt.tag != _SDT:
                continue
            if sdt[0] is not props or sdt in seen:
                raise Unsure  # two tags, or two property blocks: as tag_of reads, not here
            seen.add(sdt)
            key = tag.get(W + "val", "")
            if not key or key not in keys:
                continue
            cell = _holder(sdt)
            if cell is None:
                if key in reading:
                    raise Unsure  # a box outside the tables: its own text, read by the walk
                continue
            if cell.tag != _TC:
                raise Unsure  # a box inside another control
            self.boxes[cell].append(sdt)
            self.runs[sdt] = []
            if key in reading and len(tags[key]) < self.per_key:
                tags[key].append(Anchor(key, sdt, cell, False))

    def marks(self, body: etree._Element) -> None:
        names, reading, marks = self.names, self.reading, self.found.marks
        for mark in body.iter(_MARK):
            key = names.get(mark.get(W + "name", ""))
            if key is None or len(marks[key]) >= self.per_key:
                continue
            cell = _cell(mark)
            if cell is None and key in reading:
                raise Unsure  # a place outside the tables gathers its own text
            marks[key].append(Anchor(key, mark, cell, False))

    def held(self) -> set[etree._Element]:
        """The cells holding a box or a place; every key read has its places in one."""
        found, held = self.found, set(self.boxes)
        for key in self.reading:
            cells = {p.cell for p in (*found.marks.get(key, ()), *found.tags.get(key, ()))}
            if len(cells) > 1:
                raise Unsure  # two places: the walk compares them
            held.update(c for c in cells if c is not None)
        return held

    def texts(self, body: etree._Element) -> None:
        """Each box's runs, and the cells showing text outside their boxes: the form's
        printed text, or text in another control (read_cell sorts those out). Text typed in
        a cell outside any control is the walk's to read, with the note it leaves."""
        runs, dirty = self.runs, self.dirty
        for el in body.iter(_T):
            text = el.text
            if not text:
                continue
            run = el.getparent()
            content = run.getparent() if run is not None else None
            if content is not None and content.tag == _CONTENT:
                owner = content.getparent()
                if owner in runs:
                    runs[owner].append(text)
                elif not text.isspace():
                    dirty.add(_cell(owner))
            elif not text.isspace():
                holder = next(el.iterancestors(_SDT, _TC), None)
                if holder is not None and holder.tag == _TC:
                    raise Unsure  # typed beside the boxes
                if holder is not None:
                    dirty.add(_cell(holder))

    def marked(self, body: etree._Element) -> None:
        """Controls holding breaks (walked: the walk says what they show), showing their
        placeholder, or holding the date Word understood. (A box holding paragraphs has
        its text outside its own runs: its cell is dirty, read by read_cell.)"""
        for el in body.iter(_TAB, _BR, _CR, _PLACEHOLDER, _DATE):
            parent = el.getparent()
            owner = parent.getparent() if parent is not None else None
            tag = el.tag
            if tag in (_PLACEHOLDER, _DATE):
                if parent is not None and parent.tag == _SDTPR and owner is not None:
                    if tag == _PLACEHOLDER:
                        self.placeholders.add(owner)
                    elif el.get(_FULL):
                        self.dates.add(owner)
            elif owner is not None and owner.tag == _CONTENT:
                self.walked.add(owner.getparent())
            else:
                self.walked.update(el.iterancestors(_SDT))

    def cell_text(self, cell: etree._Element, small: bool) -> str | None:
        """What the walk gathers in a cell holding one box or none, if nothing else in it
        shows; None to leave the cell to read_cell."""
        boxes = self.boxes.get(cell, [])
        if len(boxes) > 1 or cell in self.dirty or not (small or size(cell) <= MAX_FIELD_CHARS):
            return None
        if not boxes:
            return ""
        box = boxes[0]
        if box in self.placeholders:
            return ""
        if box in self.walked:
            return shown_text(box, MAX_FIELD_CHARS)
        text = "".join(self.runs[box])
        return _dated(box, text) if box in self.dates else text


def _dated(sdt: etree._Element, text: str) -> str:
    """The text the walk gathers from a date picker of runs alone (`text`): the date Word
    understood for a date it does not read, else the runs."""
    shape = len(sdt) == 2 and sdt[0].tag == _SDTPR and sdt[1].tag == _CONTENT
    if not shape or len(text) > 100 or text != "".join(t.text or "" for t in sdt[1].iter(_T)):
        return _date_text(sdt) or text  # exactly as the walk decides
    full, shown = _full_date(sdt), text.strip()
    return full if full and shown and parse_date(shown) is None else text


def _special(body: etree._Element) -> None:
    """No symbol font, and nothing the walk treats specially."""
    if next(body.iter(*_UNSURE), None) is not None:
        raise Unsure
    if any(_symbol_font(fonts) for fonts in body.iter(_FONTS)):
        raise Unsure


def plain_scan(
    body: etree._Element,
    names: Mapping[str, str],
    reading: Collection[str],
    per_key: int,
    cells: int,
) -> Scan | None:
    """docx.scan's findings for a plain body, or None when not sure. `names`: bookmark name
    -> key; `reading`: the keys whose controls are places; `per_key`: places kept per key;
    `cells`: the walk's cap on cells kept. Places are in cells, so they gather no text."""
    total = size(body)
    if total > MAX_TEXT_CHARS // 4:
        return None  # the walk's count against the file's cap decides
    fast = _Fast(names, reading, per_key)
    try:
        _special(body)
        fast.tables(body, cells)
        fast.controls(body)
        fast.marks(body)
        fast.texts(body)
        fast.marked(body)
        small = total <= MAX_FIELD_CHARS
        for cell in fast.held():
            text = fast.cell_text(cell, small)
            if text is not None:
                fast.found.cells[cell] = CellText(shown=text)
    except Unsure:
        return None
    return fast.found
