"""Packs: every figure recomputed from the records, charts present, no names by default,
text never becomes a formula, empty periods refused, files open in LibreOffice."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections import Counter

import docx
import openpyxl
import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from formtool import store
from formtool.demo import run_demo
from formtool.packs.figures import GRADES, MET, period_for
from formtool.packs.file import PackError, file_pack

from conftest import convert

TODAY = dt.date(2026, 11, 22)
AS_OF = dt.date(2026, 12, 5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_demo(out, seed=11, today=TODAY)
    engine = store.open_store(report["db"])
    from formtool.packs.pmu import pmu_pack

    files = {p.suffix: p for p in pmu_pack(engine, out / "pmu2", month="2026-11", as_of=AS_OF)}
    return out, report, engine, files


def records(engine):
    """The month's audits with the grade that counts, straight from the tables."""
    a, g = store.audits.c, store.grades.c
    with engine.connect() as conn:
        return conn.execute(sa.select(a.audit_id, a.team, a.state, a.due_date, a.case_number,
                                      a.facts, g.auditor_grade, g.moderated_grade)
                            .outerjoin(store.grades, g.audit_id == a.audit_id)
                            .where(a.month == "2026-11")).all()


def test_workbook_figures_match_the_records(demo):
    _, _, engine, files = demo
    rows = records(engine)
    completed = [r for r in rows if r.state not in ("allocated", "sent")]
    expected = Counter((r.moderated_grade or r.auditor_grade) for r in completed
                       if (r.moderated_grade or r.auditor_grade))
    book = openpyxl.load_workbook(files[".xlsx"])
    assert book.sheetnames == ["Summary", "Audits", "Answers", "Action tracker",
                               "Moderation log", "Non-completion", "Re-audits"]
    summary = book["Summary"]
    table = {summary.cell(r, 1).value: summary.cell(r, 2).value for r in range(5, 10)}
    assert table == {g: expected.get(g, 0) for g in GRADES}
    assert book["Audits"].max_row - 1 == len(rows)
    assert book["Non-completion"].max_row - 1 == len(rows) - len(completed)
    moderated = [r for r in rows if r.moderated_grade]
    assert book["Moderation log"].max_row - 1 == len(moderated) > 0
    with engine.connect() as conn:
        r, a = store.returns.c, store.audits.c
        actions = conn.execute(
            sa.select(store.actions)
            .join(store.returns, r.id == store.actions.c.return_id)
            .join(store.audits, a.audit_id == r.audit_id)
            .where(r.is_current & (a.month == "2026-11"))).all()
    assert book["Action tracker"].max_row - 1 == len(actions) > 0
    overdue = sum(1 for a in actions if a.due_date and a.due_date < AS_OF and not a.sign_off)
    flags = [c.value for c in book["Action tracker"]["H"][1:]]
    assert flags.count("Yes") == overdue
    with zipfile.ZipFile(files[".xlsx"]) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 3  # grades, KSS, trend: native Excel charts


def test_report_sentences_and_tables_match_the_records(demo):
    _, _, engine, files = demo
    rows = records(engine)
    completed = [r for r in rows if r.state not in ("allocated", "sent")]
    overdue = [r for r in rows if r.state in ("allocated", "sent") and r.due_date < AS_OF]
    document = docx.Document(files[".docx"])
    text = "\n".join(p.text for p in document.paragraphs)
    assert (f"{len(rows)} audits were allocated for 2026-11 (Nov 2026); {len(completed)} were "
            f"completed") in text
    assert f"and {len(overdue)} are overdue as of 05/12/2026" in text
    assert len(document.inline_shapes) == 4  # grade, grade by team, KSS, trend charts
    team_table = document.tables[0]
    by_team = Counter(r.team for r in rows)
    assert {row.cells[0].text: int(row.cells[1].text) for row in team_table.rows[1:]} == by_team
    kss_table = next(t for t in document.tables if t.rows[0].cells[1].text == "Met")
    with engine.connect() as conn:
        met = Counter(v for (v,) in conn.execute(
            sa.select(store.answers.c.value).join(store.returns).where(
                store.returns.c.is_current & (store.answers.c.key == "kss1.met"))))
    kss1 = next(r for r in kss_table.rows if r.cells[0].text.startswith(
        "Knowledge and Skills Statement 1:"))
    assert [int(c.text) for c in kss1.cells[1:]] == [met.get(m, 0) for m in MET]
    assert "In " in text or any("In " in p.text for p in document.paragraphs)


def test_pmu_pack_has_no_names_unless_asked(demo):
    out, _, engine, files = demo
    names = {f for r in records(engine) for f in (r.case_number,)}
    child_names = set()
    for r in records(engine):
        import json

        facts = json.loads(r.facts)
        if facts.get("family_name"):
            child_names.add(f"{facts['given_names']} {facts['family_name']}")
    document_text = "\n".join(p.text for p in docx.Document(files[".docx"]).paragraphs)
    book = openpyxl.load_workbook(files[".xlsx"])
    cells = {str(c.value) for s in book for row in s.iter_rows() for c in row if c.value}
    assert names & cells  # case numbers identify the audits
    assert not [n for n in child_names if n in document_text or n.split()[-1] in cells]
    from formtool.packs.pmu import pmu_pack

    named = pmu_pack(engine, out / "named", month="2026-11", include_names=True, as_of=AS_OF)
    book = openpyxl.load_workbook(named[2])
    assert book["Audits"].cell(1, 13).value == "Family name"
    assert book["Audits"].cell(2, 13).value


def test_file_pack_lays_out_the_audit_and_bundles_with_bookmarks(demo):
    out, report, engine, _ = demo
    bundle = PdfReader(report["file_pack"][0])
    with engine.connect() as conn:
        returned = conn.execute(sa.select(store.returns.c.audit_id).where(
            store.returns.c.is_current).order_by(store.returns.c.audit_id)).scalars().all()
    assert [o.title.split(" ")[0] for o in bundle.outline] == returned
    audit_id = next(a for a in returned if a.startswith("CSC"))
    [word, pdf] = file_pack(engine, [audit_id], out / "one", ("docx", "pdf"))
    text = "\n".join(c.text for t in docx.Document(word).tables for r in t.rows
                     for c in r.cells)
    with engine.connect() as conn:
        answers = conn.execute(sa.select(store.answers).join(store.returns).where(
            store.returns.c.audit_id == audit_id)).all()
    assert all(a.value in text and a.comment in text for a in answers
               if a.key != "completion.completed_on")
    assert "Grading after moderation" in text and "SHA-256 of source file" in text
    assert audit_id in PdfReader(pdf).pages[0].extract_text()
    with pytest.raises(PackError, match="has no imported return yet"):
        unreturned = next(r.audit_id for r in records(engine) if r.state in ("allocated", "sent"))
        file_pack(engine, [unreturned], out / "none", ("pdf",))
    assert not (out / "none").exists()


def test_periods_follow_the_financial_year():
    assert period_for(quarter="2026-Q1").months == ("2026-04", "2026-05", "2026-06")
    assert period_for(quarter="2026-Q4").months == ("2027-01", "2027-02", "2027-03")
    assert period_for(quarter="2026-q4").previous().label == "2026-Q3"
    assert period_for(quarter="2026-Q1").previous().label == "2025-Q4"
    year = period_for(year="2026")
    assert (year.label, year.months[0], year.months[-1]) == ("2026-27", "2026-04", "2027-03")
    assert period_for(month="2026-01").previous().label == "2025-12"
    for bad, message in (({"month": "2026-13"}, "is not YYYY-MM"),
                         ({"quarter": "2026-Q5"}, "is not YYYY-Qn"), ({}, "exactly one")):
        with pytest.raises(PackError, match=message):
            period_for(**bad)


@pytest.mark.libreoffice
def test_pmu_files_open_in_libreoffice_and_render(demo, tmp_path):
    import numpy as np
    import pypdfium2

    _, _, _, files = demo
    pdfs = convert([files[".docx"]], "pdf", tmp_path / "docx")
    pdfs += convert([files[".xlsx"]], "pdf", tmp_path / "xlsx")
    assert all(len(PdfReader(p).pages) >= 1 for p in pdfs)
    for pdf in (pdfs[0], files[".pdf"]):  # LibreOffice's rendering and formtool's own PDF
        page = pypdfium2.PdfDocument(pdf)[1]  # page 2: charts
        pixels = np.asarray(page.render(scale=1).to_pil().convert("L"), dtype=float) / 255
        ink = (pixels < 0.9).mean()
        assert ink > 0.02 and pixels.std() > 0.1, pdf  # text and charts, not a blank page
        page.render(scale=1).to_pil().save(tmp_path / f"{pdf.stem}.png")


def test_empty_period_is_refused_without_files(demo, tmp_path):
    from click.testing import CliRunner

    from formtool.cli import cli

    _, report, _, _ = demo
    result = CliRunner().invoke(cli, ["pack", "pmu", "--quarter", "2025-Q1", "--db",
                                      report["db"], "--out", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert result.output == ("Error: No audits in 2025-Q1 (Apr 2025 - Jun 2025): nothing to "
                             "report. Check the period, or generate and import audits first.\n")
    assert not (tmp_path / "p").exists()


FORMULAS = ("=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)")


def test_text_that_looks_like_a_formula_stays_text_in_every_workbook(tmp_path):
    from formtool.definitions import get_form
    from formtool.fill import fill_docx
    from formtool.generate import write_forms
    from formtool.imports import import_paths
    from formtool.packs.pmu import pmu_pack
    from formtool.reports import export_data, write_export

    from conftest import make_cases

    engine = store.open_store(f"sqlite:///{tmp_path / 'f.db'}")
    form = get_form("csc")
    [made] = write_forms(form, make_cases(tmp_path, form, 1), tmp_path / "forms", ("docx",),
                         engine=engine)
    from conftest import answers_for

    answers = answers_for(form) | {"completion.status": "Final", "kss1.seen_alone": "Yes",
               "kss1.seen_alone.evidence": FORMULAS[0],
               "next_steps.actions.1.action": FORMULAS[1],
               "next_steps.actions.1.responsible_role": FORMULAS[2],
               "next_steps.actions.1.responsible_person": FORMULAS[3],
               "next_steps.actions.1.date_required": "31/12/2026", "overall.grade": "Good"}
    path = tmp_path / "r.docx"
    path.write_bytes(fill_docx(made.path.read_bytes(), answers))
    assert import_paths(engine, [path], TODAY)[0].status == "imported"
    books = [pmu_pack(engine, tmp_path / "pmu", month="2026-11", include_names=True,
                      as_of=AS_OF)[2],
             io.BytesIO(write_export(export_data(engine), "xlsx", None))]
    for book in books:
        workbook = openpyxl.load_workbook(book)
        cells = [c for s in workbook for row in s.iter_rows() for c in row
                 if isinstance(c.value, str) and c.value in FORMULAS]
        assert {c.value for c in cells} >= {FORMULAS[0]} and all(
            c.data_type == "s" for c in cells)
    tracker = openpyxl.load_workbook(books[0])["Action tracker"]
    assert [c.value for c in tracker[2]][2:5] == list(FORMULAS[1:])
    assert all(c.data_type == "s" for c in tracker[2][2:5])


def test_moderation_overrides_and_sample_is_reproducible(tmp_path):
    from formtool.moderation import ModerationError, moderate, moderation_sample, parse_rate

    out = tmp_path / "d"
    report = run_demo(out, seed=3, today=TODAY)
    engine = store.open_store(report["db"])
    first = moderation_sample(engine, "2026-11", 0.5, seed=9, record=False)
    assert first == moderation_sample(engine, "2026-11", 0.5, seed=9, record=False)
    assert first != moderation_sample(engine, "2026-11", 0.5, seed=10, record=False)
    pool = len(moderation_sample(engine, "2026-11", 1.0, record=False))
    assert len(first) == -(-pool // 2)  # ceil(50%)
    target = next(r for r in first if r.auditor_grade).audit_id
    result = moderate(engine, target, "inadequate", "HoS (synthetic)")
    assert result.moderated_grade == "Inadequate"
    from formtool.packs.figures import load_figures

    figures = load_figures(engine, period_for(month="2026-11"), AS_OF)
    audit = next(a for a in figures.audits if a.audit_id == target)
    assert audit.grade == "Inadequate" and audit.state == "moderated"
    assert any(i["audit_id"] == target for i in figures.inadequate)
    row = next(i for i in figures.inadequate if i["audit_id"] == target)
    assert row["review_by"] == row["graded_on"] + dt.timedelta(weeks=4)
    with pytest.raises(ModerationError, match="not on the scale"):
        moderate(engine, target, "Excellent", "x")
    with pytest.raises(ModerationError, match=r"only a complete \(Final\) return can be "
                                              r"moderated\. Import it first"):
        unreturned = next(a.audit_id for a in figures.audits if a.state in ("allocated", "sent"))
        moderate(engine, unreturned, "Good", "x")
    assert parse_rate("10%") == 0.1 and parse_rate("0.25") == 0.25
    with pytest.raises(ModerationError):
        parse_rate("150%")
