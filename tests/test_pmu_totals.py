"""Figures that add up (issue 22 §8): every headline of the PMU pack is the sum of its parts,
each audit counted once and the same numbers as the team table, in the report and the
workbook; and the minimum base holds for charts as for sentences: a chart of too few is not
drawn, and its place says so with the count and the base."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import random
import re
import shutil
import zipfile
from collections import Counter
from typing import Any

import openpyxl
import pytest

from formtool import store
from formtool.definitions import get_form
from formtool.demo.synthetic import synthetic_case
from formtool.generate import record_audits
from formtool.packs import charts
from formtool.packs.figures import PmuFigures, load_figures
from formtool.packs.pmu import pmu_document
from formtool.packs.render import Document, Part, Table
from formtool.packs.standing import STANDING, STANDINGS, InState, tally
from formtool.packs.summary import ALL_TEAMS
from formtool.packs.workbook import workbook
from formtool.periods import period_for
from formtool.read.cases import load_cases, write_case_list

from conftest import DEMO_DAY, Demo

S = store.AuditState
MONTH = "2026-11"
EARLY, LATE = dt.date(2026, 11, 20), dt.date(2026, 11, 30)  # due dates either side of AS_OF
AS_OF = dt.date(2026, 11, 25)
#: The synthetic month: one audit per way an audit can stand, (the moves that take it there,
#: its due date); the two moderated ones are graded.
PLAN: tuple[tuple[tuple[S, ...], dt.date], ...] = (
    ((S.returned, S.moderated), EARLY),  # complete, graded Good
    ((S.returned, S.moderated), EARLY),  # complete, graded Inadequate
    ((S.returned,), EARLY),  # complete, no grade given
    ((), LATE),  # allocated, not yet due
    ((S.sent,), LATE),  # sent, not yet due
    ((S.sent,), EARLY),  # sent, overdue
    ((S.in_progress,), EARLY),  # a draft came back, overdue
    ((S.returned, S.amendment_requested), LATE),  # back with the auditor, not yet due
    ((S.prepared, S.awaiting_audit), EARLY),  # two-stage: picked, with the auditor, overdue
    ((S.prepared,), EARLY),  # two-stage: prepared, waiting to be picked
    ((S.prepared, S.filed_unaudited), EARLY),  # prepared, filed without an audit
    ((S.exempted,), EARLY),  # agreed not to be done
)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> store.Store:
    """The synthetic month (see PLAN), on SQLite: the figures are computed above the store."""
    root = tmp_path_factory.mktemp("totals")
    form = get_form("csc")
    rng = random.Random(22)
    rows = [synthetic_case(form, i, due, rng) for i, (_, due) in enumerate(PLAN, start=1)]
    write_case_list(root / "cases.csv", rows)
    cases = load_cases(root / "cases.csv", form)
    db = store.open_store(f"sqlite:///{root / 'store.db'}")
    record_audits(db, form, cases, user="test")
    for case, (moves, _) in zip(cases, PLAN, strict=True):
        before = S.allocated
        for to in moves:
            if to is S.moderated:
                grade = "Good" if case is cases[0] else "Inadequate"
                db.moderate(case.audit_id, grade, "Moderator (synthetic)", "", "test", [before], [])
            else:
                db.move(store.Move(case.audit_id, (before,), to, to.value), "test")
            before = to
    return db


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """The charts a report asks for, by name with their data (each a stand-in: drawing is
    slow)."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    for name in ("grade_chart", "stacked_by_group", "trend_chart"):

        def draw(*args: Any, _name: str = name, **kwargs: Any) -> bytes:
            calls.append((_name, args))
            return b"png"

        monkeypatch.setattr(charts, name, draw)
    return calls


# --- reading the figures back from the words ------------------------------------------------

_WORDS = {
    "allocated": r"^(\d+) audits were allocated",
    "exempted": r"(\d+) (?:of them )?exempted",
    "filed": r"(\d+) (?:of them )?prepared and filed without an audit",
    "completed": r"(\d+) (?:of the \d+ due )?were completed",
    "outstanding": r"(\d+) (?:is|are) outstanding",
    "not_returned": r"(\d+) not yet returned",
    "started": r"(\d+) in progress or back with the auditor",
    "overdue": r"(\d+) (?:of them )?(?:are )?overdue",
    "prepared": r"(\d+) (?:is|are) prepared and waiting",
}


def headline(text: str) -> dict[str, int]:
    """The numbers the summary's first sentence gives (0 for a part it does not name)."""
    found = {key: re.search(pattern, text) for key, pattern in _WORDS.items()}
    return {key: int(m.group(1)) if m else 0 for key, m in found.items()}


def adds_up(said: dict[str, int]) -> bool:
    parts = sum(said[key] for key in STANDINGS)
    return (
        said["allocated"] == parts
        and said["outstanding"] == said["not_returned"] + said["started"]
        and said["overdue"] <= said["outstanding"]
    )


def table_dicts(table: Table | list[list[Any]]) -> dict[str, dict[str, int]]:
    """A team table as {team: {heading: count}}."""
    headings, *rows = (
        [table.headings, *table.rows] if isinstance(table, Table) else [list(r) for r in table]
    )
    return {str(r[0]): {h: int(v) for h, v in zip(headings[1:], r[1:], strict=True)} for r in rows}


def check_team_table(teams: dict[str, dict[str, int]], said: dict[str, int]) -> None:
    """Each row's places add up to its Allocated; the All teams row is the column sums and
    the headline's numbers."""
    standing = (
        "Completed",
        "Outstanding",
        "Prepared, to be picked for audit",
        "Filed unaudited",
        "Exempted",
    )
    total = teams.pop(ALL_TEAMS)
    for team, row in (*teams.items(), (ALL_TEAMS, total)):
        assert row["Allocated"] == sum(row.get(h, 0) for h in standing), team
        assert row["Overdue (of outstanding)"] <= row["Outstanding"], team
    assert total == {h: sum(row[h] for row in teams.values()) for h in total}
    assert total["Allocated"] == said["allocated"] and total["Completed"] == said["completed"]
    assert total["Outstanding"] == said["outstanding"]
    assert total["Overdue (of outstanding)"] == said["overdue"]
    for key, heading in (("filed", "Filed unaudited"), ("exempted", "Exempted")):
        assert total.get(heading, 0) == said[key]


def check_summary(f: PmuFigures, document: Document) -> dict[str, int]:
    """The summary part of a report adds up (see the module docstring)."""
    summary = document.parts[0]
    said = headline(summary.paragraphs[0])
    assert adds_up(said), summary.paragraphs[0]
    t = f.totals
    assert said == {
        "allocated": t.allocated,
        "exempted": t.exempted,
        "filed": t.filed,
        "completed": t.completed,
        "outstanding": t.outstanding,
        "not_returned": t.not_returned,
        "started": t.started,
        "overdue": t.overdue,
        "prepared": t.prepared,
    }
    assert t.allocated == len(f.audits) == sum(t.parts())
    check_team_table(table_dicts(summary.tables[0]), said)
    graded = next((p for p in summary.paragraphs if "completed audits, " in p), "")
    if f.completed and f.main_scale is not None:
        found = re.search(
            r"Of the (\d+) completed audits, (\d+) were graded \(.*?\): (.*?)(?:, too few|;|\. )",
            graded,
        )
        assert found, graded
        completed, total, bands = int(found[1]), int(found[2]), found[3]
        counts = [int(n) for n in re.findall(r"(\d+)(?: \(\d+%\))? [a-z]", bands)]
        assert completed == len(f.completed) and sum(counts) == total
        missing = re.search(r"(\d+) (?:was|were) not graded on this scale", graded)
        assert total + (int(missing[1]) if missing else 0) == completed, graded
    return said


def _part(document: Document, heading: str) -> Part:
    return next(p for p in document.parts if p.heading == heading)


# --- the synthetic month --------------------------------------------------------------------


def test_the_headline_counts_every_audit_once_as_the_team_table_does(month, drawn):
    figures = load_figures(month, period_for(month=MONTH), AS_OF)
    document = pmu_document(figures)
    said = check_summary(figures, document)
    assert said == {
        "allocated": 12,
        "completed": 3,
        "outstanding": 6,
        "not_returned": 4,
        "started": 2,
        "overdue": 3,
        "prepared": 1,
        "filed": 1,
        "exempted": 1,
    }
    assert "3 of the 10 due were completed (30%)" in document.parts[0].paragraphs[0]
    # the grades: two graded, one complete audit without a grade, said so
    assert (
        "Of the 3 completed audits, 2 were graded (moderated grades used where moderated): 1 "
        "good or better, 0 requires improvement and 1 inadequate, too few to give a proportion "
        "(at least 5 needed); 1 was not graded on this scale: 1 CSC (no grade given)."
    ) in " ".join(document.parts[0].paragraphs)
    # the non-completions are the due audits not complete: never exempted or filed
    assert {a.standing for a in figures.not_completed} == {"outstanding", "prepared"}
    assert len(figures.not_completed) == figures.totals.not_completed == 7
    book = openpyxl.load_workbook(io.BytesIO(workbook(figures)))
    assert book["Non-completion"].max_row - 1 == 7
    summary = [list(r) for r in book["Summary"].iter_rows(values_only=True)]
    assert summary[2][0] == document.parts[0].paragraphs[0]  # the same headline
    end = next(i for i, r in enumerate(summary) if r[0] == ALL_TEAMS) + 1
    shown = [[c for c in r if c is not None] for r in summary[3:end]]
    assert table_dicts(shown) == table_dicts(document.parts[0].tables[0])


def test_charts_of_fewer_than_the_minimum_base_are_not_drawn(month, drawn):
    figures = load_figures(month, period_for(month=MONTH), AS_OF)  # min_base 5: 2 graded
    document = pmu_document(figures)
    assert drawn == []  # no grade, team or trend chart of two audits
    grades = _part(document, "Grades")
    assert not grades.images
    assert (
        "Too few audits were graded to chart the grades (2; at least 5 needed): the table gives "
        "the counts."
    ) in grades.paragraphs
    assert any(
        p.startswith("Not charted, too few graded audits in a team") for p in grades.paragraphs
    )
    assert [t.headings[-1] for t in grades.tables] == ["Audits", "Graded", "Graded"]  # no share
    trend = _part(document, "Trend")
    assert not trend.images and "Too few audits were graded in any period" in trend.paragraphs[0]
    assert "too few graded" in [c for row in trend.tables[0].rows for c in row]
    assert all(figures.trend[-1][o] is None for o in ("favourable", "partial", "unfavourable"))
    book = io.BytesIO(workbook(figures, aggregate_only=True))
    with zipfile.ZipFile(book) as archive:
        assert not [n for n in archive.namelist() if n.startswith("xl/charts/")]
        notes = archive.read("xl/drawings/drawing1.xml").decode()
    assert "Too few audits were graded to chart the grades (2; at least 5 needed)" in notes
    # from a base of one, the same month is charted: the check can fail
    drawn.clear()
    low = load_figures(month, period_for(month=MONTH), AS_OF, min_base=1)
    assert _part(pmu_document(low), "Grades").images
    assert sorted({name for name, _ in drawn}) == ["grade_chart", "stacked_by_group", "trend_chart"]
    assert low.trend[-1]["favourable"] == 50.0


def test_every_state_stands_in_exactly_one_place():
    assert set(STANDING) == {s.value for s in S}
    assert set(STANDING.values()) == set(STANDINGS)

    class Audit(InState):
        def __init__(self, state: str) -> None:
            self.state, self.due_date = state, EARLY

    every = [Audit(s.value) for s in S] + [Audit("a state from a newer formtool")]
    counted = tally(every, AS_OF)
    assert counted.allocated == sum(counted.parts()) == len(every)
    assert counted.outstanding == counted.not_returned + counted.started == counted.overdue


# --- the demo's month -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_figures(demo_run: Demo, tmp_path_factory: pytest.TempPathFactory) -> PmuFigures:
    """The demo's month, from a copy of its database (the demo is shared by the run)."""
    copy = tmp_path_factory.mktemp("demo-totals") / "formtool.db"
    shutil.copyfile(demo_run.out / "formtool.db", copy)
    db = store.open_store(f"sqlite:///{copy}")
    return load_figures(db, period_for(month=DEMO_DAY.strftime("%Y-%m")), DEMO_DAY)


def test_every_headline_of_the_demo_pack_adds_up(demo_figures: PmuFigures, drawn):
    f = demo_figures
    document = pmu_document(f)
    check_summary(f, document)
    text = {p.heading: p for p in document.parts}
    actions = re.search(
        r"(\d+) actions were raised .*?: (\d+) signed off and (\d+) open \((\d+) of them overdue",
        text["Actions"].paragraphs[0],
    )
    assert actions and int(actions[1]) == int(actions[2]) + int(actions[3]) >= int(actions[4])
    m = f.moderation
    assert m["moderated"] == m["agreed"] + m["up"] + m["down"] + m["other"]
    for tool, part in ((t, text[f"{t}: domains judged"]) for t in f.domains):
        completed = next(t.audits for t in f.findings if t.name == tool)
        if completed < f.min_base:  # Supported Lodgings in the demo: the chart is not drawn
            assert not part.images
            assert part.paragraphs == [
                f"Too few {tool} audits were completed to chart the domains judged ({completed}; "
                f"at least {f.min_base} needed): the table gives the counts."
            ]
    assert any(
        next(t.audits for t in f.findings if t.name == tool) < f.min_base for tool in f.domains
    )  # the demo has a tool below the base, so the check above ran
    # a domain judged in too few audits (N/A left out) is left out of its tool's chart
    tool = next(t.name for t in f.findings if t.audits >= f.min_base and t.name in f.domains)
    (label, _, choices), *others = f.domains[tool]
    few = (label, Counter({choices[0]: 1}), choices)
    thin = dataclasses.replace(f, domains={tool: [few, *others]})
    drawn.clear()
    part = _part(pmu_document(thin), f"{tool}: domains judged")
    assert part.paragraphs == [
        f"Not charted, too few audits judged, N/A left out (at least {f.min_base} needed): "
        f"{label} (1). The table gives the counts."
    ]
    [groups] = [a[0] for name, a in drawn if name == "stacked_by_group" and tool in a[3]]
    assert groups == [d[0] for d in others] and part.tables[0].rows[0][0] == label
    for activity in f.activities:
        words = " ".join(text[activity.name].paragraphs)
        found = re.search(r"(\d+) audit\(s\) of .*? were allocated: (.*?)\. Completion", words)
        assert found, words
        parts = [int(n) for n in re.findall(r"(\d+) [a-z]", found[2])]
        assert int(found[1]) == sum(parts) == len(activity.audits), words
    elsewhere = next(p for p in document.parts[0].paragraphs if p.startswith("A further"))
    each = [int(n) for n in re.findall(r": (\d+)", elsewhere)]
    assert int(re.findall(r"\d+", elsewhere)[0]) == sum(each) == len(f.activity_audits)
    book = openpyxl.load_workbook(io.BytesIO(workbook(f, aggregate_only=True)))
    sheet = [list(r) for r in book["Activities"].iter_rows(values_only=True)]
    heads = sheet[0]
    for row in sheet[1:]:
        cells = dict(zip(heads, row, strict=True))
        places = ("Complete", "Outstanding", "Prepared, to be picked", "Filed unaudited")
        assert cells["Allocated"] == sum(cells.get(h) or 0 for h in (*places, "Exempted"))


def test_a_regions_teams_are_charted_in_several_charts_that_each_fit_a_page() -> None:
    """A region's database holds a hundred teams: one grades-by-team chart of them all was
    taller than the page and the PDF could not be made (reportlab LayoutError)."""
    import struct
    from collections import Counter

    from formtool.packs import charts
    from formtool.packs.pmu import _by_team

    teams = {
        f"Council {n // 6:02d} team {n % 6 + 1} (synthetic)": Counter(Good=5) for n in range(50)
    }
    images, alts, notes = _by_team(teams, ("Good", "Inadequate"), 5)
    assert len(images) == len(alts) > 1 and notes == []
    assert alts[0].count("Council") < 50 and "(1 of " in alts[0]
    for image in images:
        width, height = struct.unpack(">II", image[16:24])  # the PNG's IHDR
        assert height / charts.DPI * 72 * (504 / (width / charts.DPI * 72)) < 700  # as drawn
