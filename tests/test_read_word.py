"""Word returns are read as Word shows them to the auditor (issue 19, Word part): text typed
outside the answer box, tracked changes, text boxes and other alternate content, nested
tables, two places for one answer, symbols, date pickers and placeholders. Each file is a
filled formtool return rewritten to one of Word's real XML patterns (tests/word_patterns.py).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest
from hostile_files import member, with_member
from lxml import etree
from word_patterns import (
    DOCUMENT,
    KNOWN_LIBREOFFICE_DIFFERENCES,
    PATTERNS,
    Built,
    W,
    box,
    run,
    set_content,
    text_box,
    typed_answer,
    xml,
)

from formtool.definitions import FormDefinition, get_form
from formtool.definitions.layout import layout
from formtool.demo.fill import fill_docx, strip_controls
from formtool.errors import Rejected
from formtool.generate import render
from formtool.read import RawReturn, read_bytes
from formtool.read.validate import validate_return
from formtool.read.wordtext import symbol

from conftest import answers_for, make_cases

CHOICE, EVIDENCE = "kss1.seen_alone", "kss1.seen_alone.evidence"  # csc
JUDGEMENT, COMMENT = "screening.enough_information", "screening.enough_information.comment"
ACTION_DATE, ACTION = "next_steps.actions.1.date_required", "next_steps.actions.1.action"
DATE = "comments.team_manager_date"  # quality_practice, outside any action table


class Filled(NamedTuple):
    form: FormDefinition
    data: bytes
    values: dict[str, str]  # what the filled return reads as


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> dict[str, Filled]:
    """A filled Word return of the CSC tool and of the two-stage checklist, whose judgement
    and comment share a cell."""
    root = tmp_path_factory.mktemp("word")
    made = {}
    for form_id in ("csc", "quality_practice"):
        form = get_form(form_id)
        case = make_cases(root, form, 1)[0]
        data = fill_docx(render(form, case, "docx"), answers_for(form))
        made[form_id] = Filled(form, data, read_bytes(data, ".docx").values)
    return made


def built(filled, form_id: str, pattern: str, key: str) -> tuple[Built, RawReturn | None]:
    form, data, _ = filled[form_id]
    assert PATTERNS[pattern].applies(form, key), (pattern, key)
    made = PATTERNS[pattern].build(data, form, key)
    try:
        return made, read_bytes(made.data, ".docx")
    except Rejected as refused:
        assert refused.code.label == made.refused, (refused.code.label, refused.value)
        assert refused.field == key
        return made, None


def read_as_built(filled, form_id: str, pattern: str, key: str) -> RawReturn:
    """Read a pattern's file: the key holds what Word shows, with the notes the pattern
    leaves, and every other answer is as it was filled."""
    made, raw = built(filled, form_id, pattern, key)
    assert raw is not None and not made.refused
    assert raw.values[key] == made.expected
    assert sorted(n.code.label for n in raw.notes) == sorted(made.notes)
    before = filled[form_id].values
    assert {k: v for k, v in raw.values.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }
    return raw


def issues(raw: RawReturn) -> list[tuple[str, str]]:
    return [(i.field, i.code.label) for i in validate_return(raw, "r.docx").issues]


@pytest.mark.parametrize("pattern", ["typed-beside", "typed-below", "box-deleted"])
@pytest.mark.parametrize(
    ("form_id", "key"),
    [
        ("csc", CHOICE),
        ("csc", EVIDENCE),
        ("quality_practice", JUDGEMENT),
        ("quality_practice", COMMENT),
    ],
)
def test_text_typed_outside_the_box_is_read_with_a_note(filled, pattern, form_id, key):
    """Typed beside the box, below it in the cell, or after the box was deleted (its bookmark
    collapsed): read as the cell shows it, a note naming what was typed outside. In a cell
    holding a judgement and its comment, each keeps its own text."""
    raw = read_as_built(filled, form_id, pattern, key)
    typed = typed_answer(filled[form_id].form.field(key))
    assert [(n.field, n.value) for n in raw.notes] == [(key, typed)]


@pytest.mark.parametrize("key", [CHOICE, JUDGEMENT])
def test_a_choice_typed_beside_an_empty_dropdown_is_that_choice(filled, key):
    form_id = "csc" if key == CHOICE else "quality_practice"
    raw = read_as_built(filled, form_id, "typed-beside", key)
    scale = filled[form_id].form.field(key).scale
    assert scale is not None and raw.values[key] == scale.choices[0].lower()
    result = validate_return(raw, "r.docx")
    assert [(i.field, i.code.label) for i in result.issues if i.field == key] == [
        (key, "typed-outside")
    ]
    assert result.record is not None and result.record.answers[key][0] == scale.choices[0]


def test_the_forms_own_printed_text_in_a_cell_is_not_typed_text(filled):
    """Printed text (a content-locked control without a form key) beside an answer is the
    form's, never the auditor's."""
    form, data, _ = filled["csc"]
    root = etree.fromstring(member(data, DOCUMENT))
    mark, _ = box(root, EVIDENCE)
    mark.addprevious(
        xml(
            '<w:sdt><w:sdtPr><w:lock w:val="sdtContentLocked"/></w:sdtPr>'
            f"<w:sdtContent>{run('Describe the evidence: ')}</w:sdtContent></w:sdt>"
        )
    )
    raw = read_bytes(with_member(data, DOCUMENT, etree.tostring(root)), ".docx")
    assert raw.values[EVIDENCE] == answers_for(form)[EVIDENCE]
    assert raw.notes == ()


@pytest.mark.parametrize(("form_id", "key"), [("csc", CHOICE), ("quality_practice", COMMENT)])
def test_tracked_changes_are_read_as_accepted_with_one_note(filled, form_id, key):
    """Insertions and move destinations in; deletions, moved-away text (w:moveFrom holds
    ordinary w:t) and formatting changes out; one note for the return."""
    raw = read_as_built(filled, form_id, "tracked-changes", key)
    [note] = raw.notes
    expected = "1 insertion, 1 deletion" if key == CHOICE else "1 insertion, 1 deletion, 1 move"
    assert (note.field, note.value) == ("", expected)
    assert issues(raw).count(("", "tracked-changes")) == 1


def test_a_row_deleted_as_a_tracked_change_is_gone(filled):
    """Accepted, a deleted action row is no row: the rows below move up, one fewer."""
    form, _, before = filled["csc"]
    made, raw = built(filled, "csc", "deleted-row", ACTION)
    assert raw is not None and raw.values[ACTION] == made.expected
    assert [(n.code.label, n.value) for n in raw.notes] == [("tracked-changes", "1 deletion")]
    table = next(t for t in form.tables() if t.key == "next_steps.actions")
    last, action = table.rows, next(c for c in table.columns if c.id == "action")
    assert raw.values[table.cell_key(last - 1, action)] == before[table.cell_key(last, action)]
    assert table.cell_key(last, action) not in raw.values


def test_a_deleted_paragraph_mark_joins_the_paragraphs(filled):
    raw = read_as_built(filled, "csc", "deleted-paragraph-mark", EVIDENCE)
    assert "\n Run on." not in raw.values[EVIDENCE]


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("alternate-runs", CHOICE),
        ("alternate-runs", ACTION),
        ("box-in-text-box", CHOICE),
        ("text-box-beside", EVIDENCE),
    ],
)
def test_alternate_content_is_read_once(filled, pattern, key):
    """Word 2010+ writes text boxes (and runs with newer effects) twice, in mc:Choice and
    mc:Fallback: one branch is read, so a dropdown's answer is not doubled into a bad choice."""
    raw = read_as_built(filled, "csc", pattern, key)
    assert (key, "bad-choice") not in issues(raw)


@pytest.mark.parametrize("method", ["tags", "table layout"])
def test_alternate_content_is_read_once_whichever_way_answers_are_found(filled, method):
    form, data, _ = filled["csc"]
    made = PATTERNS["alternate-runs"].build(data, form, CHOICE)
    root = etree.fromstring(member(made.data, DOCUMENT))
    for mark in list(root.iter(W + "bookmarkStart", W + "bookmarkEnd")):
        mark.getparent().remove(mark)
    changed = with_member(made.data, DOCUMENT, etree.tostring(root))
    if method == "table layout":
        changed = strip_controls(made.data)
    raw = read_bytes(changed, ".docx")
    assert (raw.method, raw.values[CHOICE]) == (method, made.expected)


def test_the_identity_line_in_a_text_box_is_read_once(filled):
    """Without its document properties, a return is known by its printed identity line: in
    a text box it is read from one branch."""
    data = filled["csc"].data
    raw = read_bytes(data, ".docx")
    root = etree.fromstring(member(data, DOCUMENT))
    line = next(p for p in root.iter(W + "p") if "Audit ID:" in "".join(p.itertext()))
    text = etree.tostring(line, encoding="unicode")
    line.getparent().replace(line, xml(f"<w:p>{text_box(text, 9)}</w:p>"))
    changed = with_member(data, DOCUMENT, etree.tostring(root))
    changed = with_member(changed, "docProps/custom.xml", b"<Properties/>")
    for footer in ("word/footer1.xml", "word/header1.xml"):
        changed = with_member(changed, footer, None)
    assert read_bytes(changed, ".docx").identity == raw.identity


def test_a_table_nested_in_an_action_cell_is_that_cells_text(filled):
    """Rows are the action table's own: a 2 x 2 table inside a cell adds no rows."""
    form = filled["csc"].form
    raw = read_as_built(filled, "csc", "nested-table", ACTION)
    printed = next(t for t in form.tables() if t.key == "next_steps.actions").rows
    rows = {int(k.split(".")[2]) for k in raw.values if k.startswith("next_steps.actions.")}
    assert rows == set(range(1, printed + 1))


@pytest.mark.parametrize("pattern", ["swapped-bookmarks", "copied-box-changed"])
@pytest.mark.parametrize(
    ("form_id", "key"),
    [("csc", CHOICE), ("csc", EVIDENCE), ("quality_practice", DATE)],
)
def test_two_places_giving_different_answers_are_refused(filled, pattern, form_id, key):
    made, raw = built(filled, form_id, pattern, key)
    assert raw is None and made.refused == "ambiguous"


def test_a_copied_box_with_the_same_answer_reads(filled):
    """Word copies a box's tag with it: a copy still saying the same is no doubt."""
    read_as_built(filled, "csc", "copied-box-same", CHOICE)


def test_symbols_and_hyphens_are_read_as_word_draws_them(filled):
    raw = read_as_built(filled, "csc", "symbols", EVIDENCE)
    assert raw.values[EVIDENCE] == "Smith\u2011Jones ✓ ✗ ☑ • document"


def test_text_in_a_symbol_font_is_read_as_the_symbols_it_draws(filled):
    """As LibreOffice saves an inserted tick (U+F0FC in Wingdings), or Wingdings typed."""
    raw = read_as_built(filled, "csc", "symbol-font-text", EVIDENCE)
    assert raw.values[EVIDENCE] == "Seen ✓ ✗"


@pytest.mark.parametrize(
    ("font", "char", "shown"),
    [
        ("Wingdings", "F0FC", "✓"),
        ("Wingdings", "FC", "✓"),
        ("Wingdings 2", "F050", "✓"),
        ("Webdings", "F061", "✔"),
        ("Symbol", "F0D6", "√"),
        ("Symbol", "F06D", "μ"),
        ("Segoe UI Symbol", "2714", "✔"),  # a Unicode font: the code is the character
        ("Wingdings", "F0AA", "\uf0aa"),  # not in the table: as Word stores it
        ("Wingdings", "zz", ""),
    ],
)
def test_symbol_fonts_map_to_unicode(font, char, shown):
    element = etree.Element(W + "sym", {W + "font": font, W + "char": char})
    assert symbol(element) == shown


@pytest.mark.parametrize(
    "pattern",
    [
        "date-ordinal",
        "date-us",
        "date-abbreviated",
        "date-weekday",
        "date-dots",
        "date-month-year",
        "date-with-time",
    ],
)
@pytest.mark.parametrize(("form_id", "key"), [("csc", ACTION_DATE), ("quality_practice", DATE)])
def test_dates_in_words_date_box_are_the_date_word_understood(filled, pattern, form_id, key):
    raw = read_as_built(filled, form_id, pattern, key)
    result = validate_return(raw, "r.docx")
    assert (key, "bad-answer-date") not in [(i.field, i.code.label) for i in result.issues]
    assert result.record is not None
    if key == DATE:
        assert result.record.answers[key][0] == "2026-11-20"
    else:
        [row] = [
            r for r in result.record.actions if r.table_key == "next_steps.actions" and r.row == 1
        ]
        assert "2026-11-20" in row.values.values()


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("placeholder-text", EVIDENCE),
        ("placeholder-choice", CHOICE),
        ("placeholder-date", ACTION_DATE),
    ],
)
def test_a_box_showing_its_placeholder_is_empty(filled, pattern, key):
    read_as_built(filled, "csc", pattern, key)


def test_an_empty_action_row_showing_a_date_placeholder_is_no_row(filled):
    """An action row left empty, its date box showing Word's "Click here to enter a date.",
    is no action, not a bad date that refuses the whole return."""
    form, data, _ = filled["csc"]
    table = next(t for t in form.tables() if t.key == "next_steps.actions")
    emptied = fill_docx(data, {table.cell_key(1, c): "" for c in table.columns})
    made = PATTERNS["placeholder-date"].build(emptied, form, ACTION_DATE)
    result = validate_return(read_bytes(made.data, ".docx"), "r.docx")
    row_one = [i for i in result.issues if i.field.split(".")[:3] == ["next_steps", "actions", "1"]]
    assert row_one == []  # (not row 10: its date may have passed, whatever today is)
    assert result.record is not None
    assert 1 not in [r.row for r in result.record.actions if r.table_key == table.key]


def test_a_custom_placeholder_prompt_is_empty_too(filled):
    form, data, _ = filled["csc"]
    made = PATTERNS["placeholder-text"].build(data, form, EVIDENCE)
    changed = member(made.data, DOCUMENT).replace(
        b"Click here to enter text.", b"Describe what you saw"
    )
    raw = read_bytes(with_member(made.data, DOCUMENT, changed), ".docx")
    assert raw.values[EVIDENCE] == ""


def test_every_pattern_says_where_libreoffice_differs(filled):
    """The oracle's known differences: every builder that names one names a listed one."""
    form, data, _ = filled["csc"]
    for name, pattern in PATTERNS.items():
        key = next(k for k in layout(form).positions if pattern.applies(form, k))
        made = pattern.build(data, form, key)
        assert made.difference in ("", *KNOWN_LIBREOFFICE_DIFFERENCES), name
        assert (made.libreoffice is None) == (made.difference == ""), name


def test_nested_date_boxes_are_looked_at_once(filled, monkeypatch):
    """A hostile file: 100 date boxes nested in one another around 5,000 runs. Only the
    outermost is asked what date it holds, so the walk stays linear."""
    from formtool.read import wordtext

    data = filled["csc"].data
    root = etree.fromstring(member(data, DOCUMENT))
    _, control = box(root, EVIDENCE)
    nested = "".join(run("word ") for _ in range(5_000))
    for _ in range(100):  # two levels each: formtool's parser allows 256
        date = '<w:sdtPr><w:date w:fullDate="2026-11-20T00:00:00Z"/></w:sdtPr>'
        nested = f"<w:sdt>{date}<w:sdtContent>{nested}</w:sdtContent></w:sdt>"
    set_content(control, nested)
    asked: list[etree._Element] = []
    original = wordtext._date_text

    def spy(sdt: etree._Element) -> str:
        asked.append(sdt)
        return original(sdt)

    monkeypatch.setattr(wordtext, "_date_text", spy)
    raw = read_bytes(with_member(data, DOCUMENT, etree.tostring(root)), ".docx")
    assert raw.values[EVIDENCE] == "2026-11-20"  # its text is no date: the date Word holds
    tagged = f"{W}sdtPr/{W}tag[@{W}val='{EVIDENCE}']"
    mine = [s for s in asked if any(a.find(tagged) is not None for a in s.iterancestors())]
    assert len(mine) == 1  # the outermost, once, by the one walk over the body


def test_thousands_of_copies_of_a_box_are_refused_quickly(filled):
    """3,000 copies of one box, each saying something else: two are compared, not 3,000."""
    data = filled["csc"].data
    root = etree.fromstring(member(data, DOCUMENT))
    body = root.find(W + "body")
    assert body is not None
    copies = etree.tostring(box(root, CHOICE)[1], encoding="unicode")
    for n in range(3000):
        copied = xml(copies)
        set_content(copied, run(f"Copy {n}"))
        etree.SubElement(body, W + "p").append(copied)
    body.append(body.find(W + "sectPr"))
    started = time.process_time()
    with pytest.raises(Rejected) as refused:
        read_bytes(with_member(data, DOCUMENT, etree.tostring(root)), ".docx")
    assert (refused.value.code.label, refused.value.field) == ("ambiguous", CHOICE)
    assert time.process_time() - started < 5
