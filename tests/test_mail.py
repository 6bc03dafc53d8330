"""send and chase: .eml drafts parsed back, a real SMTP server on 127.0.0.1, no header
injection, and the audits' state and history updated."""

from __future__ import annotations

import datetime as dt
import json
import socket
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.generate import write_forms
from formtool.mail import MailError, build_messages

from conftest import make_cases


@pytest.fixture
def world(tmp_path):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    engine = store.open_store(db)
    form = get_form("csc")
    cases = make_cases(tmp_path, form, 3)
    cases = [
        c.__class__(
            c.audit_id,
            c.form_id,
            c.form_version,
            c.facts,
            c.row,
            f"auditor{i}@example.invalid",
            form_format="xlsx" if i == 1 else "docx",
        )
        for i, c in enumerate(cases)
    ]
    made = write_forms(form, cases, tmp_path / "forms", ("docx", "xlsx"), engine=engine)
    return tmp_path, db, engine, made


def parse(path):
    return BytesParser(policy=policy.default).parse(path.open("rb"))


def plain_body(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None, "no plain-text body"
    return body.get_content()


def events(engine, name):
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(store.events.c.audit_id).where(store.events.c.event == name))
            .scalars()
            .all()
        )


def test_send_writes_eml_drafts_with_the_forms_attached(world):
    root, db, engine, made = world
    result = CliRunner().invoke(
        cli,
        [
            "send",
            "--db",
            db,
            "--forms",
            str(root / "forms"),
            "--out",
            str(root / "mail"),
            "--from",
            "qa@example.invalid",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["eml"]) == 3
    files = {m.path.name: m.path.read_bytes() for m in made}
    attached = []
    for path in map(type(root), report["eml"]):
        message = parse(path)
        assert message["From"] == "qa@example.invalid" and message["X-Unsent"] == "1"
        assert message["Subject"] == (
            "[OFFICIAL-SENSITIVE] 1 case file audit(s) for November 2026, due 30/11/2026"
        )
        [(name, data)] = [
            (a.get_filename(), a.get_content()) for a in message.iter_attachments()
        ]  # one form per audit
        assert files[name] == data  # byte-identical
        attached.append(name)
        body = plain_body(message)
        assert f"Case File Audit Tool: case {name.split('-')[1]}" in body  # the title, not "csc"
        assert "due 30/11/2026" in body and "How to return it: save it" in body
        assert "This email and its attachments are OFFICIAL-SENSITIVE." in body
    ids = sorted(m.case.audit_id for m in made[::2])
    assert sorted(attached) == [f"{ids[0]}.docx", f"{ids[1]}.xlsx", f"{ids[2]}.docx"]
    with engine.connect() as conn:
        states = conn.execute(sa.select(store.audits.c.state)).scalars().all()
    assert states == ["sent"] * 3
    assert sorted(events(engine, "sent")) == sorted(m.case.audit_id for m in made[::2])
    again = CliRunner().invoke(
        cli, ["send", "--db", db, "--forms", str(root / "forms"), "--out", str(root / "mail2")]
    )
    assert again.output.strip() == "0 message(s) written."


def test_send_over_smtp_to_a_local_server(world, monkeypatch):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    class Collect:
        def __init__(self):
            self.envelopes = []

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append(envelope)
            return "250 OK"

    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"qa" and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    root, db, engine, made = world
    handler = Collect()
    with socket.socket() as probe:  # a free port on the loopback interface
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=check, auth_require_tls=False
    )
    controller.start()
    try:
        args = [
            "send",
            "--db",
            db,
            "--forms",
            str(root / "forms"),
            "--smtp",
            f"127.0.0.1:{port}",
            "--from",
            "qa@example.invalid",
            "--user",
            "qa",
        ]
        monkeypatch.delenv("FORMTOOL_SMTP_PASSWORD", raising=False)
        refused = CliRunner().invoke(cli, args)
        assert refused.exit_code == 2 and "FORMTOOL_SMTP_PASSWORD is not set" in refused.output
        monkeypatch.setenv("FORMTOOL_SMTP_PASSWORD", "s3cret")
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    finally:
        controller.stop()
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == [
        f"auditor{i}@example.invalid" for i in range(3)
    ]
    files = {m.path.name: m.path.read_bytes() for m in made}
    for envelope in handler.envelopes:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert all(files[a.get_filename()] == a.get_content() for a in message.iter_attachments())
    assert len(events(engine, "sent")) == 3


def test_header_injection_is_impossible(world):
    root, _db, engine, made = world
    a = store.audits.c
    with store.transaction(engine) as conn:
        conn.execute(
            store.audits.update()
            .where(a.audit_id == made[0].case.audit_id)
            .values(auditor="Eve\r\nBcc: victim@example.invalid")
        )
    messages = build_messages(engine, "qa@example.invalid", root / "forms", None)
    raw = b"".join(m.message.as_bytes() for m in messages)
    assert b"\nBcc:" not in raw and b"\r\nBcc:" not in raw
    with store.transaction(engine) as conn:
        conn.execute(
            store.audits.update()
            .where(a.audit_id == made[2].case.audit_id)
            .values(auditor_email="x@example.invalid\r\nBcc: victim@example.invalid")
        )
    with pytest.raises(MailError, match="has no usable email address"):
        build_messages(engine, "qa@example.invalid", root / "forms", None)
    with pytest.raises(MailError, match=r"The sender address \(--from\)"):
        build_messages(engine, "qa@example.invalid\nBcc: v@x.invalid", root / "forms", None)


def test_every_address_problem_is_listed_before_anything_is_sent(world):
    root, db, engine, made = world
    a = store.audits.c
    with store.transaction(engine) as conn:
        for item, address in ((made[0], ""), (made[2], "not an address")):
            conn.execute(
                store.audits.update()
                .where(a.audit_id == item.case.audit_id)
                .values(auditor_email=address)
            )
    result = CliRunner().invoke(
        cli, ["send", "--db", db, "--forms", str(root / "forms"), "--out", str(root / "mail")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: Nothing was sent: 2 problem(s). ")
    assert result.output.count("has no usable email address") == 2
    assert result.output.count("\n") == 1
    assert not (root / "mail").exists()
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(a.state)).scalars()) == {"allocated"}


def test_chase_overdue_only_and_dry_run_changes_nothing(world):
    root, db, engine, _made = world
    late = CliRunner().invoke(
        cli, ["chase", "--db", db, "--out", str(root / "c"), "--dry-run", "--json"]
    )
    report = json.loads(late.output)
    assert report["dry_run"] and report["eml"] == []
    assert not (root / "c").exists() and events(engine, "chased") == []
    messages = build_messages(
        engine, "qa@example.invalid", root / "forms", None, chase=True, today=dt.date(2026, 12, 3)
    )
    assert len(messages) == 3
    assert all(
        m.message["Subject"].startswith("[OFFICIAL-SENSITIVE] OVERDUE: 1 case file audit(s)")
        for m in messages
    )
    assert "were due on 30/11/2026 and have not been returned" in plain_body(messages[0].message)
    assert (
        build_messages(
            engine,
            "qa@example.invalid",
            root / "forms",
            None,
            chase=True,
            today=dt.date(2026, 11, 30),
        )
        == []
    )


def test_missing_forms_are_a_clear_error(world, tmp_path):
    _root, db, _engine, _made = world
    result = CliRunner().invoke(cli, ["send", "--db", db, "--forms", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: Nothing was sent: 3 problem(s). ")
    assert "no generated form under" in result.output
