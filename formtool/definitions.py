"""Audit tool definitions: templates/forms/*.yaml -> frozen dataclasses, checked first.

A definition is data only. `check_form` reports every problem with file, line and key;
`load_form` refuses a definition that has any. Stable keys are built here and nowhere
else: `<section>.<item>`, `<section>.<item>.evidence`, `<section>.<table>.<row>.<column>`,
`header.<column>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from formtool.errors import DefinitionError, Issue, IssueCode
from formtool.scales import FieldKind, Scale

COMMON_FILE = "_common.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
ITEM_KINDS = ("question", "choice", "text", "date", "table")


@dataclass(frozen=True)
class Column:
    id: str
    label: str
    kind: FieldKind


@dataclass(frozen=True)
class Field:
    """One answerable place in a form: what the reader looks for and the validator checks."""

    key: str
    label: str
    kind: FieldKind
    scale: Scale | None = None
    required: bool = False


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

    @property
    def evidence_key(self) -> str:
        return f"{self.key}.evidence"

    def cell_key(self, row: int, column: Column) -> str:
        return f"{self.key}.{row}.{column.id}"

    def fields(self) -> list[Field]:
        if self.kind == "table":
            return [
                Field(self.cell_key(r, c), c.label, c.kind)
                for r in range(1, self.rows + 1)
                for c in self.columns
            ]
        if self.kind in ("question", "choice"):
            out = [Field(self.key, self.label, FieldKind.choice, self.scale, self.required)]
            if self.evidence:
                out.append(Field(self.evidence_key, f"{self.label} (evidence)", FieldKind.text))
            return out
        return [Field(self.key, self.label, FieldKind(self.kind), None, self.required)]


@dataclass(frozen=True)
class Indicators:
    """A "what does good look like" block (seed 003), shown to auditors as guidance."""

    title: str
    good: tuple[str, ...]
    outstanding: tuple[str, ...] = ()


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

    @property
    def questions(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.kind == "question")


@dataclass(frozen=True)
class HeaderField:
    """A pre-filled fact, taken from the case list column of the same name."""

    column: str
    label: str
    required: bool = False
    kind: FieldKind = FieldKind.text

    @property
    def key(self) -> str:
        return f"header.{self.column}"


@dataclass(frozen=True)
class FormDefinition:
    id: str
    version: int
    title: str
    subject: str
    source: str
    header: tuple[HeaderField, ...]
    sections: tuple[Section, ...]
    path: str = ""

    def items(self) -> Iterator[tuple[Section, Item]]:
        for section in self.sections:
            for item in section.items:
                yield section, item

    def fields(self) -> list[Field]:
        return [f for _, item in self.items() for f in item.fields()]

    def questions(self) -> list[Item]:
        return [item for _, item in self.items() if item.kind == "question"]

    def field(self, key: str) -> Field:
        for f in self.fields():
            if f.key == key:
                return f
        raise KeyError(key)

    @property
    def required_columns(self) -> list[str]:
        return [h.column for h in self.header if h.required]


# --- loading -------------------------------------------------------------------------


def forms_dir() -> Path:
    """The shipped templates/forms folder (installed as formtool.templates)."""
    return Path(str(resources.files("formtool.templates") / "forms"))


@cache
def _schema() -> dict[str, Any]:
    return json.loads((resources.files("formtool") / "form_schema.json").read_text("utf-8"))


def _compose(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML keeping the line of every node, keyed by its JSON path."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=_LOADER)
    lines: dict[tuple, int] = {}

    def walk(n: yaml.Node, at: tuple) -> None:
        lines[at] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                lines[(*at, k.value)] = k.start_mark.line + 1
                walk(v, (*at, k.value))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*at, i))

    if node is not None:
        walk(node, ())
    return yaml.load(text, Loader=_LOADER), lines


def _line(lines: dict[tuple, int], path: tuple) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _key_at(data: Any, path: tuple) -> str:
    """The stable key (or the nearest id) of the node at path, for messages."""
    parts: list[str] = []
    node = data
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict):
            ident = node.get("id") or next((node[k] for k in ITEM_KINDS if k in node), None)
            if isinstance(ident, str):
                parts.append(ident)
    return ".".join(parts) or ".".join(str(p) for p in path)


@cache
def _common(directory: str) -> dict[str, Any]:
    path = Path(directory) / COMMON_FILE
    if not path.exists():
        return {"scales": {}, "column_sets": {}}
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}


def _scales(raw: dict[str, Any]) -> dict[str, Scale]:
    return {
        sid: Scale(sid, s["label"], tuple(s["choices"]), dict(s.get("descriptors", {})))
        for sid, s in raw.items()
    }


def check_form(path: str | Path) -> list[Issue]:
    """Every problem in one definition file, each with file, line and key."""
    return _checked(Path(path))[0]


def _checked(path: Path) -> tuple[list[Issue], Any]:
    """The problems in a definition file and, when there are none, its data."""
    name = str(path)
    try:
        data, lines = _compose(path)
    except FileNotFoundError:
        return [Issue(IssueCode.schema, name, "", "1", "file not found")], None
    except UnicodeDecodeError:
        return [Issue(IssueCode.schema, name, "", "1", "file is not UTF-8 text")], None
    except yaml.MarkedYAMLError as exc:
        line = str(exc.problem_mark.line + 1) if exc.problem_mark else "1"
        return [Issue(IssueCode.yaml_syntax, name, "", line, str(exc.problem))], None
    validator = jsonschema.Draft202012Validator(_schema())
    issues = [
        Issue(
            IssueCode.schema,
            name,
            _key_at(data, tuple(e.absolute_path)),
            str(_line(lines, tuple(e.absolute_path))),
            _schema_message(e),
        )
        for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    ]
    if issues:
        return issues, data
    return _semantic_issues(data, lines, name, _common(str(path.parent))), data


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return "each item needs exactly one of " + ", ".join(f"'{k}:'" for k in ITEM_KINDS)
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field")
    return error.message


def _semantic_issues(data: dict, lines: dict, name: str, common: dict) -> list[Issue]:
    issues: list[Issue] = []
    scales = {**common.get("scales", {}), **data.get("scales", {})}
    column_sets = common.get("column_sets", {})
    seen: dict[str, int] = {}

    def claim(key: str, at: tuple) -> None:
        if key in seen:
            issues.append(Issue(IssueCode.duplicate_key, name, key, str(_line(lines, at))))
        seen[key] = 1

    for h_index, h in enumerate(data["header"]):
        claim(f"header.{h['column']}", ("header", h_index))
    for s_index, section in enumerate(data["sections"]):
        for i_index, item in enumerate(section["items"]):
            at = ("sections", s_index, "items", i_index)
            kind = next(k for k in ITEM_KINDS if k in item)
            key = f"{section['id']}.{item[kind]}"
            claim(key, at)
            if kind in ("question", "choice"):
                scale = item.get("scale", section.get("scale"))
                if scale not in scales:
                    issues.append(
                        Issue(IssueCode.unknown_scale, name, key, str(_line(lines, at)), str(scale))
                    )
            if kind == "table":
                columns = item.get("columns")
                if isinstance(columns, str) and columns not in column_sets:
                    issues.append(
                        Issue(
                            IssueCode.schema,
                            name,
                            key,
                            str(_line(lines, at)),
                            f"column set '{columns}' is not defined in _common.yaml",
                        )
                    )
                elif columns is None:
                    issues.append(
                        Issue(
                            IssueCode.schema,
                            name,
                            key,
                            str(_line(lines, at)),
                            "a table needs 'columns:'",
                        )
                    )
    return issues


def load_form(path: str | Path) -> FormDefinition:
    """Load and check one definition; raise DefinitionError listing every problem."""
    path = Path(path)
    issues, data = _checked(path)
    if issues:
        raise DefinitionError(issues)
    common = _common(str(path.parent))
    scales = _scales({**common.get("scales", {}), **data.get("scales", {})})
    return _build(data, scales, common.get("column_sets", {}), str(path))


def _build(data: dict, scales: dict[str, Scale], column_sets: dict, path: str) -> FormDefinition:
    header = tuple(
        HeaderField(
            h["column"], h["label"], h.get("required", False), FieldKind(h.get("type", "text"))
        )
        for h in data["header"]
    )
    sections = tuple(_build_section(s, scales, column_sets) for s in data["sections"])
    return FormDefinition(
        data["id"],
        data["version"],
        data["title"],
        data["subject"],
        data["source"],
        header,
        sections,
        path,
    )


def _build_section(raw: dict, scales: dict[str, Scale], column_sets: dict) -> Section:
    items = []
    for item in raw["items"]:
        kind = next(k for k in ITEM_KINDS if k in item)
        key = f"{raw['id']}.{item[kind]}"
        scale_id = item.get("scale", raw.get("scale"))
        columns = item.get("columns", ())
        if isinstance(columns, str):
            columns = column_sets[columns]
        items.append(
            Item(
                kind=kind,
                id=item[kind],
                key=key,
                label=item["label"],
                number=item.get("number", ""),
                scale=scales[scale_id] if kind in ("question", "choice") else None,
                evidence=item.get("evidence", kind == "question"),
                required=item.get("required", kind in ("question", "choice")),
                guidance=tuple(item.get("guidance", ())),
                columns=tuple(Column(c["id"], c["label"], FieldKind(c["type"])) for c in columns),
                rows=item.get("rows", 5 if kind == "table" else 0),
            )
        )
    indicators = tuple(
        Indicators(i["title"], tuple(i["good"]), tuple(i.get("outstanding", ())))
        for i in raw.get("good_looks_like", ())
    )
    return Section(
        raw["id"],
        raw["title"],
        tuple(items),
        tuple(raw.get("guidance", ())),
        indicators,
        raw.get("question_label", "Question"),
        raw.get("answer_label", ""),
        raw.get("evidence_label", ""),
    )


def form_files(directory: str | Path | None = None) -> list[Path]:
    directory = Path(directory) if directory else forms_dir()
    return sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("_"))


def load_forms(directory: str | Path | None = None) -> dict[str, FormDefinition]:
    """Every definition in the folder, by id. Raises on the first folder with problems."""
    forms: dict[str, FormDefinition] = {}
    for path in form_files(directory):
        form = load_form(path)
        forms[form.id] = form
    return forms


def shipped_forms() -> dict[str, FormDefinition]:
    """Every definition in templates/forms, loaded once per process."""
    return _cached_forms(str(forms_dir()))


def get_form(form_id: str, directory: str | Path | None = None) -> FormDefinition:
    forms = _cached_forms(str(directory or forms_dir()))
    if form_id not in forms:
        known = ", ".join(sorted(forms))
        raise DefinitionError(f"Unknown form '{form_id}'. Known forms: {known}.")
    return forms[form_id]


@cache
def _cached_forms(directory: str) -> dict[str, FormDefinition]:
    return load_forms(directory)
