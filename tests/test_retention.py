"""Retention (issue 23): the schedule in the programme policy, the files formtool writes being
tracked, and `formtool retention` on both backends, on a copy of the demo's database whose
tracked files are moved into the test's folder, with formtool's clock moved on so some records
are past their period and some are not. What is due is counted in the dry run; --apply removes
exactly that (files from disk too), keeps open audits and names them, logs every removal, and
leaves the period's figures unchanged (the oracle: period_figures before and after)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from demo_copy import demo_database, tables_holding

from formtool import clock, store
from formtool.cli import cli
from formtool.cli_common import FormtoolGroup
from formtool.cli_retention import retention_
from formtool.programme.policy import (
    RETENTION_DEFAULTS,
    Keep,
    Period,
    PolicyError,
    check_policy_file,
    load_policy,
    policy_from_data,
    policy_snapshot,
)
from formtool.programme.rules import active_policy
from formtool.programme.workflow import (
    UnsignedActions,
    check_audit,
    close_audit,
    exempt_audit,
    reopen_audit,
)
from formtool.protect.retention import FINISHED, RetentionError, apply, plan
from formtool.protect.summary import period_figures, stored_cells
from formtool.store import BACKUP, EMAIL_DRAFT, EXPORT, FILE_PACK, FORM, protection
from formtool.store.schema import answers, outbox, outbox_claims, returns

from conftest import DEMO_DAY, Demo

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["hampshire", "hull", "rochdale", "windsor-maidenhead"]
#: Past two years from the demo's returns, within six years of its month's end.
LATER = dt.date(2029, 1, 15)
#: The day six years from the end of the demo's month (2026-11): its finished audits go.
SIX_YEARS_ON = dt.date(2032, 11, 30)


# --- the schedule in the policy -------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_policy_states_every_figure_and_says_the_seed_gives_none(name):
    policy = load_policy(name)
    assert sorted(policy.retention) == sorted(RETENTION_DEFAULTS)
    for kind, default in RETENTION_DEFAULTS.items():
        assert policy.kept_for(kind) == Keep(
            default, "the seed gives no figure; formtool's default"
        )
    assert policy_from_data(json.loads(json.dumps(policy_snapshot(policy)))) == policy


def test_periods_count_calendar_months_and_years_and_a_policy_may_leave_kinds_out():
    assert Period.parse("6 years").after(dt.date(2026, 11, 30)) == dt.date(2032, 11, 30)
    assert Period.parse("1 month").after(dt.date(2027, 1, 31)) == dt.date(2027, 2, 28)
    assert Period.parse("24 Months").before(dt.date(2029, 2, 28)) == dt.date(2027, 2, 28)
    assert Period.parse("90 days").after(dt.date(2026, 12, 1)) == dt.date(2027, 3, 1)
    assert str(Period.parse("1 week")) == "1 week" and str(Period.parse("2 weeks")) == "2 weeks"
    with pytest.raises(PolicyError, match=r"'6 yrs' is not a period\. Write a number and days"):
        Period.parse("6 yrs")
    hull = load_policy("hull")
    bare = policy_from_data({**policy_snapshot(hull), "retention": {"backups": _keep("2 weeks")}})
    assert bare.kept_for("backups") == Keep("2 weeks", "ours")
    assert bare.kept_for("audits") == Keep("6 years", "formtool's default (README: Retention)")


def _keep(period: str) -> dict[str, str]:
    return {"keep": period, "source": "ours"}


def test_the_checker_names_a_period_it_cannot_count(tmp_path):
    text = (ROOT / "templates/programmes/hull.yaml").read_text(encoding="utf-8")
    text = text.replace("name: hull", "name: ours").replace("keep: 35 days", "keep: 35 dayz")
    text = text.replace("keep: 6 years", "keep: 200 years")
    (tmp_path / "ours.yaml").write_text(text, encoding="utf-8")
    found = [(i.field, i.value) for i in check_policy_file(tmp_path / "ours.yaml")]
    assert found == [
        ("retention.audits.keep", "200 years is longer than formtool keeps"),
        ("retention.backups.keep", "'35 dayz' is not a period"),
    ]


def test_the_schema_names_the_kinds_the_code_keeps():
    schema = json.loads((ROOT / "formtool/programme/programme_schema.json").read_text())
    assert list(schema["properties"]["retention"]["properties"]) == list(RETENTION_DEFAULTS)


# --- the files the demo wrote are tracked ----------------------------------------------------


def test_every_file_the_demo_wrote_is_tracked_with_its_audit_and_case(demo_run: Demo):
    db = store.open_store(f"sqlite:///{demo_run.out / 'formtool.db'}", "read")
    rows = db.stored_files()
    kinds = Counter(r.kind for r in rows)
    out = demo_run.out.resolve()
    on_disk = {p for folder in ("forms", "mail", "packs") for p in (out / folder).rglob("*.*")}
    assert {Path(r.path) for r in rows} >= on_disk | {out / "allocation.csv"}
    assert kinds[EMAIL_DRAFT] == len(list((out / "mail").glob("*.eml")))
    cases = {r.audit_id: r.case_number for r in db.audit_rows()}
    forms = [r for r in rows if r.kind == FORM and Path(r.path).suffix in (".docx", ".xlsx")]
    assert forms and all(r.case_number == cases[r.audit_id] for r in forms)
    packs = [r for r in rows if r.kind == FILE_PACK and r.audit_id]
    assert packs and all(Path(r.path).name.startswith(r.audit_id) for r in packs)
    assert {r.kind for r in rows} == {FORM, FILE_PACK, "pmu pack", "report", EMAIL_DRAFT}
    assert all(r.written_on == DEMO_DAY and r.size > 0 for r in rows)


def test_exports_backups_and_file_packs_from_the_command_line_are_tracked(
    demo_run: Demo, tmp_path: Path
):
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path)
    db = store.open_store(url)
    audit_id = next(r.audit_id for r in db.audit_rows(states=["returned"]) if r.return_id)
    before = {r.id for r in db.stored_files()}
    runner = CliRunner()
    with clock.frozen(LATER):
        for args in (
            ["export", "--out", str(tmp_path / "answers.csv")],
            ["backup", str(tmp_path / "backups") + "/"],
            ["pack", "file", audit_id, "--format", "docx", "--out", str(tmp_path / "packs")],
        ):
            result = runner.invoke(cli, [*args, "--db", url])
            assert result.exit_code == 0, result.output
    new = [r for r in db.stored_files() if r.id not in before]
    assert [(r.kind, Path(r.path).parent, r.audit_id) for r in new] == [
        (EXPORT, tmp_path, None),
        (BACKUP, tmp_path / "backups", None),
        (FILE_PACK, tmp_path / "packs", audit_id),
    ]
    assert all(r.written_on == LATER and r.size == Path(r.path).stat().st_size for r in new)
    assert new[2].case_number == db.audit_row(audit_id).case_number
    again = runner.invoke(cli, ["backup", str(tmp_path / "backups"), "--keep", "1", "--db", url])
    assert again.exit_code == 0, again.output
    (first,) = [r for r in db.stored_files(include_removed=True) if r.id == new[1].id]
    assert first.removed_why == "only the newest 1 backups are kept"
    assert [Path(r.path).parent.name for r in db.stored_files(kinds=[BACKUP])] == ["backups"]


# --- dry run and apply on both backends ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_db(request, demo_run: Demo, tmp_path: Path) -> store.Store:
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    url = demo_database(demo_run.out / "formtool.db", request.param, tmp_path, server)
    return store.open_store(url)


def _finish_some(db: store.Store) -> set[str]:
    """Exempt the audits still out with their auditors and close a few accepted ones: the
    demo's audits are otherwise open (and one is filed unaudited)."""
    for row in db.audit_rows(states=["sent"]):
        exempt_audit(db, row.audit_id, "long-term sick", "Head of Service (synthetic)", "test")
    closed = 0
    for row in db.audit_rows(states=["returned"]):
        if closed == 3:
            break
        check_audit(db, row.audit_id, user="test")
        try:
            close_audit(db, row.audit_id, "test")
            closed += 1
        except UnsignedActions:
            continue
    finished = {r.audit_id for r in db.audit_rows() if r.state in FINISHED}
    assert closed == 3 and len(finished) > 3
    return finished


def _returns(db: store.Store) -> dict[int, tuple[str, bytes, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(returns.c.id, returns.c.audit_id, returns.c.content, returns.c.imported_at)
        ).all()
    return {r.id: (r.audit_id, bytes(r.content), r.imported_at) for r in rows}


def _count(db: store.Store, table: sa.Table) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _outbox_due(db: store.Store, finished: set[str], day: dt.date) -> set[int]:
    """Messages older than a year whose audits are all finished (worked out apart from the
    plan's own reading)."""
    with db.engine.connect() as conn:
        made = dict(conn.execute(sa.select(outbox.c.id, outbox.c.created_at)).all())
        claims = conn.execute(sa.select(outbox_claims.c.message_id, outbox_claims.c.audit_id))
        carried: dict[int, set[str]] = {}
        for message_id, audit_id in claims:
            carried.setdefault(message_id, set()).add(audit_id)
    return {
        m
        for m, at in made.items()
        if carried.get(m, set()) <= finished and Period.parse("1 year").after(at.date()) <= day
    }


def _actions(db: store.Store) -> Counter[str]:
    return Counter(e.action for e in db.access_entries(None, None, None, None))


def test_a_dry_run_counts_what_is_due_and_apply_removes_exactly_that(
    demo_db: store.Store, tmp_path: Path
):
    db = demo_db
    finished = _finish_some(db)
    policy = active_policy(db)
    with clock.frozen(dt.date(2028, 12, 1)):  # an export not a year old on LATER
        late = tmp_path / "late-export.csv"
        late.write_text("case,answer\n", encoding="utf-8")
        db.record_files([late], EXPORT, user="cli:tester")
    backups = tmp_path / "backups"
    backups.mkdir()
    with clock.frozen(dt.date(2028, 11, 1)):
        tracked = backups / "formtool-2028-11-01-0200.db"
        tracked.write_bytes(b"a backup")
        db.record_files([tracked], BACKUP, user="cli:tester")
    old, recent = backups / "formtool-2028-12-01-0200.db", backups / "formtool-2029-01-10-0200.db"
    for path in (old, recent):
        path.write_bytes(b"a backup formtool named by date")
    demo_files = db.stored_files(kinds=[FORM, FILE_PACK, "pmu pack", "report"])
    drafts = db.stored_files(kinds=[EMAIL_DRAFT])
    held = _returns(db)
    answered = _count(db, answers)
    viewed = sorted(finished)[0]
    db.log_access("web:officer", "viewed audit", viewed, "", f"looked at {viewed}")
    cutoff = dt.datetime(2027, 1, 15)  # two years before LATER (real time: the machine's)
    old_entries = [e for e in db.access_entries(None, None, None, None) if e.at < cutoff]
    figures = period_figures(db)

    with clock.frozen(LATER):
        planned = plan(db, policy, clock.today(), 730)
    line = {line.key: line for line in planned.lines}
    returned_due = {i for i, (audit_id, _, _) in held.items() if audit_id in finished}
    assert (line["audits"].due, line["audits"].kept) == ((), ())
    assert set(line["return files"].due) == returned_due
    assert line["return files"].oldest == DEMO_DAY
    kept_returns = dict(line["return files"].kept)
    assert len(kept_returns) == len(held) - len(returned_due)
    open_return = next(i for i, (a, _, _) in held.items() if a not in finished)
    assert kept_returns[f"return {open_return}"].startswith(f"its audit {held[open_return][0]}")
    assert set(line["outbox"].due) == _outbox_due(db, finished, LATER)
    assert {r.id for r in line["email drafts"].due} == {r.id for r in drafts}
    assert {r.id for r in line["files"].due} == {r.id for r in demo_files}
    assert line["files"].oldest == DEMO_DAY and line["exports"].due == ()
    assert line["access log"].number == len(old_entries)
    assert [getattr(r, "path", r) for r in line["backups"].due] == [str(tracked.resolve()), old]
    assert (line["backups"].period, line["backups"].oldest) == ("35 days", dt.date(2028, 11, 1))

    done = apply(db, planned, "cli:tester")

    assert period_figures(db) == figures
    assert done.removed["return files"] == len(returned_due) and _count(db, answers) == answered
    now = _returns(db)
    assert all(now[i][1] == b"" for i in returned_due)
    assert all(now[i][1] == held[i][1] != b"" for i in set(held) - returned_due)
    assert not any(Path(r.path).exists() for r in [*demo_files, *drafts])
    assert [Path(r.path) for r in db.stored_files()] == [late.resolve()] and late.exists()
    assert (tracked.exists(), old.exists(), recent.exists()) == (False, False, True)
    logged = _actions(db)
    assert logged["return file removed"] == len(returned_due) and logged["files removed"] >= 2
    assert logged["access log purged"] == bool(old_entries) and logged["backups removed"] == 1
    request = db.data_requests()[-1]
    assert request.kind == "retention" and json.loads(request.detail)["removed"] == dict(
        done.removed
    )

    with clock.frozen(SIX_YEARS_ON - dt.timedelta(days=1)):
        assert plan(db, policy, clock.today(), 730).line("audits").due == ()
    with clock.frozen(SIX_YEARS_ON):
        planned = plan(db, policy, clock.today(), 730)
    audits = planned.line("audits")
    assert set(audits.due) == finished and audits.oldest == dt.date(2026, 11, 30)
    still_open = next(r for r in db.audit_rows() if r.state == "returned")
    assert dict(audits.kept)[still_open.audit_id] == (
        "still returned: it goes once closed, exempted or filed unaudited"
    )

    done = apply(db, planned, "cli:tester")

    assert done.removed["audits"] == len(finished) and period_figures(db) == figures
    assert all(db.audit_row(a) is None for a in finished)
    assert db.audit_row(still_open.audit_id) is not None
    gone = sorted(finished)[0]
    assert tables_holding(db.engine.url.render_as_string(False), gone) == {}
    assert _actions(db)["audit removed"] == len(finished)
    assert [r.kind for r in db.data_requests()] == ["retention", "retention"]


# --- stopped part-way, and the command line --------------------------------------------------


@pytest.fixture
def sqlite_db(demo_run: Demo, tmp_path: Path) -> store.Store:
    url = demo_database(demo_run.out / "formtool.db", "sqlite", tmp_path)
    return store.open_store(url)


def test_a_run_stopped_part_way_leaves_each_audit_whole_and_the_next_run_carries_on(
    sqlite_db: store.Store, monkeypatch
):
    db = sqlite_db
    finished = _finish_some(db)
    policy = active_policy(db)
    figures = period_figures(db)
    held = {a: records for a in finished if (records := db.audit_records(a)) is not None}
    real = protection.remove_audit_rows
    calls: list[str] = []

    def fails_the_second(conn: sa.Connection, audit_id: str) -> dict[str, int]:
        removed = real(conn, audit_id)  # its rows deleted, then the server goes away
        calls.append(audit_id)
        if len(calls) == 2:
            raise sa.exc.OperationalError("DELETE FROM audits", {}, Exception("server gone"))
        return removed

    monkeypatch.setattr(protection, "remove_audit_rows", fails_the_second)
    with clock.frozen(SIX_YEARS_ON):
        planned = plan(db, policy, clock.today(), 730)
        with pytest.raises(RetentionError) as stopped:
            apply(db, planned, "cli:tester")
    first, second = calls
    assert str(stopped.value).startswith("Retention stopped: The database ")
    assert "server gone" in str(stopped.value)
    assert "Removed before it stopped: " in str(stopped.value)
    assert "1 audit(s)" in str(stopped.value)
    assert db.audit_row(first) is None
    kept = db.audit_records(second)
    assert kept is not None and (kept.answers, kept.actions) == (
        held[second].answers,
        held[second].actions,
    )
    assert len(kept.history) == len(held[second].history) and kept.events == held[second].events
    assert period_figures(db) == figures
    assert json.loads(db.data_requests()[-1].detail)["stopped"].startswith("The database ")

    monkeypatch.setattr(protection, "remove_audit_rows", real)
    left = finished - {first}
    reopened = next(a for a in sorted(left) if db.audit_row(a).state == "closed")
    with clock.frozen(SIX_YEARS_ON):
        again = plan(db, policy, clock.today(), 730)
        assert set(again.line("audits").due) == left
        reopen_audit(db, reopened, "a complaint about the audit", "test")  # after the plan
        apply(db, again, "cli:tester")
    assert db.audit_row(reopened).state == "returned"
    assert all(db.audit_row(a) is None for a in left - {reopened})


@click.group(cls=FormtoolGroup)
def _cli() -> None:
    """The command as the lead registers it, inside formtool's error boundary."""


_cli.add_command(retention_)


def _run(db: store.Store, *args: str) -> Any:
    url = db.engine.url.render_as_string(False)
    return CliRunner().invoke(_cli, ["retention", *args, "--db", url])


def test_the_command_dry_runs_applies_and_shows_the_period_summary(sqlite_db: store.Store):
    db = sqlite_db
    finished = _finish_some(db)
    with clock.frozen(LATER):
        dry = _run(db)
        listed = _run(db, "--json")
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[0] == (
        "Retention under programme hull v1, as of 15/01/2029: a dry run: nothing is removed "
        "(--apply removes what is due)."
    )
    due = json.loads(listed.stdout)
    assert due["dry_run"] is True and due["programme"] == "hull v1"
    kinds = {k["kind"]: k for k in due["kinds"]}
    assert kinds["audits"]["due"] == 0 and kinds["files"]["oldest"] == DEMO_DAY.isoformat()
    emptied = kinds["return files"]["due"]
    assert emptied > 0 and kinds["return files"]["period"] == "2 years"
    assert lines[3:5] == [
        f"  original return files (the answers read from them stay): {emptied} due, the oldest "
        "23/11/2026",
        "      kept 2 years from the day the return came in, once its audit is closed, exempted "
        "or filed unaudited (the seed gives no figure; formtool's default)",
    ]
    assert _run(db, "--summary").stdout == (
        "No period summary: retention and erasure have removed no audits.\n"
    )

    with clock.frozen(SIX_YEARS_ON):
        applied = _run(db, "--apply")
        summary = _run(db, "--summary", "--month", "2026-11", "--json")
        table = _run(db, "--summary")
    assert applied.exit_code == 0, applied.output
    said = applied.stdout.splitlines()[-1]
    assert said.startswith("Removed ") and f" {len(finished)} audit(s)," in said
    assert "Recorded in the register (formtool data-requests) as number 1." in applied.output
    cells = json.loads(summary.stdout)["cells"]
    assert sum(c["count"] for c in cells if c["measure"] == "audits") == len(finished)
    assert cells == [
        dict(zip(("month", "form", "team", "measure", "value", "count"), (*k, n), strict=True))
        for k, n in sorted(stored_cells(db, ["2026-11"]).items())
    ]
    assert table.stdout.splitlines()[0].split() == [
        "month", "tool", "team", "measure", "value", "count"
    ]  # fmt: skip
    assert len(table.stdout.splitlines()) == len(cells) + 1


def test_a_file_that_cannot_be_removed_stops_the_run_in_one_line(
    sqlite_db: store.Store, tmp_path: Path
):
    db = sqlite_db
    stuck = tmp_path / "a-form.docx"
    stuck.write_bytes(b"a form")
    with clock.frozen(dt.date(2026, 1, 1)):
        db.record_files([stuck], FORM, user="cli:tester")
    stuck.unlink()
    stuck.mkdir()  # a folder where the file was: it cannot be unlinked
    with clock.frozen(LATER):
        result = _run(db, "--apply")
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: Retention stopped: [{stuck}] could not be deleted (")
    assert "Check its permissions and run again. Removed before it stopped: " in line
    assert re.search(r" email draft\(s\), [1-9]\d* file\(s\)\. Once that is fixed", line)
    assert line.endswith("`formtool retention` shows what is still due and --apply carries on.")


def test_the_options_are_checked():
    result = CliRunner().invoke(_cli, ["retention", "--month", "2026-11"])
    assert result.exit_code == 2
    assert "--month goes with --summary, and --summary not with --apply." in result.output
