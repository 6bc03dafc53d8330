"""Two `formtool import` processes on one database at once: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import subprocess
import sys

import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.fill import fill_docx
from formtool.generate import write_forms

from conftest import make_cases


def test_two_imports_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = store.open_store(url)
    form = get_form("csc")
    made = write_forms(
        form, make_cases(tmp_path, form, 12), tmp_path / "forms", ("docx",), engine=engine
    )
    folder = tmp_path / "returns"
    folder.mkdir()
    for item in made:
        (folder / item.path.name).write_bytes(
            fill_docx(
                item.path.read_bytes(),
                {"kss1.seen_alone": "Yes", "kss1.seen_alone.evidence": item.path.stem},
            )
        )
    command = [sys.executable, "-m", "formtool", "import", str(folder), "--db", url, "--json"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1].decode() for r in results]
    statuses = [o["status"] for out, _ in results for o in json.loads(out)]
    assert sorted(statuses) == ["imported"] * 12 + ["unchanged"] * 12
    with engine.connect() as conn:
        returns = conn.execute(
            sa.select(store.returns.c.audit_id, store.returns.c.is_current)
        ).all()
        answers = conn.execute(sa.select(sa.func.count()).select_from(store.answers)).scalar()
    assert sorted(r.audit_id for r in returns) == sorted(i.case.audit_id for i in made)
    assert all(r.is_current for r in returns)
    assert answers == 12 * len([i for _, i in form.items() if i.kind != "table"])
