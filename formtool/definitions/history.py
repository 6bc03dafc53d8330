"""The audit tools formtool shipped before databases kept what generated their forms.

Since schema 0004 the store keeps a snapshot of every definition version that generated
forms (store/catalog.py). Databases made before then hold audits of versions they have no
snapshot of; migration 0008 fills them in from here. Each file in history/ is one shipped
version, resolved (scales and column sets copied in) exactly as the release shipped it, so
returns of forms still out with auditors read as they were written.

Frozen: a file here never changes. When a shipped tool's version is raised, add its old
version (tests/test_upgrade.py checks every earlier shipped version is here):

    git archive COMMIT templates/forms | tar -x -C /tmp/old
    python -m formtool.definitions.history /tmp/old/templates/forms
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from formtool.definitions.check import resolve
from formtool.definitions.forms import COMMON_FILE, FormDefinition, build

#: Where each judgement was before definitions named them (`judgements:`): releases up to
#: and including schema 0004 read these keys for every tool.
IMPLIED_JUDGEMENTS = {
    "grade": "overall.grade",
    "moderated_grade": "moderation.grade",
    "status": "completion.status",
    "final": "Final",
    "completed_by": "completion.completed_by",
    "completed_on": "completion.completed_on",
}


def _folder() -> Any:
    return resources.files("formtool.definitions") / "history"


def _file_name(form_id: str, version: int) -> str:
    return f"{form_id}.v{version}.json"


@cache
def shipped_definition(form_id: str, version: int) -> FormDefinition | None:
    """The definition formtool shipped as `form_id` version `version`, if it ever did."""
    found = _folder() / _file_name(form_id, version)
    if not found.is_file():
        return None
    return build(json.loads(found.read_text(encoding="utf-8")), f"(shipped {form_id} v{version})")


def shipped_versions() -> list[tuple[str, int]]:
    """Every (form id, version) kept here."""
    names = (p.name.removesuffix(".json") for p in _folder().iterdir() if p.name.endswith(".json"))
    return sorted((form_id, int(v)) for form_id, _, v in (n.rpartition(".v") for n in names))


def freeze(folder: Path, into: Path) -> list[Path]:
    """Resolve every definition in an old forms folder and write it to `into`."""
    common = yaml.safe_load((folder / COMMON_FILE).read_text(encoding="utf-8")) or {}
    written = []
    for path in sorted(folder.glob("[!_]*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        resolved = resolve(data, common.get("scales", {}), common.get("column_sets", {}))
        if "judgements" not in resolved:
            fields = {f.key for f in build(resolved).fields()}
            resolved["judgements"] = {
                name: key
                for name, key in IMPLIED_JUDGEMENTS.items()
                if key in fields or name == "final"
            }
        target = into / _file_name(resolved["id"], resolved["version"])
        target.write_text(
            json.dumps(resolved, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        written.append(target)
    return written


if __name__ == "__main__":  # a maintainer's tool: see the module docstring
    for written_path in freeze(Path(sys.argv[1]), Path(__file__).with_name("history")):
        print(written_path)
