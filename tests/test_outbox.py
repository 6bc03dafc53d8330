"""Every email sent once (issue 18): two sends at once against a local SMTP server, a refused
recipient tried again, a message cut off by a crash reported unknown and never sent again on
its own, the picked-for-audit email sent once, chases once a day, and .eml drafts that wait
for the officer to say they went (counting from the day they were written until then). An
upgrade starts the outbox from what the history says went; a run so slow that another sent its
message again still settles it and says so; the officer decides about each unknown email."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from dataclasses import replace
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_mail import Collect, plain_body, smtp_server
from test_web import PASSWORD, client_for, post

from formtool import store
from formtool.access.accounts import add_user
from formtool.cli import cli
from formtool.definitions import PREPARED, get_form
from formtool.generate import audit_record, record_audits, write_forms
from formtool.periods import show_date
from formtool.programme.deadlines import distribution_date
from formtool.programme.mail import RESEND, deliver, deliveries, distribution_dates
from formtool.programme.outbox import mark_sent
from formtool.read.cases import Case
from formtool.settings import Settings
from formtool.web import create_app

from conftest import database_at, make_cases

MONTH = "2026-11"
SENDER = "qa@example.invalid"
OVERDUE = dt.date(2026, 12, 3)  # the audits are due on 30/11/2026


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    """16 CSC audits, each for its own auditor, and their generated forms (made once)."""
    folder = tmp_path_factory.mktemp("outbox")
    form = get_form("csc")
    cases = [
        replace(
            c,
            facts=c.facts | {"auditor": f"Auditor {i} (synthetic)"},
            auditor_email=f"auditor{i}@example.invalid",
        )
        for i, c in enumerate(make_cases(folder, form, 16))
    ]
    write_forms(form, cases, folder / "forms", ("docx",))
    return folder / "forms", cases


def events(db: store.Store, name: str) -> Counter[str]:
    """How many events of this name each audit has."""
    e = store.events.c
    with db.engine.connect() as conn:
        return Counter(conn.execute(sa.select(e.audit_id).where(e.event == name)).scalars())


def states(db: store.Store) -> Counter[str]:
    with db.engine.connect() as conn:
        return Counter(conn.execute(sa.select(store.audits.c.state)).scalars())


def send(db_url: str, forms_dir: Path, port: int, *extra: str) -> Any:
    return CliRunner().invoke(
        cli,
        [
            "send",
            "--db",
            db_url,
            "--month",
            MONTH,
            "--forms",
            str(forms_dir),
            "--smtp",
            f"127.0.0.1:{port}",
            "--from",
            SENDER,
            *extra,
        ],
    )


def to(handler: Collect) -> Counter[str]:
    """How many messages each address received."""
    return Counter(r for e in handler.envelopes for r in e.rcpt_tos)


def test_two_sends_at_once_send_each_email_once(db_url, forms):
    forms_dir, cases = forms
    db = store.open_store(db_url)
    record_audits(db, get_form("csc"), cases)
    planned = threading.Barrier(2, timeout=30)

    def planning_together(run: store.Store) -> store.Store:
        """Both runs read what to send before either claims anything: the race at its worst."""
        read = run.held_claims

        def held_then_wait(*args: Any) -> Any:
            found = read(*args)
            planned.wait()
            return found

        run.held_claims = held_then_wait  # type: ignore[method-assign,assignment]
        return run

    results: list[Any] = []
    with smtp_server("none") as (handler, port):

        def one_send() -> None:
            run = planning_together(store.Store(db.engine))
            results.append(
                deliver(run, SENDER, forms_dir, MONTH, forms_dir, smtp=f"127.0.0.1:{port}")
            )

        threads = [threading.Thread(target=one_send) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(results) == 2, "a send failed"
        again = send(db_url, forms_dir, port, "--json")
    assert to(handler) == Counter({c.auditor_email: 1 for c in cases})  # 16 emails, not 32
    assert sum(len(r.messages) for r in results) == 16
    assert events(db, "sent") == Counter({c.audit_id: 1 for c in cases})
    assert states(db) == Counter({"sent": 16})
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["sent"], report["already_sent"], report["messages"]) == (0, 16, [])


def test_a_refusal_is_tried_again_and_a_crash_is_unknown_never_sent_again(db_url, forms):
    forms_dir, cases = forms
    db = store.open_store(db_url)
    record_audits(db, get_form("csc"), cases[:4])
    refused, crashed = cases[1], cases[4]

    class Refusing(Collect):
        def __init__(self) -> None:
            super().__init__()
            self.refuse = {refused.auditor_email}

        async def handle_RCPT(self, server, session, envelope, address, options):
            if address in self.refuse:
                return "550 5.1.1 No such mailbox here"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    handler = Refusing()
    with smtp_server("none", handler=handler) as (_, port):
        first = send(db_url, forms_dir, port)
        assert first.exit_code == 1, first.output
        assert "3 message(s) sent via" in first.output
        assert "1 failed; the next send tries them again:\n" in first.output
        assert f"  to {refused.auditor_email}, " in first.output
        assert "the server refused it: 550 5.1.1 No such mailbox here" in first.output
        assert refused.audit_id not in events(db, "sent")
        handler.refuse.clear()
        second = send(db_url, forms_dir, port, "--json")
        assert second.exit_code == 0, second.output
        assert '"already_sent": 3' in second.output
        [retried] = [m for m in db.outbox_messages(MONTH) if m.recipient == refused.auditor_email]
        assert retried.state == "sent" and retried.attempts == 2

        # a crash after the server took the message and before formtool recorded it
        record_audits(db, get_form("csc"), [crashed])
        run = store.Store(db.engine)

        def power_cut(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("power cut")

        run.settle_message = power_cut  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            deliver(run, SENDER, forms_dir, MONTH, forms_dir, smtp=f"127.0.0.1:{port}")
        assert to(handler)[crashed.auditor_email] == 1
        busy = send(db_url, forms_dir, port)  # queued just now: another run may be sending it
        assert "1 being sent by another formtool now (skipped)." in busy.output
        with store.transaction(db.engine) as conn:
            conn.execute(
                store.schema.outbox.update()
                .where(store.schema.outbox.c.state == "queued")
                .values(created_at=store.now() - dt.timedelta(hours=1))
            )
        unknown = send(db_url, forms_dir, port)
        assert unknown.exit_code == 1, unknown.output
        assert "1 unknown: check the Sent Items:\n" in unknown.output
        assert f"  to {crashed.auditor_email}, " in unknown.output
        assert "--mark-sent 2026-11" in unknown.output and "--resend-unknown" in unknown.output
        assert to(handler)[crashed.auditor_email] == 1  # never sent again on its own
        resent = send(db_url, forms_dir, port, "--resend-unknown")
        assert resent.exit_code == 0, resent.output
        assert "1 message(s) sent via" in resent.output
    assert to(handler) == Counter(
        {c.auditor_email: 1 for c in cases[:5]} | {crashed.auditor_email: 2}
    )
    assert events(db, "sent") == Counter({c.audit_id: 1 for c in cases[:5]})


def test_drafts_wait_to_be_marked_sent_and_count_from_the_day_written(db_url, forms, tmp_path):
    forms_dir, cases = forms
    db = store.open_store(db_url)
    drafted, later = cases[:3], cases[3]
    with store.transaction(db.engine) as conn:
        store.record_allocation(conn, MONTH, "first", 0, [audit_record(c) for c in drafted], 0)
    result = deliver(db, SENDER, forms_dir, MONTH, tmp_path / "mail")
    assert len(result.written) == 3 and states(db) == Counter({"allocated": 3})
    assert events(db, "drafts written") == Counter({c.audit_id: 1 for c in drafted})
    assert events(db, "sent") == Counter()
    written = db.events_named([drafted[0].audit_id], {"drafts written"})[drafted[0].audit_id]
    day = written[0][0].date()

    # `allocate --replace` keeps audits whose drafts were written (they may have gone)
    with store.transaction(db.engine) as conn:
        store.record_allocation(conn, MONTH, "add", 0, [audit_record(later)], 0)
    with db.engine.connect() as conn, conn.begin() as trans:
        assert store.drop_unstarted(conn, MONTH) == 1  # only the one never emailed
        trans.rollback()

    # a chase runs from distribution: the drafts' day counts; one never sent is not chased
    assert distribution_dates(db, [c.audit_id for c in cases[:4]]) == {
        **{c.audit_id: day for c in drafted},
        later.audit_id: None,
    }
    chase = deliver(db, SENDER, forms_dir, MONTH, tmp_path / "c", chase=True, today=OVERDUE)
    assert chase.not_sent == [later.audit_id] and len(chase.written) == 3
    body = plain_body(BytesParser(policy=policy.default).parse(chase.written[0].open("rb")))
    assert f"due 30/11/2026, sent {show_date(day)}" in body
    assert events(db, "chased") == Counter()  # a chase drafted is not a chase sent

    marked = CliRunner().invoke(cli, ["send", "--db", db_url, "--mark-sent", MONTH])
    assert marked.exit_code == 0, marked.output
    assert marked.output.endswith(f"6 message(s) for {MONTH} marked sent (6 audit(s)).\n")
    assert states(db) == Counter({"sent": 3, "allocated": 1})
    assert events(db, "sent") == events(db, "chased") == Counter({c.audit_id: 1 for c in drafted})
    assert mark_sent(db, MONTH).messages == []  # nothing is marked twice


def qp_cases(tmp_path: Path) -> list[Case]:
    """Two Quality Practice files, each for its own auditor."""
    return [
        replace(c, auditor_email=f"manager{i}@example.invalid", preparer_email="w@example.invalid")
        for i, c in enumerate(make_cases(tmp_path, get_form("quality_practice"), 2))
    ]


def qp_awaiting_audit(db: store.Store, tmp_path: Path) -> list[Case]:
    """Two Quality Practice files prepared and picked for audit, each for its own auditor."""
    cases = qp_cases(tmp_path)
    record_audits(db, get_form("quality_practice"), cases)
    with store.transaction(db.engine) as conn:
        picked_for_audit(conn, cases)
    return cases


def picked_for_audit(conn: sa.Connection, cases: list[Case]) -> None:
    """The files' prepared returns are in and they are picked for audit."""
    a = store.audits.c
    for case in cases:
        conn.execute(
            store.returns.insert().values(
                audit_id=case.audit_id,
                file_name=f"{case.audit_id}.docx",
                content_hash=case.audit_id.ljust(64, "0")[:64],
                content=b"prepared",
                imported_at=dt.datetime(2026, 11, 10, 9),
                saved_at=dt.datetime(2026, 11, 10, 9),
                is_current=True,
                method="bookmarks",
                final=True,
                stage=PREPARED,
            )
        )
        conn.execute(
            store.audits.update()
            .where(a.audit_id == case.audit_id)
            .values(state=store.AuditState.awaiting_audit.value)
        )


def test_picked_for_audit_goes_once_and_a_chase_once_a_day(db_url, tmp_path):
    db = store.open_store(db_url)
    cases = qp_awaiting_audit(db, tmp_path)
    every = Counter({c.auditor_email: 1 for c in cases})
    with smtp_server("none") as (handler, port):
        for _ in range(3):
            result = send(db_url, tmp_path / "none", port)
            assert result.exit_code == 0, result.output
        assert to(handler) == every  # 3 sends: one email each
        assert result.output.endswith(
            f"0 message(s) sent via 127.0.0.1:{port}.\n2 already sent (skipped).\n"
        )

        def chase(day: dt.date) -> Any:
            return deliver(
                db,
                SENDER,
                tmp_path,
                MONTH,
                tmp_path,
                chase=True,
                smtp=f"127.0.0.1:{port}",
                today=day,
            )

        assert len(chase(OVERDUE).messages) == 2
        repeat = chase(OVERDUE)
        assert (len(repeat.messages), len(repeat.already_sent)) == (0, 2)
        assert len(chase(OVERDUE + dt.timedelta(days=1)).messages) == 2  # the next round
    assert to(handler) == Counter({a: 3 for a in every})
    assert events(db, "sent") == Counter({c.audit_id: 1 for c in cases})
    assert events(db, "chased") == Counter({c.audit_id: 2 for c in cases})
    assert states(db) == Counter({"awaiting audit": 2})


def test_the_distribution_date_is_the_last_send_or_the_drafts_after_it():
    day = dt.datetime(2026, 11, 2, 9)
    later = day + dt.timedelta(days=3)
    assert distribution_date([]) is None
    assert distribution_date([(day, "drafts written"), (later, "drafts written")]) == day.date()
    assert distribution_date([(day, "drafts written"), (later, "sent")]) == later.date()
    assert distribution_date([(day, "sent to preparer"), (later, "drafts written")]) == (
        later.date()
    )
    assert distribution_date([(day, "sent"), (later, "chased")]) == day.date()


def at_0008(url: str) -> sa.Engine:
    """An empty database at revision 0008, the schema before the outbox."""
    with database_at(url, "0008"):
        pass
    return store.engine_for(url)


@pytest.mark.empty_pg  # it builds or opens the schema itself
def test_an_upgrade_starts_the_outbox_from_what_was_already_sent(db_url, forms, tmp_path):
    forms_dir, cases = forms
    sent, fresh, qp = cases[:2], cases[2], qp_cases(tmp_path)
    day = dt.datetime(2026, 11, 2, 9)
    history = [  # as formtool recorded each email before the outbox: events only
        *((c.audit_id, day, "sent", c.auditor_email) for c in sent),
        *((c.audit_id, day, "sent to preparer", c.preparer_email) for c in qp),
        *((c.audit_id, day.replace(day=20), "selected for audit", "") for c in qp),
        *((c.audit_id, day.replace(day=21), "sent", c.auditor_email) for c in qp),
        *((c.audit_id, dt.datetime(2026, 12, 3, 8), "chased", c.auditor_email) for c in sent + qp),
    ]
    engine = at_0008(db_url)
    with store.transaction(engine) as conn:
        store.record_allocation(
            conn, MONTH, "first", 0, [audit_record(c) for c in [*sent, fresh, *qp]], 0
        )
        conn.execute(
            store.audits.update()
            .where(store.audits.c.audit_id.in_([c.audit_id for c in sent]))
            .values(state="sent")
        )
        picked_for_audit(conn, qp)
        for audit_id, at, event, to_whom in history:
            conn.execute(
                store.events.insert().values(
                    audit_id=audit_id,
                    at=at,
                    event=event,
                    detail=f"to {to_whom}" if to_whom else "",
                    user_name="cli:officer",
                )
            )
    engine.dispose()
    db = store.open_store(db_url)  # upgraded to the head
    with smtp_server("none") as (handler, port):
        smtp = f"127.0.0.1:{port}"
        first = deliver(db, SENDER, forms_dir, MONTH, tmp_path, smtp=smtp, today=OVERDUE)
        chase = deliver(db, SENDER, forms_dir, MONTH, tmp_path, True, smtp, today=OVERDUE)
    assert [m.audit_ids for m in first.messages] == [(fresh.audit_id,)]  # only the new one
    assert [m.audit_ids for m in chase.messages] == [(fresh.audit_id,)]  # chased that day
    assert to(handler) == Counter({fresh.auditor_email: 2})
    assert events(db, "sent") == Counter({c.audit_id: 1 for c in [*sent, fresh, *qp]})

    ids = [c.audit_id for c in [*sent, *qp]]
    assert db.held_claims(ids, {"distribution"}, "") == dict.fromkeys(
        [(a, "distribution") for a in ids], "sent"
    )
    assert db.held_claims(ids, {"picked_for_audit"}, "") == dict.fromkeys(
        [(c.audit_id, "picked_for_audit") for c in qp], "sent"
    )
    assert db.held_claims(ids, {"chase"}, OVERDUE.isoformat()) == dict.fromkeys(
        [(a, "chase") for a in ids], "sent"
    )
    kept = [m for m in db.outbox_messages(MONTH) if fresh.audit_id not in m.audit_ids]
    assert len(kept) == 2 + 1 + 2 + 4  # one per recipient, purpose and day
    assert {(m.state, m.user_name, m.subject[:13]) for m in kept} == {
        ("sent", "cli:officer", "(recorded fro")
    }
    prepare = [m for m in kept if m.stage == "prepare"]
    assert [(m.recipient, len(m.audit_ids)) for m in prepare] == [("w@example.invalid", 2)]


def test_a_send_taken_over_while_it_was_slow_still_settles_and_says_so(db_url, forms, monkeypatch):
    forms_dir, cases = forms
    db = store.open_store(db_url)
    record_audits(db, get_form("csc"), cases[:1])
    claim, slow = store.Store.claim_message, list[int | None]()

    with smtp_server("none") as (handler, port):

        def claim_then_stall(self: store.Store, *args: Any) -> Any:
            """This run claims its message and then takes over 10 minutes to send it, so
            another run, asked to resend unknown messages, takes it over and sends it."""
            claimed = claim(self, *args)
            if not slow:
                slow.append(claimed.message_id)
                with store.transaction(db.engine) as conn:
                    conn.execute(
                        store.schema.outbox.update().values(
                            created_at=store.now() - dt.timedelta(minutes=11)
                        )
                    )
                other = deliver(
                    store.Store(db.engine),
                    SENDER,
                    forms_dir,
                    MONTH,
                    forms_dir,
                    smtp=f"127.0.0.1:{port}",
                    again=RESEND,
                )
                assert len(other.messages) == 1
            return claimed

        monkeypatch.setattr(store.Store, "claim_message", claim_then_stall)
        result = send(db_url, forms_dir, port)
    assert result.exit_code == 0, result.output
    case = cases[0]
    assert result.stdout.startswith(f"  {case.auditor_email:<40}   1 audit(s), 1 attachment(s)\n")
    assert f"1 message(s) sent via 127.0.0.1:{port}.\n1 already sent (skipped).\n" in result.output
    *_, said, superseded = result.stdout.splitlines()
    assert said == (
        "1 of this run's message(s) took so long that another formtool sent them again meanwhile:"
    )
    assert superseded.startswith(f"  to {case.auditor_email} (audits {case.audit_id}; ")
    assert superseded.endswith(
        " UTC): sent, but another formtool had already taken it over: check the Sent Items "
        "for a second copy"
    )
    assert to(handler) == Counter({case.auditor_email: 2})  # both went: the run says so
    with db.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(store.schema.outbox))}
    [first] = slow
    [(other_id, other)] = [(i, r) for i, r in rows.items() if i != first]
    assert (rows[first].state, rows[first].superseded_by, rows[first].last_error) == (
        "sent",
        other_id,
        "",
    )
    assert (other.state, other.superseded_by) == ("sent", None)
    assert [m.id for m in db.outbox_messages(MONTH)] == [other_id]  # it holds the claim
    assert events(db, "sent") == Counter({case.audit_id: 1}) and states(db) == {"sent": 1}


def unknown_messages(db: store.Store, cases: list[Case]) -> None:
    """A run claimed one email per case and stopped before any outcome was recorded."""
    for case in cases:
        db.claim_message(
            MONTH,
            "distribution",
            "",
            "audit",
            case.auditor_email,
            [case.audit_id],
            lambda ids: f"{len(ids)} audit(s)",
        )
    with store.transaction(db.engine) as conn:
        conn.execute(
            store.schema.outbox.update().values(created_at=store.now() - dt.timedelta(hours=1))
        )


def test_a_message_settled_sent_keeps_no_error(db, forms):
    _, cases = forms
    record_audits(db, get_form("csc"), cases[:1])
    unknown_messages(db, cases[:1])
    db.claim_message(MONTH, "distribution", "", "audit", "x@example.invalid", [], str)
    [stale] = db.outbox_messages(MONTH)  # another send's claim found it stale
    assert stale.last_error == "no outcome was recorded: formtool stopped while sending it"
    settled = db.settle_message(stale.id, store.MessageState.sent, deliveries)
    assert (settled.state, settled.last_error) == ("sent", "")  # it went after all
    assert events(db, "sent") == Counter({cases[0].audit_id: 1})


def test_every_outbox_message_has_a_user(db, forms):
    _, cases = forms
    record_audits(db, get_form("csc"), cases[:1])
    unknown_messages(db, cases[:1])  # claimed with no user named
    with store.acting_as("web:olive"):
        db.claim_message(MONTH, "chase", "2026-12-03", "audit", "x", [cases[0].audit_id], str)
    assert [m.user_name for m in db.outbox_messages(MONTH)] == [store.actor(), "web:olive"]
    assert store.actor() != ""


def test_the_officer_decides_about_each_unknown_email(db_url, forms):
    forms_dir, cases = forms
    db = store.open_store(db_url)
    found, missing, undecided = cases[:3]
    record_audits(db, get_form("csc"), [found, missing, undecided])
    unknown_messages(db, [found, missing, undecided])

    def mark(*audits: str) -> Any:
        extra = [a for audit_id in audits for a in ("--audit", audit_id)]
        return CliRunner().invoke(cli, ["send", "--db", db_url, "--mark-sent", MONTH, *extra])

    with smtp_server("none") as (handler, port):
        listed = send(db_url, forms_dir, port)
        assert listed.exit_code == 1, listed.output
        for case in (found, missing, undecided):
            assert f'  to {case.auditor_email}, "1 audit(s)" (audits {case.audit_id}; ' in (
                listed.output
            )
        assert f"`formtool send --mark-sent {MONTH} --audit ID`" in listed.output
        assert "run the same command again with --resend-unknown --audit ID." in listed.output

        drafts_only = mark()  # no drafts: the unknown emails are not marked on the way
        assert drafts_only.exit_code == 0, drafts_only.output
        assert drafts_only.output.startswith(
            f"0 message(s) for {MONTH} marked sent (0 audit(s)).\n3 unknown, left as they are"
        )
        assert "--resend-unknown --audit ID` (a reminder" in drafts_only.output
        assert states(db) == Counter({"allocated": 3})

        marked = mark(found.audit_id)
        assert marked.exit_code == 0, marked.output
        assert marked.output.startswith(
            f"  {found.auditor_email:<40}   1 audit(s)\n"
            f"1 message(s) for {MONTH} marked sent (1 audit(s)).\n2 unknown, left as they are"
        )
        twice = mark(found.audit_id, "CSC-NOSUCH-202611")
        assert twice.exit_code == 2
        assert twice.output == (
            f"Error: Nothing was marked sent: {found.audit_id} (its email is sent), "
            f"CSC-NOSUCH-202611 (no email in {MONTH}). Only an .eml draft or an email of unknown "
            f"fate can be marked sent; `formtool send --month {MONTH} --dry-run` lists the "
            "unknown ones with their audits.\n"
        )

        resent = send(db_url, forms_dir, port, "--resend-unknown", "--audit", missing.audit_id)
        assert resent.exit_code == 1, resent.output  # the undecided one is still unknown
        assert resent.stdout.startswith(f"  {missing.auditor_email:<40}   1 audit(s)")
        assert f"1 message(s) sent via 127.0.0.1:{port}.\n" in resent.output
        assert "1 unknown: check the Sent Items:\n" in resent.output
        assert f"(audits {undecided.audit_id}; " in resent.output
    assert to(handler) == Counter({missing.auditor_email: 1})
    by_audit = {m.audit_ids: m for m in db.outbox_messages(MONTH)}
    assert by_audit[(found.audit_id,)].state == "sent"
    assert by_audit[(found.audit_id,)].last_error == ""  # no longer "formtool stopped"
    assert by_audit[(undecided.audit_id,)].state == "unknown"
    assert "formtool stopped" in by_audit[(undecided.audit_id,)].last_error
    assert events(db, "sent") == Counter({found.audit_id: 1, missing.audit_id: 1})


def test_in_the_browser_each_unknown_email_is_marked_sent_on_its_own(
    db_url, forms, tmp_path, monkeypatch
):
    from argon2 import PasswordHasher

    from formtool.access import accounts

    monkeypatch.setattr(accounts, "_hasher", lambda: PasswordHasher(1, 8192, 1))
    _, cases = forms
    db = store.open_store(db_url)
    add_user(db, "olive", "officer", PASSWORD)
    found, undecided = cases[:2]
    record_audits(db, get_form("csc"), [found, undecided])
    unknown_messages(db, [found, undecided])
    client = client_for(create_app(db, Settings(), work_dir=tmp_path), "olive")
    page = client.get(f"/allocate?month={MONTH}").text
    assert "2 email(s) unknown: check the Sent Items for each one." in page
    assert page.count("It is in the Sent Items: mark it sent") == 2
    assert f"(audits {found.audit_id})" in page and "I have sent these drafts" not in page
    assert f"--resend-unknown --audit {undecided.audit_id}</code>" in page
    url = f"/allocate?month={MONTH}"
    marked = post(client, f"/allocate/{MONTH}/mark-sent", {"audit": found.audit_id}, page=url)
    assert marked.status_code == 303
    assert "1 message(s) for 2026-11 marked sent; 1 audit(s) are now sent." in client.get(url).text
    assert {r.audit_id: r.state for r in db.audit_rows([MONTH])} == {
        found.audit_id: "sent",
        undecided.audit_id: "allocated",
    }
