"""Sending the web format: the email carries a private link (made only when it is sent or
written, kept only as a hash) and no file; a dry run makes no link; a chase or an amendment
brings a new link that replaces the old one; no web_address stops the send before anything
goes; the auditors list's `format` column takes web."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_mail import smtp_server

from formtool import clock, store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.generate import keyed_for, record_audits
from formtool.programme import weblinks as wl
from formtool.programme.allocation import AllocationError, load_auditors
from formtool.programme.amendment import email_amendment
from formtool.programme.mail import MailError, deliver
from formtool.programme.outbox import mark_sent
from formtool.programme.workflow import check_audit
from formtool.settings import DEFAULT

from conftest import make_cases

ADDRESS = "https://formtool.example.invalid/qa/"
WEB = dataclasses.replace(DEFAULT, web_address=ADDRESS)
LINK = re.compile(r"^    https://formtool\.example\.invalid/qa/form/([A-Za-z0-9_-]{43})$", re.M)
SENDER = "qa-team@example.invalid"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[Any, str, list[str], Path]]:
    tmp = tmp_path_factory.mktemp("delivery")
    url = f"sqlite:///{tmp / 'delivery.db'}"
    db = store.open_store(url)
    form = get_form("csc")
    cases = keyed_for(db, make_cases(tmp, form, 9))
    cases = [
        dataclasses.replace(c, auditor_email=f"auditor{i}@example.invalid")
        for i, c in enumerate(cases)
    ]
    record_audits(db, form, cases)
    yield db, url, [c.audit_id for c in cases], tmp
    db.engine.dispose()


@pytest.fixture(autouse=True)
def today() -> Iterator[None]:
    with clock.frozen(dt.date(2026, 11, 20)):
        yield


def send(db: Any, tmp: Path, audit_id: str, **options: Any) -> Any:
    options = {"form_format": "web", "settings": WEB, **options}
    return deliver(
        db, SENDER, tmp / "no-forms", None, tmp / "mail", audit_ids=[audit_id], **options
    )


def body_of(path: Path) -> tuple[str, list[str]]:
    return body_of_bytes(path.read_bytes())


def body_of_bytes(data: bytes) -> tuple[str, list[str]]:
    message = BytesParser(policy=policy.default).parsebytes(data)
    attachments = [str(a.get_filename()) for a in message.iter_attachments()]
    plain = message.get_body(("plain",))
    assert plain is not None
    return plain.get_content().replace("\r\n", "\n"), attachments


def texts(db: Any) -> list[str]:
    found: list[str] = []
    with db.engine.connect() as conn:
        for table in store.metadata.sorted_tables:
            found += [
                v for row in conn.execute(sa.select(table)) for v in row if isinstance(v, str)
            ]
    return found


def test_a_web_letter_has_the_link_and_no_file_and_only_the_hash_is_kept(world):
    db, _, ids, tmp = world
    result = send(db, tmp, ids[0])
    [path] = result.written
    body, attachments = body_of(path)
    assert attachments == [] and result.messages[0].attachments == []
    [token] = LINK.findall(body)
    access = wl.check_link(db, token)
    assert access.audit_id == ids[0] and access.address == "auditor0@example.invalid"
    flat = " ".join(body.split())
    assert f"link works until {access.expires_on:%d/%m/%Y}" in flat
    assert "A one-time code will be emailed to this address (auditor0@example.invalid)" in flat
    assert "please do not forward this email" in flat and "attached" not in flat
    assert not [t for t in texts(db) if token in t]  # not in the outbox, events or links
    assert [m.subject for m in db.outbox_messages(None, None, "")]  # the outbox has the email


def test_a_dry_run_makes_no_link(world):
    db, _, ids, tmp = world
    result = send(db, tmp, ids[1], dry_run=True)
    body = result.messages[0].message.get_body(("plain",)).get_content()
    assert wl.LINK_LATER in body and not LINK.findall(body)
    assert db.web_links_of(ids[1]) == []


def test_a_chase_brings_a_new_link_and_the_old_one_stops_once_it_has_gone(world):
    db, _, ids, tmp = world
    [first] = LINK.findall(body_of(send(db, tmp, ids[2]).written[0])[0])
    clock.set_today(dt.date(2026, 12, 3))
    chased = deliver(
        db, SENDER, tmp, None, tmp / "chase", chase=True, settings=WEB, audit_ids=[ids[2]]
    )
    body, attachments = body_of(chased.written[0])
    [second] = LINK.findall(body)
    assert attachments == [] and second != first
    assert "Use this email's link: those in earlier emails may no longer work." in " ".join(
        body.split()
    )
    # a draft may go from Outlook, or not: the link before it still works beside it
    assert wl.check_link(db, second).audit_id == wl.check_link(db, first).audit_id == ids[2]
    clock.set_today(dt.date(2026, 12, 4))
    with smtp_server() as (handler, port):
        deliver(
            db,
            SENDER,
            tmp,
            None,
            tmp / "x",
            chase=True,
            settings=WEB,
            audit_ids=[ids[2]],
            smtp=f"127.0.0.1:{port}",
        )
    [third] = LINK.findall(body_of_bytes(handler.envelopes[-1].content)[0])
    assert wl.check_link(db, third).audit_id == ids[2]
    for earlier in (first, second):  # the chase has gone: the earlier links stop
        with pytest.raises(wl.LinkRefused) as caught:
            wl.check_link(db, earlier)
        assert caught.value.reason == "replaced"


def web_returned(db: Any, audit_id: str) -> None:
    """A web return, as the form's submission stores it, and the audit returned."""
    with db.engine.begin() as conn:
        conn.execute(
            store.returns.insert().values(
                audit_id=audit_id,
                file_name="web form",
                content_hash="h" * 64,
                content=b"{}",
                imported_at=store.now(),
                is_current=True,
                method="web",
                final=True,
            )
        )
    db.move(store.Move(audit_id, (store.AuditState.allocated,), store.AuditState.returned, "test"))


def test_an_amendment_of_a_web_return_brings_a_new_link(world):
    db, _, ids, tmp = world
    [first] = LINK.findall(body_of(send(db, tmp, ids[3]).written[0])[0])
    web_returned(db, ids[3])
    check_audit(db, ids[3], amend_reason="Add the plan's date")
    mail = email_amendment(db, ids[3], SENDER, out_dir=tmp / "amend", settings=WEB)
    assert mail.outcome == "drafted" and mail.written is not None
    body, attachments = body_of(mail.written)
    [second] = LINK.findall(body)
    assert attachments == [] and "What needs amending: Add the plan's date" in body
    assert wl.check_link(db, second).amendment == "Add the plan's date"
    assert wl.check_link(db, first).audit_id == ids[3]  # a draft: the old link still works


def test_an_amendment_sent_over_smtp_stops_the_earlier_links(world):
    db, _, ids, tmp = world
    [first] = LINK.findall(body_of(send(db, tmp, ids[5]).written[0])[0])
    web_returned(db, ids[5])
    check_audit(db, ids[5], amend_reason="And the review date")
    with smtp_server() as (handler, port):
        sent = email_amendment(db, ids[5], SENDER, smtp=f"127.0.0.1:{port}", settings=WEB)
    assert sent.outcome == "sent"
    [second] = LINK.findall(body_of_bytes(handler.envelopes[-1].content)[0])
    assert wl.check_link(db, second).amendment == "And the review date"
    with pytest.raises(wl.LinkRefused) as caught:
        wl.check_link(db, first)
    assert caught.value.reason == "replaced"


def test_no_web_address_stops_the_send_before_anything_goes(world):
    db, url, ids, tmp = world
    before = len(db.outbox_messages(None, None, ""))
    with pytest.raises(MailError, match=r"set web_address in formtool\.toml"):
        send(db, tmp, ids[4], settings=DEFAULT)
    assert len(db.outbox_messages(None, None, "")) == before and db.web_links_of(ids[4]) == []
    out = CliRunner().invoke(
        cli, ["send", "--db", url, "--format", "web", "--audit", ids[4], "--out", str(tmp)]
    )
    assert out.exit_code == 2 and "go as web forms, but no web_address is set" in out.output
    assert db.web_links_of(ids[4]) == []


@pytest.mark.parametrize("written", ["web", "Web form", "browser", " .WEB "])
def test_the_auditors_list_takes_web(tmp_path, written):
    path = tmp_path / "auditors.csv"
    path.write_text(f"name,email,team,format\nAvery Example,a@example.invalid,T1,{written}\n")
    assert [a.format for a in load_auditors(path)] == ["web"]


def test_the_auditors_list_names_the_three_formats(tmp_path):
    path = tmp_path / "auditors.csv"
    path.write_text("name,email,team,format\nAvery Example,a@example.invalid,T1,pdf\n")
    with pytest.raises(AllocationError, match=r"Use Word \(docx\), Excel \(xlsx\) or web"):
        load_auditors(path)


def test_a_case_list_saying_web_makes_web_audits(tmp_path):
    import random

    from formtool.demo.synthetic import synthetic_case
    from formtool.read.cases import load_cases

    from conftest import DUE, write_cases

    form = get_form("csc")
    row = synthetic_case(form, 1, DUE, random.Random(1)) | {"auditor_format": "Web form"}
    [case] = load_cases(write_cases(tmp_path / "cases.csv", [row]), form)
    assert case.form_format == "web"


def test_a_late_preparer_is_chased_with_a_link_to_the_preparers_stage(tmp_path):
    db = store.open_store(f"sqlite:///{tmp_path / 'qp.db'}")
    form = get_form("quality_practice")
    [case] = [
        dataclasses.replace(
            c, auditor_email="auditor@example.invalid", preparer_email="worker@example.invalid"
        )
        for c in keyed_for(db, make_cases(tmp_path, form, 1))
    ]
    record_audits(db, form, [case])
    sent = send(db, tmp_path, case.audit_id)
    [first] = LINK.findall(body_of(sent.written[0])[0])
    assert wl.check_link(db, first).stage == "prepare"
    mark_sent(db, db.audit_row(case.audit_id).month)  # the draft went from Outlook: sent
    assert db.audit_state(case.audit_id) == "sent"
    clock.set_today(dt.date(2026, 12, 3))  # past the due date, nothing prepared yet
    chased = deliver(
        db,
        SENDER,
        tmp_path,
        None,
        tmp_path / "chase",
        chase=True,
        settings=WEB,
        audit_ids=[case.audit_id],
    )
    message = BytesParser(policy=policy.default).parse(chased.written[0].open("rb"))
    assert message["To"].addresses[0].addr_spec == "worker@example.invalid"
    [second] = LINK.findall(body_of(chased.written[0])[0])
    assert wl.check_link(db, second).stage == "prepare"


def test_relink_emails_a_new_link_and_the_old_one_stops(world):
    from formtool.programme.relink import email_new_link

    db, _, ids, tmp = world
    [old] = LINK.findall(body_of(send(db, tmp, ids[6]).written[0])[0])
    with smtp_server() as (handler, port):
        done = email_new_link(db, ids[6], SENDER, WEB, smtp=f"127.0.0.1:{port}", user="olive")
    body, attachments = body_of_bytes(handler.envelopes[-1].content)
    [new] = LINK.findall(body)
    assert attachments == [] and "auditor6@example.invalid" in done.to
    assert handler.envelopes[-1].rcpt_tos == ["auditor6@example.invalid"]
    assert wl.check_link(db, new).audit_id == ids[6]
    with pytest.raises(wl.LinkRefused) as caught:
        wl.check_link(db, old)
    assert caught.value.reason == "replaced"
    events = [(e.event, e.detail) for e in db.audit_records(ids[6]).events]
    assert ("new form link emailed", "to auditor6@example.invalid") in events
    assert not [t for t in texts(db) if new in t]


def test_relink_refuses_an_audit_that_owes_no_return_and_makes_no_link(world):
    from formtool.programme.relink import email_new_link

    db, _, ids, tmp = world
    web_returned(db, ids[7])
    with pytest.raises(MailError, match="it owes no return"):
        email_new_link(db, ids[7], SENDER, WEB, out_dir=tmp / "relink")
    assert db.web_links_of(ids[7]) == []


def test_relink_on_the_command_line_writes_a_draft(world, tmp_path):
    db, url, ids, _ = world
    (tmp_path / "formtool.toml").write_text(f'web_address = "{ADDRESS}"\n', encoding="utf-8")
    out = CliRunner().invoke(
        cli,
        ["relink", ids[8], "--db", url, "--out", str(tmp_path / "mail"), "--json"],
        env={"FORMTOOL_CONFIG": str(tmp_path / "formtool.toml")},
    )
    assert out.exit_code == 0, out.output
    written = Path(json.loads(out.output)["written"])
    [token] = LINK.findall(body_of(written)[0])
    assert wl.check_link(db, token).audit_id == ids[8]
    assert "new form link drafted" in [e.event for e in db.audit_records(ids[8]).events]
    unknown = CliRunner().invoke(cli, ["relink", "../../etc/passwd", "--db", url])
    assert unknown.exit_code == 2
    assert unknown.output.strip().splitlines()[-1] == (
        "Error: Audit ../../etc/passwd is not in the database. Check the id (`formtool status` "
        "lists the month's audits)."
    )
