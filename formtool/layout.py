"""The printed shape of a form, shared by the Word and Excel generators and by the readers.

A form is laid out once as a list of blocks (headings, guidance, tables of cells) on an
8-column grid. generate/ renders the blocks; read/ uses the same table positions to find
answers when a return has lost its content controls and bookmarks (e.g. via Google Docs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from formtool.definitions import Field, FormDefinition, Item, Section

GRID = 8  # columns in the Excel sheet; Word tables use the same proportions

QUESTION_SPANS = (3, 1, 4)  # question | answer | evidence
FACT_SPANS = (2, 2, 2, 2)  # label | value | label | value
SCALE_SPANS = (2, 6)  # grade | descriptor


@dataclass(frozen=True)
class Cell:
    kind: str  # "label", "heading" (column header), "answer", "fact", "blank"
    text: str = ""
    span: int = 1
    field: Field | None = None
    guidance: tuple[str, ...] = ()
    fact: str = ""  # header column, for kind == "fact"


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


@dataclass(frozen=True)
class Layout:
    blocks: tuple[Block, ...]
    positions: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """key -> (table index, row index, cell index) among the table blocks."""

    @property
    def tables(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "table"]


def _spans_for(count: int) -> tuple[int, ...]:
    base, extra = divmod(GRID, count)
    return tuple(base + (1 if i < extra else 0) for i in range(count))


def _header_rows(form: FormDefinition) -> list[Row]:
    rows = []
    facts = list(form.header)
    for i in range(0, len(facts), 2):
        cells: list[Cell] = []
        for fact in facts[i : i + 2]:
            cells.append(Cell("label", fact.label, FACT_SPANS[0]))
            cells.append(Cell("fact", span=FACT_SPANS[1], fact=fact.column))
        if len(cells) == 2:
            cells.append(Cell("blank", span=GRID - sum(c.span for c in cells)))
        rows.append(Row(tuple(cells)))
    return rows


def _item_row(section: Section, item: Item) -> Row:
    label = f"{item.number}. {item.label}" if item.number else item.label
    if item.kind == "question":
        fields = item.fields()
        evidence = (
            Cell("answer", span=QUESTION_SPANS[2], field=fields[1])
            if item.evidence
            else Cell("blank", span=QUESTION_SPANS[2])
        )
        return Row(
            (
                Cell("label", label, QUESTION_SPANS[0], guidance=item.guidance),
                Cell("answer", span=QUESTION_SPANS[1], field=fields[0]),
                evidence,
            )
        )
    field_ = item.fields()[0]
    if item.kind == "text":
        return Row(
            (
                Cell("label", label, QUESTION_SPANS[0], guidance=item.guidance),
                Cell("answer", span=GRID - QUESTION_SPANS[0], field=field_),
            )
        )
    return Row(
        (
            Cell("label", label, QUESTION_SPANS[0], guidance=item.guidance),
            Cell("answer", span=QUESTION_SPANS[1], field=field_),
            Cell("blank", span=QUESTION_SPANS[2]),
        )
    )


def _section_blocks(section: Section) -> list[Block]:
    blocks = [Block("heading", section.title)]
    if section.guidance:
        blocks.append(Block("guidance", lines=section.guidance))
    for indicators in section.indicators:
        blocks.append(Block("subheading", indicators.title))
        blocks.append(Block("guidance", lines=indicators.good))
        if indicators.outstanding:
            blocks.append(Block("subheading", "Moving to outstanding"))
            blocks.append(Block("guidance", lines=indicators.outstanding))
    pending: list[Row] = []

    def flush() -> None:
        if not pending:
            return
        head = []
        if section.questions:
            head = [
                Row(
                    (
                        Cell("heading", section.question_label, QUESTION_SPANS[0]),
                        Cell("heading", section.answer_label, QUESTION_SPANS[1]),
                        Cell("heading", section.evidence_label, QUESTION_SPANS[2]),
                    ),
                    True,
                )
            ]
        blocks.append(Block("table", rows=tuple(head + pending), name=section.id))
        pending.clear()

    for item in section.items:
        if item.kind != "table":
            pending.append(_item_row(section, item))
            continue
        flush()
        spans = _spans_for(len(item.columns))
        head = Row(
            tuple(Cell("heading", c.label, s) for c, s in zip(item.columns, spans, strict=True)),
            True,
        )
        body = [
            Row(
                tuple(
                    Cell("answer", span=s, field=Field(item.cell_key(r, c), c.label, c.kind))
                    for c, s in zip(item.columns, spans, strict=True)
                )
            )
            for r in range(1, item.rows + 1)
        ]
        blocks.append(Block("subheading", item.label))
        blocks.append(Block("table", rows=(head, *body), name=item.key, repeating=True))
    flush()
    return blocks


@cache
def layout(form: FormDefinition) -> Layout:
    blocks: list[Block] = [
        Block("title", form.title),
        Block("identity"),
        Block("table", rows=tuple(_header_rows(form)), name="header"),
    ]
    grades = next((i.scale for _, i in form.items() if i.scale and i.scale.descriptors), None)
    if grades:
        blocks.append(Block("subheading", "Grading of audits: judgements and what they mean"))
        rows = [
            Row(
                (
                    Cell("heading", "Judgement", SCALE_SPANS[0]),
                    Cell("heading", "Outcomes for children", SCALE_SPANS[1]),
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
    for section in form.sections:
        blocks.extend(_section_blocks(section))
    return Layout(tuple(blocks), _positions(blocks))


def _positions(blocks: list[Block]) -> dict[str, tuple[int, int, int]]:
    positions: dict[str, tuple[int, int, int]] = {}
    tables = [b for b in blocks if b.kind == "table"]
    for t, table in enumerate(tables):
        for r, row in enumerate(table.rows):
            for c, cell in enumerate(row.cells):
                if cell.field is not None:
                    positions[cell.field.key] = (t, r, c)
                elif cell.kind == "fact":
                    positions[f"header.{cell.fact}"] = (t, r, c)
    return positions
