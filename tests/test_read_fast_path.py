"""The fast path for plain Word returns (read/plainscan.py) reads exactly what the full walk
reads: for every kind of return file the suite builds (filled forms, each of Word's patterns
in tests/word_patterns.py, stripped controls, added action rows, hostile files), the fast
path either declines or gives the same answers, the same notes and the same refusal.
"""

from __future__ import annotations

import random

import pytest
from hostile_files import bookmark_bomb
from lxml import etree
from word_patterns import PATTERNS, W, _rewrite, box, run, set_content, xml

from formtool.definitions import FormDefinition, get_form
from formtool.definitions.layout import layout
from formtool.demo.fill import add_action_row, fill_docx, strip_controls
from formtool.errors import Rejected
from formtool.generate import render
from formtool.read import docx as docx_reader
from formtool.read import read_bytes
from formtool.read.notes import Note
from formtool.read.plainscan import plain_scan

from conftest import answers_for, make_cases

FORMS = ("csc", "quality_practice")  # quality_practice: a judgement and comment share a cell
#: Patterns that put something in the body the fast path must leave to the walk, whole.
DECLINED = {
    "tracked-changes",
    "deleted-paragraph-mark",
    "deleted-row",
    "alternate-runs",
    "box-in-text-box",
    "text-box-beside",
    "nested-table",
    "symbols",
    "typed-below",
}


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> dict[str, tuple[FormDefinition, bytes]]:
    root = tmp_path_factory.mktemp("fast")
    made = {}
    for form_id in FORMS:
        form = get_form(form_id)
        case = make_cases(root, form, 1)[0]
        made[form_id] = (form, fill_docx(render(form, case, "docx"), answers_for(form)))
    return made


def _read(body: etree._Element, form: FormDefinition, full: bool) -> object:
    """What reading the body gives: (answers in order, method, notes), or the refusal."""
    notes: list[Note] = []
    try:
        values, method = docx_reader.read_values(body, form, notes, full=full)
    except Rejected as refused:
        return ("refused", refused.code, refused.field, refused.value)
    return list(values.items()), method, notes


def _same(data: bytes, form: FormDefinition) -> bool:
    """The fast path gives what the walk gives; says whether it was taken (rather than
    declining the body)."""
    _, body = docx_reader.open_docx(data)
    assert _read(body, form, full=False) == _read(body, form, full=True)
    actions = docx_reader._action_keys(form)
    reading = {k for k in layout(form).positions if k not in actions}
    return plain_scan(body, docx_reader._bookmark_keys(form), reading, 2, 5_000) is not None


def _key(form: FormDefinition, pattern: str) -> str | None:
    """The first answer a pattern applies to (one per form keeps the test fast)."""
    return next((k for k in layout(form).positions if PATTERNS[pattern].applies(form, k)), None)


@pytest.mark.parametrize("form_id", FORMS)
def test_a_filled_return_is_read_by_the_fast_path_as_by_the_walk(filled, form_id):
    form, data = filled[form_id]
    assert _same(data, form)
    assert read_bytes(data, ".docx").method == "bookmarks"


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_every_word_pattern_is_declined_or_read_the_same(filled, pattern):
    taken = []
    for form_id in FORMS:
        form, data = filled[form_id]
        key = _key(form, pattern)
        if key is not None:
            taken.append(_same(PATTERNS[pattern].build(data, form, key).data, form))
    assert taken, f"{pattern} applies to no answer of {FORMS}"
    if pattern in DECLINED:
        assert not any(taken), f"{pattern} must go down the full walk"


def test_stripped_controls_added_rows_and_a_bookmark_bomb_read_the_same(filled):
    form, data = filled["csc"]
    stripped = strip_controls(data)
    assert not _same(stripped, form)  # no boxes: read by the table layout, by the walk
    added = add_action_row(data, "next_steps.actions", {"action": "Ring the school"})
    assert _same(added, form)
    _same(bookmark_bomb(data, form), form)


def test_runs_split_and_spaces_beside_the_boxes_are_read_fast_and_the_same(filled):
    """Word splits an answer into runs where it likes, and a space typed beside a box shows
    nothing: the fast path reads those returns, as the walk does."""
    rng = random.Random(24)
    for form_id in FORMS:
        form, data = filled[form_id]

        def split(root: etree._Element) -> None:
            boxes = [c for c in root.iter(f"{W}sdt") if c.find(f"{W}sdtContent/{W}r") is not None]
            for control in rng.sample(boxes, 12):
                content = control.find(f"{W}sdtContent")
                assert content is not None
                text = "".join(t.text or "" for t in content.iter(f"{W}t"))
                cuts = sorted(rng.sample(range(len(text) + 1), min(3, len(text) + 1)))
                pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
                set_content(control, *(run(p) for p in pieces if p))
                control.addnext(xml(run(" ")))  # a space typed beside the box

        assert _same(_rewrite(data, split), form), form_id


def test_an_answer_over_the_cap_is_read_as_the_walk_reads_it(filled):
    """A cell holding more than an answer may is left to the walk's own reading of it."""
    form, data = filled["csc"]
    key = _key(form, "symbols")  # a text answer
    assert key is not None

    def lengthen(root: etree._Element) -> None:
        set_content(box(root, key)[1], run("x" * 60_000))

    assert _same(_rewrite(data, lengthen), form)
