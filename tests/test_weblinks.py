"""The private web-form link's life (programme/weblinks.py) on SQLite and PostgreSQL: what a
link opens, what ends it (expiry, a newer link, reassign, exempt, close, a final return), what
reopens it (an amendment, with its reason), the one-time code's rules, sessions bound to one
audit, drafts, and hashes only in the database."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from formtool import clock, store
from formtool.definitions import get_form
from formtool.generate import keyed_for, record_audits
from formtool.programme import weblinks as wl
from formtool.programme.weblinks import LinkRefused
from formtool.programme.workflow import (
    check_audit,
    close_audit,
    exempt_audit,
    reassign_audit,
    select_prepared,
)

from conftest import DUE, drop_pg_database, make_cases, migrated_pg_database

S = store.AuditState
NOW = dt.datetime(2026, 11, 20, 9, 0)
CSC, QP = 13, 2  # audits of each tool: one (or two) per test, never shared


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory) -> Iterator[tuple[Any, list[str], list[str]]]:
    """One database per backend for the module, with its own audits for each test."""
    tmp = tmp_path_factory.mktemp("weblinks")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'links.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        url = migrated_pg_database(server)
    db = store.open_store(url)
    ids = []
    for form_id, count in (("csc", CSC), ("quality_practice", QP)):
        form = get_form(form_id)
        cases = keyed_for(db, make_cases(tmp, form, count))
        record_audits(db, form, cases)
        ids.append([c.audit_id for c in cases])
    yield db, ids[0], ids[1]
    db.engine.dispose()
    if request.param == "postgresql":
        drop_pg_database(request.getfixturevalue("pg_server"), url)


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    with clock.frozen(dt.date(2026, 11, 20)):
        yield


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(LinkRefused) as caught:
        call(*args)
    return caught.value.reason


def to_state(db: Any, audit_id: str, to: S) -> None:
    before = db.audit_state(audit_id)
    db.move(store.Move(audit_id, (before,), to, f"test: {to.value}"))


def session_for(db: Any, token: str, at: dt.datetime = NOW) -> str:
    _, code = wl.request_code(db, token, at)
    session, _ = wl.exchange_code(db, token, code, at)
    return session


def test_a_link_opens_its_audit_and_stage_and_looking_changes_nothing(world):
    db, csc, _ = world
    token = wl.issue_link(db, csc[0], "audit")
    row = db.require_audit(csc[0])
    with db.engine.connect() as conn:
        before = conn.execute(sa.select(store.metadata.tables["web_links"])).all()
    access = wl.check_link(db, token)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(store.metadata.tables["web_links"])).all() == before
    assert (access.audit_id, access.stage, access.name) == (csc[0], "audit", row.auditor)
    assert access.address == row.auditor_email and access.amendment == ""
    assert DUE <= access.expires_on <= dt.date(2026, 11, 20) + dt.timedelta(days=90)
    assert refused(wl.check_link, db, token[:-1] + "x") == "unknown"
    assert refused(wl.check_link, db, "../" + token) == "unknown"
    assert refused(wl.check_link, db, "a" * 5000) == "unknown"  # bounded: never looked up


def test_a_link_expires_after_its_last_day(world):
    db, csc, _ = world
    token = wl.issue_link(db, csc[1], "audit")
    last = wl.check_link(db, token).expires_on
    assert wl.check_link(db, token, today=last).audit_id == csc[1]
    clock.set_today(last + dt.timedelta(days=1))
    assert refused(wl.check_link, db, token) == "expired"


def test_a_policy_caps_how_long_a_link_works(world):
    from formtool.programme.policy import default_policy, policy_snapshot

    db, csc, _ = world
    snapshot = policy_snapshot(default_policy())
    assert "web_link_days" not in snapshot  # the default: stored policies stay as they were
    db.use_policy("hull", {**snapshot, "web_link_days": 3}, "test")
    try:
        token = wl.issue_link(db, csc[2], "audit")
        assert wl.check_link(db, token).expires_on == dt.date(2026, 11, 23)
    finally:
        db.use_policy("hull", snapshot, "test")


def test_a_newer_link_replaces_the_older_one_and_its_sessions(world):
    db, csc, _ = world
    old = wl.issue_link(db, csc[3], "audit")
    session = session_for(db, old)
    new = wl.issue_link(db, csc[3], "audit")
    assert refused(wl.check_link, db, old) == "replaced"
    assert refused(wl.form_session, db, session, NOW) == "session_ended"
    assert wl.check_link(db, new).audit_id == csc[3]
    assert wl.revoke_links(db, csc[3], "test") == 1
    assert refused(wl.check_link, db, new) == "closed"


def test_a_session_opens_its_own_audit_only_and_its_drafts(world):
    db, csc, _ = world
    a, b = csc[4], csc[5]
    mine = session_for(db, wl.issue_link(db, a, "audit"))
    theirs = session_for(db, wl.issue_link(db, b, "audit"))
    access = wl.form_session(db, mine, NOW)
    assert access.audit_id == a  # the API takes no audit id: the session decides
    wl.save_draft(db, access, {"kss1.rating": "Good", "notes": "Seen <b>"}, NOW)
    other = wl.form_session(db, theirs, NOW)
    assert other.audit_id == b and wl.load_draft(db, other) == {}
    assert wl.load_draft(db, access) == {"kss1.rating": "Good", "notes": "Seen <b>"}
    with pytest.raises(wl.WebLinkError, match="longer than 50,000 characters"):
        wl.save_draft(db, access, {"notes": "x" * 50_001}, NOW)
    assert refused(wl.form_session, db, mine, NOW + dt.timedelta(hours=4)) == "session_ended"
    wl.end_form_session(db, theirs)
    assert refused(wl.form_session, db, theirs, NOW) == "session_ended"
    wl.drop_draft(db, a, "audit")
    assert wl.load_draft(db, access) == {}


def test_a_final_return_closes_the_link_and_an_amendment_reopens_it_with_the_reason(world):
    db, csc, _ = world
    token = wl.issue_link(db, csc[6], "audit")
    session = session_for(db, token)
    _, code = wl.request_code(db, token, NOW)  # kept for a replay after the audit closes
    to_state(db, csc[6], S.returned)
    assert refused(wl.check_link, db, token) == "closed"
    assert refused(wl.form_session, db, session, NOW) == "closed"
    check_audit(db, csc[6], amend_reason="Add the plan's date")
    access = wl.form_session(db, session, NOW)
    assert (access.audit_id, access.amendment) == (csc[6], "Add the plan's date")
    # replay after close: the link, a code and the session all refuse
    to_state(db, csc[6], S.returned)
    check_audit(db, csc[6])
    close_audit(db, csc[6])
    assert refused(wl.check_link, db, token) == "closed"
    assert refused(wl.request_code, db, token, NOW) == "closed"
    assert refused(wl.exchange_code, db, token, code, NOW) == "closed"
    assert refused(wl.form_session, db, session, NOW) == "closed"


def test_reassign_and_exempt_end_every_link_of_the_audit(world, tmp_path):
    db, csc, _ = world
    moved, exempted = csc[7], csc[8]
    token = wl.issue_link(db, moved, "audit")
    session = session_for(db, token)
    access = wl.form_session(db, session, NOW)
    wl.save_draft(db, access, {"overall.grade": "Good", "note": "the old auditor's own"}, NOW)
    reassign_audit(
        db,
        moved,
        "Avery Example",
        "avery@example.invalid",
        "on leave",
        tmp_path,
        form_format="docx",
    )
    assert refused(wl.check_link, db, token) == "reassigned"
    assert refused(wl.form_session, db, session, NOW) == "reassigned"
    fresh = wl.issue_link(db, moved, "audit")  # the new copy's link works
    assert wl.check_link(db, fresh).name == "Avery Example"
    assert wl.load_draft(db, wl.check_link(db, fresh)) == {}  # not the old auditor's draft
    token = wl.issue_link(db, exempted, "audit")
    exempt_audit(db, exempted, "case closed", "Head of Service")
    assert refused(wl.check_link, db, token) == "closed"


def test_two_stage_links_follow_the_stage(world):
    db, _, qp = world
    audit_id = qp[0]
    row = db.require_audit(audit_id)
    prepare = wl.issue_link(db, audit_id, "prepare")
    early = wl.issue_link(db, audit_id, "audit")
    access = wl.check_link(db, prepare)
    assert (access.stage, access.name, access.address) == ("prepare", row.worker, "")
    assert refused(wl.check_link, db, early) == "closed"  # the preparers' turn
    to_state(db, audit_id, S.prepared)
    assert refused(wl.check_link, db, prepare) == "closed"
    select_prepared(db, row.month, per_team=5)
    assert db.audit_state(audit_id) is S.awaiting_audit
    assert wl.check_link(db, early).stage == "audit"


def test_one_time_codes_void_expire_work_once_and_are_rate_limited(world):
    db, _, qp = world
    token = wl.issue_link(db, qp[1], "prepare")
    assert refused(wl.exchange_code, db, token, "123456", NOW) == "no_code"  # none asked for
    _, first = wl.request_code(db, token, NOW)
    assert len(first) == 6 and first.isdigit()
    wrong = f"{(int(first) + 1) % 10**6:06d}"
    for _ in range(5):
        assert refused(wl.exchange_code, db, token, wrong, NOW) == "wrong_code"
    assert refused(wl.exchange_code, db, token, first, NOW) == "no_code"  # void after 5
    _, second = wl.request_code(db, token, NOW)
    late = NOW + wl.CODE_VALID
    assert refused(wl.exchange_code, db, token, second, late) == "no_code"  # 10 minutes
    _, third = wl.request_code(db, token, NOW)
    session, access = wl.exchange_code(db, token, f" {third[:3]} {third[3:]} ", NOW)
    assert wl.form_session(db, session, NOW).audit_id == access.audit_id == qp[1]
    assert refused(wl.exchange_code, db, token, third, NOW) == "no_code"  # used once
    assert refused(wl.request_code, db, token, NOW + dt.timedelta(minutes=59)) == "throttled"
    assert wl.request_code(db, token, NOW + dt.timedelta(hours=1))[1].isdigit()


def test_only_hashes_reach_the_database(world):
    db, _, qp = world
    token = wl.issue_link(db, qp[1], "prepare")
    _, code = wl.request_code(db, token, NOW + dt.timedelta(hours=2))
    texts = []
    with db.engine.connect() as conn:
        for table in store.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                texts += [v for v in row if isinstance(v, str)]
    assert not [t for t in texts if token in t]
    assert not [t for t in texts if code in t and len(t) != 64]  # a hash may hold 6 digits
    session, _ = wl.exchange_code(db, token, code, NOW + dt.timedelta(hours=2))
    with db.engine.connect() as conn:
        found = conn.execute(sa.select(store.metadata.tables["web_sessions"].c.id_hash)).all()
    assert session not in {r[0] for r in found}
    assert wl.token_hash(session) in {r[0] for r in found}


def test_retention_removes_the_drafts_of_closed_forms_and_removing_an_audit_its_links(world):
    from formtool.programme.rules import active_policy
    from formtool.protect import retention

    db, csc, _ = world
    kept, done = csc[9], csc[10]
    for audit_id in (kept, done):
        session = session_for(db, wl.issue_link(db, audit_id, "audit"))
        wl.save_draft(db, wl.form_session(db, session, NOW), {"notes": "Seen"}, NOW)
    exempt_audit(db, done, "case closed", "Head of Service")
    planned = retention.plan(db, active_policy(db), dt.date(2026, 11, 20))
    assert planned.line("web drafts").due == ((done, "audit"),)
    assert retention.apply(db, planned, "test").removed["web drafts"] == 1
    assert db.web_draft(done, "audit") is None and db.web_draft(kept, "audit") is not None
    removed = db.remove_audit(kept, "test", "test", Counter())  # as erasure and retention do
    assert removed["audits"] == 1 and db.web_links_of(kept) == []
    assert db.web_draft(kept, "audit") is None


def test_a_link_is_locked_after_20_wrong_codes_in_its_life(world):
    db, csc, _ = world
    token = wl.issue_link(db, csc[11], "audit")
    at = NOW
    for _ in range(wl.MAX_WRONG_CODES // wl.MAX_CODE_TRIES):
        _, code = wl.request_code(db, token, at)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        reasons = [refused(wl.exchange_code, db, token, wrong, at) for _ in range(5)]
        at += dt.timedelta(hours=1)  # past the hourly limit on codes
    assert reasons[-1] == "locked"
    assert refused(wl.check_link, db, token) == "locked"
    events = [e.event for e in db.audit_records(csc[11]).events]
    assert "web form link locked" in events
    assert wl.check_link(db, wl.issue_link(db, csc[11], "audit")).audit_id == csc[11]


def test_a_session_in_use_lasts_and_an_idle_or_old_one_ends(world):
    db, csc, _ = world
    session = session_for(db, wl.issue_link(db, csc[12], "audit"))
    at = NOW
    for _ in range(5):  # saved every 110 minutes: still open at 9 h 10 min
        at += dt.timedelta(minutes=110)
        assert wl.form_session(db, session, at).audit_id == csc[12]
    assert refused(wl.form_session, db, session, at + wl.SESSION_IDLE) == "session_ended"
    later = session_for(db, wl.issue_link(db, csc[12], "audit"), NOW)
    at = NOW
    while at + dt.timedelta(minutes=110) < NOW + wl.SESSION_MAX:  # never past 12 h, however busy
        at += dt.timedelta(minutes=110)
        wl.form_session(db, later, at)
    assert refused(wl.form_session, db, later, NOW + wl.SESSION_MAX) == "session_ended"
