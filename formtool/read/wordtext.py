"""The text Word shows for a piece of a Word document, in document order.

Word does not show everything a .docx holds, and shows some things the XML only implies:
- tracked changes are read as if accepted: insertions and move destinations in, deletions and
  move sources (`w:moveFrom`, which holds ordinary `w:t`) out; a deleted paragraph mark joins
  its paragraph to the next; a deleted table row is gone;
- `mc:AlternateContent` (Word 2010+ text boxes, shapes) holds the same text twice: only the
  branch Word reads counts (the first `mc:Choice` it understands, else `mc:Fallback`);
- a content control showing its placeholder (`w:showingPlcHdr`) is empty, whatever its
  placeholder says; a date picker whose text is not a date formtool reads ("November 26",
  "20/11/2026 09:30") stands for the date Word understood from it (`w:fullDate`);
- `w:sym` in the common symbol fonts, and text in a run set in one, is the Unicode character
  the font draws (Wingdings F0FC, or ü, is ✓); Word's non-breaking hyphen is U+2011 and an
  optional (soft) hyphen is nothing.

`walk` yields these as events over one element, so callers can follow bookmarks, content
controls and cells while reading; every walk visits each element at most once. `read_cell`
splits what a table cell shows between the answers whose boxes are in it, and tells what was
typed outside a box.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from lxml import etree

from formtool.definitions.namespaces import MC_NS, W
from formtool.definitions.scales import parse_date
from formtool.read.limits import MAX_FIELD_CHARS

MC = f"{{{MC_NS}}}"
START, END, TEXT = "start", "end", "text"
Event = tuple[str, etree._Element, str]  # (kind, element, text of a TEXT event)

_CHARS = {W + "tab": "\t", W + "ptab": "\t", W + "br": "\n", W + "cr": "\n"}
_CHARS[W + "noBreakHyphen"] = "\u2011"  # Word's non-breaking hyphen; softHyphen shows nothing
_HIDING = (W + "del", W + "moveFrom")  # content gone once the changes are accepted
_BRANCHES = (MC + "Choice", MC + "Fallback")
_T, _P, _SDT, _SYM, _TR, _TC = (W + t for t in ("t", "p", "sdt", "sym", "tr", "tc"))
_DEL, _DATE, _PLACEHOLDER = W + "del", W + "date", W + "showingPlcHdr"
_RPR, _PPR, _TRPR, _SDTPR = (W + t for t in ("rPr", "pPr", "trPr", "sdtPr"))
_MARK_START, _MARK_END = W + "bookmarkStart", W + "bookmarkEnd"
_FONTS, _R = W + "rFonts", W + "r"
_WRAPPERS = (_SDT, W + "sdtContent", W + "customXml")
_TAGS = (
    W + "p",
    W + "t",
    W + "sym",
    *_CHARS,
    W + "bookmarkStart",
    W + "bookmarkEnd",
    W + "sdt",
    W + "tc",
    W + "tr",
    W + "ins",
    W + "moveTo",
    W + "moveFromRangeStart",
    *_HIDING,
    MC + "Choice",
    MC + "Fallback",
)
#: Namespaces of the extensions Word 2010 and later understand in an mc:Choice's Requires.
_UNDERSTOOD = ("http://schemas.microsoft.com/office/", "http://schemas.openxmlformats.org/")


def _table(pairs: str) -> dict[int, str]:
    """'FC✓ FB✗' -> {0xFC: '✓', 0xFB: '✗'}: a symbol font's codes and what they draw."""
    return {int(item[:2], 16): item[2:] for item in pairs.split()}


_LATIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_GREEK = "ΑΒΧΔΕΦΓΗΙϑΚΛΜΝΟΠΘΡΣΤΥςΩΞΨΖαβχδεφγηιϕκλμνοπθρστυϖωξψζ"  # the Symbol font
#: What the symbol fonts auditors insert draw (Insert > Symbol writes w:sym with the font's
#: code, often offset by F000): ticks, crosses, check boxes, bullets, arrows, common marks.
SYMBOL_FONTS: dict[str, dict[int, str]] = {
    "wingdings": _table(
        "21✏ 22✂ 23✁ 28☎ 2A✉ 36⌛ 3F✍ 41✌ 43👍 44👎 45☜ 46☞ 47☝ 48☟ 4A☺ 4B😐 4C☹ 4E☠ "
        "6C● 6D❍ 6E■ 6F□ 71❑ 72❒ 73⬧ 74⧫ 75◆ 76❖ 77⬥ 78⌧ 7B❀ 7C✿ 7D❝ 7E❞ 9E· 9F• A1○ "
        "A7▪ A8☐ AB★ D5⌫ D6⌦ D8➢ DF← E0→ E1↑ E2↓ E3↖ E4↗ E5↙ E6↘ E8➔ EF⇦ F0⇨ F1⇧ F2⇩ "
        "F3⬄ F9▭ FA▫ FB✗ FC✓ FD☒ FE☑"
    ),
    "wingdings2": _table(
        "4F✗ 50✓ 51✘ 52☑ 53⮽ 54☒ 55⮾ 56⮿ 69⓪ 6A① 6B② 6C③ 6D④ 6E⑤ 6F⑥ 70⑦ 71⑧ 72⑨ 73⑩ "
        "95⋅ 97⦁ 98● 99○ 9D⊙ 9E⦿ A1◾ A2■ A3□ A8▣ AF◇ B8◊ F8※"
    ),
    "webdings": _table("33◀ 34▶ 35▲ 36▼ 61✔ 72✖"),
    "symbol": {code: chr(code) for code in range(0x20, 0x7F)}  # digits, punctuation
    | {ord(latin): greek for latin, greek in zip(_LATIN, _GREEK, strict=True)}
    | _table(
        "22∀ 24∃ 27∋ 2A∗ 2D− 40≅ 5C∴ 5E⊥ 7E∼ A2′ A3≤ A5∞ A7♣ A8♦ A9♥ AA♠ AB↔ AC← AD↑ AE→ "  # noqa: RUF001
        "AF↓ B0° B1± B2″ B3≥ B4× B5∝ B6∂ B7• B8÷ B9≠ BA≡ BB≈ BC… BF↵ C5⊕ C6∅ C7∩ C8∪ D1∇ "  # noqa: RUF001
        "D5∏ D6√ D7⋅ D8¬ D9∧ DA∨ DB⇔ DC⇐ DD⇑ DE⇒ DF⇓ E0◊ E5∑ F2∫"  # noqa: RUF001
    ),
}


def _font_table(font: str) -> dict[int, str] | None:
    return SYMBOL_FONTS.get("".join(font.lower().split()))


def _drawn(table: dict[int, str], code: int) -> str:
    """What a symbol font draws for a code (its own, or offset by F000 as Word stores it);
    a code it has no mapping for stays as Word stores it (private use)."""
    low = code - 0xF000 if 0xF000 <= code <= 0xF0FF else code
    if low in table:
        return table[low]
    return chr(0xF000 + low) if 0 <= low <= 0xFF else chr(code)


def symbol(sym: etree._Element) -> str:
    """The character a w:sym draws: mapped for the symbol fonts, else the code itself."""
    try:
        code = int(sym.get(W + "char", ""), 16)
    except ValueError:
        return ""
    if not 0 < code < 0x110000 or 0xD800 <= code < 0xE000:
        return ""
    table = _font_table(sym.get(W + "font", ""))
    return chr(code) if table is None else _drawn(table, code)


def symbol_text(text: str, font: str) -> str:
    """Text typed in a run whose font is a symbol font (as LibreOffice saves an inserted
    symbol, or text typed in Wingdings): the characters the font draws."""
    table = _font_table(font)
    return text if table is None else "".join(_drawn(table, ord(c)) for c in text)


def _understood(choice: etree._Element) -> bool:
    prefixes = choice.get("Requires", "").split()
    return bool(prefixes) and all(
        (choice.nsmap.get(p) or "").startswith(_UNDERSTOOD) for p in prefixes
    )


def _branch(alternate: etree._Element | None) -> etree._Element | None:
    """The branch of an mc:AlternateContent that Word reads."""
    if alternate is None:
        return None
    choices = alternate.iterchildren(MC + "Choice")
    found = next((c for c in choices if _understood(c)), None)
    return found if found is not None else alternate.find(MC + "Fallback")


def child(element: etree._Element | None, tag: str) -> etree._Element | None:
    """The first child with this tag (cheaper than find() in the loops below)."""
    for found in element if element is not None else ():
        if found.tag == tag:
            return found
    return None


def control_prop(sdt: etree._Element, tag: str) -> etree._Element | None:
    """One of a content control's properties (a w:sdtPr child)."""
    return child(child(sdt, _SDTPR), tag)


def _full_date(sdt: etree._Element) -> str:
    """The date Word understood for a date picker (w:fullDate), ISO; "" if none."""
    date = control_prop(sdt, _DATE)
    text = (date.get(W + "fullDate", "") if date is not None else "")[:10]
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return ""


def _date_text(sdt: etree._Element) -> str:
    """For a date picker whose text is not a date formtool reads ("November 26", "20/11/2026
    09:30"), the date Word understood from it (ISO); else "" and the text is read as shown."""
    full = _full_date(sdt)
    content = child(sdt, W + "sdtContent")
    shown = shown_text(content, 100, dates=False) if full and content is not None else ""
    return full if shown and parse_date(shown) is None else ""


@dataclass(frozen=True)
class _Marked:
    """The few elements a walk treats specially, found in one C-level pass before it:
    paragraphs whose mark was deleted, deleted rows, controls showing their placeholder,
    date pickers carrying the date Word understood and runs set in a symbol font."""

    joined: frozenset[etree._Element]
    rows: frozenset[etree._Element]
    placeholders: frozenset[etree._Element]
    dates: frozenset[etree._Element]
    fonts: dict[etree._Element, str]  # runs set in a symbol font -> the font

    @classmethod
    def of(cls, root: etree._Element) -> _Marked:
        found: dict[str, set[etree._Element]] = defaultdict(set)
        fonts: dict[etree._Element, str] = {}
        for el in root.iter(*_HIDING, _DATE, _PLACEHOLDER, _FONTS):
            props = el.getparent()
            owner = props.getparent() if props is not None else None
            if props is None or owner is None:
                continue
            if el.tag == _FONTS:
                font = el.get(W + "ascii") or el.get(W + "hAnsi") or ""
                if owner.tag == _R and _font_table(font) is not None:
                    fonts[owner] = font
            elif props.tag == _RPR and owner.tag == _PPR and el.tag in _HIDING:
                paragraph = owner.getparent()
                if paragraph is not None:
                    found["joined"].add(paragraph)
            elif props.tag == _TRPR and el.tag == _DEL:
                found["rows"].add(owner)
            elif props.tag == _SDTPR and el.tag == _PLACEHOLDER:
                found["placeholders"].add(owner)
            elif props.tag == _SDTPR and el.tag == _DATE and el.get(W + "fullDate"):
                found["dates"].add(owner)
        return cls(
            frozenset(found["joined"]),
            frozenset(found["rows"]),
            frozenset(found["placeholders"]),
            frozenset(found["dates"]),
            fonts,
        )


def row_deleted(row: etree._Element) -> bool:
    return child(child(row, _TRPR), _DEL) is not None


def walk(
    root: etree._Element, skip: Collection[etree._Element] = (), dates: bool = True
) -> Iterator[Event]:
    """START and END of paragraphs, cells, rows, content controls, bookmarks and tracked
    changes, and the TEXT Word shows between them (a paragraph starts with "\\n").

    Cells in `skip` (read on their own) are not entered. A deleted table row is not entered
    either: it shows as the START and END of its w:del. `dates=False` reads date pickers'
    own text (to decide whether that text is a date).
    """
    walker = etree.iterwalk(root, events=(START, END), tag=_TAGS)
    marked = _Marked.of(root)
    controls: list[tuple[bool, bool]] = []  # per open control or change: (hides, a date)
    hidden = dating = 0
    joined = False  # the previous paragraph's mark was deleted: no line break before this one
    chosen: dict[etree._Element, etree._Element | None] = {}
    for event, el in walker:
        tag = el.tag
        if tag == _T:
            if event == START and not hidden and el.text:
                font = marked.fonts.get(el.getparent()) if marked.fonts else None
                yield TEXT, el, el.text if font is None else symbol_text(el.text, font)
        elif tag == _P:
            yield event, el, ""
            if event == END:
                joined = el in marked.joined
            elif not joined and not hidden:
                yield TEXT, el, "\n"
            else:
                joined = False
        elif tag in _CHARS:
            if event == START and not hidden:
                yield TEXT, el, _CHARS[tag]
        elif tag == _SDT or tag in _HIDING:
            if event == START:
                date = tag == _SDT and el in marked.dates
                hides = tag in _HIDING or el in marked.placeholders
                replaced = ""
                if date and dates and not hides and not hidden and not dating:
                    replaced = _date_text(el)
                    hides = replaced != ""
                controls.append((hides, date))
                hidden += hides
                dating += date
                yield START, el, ""
                if replaced:
                    yield TEXT, el, replaced
            else:
                hides, date = controls.pop() if controls else (False, False)
                hidden -= hides
                dating -= date
                yield END, el, ""
        elif tag == _SYM:
            text = symbol(el) if event == START and not hidden else ""
            if text:
                yield TEXT, el, text
        elif tag in _BRANCHES:
            parent = el.getparent()
            if parent is not None and parent not in chosen:
                chosen[parent] = _branch(parent)
            if event == START and (parent is None or chosen[parent] is not el):
                walker.skip_subtree()
        elif el in marked.rows or (tag == _TC and el is not root and el in skip):
            if event == START:
                walker.skip_subtree()
                mark = child(child(el, _TRPR), _DEL) if tag == _TR else None
                if mark is not None:
                    yield START, mark, ""
                    yield END, mark, ""
        else:
            yield event, el, ""


def shown_text(element: etree._Element, limit: int, dates: bool = True) -> str:
    """The text Word shows for an element (a newline between paragraphs), at most `limit`
    + 1 characters: the caller sees that it was cut."""
    parts: list[str] = []
    size = 0
    for kind, _, text in walk(element, dates=dates):
        if kind == TEXT:
            parts.append(text)
            size += len(text)
            if size > limit:
                break
    return "".join(parts).strip()[: limit + 1]


def tag_of(sdt: etree._Element) -> str:
    """A content control's w:tag ("" if none)."""
    tag = control_prop(sdt, W + "tag")
    return tag.get(W + "val", "") if tag is not None else ""


def _locked(sdt: etree._Element) -> bool:
    lock = control_prop(sdt, W + "lock")
    return lock is not None and lock.get(W + "val") == "sdtContentLocked"


class Boxes:
    """Whether a walk is inside an answer box (a control tagged with one of `tags`, any
    tagged control if None, or a bookmark named in `marks`), or in the form's own printed
    text (an untagged content-locked control: never part of an answer)."""

    def __init__(self, tags: Collection[str] | None, marks: Collection[str]) -> None:
        self.tags, self.marks = tags, marks
        self.inside = self.printed = 0
        self._roles: list[str] = []  # per open control: "box", "printed" or ""
        self._ranges: set[str] = set()  # ids of open bookmarks that are boxes

    def see(self, kind: str, el: etree._Element, name: str | None = None) -> None:
        """Follow one START or END event of a walk (`name`: a control's tag, if known)."""
        tag = el.tag
        if tag == _SDT:
            if kind == START:
                name = tag_of(el) if name is None else name
                box = bool(name) and (self.tags is None or name in self.tags)
                role = "box" if box else "printed" if _locked(el) else ""
                self._roles.append(role)
            else:
                role = self._roles.pop() if self._roles else ""
            step = 1 if kind == START else -1
            self.inside += step * (role == "box")
            self.printed += step * (role == "printed")
        elif kind == START and tag == _MARK_START and el.get(W + "name") in self.marks:
            self._ranges.add(el.get(W + "id", ""))
            self.inside += 1
        elif kind == START and tag == _MARK_END and el.get(W + "id", "") in self._ranges:
            self._ranges.discard(el.get(W + "id", ""))
            self.inside -= 1


@dataclass
class Reading:
    """The text of one answer in its cell, and the part typed outside its box."""

    parts: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    size: int = 0
    boxed: bool = False  # its own box (control or bookmark) was in the cell

    def add(self, piece: str, inside: bool, limit: int = MAX_FIELD_CHARS) -> None:
        room = limit + 1 - self.size  # keep one character over the cap: it shows the cut
        self.size += len(piece)
        if room > 0:
            self.parts.append(piece[:room])
            if not inside:
                self.outside.append(piece[:room])

    @property
    def text(self) -> str:
        return "".join(self.parts).strip()

    @property
    def typed(self) -> str:
        """What was typed outside the box, if the box was there."""
        return "".join(self.outside).strip() if self.boxed else ""


def read_cell(
    cell: etree._Element,
    starts: Mapping[etree._Element, str],
    boxes: Boxes,
    first: str | None = None,
    skip: Collection[etree._Element] = (),
) -> dict[str, Reading]:
    """What a cell shows, answer by answer. An answer's text starts at its element in
    `starts` (its bookmark, control or paragraph) and runs to the next one's; text before
    the first belongs to the first (or to `first`). Cells in `skip` are read on their own."""
    readings: dict[str, Reading] = {first: Reading()} if first is not None else {}
    current = first
    early: list[tuple[str, bool]] = []  # text before the first answer's start
    for kind, el, text in walk(cell, skip):
        if kind == TEXT:
            if boxes.printed:
                continue
            if current is None:
                early.append((text, boxes.inside > 0))
            else:
                readings[current].add(text, boxes.inside > 0)
            continue
        if kind == START and el in starts:
            current = starts[el]
            reading = readings.setdefault(current, Reading())
            for piece, boxed in early:
                reading.add(piece, boxed)
            early.clear()
        boxes.see(kind, el)
        if kind == START and boxes.inside and current is not None:
            readings[current].boxed = True
    return readings


def _blocks(element: etree._Element, tag: str) -> Iterator[etree._Element]:
    """Children with this tag, looking through the content controls and custom XML Word
    wraps rows and paragraphs in (never into nested tables)."""
    stack = list(reversed(element))
    while stack:
        el = stack.pop()
        if el.tag == tag:
            yield el
        elif el.tag in _WRAPPERS:
            stack.extend(reversed(el))


def table_rows(table: etree._Element, most: int) -> list[etree._Element]:
    """A table's own rows, not a nested table's, nor rows deleted as a tracked change; at
    most `most`."""
    rows: list[etree._Element] = []
    for row in _blocks(table, _TR):
        if len(rows) >= most:
            break
        if not row_deleted(row):
            rows.append(row)
    return rows


def cell_paragraphs(cell: etree._Element) -> list[etree._Element]:
    """A cell's own paragraphs, not a nested table's."""
    return list(_blocks(cell, _P))
