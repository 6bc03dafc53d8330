"""Email from the browser and `check --amend`: chasing one, selected or every overdue audit
(POST /chase) as `formtool chase` does, and the amendment request emailing whoever made the
return the reason, the date it is due back and their return, once per request; over a real
SMTP server on 127.0.0.1 (aiosmtpd) or as .eml drafts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import shutil
import socket
import zipfile
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_mail import Collect, smtp_server
from test_web import PASSWORD, client_for, token

from formtool import clock, store
from formtool.access.accounts import add_user
from formtool.access.log import access_entries
from formtool.cli import cli
from formtool.definitions import get_form
from formtool.generate import record_audits
from formtool.programme.amendment import amendment_email_state, email_amendment
from formtool.programme.rules import use_policy
from formtool.settings import Settings
from formtool.store import AuditState, MessageState
from formtool.web import create_app
from formtool.web.pages import MailConfig, audit_url

from conftest import drop_pg_database, fresh_pg_database, make_cases

TODAY = dt.date(2026, 12, 3)  # the audits were due on 30/11/2026: overdue
S = AuditState
#: What each of the six audits is at the start: two sent and overdue, one never sent, one
#: returned (not overdue) and two returned with a file to send back for amendment.
SENT, SENT2, NEVER, RETURNED, AMEND, PREPARED = range(6)


def quick_hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher(1, 8192, 1)  # cheap: these tests are about mail, not the hash


@pytest.fixture(autouse=True)
def today_and_quick_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from formtool.access import accounts as users

    monkeypatch.setattr(users, "_hasher", quick_hasher)
    with clock.frozen(TODAY):
        yield


@dataclasses.dataclass
class World:
    db: store.Store
    url: str
    ids: list[str]
    root: Path

    def client(self, smtp_port: int | None = None, name: str = "olive") -> Browser:
        server = f"127.0.0.1:{smtp_port}" if smtp_port else ""
        app = create_app(
            self.db,
            Settings(council="Example Council"),
            mail=MailConfig("qa@example.invalid", server),
            work_dir=self.root / "work",
        )
        client = client_for(app, name)
        return Browser(client, token(client.get("/account/password").text))


@dataclasses.dataclass
class Browser:
    """A signed-in browser and its forms' CSRF token."""

    client: Any
    csrf: str

    def get(self, url: str) -> Any:
        return self.client.get(url)

    def send(self, url: str, data: dict[str, Any] | None = None) -> Any:
        """A form post from one of the workspace's pages."""
        return self.client.post(url, data={"csrf": self.csrf, **(data or {})})


def returned_with(conn: sa.Connection, audit_id: str, name: str, data: bytes, stage: str) -> None:
    """A new current return (this file) for the audit, as an import would leave it."""
    r = store.returns.c
    conn.execute(store.returns.update().where(r.audit_id == audit_id).values(is_current=False))
    conn.execute(
        store.returns.insert().values(
            audit_id=audit_id,
            file_name=f"reply.eml › {name}",
            content_hash=hashlib.sha256(data).hexdigest(),
            content=data,
            imported_at=dt.datetime(2026, 12, 1, 9),
            is_current=True,
            method="bookmarks",
            final=True,
            stage=stage,
        )
    )


def build(url: str, folder: Path) -> list[str]:
    """Two users and the six audits (see SENT...) in a new database; their ids."""
    from formtool.access import accounts as users

    db = store.open_store(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", quick_hasher)
        add_user(db, "olive", "officer", PASSWORD)
        add_user(db, "vic", "viewer", PASSWORD)
    form = get_form("csc")
    cases = [
        dataclasses.replace(
            c, auditor_email=f"auditor{i}@example.invalid", preparer_email="prep@example.invalid"
        )
        for i, c in enumerate(make_cases(folder, form, 6))
    ]
    record_audits(db, form, cases)
    ids = [c.audit_id for c in cases]
    with store.transaction(db.engine) as conn:
        for i in (SENT, SENT2, RETURNED, AMEND, PREPARED):
            store.move_state(conn, ids[i], [S.allocated], S.sent, "sent", "to the auditor")
        for i in (RETURNED, AMEND, PREPARED):
            store.move_state(conn, ids[i], [S.sent], S.returned, "returned")
        returned_with(conn, ids[AMEND], f"{ids[AMEND]}.docx", b"first return", "audit")
        returned_with(conn, ids[PREPARED], f"{ids[PREPARED]}.xlsx", b"prepared", "prepared")
    return ids


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The SQLite world, built once; each test works on a copy."""
    folder = tmp_path_factory.mktemp("mail-world")
    url = f"sqlite:///{folder / 'world.db'}"
    ids = build(url, folder)
    store.engine_for(url).dispose()  # every connection closed: the file is whole
    return folder / "world.db", ids


@pytest.fixture
def world(template: tuple[Path, list[str]], tmp_path: Path) -> World:
    shutil.copy(template[0], tmp_path / "store.db")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return World(store.open_store(url), url, template[1], tmp_path)


@pytest.fixture
def pg_world(pg_server: str, tmp_path: Path) -> Iterator[World]:
    url = fresh_pg_database(pg_server)
    ids = build(url, tmp_path)
    yield World(store.open_store(url), url, ids, tmp_path)
    drop_pg_database(pg_server, url)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Collect, int]]:
    """One SMTP server for the module."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def mailbox(smtp: tuple[Collect, int]) -> tuple[Collect, int]:
    """The module's SMTP server, holding no message yet."""
    smtp[0].envelopes.clear()
    return smtp


def closed_port() -> int:
    """A loopback port nothing listens on: the mail server is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return " ".join(part.get_content().split())


def events(world: World, name: str) -> list[str]:
    with world.db.engine.connect() as conn:
        e = store.events.c
        return list(conn.execute(sa.select(e.audit_id).where(e.event == name)).scalars())


def flash_after(client: Browser, response: Any) -> str:
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


# --- the amendment request ---------------------------------------------------------------


def test_an_amendment_request_emails_the_auditor_once_per_request(world, mailbox):
    handler, port = mailbox
    audit_id = world.ids[AMEND]
    amend = {"decision": "amend", "reason": "Add the date of the plan."}
    client = world.client(port)
    url = f"{audit_url(audit_id)}/check"
    page = flash_after(client, client.send(url, amend))
    again = client.send(url, amend)  # the same POST: recorded once
    [envelope] = handler.envelopes
    message = parse(envelope.content)
    assert envelope.rcpt_tos == ["auditor4@example.invalid"]
    assert "auditor4@example.invalid" in message["To"]
    assert message["Subject"] == (
        f"[OFFICIAL-SENSITIVE] Amendment needed: case file audit {audit_id}, due back 08/12/2026"
    )
    text = body(message)
    assert "What needs amending: Add the date of the plan." in text
    assert "send it back by 08/12/2026" in text and f"audit {audit_id}" in text
    assert "How to return it: save it" in text and "open the attached Word file" in text
    [attached] = message.iter_attachments()
    assert attached.get_filename() == f"{audit_id}.docx"
    assert attached.get_content() == b"first return"
    assert "returned for amendment, due back by Tue 08/12/2026." in page
    assert "was emailed the reason, the date and their return to amend" in page
    assert again.status_code == 400  # it is no longer a return to check
    assert amendment_email_state(world.db, audit_id) is MessageState.sent
    second_request(world, client, audit_id)
    assert len(handler.envelopes) == 2
    second = parse(handler.envelopes[1].content)  # the second request's own email
    assert "What needs amending: Sign it." in body(second)
    assert [a.get_content() for a in second.iter_attachments()] == [b"second return"]
    assert events(world, "amendment emailed") == [audit_id, audit_id]


def second_request(world: World, client: Browser, audit_id: str) -> None:
    """The auditor sends a new return, and the officer asks for another amendment."""
    with store.transaction(world.db.engine) as conn:
        store.move_state(conn, audit_id, [S.amendment_requested], S.returned, "returned")
        returned_with(conn, audit_id, f"{audit_id}.docx", b"second return", "audit")
    amend = {"decision": "amend", "reason": "Sign it."}
    flash_after(client, client.send(f"{audit_url(audit_id)}/check", amend))


def test_an_amendment_email_that_fails_leaves_the_request_and_goes_when_sent_again(world, mailbox):
    handler, port = mailbox
    audit_id = world.ids[AMEND]
    client = world.client(closed_port())
    failed = client.send(f"{audit_url(audit_id)}/check", {"decision": "amend", "reason": "X"})
    page = flash_after(client, failed)
    assert "returned for amendment" in page
    assert "The request is recorded, but no email went: Sending through 127.0.0.1" in page
    assert "Press “Email the auditor” on the audit&#39;s page to try again." in page
    assert world.db.audit_state(audit_id) is S.amendment_requested
    client = world.client(port)
    sent = client.send(f"{audit_url(audit_id)}/amendment/send")
    assert "was emailed the reason" in flash_after(client, sent)
    twice = client.send(f"{audit_url(audit_id)}/amendment/send")
    assert "for this request has already gone" in flash_after(client, twice)
    assert len(handler.envelopes) == 1


def test_without_smtp_the_amendment_is_a_draft_to_download_and_mark_sent(world):
    audit_id = world.ids[PREPARED]  # a prepared file: its preparer is emailed
    use_policy(world.db, "rochdale", None, "test")  # no deadline for amendments
    client = world.client()
    done = client.send(f"{audit_url(audit_id)}/check", {"decision": "amend", "reason": "Y"})
    assert "is ready as an .eml draft" in flash_after(client, done)
    assert amendment_email_state(world.db, audit_id) is MessageState.drafted
    draft = client.get(f"{audit_url(audit_id)}/amendment.eml")
    assert draft.status_code == 200
    message = parse(draft.content)
    assert "prep@example.invalid" in message["To"] and message["X-Unsent"] == "1"
    assert message["Subject"] == f"[OFFICIAL-SENSITIVE] Amendment needed: prepared file {audit_id}"
    text = body(message)
    assert "send it back as soon as you can: the programme sets no date for amendments" in text
    assert "open the attached Excel file" in text and "What needs amending: Y" in text
    assert [a.get_content() for a in message.iter_attachments()] == [b"prepared"]
    [logged] = [e for e in access_entries(world.db) if "amendment" in e.action]
    assert (logged.action, logged.audit_id) == ("downloaded an amendment email draft", audit_id)
    marked = client.send(f"{audit_url(audit_id)}/amendment/sent")
    assert "the amendment email is recorded as sent" in flash_after(client, marked)
    assert events(world, "amendment emailed") == [audit_id]
    assert client.get(f"{audit_url(audit_id)}/amendment.eml").status_code == 400


def test_check_amend_on_the_command_line_writes_a_draft_or_sends(world, mailbox):
    handler, port = mailbox
    first, second = world.ids[AMEND], world.ids[PREPARED]
    out = world.root / "mail"
    base = ["--today", TODAY.isoformat(), "check"]
    drafted = CliRunner().invoke(
        cli, [*base, first, "--amend", "Add the plan.", "--out", str(out), "--db", world.url]
    )
    assert drafted.exit_code == 0, drafted.output
    path = out / f"amendment-{first}-1.eml"
    assert drafted.output == (
        f"{first}: returned for amendment, due back by 08/12/2026.\n"
        f"Amendment email to auditor4@example.invalid written: {path}. Send it from Outlook; "
        f"once it has gone, `formtool send --mark-sent 2026-11 --audit {first}`.\n"
    )
    assert "What needs amending: Add the plan." in body(parse(path.read_bytes()))
    smtp = ["--smtp", f"127.0.0.1:{port}", "--from", "qa@example.invalid"]
    sent = CliRunner().invoke(cli, [*base, second, "--amend", "Z", *smtp, "--db", world.url])
    again = CliRunner().invoke(cli, [*base, second, "--email-again", *smtp, "--db", world.url])
    assert sent.exit_code == 0, sent.output
    assert f"Amendment email sent to prep@example.invalid via 127.0.0.1:{port}." in sent.output
    assert "for this request has already gone" in again.output
    assert [e.rcpt_tos for e in handler.envelopes] == [["prep@example.invalid"]]


def test_check_amend_no_email_only_records_and_a_failure_says_how_to_send_it(world):
    first, second = world.ids[AMEND], world.ids[PREPARED]
    base = ["--today", TODAY.isoformat(), "check"]
    quiet = CliRunner().invoke(cli, [*base, first, "--amend", "A", "--no-email", "--db", world.url])
    assert quiet.exit_code == 0 and quiet.output.endswith("due back by 08/12/2026.\n")
    assert amendment_email_state(world.db, first) is None
    down = f"127.0.0.1:{closed_port()}"
    refused = CliRunner().invoke(
        cli, [*base, second, "--amend", "B", "--smtp", down, "--db", world.url]
    )
    assert refused.exit_code == 0  # the request is recorded
    assert "The request is recorded, but no email went: Sending through" in refused.stderr
    assert f"Send it with `formtool check {second} --email-again`" in refused.stderr


# --- chasing -------------------------------------------------------------------------------


def test_chase_one_selected_and_every_overdue_audit_from_the_browser(world, mailbox):
    handler, port = mailbox
    sent, sent2, never, returned = (world.ids[i] for i in (SENT, SENT2, NEVER, RETURNED))
    client = world.client(port)
    one = client.send("/chase", {"audit": sent, "back": "/held"})
    assert one.headers["location"] == "/held"
    page = flash_after(client, one)
    assert f"Chased Auditor D1 (synthetic) for 1 audit by email via 127.0.0.1:{port}." in page
    assert [e.rcpt_tos for e in handler.envelopes] == [["auditor0@example.invalid"]]
    assert "OVERDUE" in parse(handler.envelopes[0].content)["Subject"]
    chosen = {"audit": [sent, sent2, never, returned], "back": "/held"}
    page = flash_after(client, client.send("/chase", chosen))
    assert [e.rcpt_tos for e in handler.envelopes][1:] == [["auditor1@example.invalid"]]
    assert f"Already chased today, so not chased again: {sent}." in page
    assert f"Never sent to the auditor, so not chased (send them first): {never}." in page
    assert f"Not overdue, so not chased: {returned}." in page
    everything = client.send("/chase", {"all": "overdue", "back": "/held"})
    page = flash_after(client, everything)
    assert len(handler.envelopes) == 2  # the same day: nobody is chased twice
    assert "Nobody was chased." in page
    assert f"Already chased today, so not chased again: {sent}, {sent2}." in page
    assert f"(send them first): {never}." in page
    assert sorted(events(world, "chased")) == sorted([sent, sent2])
    default = client.send("/chase", {"audit": sent})
    assert default.headers["location"] == "/to-chase"


def test_chase_every_overdue_audit_and_the_drafts_without_smtp(world):
    sent, sent2 = world.ids[SENT], world.ids[SENT2]
    client = world.client()
    chased = client.send("/chase", {"all": "overdue"})
    assert chased.headers["location"] == "/chase/2026-12-03?back=/to-chase"
    page = flash_after(client, chased)
    assert "are ready as .eml drafts" in page and "I have sent these drafts" in page
    archive = client.get("/chase/2026-12-03/emails.zip")
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert len(names) == 2 and all(n.startswith("chase-audit-") for n in names)
    actions = [e.action for e in access_entries(world.db)]
    assert "downloaded the day's chase email drafts" in actions
    again = flash_after(client, client.send("/chase", {"audit": sent, "back": "/held"}))
    assert f"Already chased today, so not chased again: {sent}." in again
    assert events(world, "chased") == []
    marked = client.send("/chase/2026-12-03/mark-sent", {"back": "/held"})
    assert "2 chase email(s) of Thu 03/12/2026 marked sent" in flash_after(client, marked)
    assert sorted(events(world, "chased")) == sorted([sent, sent2])
    gone = client.get("/chase/2026-12-03/emails.zip")  # sent: never offered to send again
    assert gone.status_code == 400 and "No chase email drafts" in gone.text
    with clock.frozen(dt.date(2026, 11, 20)):  # before the due date
        early = client.send("/chase", {"all": "overdue", "back": "/held"})
        assert "Nobody was chased: no audit is overdue." in flash_after(client, early)


def test_chase_refuses_another_site_a_viewer_and_an_audit_the_role_may_not_see(world, monkeypatch):
    sent = world.ids[SENT]
    client = world.client()
    for back in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        refused = client.send("/chase", {"audit": sent, "back": back})
        assert refused.status_code == 400 and "is not a page of this site" in refused.text
    viewer = world.client(name="vic").send("/chase", {"audit": sent})
    assert viewer.status_code == 403
    staff = world.ids[SENT2]
    with world.db.engine.begin() as conn:  # a member of staff's audit, hidden from officers
        a = store.audits.c
        conn.execute(store.audits.update().where(a.audit_id == staff).values(subject_kind="staff"))
    monkeypatch.setattr(
        "formtool.programme.activities.results_refusal",
        lambda _policy, audit, _roles: "Staff data." if audit.audit_id == staff else "",
    )
    hidden = client.send("/chase", {"audit": [sent, staff]})
    assert hidden.status_code == 403 and "Staff data." in hidden.text
    assert list((world.root / "work").rglob("*.eml")) == []  # nothing was chased
    flash_after(client, client.send("/chase", {"all": "overdue", "back": "/held"}))
    [draft] = (world.root / "work").rglob("*.eml")  # the hidden audit is left alone
    assert "auditor0@example.invalid" in parse(draft.read_bytes())["To"]


def test_email_amendment_refuses_an_audit_not_waiting_for_one(world):
    from formtool.programme.mail import MailError

    with pytest.raises(MailError, match="is sent, not waiting for an amendment"):
        email_amendment(world.db, world.ids[SENT], "qa@example.invalid")


def test_amendment_and_chase_rounds_hold_on_postgresql(pg_world, mailbox):
    """The outbox's rounds on the other backend: an amendment email per request, one chase
    a day, and a day's chase drafts marked sent (and nothing else)."""
    world, (handler, port) = pg_world, mailbox
    audit_id, sent = world.ids[AMEND], world.ids[SENT]
    client = world.client(port)
    amend = {"decision": "amend", "reason": "Add the date of the plan."}
    flash_after(client, client.send(f"{audit_url(audit_id)}/check", amend))
    assert client.send(f"{audit_url(audit_id)}/check", amend).status_code == 400
    second_request(world, client, audit_id)
    flash_after(client, client.send("/chase", {"audit": sent, "back": "/held"}))
    again = flash_after(client, client.send("/chase", {"audit": sent, "back": "/held"}))
    assert f"Already chased today, so not chased again: {sent}." in again
    assert [e.rcpt_tos for e in handler.envelopes] == [
        ["auditor4@example.invalid"],
        ["auditor4@example.invalid"],
        ["auditor0@example.invalid"],
    ]
    drafts = world.client()  # no SMTP: the other overdue audit's chase is a draft
    flash_after(drafts, drafts.send("/chase", {"all": "overdue", "back": "/held"}))
    marked = drafts.send("/chase/2026-12-03/mark-sent", {"back": "/held"})
    assert "1 chase email(s) of Thu 03/12/2026 marked sent" in flash_after(drafts, marked)
    assert sorted(events(world, "chased")) == sorted([sent, world.ids[SENT2]])
    assert events(world, "amendment emailed") == [audit_id, audit_id]
