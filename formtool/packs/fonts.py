"""Fonts for the packs: every name prints, in every script a font on this machine covers.

DejaVu Sans (regular and bold, shipped inside matplotlib: `dejavu_file`) draws Latin, Greek,
Cyrillic, Vietnamese, Hebrew and Arabic; a system CJK font, when fontconfig or a usual path has
one, draws what DejaVu lacks. Word packs name DejaVu Sans too, and carry it cut down to their
text (`dejavu_subset`). `markup()` turns text into reportlab paragraph markup with one
`<font>` run per font. A character no font covers is drawn as MARKER (U+FFFD, "�": a diamond
with a question mark, never an empty box) and `unprintable()` reports it, so callers can warn.

Arabic and Hebrew are laid out here, as reportlab cannot without rlbidi: each right-to-left
span is put in visual order (in pieces that each fit a line, so a wrapped span still reads
right to left, line after line), and Arabic letters are drawn joined, with DejaVu's
presentation-form glyphs (initial, medial, final, lam-alef), vowel marks on their letters.
The PDF's ToUnicode maps name the letters those glyphs stand for, so text copied or extracted
from the PDF is the text that was written (pypdf, which puts right-to-left runs back in logical
order, gives it back exactly; it may move a space or bracket next to the span).
"""

from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import SUBSETN, TTFError, TTFont, makeToUnicodeCMap

REGULAR, BOLD, FALLBACK = "FormtoolSans", "FormtoolSans-Bold", "FormtoolFallback"
MARKER = "\ufffd"
LAM, LAM_SLOT = "\u0644", "\u2060"  # in a lam-alef, the lam draws as a zero-width glyph
# TrueType outlines only: reportlab cannot embed PostScript (CFF) outlines, so Noto Sans CJK
# (fonts-noto-cjk) is skipped when fontconfig offers it; Debian's fonts-droid-fallback and
# fonts-wqy-zenhei work.
FALLBACK_PATHS = (
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
MIRRORED = dict(zip("()[]{}<>«»", ")(][}{><»«", strict=True))
_FORMS = {"<isolated>": "isol", "<final>": "fina", "<initial>": "init", "<medial>": "medi"}
_DIGIT = re.compile(r"[0-9\u0660-\u0669\u06f0-\u06f9]+(?:[.,:/][0-9\u0660-\u0669\u06f0-\u06f9]+)*")


def dejavu_file(bold: bool = False) -> Path:
    """The DejaVu Sans font file (regular or bold) that the packs embed.

    Why matplotlib's: it ships DejaVu Sans in its data folder, so every install of formtool has
    the font whatever the system's fonts are. That folder's layout is not matplotlib's public
    API, so this is the one place that knows it; tests/test_fences.py fails, naming the cause,
    if a matplotlib release stops shipping the files there.
    """
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path(), "fonts", "ttf", name)
    if not path.is_file():
        raise FileNotFoundError(
            f"matplotlib {matplotlib.__version__} does not ship {name} in {path.parent}, "
            "where formtool takes the fonts its packs embed from."
        )
    return path


@functools.cache
def register() -> None:
    """Register DejaVu Sans (and bold) with reportlab as one family; safe to call often."""
    pdfmetrics.registerFont(LogicalTTFont(REGULAR, str(dejavu_file(False))))
    pdfmetrics.registerFont(LogicalTTFont(BOLD, str(dejavu_file(True))))
    for italic in (0, 1):
        addMapping(REGULAR, 0, italic, REGULAR)
        addMapping(REGULAR, 1, italic, BOLD)


#: What every cut-down font keeps besides the text it is cut for: printable ASCII, Latin-1 and
#: the punctuation packs print (dashes, curly quotes, bullets, the euro), so a reader can still
#: type ordinary text into a Word pack and most packs share one cut (each took ~0.2 s).
KEEP = (
    "".join(map(chr, (*range(0x20, 0x7F), *range(0xA0, 0x100))))
    + "\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026\u2039\u203a\u20ac\u2122"
)


@functools.cache
def _dejavu_bytes(bold: bool) -> bytes:
    return dejavu_file(bold).read_bytes()


def dejavu_subset(bold: bool, text: str) -> bytes:
    """DejaVu Sans (regular or bold) cut down to the glyphs `text` and KEEP draw, with the
    rules that join Arabic letters, as TrueType bytes to embed in a Word file."""
    return _cut(bold, "".join(sorted(set(text) - set(KEEP))))


@functools.lru_cache(maxsize=32)
def _cut(bold: bool, extra: str) -> bytes:
    """The cut for KEEP and `extra` (remembered: most packs need nothing beyond KEEP, or the
    same few letters)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont as FontFile

    options = subset.Options()
    options.layout_features = ["*"]  # Arabic joining, ligatures, marks
    options.name_IDs = options.name_languages = ["*"]  # the names Word and LibreOffice match
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]  # FontForge's time stamps
    cutter = subset.Subsetter(options)
    cutter.populate(text=KEEP + extra)
    font = FontFile(io.BytesIO(_dejavu_bytes(bold)))
    cutter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _alone(name: str) -> None:
    """Map `name` to itself bold or not, so a <font> run inside bold text keeps its font."""
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(name, bold, italic, name)


@functools.cache
def _charset(font_name: str) -> frozenset[int]:
    register()
    return frozenset(pdfmetrics.getFont(font_name).face.charToGlyph)


def _system_fallbacks() -> list[str]:
    found: list[str] = []
    if shutil.which("fc-list"):
        listed = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False
        ).stdout
        found = sorted(line.split(":")[0].strip() for line in listed.splitlines() if line)
    return [p for p in (*FALLBACK_PATHS, *found) if Path(p).is_file()]


@functools.cache
def fallback() -> str | None:
    """The path of the CJK font registered as FALLBACK, or None when the system has none."""
    for path in _system_fallbacks():
        try:
            pdfmetrics.registerFont(TTFont(FALLBACK, path))
            _alone(FALLBACK)
        except (TTFError, OSError):
            continue  # PostScript-outline or broken font: try the next
        return path
    return None


def _ignorable(char: str) -> bool:
    """Invisible format and control characters: dropped, never reported."""
    return unicodedata.category(char) in ("Cc", "Cf") or "\ufe00" <= char <= "\ufe0f"


def _font_for(char: str) -> str | None:
    """The font that draws `char`: "" for DejaVu (bold covers what regular does, but for
    private-use glyphs), FALLBACK, or None for none."""
    if ord(char) in _charset(REGULAR):
        return ""
    if fallback() is not None and ord(char) in _charset(FALLBACK):
        return FALLBACK
    return None


def measure(text: str, bold: bool, size: float) -> tuple[float, float]:
    """(longest word, longest line) of `text` in points, in DejaVu at `size`."""
    register()
    font = BOLD if bold else REGULAR
    words = max((pdfmetrics.stringWidth(w, font, size) for w in text.split()), default=0.0)
    lines = max((pdfmetrics.stringWidth(ln, font, size) for ln in text.split("\n")), default=0.0)
    return words, lines


def unprintable(text: str) -> str:
    """The characters of `text` that no available font can draw ("" if none)."""
    text = unicodedata.normalize("NFC", text or "")
    missing = (c for c in text if not _ignorable(c) and c not in "\n\t")
    return "".join(dict.fromkeys(c for c in missing if _font_for(c) is None))


# --- Arabic joining -------------------------------------------------------------------------


@functools.cache
def _arabic() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Presentation forms that both DejaVu faces draw: {letter: {form: glyph char}}, and the
    lam-alef ligatures {alef: {"isol"/"fina": glyph char}}, read from Unicode's decompositions."""
    have = _charset(REGULAR) & _charset(BOLD)
    forms: dict[str, dict[str, str]] = {}
    ligatures: dict[str, dict[str, str]] = {}
    for code in (*range(0xFB50, 0xFE00), *range(0xFE70, 0xFF00)):
        parts = unicodedata.decomposition(chr(code)).split()
        if code not in have or not parts or parts[0] not in _FORMS:
            continue
        chars = [chr(int(p, 16)) for p in parts[1:]]
        if len(chars) == 1:
            forms.setdefault(chars[0], {})[_FORMS[parts[0]]] = chr(code)
        elif len(chars) == 2 and chars[0] == LAM:
            ligatures.setdefault(chars[1], {})[_FORMS[parts[0]]] = chr(code)
    return forms, ligatures


@functools.cache
def _logical() -> dict[int, str]:
    """What each drawn stand-in stands for, for the PDF's ToUnicode maps: a presentation form
    for its letter, a lam-alef ligature for its alef, and LAM_SLOT for the lam it absorbed."""
    forms, ligatures = _arabic()
    table = {ord(g): letter for letter, f in forms.items() for g in f.values()}
    table |= {ord(g): alef for alef, f in ligatures.items() for g in f.values()}
    return table | {ord(LAM_SLOT): LAM}


def _joining(char: str) -> str:
    """Unicode joining type: D(ual), R(ight), C(ausing), T(ransparent) or U(njoined)."""
    forms = _arabic()[0].get(char, {})
    if char in "\u0640\u200d":
        return "C"
    if unicodedata.category(char) in ("Mn", "Me", "Cf") and char != "\u200c":
        return "T"
    if "init" in forms or "medi" in forms:
        return "D"
    return "R" if "fina" in forms else "U"


def _shape(word: str) -> list[str]:
    """The glyph chars that draw a logical-order Arabic word joined (same length as `word`)."""
    forms, ligatures = _arabic()
    kinds = [_joining(c) for c in word]
    solid = [i for i, k in enumerate(kinds) if k != "T"]
    out = list(word)
    for n, i in enumerate(solid):
        if out[i] != word[i]:
            continue  # the alef of a lam-alef, already drawn
        before = n > 0 and kinds[solid[n - 1]] in "DC" and kinds[i] in "DRC"
        after = n + 1 < len(solid) and kinds[solid[n + 1]] in "DRC" and kinds[i] in "DC"
        if word[i] == LAM and after and word[solid[n + 1]] in ligatures:
            alef = solid[n + 1]
            out[i] = LAM_SLOT  # the lam draws nothing: the alef draws the ligature
            out[alef] = ligatures[word[alef]]["fina" if before else "isol"]
            continue
        form = {(1, 1): "medi", (1, 0): "fina", (0, 1): "init"}.get((before, after), "isol")
        out[i] = forms.get(word[i], {}).get(form, word[i])
    return out


class LogicalTTFont(TTFont):
    """A TTFont whose ToUnicode maps name the letters its shaped glyphs stand for."""

    def addObjects(self, doc: Any) -> None:
        subsets = [list(s) for s in self.state[doc].subsets] if doc in self.state else []
        super().addObjects(doc)
        face = self.face
        for n, subset in enumerate(subsets):
            base = (SUBSETN(n) + b"+" + face.name + face.subfontNameX).decode("pdfdoc")
            cmap = doc.idToObject.get("toUnicodeCMap:" + base)
            if cmap is not None:
                cmap.content = _to_unicode(makeToUnicodeCMap(base, subset), subset)


def _to_unicode(cmap: str, subset: list[int]) -> str:
    """reportlab's ToUnicode map with each code naming the text it stands for, in UTF-16
    (reportlab writes characters beyond U+FFFF, such as emoji, as invalid five-digit hex)."""
    logical = _logical()

    def entry(match: re.Match[str]) -> str:
        code = subset[int(match.group(1), 16)]
        if code == 0:  # .notdef: no text at all (PDF/UA: never mapped to U+0000)
            return ""
        text = logical.get(code, chr(code)).encode("utf-16-be").hex().upper()
        return f"<{match.group(1)}> <{text}>\n"

    def block(match: re.Match[str]) -> str:
        entries = re.sub(r"^<([0-9A-F]{2})> <[0-9A-F]+>\n", entry, match.group(2), flags=re.M)
        return f"{entries.count(chr(10))} beginbfchar\n{entries}endbfchar"

    # Only the bfchar block: the codespacerange line above it looks alike (<00> <04>).
    return re.sub(r"^(\d+) beginbfchar\n(.*?)^endbfchar", block, cmap, flags=re.M | re.S)


# --- bidi: right-to-left spans in visual order ----------------------------------------------


def _strong(char: str) -> str:
    kind = unicodedata.bidirectional(char)
    return "R" if kind in ("R", "AL") else "L" if kind == "L" else ""


def _rtl_spans(text: str) -> Iterator[tuple[bool, str]]:
    """(is_rtl, piece) in logical order: an RTL span runs from one strong right-to-left
    character to the last before the next strong left-to-right one."""
    start, end = 0, None
    for i, char in enumerate(text):
        kind = _strong(char)
        if kind == "R":
            if end is None:
                yield False, text[start:i]
                start = i
            end = i + 1
        elif kind == "L" and end is not None:
            yield True, text[start:end]
            start, end = end, None
    if end is not None:
        yield True, text[start:end]
        yield False, text[end:]
    else:
        yield False, text[start:]


def _visual(span: str) -> str:
    """A right-to-left span in drawing (left-to-right) order: Arabic letters joined, numbers
    in their own order, brackets mirrored. A vowel mark comes just before its letter, which is
    where DejaVu's right-to-left marks are drawn from, so it sits on the letter."""
    units: list[str] = []
    for word in span.split(" "):
        pos = 0
        for match in _DIGIT.finditer(word):
            units += _shape(word[pos : match.start()])
            units.append(match.group())
            pos = match.end()
        units += [*_shape(word[pos:]), "\u00a0"]  # no line break inside the span
    return "".join(MIRRORED.get(u, u) for u in reversed(units[:-1]))


def _chunks(span: str, width: float | None, size: float, bold: bool) -> list[str]:
    """Split a long RTL span at spaces into pieces, each as wide as a line can hold, so no two
    pieces share a line (their order on it would read backwards)."""
    if width is None:
        return [span]
    chunks: list[str] = []
    for word in span.split(" "):
        joined = f"{chunks[-1]} {word}" if chunks else word
        drawn = _visual(joined)
        if chunks and pdfmetrics.stringWidth(drawn, BOLD if bold else REGULAR, size) < width - 1:
            chunks[-1] = joined
        else:
            chunks.append(word)
    return chunks


# --- markup ---------------------------------------------------------------------------------


#: Text all in printable ASCII (and line breaks): DejaVu draws every character, left to right.
_PLAIN = re.compile("[\x20-\x7e\n]*")


def markup(text: str, bold: bool = False, width: float | None = None, size: float = 9) -> str:
    """reportlab paragraph markup for plain `text`: escaped, line breaks kept, each run in a
    font that draws it, right-to-left spans in visual order (pieces no wider than `width`)."""
    register()
    text = (text or "").replace("\t", " ").replace("\r\n", "\n")
    if _PLAIN.fullmatch(text):  # most of a pack: nothing to shape, reorder or drop
        return escape(text).replace("\n", "<br/>")
    text = unicodedata.normalize("NFC", text)
    text = "".join(c for c in text if c in "\n\u200c\u200d" or not _ignorable(c))
    return "<br/>".join(_runs(_line(line, width, size, bold)) for line in text.split("\n"))


def _line(line: str, width: float | None, size: float, bold: bool) -> str:
    """One line in drawing order: right-to-left spans reversed, in pieces that fit `width`."""
    pieces = []
    for rtl, piece in _rtl_spans(line):
        pieces += [
            " ".join(_visual(c) for c in _chunks(piece, width, size, bold)) if rtl else piece
        ]
    return "".join(pieces)


def _runs(line: str) -> str:
    """Markup for a line: escaped, consecutive chars of one font share a <font> run."""
    out: list[str] = []
    current, run = "", ""
    for char in line:
        found = _font_for(char)
        font, shown = ("", MARKER) if found is None else (found, escape(char))
        if font != current:
            out.append(f'<font name="{current}">{run}</font>' if current else run)
            current, run = font, ""
        run += shown
    out.append(f'<font name="{current}">{run}</font>' if current else run)
    return "".join(out)
