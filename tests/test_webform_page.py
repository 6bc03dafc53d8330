"""The web form page (issue 25): every tool rendered as HTML from its definition, and what a
browser posts back read as the Word and Excel readers key answers. No browser: the templates are
rendered with the workspace's Jinja environment and parsed with lxml.html; a browser's post is
gathered from the parsed page as a browser would gather it."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import lxml.html
import pytest
from starlette.datastructures import FormData, UploadFile

from formtool import clock
from formtool.definitions import FormDefinition, get_form
from formtool.definitions.scales import KINDS, FieldKind, parse_date
from formtool.errors import Issue, IssueCode
from formtool.read.limits import MAX_ROWS
from formtool.settings import Settings
from formtool.web.app import environment
from formtool.web.webform_page import (
    LINE_LIMIT,
    TEXT_LIMIT,
    editable_keys,
    form_context,
    posted_values,
)

from conftest import FORM_IDS, answers_for

HTML = Any  # an lxml.html element (lxml has no type hints)
TWO_STAGE = "quality_practice"
URLS = {"save_url": "/f/save", "submit_url": "/f/submit", "concern_url": "/f/concern"}


@cache
def _env():  # one Jinja environment for the module: templates compile once
    return environment()


def render(template: str, **context: object) -> HTML:
    html = (
        _env()
        .get_template(template)
        .render(
            settings=Settings(council="Synthetic Council", marking="OFFICIAL-SENSITIVE"),
            csrf="token-1",
            title="Audit form",
            **context,
        )
    )
    return lxml.html.document_fromstring(html)


def page(form: FormDefinition, stage: str, values: dict[str, str], **kw: object) -> HTML:
    facts = kw.pop("facts", {h.column: f"fact {h.column}" for h in form.header})
    return render("webform.html", **URLS, **form_context(form, stage, facts, values, **kw))  # type: ignore[arg-type]


def stages(form: FormDefinition) -> list[str]:
    return ["prepare", "audit"] if form.two_stage else ["audit"]


def canonical(form: FormDefinition, values: dict[str, str]) -> dict[str, str]:
    """Answers as validation keeps them: dates ISO."""
    out = {}
    for key, value in values.items():
        field = form.field_or_none(key)
        if field is not None and field.kind is FieldKind.date and value:
            day = parse_date(value)
            value = day.isoformat() if day else value
        out[key] = value
    return out


def stage_answers(form: FormDefinition, stage: str) -> dict[str, str]:
    keys = editable_keys(form, stage)
    return {k: v for k, v in answers_for(form).items() if k in keys}


def outside_templates(root: HTML, tags: str) -> list[HTML]:
    return [e for e in root.xpath(tags) if not e.xpath("ancestor::template")]


def browser_post(root: HTML) -> dict[str, str]:
    """What a browser sends for the page's form: checked radios, inputs, textareas (whose
    line breaks it sends as CRLF, and whose first newline the parser drops)."""
    form = root.get_element_by_id("webform")
    data: dict[str, str] = {}
    for el in outside_templates(form, ".//input|.//textarea"):
        name = el.get("name")
        if not name:
            continue
        if el.tag == "textarea":
            text = (el.text or "").removeprefix("\n")
            data[name] = text.replace("\n", "\r\n")
        elif el.get("type") == "radio":
            if el.get("checked") is not None:
                data[name] = el.get("value", "")
        else:
            data[name] = el.get("value", "")
    return data


@cache
def rendered(form_id: str, stage: str) -> tuple[FormDefinition, HTML]:
    form = get_form(form_id)
    return form, page(form, stage, stage_answers(form, stage))


CASES = [(f, s) for f in FORM_IDS for s in stages(get_form(f))]


@pytest.mark.parametrize(("form_id", "stage"), CASES)
def test_every_editable_key_has_one_labelled_control(form_id: str, stage: str) -> None:
    form, root = rendered(form_id, stage)
    keys = editable_keys(form, stage)
    assert form.judgements.status not in keys and keys
    named = outside_templates(root, "//input[@name]|//textarea[@name]")
    names = [e.get("name") for e in named if e.get("type") not in ("hidden",)]
    by_id = {e.get("id"): e for e in root.iter() if e.get("id")}
    labelled = {str(e.get("for")): e.text_content().strip() for e in root.xpath("//label[@for]")}
    for key in keys:
        field = form.field(key)
        if field.kind is FieldKind.choice:
            assert field.scale is not None
            group = by_id[f"f-{key}"]
            assert group.tag == "fieldset" and group.find("legend").text_content().strip()
            radios = group.xpath(f".//input[@type='radio'][@name='{key}']")
            assert len(radios) == len(field.scale.choices) == names.count(key)
            for n, radio in enumerate(radios, start=1):
                assert radio.get("id") == f"f-{key}-{n}"
                assert labelled[f"f-{key}-{n}"] == field.scale.choices[n - 1]
        else:
            assert names.count(key) == 1, key
            assert by_id[f"f-{key}"].get("name") == key
            assert labelled[f"f-{key}"]
    for name in set(names) - keys:  # only the spare action row a page adds
        found = form.field_or_none(name)
        assert found is not None
        assert any(name.startswith(t.key + f".{t.rows + 1}.") for t in form.tables()), name


@pytest.mark.parametrize(("form_id", "stage"), CASES)
def test_page_follows_the_definition(form_id: str, stage: str) -> None:
    form, root = rendered(form_id, stage)
    text = root.get_element_by_id("webform").text_content()
    concern = form.item(form.judgements.concern)
    assert concern is not None and text.index(concern.label) < text.index("About this audit")
    ids = set(root.xpath("//@id"))
    expected: list[str] = []  # every heading and question, in the definition's order
    for section in form.sections:
        if not section.joins_previous:  # printed under the section before, with no heading
            expected.append(section.title)
        else:
            assert f"h-{section.id}" not in ids, section.title
        expected += [
            f"{i.number}. {i.label}" if i.number else i.label
            for i in section.items
            if i.kind != "table" and any(f"f-{f.key}" in ids for f in i.fields())
        ]
    shown = iter(
        e.text_content().strip()
        for e in outside_templates(root, "//h2|//legend|//label[starts-with(@for, 'f-')]")
    )
    for wording in expected:
        assert wording in shown, wording  # consumes the iterator: order is checked too
    details = " ".join(d.text_content() for d in root.xpath("//details"))
    for section in form.sections:
        guidance = [*section.guidance] if section.id != "concern" else []
        for ind in section.indicators:
            guidance += [ind.title, *ind.good, *ind.outstanding]
        for item in section.items:
            guidance += item.guidance if f"f-{item.key}" in ids else []
        for line in guidance:
            assert line in details, line
    for block in form.guidance:
        assert all(line in details for line in (block.title, *block.lines))


@pytest.mark.parametrize(("form_id", "stage"), CASES)
def test_posted_answers_round_trip(form_id: str, stage: str) -> None:
    form, root = rendered(form_id, stage)
    wanted = canonical(form, stage_answers(form, stage))
    assert posted_values(form, stage, browser_post(root)) == wanted


def test_iso_dates_validate_as_word_dates() -> None:
    parse = KINDS[FieldKind.date].parse
    assert parse(None, "2026-12-05") == parse(None, "05/12/2026") == "2026-12-05"


def test_two_stage_pages() -> None:
    form = get_form(TWO_STAGE)
    assert form.two_stage
    preparer = {f.key for f in form.fields() if f.role == "preparer"}
    auditor = {f.key for f in form.fields() if f.role == "auditor"}
    assert editable_keys(form, "prepare") & auditor == set()
    assert editable_keys(form, "audit") & preparer == set()
    _, prep_page = rendered(TWO_STAGE, "prepare")
    names = {e.get("name") for e in prep_page.xpath("//input|//textarea")}
    assert names & auditor == set() and preparer <= names
    prepared = {k: f"Prepared {k} <b>&</b>" for k in preparer}
    root = page(form, "audit", {}, prepared=prepared)
    names = {e.get("name") for e in root.xpath("//input|//textarea")}
    assert names & preparer == set()
    item = form.questions()[0]
    shown = root.get_element_by_id(f"p-{item.evidence_key}")
    assert prepared[item.evidence_key] in shown.text_content()
    assert shown.xpath("ancestor::fieldset[@id=$id]", id=f"f-{item.key}")  # beside its question


def test_issues_link_to_their_fields() -> None:
    form = get_form("csc")
    question = form.questions()[0]
    table = form.tables()[0]
    due = next(c for c in table.columns if c.role == "due_date")
    issues = [
        Issue(IssueCode.missing_answer, "web form", question.key),
        Issue(IssueCode.bad_answer_date, "web form", form.judgements.completed_on, value="31/02"),
        Issue(
            IssueCode.incomplete_action,
            "web form",
            f"{table.key}.2",
            value="a date",
            expected="an action",
        ),
        Issue(
            IssueCode.date_doubt,
            "web form",
            f"{table.key}.1.due_date",
            value="01/01/2020",
            expected="early",
        ),
        Issue(IssueCode.facts_altered, "web form", "header.team", value="a", expected="b"),
        Issue(IssueCode.checksum_mismatch, "web form", value="x", expected="y", audit_id="A-1"),
    ]
    values = {table.cell_key(1, due): "2020-01-01", table.cell_key(2, table.columns[0]): "x"}
    root = page(form, "audit", values, issues=issues)
    summary = root.get_element_by_id("error-summary")
    assert summary.get("role") == "alert" and summary.get("tabindex") == "-1"
    items = summary.xpath(".//li")
    assert len(items) == len(issues)
    assert "web form" not in summary.text_content()  # plain words, no file name
    links = summary.xpath(".//a/@href")
    assert links == [
        f"#f-{question.key}",
        f"#f-{form.judgements.completed_on}",
        f"#r-{table.key}.2",
        f"#f-{table.cell_key(1, due)}",
    ]
    for href in links:
        assert root.get_element_by_id(href[1:]) is not None
    group = root.get_element_by_id(f"f-{question.key}")
    assert group.get("aria-invalid") == "true"
    described = root.get_element_by_id(group.get("aria-describedby"))
    assert "Save draft" in described.text_content()
    date = root.get_element_by_id(f"f-{form.judgements.completed_on}")
    assert "is not a date" in root.get_element_by_id(date.get("aria-describedby")).text_content()
    assert "lacks a date" in root.get_element_by_id(f"r-{table.key}.2").text_content()


def test_text_is_cut_to_its_limit() -> None:
    form = get_form("csc")
    question = form.questions()[0]
    long = "x" * (TEXT_LIMIT + 5_000)
    got = posted_values(
        form,
        "audit",
        {
            question.evidence_key: f"  {long}  ",
            form.judgements.completed_by: "y" * 900,
            question.key: "z" * 900,
        },
    )
    assert len(got[question.evidence_key]) == TEXT_LIMIT
    assert len(got[form.judgements.completed_by]) == LINE_LIMIT
    assert len(got[question.key]) == LINE_LIMIT
    root = page(form, "audit", {})
    assert root.get_element_by_id(f"f-{question.evidence_key}").get("maxlength") == str(TEXT_LIMIT)
    completed = root.get_element_by_id(f"f-{form.judgements.completed_by}")
    assert completed.get("maxlength") == str(LINE_LIMIT)


def test_posted_values_are_cleaned() -> None:
    form = get_form("csc")
    q1, q2, q3 = form.questions()[:3]
    table = form.tables()[0]
    first, second = table.columns[0], table.columns[1]
    posted = FormData(
        [
            (q1.key, " yes "),  # the scale's spelling
            (q2.key, "Maybe"),  # not a choice: kept, so validation names it
            (q1.evidence_key, "a\r\nb\x00c\x1b"),
            (q2.evidence_key, UploadFile(file=None, filename="x.exe")),  # type: ignore[arg-type]
            (table.cell_key(1, first), "one"),
            (table.cell_key(3, second), "three"),  # row 2 left empty: renumbered
            (table.cell_key(MAX_ROWS + 1, first), "too far"),
            ("header.team", "changed"),
            (form.judgements.status, "Final"),
            ("not.a.key", "x"),
        ]
    )
    got = posted_values(form, "audit", posted)
    assert (got[q1.key], got[q2.key], got[q3.key]) == ("Yes", "Maybe", "")
    assert got[q1.evidence_key] == "a\nbc" and got[q2.evidence_key] == ""
    rows = {k: v for k, v in got.items() if k.startswith(table.key + ".") and v}
    assert rows == {table.cell_key(1, first): "one", table.cell_key(2, second): "three"}
    assert set(got) - editable_keys(form, "audit") <= {
        table.cell_key(r, c) for r in (1, 2) for c in table.columns
    }
    assert "header.team" not in got and form.judgements.status not in got
    with pytest.raises(ValueError, match="stage"):
        editable_keys(form, "review")


def test_facts_under_the_paper_headings() -> None:
    form = get_form("early_help")
    facts = {"given_names": "Ada", "family_name": "Example", "dob": "01/12/2018", "team": "T1"}
    clock.set_today(dt.date(2026, 11, 30))
    root = page(form, "audit", {}, facts=facts)
    section = root.get_element_by_id("facts")
    headings = [h.text_content() for h in section.xpath(".//h3")]
    assert headings[0] == "Details of Ada Example, 7 years"
    assert "Team" in section.text_content() and "T1" in section.text_content()
    parts = [s.part for s in form.sections if s.part]
    assert parts and all(p in [h.text_content() for h in root.xpath("//h2")] for p in parts)


def test_hostile_values_are_escaped() -> None:
    form = get_form("csc")
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    question = form.questions()[0]
    root = page(
        form,
        "audit",
        {question.evidence_key: evil, form.judgements.completed_by: evil},
        facts={h.column: evil for h in form.header},
        amendment=evil,
        issues=[Issue(IssueCode.bad_choice, "f", question.key, value=evil, expected="Yes/No")],
    )
    assert [s.get("src") for s in root.xpath("//script")] == ["/static/webform.js"]
    assert not root.xpath("//img|//*[@onerror]|//*[@style]|//style")  # CSP-clean too
    assert root.get_element_by_id(f"f-{question.evidence_key}").text.strip() == evil
    assert evil in root.get_element_by_id("amendment").text_content()


def test_action_rows_without_script() -> None:
    form = get_form("csc")
    table = form.tables()[0]
    root = page(form, "audit", {})
    rows = root.xpath(f"//div[@id='t-{table.key}']//fieldset[@data-row]")
    assert len([r for r in rows if not r.xpath("ancestor::template")]) == table.rows
    filled = {table.cell_key(r, table.columns[0]): "x" for r in range(1, table.rows + 3)}
    root = page(form, "audit", filled)
    body = outside_templates(root, f"//div[@id='t-{table.key}']//fieldset[@data-row]")
    assert len(body) == table.rows + 3  # every filled row and one spare
    (blank,) = root.xpath(f"//div[@id='t-{table.key}']/template/fieldset")
    assert all("__ROW__" in e.get("name") for e in blank.xpath(".//input|.//textarea"))


def test_base_and_other_pages() -> None:
    form = get_form("csc")
    root = render(
        "webform.html",
        **URLS,
        leave_url="/f/leave",
        notice="Draft saved.",
        **form_context(form, "audit", {}, {}, saved_at="14:05"),
    )
    assert root.get("lang") == "en-GB"
    assert root.xpath("//meta[@name='referrer']/@content") == ["no-referrer"]
    assert len(root.xpath("//p[@class='marking'][.='OFFICIAL-SENSITIVE']")) == 2
    assert root.get_element_by_id("save-status").text_content() == "Saved at 14:05"
    assert root.get_element_by_id("notice").text_content() == "Draft saved."
    assert root.get_element_by_id("leave").get("action") == "/f/leave"
    intents = root.xpath("//button[@name='intent']/@value")
    assert intents[0] == "save" and {"save", "final", "concern"} == set(intents)
    code = render(
        "webform_code.html",
        request_url="/r",
        enter_url="/e",
        sent_to="a***@example.invalid",
        token="tok",
        error="That code is wrong or has expired. Ask for a new code.",
    )
    text = code.text_content()
    assert form.title not in text and "a***@example.invalid" in text
    assert code.get_element_by_id("code").get("aria-invalid") == "true"
    assert code.xpath("//input[@name='token']/@value") == ["tok", "tok"]  # both forms post it
    done = render(
        "webform_done.html",
        stored_at="30/11/2026 14:05",
        held=False,
        pdf_url="/f/pdf",
        warnings=[Issue(IssueCode.past_action_date, "web form", "a.b.1", value="01/01/2020")],
    )
    assert done.get_element_by_id("pdf").get("href") == "/f/pdf"
    assert "30/11/2026 14:05" in done.get_element_by_id("done").text_content()
    assert "01/01/2020" in done.get_element_by_id("warnings").text_content()
    held = render("webform_done.html", stored_at="x", held=True, pdf_url="", warnings=[])
    assert "held for an officer" in held.text_content() and not held.xpath("//a[@id='pdf']")
    refused = render("webform_refused.html", message="This link has expired.")
    assert refused.get_element_by_id("refused").text_content() == "This link has expired."
