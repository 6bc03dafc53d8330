"""The web workspace's Allocate page over HTTP: a re-audit of a case the new population no
longer lists, audit ids from an upload or the database never becoming paths, and the Send
button following the same SMTP rules as `formtool send`."""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_mail import smtp_server
from test_web import PASSWORD, Tables, client_for, hidden_value, post, token

from formtool import store
from formtool.access.accounts import add_user
from formtool.definitions import get_form
from formtool.demo.synthetic import synthetic_auditors, synthetic_population
from formtool.generate import generate, record_audits
from formtool.programme.allocation import REAUDIT, run_allocation
from formtool.read.cases import Case, write_case_list
from formtool.settings import Settings
from formtool.web import create_app
from formtool.web.pages import MailConfig

from conftest import make_cases, record_grade

MONTH = "2026-11"
PLAN = "samples:\n  - {name: Control sample, form: csc, categories: [cin, cp], size: 3}\n"


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: these tests are about allocation, not the hash's cost."""
    from argon2 import PasswordHasher

    from formtool.access import accounts as users

    monkeypatch.setattr(users, "_hasher", lambda: PasswordHasher(1, 8192, 1))


@pytest.fixture
def db(db_url: str) -> store.Store:
    db = store.open_store(db_url)
    add_user(db, "olive", "officer", PASSWORD)
    return db


def app_for(db: store.Store, work: Path, mail: MailConfig | None = None):
    return create_app(db, Settings(council="Example Council"), mail=mail, work_dir=work)


def files_under(folder: Path) -> set[Path]:
    return {Path(root, name) for root, _, names in os.walk(folder) for name in names}


def inputs(tmp_path: Path, prefix: str, seed: int) -> tuple[Path, Path, Path]:
    """A population whose case numbers start with `prefix`, the auditors and a plan."""
    population, auditors, plan = (
        tmp_path / f"{prefix}-{n}" for n in ("population.csv", "auditors.csv", "plan.yaml")
    )
    rows = synthetic_population(dt.date(2026, 10, 31), random.Random(seed), {"cin": 6, "cp": 4})
    write_case_list(population, [r | {"case_number": prefix + r["case_number"]} for r in rows])
    write_case_list(auditors, synthetic_auditors(MONTH))
    plan.write_text(PLAN, encoding="utf-8")
    return population, auditors, plan


def preview(client, files: tuple[Path, Path, Path]):
    upload = [
        (k, (p.name, p.read_bytes()))
        for k, p in zip(("population", "auditors", "plan"), files, strict=True)
    ]
    return post(client, "/allocate", {"month": MONTH, "seed": "7"}, upload, page="/allocate")


def test_a_reaudit_of_a_case_the_new_population_lacks_previews_and_confirms(db, tmp_path):
    population, auditors, plan = inputs(tmp_path, "OLD", 3)
    october = run_allocation(db, population, auditors, "2026-10", plan, 1, tmp_path / "october.csv")
    target = october.rows[0]["case_number"]
    record_grade(db, target, "Inadequate")
    client = client_for(app_for(db, tmp_path / "work"), "olive")
    page = preview(client, inputs(tmp_path, "NEW", 9))
    assert page.status_code == 200, page.text
    [reaudit] = [r for r in Tables(page.text).tables["preview"] if r[0] == target]
    assert reaudit[1:4] == ["", "CSC", REAUDIT]  # no category: the population has no row
    confirm = client.post(
        "/allocate/confirm",
        data={"csrf": token(page.text), "mode": "first", "token": hidden_value(page.text, "token")},
    )
    assert confirm.status_code == 303, confirm.text
    with db.engine.connect() as conn:
        rows = store.queries.audit_rows(conn, [MONTH])
    assert target in {r.case_number for r in rows}
    forms = client.get(f"/allocate/{MONTH}/forms.zip")
    assert forms.status_code == 200


def test_a_population_naming_audit_ids_gives_a_reaudit_it_lacks_an_id_of_its_own(db, tmp_path):
    population, auditors, plan = inputs(tmp_path, "OLD", 3)
    october = run_allocation(db, population, auditors, "2026-10", plan, 1, tmp_path / "o.csv")
    target = october.rows[0]["case_number"]
    record_grade(db, target, "Inadequate")
    named, _, _ = inputs(tmp_path, "NEW", 9)
    with named.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    write_case_list(named, [r | {"audit_id": f"X-{r['case_number']}"} for r in rows])
    out = tmp_path / "november.csv"
    run_allocation(db, named, auditors, MONTH, plan, 1, out)
    made = generate(None, out, tmp_path / "forms", "docx", db=db)
    ids = {m.case.case_number: m.case.audit_id for m in made if m.case.form_id == "csc"}
    assert ids[target] == f"CSC-{target}-202611"  # not the October audit's id
    assert all(i == f"X-{c}" for c, i in ids.items() if c != target)


def test_an_uploaded_audit_id_is_checked_before_anything_is_written(db, tmp_path):
    population, auditors, plan = inputs(tmp_path, "P", 3)
    rows = synthetic_population(dt.date(2026, 10, 31), random.Random(3), {"cin": 6, "cp": 4})
    ids = [f"CSC-{r['case_number']}-202611" for r in rows]
    ids[3] = "../../../../escaped"
    write_case_list(population, [r | {"audit_id": i} for r, i in zip(rows, ids, strict=True)])
    client = client_for(app_for(db, tmp_path / "work"), "olive")
    before = files_under(tmp_path)
    page = preview(client, (population, auditors, plan))
    assert page.status_code == 400
    assert (
        "[P-population.csv · row 5 · audit_id] &#39;../../../../escaped&#39; is not an audit id: "
        "use letters, digits and hyphens only (e.g. CSC-SYN0001-202611)."
    ) in page.text
    assert {p for p in files_under(tmp_path) - before if "work" not in p.parts} == set()
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.audits)).scalar() == 0


def test_forms_zip_refuses_an_id_recorded_before_ids_were_checked(db, tmp_path):
    form = get_form("csc")
    good, other = make_cases(tmp_path / "cases", form, 2)
    record_audits(db, form, [good, replace(other, audit_id="../../../../../escaped")])
    client = client_for(app_for(db, tmp_path / "work"), "olive")
    response = client.get(f"/allocate/{MONTH}/forms.zip")
    assert response.status_code == 400
    assert "&#39;../../../../../escaped&#39; is not an audit id" in response.text
    assert not list(tmp_path.rglob("escaped*"))  # no file is named from it, anywhere
    assert not list((tmp_path / "work").rglob("*.docx"))  # nor from the good audit


def allocated_with_emails(db: store.Store, tmp_path: Path) -> None:
    form = get_form("csc")
    cases = [
        Case(c.audit_id, c.form_id, c.form_version, c.facts, c.row, f"a{i}@example.invalid")
        for i, c in enumerate(make_cases(tmp_path, form, 2))
    ]
    record_audits(db, form, cases)


def test_send_button_never_logs_in_over_an_unencrypted_connection(db, tmp_path, monkeypatch):
    allocated_with_emails(db, tmp_path)
    monkeypatch.setenv("FORMTOOL_SMTP_PASSWORD", "s3cret")
    with smtp_server("none") as (handler, port):
        mail = MailConfig("qa@example.invalid", f"127.0.0.1:{port}", user="qa")
        client = client_for(app_for(db, tmp_path / "work", mail), "olive")
        sent = post(client, f"/allocate/{MONTH}/send", {"how": "smtp"}, page="/allocate")
    assert sent.status_code == 400
    assert (
        f"Mail to 127.0.0.1:{port} was not sent: the server does not offer STARTTLS and a user "
        "name and password are never sent unencrypted."
    ) in sent.text
    assert handler.envelopes == []
    with db.engine.connect() as conn:
        assert set(conn.execute(sa.select(store.audits.c.state)).scalars()) == {"allocated"}


def test_send_button_says_when_mail_went_out_unencrypted(db, tmp_path):
    allocated_with_emails(db, tmp_path)
    with smtp_server("none") as (handler, port):
        mail = MailConfig("qa@example.invalid", f"127.0.0.1:{port}")
        client = client_for(app_for(db, tmp_path / "work", mail), "olive")
        sent = post(client, f"/allocate/{MONTH}/send", {"how": "smtp"}, page="/allocate")
    assert sent.status_code == 303
    page = client.get(sent.headers["location"]).text
    assert (
        f"2 message(s) sent via 127.0.0.1:{port}; their audits are marked sent. Mail to "
        f"127.0.0.1:{port} went out unencrypted: the server does not offer STARTTLS."
    ) in page
    assert len(handler.envelopes) == 2


def test_the_send_button_can_send_the_forms_as_web_form_links(db, tmp_path):
    allocated_with_emails(db, tmp_path)
    settings = Settings(council="Example Council", web_address="https://formtool.example.invalid")
    with smtp_server("none") as (handler, port):
        mail = MailConfig("qa@example.invalid", f"127.0.0.1:{port}")
        client = client_for(create_app(db, settings, mail=mail, work_dir=tmp_path / "w"), "olive")
        data = {"how": "smtp", "format": "web"}
        sent = post(client, f"/allocate/{MONTH}/send", data, page="/allocate")
    assert sent.status_code == 303
    assert len(handler.envelopes) == 2
    for envelope in handler.envelopes:
        text = envelope.content.decode()
        assert (
            "https://formtool.example.invalid/form/" in text and "Content-Disposition" not in text
        )
