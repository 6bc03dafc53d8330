"""The follow-up of an Inadequate grade as recorded steps (seed 001 Appendix A para 25): the
review meeting and, after a second Inadequate for the case, the Head of Service meeting are
recorded with their dates; the PMU pack shows each step's date and what happened, "late" where
it is past due; and the words reports and emails use come from the programme policy."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from formtool import clock, store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.packs import pmu
from formtool.packs.figures import load_figures
from formtool.packs.workbook import workbook
from formtool.periods import period_for
from formtool.programme.followup import (
    HEAD_OF_SERVICE,
    REVIEW,
    Graded,
    follow_ups,
    record_steps,
    step_state,
)
from formtool.programme.moderation import moderation_pool, moderation_sample
from formtool.programme.policy import Reaudit
from formtool.programme.rules import use_policy

D = dt.date
TODAY = D(2027, 1, 20)
#: (audit id, case, month, grade, imported): C1 is Inadequate twice (its re-audit came in
#: after its date), C3 once with nothing done since; C2 is Good; C4 is not returned yet.
AUDITS = [
    ("CSC-C1-202609", "C1", "2026-09", "Inadequate", D(2026, 9, 25)),
    ("CSC-C1-202611", "C1", "2026-11", "Inadequate", D(2026, 12, 1)),
    ("CSC-C2-202611", "C2", "2026-11", "Good", D(2026, 11, 12)),
    ("CSC-C3-202611", "C3", "2026-11", "Inadequate", D(2026, 11, 10)),
    ("CSC-C4-202611", "C4", "2026-11", "", None),
]


def build(folder: Path) -> tuple[str, store.Store]:
    """A database holding AUDITS, graded as an import would record them (no files read)."""
    url = f"sqlite:///{folder / 'followup.db'}"
    db = store.open_store(url)
    form = get_form("csc")
    records = [
        store.AuditRecord(
            audit_id,
            "csc",
            form.version,
            case,
            "A. Auditor",
            "a@example.invalid",
            "Team A",
            "W. Worker",
            "M. Manager",
            D(2026, int(month[5:]), 28),
            "x" * 32,
            {},
            month=month,
        )
        for audit_id, case, month, _, _ in AUDITS
    ]
    db.record_audits([form], records, "test")
    with store.transaction(db.engine) as conn:
        for audit_id, _, _, grade, imported in AUDITS:
            if imported is None:
                continue
            at = dt.datetime.combine(imported, dt.time(9))
            inserted = conn.execute(
                store.returns.insert().values(
                    audit_id=audit_id,
                    file_name="r.docx",
                    content_hash=audit_id.ljust(64, "h"),
                    content=b"",
                    imported_at=at,
                    is_current=True,
                    method="bookmarks",
                    final=True,
                )
            ).inserted_primary_key
            assert inserted is not None
            return_id = inserted[0]
            conn.execute(
                store.grades.insert().values(
                    audit_id=audit_id, auditor_grade=grade, moderated_grade="", return_id=return_id
                )
            )
            conn.execute(
                store.audits.update()
                .where(store.audits.c.audit_id == audit_id)
                .values(state="returned")
            )
    return url, db


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[str, store.Store]:
    """AUDITS, nothing recorded of their follow-up (the commands below only fail on it)."""
    return build(tmp_path_factory.mktemp("followup"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> store.Store:
    """AUDITS with C1's first review on time, C3's late and C1's Head of Service meeting."""
    _, db = build(tmp_path_factory.mktemp("recorded"))
    with clock.frozen(TODAY):
        record_steps(db, "CSC-C1-202609", review_held=D(2026, 10, 20))
        record_steps(db, "CSC-C3-202611", review_held=D(2026, 12, 15), note="plan agreed")
        record_steps(db, "CSC-C1-202611", hos_meeting=D(2027, 1, 5))
    return db


def run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--today", TODAY.isoformat(), "followup", *args, "--db", url])
    return result.exit_code, result.output


def test_due_dates_a_second_grade_and_a_late_reaudit_from_the_rule():
    graded = [
        Graded("A1", "C1", "2026-09", "Inadequate", D(2026, 9, 25), True),
        Graded("A2", "C1", "2026-11", "Inadequate", D(2026, 12, 1), True),
        Graded("B1", "C2", "2026-11", "Good", D(2026, 11, 12), False),
        Graded("E1", "C3", "2026-11"),  # not complete: no grade yet
    ]
    found = follow_ups(graded, Reaudit(within_months=2, review_weeks=4))
    assert sorted(found) == ["A1", "A2"]
    first, second = found["A1"], found["A2"]
    assert (first.review_by, first.reaudit_by) == (D(2026, 10, 23), D(2026, 11, 25))
    assert (first.reaudit_id, first.reaudited_on) == ("A2", D(2026, 12, 1))
    assert first.reaudit(TODAY) == "01/12/2026, late" and first.review(TODAY) == "late"
    assert not first.head_of_service and first.hos(TODAY) == "-"
    assert second.head_of_service and second.hos(TODAY) == "not yet"
    assert second.reaudit(TODAY) == "not yet"  # due 01/02/2027
    held = {"A2": {REVIEW: D(2026, 12, 20), HEAD_OF_SERVICE: D(2027, 1, 5)}}
    again = follow_ups(graded, Reaudit(within_months=1, review_weeks=2), held)["A2"]
    assert (again.review_by, again.reaudit_by) == (D(2026, 12, 15), D(2027, 1, 1))
    assert (again.review(TODAY), again.hos(TODAY)) == ("20/12/2026, late", "05/01/2027")
    assert follow_ups(graded, None)["A1"].review_by is None  # a policy without re-audits
    assert step_state(D(2027, 1, 20), None, TODAY) == "not yet"  # due today is not late


def test_recording_the_steps_from_the_command_line(tmp_path):
    url, db = build(tmp_path)
    code, out = run(url, "CSC-C1-202609", "--review-held", "2026-10-20", "--note", "on track")
    assert code == 0, out
    assert out.splitlines()[:3] == [
        "CSC-C1-202609: review meeting held on 20/10/2026.",
        "CSC-C1-202609: case C1 graded Inadequate on 25/09/2026.",
        "  review meeting (due 23/10/2026): 20/10/2026",
    ]
    code, out = run(url, "CSC-C1-202611", "--hos-meeting", "2027-01-05", "--json")
    assert code == 0 and '"hos": "05/01/2027"' in out
    records = db.audit_records("CSC-C1-202609")
    assert records is not None
    steps = [(e.event, e.detail) for e in records.events if e.event == REVIEW]
    assert steps == [(REVIEW, "2026-10-20: on track")]
    run(url, "CSC-C1-202609", "--review-held", "2026-10-20")  # the same step again
    assert len(db.events_named(["CSC-C1-202609"], [REVIEW])["CSC-C1-202609"]) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("CSC-C1-202609", "--review-held", "2026-13-01"),
            "--review-held '2026-13-01' is not a date. Write it as YYYY-MM-DD, e.g. 2027-01-15.",
        ),
        (
            ("CSC-NONE-202611", "--review-held", "2026-12-01"),
            "Audit CSC-NONE-202611 is not in the database. Check the id (`formtool status` "
            "lists the month's audits).",
        ),
        (
            ("CSC-C2-202611", "--review-held", "2026-12-01"),
            "Audit CSC-C2-202611 is graded Good: no review meeting or Head of Service meeting is "
            "due for it. They follow a grade of Inadequate (seed 001, Appendix A para 25).",
        ),
        (
            ("CSC-C4-202611", "--review-held", "2026-12-01"),
            "Audit CSC-C4-202611 has no complete, graded return: no review meeting",
        ),
        (
            ("CSC-C1-202609", "--hos-meeting", "2026-12-01"),
            "Audit CSC-C1-202609 is case C1's first Inadequate grade: a Head of Service meeting "
            "follows a second one. Record it on the later audit.",
        ),
        (
            ("CSC-C3-202611", "--review-held", "2027-02-01"),
            "The review meeting date 01/02/2027 is after today (20/01/2027)",
        ),
        (
            ("CSC-C3-202611", "--review-held", "2026-11-01"),
            "The review meeting date 01/11/2026 is before audit CSC-C3-202611 was graded "
            "(10/11/2026). Check the date.",
        ),
    ],
    ids=["bad-date", "unknown", "graded-good", "not-returned", "first-grade", "future", "early"],
)
def test_a_step_that_cannot_be_recorded_is_one_line_and_exit_2(base, args, said):
    url, db = base
    code, out = run(url, *args)
    assert code == 2 and out.startswith(f"Error: {said}") and out.count("\n") == 1, out
    assert db.events_named([a[0] for a in AUDITS], [REVIEW, HEAD_OF_SERVICE]) == {}


def test_the_pmu_pack_shows_each_step_its_date_and_what_is_late(recorded):
    figures = load_figures(recorded, period_for(month="2026-11"), TODAY)
    part = pmu._follow_up(figures, aggregate_only=False)
    assert part.heading == "Graded Inadequate: review at four weeks, re-audit within two months"
    [table] = part.tables
    assert table.headings[4:] == (
        "Review by",
        "Review held",
        "Re-audit by",
        "Re-audited",
        "Head of Service meeting",
    )
    assert table.rows == (
        ("C3", "CSC", "Team A", "10/11/2026", "08/12/2026", "15/12/2026, late", "10/01/2027",
         "late", "-"),
        ("C1", "CSC", "Team A", "01/12/2026", "29/12/2026", "late", "01/02/2027", "not yet",
         "05/01/2027"),
    )  # fmt: skip
    assert part.paragraphs == [
        "2 audit(s) were graded inadequate.",
        "Late as of 20/01/2027: 2 review meeting(s) and 1 re-audit(s) (held or done after "
        "their date, or not yet and past it).",
    ]
    earlier = load_figures(recorded, period_for(month="2026-09"), TODAY)
    [row] = pmu._follow_up(earlier, aggregate_only=False).tables[0].rows
    assert row[4:] == ("23/10/2026", "20/10/2026", "25/11/2026", "01/12/2026, late", "-")
    viewers = pmu._follow_up(figures, aggregate_only=True)
    assert viewers.tables == [] and viewers.paragraphs[1].startswith("Late as of")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook(figures)))["Re-audits"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][6:] == (
        "Review by (4 weeks)",
        "Review held",
        "Re-audit by (2 months)",
        "Re-audit",
        "Re-audited",
        "Head of Service meeting",
    )
    assert rows[1][7:] == ("15/12/2026, late", dt.datetime(2027, 1, 10), None, "late", "-")


def test_words_and_the_moderation_rate_follow_the_policy(tmp_path):
    url, db = build(tmp_path)
    figures = load_figures(db, period_for(month="2026-11"), TODAY)
    hull = pmu._moderation_part(figures).paragraphs[0]
    assert "0 of 3 graded audits were moderated (0% achieved; the framework asks for 10%)" in hull
    pool = moderation_pool(db, "2026-11")
    assert len(moderation_sample(db, "2026-11", record=False)) == 1  # 10% of 3, at least one
    use_policy(db, "rochdale", None, "test")
    figures = load_figures(db, period_for(month="2026-11"), TODAY)
    said = pmu._moderation_part(figures).paragraphs[0]
    assert "achieved; the framework asks for every audit to be moderated)" in said
    assert "10%" not in said
    assert moderation_sample(db, "2026-11", record=False) == pool  # rochdale moderates all
    part = pmu._follow_up(figures, aggregate_only=False)  # rochdale sets no re-audit
    assert part.heading == "Graded Inadequate"
    assert part.tables[0].headings == ("Case number", "Tool", "Team", "Graded")
    code, out = run(url, "CSC-C3-202611", "--review-held", "2026-12-01")
    assert code == 2 and "The programme 'rochdale' sets no review or re-audit" in out
    sample = CliRunner().invoke(cli, ["moderation-sample", "--month", "2026-11", "--db", url])
    assert sample.exit_code == 0 and f"{len(pool)} audit(s) selected" in sample.output
    with db.engine.connect() as conn:
        event = store.events.c
        details = conn.execute(
            sa.select(event.detail).where(event.event == "selected for moderation")
        ).scalars()
        assert set(details) == {"2026-11 sample, rate 100%, seed 0"}


def test_the_moderation_page_defaults_to_the_programmes_rate(tmp_path, monkeypatch):
    from argon2 import PasswordHasher
    from test_web import PASSWORD, client_for

    from formtool.access import accounts
    from formtool.access.accounts import add_user
    from formtool.settings import Settings
    from formtool.web import create_app

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))  # cheap
    _, db = build(tmp_path)
    add_user(db, "olive", "officer", PASSWORD)
    officer = client_for(create_app(db, Settings()), "olive")
    assert 'name="rate" value="10%"' in officer.get("/moderation?month=2026-11").text
    use_policy(db, "rochdale", None, "test")
    assert 'name="rate" value="100%"' in officer.get("/moderation?month=2026-11").text
