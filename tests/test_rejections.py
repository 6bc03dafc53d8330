"""Rejected returns leave a trace (issue 22 §1): every file an import rejects is recorded,
against its audit (with an event in its history) or as an unmatched file; the same file again
is counted, not listed twice; a later good return supersedes it; an officer marks an unmatched
file dealt with; `formtool rejected` and the web workspace's "To chase" page list them."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_web import PASSWORD, Tables, client_for, post, quick_hashes, upload  # noqa: F401

from formtool import clock, store
from formtool.access.accounts import add_user
from formtool.cli import cli
from formtool.definitions import FormDefinition, get_form
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.errors import FormtoolError
from formtool.generate import record_audits, render
from formtool.programme.audit_page import audit_detail
from formtool.programme.rejections import deal_with, rejected, to_chase
from formtool.read.batch import ImportStopped, import_paths
from formtool.read.cases import Case, load_cases, write_case_list
from formtool.settings import Settings
from formtool.store.schema import rejections
from formtool.web import create_app

DUE = dt.date(2026, 11, 30)
TODAY = dt.date(2026, 12, 10)  # ten days after the audits were due


@dataclass(frozen=True)
class Kit:
    """Three CSC cases: the first two are the database's audits, the third another
    database's; each one's blank form, and a complete return of the first."""

    form: FormDefinition
    cases: list[Case]
    blank: list[bytes]
    good: bytes


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    form = get_form("csc")
    rng = random.Random(22)
    path = tmp_path_factory.mktemp("kit") / "cases.csv"
    write_case_list(path, [synthetic_case(form, i, DUE, rng) for i in range(1, 4)])
    cases = load_cases(path, form)
    blank = [render(form, c, "docx") for c in cases]
    answers = synthetic_answers(form, cases[0], rng, DUE)
    return Kit(form, cases, blank, fill_return(blank[0], "docx", form, answers))


def audits_of(db, kit: Kit) -> list[str]:
    record_audits(db, kit.form, kit.cases[:2], user="test")
    return [c.audit_id for c in kit.cases[:2]]


def files(folder: Path, named: dict[str, bytes]) -> list[Path]:
    """The files written into `folder`, in order."""
    folder.mkdir(exist_ok=True)
    for name, data in named.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in named]


def rejection_events(db, audit_id: str) -> list[str]:
    detail = audit_detail(db, audit_id)
    return [e.detail for e in detail.events if e.event == "return rejected"]


# --- the store: both backends --------------------------------------------------------------


def test_damaged_and_unknown_files_are_unmatched_until_dealt_with(db, kit, tmp_path):
    first, _ = audits_of(db, kit)
    damaged = kit.good[:2000]
    outcomes = import_paths(
        db,
        files(tmp_path / "in", {"damaged.docx": damaged, "elsewhere.docx": kit.blank[2]}),
        TODAY,
        user="cli:olive",
    )
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    found = rejected(db)
    assert found.against_audits == []
    by_name = {e.file_name: e for e in found.unmatched}
    assert sorted(by_name) == ["damaged.docx", "elsewhere.docx"]
    assert by_name["damaged.docx"].claimed_id == ""
    assert by_name["damaged.docx"].code == "not-a-zip"
    assert by_name["damaged.docx"].reason.startswith("[damaged.docx] is not a .docx file")
    assert str(tmp_path) not in by_name["damaged.docx"].reason  # the file as shown, no folder
    assert by_name["elsewhere.docx"].claimed_id == kit.cases[2].audit_id  # the id it claimed
    assert by_name["elsewhere.docx"].code == "not-in-database"
    assert {e.imported_by for e in found.unmatched} == {"cli:olive"}
    assert rejection_events(db, first) == []  # nothing against an audit

    unmatched = by_name["damaged.docx"].id
    with pytest.raises(FormtoolError, match="Say what was done with the file"):
        deal_with(db, unmatched, "  ", "cli:olive")
    with pytest.raises(FormtoolError, match="There is no rejected file 999"):
        deal_with(db, 999, "gone", "cli:olive")
    done = deal_with(db, unmatched, "Not a return: sent back to the auditor", "cli:olive")
    assert (done.dealt_by, done.dealt_note, done.open) == (
        "cli:olive",
        "Not a return: sent back to the auditor",
        False,
    )
    with pytest.raises(FormtoolError, match="already dealt with by cli:olive"):
        deal_with(db, unmatched, "again", "cli:olive")
    assert [e.file_name for e in rejected(db).unmatched] == ["elsewhere.docx"]
    assert {e.file_name for e in rejected(db, every=True).unmatched} == set(by_name)


def test_a_rejected_return_is_on_its_audit_once_until_a_good_return(db, kit, tmp_path):
    first, second = audits_of(db, kit)
    blank = files(tmp_path / "in", {"blank.docx": kit.blank[0]})
    [outcome] = import_paths(db, blank, TODAY)
    assert (outcome.status, outcome.audit_id) == ("rejected", first)
    again = files(tmp_path / "again", {"resent.docx": kit.blank[0]})  # the same bytes again
    import_paths(db, again, TODAY + dt.timedelta(days=1))

    [entry] = audit_detail(db, first).rejections
    assert (entry.audit_id, entry.code, entry.times, entry.open) == (
        first,
        "returned-blank",
        2,
        True,
    )
    assert entry.file_name == "resent.docx"  # the last time it came
    assert "came back blank" in entry.reason
    assert rejection_events(db, first) == [entry.reason.replace("resent", "blank")]  # once
    assert audit_detail(db, second).rejections == []
    assert [e.id for e in rejected(db).against_audits] == [entry.id]
    with pytest.raises(FormtoolError, match=f"is against audit {first}"):
        deal_with(db, entry.id, "done", "cli:olive")

    [stored] = import_paths(db, files(tmp_path / "good", {"good.docx": kit.good}), TODAY)
    assert stored.status == "imported"
    [entry] = audit_detail(db, first).rejections
    assert (entry.superseded, entry.open) == (True, False)
    assert rejected(db).against_audits == []
    assert [e.id for e in rejected(db, every=True).against_audits] == [entry.id]
    # a damaged file named for the audit, after the good return: open, the latest file
    late = f"Copy of {first}.docx"
    import_paths(db, files(tmp_path / "late", {late: kit.good[:3000]}), TODAY)
    latest = audit_detail(db, first).rejections[0]
    assert (latest.file_name, latest.code, latest.open) == (late, "not-a-zip", True)
    assert [e.audit_id for e in rejected(db).against_audits] == [first]


def test_records_are_bounded_and_a_database_failure_still_stops_the_batch(
    db, kit, tmp_path, monkeypatch
):
    first, _ = audits_of(db, kit)
    huge = store.Rejection("f" * 64, "n" * 5000, "c" * 500, "r\n" * 50_000, first, "", "s" * 9000)
    db.record_rejection(huge, "u" * 999)
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(rejections)).one()
    assert [len(row.file_name), len(row.code), len(row.reason), len(row.sender)] == [
        500,
        40,
        1000,
        400,
    ]
    assert "\n" not in row.reason and len(row.imported_by) == 200

    def down(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(db, "record_rejection", down)
    paths = files(tmp_path / "in", {"a.docx": kit.good[:100], "b.docx": kit.good})
    with pytest.raises(ImportStopped) as stopped:
        import_paths(db, paths, TODAY)
    assert stopped.value.outcomes == [] and stopped.value.left == 1


# --- the command line and the web workspace: SQLite ----------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rejected_command_lists_and_dismisses(db_url, db, kit, tmp_path):
    first, _ = audits_of(db, kit)
    import_paths(
        db, files(tmp_path / "in", {"blank.docx": kit.blank[0], "bad.docx": b"PK\x03\x04"}), TODAY
    )
    run = CliRunner().invoke
    listed = run(cli, ["rejected", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "Against an audit (open until a good return for it is imported):"
    assert lines[1].split()[1:4] == [first, "10/12/2026", "blank.docx"]
    assert lines[2].strip().startswith("returned-blank: [blank.docx] audit")
    assert lines[3].startswith("Unmatched files")
    assert lines[4].split()[1:5] == ["no", "audit", "id", "10/12/2026"]
    assert lines[-1] == "2 open: 1 against an audit, 1 unmatched."
    unmatched = int(lines[4].split()[0])

    refused = run(cli, ["rejected", "--dismiss", str(unmatched), "--db", db_url])
    assert refused.exit_code == 2 and "--dismiss ID needs --note TEXT" in refused.output
    done = run(cli, ["rejected", "--dismiss", str(unmatched), "--note", "Photo", "--db", db_url])
    assert done.output == f"Unmatched file {unmatched} (bad.docx): marked dealt with.\n"
    assert run(cli, ["rejected", "--db", db_url]).output.splitlines()[-1] == (
        "1 open: 1 against an audit, 0 unmatched."
    )
    every = run(cli, ["rejected", "--all", "--json", "--db", db_url])
    data = json.loads(every.output)
    [dealt] = data["unmatched"]
    assert (dealt["dealt_note"], dealt["open"]) == ("Photo", False)
    assert [r["audit_id"] for r in data["against_audits"]] == [first]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_to_chase_page(db, kit, monkeypatch):
    for name, role in (("olive", "officer"), ("vic", "viewer")):
        add_user(db, name, role, PASSWORD)
    first, second = audits_of(db, kit)
    db.record_events([(first, "sent", ""), (first, "chased", "")])
    clock.set_today(TODAY)
    app = create_app(db, Settings(council="Example Council"))
    assert client_for(app, "vic").get("/to-chase").status_code == 403
    olive = client_for(app, "olive")
    uploaded = upload(olive, [("blank.docx", kit.blank[0]), ("bad.docx", b"PK\x03\x04")])
    assert uploaded.status_code == 200
    recorded = rejected(db)
    assert {e.imported_by for e in recorded.against_audits + recorded.unmatched} == {"web:olive"}
    page = olive.get("/to-chase")
    assert page.status_code == 200
    tables = Tables(page.text).tables
    assert [r[1:6] for r in tables["overdue"][1:]] == [
        [a.audit_id, a.team, a.auditor, "Mon 30/11/2026", "10"] for a in db.audit_rows()
    ]
    sent, never = tables["overdue"][1:]
    assert sent[6] != "never" and never[6:] == ["never", "never sent: send it first"]
    assert page.text.count('name="audit"') == 1  # only an audit that went out can be chased
    assert 'href="/allocate?month=2026-11"' in page.text
    assert (
        'name="all" value="overdue"' in page.text and 'name="back" value="/to-chase"' in page.text
    )
    [row] = tables["rejected"][1:]
    assert row[0] == first and row[2] == "blank.docx" and "came back blank" in row[5]
    assert "/upload-" not in page.text  # files as uploaded, never the private folder
    [row] = tables["unmatched"][1:]
    assert row[0] == "bad.docx" and row[3] == "\N{EN DASH}"
    assert 'role="region" aria-label="Unmatched files" tabindex="0"' in page.text
    log = store.access_log.c
    with db.engine.connect() as conn:
        actions = conn.execute(sa.select(log.action).where(log.user_name == "web:olive")).scalars()
        assert "viewed the to-chase list" in list(actions)

    nothing = post(olive, "/to-chase/unmatched/abc/done", {"note": "x"}, page="/to-chase")
    assert nothing.status_code == 400 and "There is no rejected file abc." in nothing.text
    [unmatched] = rejected(db).unmatched
    done = post(
        olive, f"/to-chase/unmatched/{unmatched.id}/done", {"note": "A photo"}, page="/to-chase"
    )
    assert (done.status_code, done.headers["location"]) == (303, "/to-chase")
    after = olive.get("/to-chase").text
    assert "No unmatched files." in after and "marked dealt with" in after
    # staff data: audits whose results the role may not see are left out
    monkeypatch.setattr("formtool.programme.rejections.hidden_audits", lambda *_: {first})
    kept = to_chase(db, ("officer",))
    assert [o.audit_id for o in kept.overdue] == [second] and kept.rejected == []


def test_an_audit_that_owes_no_return_leaves_the_rejected_list(db, kit, tmp_path):
    from formtool.programme.workflow import exempt_audit

    first, _ = audits_of(db, kit)
    import_paths(db, files(tmp_path / "in", {"blank.docx": kit.blank[0]}), TODAY)
    assert [e.audit_id for e in to_chase(db, ["officer"], TODAY).rejected] == [first]
    exempt_audit(db, first, "Moved out of the area", "Head of Service (synthetic)")
    assert to_chase(db, ["officer"], TODAY).rejected == []  # nothing more is to come
