"""Returned Word forms in: every answer by its stable key, as Word shows it to the auditor.

Where an answer is, tried in order for each key:
1. the bookmark named after the key (written by formtool; kept by Word and LibreOffice);
2. the content control's `w:tag` (kept by Word; LibreOffice 7.4 drops it);
3. the cell at the key's position in the form's table layout (for files whose controls and
   bookmarks were stripped, e.g. by Google Docs, leaving the answers as plain cell text).

An answer is what its table cell shows: the box's text and anything typed beside it in the
same cell (a note names what was typed outside the box). In a cell holding two answers (a
judgement and its comment) each runs from its own box to the next one's. Two places giving
different text for one key (bookmarks swapped between questions, a box copied and changed)
are refused as ambiguous. The text itself is what Word shows (wordtext.py): tracked changes
as if accepted (with a note), one branch of alternate content, symbols, placeholders as
empty, the date a date picker understood.

One walk over the body finds every place and each cell's text; only cells holding more than
a box (typed text, two answers, a nested table) are walked again, on their own. Text is
gathered for the form's own keys within the caps of `read.limits`, so a hostile file
(thousands of unclosed bookmarks or copied boxes, deep nesting) cannot multiply memory or
time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from functools import cache

from lxml import etree

from formtool.definitions import FormDefinition, Item
from formtool.definitions.identity import Identity, bookmark_name, from_properties, parse_visible
from formtool.definitions.layout import layout
from formtool.definitions.namespaces import W
from formtool.errors import IssueCode, Rejected
from formtool.read.limits import MAX_ROWS, TextBudget
from formtool.read.notes import Note
from formtool.read.ooxml import Package, custom_properties
from formtool.read.places import Anchor, CellText, Scan
from formtool.read.plainscan import plain_scan
from formtool.read.wordtext import (
    END,
    START,
    TEXT,
    Boxes,
    Reading,
    cell_paragraphs,
    read_cell,
    shown_text,
    table_rows,
    tag_of,
    walk,
)

IDENTITY_SCAN = 200_000  # characters of visible text searched for the identity line
PER_KEY = 2  # bookmarks and controls followed per key: enough to see two disagree
MAX_CELLS = 5_000  # cells whose text the scan keeps (a form has under 1,000)
_CHANGES = (W + "ins", W + "del", W + "moveFrom", W + "moveFromRangeStart")
_TC, _SDT, _MARK_START, _MARK_END, _P = (
    W + t for t in ("tc", "sdt", "bookmarkStart", "bookmarkEnd", "p")
)


def element_text(element: etree._Element, limit: int) -> str:
    """The text Word shows for an element (see wordtext.py), at most `limit` + 1 characters."""
    return shown_text(element, limit)


def _short(text: str, size: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


class _Scanner:
    """The state of the one walk over the body (see `scan`)."""

    def __init__(self, names: Mapping[str, str], reading: Collection[str], budget: TextBudget):
        self.names, self.reading, self.budget = names, reading, budget
        self.found = Scan()
        self.boxes = Boxes(set(names.values()) | set(reading), set(names))
        self.open: dict[str, Anchor] = {}  # open bookmarks followed, by id
        self.controls: list[Anchor | None] = []  # open content controls, innermost last
        self.tagged: list[Anchor] = []  # the open controls being read
        self.cells: list[tuple[etree._Element, CellText | None]] = []  # open, innermost last

    def text(self, piece: str) -> None:
        for anchor in [*self.open.values(), *self.tagged]:
            if anchor.reading:
                anchor.add(piece, self.budget)
        cell = self._track() if self.cells and not self.boxes.printed else None
        if cell is not None and cell.text is not None:  # the walk's cells: always a Reading
            self.budget.take("", piece[: self.budget.field_limit])  # the whole file's cap
            cell.text.add(piece, bool(self.boxes.inside))
            cell.typed = cell.typed or (not self.boxes.inside and not piece.isspace())

    def _track(self, force: bool = False) -> CellText | None:
        """The innermost open cell's text, kept from its first piece of text or place (for
        at most MAX_CELLS cells, beyond which only cells holding a place are kept)."""
        el, text = self.cells[-1]
        if text is None and (force or len(self.found.cells) < MAX_CELLS):
            text = self.found.cells[el] = CellText(
                Reading(), late=len(self.found.cells) >= MAX_CELLS
            )
            self.cells[-1] = (el, text)
        return text

    def event(self, kind: str, el: etree._Element) -> None:
        tag = el.tag
        name = None
        if tag == _TC:
            self.cell(kind, el)
        elif kind == END:
            if tag == _SDT and self.controls and self.controls.pop() is not None:
                self.tagged.pop()
        elif tag == _MARK_START:
            self.bookmark(el)
        elif tag == _MARK_END:
            self.open.pop(el.get(W + "id", ""), None)
        elif tag == _SDT:
            name = self.control(el)
        elif tag in _CHANGES:
            self.found.changes[tag] += 1
        self.boxes.see(kind, el, name)

    def cell(self, kind: str, el: etree._Element) -> None:
        if kind == START:
            outer = self._track() if self.cells else None
            if outer is not None:
                outer.nested = True
            self.cells.append((el, None))
        elif self.cells:
            self.cells.pop()

    def _place(self) -> etree._Element | None:
        """The cell a place being opened is in (its text then always kept)."""
        if not self.cells:
            return None
        self._track(force=True)
        return self.cells[-1][0]

    def bookmark(self, el: etree._Element) -> None:
        key = self.names.get(el.get(W + "name", ""))
        if key is None or len(self.found.marks[key]) >= PER_KEY:
            return
        cell = self._place()
        mark = Anchor(key, el, cell, cell is None and key in self.reading)
        self.found.marks[key].append(mark)
        self.open[el.get(W + "id", "")] = mark
        if self.tagged and self.tagged[-1].key == key:  # LibreOffice puts it inside the box
            self.tagged[-1].covered, self.tagged[-1].reading = True, False

    def control(self, el: etree._Element) -> str:
        key = tag_of(el)
        control = None
        if key in self.reading and len(self.found.tags[key]) < PER_KEY:
            covered = any(m.key == key for m in self.open.values())
            cell = self._place()
            control = Anchor(key, el, cell, cell is None and not covered, covered)
            self.found.tags[key].append(control)
            self.tagged.append(control)
        self.controls.append(control)
        return key


def scan(
    body: etree._Element, names: Mapping[str, str], reading: Collection[str], budget: TextBudget
) -> Scan:
    """Bookmarks named for the form's keys (`names`: bookmark name -> key) and controls
    tagged with them, the first PER_KEY of each, with their text for the keys in `reading`;
    every table cell's text; and the tracked changes."""
    scanner = _Scanner(names, reading, budget)
    for kind, el, text in walk(body):
        if kind == TEXT:
            scanner.text(text)
        elif el.tag != _P:  # paragraphs matter to the walk only
            scanner.event(kind, el)
    return scanner.found


def _box_texts(cell: etree._Element, places: list[Anchor], budget: TextBudget) -> None:
    """Gather, in one walk of their cell, the text of places that must be compared: a
    bookmark's range (up to the cell's end) or a control's content."""
    wanted = {place.element: place for place in places}
    ranges: dict[str, Anchor] = {}
    controls: dict[etree._Element, Anchor] = {}
    for kind, el, text in walk(cell):
        if kind == TEXT:
            for place in [*ranges.values(), *controls.values()]:
                place.add(text, budget)
        elif kind == START and el in wanted:
            if el.tag == _MARK_START:
                ranges[el.get(W + "id", "")] = wanted[el]
            else:
                controls[el] = wanted[el]
        elif kind == START and el.tag == _MARK_END:
            ranges.pop(el.get(W + "id", ""), None)
        elif kind == END:
            controls.pop(el, None)


def _check_places(found: Scan, keys: Iterable[str], budget: TextBudget) -> None:
    """Refuse a key whose places in different cells (or outside tables) give different
    text: which one the auditor meant cannot be told (names swapped between questions, a
    box copied elsewhere and changed). A control in its bookmark, or two boxes in one cell,
    are one place; only keys with two places are looked at again."""
    doubtful: dict[str, dict[etree._Element, Anchor]] = {}
    for key in keys:
        where: dict[etree._Element, Anchor] = {}
        for place in [*found.marks.get(key, ()), *found.tags.get(key, ())]:
            if not place.covered:
                where.setdefault(place.element if place.cell is None else place.cell, place)
        if len(where) > 1:
            doubtful[key] = where
    in_cells: dict[etree._Element, list[Anchor]] = defaultdict(list)
    for where in doubtful.values():
        for place in where.values():
            if place.cell is not None:
                in_cells[place.cell].append(place)
    for cell, places in in_cells.items():
        _box_texts(cell, places, budget)
    for key, where in doubtful.items():
        texts = list(dict.fromkeys(" ".join(p.text(budget).split()) for p in where.values()))
        if len(texts) > 1:
            value = " and ".join(f"'{_short(t, 30)}'" for t in texts[:2])
            raise Rejected(IssueCode.ambiguous, value, field=key)


def tagged_text(body: etree._Element, keys: set[str], budget: TextBudget) -> dict[str, str]:
    """Key -> the text of the first content control tagged with it."""
    found = scan(body, {}, keys, budget)
    return {
        key: budget.take(key, shown_text(places[0].element, budget.field_limit))
        for key, places in found.tags.items()
        if places
    }


@cache
def _bookmark_keys(form: FormDefinition) -> dict[str, str]:
    return {bookmark_name(key): key for key in layout(form).positions}


@cache
def _action_keys(form: FormDefinition) -> frozenset[str]:
    """Keys of action-table cells: read row by row, never by bookmark or tag."""
    tables = {t for t, block in enumerate(layout(form).tables) if block.repeating}
    return frozenset(k for k, place in layout(form).positions.items() if place[0] in tables)


@cache
def _shared_cells(form: FormDefinition) -> frozenset[tuple[int, int, int]]:
    """Cells that hold more than one field."""
    places = [p[:3] for p in layout(form).positions.values()]
    return frozenset(p for p in places if places.count(p) > 1)


def _layout_cells(
    body: etree._Element, form: FormDefinition, keys: Iterable[str]
) -> dict[str, tuple[etree._Element, etree._Element | None]]:
    """Key -> its cell where the layout put it, and the paragraph its text starts at."""
    tables = body.findall(W + "tbl")
    positions = layout(form).positions
    found = {}
    for key in keys:
        t, r, c, i = positions[key]
        rows = table_rows(tables[t], r + 1) if t < len(tables) else []
        cells = rows[r].findall(W + "tc") if r < len(rows) else []
        if c < len(cells):
            paragraphs = cell_paragraphs(cells[c])
            found[key] = (cells[c], paragraphs[i] if i < len(paragraphs) else None)
    return found


def _starts(
    body: etree._Element, form: FormDefinition, anchors: Mapping[str, Anchor | None]
) -> dict[etree._Element, dict[etree._Element, str]]:
    """Cell -> where each answer in it starts: its anchor, or for an answer whose box and
    bookmark are gone, its place in the layout (the cell, or in a cell shared with another
    answer, its paragraph), if no other question's box is in that cell."""
    starts: dict[etree._Element, dict[etree._Element, str]] = defaultdict(dict)
    for key, anchor in anchors.items():
        if anchor is not None and anchor.cell is not None:
            starts[anchor.cell][anchor.element] = key
    lost = [key for key, anchor in anchors.items() if anchor is None]
    positions, shared = layout(form).positions, _shared_cells(form)
    for key, (cell, start) in _layout_cells(body, form, lost).items():
        place = positions[key][:3]
        mine = {k for k, p in positions.items() if p[:3] == place}
        if start is not None and set(starts.get(cell, {}).values()) <= mine:
            starts[cell][start if place in shared else cell] = key
    return starts


def read_answers(
    body: etree._Element,
    form: FormDefinition,
    found: Scan,
    anchors: Mapping[str, Anchor | None],
    budget: TextBudget,
    notes: list[Note],
) -> dict[str, str]:
    """Each key's answer: what its cell shows (its box and anything typed beside it), or
    for a box outside any table, the box's text."""
    values = {
        key: anchor.text(budget)
        for key, anchor in anchors.items()
        if anchor is not None and anchor.cell is None
    }
    starts = _starts(body, form, anchors)
    keys = set(layout(form).positions)
    marks = {a.element.get(W + "name", "") for a in anchors.values() if a is not None}
    for cell, here in starts.items():
        seen = found.cells.get(cell)
        only = next(iter(here.values()))
        alone = seen is not None and len(here) == 1 and not (seen.nested or seen.late)
        if seen is not None and alone and (not seen.typed or anchors[only] is None):
            values[only] = budget.take(only, seen.value)  # as scanned: no note to leave
            continue
        readings = read_cell(cell, here, Boxes(keys, marks), skip=starts)
        for key, reading in readings.items():
            values[key] = budget.take(key, reading.text)
            if anchors.get(key) is not None and reading.typed:
                notes.append(Note(IssueCode.typed_outside, key, _short(reading.typed)))
    return values


def _changes_note(changes: Counter[str]) -> Note | None:
    moves = changes[W + "moveFromRangeStart"] or changes[W + "moveFrom"]
    counts = ((changes[W + "ins"], "insertion"), (changes[W + "del"], "deletion"), (moves, "move"))
    said = [f"{n} {name}{'s' if n > 1 else ''}" for n, name in counts if n]
    return Note(IssueCode.tracked_changes, value=", ".join(said)) if said else None


def visible_text(parts: Iterable[etree._Element]) -> Iterable[str]:
    """Lines of the parts' visible text, up to IDENTITY_SCAN characters in all."""
    left = IDENTITY_SCAN
    for part in parts:
        text = shown_text(part, left)
        yield from text.splitlines()
        left -= len(text)
        if left <= 0:
            return


def docx_identity(package: Package, body: etree._Element) -> Identity | None:
    found = from_properties(custom_properties(package))
    if found is not None:
        return found
    main = package.main_part()
    parts = [body]
    for name in package.related(main, "footer") + package.related(main, "header"):
        part = package.xml(name)
        if part is not None:
            parts.append(part)
    return next(filter(None, map(parse_visible, visible_text(parts))), None)


def open_docx(data: bytes) -> tuple[Package, etree._Element]:
    return open_package(Package(data, "docx"))


def open_package(package: Package) -> tuple[Package, etree._Element]:
    """A Word package's body (its main part's), or Rejected."""
    root = package.xml(package.main_part())
    if root is None:
        raise Rejected(IssueCode.no_document, expected="Word document")
    body = root.find(W + "body")
    if body is None:
        raise Rejected(IssueCode.no_document, expected="Word document body")
    return package, body


def read_values(
    body: etree._Element, form: FormDefinition, notes: list[Note], full: bool = False
) -> tuple[dict[str, str], str]:
    """Every field of the form by key, and which way was used ("bookmarks", "tags", ...).

    A plain body (nothing but answers in their boxes) is scanned by plainscan.py's fast
    path; any other, every body with `full`, and any read that warns or refuses, by the walk
    over every element. Action tables are read row by row wherever they are found, so rows
    an auditor added with Word's repeating-section button come back as rows 6, 7, ...
    """
    actions = _action_keys(form)
    keys = [k for k in layout(form).positions if k not in actions]
    found = None if full else plain_scan(body, _bookmark_keys(form), set(keys), PER_KEY, MAX_CELLS)
    if found is None:
        budget = TextBudget()
        return _values(
            body, form, scan(body, _bookmark_keys(form), set(keys), budget), budget, notes
        )
    said: list[Note] = []
    try:
        values = _values(body, form, found, TextBudget(), said)
    except Rejected:
        return read_values(body, form, notes, full=True)
    if said:  # a note to leave: the walk says it
        return read_values(body, form, notes, full=True)
    return values


def _values(
    body: etree._Element, form: FormDefinition, found: Scan, budget: TextBudget, notes: list[Note]
) -> tuple[dict[str, str], str]:
    actions = _action_keys(form)
    keys = [k for k in layout(form).positions if k not in actions]
    _check_places(found, keys, budget)
    anchors = {key: found.anchor(key) for key in keys}
    values = read_answers(body, form, found, anchors, budget, notes)
    values.update(action_rows(body, form, found, budget, notes))
    changed = _changes_note(found.changes)
    if changed is not None:
        notes.append(changed)
    if any(found.marks.values()):
        return values, "bookmarks"
    return values, "tags" if any(found.tags.values()) else "table layout"


def _table_of(
    found: Scan, tables: list[etree._Element], form: FormDefinition, item: Item
) -> etree._Element | None:
    """The Word table holding an action table: found by its first bookmark, else by order."""
    marks = found.marks.get(item.cell_key(1, item.columns[0]))
    if marks:
        return next(marks[0].element.iterancestors(W + "tbl"), None)
    index = [b.name for b in layout(form).tables].index(item.key)
    return tables[index] if index < len(tables) else None


def action_rows(
    body: etree._Element, form: FormDefinition, found: Scan, budget: TextBudget, notes: list[Note]
) -> dict[str, str]:
    """Every row of every action table by position, including rows the auditor added; a
    table nested in a cell is part of that cell's text, never rows of its own."""
    values: dict[str, str] = {}
    tables = body.findall(W + "tbl")
    marks = set(_bookmark_keys(form))
    for item in form.tables():
        table = _table_of(found, tables, form, item)
        if table is None:
            continue
        rows = table_rows(table, MAX_ROWS + 2)[1:]  # row 0 is the column headings
        if len(rows) > MAX_ROWS:
            raise Rejected(
                IssueCode.field_too_long,
                f"over {MAX_ROWS} rows",
                f"{MAX_ROWS} rows",
                field=item.key,
            )
        for number, row in enumerate(rows, start=1):
            for column, cell in zip(item.columns, row.findall(W + "tc"), strict=False):
                key = item.cell_key(number, column)
                seen = found.cells.get(cell)
                if seen is not None and seen.plain:
                    values[key] = budget.take(key, seen.value)
                    continue
                reading = read_cell(cell, {}, Boxes(None, marks), first=key)[key]
                values[key] = budget.take(key, reading.text)
                if reading.typed:
                    notes.append(Note(IssueCode.typed_outside, key, _short(reading.typed)))
    return values
