"""The steps an officer takes from one audit's page, without the CLI: each is offered only when
it can succeed; an action's sign-off is recorded row by row; the blank form can be downloaded
again; the audit can be reassigned. On both backends (the store parts), through the web app."""

from __future__ import annotations

import datetime as dt

import pytest
import test_web
from click.testing import CliRunner
from test_web import _audit_url, client_for, post, record, upload

from formtool import clock
from formtool.cli import cli
from formtool.generate import regenerate
from formtool.programme.audit_page import ActionRow, _steps, audit_detail
from formtool.programme.workflow import WorkflowError, sign_off_action

# test_web's fixtures, used here by name
app, db, kit, quick_hashes = test_web.app, test_web.db, test_web.kit, test_web.quick_hashes

MANAGER = "Manager M1 (synthetic)"
#: Pages and messages, not the store: one backend is enough (the store's part, recording a
#: sign-off, runs on both in the tests above them).
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _row(needs: bool, signed: bool) -> ActionRow:
    return ActionRow(
        "oversight.actions", "1", "Actions", needs, "", "act", "", "", "x" if signed else "", ""
    )


@pytest.mark.parametrize(
    ("actions", "wanted"),
    [
        ([], ["close"]),  # nothing to sign off: straight to close
        ([_row(True, False)], []),  # an action waits: neither step would succeed
        ([_row(False, True)], ["signoff", "close"]),
    ],
)
def test_a_step_is_offered_only_when_it_can_succeed(actions, wanted) -> None:
    steps = _steps("checked", False, actions)
    assert [s for s in steps if s in ("signoff", "close")] == wanted
    assert "reopen" in _steps("closed", True, [])
    assert "reassign" in _steps("sent", False, []) and "reassign" not in steps


def test_actions_signed_off_row_by_row_then_the_audit_closes(db, app, kit, db_url) -> None:
    record(db, kit)
    officer = client_for(app, "olive")
    upload(officer, kit.returns[:1])
    audit_id = kit.cases[0].audit_id
    url = _audit_url(audit_id)
    assert post(officer, f"{url}/check", {"decision": "accept"}, page=url).status_code == 303
    waiting = [a for a in audit_detail(db, audit_id).actions if a.needs_sign_off]
    assert waiting, "the synthetic return has actions for a manager to sign off"
    page = officer.get(url).text
    assert f"{len(waiting)} action(s) wait for a manager's sign-off" in page
    assert "Close the audit" not in page and "Actions signed off" not in page

    refused = post(officer, f"{url}/step/close", page=url)  # a stale page, or two officers
    assert refused.status_code == 400
    assert "action 1 of Management Oversight and Actions" in refused.text
    assert "oversight.actions" not in refused.text and "`formtool" not in refused.text
    by_cli = CliRunner().invoke(cli, ["close", audit_id, "--db", db_url])
    assert by_cli.exit_code == 2 and "KEY one of oversight.actions.1" in by_cli.output

    first = f"{waiting[0].table_key}.{waiting[0].row}"
    tomorrow = (clock.today() + dt.timedelta(days=1)).isoformat()
    for fields, said in (
        ({"signed_by": MANAGER, "signed_on": tomorrow}, "is after today"),
        ({"signed_by": " ", "signed_on": clock.today().isoformat()}, "Say who signed"),
        ({"signed_by": MANAGER, "signed_on": "31/02/2026"}, "is not a date"),
    ):
        bad = post(officer, f"{url}/sign-off", {"action": first, **fields}, page=url)
        assert bad.status_code == 400 and said in bad.text
    for row in waiting:
        done = post(
            officer,
            f"{url}/sign-off",
            {
                "action": f"{row.table_key}.{row.row}",
                "signed_by": MANAGER,
                "signed_on": clock.today().isoformat(),
            },
            page=url,
        )
        assert done.status_code == 303
    again = post(
        officer,
        f"{url}/sign-off",
        {"action": first, "signed_by": MANAGER, "signed_on": clock.today().isoformat()},
        page=url,
    )
    assert again.status_code == 400 and "(none is waiting)" in again.text

    detail = audit_detail(db, audit_id)
    assert {a.sign_off for a in detail.actions if a.table_key != "next_steps.actions"} == {MANAGER}
    signed = [e.detail for e in detail.events if e.event == "action signed off"]
    assert len(signed) == len(waiting) and "oversight.actions" not in " ".join(signed)
    assert f"action 1 of Management Oversight and Actions signed off by {MANAGER}" in signed[0]
    assert detail.next_steps[:2] == ["moderate", "signoff"] and "close" in detail.next_steps
    for step in ("signoff", "close"):
        assert post(officer, f"{url}/step/{step}", page=url).status_code == 303
    closed = audit_detail(db, audit_id)
    assert closed.audit.state == "closed" and "reopen" in closed.next_steps
    assert "Reopen the audit" in officer.get(url).text


@SQLITE_ONLY
def test_sign_off_in_the_cli(db, kit, db_url) -> None:
    record(db, kit)
    with pytest.raises(WorkflowError, match="none is waiting"):
        sign_off_action(db, kit.cases[1].audit_id, "oversight.actions.1", MANAGER, clock.today())
    result = CliRunner().invoke(
        cli, ["signoff", kit.cases[1].audit_id, "--by", MANAGER, "--db", db_url]
    )
    assert result.exit_code == 2 and "--by and --on go with --action KEY" in result.output


@SQLITE_ONLY
def test_the_blank_form_again_and_answers_as_the_auditor_wrote_them(db, app, kit, tmp_path):
    record(db, kit)
    audit_id = kit.cases[2].audit_id
    officer, viewer = client_for(app, "olive"), client_for(app, "vic")
    got = officer.get(f"{_audit_url(audit_id)}/form.docx")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    row = db.require_audit(audit_id)
    made = regenerate(db, row.month, tmp_path, ("docx",), app.state.ws.settings, [audit_id])
    assert got.content == made[0].path.read_bytes()  # the form as it was sent
    assert viewer.get(f"{_audit_url(audit_id)}/form.docx").status_code == 403
    assert officer.get(f"{_audit_url(audit_id)}/form.pdf").status_code == 404
    logged = db.access_entries(None, audit_id, None, None)
    assert [e.action for e in logged] == ["downloaded an audit's blank form"]

    upload(officer, kit.returns[2:3])
    detail = audit_detail(db, audit_id)
    rows = [r for s in detail.sections for r in s.rows]
    dates = [r.answer for r in rows if r.answer and r.answer[2:3] == "/"]
    assert dates and all(dt.datetime.strptime(d, "%d/%m/%Y") for d in dates)
    assert not [r for r in rows if r.answer[:4].isdigit() and r.answer[4:5] == "-"]
    assert any(r.wide for r in rows)  # free text spans the evidence column


def test_reassign_from_the_audit_page(db, app, kit) -> None:
    record(db, kit)
    audit_id = kit.cases[3].audit_id
    url = _audit_url(audit_id)
    officer = client_for(app, "olive")
    assert "Reassign to another auditor" in officer.get(url).text
    team = "Another Team (synthetic)"
    done = post(
        officer,
        f"{url}/reassign",
        {
            "auditor": "Auditor Z9 (synthetic)",
            "email": "z9@example.invalid",
            "team": team,
            "reason": "On leave all month",
            "format": "xlsx",
        },
        page=url,
    )
    assert done.status_code == 303, done.text
    page = officer.get(url).text
    assert "reassigned to Auditor Z9 (synthetic) (copy 2)" in page
    assert db.require_audit(audit_id).auditor == "Auditor Z9 (synthetic)"
    bad = post(officer, f"{url}/reassign", {"auditor": "A", "format": "pdf"}, page=url)
    assert bad.status_code == 400 and "format: Word (.docx) or Excel (.xlsx)" in bad.text


def test_signing_off_needs_an_accepted_audit(db, kit) -> None:
    record(db, kit)
    from formtool.store import StateError

    with pytest.raises(StateError, match="is allocated"):
        db.sign_off_action(
            kit.cases[4].audit_id, "oversight.actions", 1, MANAGER, clock.today(), "t"
        )


@SQLITE_ONLY
def test_an_upload_says_what_was_read_and_each_field_once(db, app, kit) -> None:
    from formtool.web.app import environment

    record(db, kit)
    officer = client_for(app, "olive")
    name, data = kit.returns[4]
    page = upload(officer, [(name, data), (f"cut-{name}", data[:3000])]).text
    assert "2 return(s) read" in page and "Imported 2" not in page
    assert '<span class="status status-rejected">1 rejected</span>' in page
    macro = environment().get_template("_macros.html").module.issue_list  # type: ignore[attr-defined]
    issue = {
        "severity": "error",
        "field": "kss1.seen_alone",
        "message": "[x.docx · kss1.seen_alone] bad",
    }
    assert str(macro([issue])).count("kss1.seen_alone") == 1
    assert str(macro([issue | {"message": "bad"}])).count("kss1.seen_alone") == 1


@SQLITE_ONLY
def test_the_dashboard_cards_add_up(db, app, kit) -> None:
    from test_web import MONTH

    record(db, kit)
    officer = client_for(app, "olive")
    url = _audit_url(kit.cases[0].audit_id)
    exempted = post(officer, f"{url}/exempt", {"reason": "Moved", "agreed_by": "HoS"}, page=url)
    assert exempted.status_code == 303
    page = officer.get(f"/?month={MONTH}").text
    assert "1 neither returned nor outstanding (exempted" in page
    assert 'id="total-outstanding"' in page and ">4</a>" in page  # 5 allocated, 1 exempted
