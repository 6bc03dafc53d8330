"""Checking a definition file: YAML with line numbers, the JSON Schema, then the rules a
schema cannot say (unique keys, defined scales, references that resolve). Every problem is an
`Issue` with file, line and key, and a clean file comes back resolved: the shared scales and
action-column sets it uses are copied in, so the result is self-contained (a snapshot).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from formtool.definitions import COMMON_FILE, ITEM_KINDS, forms_dir
from formtool.definitions.forms import PLACEHOLDER
from formtool.errors import Issue, IssueCode

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
Lines = dict[tuple[Any, ...], int]


@cache
def _schema() -> dict[str, Any]:
    return json.loads(
        (resources.files("formtool.definitions") / "form_schema.json").read_text("utf-8")
    )


def _compose(path: Path) -> tuple[Any, Lines]:
    """Parse YAML keeping the line of every node, keyed by its JSON path."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=_LOADER)
    lines: Lines = {}

    def walk(n: yaml.Node, at: tuple[Any, ...]) -> None:
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


def _line(lines: Lines, path: tuple[Any, ...]) -> str:
    while path and path not in lines:
        path = path[:-1]
    return str(lines.get(path, 1))


def _key_at(data: Any, path: tuple[Any, ...]) -> str:
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


def _common_file(path: Path) -> dict[str, Any]:
    """A folder's shared scales and column sets ({} when it has none)."""
    return _parse_common(path.read_text(encoding="utf-8")) if path.exists() else {}


@cache
def _parse_common(text: str) -> dict[str, Any]:
    """Memoised by the file's text, not its path, so an edited _common.yaml is never stale."""
    data = yaml.load(text, Loader=_LOADER) or {}
    return data if isinstance(data, dict) else {}


def commons(folder: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Scales and column sets a form in `folder` may use: the shipped ones, plus the folder's
    own _common.yaml (which may add, not redefine). Also the clashes found."""
    shipped = _common_file(forms_dir() / COMMON_FILE)
    scales = dict(shipped.get("scales") or {})
    column_sets = dict(shipped.get("column_sets") or {})
    clashes: list[str] = []
    if folder.resolve() != forms_dir().resolve():
        own = _common_file(folder / COMMON_FILE)
        for kind, target in (("scales", scales), ("column_sets", column_sets)):
            for name, value in (own.get(kind) or {}).items():
                if name in target and target[name] != value:
                    clashes.append(f"{kind[:-1].replace('_', ' ')} '{name}'")
                target.setdefault(name, value)
    return scales, column_sets, clashes


def checked(path: Path) -> tuple[list[Issue], dict[str, Any]]:
    """The problems in a definition file and, when there are none, its resolved data."""
    name = str(path)
    try:
        data, lines = _compose(path)
    except FileNotFoundError:
        return [Issue(IssueCode.schema, name, "", "1", "file not found")], {}
    except UnicodeDecodeError:
        return [Issue(IssueCode.schema, name, "", "1", "file is not UTF-8 text")], {}
    except yaml.MarkedYAMLError as exc:
        line = str(exc.problem_mark.line + 1) if exc.problem_mark else "1"
        return [Issue(IssueCode.yaml_syntax, name, "", line, str(exc.problem))], {}
    validator = jsonschema.Draft202012Validator(_schema())
    issues = [
        Issue(
            IssueCode.schema,
            name,
            _key_at(data, tuple(e.absolute_path)),
            _line(lines, tuple(e.absolute_path)),
            _schema_message(e),
        )
        for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path)))
    ]
    if issues:
        return issues, {}
    scales, column_sets, clashes = commons(path.parent)
    issues = [
        Issue(
            IssueCode.schema,
            name,
            "",
            "1",
            f"_common.yaml redefines the shipped {clash}; give it a name of its own",
        )
        for clash in clashes
    ]
    resolved = resolve(data, scales, column_sets)
    issues += _Checker(
        resolved, lines, name, {**scales, **data.get("scales", {})}, column_sets, data
    ).issues()
    return issues, resolved if not issues else {}


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return "each item needs exactly one of " + ", ".join(f"'{k}:'" for k in ITEM_KINDS)
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field")
    return error.message


def resolve(
    data: dict[str, Any], scales: dict[str, Any], column_sets: dict[str, Any]
) -> dict[str, Any]:
    """The definition with the scales it uses and its column sets copied in."""
    every = {**scales, **data.get("scales", {})}
    used: dict[str, Any] = {}
    sections = []
    for section in data["sections"]:
        items = []
        for item in section["items"]:
            item = dict(item)
            scale = item.get("scale", section.get("scale"))
            if any(k in item for k in ("question", "choice")) and scale in every:
                used[scale] = every[scale]
            if isinstance(item.get("columns"), str):
                item["columns"] = column_sets.get(item["columns"], item["columns"])
            items.append(item)
        sections.append({**section, "items": items})
    return {**data, "scales": used, "sections": sections}


class _Checker:
    """The rules a schema cannot express, each problem with its line and key."""

    def __init__(
        self,
        resolved: dict[str, Any],
        lines: Lines,
        name: str,
        scales: dict[str, Any],
        column_sets: dict[str, Any],
        raw: dict[str, Any],
    ):
        self.data, self.lines, self.name = resolved, lines, name
        self.scales, self.column_sets, self.raw = scales, column_sets, raw
        self.found: list[Issue] = []
        self.keys: set[str] = set()
        self.choices: dict[str, list[str]] = {}  # choice item key -> its scale's choices

    def add(
        self, code: IssueCode, key: str, at: tuple[Any, ...], value: str = "", expected: str = ""
    ) -> None:
        self.found.append(Issue(code, self.name, key, _line(self.lines, at), value, expected))

    def claim(self, key: str, at: tuple[Any, ...]) -> None:
        if key in self.keys:
            self.add(IssueCode.duplicate_key, key, at)
        self.keys.add(key)

    def issues(self) -> list[Issue]:
        columns = {h["column"] for h in self.data["header"]}
        for index, h in enumerate(self.data["header"]):
            self.claim(f"header.{h['column']}", ("header", index))
            for named in PLACEHOLDER.finditer(h.get("group", "")):
                if named[1] not in columns:
                    self.add(
                        IssueCode.bad_reference,
                        f"header.{h['column']}.group",
                        ("header", index, "group"),
                        named[0],
                        ", ".join("{" + c + "}" for c in sorted(columns)),
                    )
        for s_index, section in enumerate(self.data["sections"]):
            self.section(s_index, section)
        self.judgements()
        return self.found

    def section(self, s_index: int, section: dict[str, Any]) -> None:
        cells = section.get("cells", ["question", "answer", "evidence"])
        if "question" not in cells or "answer" not in cells:
            self.add(
                IssueCode.schema,
                section["id"],
                ("sections", s_index, "cells"),
                "cells need at least 'question' and 'answer'",
            )
        ids = []
        for i_index, item in enumerate(section["items"]):
            at = ("sections", s_index, "items", i_index)
            kind = next(k for k in ITEM_KINDS if k in item)
            key = f"{section['id']}.{item[kind]}"
            ids.append(item[kind])
            self.claim(key, at)
            if kind == "question" and item.get("evidence", True):
                self.claim(f"{key}.evidence", at)
            if item.get("comment"):
                self.claim(f"{key}.comment", at)
            if kind in ("question", "choice"):
                self.choice_item(key, item, section, at)
            if kind == "table":
                self.table(key, item, at)
        if section.get("joins_previous"):
            previous = self.data["sections"][s_index - 1] if s_index else None
            if previous is None or previous.get("cells") != section.get("cells"):
                self.add(
                    IssueCode.schema,
                    section["id"],
                    ("sections", s_index, "joins_previous"),
                    "a section can only join the previous one when both have the same cells",
                )
        judgement = section.get("judgement")
        if judgement and judgement not in ids:
            self.add(
                IssueCode.bad_reference,
                section["id"],
                ("sections", s_index, "judgement"),
                judgement,
                ", ".join(ids),
            )

    def choice_item(
        self, key: str, item: dict[str, Any], section: dict[str, Any], at: tuple[Any, ...]
    ) -> None:
        scale = item.get("scale", section.get("scale"))
        if scale not in self.scales:
            self.add(IssueCode.unknown_scale, key, at, str(scale), ", ".join(sorted(self.scales)))
            return
        choices = list(self.scales[scale]["choices"])
        self.choices[key] = choices
        favourable = item.get("favourable")
        if favourable not in (None, "none") and favourable not in choices:
            self.add(
                IssueCode.bad_reference,
                key,
                (*at, "favourable"),
                str(favourable),
                ", ".join([*choices, "none"]),
            )

    def table(self, key: str, item: dict[str, Any], at: tuple[Any, ...]) -> None:
        columns = self.raw_item(at).get("columns")
        if isinstance(columns, str) and columns not in self.column_sets:
            self.add(
                IssueCode.schema, key, at, f"column set '{columns}' is not defined in _common.yaml"
            )
        elif columns is None:
            self.add(IssueCode.schema, key, at, "a table needs 'columns:'")

    def raw_item(self, at: tuple[Any, ...]) -> dict[str, Any]:
        _, s_index, _, i_index = at
        item: dict[str, Any] = self.raw["sections"][s_index]["items"][i_index]
        return item

    def judgements(self) -> None:
        judgements = self.data.get("judgements", {})
        for name in ("grade", "moderated_grade", "status", "concern"):
            key = judgements.get(name)
            if key and key not in self.choices:
                self.add(
                    IssueCode.bad_reference,
                    f"judgements.{name}",
                    ("judgements", name),
                    key,
                    "a choice or question key of this form",
                )
        for name in ("completed_by", "completed_on"):
            key = judgements.get(name)
            if key and key not in self.keys:
                self.add(
                    IssueCode.bad_reference,
                    f"judgements.{name}",
                    ("judgements", name),
                    key,
                    "a key of this form",
                )
        concern = judgements.get("concern")
        if concern in self.choices and not {"Yes", "No"} <= set(self.choices[concern]):
            self.add(
                IssueCode.schema,
                "judgements.concern",
                ("judgements", "concern"),
                f"'{concern}' must be answered Yes or No: give it the scale yes_no",
            )
        final, status = judgements.get("final"), judgements.get("status")
        if status in self.choices and final not in self.choices[status]:
            self.add(
                IssueCode.bad_reference,
                "judgements.final",
                ("judgements", "final"),
                str(final),
                ", ".join(self.choices[status]),
            )
