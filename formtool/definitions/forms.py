"""Audit tool definitions: YAML -> frozen dataclasses, checked first.

A definition is data only, and so is its vocabulary: which answers are favourable, which
grades are good, which item is the overall grade, which sections are judged domains, what
each action column holds. Stable keys are built here and nowhere else: `<section>.<item>`,
`<section>.<item>.evidence`, `<section>.<item>.comment`, `<section>.<table>.<row>.<column>`,
`header.<column>`.

Which folders definitions are read from, and the one cache of them, is catalog.py's. Every
definition also has a snapshot: its resolved data as canonical JSON, which the store keeps for
every version that generated forms, so old forms stay readable after a definition changes (see
`from_snapshot`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from formtool.definitions.scales import FieldKind, Scale, parse_date

COMMON_FILE = "_common.yaml"
ITEM_KINDS = ("question", "choice", "text", "date", "table")
#: What an action-table column holds, so the store and the packs need no column names.
ACTION_ROLES = (
    "recommendation",
    "action",
    "responsible_role",
    "responsible_person",
    "due_date",
    "sign_off",
    "sign_off_date",
    "comments",
)
#: The heading of the grade descriptors table (seed 001 Appendix A para 16 prints the grades
#: under "Judgement | Outcomes for Children" but gives the table no title): formtool's words.
DESCRIPTORS_TITLE = "Grading of audits: judgements and what they mean"
DESCRIPTORS_WHY = (
    "formtool prints the grades and what they mean (seed 001 Appendix A para 16) before the "
    "questions, so the auditor grades against them"
)
#: A placeholder in a header group heading: `{column}`, or `{column:years}` for the age in
#: years on the day the form is made, from a date column ("Details of Caf Test, 8 years").
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)(?::(years))?\}")
#: A part of a group heading printed only when every fact it names has a value:
#: "Details of {given_names} {family_name}[, {dob:years} years]".
OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
MIN_ACTION_ROWS = 10  # every action table offers at least this many rows (Word adds more)
ROLES = ("preparer", "auditor")  # who fills a field in a two-stage tool
PREPARED, AUDIT = "prepared", "audit"  # the two stages of a two-stage tool's return


@dataclass(frozen=True)
class Column:
    id: str
    label: str
    kind: FieldKind
    role: str = "comments"  # one of ACTION_ROLES


@dataclass(frozen=True)
class Field:
    """One answerable place in a form: what the reader looks for and the validator checks."""

    key: str
    label: str
    kind: FieldKind
    scale: Scale | None = None
    required: bool = False
    role: str = ""  # "", preparer or auditor
    hint: str = ""  # the short placeholder an empty Word control shows

    def placeholders(self) -> tuple[str, ...]:
        """Text an empty control of this field may show (besides its kind's default)."""
        return (self.hint,) if self.hint else ()


@dataclass(frozen=True)
class Item:
    kind: str  # one of ITEM_KINDS
    id: str
    key: str
    label: str
    number: str = ""
    scale: Scale | None = None
    evidence: bool = False
    required: bool = False
    guidance: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    rows: int = 0
    role: str = ""
    evidence_role: str = ""
    comment: bool = False  # a comment box for the judge under the answer (seed 000)
    favourable: str | None = None  # overrides the scale's: a choice, or "" for neutral
    finding: tuple[str, str] = ("", "")  # phrases for the favourable / unfavourable answer
    addition: str = ""  # why formtool added it to the paper tool ("" = on the paper tool)
    evidence_label: str = ""
    comment_label: str = ""
    hint: str = ""
    scale_addition: str = ""  # why formtool offers a scale where the paper tool names none

    @property
    def evidence_key(self) -> str:
        return f"{self.key}.evidence"

    @property
    def comment_key(self) -> str:
        return f"{self.key}.comment"

    def cell_key(self, row: int, column: Column) -> str:
        return f"{self.key}.{row}.{column.id}"

    def cell_field(self, row: int, column: Column) -> Field:
        """One cell of an action table (rows past `rows` are ones an auditor added)."""
        return Field(self.cell_key(row, column), column.label, column.kind, role=self.role)

    def fields(self) -> list[Field]:
        if self.kind == "table":
            return [self.cell_field(r, c) for r in range(1, self.rows + 1) for c in self.columns]
        if self.kind in ("question", "choice"):
            out = [
                Field(self.key, self.label, FieldKind.choice, self.scale, self.required, self.role)
            ]
            if self.evidence:
                out.append(
                    Field(
                        self.evidence_key,
                        self.evidence_label or f"{self.label} (evidence)",
                        FieldKind.text,
                        role=self.evidence_role,
                        hint="Evidence",
                    )
                )
            if self.comment:
                out.append(
                    Field(
                        self.comment_key,
                        self.comment_label or f"{self.label} (comment)",
                        FieldKind.text,
                        role=self.role,
                        hint="Comment",
                    )
                )
            return out
        return [
            Field(
                self.key,
                self.label,
                FieldKind(self.kind),
                None,
                self.required,
                self.role,
                self.hint,
            )
        ]

    def outcome(self, value: str) -> str | None:
        """favourable / partial / unfavourable for this question's answer, or None.

        The scale says what its answers mean; a question may name its own favourable
        answer ("Is there evidence of drift and delay?" is favourable when No) or none.
        """
        if self.scale is None or self.favourable == "":
            return None
        if self.favourable is None:
            return self.scale.outcome(value)
        if value == self.favourable:
            return "favourable"
        if value in self.scale.partial:
            return "partial"
        scored = (*self.scale.favourable, *self.scale.unfavourable)
        return "unfavourable" if value in scored else None


@dataclass(frozen=True)
class Indicators:
    """A "what does good look like" block (seed 003), shown to auditors as guidance."""

    title: str
    good: tuple[str, ...]
    outstanding: tuple[str, ...] = ()
    outstanding_title: str = "Moving towards outstanding"


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    items: tuple[Item, ...]
    guidance: tuple[str, ...] = ()
    indicators: tuple[Indicators, ...] = ()
    question_label: str = "Question"
    answer_label: str = ""
    evidence_label: str = ""
    stage_label: str = ""
    cells: tuple[str, ...] = ("question", "answer", "evidence")
    judgement: str = ""  # id of the item that judges this section as a domain
    short_title: str = ""  # for charts and narrow tables, e.g. "KSS 1"
    addition: str = ""
    joins_previous: bool = False  # printed in the previous section's table (no heading)
    title_addition: str = ""  # why formtool prints a heading the paper tool does not have
    part: str = ""  # a heading printed above this section ("Case File Audit Questions")

    @property
    def questions(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.kind == "question")

    @property
    def judgement_key(self) -> str:
        return f"{self.id}.{self.judgement}" if self.judgement else ""

    @property
    def label(self) -> str:
        return self.short_title or self.title


@dataclass(frozen=True)
class HeaderField:
    """A pre-filled fact, taken from the case list column of the same name (or, with
    `sources`, from several columns joined by a space: "Name of user")."""

    column: str
    label: str
    required: bool = False
    kind: FieldKind = FieldKind.text
    addition: str = ""
    sources: tuple[str, ...] = ()
    group: str = ""  # a group heading printed before this fact, as on paper (may name facts)
    group_addition: str = ""  # why formtool prints that heading, if the paper tool does not

    @property
    def columns(self) -> tuple[str, ...]:
        """The case-list columns this fact is made of."""
        return self.sources or (self.column,)

    @property
    def key(self) -> str:
        return f"header.{self.column}"


@dataclass(frozen=True)
class Judgements:
    """Which answers are the audit's overall judgements (keys), and what marks it final; also
    the urgent-concern question every shipped tool asks first (a Yes/No choice)."""

    grade: str = ""
    moderated_grade: str = ""
    status: str = ""
    final: str = ""  # the status answer meaning the return is complete
    completed_by: str = ""
    completed_on: str = ""
    concern: str = ""  # the Yes/No "immediate concern for the child's safety?" ("" = not asked)


@dataclass(frozen=True)
class GuidanceBlock:
    """Guidance for auditors printed before the sections (e.g. seed 003's "Good practice in
    auditing")."""

    title: str
    lines: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class FormDefinition:
    id: str
    version: int
    title: str
    subject: str
    source: str
    header: tuple[HeaderField, ...]
    sections: tuple[Section, ...]
    judgements: Judgements = Judgements()
    short_name: str = ""  # how reports name the tool, e.g. "CSC"
    guidance: tuple[GuidanceBlock, ...] = ()
    path: str = field(default="", compare=False)
    snapshot: str = field(default="", compare=False, repr=False)  # resolved data as JSON

    def __hash__(self) -> int:
        """By identity and content (the snapshot string caches its own hash): the default
        would hash the whole tree of sections and items on every cached lookup."""
        return hash((self.id, self.version, self.snapshot))

    def items(self) -> Iterator[tuple[Section, Item]]:
        for section in self.sections:
            for item in section.items:
                yield section, item

    def fields(self) -> list[Field]:
        return [f for _, item in self.items() for f in item.fields()]

    def questions(self) -> list[Item]:
        return [item for _, item in self.items() if item.kind == "question"]

    def tables(self) -> list[Item]:
        return [item for _, item in self.items() if item.kind == "table"]

    def table_titles(self) -> dict[str, str]:
        """Each table's name as people say it: its label, or its section's title where two
        tables share a label (the CSC's two "Actions" tables)."""
        found = [(section, item) for section, item in self.items() if item.kind == "table"]
        labels = [item.label for _, item in found]
        return {
            item.key: item.label if labels.count(item.label) == 1 else section.title
            for section, item in found
        }

    def domains(self) -> list[Section]:
        """Sections judged as a whole (e.g. each KSS: met / partially met / not met)."""
        return [s for s in self.sections if s.judgement]

    def item(self, key: str) -> Item | None:
        return _item_index(self).get(key)

    def concern_texts(self) -> tuple[Item, ...]:
        """The texts beside the urgent-concern question, in order: what the concern is, then
        who was told and when (the other text items of its section; () if it is not asked)."""
        section = next(
            (s for s in self.sections if any(i.key == self.judgements.concern for i in s.items)),
            None,
        )
        return tuple(i for i in section.items if i.kind == "text") if section else ()

    @property
    def name(self) -> str:
        return self.short_name or self.title

    @property
    def two_stage(self) -> bool:
        """Prepared by one person and judged by another (seed 000): fields carry roles."""
        return any(f.role for f in self.fields())

    @cached_property  # asked for once per audit in a year's figures
    def grade_scale(self) -> Scale | None:
        item = self.item(self.judgements.grade)
        return item.scale if item is not None else None

    @property
    def digest(self) -> str:
        """A hash of the resolved definition: equal digests, same form."""
        return _digest(self.snapshot)

    def field(self, key: str) -> Field:
        found = self.field_or_none(key)
        if found is None:
            raise KeyError(key)
        return found

    def field_or_none(self, key: str) -> Field | None:
        """The field with this key, including rows an auditor added to an action table."""
        found = _field_index(self).get(key)
        if found is not None:
            return found
        table_key, _, rest = key.rpartition(".")
        table_key, _, row = table_key.rpartition(".")
        for table in self.tables():
            if table.key == table_key and row.isdigit():
                column = next((c for c in table.columns if c.id == rest), None)
                if column is not None:
                    return table.cell_field(int(row), column)
        return None

    @property
    def required_columns(self) -> list[str]:
        return [c for h in self.header if h.required for c in h.columns]

    def additions(self) -> list[tuple[str, str]]:
        """(what, why) for everything formtool added to the paper tool: facts, sections and
        items, and headings and scales on paper items that the paper tool does not print."""
        found = [
            (f"header group: {h.group}", h.group_addition) for h in self.header if h.group_addition
        ]
        found += [(f"header: {h.label}", h.addition) for h in self.header if h.addition]
        if self.descriptors_scale is not None:
            found.append((f"heading: {DESCRIPTORS_TITLE}", DESCRIPTORS_WHY))
        for section in self.sections:
            if section.addition:
                found.append((f"section: {section.title}", section.addition))
            elif section.title_addition:
                found.append((f"heading: {section.title}", section.title_addition))
            found += [(f"{section.id}: {i.label}", i.addition) for i in section.items if i.addition]
            found += [
                (f"scale: {i.key} ({i.scale.label if i.scale else ''})", i.scale_addition)
                for i in section.items
                if i.scale_addition
            ]
        return found

    @property
    def descriptors_scale(self) -> Scale | None:
        """The first scale with descriptors (the 5-point grade): printed as a table."""
        return next((i.scale for _, i in self.items() if i.scale and i.scale.descriptors), None)

    def header_groups(self) -> list[tuple[str, tuple[HeaderField, ...]]]:
        """The header's facts in their printed groups: (group heading, facts); a header
        without `group` headings is one group headed "" (printed as one grid)."""
        groups: list[tuple[str, list[HeaderField]]] = []
        for fact in self.header:
            if fact.group or not groups:
                groups.append((fact.group, []))
            groups[-1][1].append(fact)
        return [(heading, tuple(facts)) for heading, facts in groups]


def heading_text(template: str, value: Callable[[str, str], str]) -> str:
    """A group heading with each placeholder replaced by `value(column, "")`, or by
    `value(column, "years")` for `{column:years}`; a part in [brackets] is left out when a
    placeholder in it has no value."""

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: value(m[1], m[2] or ""), text)

    def part(found: re.Match[str]) -> str:
        named = PLACEHOLDER.findall(found[1])
        return fill(found[1]) if all(value(c, how) for c, how in named) else ""

    return fill(OPTIONAL.sub(part, template))


def case_heading(template: str, facts: Mapping[str, str], today: dt.date) -> str:
    """A group heading as printed for one case: `facts` by column, as printed."""
    return heading_text(
        template,
        lambda column, how: (
            years_of(facts.get(column, ""), today) if how == "years" else facts.get(column, "")
        ),
    )


def years_of(printed: str, today: dt.date) -> str:
    """Whole years from a printed dd/mm/yyyy date to `today` ("" if it is not a date)."""
    born = parse_date(printed)
    if born is None:
        return ""
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return str(years) if years >= 0 else ""


#: Finds the definition a return names (form id, version): current, or a stored snapshot.
FormResolver = Callable[[str, int], FormDefinition]


@cache
def _digest(snapshot: str) -> str:
    return hashlib.sha256(snapshot.encode("utf-8")).hexdigest()


@cache
def _field_index(form: FormDefinition) -> dict[str, Field]:
    return {f.key: f for f in form.fields()}


@cache
def _item_index(form: FormDefinition) -> dict[str, Item]:
    return {item.key: item for _, item in form.items()}


# --- building from resolved data ----------------------------------------------------------


def _scale(sid: str, raw: dict[str, Any]) -> Scale:
    return Scale(
        sid,
        raw["label"],
        tuple(raw["choices"]),
        dict(raw.get("descriptors", {})),
        tuple(raw.get("favourable", ())),
        tuple(raw.get("partial", ())),
        tuple(raw.get("unfavourable", ())),
        bool(raw.get("ranked", False)),
        tuple(raw.get("bands", {}).items()),
        tuple(raw.get("follow_up", ())),
    )


def _item(raw: dict[str, Any], section: dict[str, Any], scales: dict[str, Scale]) -> Item:
    kind = next(k for k in ITEM_KINDS if k in raw)
    role = raw.get("role", section.get("role", ""))
    scale_id = raw.get("scale", section.get("scale"))
    favourable = raw.get("favourable")
    finding = raw.get("finding", {})
    return Item(
        kind=kind,
        id=raw[kind],
        key=f"{section['id']}.{raw[kind]}",
        label=raw["label"],
        number=str(raw.get("number", "")),
        scale=scales[scale_id] if kind in ("question", "choice") and scale_id else None,
        evidence=raw.get("evidence", kind == "question"),
        required=raw.get("required", kind in ("question", "choice")),
        guidance=tuple(raw.get("guidance", ())),
        columns=tuple(
            Column(c["id"], c["label"], FieldKind(c["type"]), c.get("role", "comments"))
            for c in raw.get("columns", ())
        ),
        rows=max(raw.get("rows", MIN_ACTION_ROWS), MIN_ACTION_ROWS) if kind == "table" else 0,
        role=role,
        evidence_role=raw.get("evidence_role", section.get("evidence_role", role)),
        comment=raw.get("comment", False),
        favourable="" if favourable == "none" else favourable,
        finding=(finding.get("favourable", ""), finding.get("unfavourable", "")),
        addition=raw.get("addition", ""),
        evidence_label=raw.get("evidence_label", ""),
        comment_label=raw.get("comment_label", ""),
        hint=raw.get("hint", ""),
        scale_addition=raw.get("scale_addition", ""),
    )


def _section(raw: dict[str, Any], scales: dict[str, Scale]) -> Section:
    indicators = tuple(
        Indicators(
            i["title"],
            tuple(i["good"]),
            tuple(i.get("outstanding", ())),
            i.get("outstanding_title", "Moving towards outstanding"),
        )
        for i in raw.get("good_looks_like", ())
    )
    return Section(
        raw["id"],
        raw["title"],
        tuple(_item(i, raw, scales) for i in raw["items"]),
        tuple(raw.get("guidance", ())),
        indicators,
        raw.get("question_label", "Question"),
        raw.get("answer_label", ""),
        raw.get("evidence_label", ""),
        raw.get("stage_label", ""),
        tuple(raw.get("cells", ("question", "answer", "evidence"))),
        raw.get("judgement", ""),
        raw.get("short_title", ""),
        raw.get("addition", ""),
        raw.get("joins_previous", False),
        raw.get("title_addition", ""),
        raw.get("part", ""),
    )


def build(data: dict[str, Any], path: str = "") -> FormDefinition:
    """A definition from resolved data (scales and column sets already inlined)."""
    scales = {sid: _scale(sid, s) for sid, s in data.get("scales", {}).items()}
    header = tuple(
        HeaderField(
            h["column"],
            h["label"],
            h.get("required", False),
            FieldKind(h.get("type", "text")),
            h.get("addition", ""),
            tuple(h.get("from", ())),
            h.get("group", ""),
            h.get("group_addition", ""),
        )
        for h in data["header"]
    )
    judgements = Judgements(**data.get("judgements", {}))
    return FormDefinition(
        data["id"],
        data["version"],
        data["title"],
        data["subject"],
        data["source"],
        header,
        tuple(_section(s, scales) for s in data["sections"]),
        judgements,
        data.get("short_name", ""),
        tuple(
            GuidanceBlock(g["title"], tuple(g["lines"]), g.get("source", ""))
            for g in data.get("guidance", ())
        ),
        path,
        json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
    )


def from_snapshot(snapshot: str) -> FormDefinition:
    """A definition as it was when it generated forms (kept in the store)."""
    return build(json.loads(snapshot), "(stored snapshot)")
