"""The printed shape of a form, shared by the Word and Excel generators and by the readers.

A form is laid out once as a list of blocks (headings, guidance, tables of cells) on an
8-column grid. generate/ renders the blocks; read/ uses the same table positions to find
answers when a return has lost its content controls and bookmarks (e.g. via Google Docs).

A section's question rows follow its `cells` (seed 000's checklist: stage | criteria |
evidence | judgement); the stage cell shows the section's title merged down its rows, and a
section that `joins_previous` continues the previous section's table. Every row fills the
grid: an answer without an evidence box takes the evidence's width, so no cell is dead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from formtool.definitions import Field, FormDefinition, Item, Section
from formtool.definitions.forms import DESCRIPTORS_TITLE, HeaderField

GRID = 8  # columns in the Excel sheet; Word tables use the same proportions
FACT_SPANS = (2, 2, 2, 2)  # label | value | label | value
SCALE_SPANS = (2, 6)  # grade | descriptor
WIDE_TABLE = 6  # action tables with this many columns print on a landscape page (Word)


@dataclass(frozen=True)
class Cell:
    kind: str  # "label", "heading" (column header), "answer", "fact", "stage", "group"
    text: str = ""  # "group": a header group heading, its placeholders filled per case
    span: int = 1
    fields: tuple[Field, ...] = ()  # answer cells: the answer, and the judge's comment if any
    guidance: tuple[str, ...] = ()
    fact: str = ""  # header column, for kind == "fact"
    down: int = 1  # stage cells: rows merged downwards; 0 continues the cell above

    @property
    def field(self) -> Field | None:
        return self.fields[0] if self.fields else None


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    header: bool = False  # repeat on every printed page


@dataclass(frozen=True)
class Block:
    kind: str  # "title", "identity", "heading", "subheading", "guidance", "table"
    text: str = ""
    lines: tuple[str, ...] = ()
    rows: tuple[Row, ...] = ()
    name: str = ""  # tables: what the table holds, e.g. "kss1", "next_steps.actions"
    repeating: bool = False  # action tables: auditors may add rows (Word repeating section)
    wide: bool = False  # many columns: printed on a landscape page in Word


@dataclass(frozen=True)
class Layout:
    blocks: tuple[Block, ...]
    positions: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """key -> (table index, row index, cell index, field index within the cell)."""

    @property
    def tables(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "table"]


def spans_for(count: int) -> tuple[int, ...]:
    base, extra = divmod(GRID, count)
    return tuple(base + (1 if i < extra else 0) for i in range(count))


def cell_spans(cells: tuple[str, ...]) -> dict[str, int]:
    """How many grid columns each cell of a question row takes."""
    spans = {"stage": 1 if "stage" in cells else 0, "question": 3}
    left = GRID - spans["stage"] - spans["question"]
    if "evidence" in cells:
        spans["answer"] = 2 if "stage" in cells else 1
        spans["evidence"] = left - spans["answer"]
    else:
        spans["answer"] = left
    return spans


def _header_rows(form: FormDefinition) -> list[Row]:
    """The header's facts two a row, each group of the paper header under its heading and
    never paired with a fact of another group."""
    rows = []
    for heading, facts in form.header_groups():
        if heading:
            rows.append(Row((Cell("group", heading, GRID),)))
        rows += _fact_rows(list(facts))
    return rows


def _fact_rows(facts: list[HeaderField]) -> list[Row]:
    rows = []
    for i in range(0, len(facts), 2):
        cells: list[Cell] = []
        pair = facts[i : i + 2]
        for fact in pair:
            span = FACT_SPANS[1] if len(pair) == 2 else GRID - FACT_SPANS[0]
            cells.append(Cell("label", fact.label, FACT_SPANS[0]))
            cells.append(Cell("fact", span=span, fact=fact.column))
        rows.append(Row(tuple(cells)))
    return rows


def _label(item: Item) -> str:
    return f"{item.number}. {item.label}" if item.number else item.label


def _question_row(section: Section, item: Item, stage: Cell | None) -> Row:
    spans = cell_spans(section.cells)
    fields = item.fields()
    answer = tuple(f for f in fields if f.key != item.evidence_key)
    cells = []
    for name in section.cells:
        if name == "stage" and stage is not None:
            cells.append(stage)
        elif name == "question":
            cells.append(Cell("label", _label(item), spans["question"], guidance=item.guidance))
        elif name == "answer":
            width = spans["answer"] + (0 if item.evidence else spans.get("evidence", 0))
            cells.append(Cell("answer", span=width, fields=answer))
        elif name == "evidence" and item.evidence:
            evidence = next(f for f in fields if f.key == item.evidence_key)
            cells.append(Cell("answer", span=spans["evidence"], fields=(evidence,)))
    return Row(tuple(cells))


def _item_row(section: Section, item: Item, stage: Cell | None) -> Row:
    """A choice, text or date item: its label, and the answer across the rest of the row."""
    spans = cell_spans(section.cells)
    lead = [stage] if stage is not None else []
    used = sum(c.span for c in lead) + spans["question"]
    return Row(
        (
            *lead,
            Cell("label", _label(item), spans["question"], guidance=item.guidance),
            Cell("answer", span=GRID - used, fields=tuple(item.fields())),
        )
    )


def _stage_cells(section: Section, count: int) -> list[Cell | None]:
    if "stage" not in section.cells or not count:
        return [None] * count
    span = cell_spans(section.cells)["stage"]
    return [
        Cell("stage", section.title, span, down=count),
        *[Cell("stage", span=span, down=0)] * (count - 1),
    ]


def _column_heads(section: Section) -> Row:
    spans = cell_spans(section.cells)
    labels = {
        "stage": section.stage_label,
        "question": section.question_label,
        "answer": section.answer_label,
        "evidence": section.evidence_label,
    }
    if not section.questions:  # labelled items only: each label beside its answer
        return Row(
            (
                Cell("heading", section.question_label, spans["question"]),
                Cell("heading", section.answer_label, GRID - spans["question"]),
            ),
            True,
        )
    return Row(tuple(Cell("heading", labels[c], spans[c]) for c in section.cells), True)


def _action_table(item: Item, headed: bool = False) -> list[Block]:
    """An action table under its label; `headed`: the heading just printed already says the
    label ("Next Steps/Recommendations, including Action/Responsible Person and Timescales"
    over the Next Steps/Recommendations table), so it is not printed twice."""
    spans = spans_for(len(item.columns))
    head = Row(
        tuple(Cell("heading", c.label, s) for c, s in zip(item.columns, spans, strict=True)), True
    )
    body = [
        Row(
            tuple(
                Cell("answer", span=s, fields=(item.cell_field(r, c),))
                for c, s in zip(item.columns, spans, strict=True)
            )
        )
        for r in range(1, item.rows + 1)
    ]
    return [
        *([] if headed else [Block("subheading", item.label)]),
        Block(
            "table",
            rows=(head, *body),
            name=item.key,
            repeating=True,
            wide=len(item.columns) >= WIDE_TABLE,
        ),
    ]


def _section_blocks(section: Section, blocks: list[Block]) -> None:
    joined = bool(section.joins_previous and blocks and blocks[-1].kind == "table")
    if section.part:
        blocks.append(Block("heading", section.part))
    if not joined:
        if "stage" not in section.cells:  # a stage column shows the title beside its rows
            blocks.append(Block("heading", section.title))
        if section.guidance:
            blocks.append(Block("guidance", lines=section.guidance))
        for indicators in section.indicators:
            blocks.append(Block("subheading", indicators.title))
            blocks.append(Block("guidance", lines=indicators.good))
            if indicators.outstanding:
                blocks.append(Block("subheading", indicators.outstanding_title))
                blocks.append(Block("guidance", lines=indicators.outstanding))
    pending: list[Item] = []

    def flush(join: bool) -> None:
        if not pending:
            return
        stages = _stage_cells(section, len(pending))
        rows = [
            (_question_row if i.kind == "question" else _item_row)(section, i, s)
            for i, s in zip(pending, stages, strict=True)
        ]
        if join:
            last = blocks.pop()
            blocks.append(Block("table", rows=(*last.rows, *rows), name=last.name))
        else:
            head = [_column_heads(section)] if section.questions or section.answer_label else []
            blocks.append(Block("table", rows=(*head, *rows), name=section.id))
        pending.clear()

    # the section's title is the last heading printed before its first item
    titled = not joined and "stage" not in section.cells and not section.indicators
    first = True
    for item in section.items:
        if item.kind != "table":
            pending.append(item)
            continue
        headed = first and not pending and titled and _says(section.title, item.label)
        flush(joined and first)
        first = False
        blocks.extend(_action_table(item, headed))
    flush(bool(joined) and first)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _says(heading: str, label: str) -> bool:
    """Whether `heading` begins with `label`, ignoring case, spacing and punctuation."""
    return _words(heading)[: len(_words(label))] == _words(label)


@cache
def layout(form: FormDefinition) -> Layout:
    blocks: list[Block] = [
        Block("title", form.title),
        Block("identity"),
        Block("table", rows=tuple(_header_rows(form)), name="header"),
    ]
    grades = form.descriptors_scale
    if grades:
        blocks.append(Block("subheading", DESCRIPTORS_TITLE))
        rows = [
            Row(
                (
                    Cell("heading", "Judgement", SCALE_SPANS[0]),
                    Cell("heading", "Outcomes for Children", SCALE_SPANS[1]),  # seed 001 App A
                ),
                True,
            )
        ]
        rows += [
            Row(
                (
                    Cell("label", c, SCALE_SPANS[0]),
                    Cell("label", grades.descriptors.get(c, ""), SCALE_SPANS[1]),
                )
            )
            for c in grades.choices
        ]
        blocks.append(Block("table", rows=tuple(rows), name="grades"))
    for guidance in form.guidance:
        blocks.append(Block("subheading", guidance.title))
        blocks.append(Block("guidance", lines=guidance.lines))
    for section in form.sections:
        _section_blocks(section, blocks)
    return Layout(tuple(blocks), _positions(blocks))


def _positions(blocks: list[Block]) -> dict[str, tuple[int, int, int, int]]:
    positions: dict[str, tuple[int, int, int, int]] = {}
    tables = [b for b in blocks if b.kind == "table"]
    for t, table in enumerate(tables):
        for r, row in enumerate(table.rows):
            for c, cell in enumerate(row.cells):
                for i, found in enumerate(cell.fields):
                    positions[found.key] = (t, r, c, i)
                if cell.kind == "fact":
                    positions[f"header.{cell.fact}"] = (t, r, c, 0)
    return positions
