"""What a scan of a Word body finds (docx.py's walk, or plainscan.py's fast path): each key's
places (the bookmarks named for it and the content controls tagged with it, with their
cells) and what each table cell shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from lxml import etree

from formtool.read.limits import TextBudget
from formtool.read.wordtext import Reading


@dataclass(eq=False)
class Anchor:
    """One place that names a key: a bookmark named for it or a content control tagged with
    it, and the cell it is in. Its text is gathered as the body is walked for a place
    outside any table, and again from its cell for a place that must be compared."""

    key: str
    element: etree._Element
    cell: etree._Element | None
    reading: bool = True
    covered: bool = False  # a control in its key's bookmark: the same place, not another
    parts: list[str] | None = None  # made when the first piece comes: most places get none
    size: int = 0

    def add(self, piece: str, budget: TextBudget) -> None:
        budget.take(self.key, piece)  # the whole file's cap, counted per place
        room = budget.field_limit + 1 - self.size
        self.size += len(piece)
        if room > 0:
            if self.parts is None:
                self.parts = []
            self.parts.append(piece[:room])

    def text(self, budget: TextBudget) -> str:
        return budget.take(self.key, "".join(self.parts or ()).strip())


@dataclass(eq=False)
class CellText:
    """What one table cell shows: gathered piece by piece by the walk (`text`), or known at
    once by the fast path (`shown`); `plain` when that is only boxes (nothing typed outside
    them, no table nested in it), so it needs no second look."""

    text: Reading | None = None
    shown: str = ""
    typed: bool = False
    nested: bool = False
    late: bool = False  # kept only from a place on (over MAX_CELLS): its start is missing

    @property
    def plain(self) -> bool:
        return not (self.typed or self.nested or self.late)

    @property
    def value(self) -> str:
        return self.text.text if self.text is not None else self.shown


@dataclass
class Scan:
    """What one walk over the body found: the places of each key, each cell's text and the
    tracked changes."""

    marks: dict[str, list[Anchor]] = field(default_factory=lambda: defaultdict(list))
    tags: dict[str, list[Anchor]] = field(default_factory=lambda: defaultdict(list))
    cells: dict[etree._Element, CellText] = field(default_factory=dict)
    changes: Counter[str] = field(default_factory=Counter)

    def anchor(self, key: str) -> Anchor | None:
        for places in (self.marks.get(key), self.tags.get(key)):
            if places:
                return places[0]
        return None
