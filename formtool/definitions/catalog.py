"""The form catalog: where this process's audit tools come from, and the one cache of them.

Definitions come from the shipped folder (templates/forms, installed as formtool.templates)
and, for a QA team's own tools, one folder the team owns. A `FormCatalog` holds:

- the folders: the shipped one and the team's (`use_forms_dir`, which the CLI's --forms-dir
  calls; $FORMTOOL_FORMS only when nothing set one);
- the definitions parsed from them, read once on first use (the one in-process cache), and
  those rebuilt from the store's snapshots;
- where checked definitions are kept on disk between runs ($XDG_CACHE_HOME or ~/.cache).

`form_catalog()` is the catalog in use; `get_form`, `all_forms`, `load_forms` and the rest
ask it. Like the clock (formtool.clock), it is a process-wide setting: the CLI sets it once,
and tests give each test a fresh one (tests/conftest.py). Not to be confused with
store/catalog.py, the database's record of which definition version generated which forms.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from formtool.definitions.forms import (
    COMMON_FILE,
    Field,
    FormDefinition,
    HeaderField,
    Item,
    Section,
    build,
    from_snapshot,
)
from formtool.errors import DefinitionError, Issue, IssueCode

FORMS_ENV = "FORMTOOL_FORMS"


@cache
def forms_dir() -> Path:
    """The shipped templates/forms folder (installed as formtool.templates)."""
    return Path(str(resources.files("formtool.templates") / "forms"))


def default_cache_dir() -> Path:
    """Where checked definitions are kept between runs: under $XDG_CACHE_HOME or ~/.cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "formtool" / "definitions"


@dataclass
class FormCatalog:
    """The folders definitions come from, the definitions read from them, and their disk
    cache (None: check every file every time).

    The memos are per catalog, so a new catalog (another team folder, a new test) starts
    empty. Two threads filling one at once both read the folders and one result wins: the
    results are equal, so no lock is needed.
    """

    team_dir: Path | None = None
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    _forms: dict[str, FormDefinition] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _snapshots: dict[str, FormDefinition] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_environment(cls) -> FormCatalog:
        """The team's folder from $FORMTOOL_FORMS, the cache from $XDG_CACHE_HOME."""
        value = os.environ.get(FORMS_ENV, "").strip()
        return cls(team_dir=Path(value) if value else None)

    @property
    def folders(self) -> list[Path]:
        """The shipped folder, then the team's."""
        return [forms_dir(), *([self.team_dir] if self.team_dir else [])]

    def files(self, directory: str | Path | None = None) -> list[Path]:
        """The definition files in `directory` (default: every folder); _*.yaml are shared."""
        folders = [Path(directory)] if directory else self.folders
        return [
            p
            for folder in folders
            for p in sorted(folder.glob("*.yaml"))
            if not p.name.startswith("_")
        ]

    def load(self, path: str | Path) -> FormDefinition:
        """Load and check one definition; raise DefinitionError listing every problem.

        A definition that checked clean is kept, resolved, in the disk cache, keyed by a hash
        of its file, the shared scales beside it and the schema: checking is then skipped
        until one of them changes (formtool forms list starts in well under 0.2 s).
        """
        path = Path(path)
        key = _cache_key(path)
        cached = self._cached(key)
        if cached is not None:
            return build(cached, str(path))
        from formtool.definitions.check import checked

        issues, resolved = checked(path)
        if issues:
            raise DefinitionError(issues)
        self._remember(key, resolved)
        return build(resolved, str(path))

    def load_all(self, directory: str | Path | None = None) -> dict[str, FormDefinition]:
        """Every definition in the folder (default: every folder), read afresh, by id.
        A team tool may not reuse a shipped tool's id."""
        forms: dict[str, FormDefinition] = {}
        for path in self.files(directory):
            form = self.load(path)
            if form.id in forms:
                raise DefinitionError([_clash(form, forms[form.id])])
            forms[form.id] = form
        return forms

    def forms(self) -> dict[str, FormDefinition]:
        """Every current definition, read once for this catalog."""
        if self._forms is None:
            self._forms = self.load_all()
        return self._forms

    def is_shipped(self, form: FormDefinition) -> bool:
        return Path(form.path).parent == forms_dir()

    def shipped(self) -> dict[str, FormDefinition]:
        """The tools that come with formtool, without the team's."""
        return {i: f for i, f in self.forms().items() if self.is_shipped(f)}

    def get(
        self, form_id: str, version: int | None = None, directory: str | Path | None = None
    ) -> FormDefinition:
        """The current definition of a form (it must be `version`, if given)."""
        forms = self.load_all(directory) if directory else self.forms()
        if form_id not in forms:
            known = ", ".join(sorted(forms))
            raise DefinitionError(f"Unknown form '{form_id}'. Known forms: {known}.")
        form = forms[form_id]
        if version is not None and version != form.version:
            raise DefinitionError(
                f"Form '{form_id}' is version {form.version} here, not "
                f"{version}. Read it with the database that generated it."
            )
        return form

    def from_snapshot(self, snapshot: str) -> FormDefinition:
        """A definition rebuilt from a stored snapshot, once per snapshot text. Keyed by the
        content itself, so it can never be stale; kept here so a new catalog starts empty."""
        found = self._snapshots.get(snapshot)
        if found is None:
            found = self._snapshots.setdefault(snapshot, from_snapshot(snapshot))
        return found

    def _cached(self, key: str) -> dict[str, Any] | None:
        if self.cache_dir is None:
            return None
        try:
            data: dict[str, Any] = json.loads((self.cache_dir / f"{key}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def _remember(self, key: str, resolved: dict[str, Any]) -> None:
        """Best effort: a read-only home just means checking every time."""
        if self.cache_dir is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_dir / f".{key}.{os.getpid()}.tmp"
            temporary.write_text(json.dumps(resolved, ensure_ascii=False), encoding="utf-8")
            temporary.replace(self.cache_dir / f"{key}.json")
        except OSError:
            pass


def _cache_key(path: Path) -> str:
    from formtool import __version__

    digest = hashlib.sha256(__version__.encode())
    for part in (
        path,
        path.parent / COMMON_FILE,
        forms_dir() / COMMON_FILE,
        Path(str(resources.files("formtool.definitions") / "form_schema.json")),
    ):
        try:
            digest.update(part.read_bytes())
        except OSError:
            digest.update(b"-")
    return digest.hexdigest()


def _clash(form: FormDefinition, first: FormDefinition) -> Issue:
    return Issue(IssueCode.id_clash, form.path, location="1", value=form.id, expected=first.path)


# --- the catalog in use ---------------------------------------------------------------------

_catalog: FormCatalog | None = None


def form_catalog() -> FormCatalog:
    """The catalog this process uses: the one set (use_catalog, use_forms_dir), else one
    made from the environment on first use."""
    global _catalog
    if _catalog is None:
        _catalog = FormCatalog.from_environment()
    return _catalog


def use_catalog(catalog: FormCatalog | None) -> None:
    """Make `catalog` the one this process uses (None: from the environment, on next use)."""
    global _catalog
    _catalog = catalog


def use_forms_dir(folder: str | Path | None) -> FormCatalog:
    """Take the team's tools from `folder` (None: the shipped ones only), read afresh on first
    use; the disk cache stays where it was."""
    chosen = replace(form_catalog(), team_dir=Path(folder) if folder else None)
    use_catalog(chosen)
    return chosen


@contextmanager
def using_forms_dir(folder: str | Path | None) -> Iterator[FormCatalog]:
    """The team's tools come from `folder` inside the block, then the catalog before it."""
    before = _catalog
    try:
        yield use_forms_dir(folder)
    finally:
        use_catalog(before)


# --- the library functions, asking the catalog in use ---------------------------------------


def form_files(directory: str | Path | None = None) -> list[Path]:
    return form_catalog().files(directory)


def load_form(path: str | Path) -> FormDefinition:
    """Load and check one definition; raise DefinitionError listing every problem."""
    return form_catalog().load(path)


def check_form(path: str | Path) -> list[Issue]:
    """Every problem in one definition file, each with file, line and key."""
    from formtool.definitions.check import checked

    return checked(Path(path))[0]


def load_forms(directory: str | Path | None = None) -> dict[str, FormDefinition]:
    """Every definition in the folder (default: shipped and team folders), read afresh, by id."""
    return form_catalog().load_all(directory)


def all_forms() -> dict[str, FormDefinition]:
    """Every current definition (shipped and team), read once per catalog."""
    return form_catalog().forms()


def shipped_forms() -> dict[str, FormDefinition]:
    """The tools that come with formtool, without the team's own."""
    return form_catalog().shipped()


def get_form(
    form_id: str, version: int | None = None, directory: str | Path | None = None
) -> FormDefinition:
    """The current definition of a form (it must be `version`, if given)."""
    return form_catalog().get(form_id, version, directory)


# --- what `forms list` and `forms show` present ---------------------------------------------


@dataclass(frozen=True)
class FormSummary:
    """One audit tool, as `formtool forms list` and the web's forms page show it."""

    id: str
    version: int
    title: str
    subject: str
    questions: int
    fields: int
    source: str  # "shipped" or "team"
    path: str

    @classmethod
    def of(cls, form: FormDefinition, source: str) -> FormSummary:
        return cls(
            form.id,
            form.version,
            form.title,
            form.subject,
            len(form.questions()),
            len(form.fields()),
            source,
            form.path,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DescribedColumn:
    """A case-list column the form is pre-filled from."""

    column: str
    label: str
    required: bool
    type: str
    sources: tuple[str, ...]  # the columns joined into it ("from" in the YAML)
    addition: str

    @classmethod
    def of(cls, h: HeaderField) -> DescribedColumn:
        return cls(h.column, h.label, h.required, h.kind.value, h.sources, h.addition)

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "label": self.label,
            "required": self.required,
            "type": self.type,
            "from": list(self.sources),
            "addition": self.addition,
        }


@dataclass(frozen=True)
class DescribedItem:
    key: str
    kind: str
    label: str
    scale: str  # the scale's label, "" for none
    role: str
    addition: str

    @classmethod
    def of(cls, i: Item) -> DescribedItem:
        scale = i.scale.label if i.scale else ""
        return cls(i.key, i.kind, i.label, scale, i.role, i.addition)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DescribedSection:
    id: str
    title: str
    addition: str
    items: tuple[DescribedItem, ...]

    @classmethod
    def of(cls, s: Section) -> DescribedSection:
        return cls(s.id, s.title, s.addition, tuple(DescribedItem.of(i) for i in s.items))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "addition": self.addition,
            "items": [i.as_dict() for i in self.items],
        }


@dataclass(frozen=True)
class DescribedField:
    key: str
    label: str
    kind: str
    choices: tuple[str, ...] | None  # None for a field without a scale
    required: bool
    role: str

    @classmethod
    def of(cls, f: Field) -> DescribedField:
        choices = f.scale.choices if f.scale else None
        return cls(f.key, f.label, f.kind.value, choices, f.required, f.role)

    def as_dict(self) -> dict[str, Any]:
        choices = list(self.choices) if self.choices is not None else None
        return asdict(self) | {"choices": choices}


@dataclass(frozen=True)
class FormDescription:
    """A form, as `formtool forms show` and the web's form page show it."""

    id: str
    version: int
    title: str
    subject: str
    source: str
    two_stage: bool
    header: tuple[DescribedColumn, ...]
    sections: tuple[DescribedSection, ...]
    fields: tuple[DescribedField, ...]
    additions: tuple[tuple[str, str], ...]  # (what, why) formtool added to the paper tool

    @classmethod
    def of(cls, form: FormDefinition) -> FormDescription:
        return cls(
            form.id,
            form.version,
            form.title,
            form.subject,
            form.source,
            form.two_stage,
            tuple(DescribedColumn.of(h) for h in form.header),
            tuple(DescribedSection.of(s) for s in form.sections),
            tuple(DescribedField.of(f) for f in form.fields()),
            tuple(form.additions()),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "subject": self.subject,
            "source": self.source,
            "two_stage": self.two_stage,
            "header": [h.as_dict() for h in self.header],
            "sections": [s.as_dict() for s in self.sections],
            "fields": [f.as_dict() for f in self.fields],
            "additions": [{"what": w, "why": y} for w, y in self.additions],
        }


def list_forms() -> list[FormSummary]:
    """Every audit tool, shipped and the team's."""
    catalog = form_catalog()
    return [
        FormSummary.of(f, "shipped" if catalog.is_shipped(f) else "team")
        for f in catalog.forms().values()
    ]


def describe_form(form_id: str) -> FormDescription:
    """A form's case-list columns, sections, items and answerable fields."""
    return FormDescription.of(get_form(form_id))
