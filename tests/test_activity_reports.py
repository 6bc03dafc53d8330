"""The QA activities' reports: a thematic run's group summary report, the quarterly supervision
report and the observation summary. Prevalence counts exact for known answers (Final returns
only, N/A out of the base), no percentage below the minimum base anywhere in a document, the
theme named, case-level and staff data marked and refused to a viewer, every report in the
access log, and a run of the wrong kind refused in one line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import random
import re
from pathlib import Path
from typing import Any

import docx
import pytest
from pypdf import PdfReader

from formtool import clock, store
from formtool.access.log import access_entries
from formtool.definitions import get_form
from formtool.demo.synthetic import synthetic_auditors, synthetic_population
from formtool.packs.activity import group_report, observation_report, supervision_report
from formtool.packs.activity_figures import (
    OBSERVATIONS,
    Staff,
    action_rows,
    coverage,
    judgements,
    prevalence,
)
from formtool.packs.figures import PackError
from formtool.programme.activity import Activity
from formtool.programme.allocation import run_allocation
from formtool.programme.policy import default_policy
from formtool.programme.runs import RunRequest, start_run
from formtool.read.cases import write_case_list

TODAY = dt.date(2026, 12, 20)
USER = "cli:officer"
PERCENT = re.compile(r"\d\s*%")
ACTIVITIES = (
    Activity(
        id="thematic", code="TH", name="Thematic audit", kind="thematic", form="thematic",
        choose="chosen", on_demand=True, source="test",
    ),
    Activity(
        id="observation", code="OBS", name="Observation of practice", kind="observation",
        form="observation", subject="practitioner", choose="rotation", per_auditor=1,
        times_a_year=1, source="test",
    ),
    Activity(
        id="supervision", code="SUP", name="Supervision audit", kind="supervision",
        form="supervision", subject="supervisor", choose="every", cases=2, source="test",
    ),
)  # fmt: skip
#: The big thematic run's Final returns: question -> answers, one per return.
THEME = {
    "theme.practice_evident": ("Yes", "Yes", "Yes", "No", "No", "N/A"),
    "theme.drift": ("No", "No", "No", "No", "Yes", "Partially"),
    "theme.child_voice": ("Yes", "Yes", "Yes", "Yes", "N/A", "N/A"),
}
GRADES = ("Good", "Good", "Requires improvement", "Inadequate", "Good", "Good")


def text_of(paths: list[Path]) -> str:
    """The words of a report's Word file and PDF, each paragraph and cell once."""
    word, pdf = paths
    document = docx.Document(str(word))
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    pages = "\n".join(p.extract_text() for p in PdfReader(pdf).pages)
    return "\n".join([*(p.text for p in document.paragraphs), *cells, pages])


def store_final(db: Any, audit_id: str, answers: dict[str, str], final: bool = True) -> None:
    """A return for the audit as an import stores it (answers by key), without a file."""
    form = get_form(db.audit_row(audit_id).form_id)
    grade = answers.get(form.judgements.grade, "")
    actions = [
        {
            "table_key": "next_steps.actions",
            "row": 1,
            "recommendation": f"Review the plan for {audit_id}",
            "action": "",
            "responsible_role": "Team manager",
            "responsible_person": "Manager (synthetic)",
            "due_date": dt.date(2027, 1, 31),
            "sign_off": "",
            "sign_off_date": None,
            "comments": "",
        }
    ]
    content = f"{audit_id}{sorted(answers.items())}{final}".encode()
    db.store_return(
        store.ReturnRecord(
            audit_id,
            "bookmarks",
            final,
            {k: (v, "") for k, v in answers.items()},
            actions if final else [],
            grade if final else "",
        ),
        store.ReturnFile(
            f"{audit_id}.docx", content, hashlib.sha256(content).hexdigest(), received_on=TODAY
        ),
        "audit",
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Any]:
    """A database with a thematic run of 8 cases (6 Final returns, 1 Draft, 1 not back), a
    thematic run of 3 (all Final: below the minimum base), and a month's supervision audits
    and observations, some returned."""
    clock.set_today(TODAY)
    root = tmp_path_factory.mktemp("activity-reports")
    db = store.open_store(f"sqlite:///{root / 'db.sqlite'}")
    rng = random.Random(1)
    population = synthetic_population(dt.date(2026, 12, 31), rng, {"cp": 8, "cin": 6})
    write_case_list(root / "population.csv", population)
    write_case_list(root / "auditors.csv", synthetic_auditors("2026-12"))
    staff = [
        {"staff_id": f"S{i}", "name": name, "team": team, "role": "social worker"}
        for i, (name, team) in enumerate(sorted({(r["worker"], r["team"]) for r in population}))
    ] + [
        {"staff_id": f"M{i}", "name": name, "team": team, "role": "team manager"}
        for i, (name, team) in enumerate(sorted({(r["manager"], r["team"]) for r in population}))
    ]
    write_case_list(root / "staff.csv", staff)
    policy = dataclasses.replace(default_policy(), activities=ACTIVITIES)
    run_allocation(
        db, root / "population.csv", root / "auditors.csv", "2026-12", None, 1,
        root / "allocation.csv", policy=policy, staff_path=root / "staff.csv",
    )  # fmt: skip
    cases = [r["case_number"] for r in population]
    runs = {}
    for name, chosen in (("big", cases[:8]), ("small", cases[8:11])):
        write_case_list(root / f"{name}.csv", [{"case_number": c} for c in chosen])
        request = RunRequest(
            "thematic", "2026-12", root / "population.csv", root / "auditors.csv",
            cases=root / f"{name}.csv", theme="Neglect" if name == "big" else "Domestic abuse",
        )  # fmt: skip
        runs[name] = start_run(db, policy, request, root / f"{name}-list.csv", USER).run.id
    big = [r.audit_id for r in db.audit_rows(run_id=runs["big"])]
    for i, audit_id in enumerate(big[:6]):
        answers = {key: values[i] for key, values in THEME.items()}
        answers |= {"overall.judgement": GRADES[i], "findings.strengths": f"Strength {i}"}
        store_final(db, audit_id, answers)
    store_final(db, big[6], {"theme.practice_evident": "Yes", "overall.judgement": "Good"}, False)
    for audit_id in [r.audit_id for r in db.audit_rows(run_id=runs["small"])]:
        store_final(db, audit_id, {"theme.practice_evident": "Yes", "overall.judgement": "Good"})
    by_kind = {r.kind: r.id for r in db.activity_runs()}
    supervisors = db.audit_rows(run_id=by_kind["supervision"])
    for row in supervisors[:-1]:
        store_final(db, row.audit_id, {"quality.frequency": "Yes", "overall.judgement": "Good"})
    observed = db.audit_rows(run_id=by_kind["observation"])
    seen = {"observation.date": "2026-12-03", "standards.respect": "Yes"}
    for row in observed[:2]:
        store_final(db, row.audit_id, seen | {"overall.judgement": "Good"})
    db.set_run(runs["big"], USER, findings="Neglect is recognised early.\nPartners join late.")
    out = root / "out"
    reports = {
        "big": group_report(db, runs["big"], out, USER),
        "small": group_report(db, runs["small"], out, USER),
        "supervision": supervision_report(db, "2026-Q3", out, USER),
        "observation": observation_report(db, "2026-Q3", out, USER, staff=staff),
    }
    clock.set_today(None)
    return {
        "db": db,
        "runs": runs | by_kind,
        "reports": reports,
        "text": {name: text_of(paths) for name, paths in reports.items()},
        "supervisors": supervisors,
        "observed": observed,
        "staff": staff,
        "out": out,
        "root": root,
        "policy": policy,
    }


def test_prevalence_counts_final_returns_only_with_na_out_of_the_base(world):
    text = world["text"]["big"]
    phrase = "good practice on the theme was evident in the case file"
    # 6 Final returns: Yes 3, No 2, N/A 1 -> base 5, proportions shown; the Draft's Yes left out
    assert f"In 3 of the 5 cases audited, {phrase} (60%)." in text
    assert (
        "In 2 of the 5, good practice on the theme was not evident in the case file (40%)." in text
    )
    assert "N/A in 1: left out of the base." in text
    drift = "there was no evidence of drift and delay in the work on the theme"
    assert f"In 4 of the 6 cases audited, {drift} (67%)." in text  # No is favourable here
    assert "The answer was Partially in 1 of the 6 (17%)." in text
    # Yes 4, N/A 2: a base of 4 is below 5: counts, no proportion
    voice = (
        "the child/young person's voice and lived experience were heard in the work on the theme"
    )
    assert f"In 4 of the 4 cases audited, {voice}. N/A in 2: left out of the base. Too few " in text
    assert "Too few cases to give a proportion (fewer than 5 answered)." in text


def test_the_pure_layer_counts_exactly():
    form = get_form("thematic")
    answers = {f"A{i}": {k: (v[i], "") for k, v in THEME.items()} for i in range(len(GRADES))}
    found = {p.item.key: p for p in prevalence(form, answers, min_base=5)}
    evident = found["theme.practice_evident"]
    assert (evident.counts, evident.unscored, evident.base) == (
        {"favourable": 3, "partial": 0, "unfavourable": 2},
        {"N/A": 1},
        5,
    )
    assert found["theme.partners"].unanswered == 6 and found["theme.partners"].base == 0
    plain = dataclasses.replace(found["theme.drift"], item=dataclasses.replace(
        found["theme.drift"].item, finding=("", "")
    ))  # fmt: skip
    assert plain.sentence() == (
        "\u201cIs there evidence of drift and delay in the work on the theme?\u201d: No in 4 of "
        "the 6 cases audited (67%). Yes in 1 of the 6 (17%). Partially in 1 of the 6 (17%)."
    )
    assert "overall.judgement" not in found and "concern.immediate" not in found
    judged = judgements(form, GRADES, min_base=7)
    assert judged is not None and judged.counts == {
        "Good": 4, "Requires improvement": 1, "Inadequate": 1,
    }  # fmt: skip
    assert judged.share("Good") == "" and "Too few cases" in judged.sentence()
    rows = action_rows([{"audit_id": "A1", "action": "Do it", "sign_off": "x"}, {}], {"A1": "C1"})
    assert [(r.subject, r.what, r.signed_off) for r in rows] == [("C1", "Do it", True)]


def test_no_percentage_anywhere_below_the_minimum_base(world):
    text = world["text"]["small"]
    assert "In 3 of the 3 cases audited, good practice on the theme was evident" in text
    assert "Too few cases to give a proportion" in text
    assert not PERCENT.search(text), PERCENT.search(text)
    assert PERCENT.search(world["text"]["big"])  # the check can fail


def test_group_report_names_the_theme_the_run_and_the_findings(world):
    text, small = world["text"]["big"], world["text"]["small"]
    assert "Group summary report: Thematic audit: Neglect" in text
    assert "Domestic abuse" in small and "Neglect" not in small
    assert "Neglect is recognised early." in text and "Partners join late." in text
    run = world["runs"]["small"]
    assert f"The group has not yet recorded its findings: `formtool activity set {run}" in small
    assert "named by the officer" in text  # how the cases were chosen
    assert "8 allocated, 6 of the 8 due returned complete (75%), 2 outstanding" in text
    assert "Strength 0" in text and "Review the plan for" in text
    assert "OFFICIAL-SENSITIVE · CASE-LEVEL" in text and "officers and moderators only" in text
    assert [p.suffix for p in world["reports"]["big"]] == [".docx", ".pdf"]


def test_a_review_names_the_run_it_reviews(world, tmp_path):
    db, root, big = world["db"], world["root"], world["runs"]["big"]
    request = RunRequest(
        "thematic", "2027-06", root / "population.csv", root / "auditors.csv", review_of=big
    )
    review = start_run(db, world["policy"], request, tmp_path / "review.csv", USER).run
    text = text_of(group_report(db, review.id, tmp_path, USER))
    assert f"run {big}: Thematic audit: Neglect (December 2026)" in text
    assert f"the cases of run {big}, reviewed" in text and "Neglect" in text


def test_every_report_is_in_the_access_log(world):
    found = [(e.user, e.action) for e in access_entries(world["db"], USER)]
    for action in (
        "made a group summary report",
        "made a supervision report",
        "made an observation summary",
    ):
        assert (USER, action) in found


def test_a_run_of_the_wrong_kind_or_role_is_refused_in_one_line(world, tmp_path):
    db, runs = world["db"], world["runs"]
    with pytest.raises(PackError) as refused:
        group_report(db, runs["observation"], tmp_path, USER)
    message = str(refused.value)
    assert "\n" not in message and "not a thematic audit or dip sample" in message
    assert "observation summary" in message
    with pytest.raises(PackError, match="for officers and moderators only"):
        group_report(db, runs["big"], tmp_path, USER, roles=("viewer",))
    with pytest.raises(PackError, match="for officers and moderators only"):
        supervision_report(db, "2026-Q3", tmp_path, USER, roles=("viewer",))
    with pytest.raises(PackError, match="No observations of practice in 2027-Q1"):
        observation_report(db, "2027-Q1", tmp_path, USER)
    assert not list(tmp_path.iterdir())


def test_supervision_report_names_supervisors_and_their_judgements(world):
    text, rows = world["text"]["supervision"], world["supervisors"]
    done = len(rows) - 1
    assert f"{done} of the {len(rows)} supervisors allocated were audited" in text
    assert "OFFICIAL-SENSITIVE · STAFF DATA" in text
    assert "officers and moderators only" in text
    for row in rows:
        assert row.case_number in text and json.loads(row.facts)["staff_name"] in text
    assert f"Judgements of the {done} supervision audits: {done} Good." in text
    assert f"In {done} of the {done} supervision audits, supervision was held as often" in text


def test_observation_report_lists_who_was_not_observed_this_year(world, tmp_path):
    text, observed = world["text"]["observation"], world["observed"]
    practitioners = world["staff"]
    missing = len(practitioners) - 2
    share = f"{200 / len(practitioners):.0f}%"
    assert f"2 of {len(practitioners)} ({share}) had a complete observation at least once" in text
    assert f"in the 12 months Jan 2026 - Dec 2026; {missing} did not, listed below." in text
    assert "03/12/2026" in text  # the date of the observation, from the record
    seen = {r.case_number for r in observed[:2]}
    never = [s for s in practitioners if s["staff_id"] not in seen]
    assert all(s["name"] in text for s in never)
    named = text_of(observation_report(world["db"], "2026-12", tmp_path, USER))
    assert "every practitioner an observation audit names" in named
    assert f"2 of {len(observed)} ({200 / len(observed):.0f}%) had a complete" in named


def test_coverage_counts_complete_observations_against_the_aim():
    people = [Staff("S1", "A"), Staff("s2", "B"), Staff("S3", "C")]
    day = dt.date(2026, 6, 1)
    cover = coverage(people, [("S1", day), (" S2 ", None), ("S2", day), ("S9", day)], times=2)
    assert [(c.staff.staff_id, c.observations, c.last) for c in cover.covered] == [("s2", 2, day)]
    assert [c.staff.staff_id for c in cover.missing] == ["S1", "S3"]
    assert cover.practitioners == 3 and OBSERVATIONS.short == "observations"


def test_reports_render_in_word_and_pdf_alike(world):
    for name, (word, pdf) in world["reports"].items():
        reader = PdfReader(pdf)
        assert reader.pages and "Page 1 of" in reader.pages[0].extract_text(), name
        core = docx.Document(io.BytesIO(word.read_bytes())).core_properties
        assert reader.metadata is not None and core.title == reader.metadata.title, name
