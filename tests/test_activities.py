"""Every QA activity end to end (issue 21): drawn by `allocate` (dip samples, observations,
supervision audits, feedback, audits an event triggers) or started by an officer (a thematic
audit), generated as .docx and .xlsx, filled, saved through LibreOffice (SQLite; PostgreSQL
reads the files as filled), imported, and reported; and the rules of drawing each, one by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_auditors, synthetic_population
from formtool.generate import generate
from formtool.periods import Month
from formtool.programme.activity import Activity
from formtool.programme.allocation import run_allocation
from formtool.programme.policy import DeadlineRule, Policy, default_policy
from formtool.programme.runs import RunRequest, start_run
from formtool.read.batch import import_paths
from formtool.read.cases import write_case_list

from conftest import convert

MONTH = "2026-12"
TODAY = dt.date(2026, 12, 10)
GROUP = "team managers"
#: One of each kind, small: the month draws a handful of audits of each.
ACTIVITIES = (
    Activity(
        id="thematic", code="TH", name="Thematic audit", kind="thematic", form="thematic",
        choose="filtered", size=20, on_demand=True, review_months=6, min_base=3, source="test",
    ),
    Activity(
        id="dip", code="DS", name="Dip sample", kind="dip_sample", form="thematic",
        per_auditor=1, auditors=(GROUP,), source="test",
    ),
    Activity(
        id="observation", code="OBS", name="Observation of practice", kind="observation",
        form="observation", subject="practitioner", choose="rotation", per_auditor=1,
        auditors=(GROUP,), team="own", deadline=DeadlineRule(day=14, month=1, adjust="nearest"),
        source="test",
    ),
    Activity(
        id="supervision", code="SUP", name="Supervision audit", kind="supervision",
        form="supervision", subject="supervisor", choose="every", cases=3, team="other",
        auditors=(GROUP,), source="test",
    ),
    Activity(
        id="feedback", code="FB", name="Feedback from children and families", kind="feedback",
        form="family_feedback", choose="audited", share=0.5, source="test",
    ),
    Activity(
        id="panel", code="PNL", name="Adoption audit at Panel", kind="event",
        form="prospective_adopter", choose="event", event="panel_on", team="any",
        source="test",
    ),
)  # fmt: skip
PLAN = "samples:\n  - {name: Control sample, form: csc, categories: [cin, cp, lac], size: 4}\n"


def activity_policy() -> Policy:
    return dataclasses.replace(default_policy(), activities=ACTIVITIES)


@dataclasses.dataclass
class World:
    db: Any
    root: Path
    policy: Policy
    thematic: Any  # the started run
    imported: list[Any]
    produced: list[Any]
    filled: dict[str, dict[str, str]]  # audit id -> the answers typed into its form


def inputs(root: Path) -> dict[str, Path]:
    """A small synthetic month: population (two adopters at Panel in November), auditors
    (two team managers), and the staff the population names."""
    rng = random.Random(21)
    counts = {"cin": 5, "cp": 6, "lac": 4, "prospective_adopter": 3}
    population = synthetic_population(dt.date(2026, 12, 31), rng, counts)
    for row in population:
        row["panel_on"] = ""
    adopters = [r for r in population if r["category"] == "prospective adopter"]
    adopters[0]["panel_on"], adopters[1]["panel_on"] = "2026-11-12", "2026-10-02"
    auditors = synthetic_auditors(MONTH)
    for row in auditors:
        row["group"] = GROUP if row["name"].endswith(("1 (synthetic)",)) else ""
    staff = [
        {"staff_id": f"S{i}", "name": name, "team": team, "role": "social worker"}
        for i, (name, team) in enumerate(sorted({(r["worker"], r["team"]) for r in population}))
    ] + [
        {"staff_id": f"M{i}", "name": name, "team": team, "role": "team manager"}
        for i, (name, team) in enumerate(sorted({(r["manager"], r["team"]) for r in population}))
    ]
    paths = {"population": root / "population.csv", "auditors": root / "auditors.csv"}
    write_case_list(paths["population"], population)
    write_case_list(paths["auditors"], auditors)
    write_case_list(root / "staff.csv", staff)
    (root / "plan.yaml").write_text(PLAN, encoding="utf-8")
    return paths | {"staff": root / "staff.csv", "plan": root / "plan.yaml"}


def fill(produced: list[Any], folder: Path, filled: dict[str, dict[str, str]]) -> list[Path]:
    """Each activity audit's form filled in the format it alternates to (so every activity
    has a .docx and an .xlsx return where it has two audits); `filled` gets the answers."""
    folder.mkdir(parents=True, exist_ok=True)
    rng, written = random.Random(5), []
    audits = sorted({p.case.audit_id for p in produced if not p.case.audit_id.startswith("CSC")})
    prefixes = [a.split("-")[0] for a in audits]
    fmt = {
        a: ("docx", "xlsx")[prefixes[: i + 1].count(prefixes[i]) % 2] for i, a in enumerate(audits)
    }
    for item in sorted(produced, key=lambda p: (p.case.audit_id, p.format)):
        if fmt.get(item.case.audit_id) != item.format:
            continue
        form = get_form(item.case.form_id)
        answers = synthetic_answers(form, item.case, rng, TODAY, ("", "preparer", "auditor"))
        filled[item.case.audit_id] = answers
        path = folder / item.path.name
        path.write_bytes(fill_return(item.path.read_bytes(), item.format, form, answers))
        written.append(path)
    return written


def through_libreoffice(files: list[Path], out: Path) -> list[Path]:
    """Open and save every return in LibreOffice: one call per format."""
    saved = []
    for fmt in ("docx", "xlsx"):
        batch = [f for f in files if f.suffix == f".{fmt}"]
        if batch:
            saved += convert(batch, fmt, out)
    return saved


def build(root: Path, url: str, libreoffice: bool) -> World:
    db = store.open_store(url)
    paths = inputs(root)
    policy = activity_policy()
    allocation = run_allocation(
        db, paths["population"], paths["auditors"], MONTH, paths["plan"], 7,
        root / "allocation.csv", policy=policy, staff_path=paths["staff"],
    )  # fmt: skip
    # Only the activities' forms are made and returned: the case-file ones are not the point.
    write_case_list(root / "activities.csv", [r for r in allocation.rows if r.get("activity")])
    request = RunRequest(
        "thematic", MONTH, paths["population"], paths["auditors"], where=("category=cp",),
        size=3, theme="Neglect (synthetic)", owner="Lead A (synthetic)",
    )  # fmt: skip
    started = start_run(db, policy, request, root / "thematic.csv", "cli:officer")
    produced = generate(None, root / "activities.csv", root / "forms", "both", db=db)
    produced += generate(None, root / "thematic.csv", root / "forms", "both", db=db)
    filled: dict[str, dict[str, str]] = {}
    returns = fill(produced, root / "filled", filled)
    if libreoffice:
        returns = through_libreoffice(returns, root / "saved")
    imported = import_paths(db, returns, TODAY)
    return World(db, root, policy, started, imported, produced, filled)


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory) -> World:
    """The month on SQLite, its returns saved through LibreOffice."""
    root = tmp_path_factory.mktemp("activities-sqlite")
    return build(root, f"sqlite:///{root / 'db.sqlite'}", libreoffice=True)


@pytest.fixture(scope="module")
def postgresql_world(request, tmp_path_factory) -> World:
    """The month on PostgreSQL (the returns as filled: LibreOffice is SQLite's part)."""
    from conftest import drop_pg_database, fresh_pg_database

    root = tmp_path_factory.mktemp("activities-postgresql")
    server = request.getfixturevalue("pg_server")
    url = fresh_pg_database(server)
    request.addfinalizer(lambda: drop_pg_database(server, url))
    return build(root, url, libreoffice=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request) -> World:
    return request.getfixturevalue(f"{request.param}_world")


def activity_audits(world: World, activity: str) -> list[Any]:
    return [r for r in world.db.audit_rows([MONTH]) if r.activity == activity]


# --- end to end, one activity at a time -------------------------------------------------------


def test_every_return_of_every_activity_is_stored_as_filled(world: World) -> None:
    outcomes = Counter(o.status for o in world.imported)
    assert outcomes == Counter({"imported": len(world.imported)}), [
        (o.file, [i.message for i in o.issues]) for o in world.imported if o.status != "imported"
    ]
    returned = {o.audit_id for o in world.imported}
    kinds = {r.activity for r in world.db.audit_rows([MONTH]) if r.audit_id in returned}
    assert kinds == {a.id for a in ACTIVITIES}


def test_every_answer_is_stored_as_typed_after_libreoffice_saved_it(sqlite_world: World):
    """The one LibreOffice round trip of each new tool: Word and Excel, every answer read
    back from the file LibreOffice saved as it was typed (and so imported: see above)."""
    from formtool.read import read_path

    formats = Counter[tuple[str, str]]()
    for outcome in sqlite_world.imported:
        result = read_path(Path(outcome.file))
        typed = sqlite_world.filled[outcome.audit_id]
        wrong = {
            k: (v, result.values.get(k)) for k, v in typed.items() if result.values.get(k) != v
        }
        assert wrong == {}, outcome.file
        formats[(result.form.id, Path(outcome.file).suffix)] += 1
    for tool in ("thematic", "supervision", "observation", "family_feedback"):
        assert formats[(tool, ".docx")] and formats[(tool, ".xlsx")], (tool, formats)


@pytest.mark.parametrize("activity", [a.id for a in ACTIVITIES])
def test_each_activity_has_one_run_and_its_audits_point_at_it(world: World, activity: str):
    runs = world.db.activity_runs(activity)
    assert len(runs) == 1
    audits = activity_audits(world, activity)
    assert audits and {a.run_id for a in audits} == {runs[0].id}
    assert runs[0].audits == len(audits)
    code = next(a.code for a in ACTIVITIES if a.id == activity)
    assert all(a.audit_id.startswith(f"{code}{runs[0].id}-") for a in audits)
    assert all(a.audit_id.endswith("-202612") for a in audits)


def test_a_thematic_run_takes_the_filtered_cases_with_its_theme(world: World) -> None:
    run = world.db.require_run(world.thematic.run.id)
    assert (run.theme, run.owner, bool(run.on_demand)) == (
        "Neglect (synthetic)",
        "Lead A (synthetic)",
        True,
    )
    assert run.chosen == "drawn at random where category = cp"
    audits = activity_audits(world, "thematic")
    assert len(audits) == 3
    assert {json.loads(a.facts)["theme"] for a in audits} == {"Neglect (synthetic)"}
    assert all(a.case_number.startswith("SYNCP") for a in audits)


def test_dip_samples_go_one_per_team_manager(world: World) -> None:
    audits = activity_audits(world, "dip")
    managers = {r["name"] for r in synthetic_auditors(MONTH) if r["name"].endswith("1 (synthetic)")}
    assert Counter(a.auditor for a in audits) == Counter(dict.fromkeys(managers, 1))
    assert all(a.subject_kind == "case" for a in audits)


def test_observations_look_at_practitioners_of_the_observers_own_team(world: World) -> None:
    audits = activity_audits(world, "observation")
    assert audits and all(a.subject_kind == "practitioner" for a in audits)
    teams = {r["name"]: r["team"] for r in synthetic_auditors(MONTH)}
    assert all(teams[a.auditor] == a.team for a in audits)
    assert {a.due_date for a in audits} == {dt.date(2027, 1, 14)}  # the 14th, next month
    assert all(json.loads(a.facts)["staff_name"].startswith("Worker") for a in audits)


def test_supervision_audits_list_the_supervisors_own_cases(world: World) -> None:
    population = {r["case_number"]: r for r in read_population(world)}
    for audit in activity_audits(world, "supervision"):
        facts = json.loads(audit.facts)
        cases = facts["cases"].split(", ")
        assert len(cases) == 3
        assert {population[c]["manager"] for c in cases} == {facts["staff_name"]}
        assert audit.team != next(
            r["team"] for r in synthetic_auditors(MONTH) if r["name"] == audit.auditor
        )


def read_population(world: World) -> list[dict[str, str]]:
    from formtool.programme.allocation import load_population

    return load_population(world.root / "population.csv")


def test_feedback_is_sought_by_the_auditor_of_half_the_months_case_file_audits(world: World):
    case_file = {r.case_number: r.auditor for r in world.db.audit_rows([MONTH]) if not r.activity}
    feedback = activity_audits(world, "feedback")
    assert len(feedback) == 2  # half of 4, rounded up
    assert all(case_file[f.case_number] == f.auditor for f in feedback)


def test_only_the_adopter_at_panel_last_month_is_audited(world: World) -> None:
    [audit] = activity_audits(world, "panel")
    population = {r["case_number"]: r for r in read_population(world)}
    assert population[audit.case_number]["panel_on"] == "2026-11-12"


def test_activity_audits_count_toward_no_quota_and_keep_no_case_out_of_the_sample(world):
    from formtool.store import Store

    db: Store = world.db
    recent, done = db.preview_allocation(
        lambda reads: reads.allocation_history(MONTH, MONTH, MONTH, MONTH)
    )
    case_file = [r for r in db.audit_rows([MONTH]) if not r.activity]
    assert set(recent) == {r.case_number for r in case_file}
    assert sum(done.values()) == len(case_file)
    _, counting = db.preview_allocation(
        lambda reads: reads.allocation_history(MONTH, MONTH, MONTH, MONTH, ("dip",))
    )
    assert sum(counting.values()) == len(case_file) + len(activity_audits(world, "dip"))


# --- the commands --------------------------------------------------------------------------


@pytest.fixture
def copied(sqlite_world: World, tmp_path: Path, monkeypatch) -> tuple[str, Path]:
    """A copy of the SQLite month to change (the month itself is shared by the module): the
    commands are the same on both backends."""
    world, copy = sqlite_world, tmp_path / "db.sqlite"
    source, target = sqlite3.connect(world.root / "db.sqlite"), sqlite3.connect(copy)
    source.backup(target)  # with what is still in the source's WAL
    source.close()
    target.close()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("FORMTOOL_DB", url)
    monkeypatch.setenv("FORMTOOL_TODAY", TODAY.isoformat())
    (tmp_path / "formtool.toml").write_text("", encoding="utf-8")
    monkeypatch.setenv("FORMTOOL_CONFIG", str(tmp_path / "formtool.toml"))
    return url, world.root


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_an_officer_starts_lists_and_records_the_findings_of_a_run(copied, tmp_path):
    _url, root = copied
    cases = tmp_path / "cases.csv"
    cases.write_text("case_number\nSYNCI0001\nSYNCI0002\n", encoding="utf-8")
    code, out, err = run(
        "activity", "start", "thematic", "--month", "2027-01", "--population",
        root / "population.csv", "--auditors", root / "auditors.csv", "--cases", cases,
        "--theme", "Missing from home (synthetic)", "--out", tmp_path / "run.csv", "--json",
    )  # fmt: skip
    assert code == 0, err
    started = json.loads(out)
    assert [a["case_number"] for a in started["audits"]] == ["SYNCI0001", "SYNCI0002"]
    assert started["chosen"] == "named by the officer" and started["due"] == "2027-01-31"
    number = started["run"]
    code, out, err = run("activity", "set", number, "--findings", "Plans name the risk.")
    assert code == 0 and f"Run {number}" in out
    listed = json.loads(run("activity", "list", "--json")[1])
    mine = next(r for r in listed["runs"] if r["run"] == number)
    assert (mine["findings"], mine["audits"], mine["outstanding"], mine["review_due"]) == (
        "Plans name the risk.",
        2,
        2,
        "2027-07",  # seed 001 4.13: a review after six months
    )
    # Six months on one case has closed: the other is reviewed, and the officer is told.
    population = root / "population.csv"
    lines = population.read_text(encoding="utf-8").splitlines()
    later = tmp_path / "population-july.csv"
    later.write_text("\n".join(x for x in lines if not x.startswith("SYNCI0002,")) + "\n")
    review = run(
        "activity", "start", "thematic", "--month", "2027-07", "--review-of", number,
        "--population", later, "--auditors", root / "auditors.csv",
        "--out", tmp_path / "review.csv", "--json",
    )  # fmt: skip
    assert review[0] == 0, review[2]
    again = json.loads(review[1])
    assert again["review_of"] == number and again["theme"] == "Missing from home (synthetic)"
    assert [a["case_number"] for a in again["audits"]] == ["SYNCI0001"]
    assert again["notes"] == [
        f"SYNCI0002 of run {number} are not in the population {later} any more (closed?): "
        "not reviewed."
    ]
    listed = json.loads(run("activity", "list", "--json")[1])
    assert next(r for r in listed["runs"] if r["run"] == number)["review_due"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "has no activity 'nope'. Its activities: thematic, dip,"),
        (("dip",), "is drawn by `formtool allocate` in its months"),
        (("thematic", "--where", "colour=blue"), "[--where 'colour=blue'] the population has no"),
        (("thematic", "--where", "category>=x"), "[--where 'category>=x'] 'x' is not a number"),
        (("thematic", "--where", "nonsense"), "[--where 'nonsense'] is not a condition"),
        (("thematic", "--review-of", "999"), "There is no activity run 999"),
        (("thematic", "--review-of", "2"), "looks at members of staff, not cases"),
        (("thematic", "--where", "category=none"), "no case of the population where category"),
    ],
)
def test_a_run_that_cannot_start_says_why_and_writes_nothing(copied, args, message):
    url, root = copied
    before = Path(url.removeprefix("sqlite:///")).read_bytes()
    code, _out, err = run(
        "activity", "start", *args, "--month", "2027-01", "--population",
        root / "population.csv", "--auditors", root / "auditors.csv",
    )  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert Path(url.removeprefix("sqlite:///")).read_bytes() == before


def test_replacing_a_month_keeps_what_was_sent_and_tops_its_runs_up(copied, tmp_path):
    """`allocate --replace` draws again only what was not sent: a run with an audit already
    sent stays (same run, same id) and gets back the audits it lost; feedback follows the
    month's new case file audits; `--add` draws no activity and says so."""
    url, root = copied
    common = (
        "allocate", "--population", root / "population.csv", "--auditors",
        root / "auditors.csv", "--month", "2027-01", "--plan", root / "plan.yaml",
        "--staff", root / "staff.csv", "--json",
    )  # fmt: skip
    code, out, err = run(*common, "--out", tmp_path / "first.csv")
    assert code == 0, err
    db = store.open_store(url)
    before = {r.activity: r for r in db.activity_runs(months=["2027-01"])}
    january = db.audit_rows(["2027-01"])
    counts = Counter(a.activity for a in january)
    sent = [next(a for a in january if a.activity == k) for k in ("observation", "feedback")]
    with store.transaction(db.engine) as conn:
        for audit in sent:
            store.move_state(conn, audit.audit_id, [store.AuditState.allocated],
                             store.AuditState.sent, "sent")  # fmt: skip
    code, out, err = run(*common, "--out", tmp_path / "again.csv", "--replace", "--seed", "9")
    assert code == 0, err
    after = {r.activity: r for r in db.activity_runs(months=["2027-01"])}
    assert after["observation"].id == before["observation"].id  # the run with a sent audit
    rows = db.audit_rows(["2027-01"])
    assert {a.audit_id for a in sent} <= {r.audit_id for r in rows}  # what was sent stays
    assert Counter(r.activity for r in rows)["observation"] == counts["observation"]
    case_files = {r.case_number for r in rows if not r.activity}
    feedback = [r for r in rows if r.activity == "feedback"]
    unsent_feedback = {r.case_number for r in feedback if r.audit_id != sent[1].audit_id}
    assert unsent_feedback <= case_files  # new feedback only for cases audited now
    assert len(feedback) >= -(-len(case_files) // 2)  # half the month's, rounded up
    stray = sent[1].case_number not in case_files
    assert ("no longer audited this month" in out) == stray
    code, out, err = run(*common, "--out", tmp_path / "more.csv", "--add")
    assert code == 0, err
    assert "--add draws case file audits only" in out
    assert Counter(r.activity for r in db.audit_rows(["2027-01"]) if r.activity) == Counter(
        r.activity for r in rows if r.activity
    )


def test_next_month_observes_the_practitioners_not_yet_observed(copied, tmp_path):
    url, root = copied
    db = store.open_store(url)
    december = {a.case_number for a in db.audit_rows([MONTH]) if a.activity == "observation"}
    code, out, err = run(
        "allocate", "--population", root / "population.csv", "--auditors",
        root / "auditors.csv", "--month", "2027-01", "--plan", root / "plan.yaml",
        "--staff", root / "staff.csv", "--out", tmp_path / "january.csv", "--json",
    )  # fmt: skip
    assert code == 0, err
    runs = json.loads(out)["activities"]
    assert {r["activity"] for r in runs} >= {"observation", "dip", "supervision", "feedback"}
    january = {a.case_number for a in db.audit_rows(["2027-01"]) if a.activity == "observation"}
    assert january and not january & december
    # The turn each practitioner has: done in December, or in hand (January's, not yet back)
    turns = db.preview_allocation(lambda reads: reads.subject_months("observation"))
    assert {s: turns[s] for s in december} == dict.fromkeys(december, MONTH)
    assert {s: turns[s] for s in january} == dict.fromkeys(january, "9999-12")


def test_staff_results_reach_only_the_roles_the_programme_names(copied):
    """An observation is about a practitioner: staff data. With the activity's results_for
    narrowed to moderators, an officer is refused its page, its file pack and its return
    file (403, saying who may); a moderator sees it; a viewer sees no audit at all."""
    from starlette.testclient import TestClient

    from formtool.access.accounts import add_user
    from formtool.programme.policy import policy_snapshot
    from formtool.settings import Settings
    from formtool.web.app import create_app

    url, _root = copied
    db = store.open_store(url)
    narrowed = tuple(
        dataclasses.replace(a, results_for=("moderator",)) if a.id == "observation" else a
        for a in ACTIVITIES
    )
    policy = dataclasses.replace(activity_policy(), activities=narrowed)
    db.use_policy(policy.name, policy_snapshot(policy), "cli:test")
    for name, role in (("olive", "officer"), ("mo", "moderator"), ("vic", "viewer")):
        add_user(db, name, role, "correct horse battery staple 21")
    observed = next(
        a for a in db.audit_rows([MONTH]) if a.activity == "observation" and a.return_id
    )
    dip = next(a for a in db.audit_rows([MONTH]) if a.activity == "dip")
    app = create_app(db, Settings(council="Example Council"))

    def client(name: str) -> TestClient:
        c = TestClient(app, follow_redirects=False)
        page = c.get("/login").text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"name": name, "password": "correct horse battery staple 21", "csrf": csrf}
        assert c.post("/login", data=form | {"next": "/"}).status_code == 303
        return c

    page = f"/audits/{observed.audit_id}"
    officer, moderator, viewer = client("olive"), client("mo"), client("vic")
    for path in (page, f"{page}/pack.pdf", f"/returns/{observed.return_id}/file"):
        refused = officer.get(path)
        assert refused.status_code == 403, path
        assert "are staff data" in refused.text and "moderator" in refused.text
    shown = moderator.get(page)
    assert shown.status_code == 200
    assert (
        "Staff reference" in shown.text and "Observation of practice, December 2026" in shown.text
    )
    assert officer.get(f"/audits/{dip.audit_id}").status_code == 200  # a case: the officer's
    assert viewer.get(page).status_code == 403
    listed = officer.get(f"/audits?month={MONTH}").text  # not in the officer's list either
    assert dip.audit_id in listed and observed.audit_id not in listed
    assert observed.audit_id in moderator.get(f"/audits?month={MONTH}").text
    csrf = officer.get(f"/audits/{dip.audit_id}").text.split('name="csrf" value="', 1)[1]
    step = officer.post(f"{page}/check", data={"csrf": csrf.split('"', 1)[0], "accept": "1"})
    assert step.status_code == 403 and "are staff data" in step.text  # nor any step on it


def test_a_run_of_named_cases_needs_the_names(copied):
    """An activity whose cases the officer names (seed 001 4.14, a partnership's re-audit)
    is refused without them, before anything is written, the policy included."""
    from formtool.programme.sampling import AllocationError

    url, root = copied
    db = store.open_store(url)
    named = dataclasses.replace(ACTIVITIES[0], id="partnership", code="PR", choose="chosen")
    policy = dataclasses.replace(activity_policy(), activities=(*ACTIVITIES, named))
    before = Path(url.removeprefix("sqlite:///")).read_bytes()
    request = RunRequest("partnership", "2027-01", root / "population.csv", root / "auditors.csv")
    with pytest.raises(AllocationError, match="audits the cases the officer names: give them"):
        start_run(db, policy, request, root / "never.csv", "cli:test")
    assert Path(url.removeprefix("sqlite:///")).read_bytes() == before
    assert not (root / "never.csv").exists()


def test_an_event_date_that_is_not_a_date_is_refused_with_its_row(copied, tmp_path):
    _url, root = copied
    population = (root / "population.csv").read_text(encoding="utf-8").splitlines()
    header = population[0].split(",")
    column = header.index("panel_on")
    row = population[1].split(",")
    row[column] = "next Tuesday"
    bad = tmp_path / "population.csv"
    bad.write_text("\n".join([population[0], ",".join(row), *population[2:]]), encoding="utf-8")
    code, _out, err = run(
        "allocate", "--population", bad, "--auditors", root / "auditors.csv", "--month",
        "2027-02", "--plan", root / "plan.yaml", "--out", tmp_path / "x.csv",
    )  # fmt: skip
    assert code == 2
    assert (
        err == f"Error: [{bad} · row 2 · panel_on] 'next Tuesday' is not a date. Use YYYY-MM-DD.\n"
    )


def test_an_observation_is_emailed_as_one_of_the_auditors_audits(copied, tmp_path) -> None:
    """The month's email names a practitioner as a practitioner, and calls the audits what
    they are (an observation is not a case file audit)."""
    from formtool.programme.mail import build_messages

    url, root = copied
    code, _out, err = run(
        "allocate", "--population", root / "population.csv", "--auditors",
        root / "auditors.csv", "--month", "2027-01", "--plan", root / "plan.yaml",
        "--staff", root / "staff.csv", "--out", tmp_path / "january.csv",
    )  # fmt: skip
    assert code == 0, err
    assert run("generate", "--cases", tmp_path / "january.csv", "--out", tmp_path / "forms")[0] == 0
    db = store.open_store(url)
    messages = build_messages(db, "qa@example.invalid", tmp_path / "forms", "2027-01")
    observer = next(m for m in messages if any(a.startswith("OBS") for a in m.audit_ids))
    assert str(observer.message["Subject"]).endswith(
        f"{len(observer.audit_ids)} audit(s) for January 2027, due 31/01/2027"
    )
    body = next(
        p.get_content() for p in observer.message.walk() if p.get_content_type() == "text/plain"
    )
    observation = next(a for a in observer.audit_ids if a.startswith("OBS"))
    staff_id = observation.split("-")[1]
    assert f"Observation of Practice Record: practitioner {staff_id}, audit {observation}" in body
    assert "Please complete the audit(s) below" in body


def test_a_supervisor_no_auditor_may_take_is_named_not_dropped_in_silence() -> None:
    """Every supervisor is audited (seed 001 4.18): one whom no auditor may take under the
    team rule is named in the allocation's notes, with the fix."""
    from formtool.programme import activities
    from formtool.programme.sampling import Auditor

    population = [
        {"case_number": f"C{i}", "category": "cin", "team": team, "manager": manager}
        for i, (team, manager) in enumerate([("T1", "Manager One"), ("T2", "Manager Two")] * 3)
    ]
    staff = [
        {"staff_id": "M1", "name": "Manager One", "team": "T1", "role": "team manager"},
        {"staff_id": "M2", "name": "Manager Two", "team": "T2", "role": "team manager"},
    ]
    only_t1 = Auditor("Auditor (synthetic)", "a@example.invalid", "T1", frozenset(), group=GROUP)
    supervision = next(a for a in ACTIVITIES if a.id == "supervision")
    policy = dataclasses.replace(activity_policy(), activities=(supervision,))
    inputs = activities.Inputs(
        policy, Month("2026-12"), population, staff, [only_t1], random.Random(1), lambda _: {}
    )
    drawn = activities.plan(inputs, 1)
    assert [r["case_number"] for r in drawn.rows] == ["M2"]  # T1's own supervisor: not theirs
    assert drawn.notes == [
        "Supervision audit: 1 of 2 drawn; M1 fitted no auditor of it (other team rule): add an "
        "auditor who may take them to the auditors file and allocate again (--replace)."
    ]


def test_a_theme_given_at_allocation_is_printed_on_the_runs_forms(copied, tmp_path):
    url, root = copied
    common = (
        "allocate", "--population", root / "population.csv", "--auditors",
        root / "auditors.csv", "--month", "2027-02", "--plan", root / "plan.yaml",
    )  # fmt: skip
    for theme, message in (
        ("nope=Neglect", "[--theme nope=...] programme 'hull' has no such activity"),
        ("Neglect", "[--theme 'Neglect'] is not ACTIVITY=TEXT"),
    ):
        code, _out, err = run(*common, "--theme", theme, "--out", tmp_path / "x.csv")
        assert code == 2 and message in err and err.count("\n") == 1
    code, out, err = run(*common, "--out", tmp_path / "y.csv", "--theme", "dip=Neglect (synthetic)")
    assert code == 0, err
    db = store.open_store(url)
    dips = [a for a in db.audit_rows(["2027-02"]) if a.activity == "dip"]
    assert dips and {json.loads(a.facts)["theme"] for a in dips} == {"Neglect (synthetic)"}
    [run_row] = db.activity_runs("dip", ["2027-02"])
    assert (run_row.theme, run_row.name) == (
        "Neglect (synthetic)",
        "Dip sample, February 2027: Neglect (synthetic)",
    )
    assert "drawn without a theme" not in out
    later = [c if c != "2027-02" else "2027-03" for c in map(str, common)]
    code, out, err = run(*later, "--out", tmp_path / "z.csv")  # no theme: said, not silent
    assert code == 0 and "warning: Dip sample: drawn without a theme" in out, err


def test_the_reports_come_from_the_command_line(copied, tmp_path):
    """`activity report`: a run's group summary, the quarter's supervision report and the
    month's observation summary, each .docx and .pdf; a wrong period says which option."""
    _url, root = copied
    thematic = next(r for r in store.open_store(_url).activity_runs("thematic"))
    out = tmp_path / "reports"
    for args, stem in (
        ((str(thematic.id),), f"run{thematic.id}-group-report"),
        (("--supervision", "2026-Q3"), "supervision-"),
        (("--observation", MONTH, "--staff", str(root / "staff.csv")), "observations-"),
    ):
        code, shown, err = run("activity", "report", *args, "--out", out, "--json")
        assert code == 0, err
        files = [Path(f) for f in json.loads(shown)["files"]]
        assert [f.suffix for f in files] == [".docx", ".pdf"] and files[0].name.startswith(stem)
        assert all(f.is_file() and f.stat().st_size > 1000 for f in files)
    code, _shown, err = run("activity", "report", "--supervision", "2026-Q9")
    assert code == 2 and err.startswith("Error: [--supervision '2026-Q9'] is not a period.")
    code, _shown, err = run("activity", "report", "1", "--supervision", "2026-Q3")
    assert code == 2 and "Give one of: a RUN number" in err
