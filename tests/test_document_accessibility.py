"""Every document formtool generates is accessible (the Public Sector Bodies Accessibility
Regulations 2018): each shipped tool's Word and Excel form, the file pack (Word, PDF and the
bundle), the PMU pack (Word, PDF, workbook), the activity reports and the export workbook.

Checked from the files themselves (their XML, and the PDF's objects through pypdf): title and
language set; real headings whose levels never skip, and no bold paragraph standing in for one;
table header rows marked and repeated; alternative text on every chart; charts that tell their
series apart by more than colour; the workbooks' list sheets with a header row printed on each
page and named for screen readers; the PDFs tagged, with a structure tree that holds every piece
of marked content once, in the order it is drawn, everything else an artifact.

The packs are the demo's (the session's `demo_run`), so nothing here builds data of its own but
one form per tool and the export of the demo's database.
"""

from __future__ import annotations

import io
import itertools
import re
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import ArrayObject, BooleanObject, ContentStream

from formtool import store
from formtool.definitions import get_form
from formtool.generate import render
from formtool.packs import charts
from formtool.packs.export import export_data, write_export

from conftest import FORM_IDS, Demo, make_cases, missing

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
NS = {
    "w": W,
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
    "dc": "http://purl.org/dc/elements/1.1/",
    "x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "xdr": "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing",
    "c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
}
HEADER_STYLES = {"TableHeading", "SmallHeading"}  # a table's column headings, forms and packs
ROLES = {"Document", "Part", "Sect", "H1", "H2", "P", "L", "LI", "LBody", "Figure"}
ROLES |= {"Table", "TR", "TH", "TD"}
PAINTING = {"Tj", "TJ", "'", '"', "Do", "f", "f*", "F", "B", "B*", "b", "b*", "S", "s", "sh"}


# --- the documents --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One case's Word and Excel form of every shipped tool."""
    folder = tmp_path_factory.mktemp("forms")
    made = {}
    for form_id in FORM_IDS:
        form = get_form(form_id)
        case = make_cases(folder, form, 1)[0]
        for fmt in ("docx", "xlsx"):
            made[f"{form_id}.{fmt}"] = render(form, case, fmt)
    return made


@pytest.fixture(scope="module")
def packs(demo_run: Demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The demo's packs and reports, and the export workbook of its database, by kind."""
    out = demo_run.out / "packs"
    files = sorted((out / "file").glob("*-file.*"))
    found = {
        "file pack.docx": next(p for p in files if p.suffix == ".docx"),
        "file pack.pdf": next(p for p in files if p.suffix == ".pdf"),
        "file pack bundle.pdf": next((out / "file").glob("file-pack-*.pdf")),
        **{f"pmu pack{p.suffix}": p for p in (out / "pmu").glob("pmu-*.*")},
        **{f"group report{p.suffix}": p for p in (out / "activities").glob("*group-report.*")},
        **{f"observations{p.suffix}": p for p in (out / "activities").glob("observations-*.*")},
    }
    made = {kind: path.read_bytes() for kind, path in found.items()}
    copy = tmp_path_factory.mktemp("export") / "formtool.db"
    source, target = sqlite3.connect(demo_run.out / "formtool.db"), sqlite3.connect(copy)
    source.backup(target)  # with what is still in the demo's WAL
    source.close()
    target.close()
    made["export.xlsx"] = write_export(
        export_data(store.open_store(f"sqlite:///{copy}")), "xlsx", None
    )
    return made


def _kinds(suffix: str) -> list[str]:
    pack_kinds = {
        ".docx": ["file pack", "pmu pack", "group report", "observations"],
        ".pdf": ["file pack", "file pack bundle", "pmu pack", "group report", "observations"],
        ".xlsx": ["pmu pack", "export"],
    }[suffix]
    form_kinds = [f"form {f}" for f in FORM_IDS] if suffix != ".pdf" else []
    return [f"{k}{suffix}" for k in pack_kinds + form_kinds]


def _document(kind: str, request: pytest.FixtureRequest) -> bytes:
    if kind.startswith("form "):
        return request.getfixturevalue("forms")[kind.removeprefix("form ")]
    return request.getfixturevalue("packs")[kind]


# --- Word -----------------------------------------------------------------------------------


def _part(data: bytes, name: str) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return etree.fromstring(archive.read(name))


@dataclass
class WordStyles:
    """Each paragraph style's heading level (0: none) and whether it is bold."""

    level: dict[str, int] = field(default_factory=dict)
    bold: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, styles: Any) -> WordStyles:
        found = cls()
        based: dict[str, str] = {}
        own_bold: dict[str, bool | None] = {}
        for style in styles.iterfind("w:style", NS):
            sid = style.get(f"{{{W}}}styleId")
            name = style.find("w:name", NS).get(f"{{{W}}}val").lower()
            level = re.fullmatch(r"heading (\d)", name)
            found.level[sid] = int(level[1]) if level else -1 if name == "title" else 0
            parent = style.find("w:basedOn", NS)
            if parent is not None:
                based[sid] = parent.get(f"{{{W}}}val")
            b = style.find("w:rPr/w:b", NS)
            own_bold[sid] = None if b is None else b.get(f"{{{W}}}val", "1") not in ("0", "false")
        for sid in own_bold:
            at: str | None = sid
            while at is not None and own_bold.get(at) is None:
                at = based.get(at)
            found.bold[sid] = bool(at and own_bold[at])
        return found


def _body_paragraphs(document: Any) -> Iterator[Any]:
    """The body's paragraphs outside tables, in order (content controls looked into)."""
    for p in document.iter(f"{{{W}}}p"):
        if not any(a.tag == f"{{{W}}}tbl" for a in p.iterancestors()):
            yield p


def _style(p: Any, default: str = "Normal") -> str:
    found = p.find("w:pPr/w:pStyle", NS)
    return default if found is None else found.get(f"{{{W}}}val")


@pytest.mark.parametrize("kind", _kinds(".docx"))
def test_word_document_has_a_title_and_british_english(kind, request):
    data = _document(kind, request)
    title = _part(data, "docProps/core.xml").findtext("dc:title", namespaces=NS)
    assert title and title.strip(), f"{kind}: no document title"
    styles = _part(data, "word/styles.xml")
    langs = styles.xpath("w:docDefaults/w:rPrDefault/w:rPr/w:lang/@w:val", namespaces=NS)
    assert langs == ["en-GB"], f"{kind}: default language {langs}"


@pytest.mark.parametrize("kind", _kinds(".docx"))
def test_word_headings_are_real_styles_whose_levels_never_skip(kind, request):
    data = _document(kind, request)
    styles = WordStyles.of(_part(data, "word/styles.xml"))
    levels, fake = [], []
    for p in _body_paragraphs(_part(data, "word/document.xml")):
        style = _style(p)
        text = "".join(p.itertext()).strip()
        if styles.level.get(style, 0) > 0:
            levels.append(styles.level[style])
        elif text and styles.level.get(style, 0) == 0:
            runs = [r for r in p.iterfind(".//w:r", NS) if "".join(r.itertext()).strip()]
            bold = [
                styles.bold.get(style, False)
                if r.find("w:rPr/w:b", NS) is None
                else r.find("w:rPr/w:b", NS).get(f"{{{W}}}val", "1") not in ("0", "false")
                for r in runs
            ]
            if runs and all(bold):
                fake.append(text[:60])
    assert levels and levels[0] == 1, f"{kind}: the first heading is level {levels[:1]}"
    skips = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
    assert skips == [], f"{kind}: heading levels skip: {skips}"
    assert fake == [], f"{kind}: bold paragraphs standing in for headings: {fake}"


@pytest.mark.parametrize("kind", _kinds(".docx"))
def test_word_tables_mark_their_column_headings_as_repeated_header_rows(kind, request):
    data = _document(kind, request)
    document = _part(data, "word/document.xml")
    with_headings = 0
    for table in document.iter(f"{{{W}}}tbl"):
        rows = [
            r for r in table.iter(f"{{{W}}}tr") if next(r.iterancestors(f"{{{W}}}tbl")) is table
        ]
        heads = [
            all(
                _style(p, "") in HEADER_STYLES
                for cell in r.iterfind("w:tc", NS)
                for p in cell.iterfind("w:p", NS)
            )
            for r in rows
        ]
        marked = [r.find("w:trPr/w:tblHeader", NS) is not None for r in rows]
        with_headings += heads[0]
        leading = next((i for i, head in enumerate(heads) if not head), len(heads))
        assert marked == [i < leading for i in range(len(rows))], (
            f"{kind}: a table's header rows {heads} are marked {marked}"
        )
        assert not any(heads[leading:]), f"{kind}: column headings below a table's first rows"
    assert with_headings, f"{kind}: no table with column headings"


@pytest.mark.parametrize("kind", [k for k in _kinds(".docx") if k.startswith("pmu")])
def test_word_charts_have_alternative_text(kind, request):
    data = _document(kind, request)
    pictures = _part(data, "word/document.xml").findall(".//w:drawing//wp:docPr", NS)
    assert pictures, f"{kind}: no charts"
    alts = [p.get("descr", "") for p in pictures]
    assert all(a.endswith(".") and "chart" in a.lower() for a in alts), alts


# --- Excel ----------------------------------------------------------------------------------


def _defined(workbook: Any) -> dict[tuple[str, int], str]:
    return {
        (d.get("name"), int(d.get("localSheetId", "-1"))): d.text
        for d in workbook.iterfind("x:definedNames/x:definedName", NS)
    }


@pytest.mark.parametrize("kind", _kinds(".xlsx"))
def test_workbook_has_a_title(kind, request):
    title = _part(_document(kind, request), "docProps/core.xml").findtext("dc:title", namespaces=NS)
    assert title and title.strip(), f"{kind}: no document title"


@pytest.mark.parametrize("kind", _kinds(".xlsx"))
def test_workbook_sheets_print_and_name_their_header_rows(kind, request):
    data = _document(kind, request)
    workbook = _part(data, "xl/workbook.xml")
    names = _defined(workbook)
    rels = _part(data, "xl/_rels/workbook.xml.rels")
    targets = {r.get("Id"): r.get("Target") for r in rels}
    lists = 0
    for index, sheet in enumerate(workbook.iterfind("x:sheets/x:sheet", NS)):
        target = targets[
            sheet.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
        ]
        xml = _part(data, "xl/" + target.removeprefix("/xl/"))
        titles = names.get(("_xlnm.Print_Titles", index), "")
        if kind.startswith("form "):  # the form's title and identity on every page
            assert titles.endswith("!$1:$2"), f"{kind}: print titles {titles!r}"
            continue
        found = xml.find("x:autoFilter", NS)
        if found is None:
            continue  # the PMU Summary: tables one under another, none of them the sheet's list
        lists += 1
        last = re.fullmatch(r"A1:([A-Z]+)\d+", found.get("ref"))
        assert last, found.get("ref")
        assert titles.endswith("!$1:$1"), f"{kind} {sheet.get('name')}: print titles {titles!r}"
        column_title = names.get(("ColumnTitle", index), "")
        assert column_title.endswith(f"!$A$1:${last[1]}$1"), (
            f"{kind} {sheet.get('name')}: ColumnTitle {column_title!r}"
        )
    assert lists or kind.startswith("form "), f"{kind}: no list sheet"


def test_workbook_charts_have_alternative_text_and_more_than_colour(request):
    data = _document("pmu pack.xlsx", request)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        drawings = [
            n for n in archive.namelist() if re.fullmatch(r"xl/drawings/drawing\d+\.xml", n)
        ]
        chart_parts = [n for n in archive.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
    frames = [
        f
        for name in drawings
        for f in _part(data, name).iterfind(
            ".//xdr:graphicFrame/xdr:nvGraphicFramePr/xdr:cNvPr", NS
        )
    ]
    assert frames and all(f.get("descr", "").startswith(("Bar", "Stacked", "Line")) for f in frames)
    kinds = set()
    for name in chart_parts:
        chart = _part(data, name)
        for plot in chart.find("c:chart/c:plotArea", NS):
            series = plot.findall("c:ser", NS)
            tag = etree.QName(plot).localname
            kinds.add(tag)
            if tag == "barChart" and len(series) > 1:  # stacked: patterns and values
                assert all(s.find("c:spPr/a:pattFill", NS) is not None for s in series[1:])
                assert all(s.find("c:dLbls/c:showVal", NS) is not None for s in series)
                assert chart.find("c:chart/c:legend/c:legendPos", NS).get("val") == "b"
            elif tag == "barChart":  # one series: its categories on the axis, values on bars
                assert series[0].find("c:dLbls/c:showVal", NS).get("val") == "1"
            elif tag == "lineChart":
                symbols = [s.find("c:marker/c:symbol", NS).get("val") for s in series]
                dashes = [s.find("c:spPr/a:ln/a:prstDash", NS).get("val") for s in series]
                assert len(set(symbols)) == len(set(dashes)) == len(series)
    assert {"barChart", "lineChart"} <= kinds


# --- PDF ------------------------------------------------------------------------------------


@dataclass
class Tree:
    """A tagged PDF's structure: elements in reading order (role, depth, object) and the
    marked content they hold, (page index, MCID) in the same order."""

    elements: list[tuple[str, int, Any]] = field(default_factory=list)
    marks: list[tuple[int, int]] = field(default_factory=list)
    owners: dict[tuple[int, int], Any] = field(default_factory=dict)
    parts: int = 0  # a bundle's parts walked

    @classmethod
    def of(cls, reader: PdfReader, parts: int | None = None) -> Tree:
        """The tree; with `parts`, the first that many parts of a bundle alone (the pages of
        the documents it holds first)."""
        pages = {_idnum(p): i for i, p in enumerate(reader.pages)}
        tree = cls()

        def visit(ref: Any, depth: int, page: Any) -> None:
            element: Any = ref.get_object()
            if parts is not None and depth == 1:
                if tree.parts >= parts:
                    return
                tree.parts += 1
            if "/Pg" in element:
                page = pages[_idnum_of(element, "/Pg")]
            tree.elements.append((element["/S"][1:], depth, element))
            kids = element.get("/K")
            for kid in kids if isinstance(kids, ArrayObject) else [] if kids is None else [kids]:
                target: Any = kid.get_object()
                if isinstance(target, int):
                    mark = (page, int(target))
                elif isinstance(target, dict) and target.get("/Type") == "/MCR":
                    mark = (pages[_idnum_of(target, "/Pg")], int(target["/MCID"]))
                else:
                    visit(kid, depth + 1, page)
                    continue
                tree.marks.append(mark)
                tree.owners[mark] = ref.idnum

        root: Any = reader.root_object["/StructTreeRoot"]
        visit(root.raw_get("/K"), 0, None)
        return tree


def _idnum(page: Any) -> int:
    return int(page.indirect_reference.idnum)


def _idnum_of(obj: Any, key: str) -> int:
    """The object number `key` refers to (a page, for /Pg)."""
    return int(obj.raw_get(key).idnum)


def _content_marks(page: Any, reader: PdfReader, index: int) -> tuple[list[int], list[str]]:
    """The page's MCIDs in drawing order, and whatever it paints outside marked content."""
    mcids: list[int] = []
    loose: list[str] = []
    depth = 0
    operands: Any
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        op = operator.decode("latin-1")
        if op in ("BDC", "BMC"):
            depth += 1
            if op == "BDC" and isinstance(operands[1], dict):
                mcids.append(int(operands[1]["/MCID"]))
        elif op == "EMC":
            depth -= 1
        elif op in PAINTING and depth == 0:
            loose.append(f"page {index + 1}: {op}")
    assert depth == 0, f"page {index + 1}: marked content left open"
    return mcids, loose


def _flag(root: Any, entry: str, key: str) -> bool:
    """Whether the catalog's `entry` dictionary sets `key` true."""
    found = root.get(entry)
    value = found.get_object().get(key) if found is not None else None
    return isinstance(value, BooleanObject) and bool(value.value)


@pytest.mark.parametrize("kind", _kinds(".pdf"))
def test_pdf_has_a_title_shown_and_british_english(kind, request):
    reader = PdfReader(io.BytesIO(_document(kind, request)))
    root: Any = reader.root_object
    assert reader.metadata and (reader.metadata.title or "").strip(), f"{kind}: no /Title"
    assert root.get("/Lang") == "en-GB", f"{kind}: /Lang {root.get('/Lang')}"
    assert _flag(root, "/ViewerPreferences", "/DisplayDocTitle"), f"{kind}: title not shown"
    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    assert "<pdfuaid:part>1</pdfuaid:part>" in xmp and "<dc:title>" in xmp, kind


@pytest.mark.parametrize("kind", _kinds(".pdf"))
def test_pdf_is_tagged(kind, request, tmp_path):
    data = _document(kind, request)
    root = PdfReader(io.BytesIO(data)).root_object
    assert _flag(root, "/MarkInfo", "/Marked"), f"{kind}: not marked"
    assert "/StructTreeRoot" in root, f"{kind}: no structure tree"
    pdfinfo = shutil.which("pdfinfo") or missing("pdfinfo (poppler-utils)")
    (tmp_path / "doc.pdf").write_bytes(data)
    said = subprocess.run([pdfinfo, tmp_path / "doc.pdf"], capture_output=True, text=True)
    assert re.search(r"^Tagged:\s+yes$", said.stdout, re.M), said.stdout


@pytest.mark.parametrize("kind", _kinds(".pdf"))
def test_pdf_structure_holds_everything_drawn_in_reading_order(kind, request):
    reader = PdfReader(io.BytesIO(_document(kind, request)))
    tree = Tree.of(reader, parts=2 if "bundle" in kind else None)  # a bundle's first two
    roles = [role for role, _, _ in tree.elements]
    assert set(roles) <= ROLES and roles[0] == "Document", set(roles) - ROLES
    assert roles.count("Document") == 1, f"{kind}: a document inside the document"
    if "bundle" in kind:  # each document a part of the whole, its title its H1
        assert {role for role, depth, _ in tree.elements if depth == 1} == {"Part"}
    headings = [int(r[1]) for r in roles if re.fullmatch(r"H\d", r)]
    assert headings[:1] == [1], f"{kind}: first heading H{headings[:1]}"
    assert all(b <= a + 1 for a, b in itertools.pairwise(headings)), headings
    # each figure has its words; each table its rows, headed by column headings
    for role, _, element in tree.elements:
        if role == "Figure":
            assert str(element.get("/Alt", "")).strip(), f"{kind}: a figure without /Alt"
        if role == "Table":
            rows = [k.get_object() for k in element["/K"]]
            cells = [[c.get_object() for c in r["/K"]] for r in rows]
            assert all(r["/S"] == "/TR" for r in rows)
            assert all(c["/S"] == "/TH" and c["/A"]["/Scope"] == "/Column" for c in cells[0])
            assert all(c["/S"] == "/TD" for row in cells[1:] for c in row)
    # the marked content: each piece in the tree once, the tree's order the drawing order,
    # the parent tree pointing each back to its element, nothing painted outside
    assert tree.marks == sorted(set(tree.marks)), f"{kind}: reading order differs from drawing"
    root: Any = reader.root_object
    parents = root["/StructTreeRoot"]["/ParentTree"]["/Nums"]
    parent_of = {int(parents[i]): parents[i + 1] for i in range(0, len(parents), 2)}
    drawn: list[tuple[int, int]] = []
    loose: list[str] = []
    page: Any
    for index, page in enumerate(reader.pages[: tree.marks[-1][0] + 1]):
        mcids, outside = _content_marks(page, reader, index)
        drawn += [(index, m) for m in mcids]
        loose += outside
        owners = parent_of.get(page["/StructParents"], [])
        assert [o.idnum for o in owners] == [tree.owners[(index, m)] for m in mcids]
    assert sorted(drawn) == tree.marks and loose == [], (kind, loose[:3])


# --- charts drawn for the Word and PDF reports ----------------------------------------------


def test_charts_tell_series_apart_by_more_than_colour():
    categories, groups = ["Good", "Requires improvement", "Inadequate"], ["Team A", "Team B"]
    bars = charts.grade_figure(categories, [4, 2, 1], "Grades").axes[0]
    assert [t.get_text() for t in bars.texts] == ["4", "2", "1"]  # each bar says its count
    assert [t.get_text().replace("\n", " ") for t in bars.get_xticklabels()] == categories
    counts = {"Good": [3, 1], "Requires improvement": [2, 2], "Inadequate": [1, 0]}
    stacked = charts.stacked_figure(groups, categories, counts, "Grades by team")
    hatches = [c[0].get_hatch() for c in stacked.axes[0].containers]
    assert len(set(hatches)) == len(categories)
    legend = [t.get_text().replace("\n", " ") for t in stacked.legends[0].get_texts()]
    assert legend == categories  # in the order the bars stack
    series: dict[str, list[float | None]] = {"Good": [40.0, 50.0], "Inadequate": [10.0, None]}
    lines = charts.trend_figure(["2026-10", "2026-11"], series, "Trend", "% of audits").axes[0]
    assert len({(ln.get_marker(), str(ln.get_linestyle())) for ln in lines.lines}) == 2
    assert [t.get_text() for t in lines.figure.legends[0].get_texts()] == list(series)


def test_chart_alternative_text_says_what_the_chart_shows():
    assert charts.grade_alt(["Good", "Inadequate"], [4, 1], "Grades") == (
        "Bar chart, Grades: Good 4, Inadequate 1."
    )
    stacked = charts.stacked_alt(["Team A", "Team B"], ["Met", "Not met"], "KSS", percent=True)
    assert "Team A, Team B" in stacked and "Met, Not met" in stacked
    trend = charts.trend_alt(["2026-09", "2026-11"], ["Good %"], "Trend", "% of graded audits")
    assert "from 2026-09 to 2026-11" in trend and "Good %" in trend
