"""The document renderers: every name prints, long content flows, every page is numbered and
marked, the same input gives the same PDF, and the charts read in black and white."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2
import pytest
from docx import Document as WordDocument
from pypdf import PdfReader

from formtool.packs import charts, fonts, tagged_pdf
from formtool.packs import word as word_renderer
from formtool.packs.render import (
    TEXT_W,
    Document,
    Part,
    Table,
    column_fractions,
    to_docx,
    to_pdf,
    to_tagged_pdf,
    unprintable,
)
from formtool.packs.tagged_pdf import merge

from conftest import convert, missing

OUT = Path(__file__).resolve().parents[1] / "outputs" / "test-render"
NAMES = (
    "Żółć Ślęzak",
    "Nguyễn Thị Minh Khai",
    "Αλέξανδρος Παπαδόπουλος",
    "Ірина Шевченко",
    "فاطمة الزهراء",
)
LONG = " ".join(f"word{i}" for i in range(3000))
LINES = "\n".join(f"line {i}" for i in range(200))
DOMAINS = (
    "KSS 1: The role of child and family social workers",
    "KSS 2: Child development",
    "KSS 3: Adult mental ill health, substance misuse, domestic violence, physical ill "
    "health and disability",
)


def document(draft: bool = False, parts: list[Part] | None = None) -> Document:
    return Document(
        "Case File Audit Tool",
        "Completed audit CSC-A1-202611 for the case record",
        parts
        if parts is not None
        else [
            Part(
                "Summary",
                paragraphs=[f"The child, {NAMES[4]}, was seen alone by {NAMES[1]}."],
                tables=[
                    Table(("Detail", "Value"), tuple((f"Name {i}", n) for i, n in enumerate(NAMES)))
                ],
            ),
            Part(
                "Domains",
                tables=[
                    Table(
                        ("Domain", "Met", "Partially met", "Not met"),
                        tuple((d, "3", "1", "0") for d in DOMAINS),
                        numeric=(1, 2, 3),
                    )
                ],
            ),
            Part(
                "Section 1",
                bullets=["Strength: the plan is clear."],
                tables=[
                    Table(
                        ("Question", "Answer", "Evidence and comments"),
                        (
                            ("1. Is the child's voice evident?", "Yes", LONG),
                            ("2. Contacts", "No", LINES),
                        ),
                        (0.4, 0.14, 0.46),
                    )
                ],
            ),
        ],
        "Audit CSC-A1-202611 · Case File Audit Tool, version 1",
        "Royal Borough of Example",
        draft=draft,
    )


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return to_pdf(document())


@pytest.fixture(scope="module")
def draft_pdf() -> bytes:
    return to_pdf(document(draft=True))


def pages_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def same_letters(name: str, text: str) -> bool:
    """True when one line of `text` holds every letter of `name`, in whatever order. A PDF whose
    lines mix fonts (LibreOffice borrows a glyph another font lacks) gives pypdf its text font
    by font ("Nguy n Th  Minh Khaiễ ị"), though the page reads correctly."""
    wanted = Counter(unicodedata.normalize("NFC", name).replace(" ", ""))
    lines = unicodedata.normalize("NFC", text).splitlines()
    return any(not wanted - Counter(line) for line in lines)


def fonts_of(data: bytes) -> list[Any]:
    found = []
    for page in PdfReader(io.BytesIO(data)).pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            font = ref.get_object()
            found += [font, *(d.get_object() for d in font.get("/DescendantFonts", []))]
    return found


# --- every name prints ----------------------------------------------------------------------


def test_names_in_every_script_extract_as_written(pdf):
    text = "\n".join(pages_text(pdf))
    for name in NAMES:
        assert name in text
    assert f"was seen alone by {NAMES[1]}." in text  # in running text too


def test_every_font_in_the_pdf_is_embedded(pdf):
    assert_embedded(pdf)


def assert_embedded(data: bytes) -> None:
    found = fonts_of(data)
    assert found
    for font in found:
        if font.get("/Subtype") == "/Type0":
            continue  # its descendant font carries the descriptor
        descriptor: Any = font["/FontDescriptor"].get_object()
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), font["/BaseFont"]


def test_arabic_is_joined_and_right_to_left():
    # فاطمة: fa initial, alef final, tah initial, meem medial, teh marbuta final; drawn
    # left to right, so the last letter comes first.
    assert fonts.markup("فاطمة") == "\ufe94\ufee4\ufec3\ufe8e\ufed3"
    assert fonts.markup("سلام") == "\ufee1\ufefc\u2060\ufeb3"  # lam-alef ligature
    assert fonts.markup("a فاطمة الزهراء b").startswith("a \ufe80")  # one span, words swapped
    vowelled = "مُحَمَّد"  # vowel marks are drawn on their letters and extract in order
    assert vowelled in pages_text(to_pdf(document(parts=[Part(paragraphs=[vowelled])])))[0]


def test_long_right_to_left_text_wraps_line_by_line():
    words = " ".join(["فاطمة", "الزهراء", "مُحَمَّد", "عبد", "الله", "سلام", "שלום"] * 12)
    table = Table(("Name", "Comment"), (("x", words),), (0.7, 0.3))
    data = to_pdf(document(parts=[Part(paragraphs=[words], tables=[table])]))
    text = re.sub(r"\s+", " ", pages_text(data)[0])
    assert text.count(words) == 2  # each line reads right to left, the lines top to bottom


def test_unprintable_reports_only_what_no_font_draws():
    assert unprintable("Żółć") == ""
    assert unprintable(" ".join(NAMES)) == ""
    assert unprintable("Ann\U000f0001 \U0010fffd\U000f0001") == "\U000f0001\U0010fffd"
    text = "\n".join(pages_text(to_pdf(document(parts=[Part(paragraphs=["Ann\U000f0001"])]))))
    assert f"Ann{fonts.MARKER}" in text  # a visible marker, not an empty box
    if not unprintable("\U0001f600"):  # beyond U+FFFF: reportlab's ToUnicode entry is mended
        assert (
            "\U0001f600" in pages_text(to_pdf(document(parts=[Part(paragraphs=["\U0001f600"])])))[0]
        )


def test_cjk_names_use_the_system_fallback_font():
    if fonts.fallback() is None:
        missing("no CJK font on this system (fonts-droid-fallback or fonts-wqy-zenhei)")
    data = to_pdf(document(parts=[Part(paragraphs=["王小明 and 李華"])]))
    assert "王小明 and 李華" in pages_text(data)[0]
    assert unprintable("王小明") == ""
    names = {str(f["/BaseFont"]).split("+")[-1] for f in fonts_of(data)}
    assert any(not n.startswith("DejaVu") for n in names), names  # the fallback, embedded
    assert_embedded(data)


# --- long content flows ---------------------------------------------------------------------


def test_long_cells_flow_across_pages(pdf):
    text = pages_text(pdf)
    assert len(text) >= 4
    assert "word2999" in "".join(text) and "line 199" in "".join(text)
    assert all("Evidence and comments" in t for t in text[2:])  # header row repeated


def test_long_cells_flow_in_word():
    data = to_docx(document())
    word = WordDocument(io.BytesIO(data))
    cells = [c.text for t in word.tables for row in t.rows for c in row.cells]
    assert LONG in cells and LINES in cells
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    long_rows = [r for r in re.findall(r"<w:tr[ >].*?</w:tr>", xml, re.S) if "word2999" in r]
    assert long_rows and "cantSplit" not in long_rows[0]


def test_columns_sized_to_content():
    domains = Table(
        ("Domain", "Met", "Partially met", "Not met"),
        tuple((d, "3", "1", "0") for d in DOMAINS),
        numeric=(1, 2, 3),
    )
    widths = column_fractions(domains)
    assert widths[0] > 0.5 and all(w < 0.15 for w in widths[1:])
    longest = max(len(d) for d in DOMAINS)
    assert longest / (widths[0] * TEXT_W / 4.6) <= 2  # ~4.6 pt a character: two lines at most
    assert column_fractions(Table(("A", "B"), (), (3, 1))) == (0.75, 0.25)


def test_headings_stay_with_what_follows():
    for filler in range(37, 44):  # the heading falls at the foot of page 1, then page 2
        parts = [
            Part(paragraphs=[f"Filler {i}" for i in range(filler)]),
            Part("Kept heading", tables=[Table(("Question", "Answer"), (("First row", "Yes"),))]),
        ]
        pages = pages_text(to_pdf(document(parts=parts)))
        [page] = [t for t in pages if "Kept heading" in t]
        assert "First row" in page, filler


# --- every page numbered and marked ---------------------------------------------------------


def test_every_pdf_page_is_numbered_and_marked(pdf):
    text = pages_text(pdf)
    for number, page in enumerate(text, start=1):
        assert f"Page {number} of {len(text)}" in page
        assert page.count("OFFICIAL-SENSITIVE") == 2  # top and bottom
        assert "Royal Borough of Example" in page
        assert "DRAFT" not in page


def test_a_draft_says_draft_on_every_page(draft_pdf):
    text = pages_text(draft_pdf)
    assert all(page.count("DRAFT") >= 2 for page in text)  # watermark and header
    word = zipfile.ZipFile(io.BytesIO(to_docx(document(draft=True, parts=[]))))
    header = "".join(word.read(n).decode() for n in word.namelist() if "header" in n)
    assert "DRAFT" in header and 'w:color w:val="C00000"' in header


def test_word_has_header_rows_page_fields_and_marking():
    archive = zipfile.ZipFile(io.BytesIO(to_docx(document())))
    xml = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".xml")}
    assert xml["word/document.xml"].count("<w:tblHeader/>") == 3  # one per table
    footer = "".join(v for n, v in xml.items() if "footer" in n)
    assert " PAGE " in footer and " NUMPAGES " in footer
    header = "".join(v for n, v in xml.items() if "header" in n)
    assert "OFFICIAL-SENSITIVE" in header and "Royal Borough of Example" in header
    assert 'w:ascii="DejaVu Sans"' in xml["word/styles.xml"]
    assert 'w:cs="DejaVu Sans"' in xml["word/styles.xml"]
    assert 'w:eastAsia="Microsoft YaHei"' in xml["word/styles.xml"]


def embedded_fonts(data: bytes) -> dict[str, Any]:
    """The fonts a Word file carries, {"embedRegular": font, ...}, unobfuscated as ECMA-376
    says (the key's bytes in reverse order, XORed over the first 32 bytes)."""
    from fontTools.ttLib import TTFont

    archive = zipfile.ZipFile(io.BytesIO(data))
    table = archive.read("word/fontTable.xml").decode()
    [entry] = re.findall(r'<w:font w:name="DejaVu Sans">.*?</w:font>', table)
    rels = archive.read("word/_rels/fontTable.xml.rels").decode()
    found = {}
    for tag, rel, key in re.findall(r'<w:(embed\w+) r:id="([^"]+)" w:fontKey="([^"]+)"', entry):
        [target] = re.findall(rf'Id="{rel}"[^>]* Target="([^"]+)"', rels)
        raw = archive.read(f"word/{target}")
        mask = bytes.fromhex(re.sub("[^0-9A-F]", "", key))[::-1] * 2
        head = bytes(a ^ b for a, b in zip(raw[:32], mask, strict=True))
        found[tag] = TTFont(io.BytesIO(head + raw[32:]))
    return found


def test_word_file_carries_the_fonts_its_text_needs():
    data = to_docx(document(draft=True))
    found = embedded_fonts(data)
    assert set(found) == {"embedRegular", "embedBold"}
    letters = {ord(c) for c in "".join(NAMES) + "Page of DRAFT" if not c.isspace()}
    for tag, font in found.items():
        assert font["name"].getDebugName(1) == "DejaVu Sans", tag
        assert letters <= set(font.getBestCmap()), tag
        assert len(font.getGlyphOrder()) < 1000  # cut down to the text, not all 6,000 glyphs
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert 'Extension="odttf"' in archive.read("[Content_Types].xml").decode()
    assert "<w:embedTrueTypeFonts/>" in archive.read("word/settings.xml").decode()


def test_same_document_same_pdf_bytes(pdf):
    assert to_pdf(document()) == pdf


# --- made fast (issue 24): shared parts once, the body written directly ---------------------


def test_word_parts_every_pack_shares_are_made_once(monkeypatch):
    """python-docx makes the styles, page, header and footer once a process, not per file
    (it took most of a Word pack's time)."""
    made = []

    def counted() -> Any:
        made.append(1)
        return WordDocument()

    monkeypatch.setattr(word_renderer, "WordDocument", counted)
    word_renderer._skeleton.cache_clear()
    small = document(parts=[Part("Summary", ["One."])])
    try:
        for _ in range(3):
            to_docx(small)
    finally:
        word_renderer._skeleton.cache_clear()  # the next test makes its own with python-docx's
    assert len(made) == 1
    data = to_docx(small)
    assert data == to_docx(small)  # the same document, the same bytes
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None  # every part's CRC checks out


def test_word_body_reads_back_as_written():
    """Tabs, line breaks, spaces at either end, markup characters, an empty cell and a short
    row read back from the Word file as the document gave them."""
    texts = ("a\tb", "line 1\nline 2", "  spaced  ", "x < y & z > 0", "")
    table = Table(("One", "Two", "Three"), ((texts[0], texts[1], texts[2]), (texts[3], texts[4])))
    parts = [Part("Odd text", [texts[3]], [table], bullets=[texts[2]], page_break_before=True)]
    word = WordDocument(io.BytesIO(to_docx(document(parts=parts))))
    [grid] = word.tables
    assert [[c.text for c in row.cells] for row in grid.rows] == [
        ["One", "Two", "Three"],
        [texts[0], texts[1], texts[2]],
        [texts[3], "", ""],
    ]
    shown = [(p.style.name if p.style else "", p.text) for p in word.paragraphs if p.text]
    assert ("Heading 1", "Odd text") in shown and ("List Bullet", texts[2]) in shown
    assert ("Normal", texts[3]) in shown
    assert word.core_properties.title == "Case File Audit Tool"
    assert "Royal Borough of Example" in word.sections[0].header.tables[0].rows[0].cells[0].text


def test_punctuation_packs_print_shares_the_plain_font_cut():
    """Dashes, curly quotes and bullets are in every cut (each cut took ~0.2 s), so a pack that
    prints them embeds the same font as one in plain ASCII."""
    plain = embedded_fonts(to_docx(document(parts=[Part("A", ["plain text"])])))
    marks = "Action \u2014 \u201cagreed\u201d \u2018today\u2019 \u2022 done\u2026 \u20ac1 \u2013"
    dashed = embedded_fonts(to_docx(document(parts=[Part("A", [marks])])))
    for tag in ("embedRegular", "embedBold"):
        assert set(dashed[tag].getBestCmap()) == set(plain[tag].getBestCmap()), tag


def test_paragraphs_laid_out_once_a_width_draw_the_same_pdf(monkeypatch):
    """A cell's paragraph is laid out once for each width; a row that finds no room at the
    foot of a page (this table's 12th) is laid out again on the next, and the PDF is the same
    byte for byte as laying every paragraph out afresh each time."""
    rows = tuple((f"{k}. Q", "Yes", "\n".join(f"line {i}" for i in range(5))) for k in range(12))
    table = Table(("Question", "Answer", "Evidence"), rows, (0.4, 0.14, 0.46))
    tall = Document("Title", "Subtitle", [Part("Section", tables=[table])], "Footer", "Council")
    once = to_pdf(tall)
    monkeypatch.setattr(tagged_pdf.TaggedParagraph, "wrap", tagged_pdf.Paragraph.wrap)
    assert once == to_pdf(tall)
    assert len(PdfReader(io.BytesIO(once)).pages) == 3


def test_plain_text_markup_is_escaped_with_line_breaks_kept():
    assert fonts.markup("a & b\r\nc <d>\tx") == "a &amp; b<br/>c &lt;d&gt; x"
    assert fonts.markup("caf\u00e9 \x01") == "café "  # the long way: controls dropped


def test_bundle_tree_is_each_documents_drawn_tree_under_a_part():
    """The bundle's structure is written from the trees the documents were drawn with: a Part
    for each, holding its H1, paragraphs and sections, every mark in the parent tree."""
    drawn = [to_tagged_pdf(document(parts=[Part(f"Part {i}", [f"Text {i}."])])) for i in (1, 2)]
    bundle = PdfReader(io.BytesIO(merge([("first", drawn[0]), ("second", drawn[1])], "Both")))
    root: Any = bundle.root_object["/StructTreeRoot"]
    top = root["/K"].get_object()
    parts = [p.get_object() for p in top["/K"]]
    assert [p["/S"] for p in parts] == ["/Part", "/Part"]
    roles = [[k.get_object()["/S"] for k in p["/K"]] for p in parts]
    assert roles == [["/H1", "/P", "/Sect"]] * 2
    nums = root["/ParentTree"].get_object()["/Nums"]
    marks = sum(len(nums[i + 1]) for i in range(0, len(nums), 2))
    drawn_marks = sum(
        1 for d in drawn for e in d.root.walk() for k in e.kids if isinstance(k, tuple)
    )
    assert marks == drawn_marks and int(root["/ParentTreeNextKey"]) == len(bundle.pages)
    outline: Any = bundle.outline
    assert [o.title for o in outline] == ["first", "second"]


# --- what a reader sees ---------------------------------------------------------------------


def ink(path: Path) -> float:
    page = pypdfium2.PdfDocument(path)[0]
    image = page.render(scale=1.5).to_pil()
    image.save(path.with_suffix(".png"))
    pixels = np.asarray(image.convert("L"), dtype=float) / 255
    return float((pixels < 0.5).mean())


def test_first_page_is_a_finished_page(pdf, draft_pdf):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "file-pack.pdf").write_bytes(pdf)
    (OUT / "draft.pdf").write_bytes(draft_pdf)
    assert ink(OUT / "file-pack.pdf") > 0.01
    assert ink(OUT / "draft.pdf") > 0.01


@pytest.mark.libreoffice
def test_word_file_converts_in_libreoffice(tmp_path):
    OUT.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "file-pack.docx"
    chart = charts.grade_chart(["Good", "Requires improvement", "Inadequate"], [4, 2, 1], "Grades")
    parts = [*document().parts[:2], Part("Grades", images=[chart], page_break_before=True)]
    source.write_bytes(to_docx(document(draft=True, parts=parts)))
    [converted] = convert([source], "pdf", tmp_path / "lo")
    (OUT / "file-pack-libreoffice.pdf").write_bytes(converted.read_bytes())
    text = pages_text(converted.read_bytes())
    assert f"Page 1 of {len(text)}" in text[0] and "DRAFT" in text[-1]
    assert [n for n in NAMES if not same_letters(n, "\n".join(text))] == [] and len(text) == 2
    assert ink(OUT / "file-pack-libreoffice.pdf") > 0.01


@pytest.mark.libreoffice
def test_libreoffice_draws_the_word_file_in_its_own_fonts(tmp_path, monkeypatch):
    # a machine whose only font lacks every accent: the names still print, in DejaVu Sans
    import matplotlib

    folder = tmp_path / "fonts"
    folder.mkdir()
    only = Path(matplotlib.get_data_path(), "fonts", "ttf", "cmr10.ttf")  # Latin letters only
    (folder / only.name).write_bytes(only.read_bytes())
    config = tmp_path / "fonts.conf"
    config.write_text(
        f"<fontconfig><dir>{folder}</dir><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    monkeypatch.setenv("FONTCONFIG_FILE", str(config))
    source = tmp_path / "file-pack.docx"
    source.write_bytes(to_docx(document(parts=document().parts[:1])))
    [converted] = convert([source], "pdf", tmp_path / "lo")
    text = "\n".join(pages_text(converted.read_bytes()))
    assert [n for n in NAMES if n not in text] == []
    names = {str(f["/BaseFont"]).split("+")[-1] for f in fonts_of(converted.read_bytes())}
    assert names == {"DejaVuSans", "DejaVuSans-Bold"}


# --- charts ---------------------------------------------------------------------------------


def test_trend_draws_a_gap_for_a_period_without_audits():
    periods = ["2026-Q1", "2026-Q2", "2026-Q3"]
    gap = charts.trend_chart(periods, {"Good": [40.0, None, 60.0]}, "Trend", "% of audits")
    zero = charts.trend_chart(periods, {"Good": [40.0, 0.0, 60.0]}, "Trend", "% of audits")
    assert gap.startswith(b"\x89PNG") and gap != zero
    ax = charts.trend_figure(
        periods, {"Good": [40.0, None, 60.0], "RI": [40.0, None, 60.0]}, "Trend", "% of audits"
    ).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][1] == "2026-Q2\n(no audits)"
    assert ax.get_ylim() == (0, 100)
    first, second = ax.get_lines()
    assert first.get_linestyle() != second.get_linestyle()
    assert first.get_marker() != second.get_marker()
    # equal series are nudged apart, so neither hides the other
    assert list(first.get_xdata()) != list(second.get_xdata())  # type: ignore[arg-type]


def test_grade_chart_counts_in_whole_numbers():
    ax = charts.grade_figure(["A", "B", "C", "D"], [0, 1, 2, 3], "Grades").axes[0]
    ticks = [t for t in ax.get_yticks() if 0 <= t <= ax.get_ylim()[1]]
    assert ticks == [0, 1, 2, 3]
    assert charts.grade_chart(["A"], [1], "x") == charts.grade_chart(["A"], [1], "x")


def test_stacked_bars_keep_the_legend_beside_them():
    fig = charts.stacked_figure(
        list(DOMAINS),
        ["Met", "Partially met", "Not met"],
        {"Met": [3, 1, 0], "Partially met": [1, 1, 0], "Not met": [0, 2, 0]},
        "Domains",
        percent=True,
    )
    fig.draw_without_rendering()  # lays the figure out
    ax, legend = fig.axes[0], fig.legends[0]
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
    assert ax.get_xlim() == (0, 100)
    hatches = {bar.get_hatch() for bar in ax.patches}
    assert len(hatches) == 3  # readable in black and white


def test_font_text_maps_never_name_u0000_and_keep_their_code_space():
    """PDF/UA: no code maps to U+0000 (.notdef maps to nothing), and the code-space line,
    which looks like an entry, is left as reportlab wrote it."""
    data = to_pdf(document(parts=[Part(paragraphs=["Żółć Ann"])]))
    maps = [
        font["/ToUnicode"].get_object().get_data().decode("latin-1")
        for font in fonts_of(data)
        if "/ToUnicode" in font
    ]
    assert maps
    for cmap in maps:
        assert "<0000>" not in cmap
        space = re.search(r"begincodespacerange\n<00> <([0-9A-F]+)>\n", cmap)
        assert space and len(space.group(1)) == 2
        (count,) = re.findall(r"^(\d+) beginbfchar$", cmap, flags=re.M)
        assert int(count) == len(re.findall(r"^<[0-9A-F]{2}> <[0-9A-F]{4,}>$", cmap, flags=re.M))
