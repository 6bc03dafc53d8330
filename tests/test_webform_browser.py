"""The web form in a real browser (issue 25): each of the six shipped tools is filled through
its private link in Debian's Chromium against the real server (`formtool serve`), with a
one-time code from a real SMTP server; submitted once with a deliberate mistake, put right
through the error summary, and submitted as final. What is stored equals what the same answers
give when the same audit is filled in Word through the existing filler (field by field), and
the file pack is the same but for the lines saying where the return came from. The
two-stage Quality Practice tool goes preparer -> auditor through two links.

The answers are typed into the page in one step (a script sets the controls' values, as a
person typing would leave them) and a few controls of each kind are worked by hand: a radio
button, a date, a new action row, the concern button and the link in the error summary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from test_browser import ARGS, SHOTS, _chromium, serving, shot
from test_mail import smtp_server
from test_pages_fit import overflow, serious

from formtool import clock
from formtool.definitions import FormDefinition, get_form
from formtool.definitions.scales import FieldKind
from formtool.demo.fill import add_action_row, fill_docx
from formtool.generate import write_forms
from formtool.packs.file import audit_view
from formtool.programme.weblinks import issue_link
from formtool.programme.workflow import select_prepared
from formtool.read.batch import import_paths
from formtool.store import Store, open_store
from formtool.web.webform_page import editable_keys

from conftest import SEED_TOOLS, make_cases

TOOLS = SEED_TOOLS
TODAY = dt.date(2026, 11, 22)
ADDRESS = "auditor.one@example.invalid"
#: The file pack's lines saying where a return came from: a web return's differ by design.
PROVENANCE = ("Returned as", "Imported", "Fingerprint of the returned file (SHA-256)", "Sent by")


@dataclass
class World:
    url: str
    web: Store  # the database the server serves: answers come in through the browser
    word: Store  # a twin: the same audits, answered in Word
    forms: dict[str, Path]  # tool -> the generated Word form of the twin
    audits: dict[str, str]  # tool -> audit id (the same in both)
    mail: Any  # the SMTP server's collected messages
    folder: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _chromium()
    folder = tmp_path_factory.mktemp("webform")
    web_url = f"sqlite:///{folder / 'formtool.db'}"
    web, word = open_store(web_url), open_store(f"sqlite:///{folder / 'word.db'}")
    forms, audits = {}, {}
    with clock.frozen(TODAY):
        for number, tool in enumerate(TOOLS):
            form = get_form(tool)
            cases = make_cases(folder / tool, form, 1, seed=20 + number)
            cases = [
                dataclasses.replace(c, auditor_email=ADDRESS, preparer_email=ADDRESS) for c in cases
            ]
            write_forms(form, cases, folder / "web-forms", ("docx",), db=web)
            [made] = write_forms(form, cases, folder / "word-forms", ("docx",), db=word)
            forms[tool], audits[tool] = made.path, made.case.audit_id
    with smtp_server() as (mail, port):
        (folder / "formtool.toml").write_text(
            'council = "Example Council"\n'
            f'smtp = "127.0.0.1:{port}"\n'
            'mail_from = "qa-team@example.invalid"\n',
            encoding="utf-8",
        )
        with serving(web_url, folder, today=TODAY) as url:
            yield World(url, web, word, forms, audits, mail, folder)
    if os.environ.get("FORMTOOL_SCREENSHOTS") == "1":  # the Word form beside the web form
        shutil.copy(forms["csc"], SHOTS / "webform-csc-word.docx")


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(_chromium()), args=ARGS)
        yield chromium
        chromium.close()


# --- answers -------------------------------------------------------------------------------


def stage_answers(
    form: FormDefinition, stage: str, one_line: set[str], seed: int
) -> dict[str, str]:
    """A complete set of answers for the stage's fields: every scale answered, dates in
    December, texts with markup and (where the box takes several lines) a line break."""
    keys = editable_keys(form, stage)
    answers: dict[str, str] = {}
    for number, field in enumerate(form.fields()):
        if field.key not in keys:
            continue
        if field.kind is FieldKind.choice and field.scale is not None:
            answers[field.key] = field.scale.choices[(number + seed) % len(field.scale.choices)]
        elif field.kind is FieldKind.date:
            answers[field.key] = f"{(number + seed) % 27 + 1:02d}/12/2026"
        elif field.key in one_line:
            answers[field.key] = f"Seen {field.key} on file & <noted>"
        else:
            answers[field.key] = f"Seen {field.key} on file & <noted>\nsecond line"
    if form.judgements.concern and form.judgements.concern in keys:
        answers[form.judgements.concern] = "No"
    return answers


def browser_value(form: FormDefinition, key: str, value: str) -> str:
    """What the control holds: a date input holds ISO dates."""
    field = form.field_or_none(key)
    if field is not None and field.kind is FieldKind.date and value:
        return dt.datetime.strptime(value, "%d/%m/%Y").date().isoformat()
    return value


# --- the browser ---------------------------------------------------------------------------


def code_for(world: World, sent_before: int) -> str:
    """The one-time code in the newest email to the auditor."""
    assert len(world.mail.envelopes) > sent_before, "no code email arrived"
    message = message_from_bytes(world.mail.envelopes[-1].content, policy=policy.default)
    assert message["To"].addresses[0].addr_spec == ADDRESS
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


def open_form(page: Any, world: World, audit_id: str, stage: str) -> None:
    """The link from the email, a code, and the form."""
    token = issue_link(world.web, audit_id, stage, TODAY)
    page.goto(f"{world.url}/form/{token}")
    assert audit_id not in page.content()  # the link alone shows no fact
    sent = len(world.mail.envelopes)
    page.get_by_role("button", name="Email me a one-time code").click()
    page.wait_for_selector("#sent")
    page.get_by_label("One-time code").fill(code_for(world, sent))
    page.get_by_role("button", name="Open the form").click()
    page.wait_for_url(f"{world.url}/form/fill")


def one_line_keys(page: Any) -> set[str]:
    return set(
        page.evaluate(
            "() => Array.from(document.querySelectorAll('input[id^=\"f-\"]'))"
            ".filter(e => e.type === 'text').map(e => e.id.slice(2))"
        )
    )


SET_VALUES = """(values) => {
  for (const [key, value] of Object.entries(values)) {
    const box = document.getElementById('f-' + key);
    if (!box) { throw new Error('no control for ' + key); }
    if (box.tagName === 'FIELDSET') {
      const radios = Array.from(box.querySelectorAll('input[type=radio]'));
      const radio = radios.find(r => r.value === value);
      if (!radio) { throw new Error('no choice ' + value + ' for ' + key); }
      radio.checked = true;
    } else {
      box.value = value;
    }
  }
}"""


def type_answers(
    page: Any, form: FormDefinition, answers: dict[str, str], by_hand: list[str]
) -> None:
    """Every answer in the page: those in `by_hand` clicked and typed as a person would."""
    scripted = {k: browser_value(form, k, v) for k, v in answers.items() if k not in by_hand}
    page.evaluate(SET_VALUES, scripted)
    for key in by_hand:
        box = page.locator(f'[id="f-{key}"]')
        value = browser_value(form, key, answers[key])
        if box.evaluate("e => e.tagName") == "FIELDSET":
            box.locator(f"input[type=radio][value={json.dumps(value)}]").check()
        else:
            box.fill(value)


def hand_keys(form: FormDefinition, answers: dict[str, str]) -> list[str]:
    """One control of each kind the stage has, worked by hand."""
    kinds: dict[FieldKind, str] = {}
    for field in form.fields():
        if field.key in answers:
            kinds.setdefault(field.kind, field.key)
    return list(kinds.values())


def first_required(form: FormDefinition, answers: dict[str, str]) -> str:
    return next(q.key for _, q in form.items() if q.required and q.key in answers)


def add_row(page: Any, form: FormDefinition, stage: str) -> tuple[str, dict[str, str]] | None:
    """A row added to the stage's first action table and filled by hand: (table key,
    column id -> text), as the Word filler's + button takes it; None when the stage has no
    action table (the preparer's stage of the Quality Practice checklist)."""
    keys = editable_keys(form, stage)
    tables = [
        item
        for _, item in form.items()
        if item.kind == "table" and any(item.cell_key(1, c) in keys for c in item.columns)
    ]
    if not tables:
        return None
    table = tables[0]
    page.get_by_role("button", name=re.compile("^Add a row")).first.click()
    row = table.rows + 1
    values = {}
    for column in table.columns:
        key = table.cell_key(row, column)
        box = page.locator(f'[id="f-{key}"]')
        value = "15/12/2026" if column.kind is FieldKind.date else f"Added row {column.id}"
        box.fill(browser_value(form, key, value) if column.kind is FieldKind.date else value)
        values[column.id] = value
    return table.key, values


def submit_with_a_mistake(
    page: Any, form: FormDefinition, answers: dict[str, str], name: str
) -> None:
    """Submit with a required answer missing, follow the error summary to it, put it right,
    and submit as final."""
    missing = first_required(form, answers)
    page.evaluate(
        """(key) => { const box = document.getElementById('f-' + key);
        if (box.tagName !== 'FIELDSET') { box.value = ''; return; }
        box.querySelectorAll('input').forEach(r => r.checked = false); }""",
        missing,
    )
    page.get_by_role("button", name="Submit as final").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    shot(page, f"webform-{name}-error")
    link = summary.locator(f'a[href="#f-{missing}"]')
    assert link.count() == 1, summary.inner_text()
    link.click()
    type_answers(page, form, {missing: answers[missing]}, [missing])
    page.get_by_role("button", name="Submit as final").click()
    page.wait_for_selector("text=Download your answers (PDF)")


def receipt_is_a_pdf(page: Any) -> None:
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download your answers")).click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")


# --- Word ----------------------------------------------------------------------------------


def word_return(world: World, tool: str, data: bytes, answers: dict[str, str], row: Any) -> str:
    form = get_form(tool)
    status = form.judgements.status
    filled = fill_docx(data, {**answers, **({status: form.judgements.final} if status else {})})
    if row is not None:
        filled = add_action_row(filled, *row)
    path = world.folder / "word-returns" / f"{tool}-{len(answers)}.docx"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(filled)
    [outcome] = import_paths(world.word, [path], today=TODAY)
    assert outcome.status in ("imported", "updated"), outcome.issues
    return outcome.status


def stored(db: Store, audit_id: str) -> tuple[Any, ...]:
    found = db.audit_records(audit_id)
    assert found is not None
    actions = sorted(
        tuple((k, str(v)) for k, v in a._asdict().items() if k not in ("id", "return_id"))
        for a in found.actions
    )
    return found.answers, actions, found.row.auditor_grade, found.row.state


def pack(db: Store, audit_id: str) -> list[Any]:
    """The file pack's parts, without the lines saying where the return came from."""
    parts = []
    for part in audit_view(db, audit_id).parts:
        tables = [
            dataclasses.replace(t, rows=tuple(r for r in t.rows if r[0] not in PROVENANCE))
            for t in part.tables
        ]
        parts.append(dataclasses.replace(part, tables=tables))
    return parts


# --- the tests -----------------------------------------------------------------------------


def fill_stage(
    page: Any, world: World, tool: str, stage: str, seed: int
) -> tuple[dict[str, str], Any]:
    form = get_form(tool)
    if os.environ.get("FORMTOOL_SCREENSHOTS") == "1":  # the README's picture: the form opened
        page.set_viewport_size({"width": 1280, "height": 1150})
        shot(page, f"webform-{tool}-{stage}-opened", viewport_only=True)
        page.set_viewport_size({"width": 1280, "height": 900})
    answers = stage_answers(form, stage, one_line_keys(page), seed)
    if tool == "csc":
        accessible(page)
        answers |= raise_the_concern(page, world, form)
    type_answers(page, form, answers, hand_keys(form, answers))
    if tool == "csc":
        saves_itself(page, world, form, answers, hand_keys(form, answers))
    row = add_row(page, form, stage)
    shot(page, f"webform-{tool}-{stage}")
    submit_with_a_mistake(page, form, answers, f"{tool}-{stage}")
    if tool == "csc":
        accessible(page)
    receipt_is_a_pdf(page)
    return answers, row


def accessible(page: Any) -> None:
    """No serious or critical axe-core violation, and nothing wider than a phone."""
    assert not serious(page), serious(page)
    page.set_viewport_size({"width": 390, "height": 800})
    try:
        assert not overflow(page), overflow(page)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def saves_itself(
    page: Any, world: World, form: FormDefinition, answers: dict[str, str], typed: list[str]
) -> None:
    """20 seconds after the auditor types, the draft is saved without a click (the page's
    clock is the test's: no waiting), and the page says so."""
    page.clock.fast_forward(21_000)
    page.locator("#save-status").filter(has_text="Saved at").wait_for()
    draft = json.loads(world.web.web_draft(world.audits[form.id], "audit") or "{}")
    for key in typed:
        assert draft.get(key) == browser_value(form, key, answers[key]), key
    assert not [c for c in world.web.concerns(True) if c.audit_id == world.audits[form.id]][1:]


def raise_the_concern(page: Any, world: World, form: FormDefinition) -> dict[str, str]:
    """The auditor says Yes to the immediate concern and saves it on purpose: the QA team
    hears at once, before the form is submitted (never from an autosave)."""
    texts = [item.key for item in form.concern_texts()]
    said = {
        form.judgements.concern: "Yes",
        texts[0]: "No safety plan on file for the new baby.",
        texts[1]: "Team manager, by phone on 20/11/2026.",
    }
    audit_id = world.audits[form.id]
    assert not [c for c in world.web.concerns(True) if c.audit_id == audit_id]
    type_answers(page, form, said, list(said))
    page.get_by_role("button", name="Save and tell the QA team now").click()
    page.wait_for_selector("text=The QA team has been told")
    [concern] = [c for c in world.web.concerns(True) if c.audit_id == audit_id]
    assert "new baby" in concern.details
    return said


@pytest.mark.parametrize("tool", [t for t in TOOLS if not get_form(t).two_stage])
def test_a_tool_filled_in_the_browser_is_stored_as_word_would_store_it(
    world, browser, tool
) -> None:
    audit_id = world.audits[tool]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.clock.install()  # the autosave's 20 seconds pass when the test says
        open_form(page, world, audit_id, "audit")
        answers, row = fill_stage(page, world, tool, "audit", seed=TOOLS.index(tool))
    finally:
        context.close()
    with clock.frozen(TODAY):
        word_return(world, tool, world.forms[tool].read_bytes(), answers, row)
        assert stored(world.web, audit_id) == stored(world.word, audit_id)
        assert world.web.audit_records(audit_id).row.method == "web"
        assert pack(world.web, audit_id) == pack(world.word, audit_id)


def test_quality_practice_goes_from_preparer_to_auditor_through_links(world, browser) -> None:
    tool = "quality_practice"
    audit_id = world.audits[tool]
    context = browser.new_context()
    try:
        page = context.new_page()
        open_form(page, world, audit_id, "prepare")
        prepared, prepared_row = fill_stage(page, world, tool, "prepare", seed=1)
    finally:
        context.close()
    month = world.web.audit_row(audit_id).month
    with clock.frozen(TODAY):
        word_return(world, tool, world.forms[tool].read_bytes(), prepared, prepared_row)
        for db in (world.web, world.word):
            select_prepared(db, month, 1, 0)
    context = browser.new_context()
    try:
        page = context.new_page()
        open_form(page, world, audit_id, "audit")
        form = get_form(tool)
        evidence = [k for k in prepared if form.field(k).role == "preparer"]
        assert evidence
        for key in evidence:  # the prepared evidence is shown, not asked again
            assert not page.locator(f'[id="f-{key}"]').count(), key
            assert page.locator(f'[id="p-{key}"]').count() == 1, key
        audited, audited_row = fill_stage(page, world, tool, "audit", seed=2)
    finally:
        context.close()
    with clock.frozen(TODAY):
        word = world.word.audit_records(audit_id)
        prepared_file = world.word.return_content(word.row.return_id).content
        word_return(world, tool, prepared_file, audited, audited_row)
        assert stored(world.web, audit_id) == stored(world.word, audit_id)
        assert pack(world.web, audit_id) == pack(world.word, audit_id)
