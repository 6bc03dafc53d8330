"""Packs: every figure recomputed from the records (drafts, amendments and reversed questions
included), no names by default, every name printed, finished documents, files that open in
LibreOffice and render."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import docx
import openpyxl
import pytest
import sqlalchemy as sa
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import Destination, DictionaryObject

from formtool import store
from formtool.definitions import get_form
from formtool.demo.fill import fill_docx
from formtool.generate import write_forms
from formtool.packs.figures import PackError, load_figures
from formtool.packs.file import file_pack
from formtool.packs.pmu import pmu_pack
from formtool.periods import PeriodError, period_for
from formtool.programme.workflow import check_audit
from formtool.read.batch import import_paths
from formtool.settings import Settings

from conftest import answers_for, convert, make_cases, write_cases

TODAY = dt.date(2026, 11, 22)
AS_OF = dt.date(2026, 12, 5)
XDR = "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}"


@pytest.fixture(scope="module")
def demo(demo_run, tmp_path_factory):
    """The session's demo, copied (these tests add moderations and packs to it)."""
    out = demo_run.copy(tmp_path_factory.mktemp("packs") / "demo")
    report = demo_run.report
    db = store.open_store(f"sqlite:///{out / 'formtool.db'}")
    files = {p.suffix: p for p in pmu_pack(db, out / "pmu2", month="2026-11", as_of=AS_OF)}
    return out, report, db, files


def records(db):
    """The month's audits with the grade that counts, straight from the tables."""
    a, g = store.audits.c, store.grades.c
    with db.engine.connect() as conn:
        return conn.execute(
            sa.select(
                a.audit_id,
                a.form_id,
                a.team,
                a.state,
                a.due_date,
                a.case_number,
                a.facts,
                g.auditor_grade,
                g.moderated_grade,
            )
            .outerjoin(store.grades, g.audit_id == a.audit_id)
            .where((a.month == "2026-11") & (a.activity == ""))  # the case-file figures'
        ).all()


COMPLETE = {"returned", "checked", "moderated", "actions signed off", "closed"}


def test_workbook_figures_match_the_records(demo):
    _, _, db, files = demo
    rows = records(db)
    complete = [r for r in rows if r.state in COMPLETE]
    grade_scale = get_form("csc").grade_scale
    assert grade_scale is not None
    grades = grade_scale.choices
    expected = Counter(
        (r.moderated_grade or r.auditor_grade)
        for r in complete
        if (r.moderated_grade or r.auditor_grade)
    )
    book = openpyxl.load_workbook(files[".xlsx"])
    assert book.sheetnames == [
        "Summary",
        "Activities",  # the demo month's dip samples, observations, ... (issue 21)
        "Audits",
        "Answers",
        "Action tracker",
        "Moderation log",
        "Non-completion",
        "Re-audits",
    ]
    summary = book["Summary"]
    start = next(r for r in range(1, 60) if summary.cell(r, 1).value == "Grade")
    table = {
        summary.cell(r, 1).value: summary.cell(r, 2).value
        for r in range(start + 1, start + 1 + len(grades))
    }
    assert table == {g: expected.get(g, 0) for g in grades}
    assert book["Audits"].max_row - 1 == len(rows)
    not_due = [r for r in rows if r.state in ("exempted", "filed unaudited")]
    assert book["Non-completion"].max_row - 1 == len(rows) - len(complete) - len(not_due)
    assert book["Moderation log"].max_row - 1 == sum(1 for r in complete if r.moderated_grade)
    tracker = book["Action tracker"]
    assert tracker.max_row > 1 and all(":" in c.value for c in tracker["B"][1:])  # section
    for sheet in book:
        setup = sheet.page_setup
        assert setup.orientation == "landscape" and sheet.sheet_properties.pageSetUpPr.fitToPage
        assert setup.fitToWidth in (None, 1) and setup.fitToHeight == 0  # one page wide
        assert sheet.oddHeader.center.text and "OFFICIAL-SENSITIVE" in sheet.oddHeader.center.text


def test_workbook_charts_never_overlap_and_headers_fit(demo):
    _, _, _, files = demo
    with zipfile.ZipFile(files[".xlsx"]) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        drawing = etree.fromstring(archive.read("xl/drawings/drawing1.xml"))
    spans, notes = [], 0
    for anchor in drawing.iter(f"{XDR}twoCellAnchor"):
        start, end = anchor.find(f"{XDR}from"), anchor.find(f"{XDR}to")
        spans.append((int(start.find(f"{XDR}row").text), int(end.find(f"{XDR}row").text)))
        notes += anchor.find(f"{XDR}sp") is not None  # a note where a chart is not drawn
    assert len(spans) == len(charts) + notes and len(charts) >= 3
    spans.sort()
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), spans
    summary = openpyxl.load_workbook(files[".xlsx"])["Summary"]
    for column in ("A", "B", "C"):
        longest = max(len(str(c.value)) for c in summary[column][3:] if c.value)
        assert summary.column_dimensions[column].width >= min(longest, 58)


def test_answers_sheet_is_long_form_with_one_header_and_a_filter(demo):
    files = demo[3]
    sheet = openpyxl.load_workbook(files[".xlsx"])["Answers"]
    header = [c.value for c in sheet[1]]
    assert header == [
        "Audit ID",
        "Tool",
        "Case number",
        "Team",
        "Section",
        "Question",
        "Key",
        "Answer",
        "Counts as",
    ]
    assert sheet.auto_filter.ref and sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert all(r[0] and r[6] for r in rows) and {r[1] for r in rows} >= {"CSC", "Early Help"}
    drift = [r for r in rows if r[6] == "kss8.court_drift_delay" and r[7] in ("Yes", "No")]
    assert drift and all(
        r[8] == {"No": "favourable", "Yes": "unfavourable"}[r[7]] for r in drift
    )  # the question's own favourable answer


def test_report_sentences_and_tables_match_the_records(demo):
    _, _, db, files = demo
    rows = records(db)
    complete = [r for r in rows if r.state in COMPLETE]
    overdue = [
        r
        for r in rows
        if r.state in ("allocated", "sent", "in progress", "amendment requested")
        and r.due_date < AS_OF
    ]
    document = docx.Document(str(files[".docx"]))
    text = "\n".join(p.text for p in document.paragraphs)
    filed = [r for r in rows if r.state == "filed unaudited"]
    outstanding = [r for r in rows if r.state in {s.value for s in store.OUTSTANDING}]
    assert (
        f"{len(rows)} audits were allocated for 2026-11 (Nov 2026) and {len(filed)} of them "
        "prepared and filed without an audit (not picked for audit); "
        f"{len(complete)} of the {len(rows) - len(filed)} due were completed"
    ) in text
    assert f"and {len(outstanding)} are outstanding (" in text
    assert f"; {len(overdue)} of them overdue as of 05/12/2026)" in text
    team_table = document.tables[0]
    assert {r.cells[0].text: int(r.cells[1].text) for r in team_table.rows[1:-1]} == Counter(
        r.team for r in rows
    )
    assert [c.text for c in team_table.rows[-1].cells][:2] == ["All teams", str(len(rows))]
    by_tool = next(t for t in document.tables if t.rows[0].cells[0].text == "Tool")
    tools = {r.cells[0].text: int(r.cells[-1].text) for r in by_tool.rows[1:]}
    assert tools["CSC"] == sum(
        1 for r in complete if r.form_id == "csc" and (r.moderated_grade or r.auditor_grade)
    )
    csc = [r for r in complete if r.form_id == "csc"]
    assert f"Strengths (CSC, {len(csc)} audits):" in text
    too_few = [
        name
        for name, form_id in (
            ("Prospective Adopter", "prospective_adopter"),
            ("Supported Lodgings", "supported_lodgings"),
        )
        if sum(r.form_id == form_id for r in complete) < 5
    ]
    assert all(f"Too few {name} audits were completed" in text for name in too_few)
    assert "achieved; the framework asks for 10%" in text


@pytest.fixture
def crafted(tmp_path, db):
    """Six CSC audits: four Final (one sent back for amendment), one Draft, one outstanding.
    Every Final return answers "No" to "Is there evidence of drift and delay?"."""
    form = get_form("csc")
    made = write_forms(form, make_cases(tmp_path, form, 6), tmp_path / "forms", ("docx",), db=db)
    folder = tmp_path / "returns"
    folder.mkdir()
    for i, item in enumerate(made[:5]):
        answers = answers_for(form, seed=i) | {
            "kss8.court_drift_delay": "No",
            "kss1.seen_alone": "No" if i < 2 else "Yes",
            "overall.grade": ("Good", "Inadequate", "Good", "Requires Improvement", "Good")[i],
            "moderation.grade": "",
            "completion.status": "Draft" if i == 4 else "Final",
        }
        (folder / item.path.name).write_bytes(fill_docx(item.path.read_bytes(), answers))
    assert {o.status for o in import_paths(db, [folder], TODAY)} == {"imported"}
    check_audit(db, made[3].case.audit_id, "KSS 2 evidence missing")
    return db, made


def test_figures_count_drafts_and_amendments_out_and_respect_each_question(crafted):
    db, made = crafted
    figures = load_figures(db, period_for(month="2026-11"), AS_OF, min_base=3)
    assert [a.case_number for a in figures.completed] == [m.case.case_number for m in made[:3]]
    assert dict(figures.grades["grade"]) == {"Good": 2, "Inadequate": 1}
    assert [i["case_number"] for i in figures.follow_up] == [made[1].case.case_number]
    [csc] = figures.findings
    drift = next(f for f in csc.findings if f.item.key == "kss8.court_drift_delay")
    assert drift.counts == {"favourable": 3, "partial": 0, "unfavourable": 0}
    assert drift.item.finding[0]  # the definition's own phrase
    assert drift.sentence("favourable") == f"In 3 of 3 CSC audits {drift.item.finding[0]}."
    seen = next(f for f in csc.findings if f.item.key == "kss1.seen_alone")
    assert (seen.counts["unfavourable"], seen.base) == (2, 3)
    assert seen in csc.weakest(40) and drift in csc.strongest(40)
    strict = load_figures(db, period_for(month="2026-11"), AS_OF, min_base=5)
    assert strict.findings[0].findings == []  # 3 complete audits: below the base


def test_periods_without_audits_are_gaps_not_zero(crafted, tmp_path):
    db, _ = crafted
    # three graded audits: a share only from a minimum base of three (test_pmu_totals.py
    # checks that a period below the base is a gap too)
    figures = load_figures(db, period_for(month="2026-11"), AS_OF, min_base=3)
    assert [p["period"] for p in figures.trend] == ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert [p["favourable"] for p in figures.trend] == [None, None, None, 66.7]
    files = {
        p.suffix: p
        for p in pmu_pack(
            db, tmp_path / "p", month="2026-11", as_of=AS_OF, settings=Settings(min_base=3)
        )
    }
    summary = openpyxl.load_workbook(files[".xlsx"])["Summary"]
    start = next(r for r in range(1, 80) if summary.cell(r, 1).value == "Period")
    assert [summary.cell(r, 3).value for r in range(start + 1, start + 5)] == [
        None,
        None,
        None,
        66.7,
    ]
    text = "\n".join(
        c.text for t in docx.Document(str(files[".docx"])).tables for r in t.rows for c in r.cells
    )
    assert text.count("no audits") == 9  # three empty periods x three bands


def test_pmu_pack_has_no_names_unless_asked(demo):
    out, _, db, files = demo
    child_names = set()
    for r in records(db):
        facts = json.loads(r.facts)
        if facts.get("family_name"):
            child_names.add(facts["family_name"])
    document_text = "\n".join(p.text for p in docx.Document(str(files[".docx"])).paragraphs)
    book = openpyxl.load_workbook(files[".xlsx"])
    cells = {str(c.value) for s in book for row in s.iter_rows() for c in row if c.value}
    assert {r.case_number for r in records(db)} & cells  # case numbers identify them
    assert not [n for n in child_names if n in document_text or n in cells]
    named = pmu_pack(db, out / "named", month="2026-11", include_names=True, as_of=AS_OF)
    audits = openpyxl.load_workbook(named[2])["Audits"]
    assert audits.cell(1, 14).value == "Family name" and audits.cell(2, 14).value


def test_file_pack_summary_first_then_the_audit_and_bundle_bookmarks(demo):
    out, report, db, _ = demo
    bundle = PdfReader(out.parent / report.figures["file_pack"][-1].removeprefix("outputs/"))
    on_file = db.audit_rows(["2026-11"])  # every audit of a case; no member of staff's
    complete = sorted(
        r.audit_id for r in on_file if r.state in COMPLETE and r.subject_kind == "case"
    )
    assert [title.split(" ")[0] for title in top_level_bookmarks(bundle)] == complete
    assert any(a.startswith(("DIP", "TH", "FB")) for a in complete)
    audit_id = next(a for a in complete if a.startswith("CSC"))
    word, pdf = file_pack(db, [audit_id], out / "one", ("docx", "pdf")).files
    first_page = PdfReader(pdf).pages[0].extract_text()
    assert "Summary" in first_page and audit_id in first_page
    assert "Overall Grading of the Audit" in first_page
    text = "\n".join(
        c.text for t in docx.Document(str(word)).tables for r in t.rows for c in r.cells
    )
    with db.engine.connect() as conn:
        answers = conn.execute(
            sa.select(store.answers)
            .join(store.returns)
            .where((store.returns.c.audit_id == audit_id) & store.returns.c.is_current)
        ).all()
    assert all(
        a.value in text and a.comment in text
        for a in answers
        if not a.key.startswith("completion.")
    )
    assert text.count("Grading after moderation") == 1  # one moderation block
    assert "Fingerprint of the returned file (SHA-256)" in text
    footer = PdfReader(pdf).pages[-1].extract_text()
    assert re.search(r"Page \d+ of \d+", footer) and "OFFICIAL-SENSITIVE" in footer


def test_drafts_are_filed_only_on_request_and_marked(crafted, tmp_path):
    db, made = crafted
    draft = made[4].case.audit_id
    with pytest.raises(PackError, match=f"Audit {draft} is a draft"):
        file_pack(db, [draft], tmp_path / "no", ("pdf",))
    [pdf] = file_pack(db, [draft], tmp_path / "yes", ("pdf",), include_drafts=True).files
    assert all("DRAFT" in page.extract_text() for page in PdfReader(pdf).pages)
    with pytest.raises(PackError, match="has no imported return yet"):
        file_pack(db, [made[5].case.audit_id], tmp_path / "none", ("pdf",))
    assert not (tmp_path / "none").exists()


def test_long_comments_flow_across_pages(crafted, tmp_path):
    db, made = crafted
    form = get_form("csc")
    long = (
        " ".join(f"word{i}" for i in range(3000))
        + "\n"
        + "\n".join(f"line {i}" for i in range(200))
    )
    path = tmp_path / "long.docx"
    path.write_bytes(
        fill_docx(
            made[0].path.read_bytes(),
            answers_for(form)
            | {
                "kss1.seen_alone.evidence": long,
                "kss1.comments": long,
                "completion.status": "Final",
                "moderation.grade": "",
            },
        )
    )
    assert import_paths(db, [path], TODAY)[0].status == "updated"
    _, pdf = file_pack(db, [made[0].case.audit_id], tmp_path / "p", ("docx", "pdf")).files
    text = "".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "word2999" in text and "line 199" in text
    assert len(PdfReader(pdf).pages) > 5


def test_every_name_prints_and_every_font_is_embedded(tmp_path, db):
    names = {
        "pl": ("Żółć", "Ślęzak Grzegorz"),
        "vi": ("Nguyễn", "Thị Minh Khai"),
        "el": ("Παπαδόπουλος", "Αλέξανδρος"),
        "uk": ("Шевченко", "Ірина"),
        "ar": ("الزهراء", "فاطمة"),
    }
    form = get_form("csc")
    rows = []
    for i, (family, given) in enumerate(names.values()):
        row = make_cases(tmp_path, form, 1, seed=i)[0]
        rows.append(
            row.facts
            | {
                "case_number": f"U{i}",
                "family_name": family,
                "given_names": given,
                "due_date": "2026-11-30",
            }
        )
    from formtool.read.cases import load_cases

    cases = load_cases(write_cases(tmp_path / "u.csv", rows), form)
    made = write_forms(form, cases, tmp_path / "forms", ("docx",), db=db)
    folder = tmp_path / "r"
    folder.mkdir()
    for item in made:
        (folder / item.path.name).write_bytes(
            fill_docx(
                item.path.read_bytes(),
                answers_for(form) | {"completion.status": "Final", "moderation.grade": ""},
            )
        )
    assert {o.status for o in import_paths(db, [folder], TODAY)} == {"imported"}
    result = file_pack(db, [m.case.audit_id for m in made], tmp_path / "f", ("pdf",))
    assert result.warnings == []
    for item, (family, given) in zip(made, names.values(), strict=True):
        reader = PdfReader(tmp_path / "f" / f"{item.case.audit_id}-file.pdf")
        text = reader.pages[0].extract_text()
        assert family in text and given in text, (family, text[:300])
        assert_fonts_embedded(reader)
    named = pmu_pack(db, tmp_path / "pmu", month="2026-11", include_names=True, as_of=AS_OF)
    assert_fonts_embedded(PdfReader(named[1]))


def top_level_bookmarks(reader: PdfReader) -> list[str]:
    titles = []
    for entry in reader.outline:
        assert isinstance(entry, Destination), "a nested bookmark at the top level"
        titles.append(str(entry.title))
    return titles


def assert_fonts_embedded(reader: PdfReader) -> None:
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        assert isinstance(resources, DictionaryObject)
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            descriptors = [font.get("/FontDescriptor")] + [
                d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts", [])
            ]
            assert any(
                d is not None
                and any(k in d.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            ), font


def test_council_and_marking_from_the_settings_file(crafted, tmp_path, monkeypatch):
    db, made = crafted
    config = tmp_path / "formtool.toml"
    config.write_text('council = "Example Council (synthetic)"\nmarking = "OFFICIAL"\n')
    monkeypatch.setenv("FORMTOOL_CONFIG", str(config))
    from formtool.settings import load_settings

    settings = load_settings()
    assert settings == Settings("Example Council (synthetic)", "OFFICIAL", 5)
    [pdf] = file_pack(
        db, [made[0].case.audit_id], tmp_path / "s", ("pdf",), settings=settings
    ).files
    first = PdfReader(pdf).pages[0].extract_text()
    assert "Example Council (synthetic)" in first and "OFFICIAL" in first
    config.write_text('marking = "PUBLIC"\n')
    from formtool.settings import SettingsError

    with pytest.raises(SettingsError, match=r"· marking\] 'PUBLIC' is not a Government"):
        load_settings()


def test_periods_follow_the_financial_year():
    assert period_for(quarter="2026-Q1").months == ("2026-04", "2026-05", "2026-06")
    assert period_for(quarter="2026-Q4").months == ("2027-01", "2027-02", "2027-03")
    assert period_for(quarter="2026-q4").previous().label == "2026-Q3"
    assert period_for(quarter="2026-Q1").previous().label == "2025-Q4"
    year = period_for(year="2026")
    assert (year.label, year.months[0], year.months[-1]) == ("2026-27", "2026-04", "2027-03")
    assert period_for(month="2026-01").previous().label == "2025-12"
    for bad, message in (
        ({"month": "2026-13"}, "is not a month: write YYYY-MM"),
        ({"quarter": "2026-Q5"}, "is not YYYY-Qn"),
        ({}, "exactly one"),
    ):
        with pytest.raises(PeriodError, match=message):
            period_for(**bad)


@pytest.mark.libreoffice
def test_packs_open_in_libreoffice_and_first_pages_render(demo, tmp_path):
    import numpy as np
    import pypdfium2

    out, report, _, files = demo
    pdfs = convert([files[".docx"]], "pdf", tmp_path / "docx")
    pdfs += convert([files[".xlsx"]], "pdf", tmp_path / "xlsx")
    shots = out.parent / "shots"
    shots.mkdir(exist_ok=True)
    bundle = out.parent / report.figures["file_pack"][-1].removeprefix("outputs/")
    for pdf in map(Path, (*pdfs, files[".pdf"], bundle)):
        document = pypdfium2.PdfDocument(str(pdf))  # -1 above: the month's bundle
        image = document[0].render(scale=1).to_pil()
        document.close()
        pixels = np.asarray(image.convert("L"), dtype=float) / 255
        assert (pixels < 0.9).mean() > 0.01 and pixels.std() > 0.05, pdf  # not a blank page
        image.save(shots / f"{pdf.stem}-{pdf.suffix[1:]}.png")


def test_empty_period_is_refused_without_files(demo, tmp_path):
    from click.testing import CliRunner

    from formtool.cli import cli

    out, _, _, _ = demo
    result = CliRunner().invoke(
        cli,
        [
            "pack",
            "pmu",
            "--quarter",
            "2025-Q1",
            "--db",
            str(out / "formtool.db"),
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert result.exit_code == 2
    assert result.output == (
        "Error: No audits in 2025-Q1 (Apr 2025 - Jun 2025): nothing to "
        "report. Check the period, or generate and import audits first.\n"
    )
    assert not (tmp_path / "p").exists()


FORMULAS = ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)")


def test_text_that_looks_like_a_formula_stays_text_in_every_workbook(tmp_path, db):
    from formtool.packs.export import export_data, write_export

    form = get_form("csc")
    [made] = write_forms(form, make_cases(tmp_path, form, 1), tmp_path / "forms", ("docx",), db=db)
    answers = answers_for(form) | {
        "completion.status": "Final",
        "moderation.grade": "",
        "kss1.seen_alone": "Yes",
        "kss1.seen_alone.evidence": FORMULAS[0],
        "next_steps.actions.1.action": FORMULAS[1],
        "next_steps.actions.1.responsible_role": FORMULAS[2],
        "next_steps.actions.1.responsible_person": FORMULAS[3],
        "next_steps.actions.1.date_required": "31/12/2026",
    }
    path = tmp_path / "r.docx"
    path.write_bytes(fill_docx(made.path.read_bytes(), answers))
    assert import_paths(db, [path], TODAY)[0].status == "imported"
    books = [
        pmu_pack(db, tmp_path / "pmu", month="2026-11", include_names=True, as_of=AS_OF)[2],
        io.BytesIO(write_export(export_data(db), "xlsx", None)),
    ]
    for book in books:
        workbook = openpyxl.load_workbook(book)
        cells = [
            c
            for s in workbook
            for row in s.iter_rows()
            for c in row
            if isinstance(c.value, str) and c.value in FORMULAS
        ]
        assert {c.value for c in cells} >= {FORMULAS[0]} and all(c.data_type == "s" for c in cells)
    tracker = openpyxl.load_workbook(books[0])["Action tracker"]
    assert [c.value for c in tracker[2]][2:5] == list(FORMULAS[1:])


def test_moderation_overrides_and_sample_is_reproducible(demo):
    from formtool.programme.moderation import (
        ModerationError,
        moderate,
        moderation_sample,
        parse_rate,
    )

    out, _, _, _ = demo
    db = store.open_store(f"sqlite:///{out / 'formtool.db'}")
    first = moderation_sample(db, "2026-11", 0.5, seed=9, record=False)
    assert first == moderation_sample(db, "2026-11", 0.5, seed=9, record=False)
    assert first != moderation_sample(db, "2026-11", 0.5, seed=10, record=False)
    pool = len(moderation_sample(db, "2026-11", 1.0, record=False))
    assert len(first) == -(-pool // 2)  # ceil(50%)
    target = first[0].audit_id
    assert moderate(db, target, "inadequate", "HoS (synthetic)").moderated_grade == "Inadequate"
    figures = load_figures(db, period_for(month="2026-11"), AS_OF)
    audit = next(a for a in figures.audits if a.audit_id == target)
    assert audit.grade == "Inadequate" and audit.state == "moderated"
    row = next(i for i in figures.follow_up if i["audit_id"] == target)
    graded_on = row["graded_on"]
    assert isinstance(graded_on, dt.date)
    assert row["review_by"] == graded_on + dt.timedelta(weeks=4)
    with pytest.raises(ModerationError, match="not on the scale"):
        moderate(db, target, "Excellent", "x")
    unreturned = next(a.audit_id for a in figures.audits if a.state in ("allocated", "sent"))
    with pytest.raises(
        ModerationError,
        match=r"only a complete \(Final\) return can be "
        r"moderated\. Import it first",
    ):
        moderate(db, unreturned, "Good", "x")
    assert parse_rate("10%") == 0.1 and parse_rate("0.25") == 0.25
    with pytest.raises(ModerationError):
        parse_rate("150%")


@pytest.mark.parametrize(
    ("auditor_grade", "moderated_grade", "changed", "said"),
    [
        ("Good", "Inadequate", True, "(changed from Good)"),
        ("Good", "Good", False, "(agrees with the auditor)"),
        ("", "Good", False, "(recorded)"),
    ],
)
def test_a_moderation_says_whether_it_changed_the_grade(
    auditor_grade, moderated_grade, changed, said
):
    from formtool.programme.moderation import Moderation

    result = Moderation("CSC-1", auditor_grade, moderated_grade, "HoS", changed, "moderated")
    assert result.summary() == f"CSC-1: moderated grade {moderated_grade} {said}."


def test_packs_made_from_the_command_line_are_in_the_access_log(demo, tmp_path):
    from click.testing import CliRunner

    from formtool.access.log import access_entries
    from formtool.cli import cli

    out, _, db, _ = demo
    url = f"sqlite:///{out / 'formtool.db'}"
    audit_id = next(r.audit_id for r in records(db) if r.state in COMPLETE)
    runner = CliRunner()
    for args in (
        ["pack", "file", audit_id, "--format", "pdf", "--out", str(tmp_path)],
        ["pack", "pmu", "--month", "2026-11", "--out", str(tmp_path)],
    ):
        result = runner.invoke(cli, [*args, "--db", url])
        assert result.exit_code == 0, result.output
    logged = [(e.action, e.audit_id) for e in access_entries(db) if e.user.startswith("cli")]
    assert ("made a file pack", audit_id) in logged
    assert ("made a PMU pack", None) in logged
