"""The house's shape, kept: only store/ reaches the database, and imports only point down the
pipeline (errors, clock, settings -> definitions -> store -> read, generate -> programme,
access, packs -> web, cli, demo), with no cycle between packages or between modules.

Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "formtool"

#: Layer of each top-level part of formtool, lowest first. A module may import from its own
#: layer or lower; the README's "How the code is laid out" lists them in this order.
LAYERS = {
    "formtool": 0,  # the package itself: __version__ and the lazy public API
    "errors": 0,
    "clock": 0,
    "settings": 0,
    "periods": 0,
    "definitions": 1,
    "store": 2,
    "read": 3,
    "generate": 3,
    "programme": 4,
    "access": 4,
    "packs": 4,
    "protect": 4,
    "web": 5,
    "cli": 5,
    "cli_common": 5,
    "cli_programme": 5,
    "cli_activity": 5,
    "cli_retention": 5,
    "cli_subjects": 5,
    "cli_signin": 5,
    "demo": 5,
    "__main__": 5,
}
DATABASE_LIBRARIES = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg2",
    "asyncpg",
    "pg8000",
    "sqlite3",
)
#: What the rest of formtool may take from the store: the facade, opening it, its errors and
#: the plain values its methods take and return. Connection-level functions stay inside.
STORE_API = {
    "Store", "open_store", "database_url", "masked", "describe", "DEFAULT_URL", "ENV_VAR",
    "failure", "Failure", "Work", "start_work", "acting_as", "current_work", "os_user", "shown",
    "StoreError", "StateError", "AccountError", "OpenActions", "DatabaseError", "DriverError",
    "Move", "Planned", "AllocationReads", "AuditRecords", "AuditRecord", "ReturnRecord",
    "ReturnFile", "Stored", "AuditState", "COMPLETED", "OUTSTANDING", "TRANSITIONS",
    "PREPARED", "AUDIT", "audit_facts", "stored_warnings", "UnknownVersionsError",
    "MessageState", "OutboxMessage", "Delivery", "HELD_SENDER", "HELD_LOCKED", "REFUSED",
    "REASSIGNABLE", "Rejection",
    "ACCEPTED", "HeldReturn", "Concern", "StoredPolicy", "RaisedConcern", "HELD_REASSIGNED",
    "received_on", "unknown_audit", "RunRecord", "ACTIVITY_MODE",
    "backup_database", "restore_backup", "recent_backup", "BackupError", "BackupReport",
    "RestorePlan", "RestoreReport",
    "FILE_KINDS", "FORM", "FILE_PACK", "PMU_PACK", "REPORT", "EXPORT", "EMAIL_DRAFT", "BACKUP",
    "SUBJECT_ACCESS", "ERASED", "Cell", "Rewrite", "HELD_CHANNEL", "WEB_METHOD",
}  # fmt: skip
#: Attributes of a database row or engine that only the store may touch.
STORE_INTERNALS = {"engine", "_mapping", "_asdict", "connect", "begin", "execution_options"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module imported, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []
    top_level = {id(node) for node in tree.body}
    this = module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = this.split(".")
                keep = package[: len(package) - node.level + (path.name == "__init__.py")]
                base = ".".join([*keep, base] if base else keep)
            for alias in node.names:  # `from formtool import store` imports formtool.store
                candidate = f"{base}.{alias.name}"
                named = candidate if _is_module(candidate) else base
                found.append((named, node.lineno, id(node) in top_level))
    return found


def _is_module(name: str) -> bool:
    if not name.startswith("formtool."):
        return False
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).is_dir() or (PACKAGE / relative).with_suffix(".py").is_file()


def part(module: str) -> str:
    """The top-level part a formtool module belongs to (`formtool.store.audits` -> store)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "formtool"


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)
#: formtool/__init__.py is the lazy public API: it names the top-level functions of every part
#: (imported on first use, and for type checkers), so its own imports are not dependencies.
EDGES = [
    (module_name(path), target, line, top)
    for path in SOURCES
    if module_name(path) != "formtool"
    for target, line, top in imports(path)
    if target == "formtool" or target.startswith("formtool.")
]


def test_every_part_has_a_layer():
    parts = {part(module_name(p)) for p in SOURCES}
    assert sorted(parts - set(LAYERS)) == []


def test_only_the_store_imports_a_database_library():
    leaks = [
        f"{module_name(path)}:{line} imports {target}"
        for path in SOURCES
        for target, line, _ in imports(path)
        if target.split(".")[0] in DATABASE_LIBRARIES and part(module_name(path)) != "store"
    ]
    assert leaks == []


def store_uses(path: Path) -> list[str]:
    """What a module outside the store takes from it: names imported from formtool.store (or
    its modules), `store.X` attributes, and engine/row internals it touches."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("formtool.store"):
            where = "" if node.module == "formtool.store" else f"{node.module}."
            found += [f"{node.lineno}: {where}{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "store":
                found.append(f"{node.lineno}: {node.attr}")
            elif node.attr in STORE_INTERNALS:
                found.append(f"{node.lineno}: .{node.attr}")
    return found


def test_only_the_store_opens_a_connection():
    """Above the store, code holds a `Store` and calls its methods: it never reaches for the
    engine underneath, a row's internals, or the store's connection-level functions."""
    reached = [
        f"{module_name(path)}:{use}"
        for path in SOURCES
        if part(module_name(path)) != "store"
        for use in store_uses(path)
        if use.split(": ", 1)[1] not in STORE_API
    ]
    assert reached == []


def test_the_store_check_sees_what_it_forbids(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "from formtool import store\n"
        "from formtool.store.engine import transaction\n"
        "def f(db, row):\n"
        "    with store.transaction(db.engine) as conn:\n"
        "        return dict(row._mapping), conn\n",
        encoding="utf-8",
    )
    uses = {u.split(": ", 1)[1] for u in store_uses(sneaky)}
    assert {"formtool.store.engine.transaction", "transaction", ".engine", "._mapping"} <= uses


def test_imports_only_point_down():
    upward = [
        f"{source}:{line} imports {target} ({part(source)} is below {part(target)})"
        for source, target, line, _ in EDGES
        if LAYERS[part(target)] > LAYERS[part(source)]
    ]
    assert upward == []


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle in the graph (as a path that returns to its start), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_cycle_between_parts():
    graph: dict[str, set[str]] = {}
    for source, target, _, _ in EDGES:
        if part(source) != part(target) and part(target) != "formtool":
            graph.setdefault(part(source), set()).add(part(target))
    assert _cycle(graph) == []


def test_no_cycle_between_modules_at_import_time():
    """Module-level imports only: a function-level import that closes a loop inside one
    package is how a package's __init__ re-exports without importing itself twice."""
    graph: dict[str, set[str]] = {}
    for source, target, _, top in EDGES:
        if top and target != source and not source.startswith(f"{target}."):
            graph.setdefault(source, set()).add(target)
    assert _cycle(graph) == []


@pytest.mark.parametrize(
    "graph, cycle",
    [({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]), ({"a": {"b"}, "b": set()}, [])],
)
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert _cycle(graph) == cycle


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path):
    source = PACKAGE / "store" / "facade.py"
    found = {t for t, _, _ in imports(source)}
    assert "sqlalchemy" in found and "formtool.store.audits" in found
    lazy = {t for t, _, top in imports(PACKAGE / "cli.py") if not top}
    assert "formtool.store" in lazy


def test_the_readme_lays_out_every_part_in_layer_order():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- \*\*`formtool/(\w+)", section, flags=re.M)
    assert sorted(listed) == sorted(set(LAYERS) - {"formtool", "__main__"})
    assert [LAYERS[p] for p in listed] == sorted(LAYERS[p] for p in listed)
