"""The PMU pack and the programme's other QA activities (issue 21): case-file figures count
case-file audits alone (the same with the month's dip samples, thematic audits, observations,
supervision audits and family feedback as without), the summary says how many activity audits
it leaves to their own section, each activity's counts, prevalence sentences and feedback
figures are exact, a proportion needs the activity's minimum base, and no member of staff is
named. One allocation per database (with and without activities, on both backends), returns
stored through the store with chosen answers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import random
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from formtool import store
from formtool.definitions import get_form
from formtool.definitions.scales import FAVOURABLE, UNFAVOURABLE
from formtool.demo.synthetic import synthetic_auditors, synthetic_population
from formtool.packs import charts, pmu
from formtool.packs.figures import PmuFigures, load_figures, prevalence
from formtool.packs.pmu import ACTIVITIES, pmu_document
from formtool.packs.render import Document, to_docx, to_pdf
from formtool.packs.workbook import workbook
from formtool.periods import period_for
from formtool.programme.activity import Activity
from formtool.programme.allocation import run_allocation
from formtool.programme.policy import default_policy
from formtool.programme.runs import RunRequest, start_run
from formtool.programme.workflow import exempt_audit
from formtool.read.cases import write_case_list

from conftest import answers_for, drop_pg_database, fresh_pg_database

MONTH = "2026-12"
AS_OF = dt.date(2027, 1, 20)
ACTIVITY_LIST = (
    Activity(
        id="thematic",
        code="TH",
        name="Thematic audit",
        kind="thematic",
        form="thematic",
        choose="filtered",
        size=6,
        on_demand=True,
        source="test",
    ),
    Activity(
        id="dip",
        code="DS",
        name="Dip sample",
        kind="dip_sample",
        form="thematic",
        per_auditor=1,
        source="test",
    ),
    Activity(
        id="observation",
        code="OBS",
        name="Observation of practice",
        kind="observation",
        form="observation",
        subject="practitioner",
        choose="rotation",
        per_auditor=1,
        source="test",
    ),
    Activity(
        id="supervision",
        code="SUP",
        name="Supervision audit",
        kind="supervision",
        form="supervision",
        subject="supervisor",
        choose="every",
        cases=2,
        source="test",
    ),
    Activity(
        id="feedback",
        code="FB",
        name="Family feedback",
        kind="feedback",
        form="family_feedback",
        choose="audited",
        share=0.5,
        source="test",
    ),
    Activity(  # named by the policy, never run: one line says so
        id="closure",
        code="CL",
        name="Audit on closure",
        kind="thematic",
        form="thematic",
        choose="chosen",
        on_demand=True,
        source="test",
    ),
)
#: The thematic returns' answer to "Is good practice on the theme evident?" (6 cases: a
#: proportion) and the dip samples' to "Is the child's voice heard?" (2 cases: too few).
THEMATIC_PRACTICE = ("Yes", "Yes", "Yes", "Yes", "No", "N/A")
DIP_VOICE = ("No", "No")
#: Feedback returns: (how, who, listened_to).
FEEDBACK = (
    ("Telephone", "Parent", "Yes"),
    ("Telephone", "Parent", "No"),
    ("Questionnaire", "Child/young person", "Yes"),
    ("Could not be contacted", "", "N/A"),
)
OBSERVATION_GRADES = ("Good", "Requires improvement")
SUPERVISION_GRADES = ("Inadequate",)
CASE_FILE_RETURNS = 6


@dataclasses.dataclass
class Built:
    db: Any
    audits: list[Any]  # the month's audit rows, after the returns went in

    def of(self, activity: str) -> list[Any]:
        return [a for a in self.audits if a.activity == activity]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small population, eight auditors and a staff file (workers and managers)."""
    root = tmp_path_factory.mktemp("pmu-activities")
    counts = {"cin": 10, "cp": 12, "lac": 6, "early_help": 6}
    population = synthetic_population(dt.date(2026, 12, 31), random.Random(3), counts)
    staff = [
        {"staff_id": f"{prefix}{i}", "name": name, "team": team, "role": role}
        for column, prefix, role in (("worker", "S", "social worker"), ("manager", "M", "manager"))
        for i, (name, team) in enumerate(sorted({(r[column], r["team"]) for r in population}))
    ]
    files = {"population": root / "population.csv", "auditors": root / "auditors.csv"}
    write_case_list(files["population"], population)
    write_case_list(files["auditors"], synthetic_auditors(MONTH)[:8])
    write_case_list(root / "staff.csv", staff)
    return files | {"staff": root / "staff.csv", "root": root}


@contextmanager
def _database(backend: str, request: pytest.FixtureRequest, name: str) -> Iterator[str]:
    """An empty database: an SQLite file, or a fresh PostgreSQL database (dropped after)."""
    if backend == "sqlite":  # a new file each time: a module fixture may be set up again
        folder = request.getfixturevalue("tmp_path_factory").mktemp(name)
        yield f"sqlite:///{folder / name}.db"
        return
    server = request.getfixturevalue("pg_server")
    url = fresh_pg_database(server)
    yield url
    drop_pg_database(server, url)


def _returned(db: Any, audit: Any, answers: dict[str, str], **extra: Any) -> None:
    """A Final return with these answers, stored as an import stores one."""
    form = get_form(audit.form_id)
    grade = answers.get(form.judgements.grade, "") if form.judgements.grade else ""
    record = store.ReturnRecord(
        audit.audit_id,
        "bookmarks",
        True,
        {key: (value, "") for key, value in answers.items()},
        grade=grade,
        **extra,
    )
    digest = hashlib.sha256(f"{audit.audit_id}{sorted(answers.items())}".encode()).hexdigest()
    db.store_return(record, store.ReturnFile(f"{audit.audit_id}.docx", b"", digest), "audit")


def _answers(form_id: str, seed: int, **chosen: str) -> dict[str, str]:
    form = get_form(form_id)
    answers = answers_for(form, seed)
    answers[form.judgements.status] = form.judgements.final
    return answers | chosen


def _action(text: str) -> dict[str, Any]:
    return {"table_key": "next_steps.actions", "row": 1, "action": text, "due_date": AS_OF}


def _build(url: str, inputs: dict[str, Path], activities: bool) -> Built:
    db = store.open_store(url)
    policy = dataclasses.replace(default_policy(), activities=ACTIVITY_LIST if activities else ())
    root = inputs["root"]
    run_allocation(
        db,
        inputs["population"],
        inputs["auditors"],
        MONTH,
        None,
        1,
        root / "allocation.csv",
        policy=policy,
        staff_path=inputs["staff"] if activities else None,
    )
    rows = db.audit_rows([MONTH])
    case_files = [r for r in rows if not r.activity]
    for i, audit in enumerate(case_files[:CASE_FILE_RETURNS]):
        actions = [_action("Update the chronology.")] if i == 0 else []
        _returned(db, audit, _answers(audit.form_id, i), actions=actions)
    if not activities:
        return Built(db, db.audit_rows([MONTH]))
    theme = RunRequest(
        "thematic",
        MONTH,
        inputs["population"],
        inputs["auditors"],
        where=("category=cp",),
        size=6,
        theme="Neglect",
    )
    start_run(db, policy, theme, root / "thematic.csv", "officer")
    rows = db.audit_rows([MONTH])
    built = Built(db, rows)
    for i, (audit, said) in enumerate(zip(built.of("thematic"), THEMATIC_PRACTICE, strict=True)):
        concern = (
            store.RaisedConcern("A synthetic concern.", "Told the manager.") if i == 0 else None
        )
        answers = _answers("thematic", 10 + i, **{"theme.practice_evident": said})
        _returned(db, audit, answers, actions=[_action("Discuss in supervision.")], concern=concern)
    for i, (audit, said) in enumerate(zip(built.of("dip"), DIP_VOICE, strict=False)):
        _returned(db, audit, _answers("thematic", 20 + i, **{"theme.child_voice": said}))
    for i, (audit, (how, who, listened)) in enumerate(
        zip(built.of("feedback"), FEEDBACK, strict=False)
    ):
        chosen = {"contact.how": how, "contact.who": who, "views.listened_to": listened}
        if listened == "N/A":  # no one to ask: every question N/A
            chosen |= {q.key: "N/A" for q in get_form("family_feedback").questions()}
        _returned(db, audit, _answers("family_feedback", 30 + i, **chosen))
    for i, (audit, grade) in enumerate(
        zip(built.of("observation"), OBSERVATION_GRADES, strict=False)
    ):
        _returned(db, audit, _answers("observation", 40 + i, **{"overall.judgement": grade}))
    for i, (audit, grade) in enumerate(
        zip(built.of("supervision"), SUPERVISION_GRADES, strict=False)
    ):
        _returned(db, audit, _answers("supervision", 50 + i, **{"overall.judgement": grade}))
    exempt_audit(db, built.of("observation")[-1].audit_id, "On long-term leave.", "Head of Service")
    return Built(db, db.audit_rows([MONTH]))


@pytest.fixture(scope="module")
def drawn() -> Iterator[list[str]]:
    """Charts as a one-pixel image (drawing them is most of a report's time), with every
    label they were given kept for the check that no one is named."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "PNG")
    labels: list[str] = []

    def draw(*args: Any, **kwargs: Any) -> bytes:
        labels.append(repr((args, kwargs)))
        return out.getvalue()

    with pytest.MonkeyPatch.context() as patch:
        for name in ("grade_chart", "stacked_by_group", "trend_chart"):
            patch.setattr(charts, name, draw)
        yield labels


@pytest.fixture(scope="module")
def without(inputs: dict[str, Path]) -> PmuFigures:
    """The month's figures without activities (one database: the figures do not depend on the
    backend, so each backend's month with activities is held against these)."""
    plain = _build(f"sqlite:///{inputs['root'] / 'plain.db'}", inputs, activities=False)
    return load_figures(plain.db, period_for(month=MONTH), AS_OF)


@dataclasses.dataclass
class Packs:
    full: Built  # the month with activities
    figures: PmuFigures
    document: Document  # the officers' report


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def packs(
    request: pytest.FixtureRequest, inputs: dict[str, Path], drawn: list[str]
) -> Iterator[Packs]:
    """The month with activities on each backend, its figures and the officers' report."""
    with _database(request.param, request, "full") as url:
        full = _build(url, inputs, activities=True)
        figures = load_figures(full.db, period_for(month=MONTH), AS_OF)
        yield Packs(full, figures, pmu_document(figures))


def _case_file_figures(f: PmuFigures) -> dict[str, Any]:
    return {
        "audits": [(a.audit_id, a.state, a.grade) for a in f.audits],
        "by_team": f.by_team,
        "grades": f.grades,
        "grades_by_tool": f.grades_by_tool,
        "domains": f.domains,
        "findings": [(t.name, t.audits, t.findings) for t in f.findings],
        "moderation": f.moderation,
        "actions": f.action_totals,
        "follow_up": f.follow_up,
        "trend": f.trend,
        "concerns": f.concerns,
    }


def _text(document: Document) -> str:
    parts = [document.title, document.subtitle, document.footer]
    for part in document.parts:
        parts += [part.heading, *part.paragraphs, *part.bullets]
        parts += [
            cell for table in part.tables for row in (table.headings, *table.rows) for cell in row
        ]
    return "\n".join(parts)


def test_case_file_figures_leave_activity_audits_out(packs, without):
    full = packs.full.audits
    assert [a.audit_id for a in without.audits] == [a.audit_id for a in full if not a.activity]
    assert len(full) > len(without.audits)  # the activities added audits
    assert _case_file_figures(packs.figures) == _case_file_figures(without)
    assert packs.figures.action_totals["raised"] == 1 and packs.figures.concerns["raised"] == 0
    summary = packs.document.parts[0].paragraphs
    assert pmu._summary(without, False).paragraphs == [
        line for line in summary if "other QA activities" not in line
    ]
    extra = len(full) - len(without.audits)
    said = f"A further {extra} audit(s) of the programme's other QA activities (Thematic audit: 6,"
    assert said in "\n".join(summary)


def test_activity_counts_are_exact(packs):
    full = packs.full
    found = {a.id: a for a in packs.figures.activities}
    assert list(found) == ["thematic", "dip", "observation", "supervision", "feedback"]
    for activity_id, done in (
        ("thematic", 6),
        ("dip", len(DIP_VOICE)),
        ("observation", len(OBSERVATION_GRADES)),
        ("supervision", len(SUPERVISION_GRADES)),
        ("feedback", len(FEEDBACK)),
    ):
        rows = full.of(activity_id)
        exempted = 1 if activity_id == "observation" else 0
        a = found[activity_id]
        assert (len(a.audits), len(a.completed), len(a.exempted)) == (len(rows), done, exempted)
        assert len(a.outstanding) == len(rows) - done - exempted
        assert a.subjects == len({r.case_number for r in rows})
    assert found["thematic"].concerns == {"raised": 1, "open": 1}
    assert found["observation"].grades == {"Good": 1, "Requires improvement": 1}
    assert found["supervision"].grades == {"Inadequate": 1}
    assert found["thematic"].runs == ["Thematic audit: Neglect, due 31/12/2026 (6 audits)"]
    text = _text(packs.document)
    observed = found["observation"]
    assert (
        f"{len(observed.audits)} audit(s) of {observed.subjects} practitioners were allocated: "
        f"2 complete, {len(observed.audits) - 3} outstanding, 1 exempted (agreed not to "
        f"be done). Completion: 2 of the {len(observed.audits) - 1} due ("
    ) in text
    assert "Not run in 2026-12: Audit on closure." in text
    assert "Besides the monthly case file audit, the programme (hull) names 6 QA activities" in text


def _sentence(packs: Packs, activity: str, key: str, outcome: str) -> str:
    """The activity's prevalence sentence for one question, as the pack words it."""
    found = next(a for a in packs.figures.activities if a.id == activity)
    (tool,) = found.findings
    return prevalence(next(f for f in tool.findings if f.item.key == key), outcome, found.min_base)


def test_prevalence_needs_the_minimum_base(packs):
    practice = _sentence(packs, "thematic", "theme.practice_evident", FAVOURABLE)
    assert practice == (  # N/A is out of the base: 5 answered, the minimum
        "In 4 of the 5 cases audited good practice on the theme was evident in the case file (80%)."
    )
    voice = _sentence(packs, "dip", "theme.child_voice", UNFAVOURABLE)
    assert voice == (
        "In 2 of the 2 cases audited the child/young person's voice and lived experience were "
        "not heard in the work on the theme (too few to give a proportion)."
    )
    part = {p.heading: p for p in packs.document.parts}
    assert practice in part["Thematic audit"].bullets and voice in part["Dip sample"].bullets
    dip = part["Dip sample"]  # two complete: no finding or judgement has a proportion
    cells = [cell for table in dip.tables for row in (table.headings, *table.rows) for cell in row]
    assert not [line for line in [*dip.bullets, *cells] if "%" in line]
    assert "Share" in part["Thematic audit"].tables[0].headings  # six judged: shares


def test_feedback_figures_are_exact(packs):
    (feedback,) = next(a for a in packs.figures.activities if a.id == "feedback").feedback
    assert (feedback.records, feedback.gave) == (4, 3)
    facts = dict(feedback.facts)
    assert dict(facts["How was the feedback given?"]) == {
        "Questionnaire": 1,
        "Telephone": 2,
        "In person": 0,
        "Could not be contacted": 1,
        "Not recorded": 0,
    }
    who = dict(facts["Who gave the feedback? (leave blank if no one could be contacted)"])
    assert who == {"Child/young person": 1, "Parent": 2, "Carer": 0, "Other": 0, "Not recorded": 1}
    answers = dict(feedback.answers)
    assert dict(answers["Do they feel listened to?"]) == {
        "Yes": 2,
        "No": 1,
        "Partially": 0,
        "N/A": 1,
        "Not recorded": 0,
    }


def test_no_member_of_staff_is_named(packs, drawn):
    staff = {
        json.loads(r.facts)["staff_name"] for r in packs.full.audits if r.subject_kind != "case"
    }
    assert staff  # the check can fail: the observations' and supervision audits' facts name them
    report = _text(packs.document)  # what the Word and PDF renderings print
    section = dataclasses.replace(packs.document, parts=pmu._activity_parts(packs.figures))
    rendered = _zip_text(to_docx(section))
    assert ACTIVITIES in rendered and "Observation of practice" in rendered
    assert to_pdf(section).startswith(b"%PDF")
    officers = workbook(packs.figures)  # the officers' workbook (no names asked for)
    viewers = workbook(packs.figures, aggregate_only=True)
    assert '<sheet name="Activities"' in _zip_text(viewers, "xl/workbook.xml")
    shown = (report, rendered, _zip_text(officers), _zip_text(viewers), "".join(drawn))
    assert [name for name in staff for text in shown if name in text] == []
    # Nor a judgement that would be one person's: below the base, no table of them.
    few = 0
    for part in pmu._activity_parts(packs.figures)[1:]:
        activity = next(a for a in packs.figures.activities if a.name == part.heading)
        if activity.staff and 0 < sum(activity.grades.values()) < activity.min_base:
            assert not part.tables and any("not shown for fewer" in p for p in part.paragraphs)
            assert not activity.findings  # nor its themes: one person's answers, nearly
            few += 1
    assert few  # the month has staff activities with fewer judged than the base


def _zip_text(data: bytes, part: str = "") -> str:
    """The text of a docx or xlsx: every XML part's, tags removed; or one part's XML."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if part:
            return archive.read(part).decode("utf-8")
        xml = "".join(
            archive.read(n).decode("utf-8") for n in archive.namelist() if n.endswith(".xml")
        )
    return re.sub(r"<[^>]*>", "", xml)
