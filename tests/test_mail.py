"""send and chase: .eml drafts parsed back, a real SMTP server on 127.0.0.1, no header
injection, and the audits' state and history updated."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from formtool import store
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.generate import write_forms
from formtool.programme.mail import MailError, build_messages, deliver
from formtool.programme.rules import use_policy

from conftest import make_cases


@pytest.fixture
def world(tmp_path):
    db_file = f"sqlite:///{tmp_path / 'm.db'}"
    db = store.open_store(db_file)
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
    made = write_forms(form, cases, tmp_path / "forms", ("docx", "xlsx"), db=db)
    return tmp_path, db_file, db, made


def parse(path):
    return BytesParser(policy=policy.default).parse(path.open("rb"))


def plain_body(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None, "no plain-text body"
    return body.get_content()


def events(db, name):
    with db.engine.connect() as conn:
        return (
            conn.execute(sa.select(store.events.c.audit_id).where(store.events.c.event == name))
            .scalars()
            .all()
        )


def test_send_writes_eml_drafts_with_the_forms_attached(world):
    root, db_file, db, made = world
    result = CliRunner().invoke(
        cli,
        [
            "send",
            "--db",
            db_file,
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
    # drafts are not sent: the audits stay allocated until the officer marks them sent
    ids = sorted(m.case.audit_id for m in made[::2])
    with db.engine.connect() as conn:
        states = conn.execute(sa.select(store.audits.c.state)).scalars().all()
    assert states == ["allocated"] * 3
    assert events(db, "sent") == [] and sorted(events(db, "drafts written")) == ids
    again = CliRunner().invoke(
        cli, ["send", "--db", db_file, "--forms", str(root / "forms"), "--out", str(root / "mail2")]
    )
    assert again.exit_code == 0, again.output
    assert again.output == (
        "0 message(s) written.\n3 written as .eml drafts before, not yet marked sent (skipped): "
        "once they have gone, run `formtool send --mark-sent 2026-11`.\n"
    )
    marked = CliRunner().invoke(cli, ["send", "--db", db_file, "--mark-sent", "2026-11"])
    assert marked.exit_code == 0, marked.output
    assert marked.output.endswith("3 message(s) for 2026-11 marked sent (3 audit(s)).\n")
    assert states_of(db) == {"sent"} and sorted(events(db, "sent")) == ids
    last = CliRunner().invoke(
        cli, ["send", "--db", db_file, "--forms", str(root / "forms"), "--out", str(root / "mail3")]
    )
    assert last.output == "0 message(s) written.\n3 already sent (skipped).\n"
    assert not (root / "mail2").exists() and not (root / "mail3").exists()


# --- SMTP: a real server on 127.0.0.1, in clear, with STARTTLS or with implicit TLS ----------


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts the test server's certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


class Collect:
    """Keeps every message delivered, and whether its connection was encrypted."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.encrypted: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=auth_data.login == b"qa" and auth_data.password == b"s3cret")


@contextlib.contextmanager
def smtp_server(
    tls: str = "none",
    certificate: tuple[Path, Path] | None = None,
    handler: Collect | None = None,
) -> Iterator[tuple[Collect, int]]:
    """An SMTP server on a free loopback port that accepts the login qa/s3cret: `tls` is
    "none" (no STARTTLS offered), "starttls" (offered) or "implicit" (TLS from the start);
    `handler` keeps what is delivered (a Collect, or one that refuses some recipients)."""
    from aiosmtpd.controller import Controller

    context = None
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, certificate))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = handler or Collect()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=check_login,
        auth_require_tls=False,
        tls_context=context if tls == "starttls" else None,
        ssl_context=context if tls == "implicit" else None,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def deliver_to(world, port: int, **options: Any) -> Any:
    """`deliver` of the world's forms, from qa@example.invalid, through the server on `port`."""
    root, _db, db, _made = world
    return deliver(
        db,
        "qa@example.invalid",
        root / "forms",
        None,
        root / "mail",
        smtp=f"127.0.0.1:{port}",
        **options,
    )


def send_args(root: Path, db_file: str, port: int, *extra: str) -> list[str]:
    return [
        "send",
        "--db",
        db_file,
        "--forms",
        str(root / "forms"),
        "--smtp",
        f"127.0.0.1:{port}",
        "--from",
        "qa@example.invalid",
        *extra,
    ]


def states(db: sa.Engine) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(sa.select(store.audits.c.state)).scalars())


states_of = states


def test_send_over_smtp_with_starttls_and_a_login(world, monkeypatch, certificate):
    root, db_file, db, made = world
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # what production trusts, here
    with smtp_server("starttls", certificate) as (handler, port):
        args = send_args(root, db_file, port, "--user", "qa")
        monkeypatch.delenv("FORMTOOL_SMTP_PASSWORD", raising=False)
        refused = CliRunner().invoke(cli, args)
        assert refused.exit_code == 2 and "FORMTOOL_SMTP_PASSWORD is not set" in refused.output
        monkeypatch.setenv("FORMTOOL_SMTP_PASSWORD", "s3cret")
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert "unencrypted" not in result.output
    assert handler.encrypted == [True, True, True]
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == [
        f"auditor{i}@example.invalid" for i in range(3)
    ]
    files = {m.path.name: m.path.read_bytes() for m in made}
    for envelope in handler.envelopes:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert all(files[a.get_filename()] == a.get_content() for a in message.iter_attachments())
    assert len(events(db, "sent")) == 3


@pytest.mark.parametrize("flag", ["--user", "--starttls"])
def test_a_login_or_starttls_is_never_sent_in_clear(world, monkeypatch, flag):
    root, db_file, db, _made = world
    monkeypatch.setenv("FORMTOOL_SMTP_PASSWORD", "s3cret")
    with smtp_server("none") as (handler, port):
        extra = ("--user", "qa") if flag == "--user" else ("--starttls",)
        result = CliRunner().invoke(cli, send_args(root, db_file, port, *extra))
    why = {
        "--user": "a user name and password are never sent unencrypted",
        "--starttls": "STARTTLS was asked for",
    }[flag]
    assert result.exit_code == 2
    assert result.output == (
        f"Error: Mail to 127.0.0.1:{port} was not sent: the server does not offer STARTTLS "
        f"and {why}. Use the server's implicit TLS port (465) or one that offers STARTTLS.\n"
    )
    assert handler.envelopes == [] and states(db) == {"allocated"}


def test_starttls_is_used_whenever_the_server_offers_it(world, certificate):
    _root, _db, db, _made = world
    with smtp_server("starttls", certificate) as (handler, port):
        result = deliver_to(world, port, ssl_context=trusting(certificate))
    assert handler.encrypted == [True, True, True]
    assert result.notice == "" and result.as_dict()["notice"] == ""
    assert states(db) == {"sent"}


def test_unencrypted_mail_is_said_on_every_send(world):
    root, db_file, db, _made = world
    with smtp_server("none") as (handler, port):
        sent = CliRunner().invoke(cli, send_args(root, db_file, port))
        chased = CliRunner().invoke(
            cli,
            [
                "--today",
                "2026-12-03",
                "chase",
                "--db",
                db_file,
                "--smtp",
                f"127.0.0.1:{port}",
                "--from",
                "qa@example.invalid",
                "--json",
            ],
        )
    notice = f"Mail to 127.0.0.1:{port} went out unencrypted: the server does not offer STARTTLS."
    assert sent.exit_code == 0, sent.output
    assert sent.stderr == notice + "\n"
    assert sent.stdout.endswith(f"3 message(s) sent via 127.0.0.1:{port}.\n")
    assert chased.exit_code == 0, chased.output
    assert chased.stderr == notice + "\n" and json.loads(chased.stdout)["notice"] == notice
    assert handler.encrypted == [False] * 6
    assert states(db) == {"sent"} and len(events(db, "chased")) == 3


def test_port_465_is_implicit_tls(world, monkeypatch, certificate):
    from formtool.programme import smtp

    _root, _db, db, _made = world
    monkeypatch.setenv("FORMTOOL_SMTP_PASSWORD", "s3cret")
    with smtp_server("implicit", certificate) as (handler, port):
        monkeypatch.setattr(smtp, "IMPLICIT_TLS_PORTS", frozenset({port}))  # 465 needs root
        result = deliver_to(world, port, smtp_user="qa", ssl_context=trusting(certificate))
    assert handler.encrypted == [True, True, True] and result.notice == ""
    assert states(db) == {"sent"}


def test_a_certificate_that_is_not_trusted_stops_the_send(world, certificate):
    _root, _db, db, _made = world
    with (
        smtp_server("starttls", certificate) as (handler, port),
        pytest.raises(MailError) as raised,
    ):
        # not told to trust the test server
        deliver_to(world, port, ssl_context=ssl.create_default_context())
    message = str(raised.value)
    assert message.startswith(f"Sending through 127.0.0.1:{port} failed: [SSL: CERTIFICATE_")
    assert "\n" not in message
    assert handler.envelopes == [] and states(db) == {"allocated"}


def test_header_injection_is_impossible(world):
    root, _db, db, made = world
    a = store.audits.c
    with store.transaction(db.engine) as conn:
        conn.execute(
            store.audits.update()
            .where(a.audit_id == made[0].case.audit_id)
            .values(auditor="Eve\r\nBcc: victim@example.invalid")
        )
    messages = build_messages(db, "qa@example.invalid", root / "forms", None)
    raw = b"".join(m.message.as_bytes() for m in messages)
    assert b"\nBcc:" not in raw and b"\r\nBcc:" not in raw
    with store.transaction(db.engine) as conn:
        conn.execute(
            store.audits.update()
            .where(a.audit_id == made[2].case.audit_id)
            .values(auditor_email="x@example.invalid\r\nBcc: victim@example.invalid")
        )
    with pytest.raises(MailError, match="has no usable email address"):
        build_messages(db, "qa@example.invalid", root / "forms", None)
    with pytest.raises(MailError, match=r"The sender address \(--from\)"):
        build_messages(db, "qa@example.invalid\nBcc: v@x.invalid", root / "forms", None)


def test_every_address_problem_is_listed_before_anything_is_sent(world):
    root, db_file, db, made = world
    a = store.audits.c
    with store.transaction(db.engine) as conn:
        for item, address in ((made[0], ""), (made[2], "not an address")):
            conn.execute(
                store.audits.update()
                .where(a.audit_id == item.case.audit_id)
                .values(auditor_email=address)
            )
    result = CliRunner().invoke(
        cli, ["send", "--db", db_file, "--forms", str(root / "forms"), "--out", str(root / "mail")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: Nothing was sent: 2 problem(s). ")
    assert result.output.count("has no usable email address") == 2
    assert result.output.count("\n") == 1
    assert not (root / "mail").exists()
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(a.state)).scalars()) == {"allocated"}


def test_chase_overdue_only_and_dry_run_changes_nothing(world):
    root, db_file, db, _made = world
    late = CliRunner().invoke(
        cli, ["chase", "--db", db_file, "--out", str(root / "c"), "--dry-run", "--json"]
    )
    report = json.loads(late.output)
    assert report["dry_run"] and report["eml"] == []
    assert not (root / "c").exists() and events(db, "chased") == []
    # never sent, so not chased yet
    assert late.exit_code == 0 and len(report["not_sent"]) == 3 and report["messages"] == []
    deliver(db, "qa@example.invalid", root / "forms", None, root / "mail")  # drafts written
    messages = build_messages(
        db, "qa@example.invalid", root / "forms", None, chase=True, today=dt.date(2026, 12, 3)
    )
    assert len(messages) == 3
    assert all(
        m.message["Subject"].startswith("[OFFICIAL-SENSITIVE] OVERDUE: 1 case file audit(s)")
        for m in messages
    )
    assert "were due on 30/11/2026 and have not been returned" in plain_body(messages[0].message)
    said = "need an exemption (only the Assistant Director can agree one)."  # hull's words
    assert said in " ".join(plain_body(messages[0].message).split())
    use_policy(db, "rochdale", None, "test")  # no words for it: the sentence ends there
    again = build_messages(
        db, "qa@example.invalid", root / "forms", None, chase=True, today=dt.date(2026, 12, 3)
    )
    body = " ".join(plain_body(again[0].message).split())
    assert "need an exemption." in body and "Assistant Director" not in body
    assert (
        build_messages(
            db,
            "qa@example.invalid",
            root / "forms",
            None,
            chase=True,
            today=dt.date(2026, 11, 30),
        )
        == []
    )


def test_missing_forms_are_a_clear_error(world, tmp_path):
    _root, db_file, _engine, _made = world
    result = CliRunner().invoke(cli, ["send", "--db", db_file, "--forms", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: Nothing was sent: 3 problem(s). ")
    assert "no generated form under" in result.output
