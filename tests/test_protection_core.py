"""Data protection's shared core on both backends, on a copy of the demo's database: removing
an audit leaves no row holding its id, keeps the access log's entries with the identifying
text taken out, and moves its anonymised counts into the period summary so the period's
figures do not change; tracked files are removed from disk and marked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from demo_copy import demo_database, tables_holding

from formtool import store
from formtool.protect.summary import period_figures, remove_files, summary_cells
from formtool.store import ERASED, FILE_PACK

from conftest import Demo


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_db(request, demo_run: Demo, tmp_path: Path) -> store.Store:
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    url = demo_database(demo_run.out / "formtool.db", request.param, tmp_path, server)
    return store.open_store(url)


def _richest_audit(db: store.Store) -> str:
    """A completed audit with answers, events and, if any has one, a concern."""
    concerned = {c.audit_id for c in db.concerns()}
    rows = [r for r in db.audit_rows() if r.return_id is not None]
    rows.sort(key=lambda r: (r.audit_id not in concerned, r.audit_id))
    return str(rows[0].audit_id)


def test_removing_an_audit_keeps_the_figures_and_leaves_no_row_naming_it(
    demo_db: store.Store,
) -> None:
    audit_id = _richest_audit(demo_db)
    row = demo_db.require_audit(audit_id)
    child = json.loads(row.facts)["given_names"]
    assert child
    looked = f"looked at {audit_id} for {child}"
    demo_db.log_access("web:officer", "viewed audit", audit_id, "", looked)
    other = next(r.audit_id for r in demo_db.audit_rows() if r.audit_id != audit_id)
    elsewhere = f"searched for {child}; {child}ish; {audit_id[:-1]}"  # another child's entry
    demo_db.log_access("web:officer", "searched", other, "", elsewhere)
    before = period_figures(demo_db)
    cells = summary_cells(demo_db, [audit_id])[audit_id]
    assert ("audits", "completed") in {(m, v) for (_, _, _, m, v) in cells}

    moved = (row.state, row.updated_at - dt.timedelta(seconds=1))  # changed since counted
    assert demo_db.remove_audit(audit_id, "stale", "cli:tester", cells, as_seen=moved) == {}
    assert demo_db.audit_row(audit_id) is not None
    files = demo_db.stored_files(audit_ids=[audit_id])
    assert files  # the demo's forms and file pack for it
    assert remove_files(demo_db, files, "retention: test", "cli:tester") == len(files)
    removed = demo_db.remove_audit(audit_id, "retention: test", "cli:tester", cells, [child])

    assert removed["audits"] == 1 and removed["returns"] >= 1 and removed["answers"] > 0
    assert removed["tracked files forgotten"] == len(files)
    assert period_figures(demo_db) == before
    assert demo_db.audit_row(audit_id) is None
    assert tables_holding(demo_db.engine.url.render_as_string(False), audit_id) == {}
    viewed = [
        e for e in demo_db.access_entries(None, None, None, None) if e.action == "viewed audit"
    ]
    assert (
        viewed
        and viewed[-1].detail == f"looked at {ERASED} for {ERASED}"
        and viewed[-1].audit_id is None
    )
    searched = [e for e in demo_db.access_entries(None, None, None, None) if e.action == "searched"]
    assert [e.detail for e in searched] == [elsewhere]  # another child's entry: untouched
    gone = [
        e for e in demo_db.access_entries(None, None, None, None) if e.action == "audit removed"
    ]
    assert gone and audit_id not in gone[-1].detail and "retention: test" in gone[-1].detail
    assert demo_db.remove_audit(audit_id, "again", "cli:tester", cells) == {}


def test_tracked_files_are_removed_from_disk_and_marked(
    demo_db: store.Store, tmp_path: Path
) -> None:
    pack = tmp_path / "pack.pdf"
    pack.write_bytes(b"%PDF-1.7 a pack")
    file_id = demo_db.record_file(pack, FILE_PACK, audit_id="CSC-X-202611", user="cli:tester")
    (row,) = demo_db.stored_files(audit_ids=["CSC-X-202611"])
    assert row.id == file_id and row.size == 15 and Path(row.path) == pack.resolve()

    assert remove_files(demo_db, [row], "retention: packs", "cli:tester") == 1

    assert not pack.exists()
    assert demo_db.stored_files(audit_ids=["CSC-X-202611"]) == []
    (kept,) = demo_db.stored_files(audit_ids=["CSC-X-202611"], include_removed=True)
    assert kept.removed_at is not None and kept.removed_why == "retention: packs"
