"""An upgrade keeps every audit usable: a database the previous release made (schema 0002,
commit eedc9e9, its v1 forms; tests/fixtures/release_0002/build.py) upgraded on both backends,
its forms still out imported, and every pack counting every audit.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from docx import Document

from formtool import clock, store
from formtool.cli import cli
from formtool.definitions import get_form, shipped_forms
from formtool.definitions.history import IMPLIED_JUDGEMENTS, shipped_definition, shipped_versions
from formtool.demo.synthetic import synthetic_case
from formtool.packs.figures import load_figures
from formtool.packs.pmu import pmu_document
from formtool.packs.render import to_docx
from formtool.periods import period_for
from formtool.read.cases import write_case_list
from formtool.store import UnknownVersionsError
from formtool.store.engine import HEAD

from conftest import database_at

pytestmark = pytest.mark.empty_pg  # each builds an earlier release's schema itself

FIXTURE = Path(__file__).parent / "fixtures" / "release_0002"
DAY = dt.date(2026, 12, 10)
TABLES = ("audits", "returns", "answers", "actions", "grades", "events")
DECEMBER, NOVEMBER = 7, 3  # audits the fixture holds (see build.py)


def _release_database(url: str) -> None:
    """The previous release's database at `url`: the file itself on SQLite; on PostgreSQL
    schema 0002 made by its own migrations, then its rows."""
    if url.startswith("sqlite"):
        shutil.copyfile(FIXTURE / "formtool.db", sa.make_url(url).database or "")
        return
    with database_at(url, "0002") as conn:
        dump = gzip.decompress((FIXTURE / "data.sql.gz").read_bytes()).decode()
        for statement in dump.splitlines():
            if statement and not statement.startswith("--"):
                conn.exec_driver_sql(statement)


def _columns(url: str) -> dict[str, list[str]]:
    inspector = sa.inspect(store.engine_for(url))
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in TABLES}


def _rows(url: str, columns: dict[str, list[str]]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of these tables, in these columns, in a stable order."""
    with store.engine_for(url).connect() as conn:
        return {
            t: sorted(conn.execute(sa.text(f"SELECT {', '.join(c)} FROM {t}")).all(), key=repr)
            for t, c in columns.items()
        }


def _run(*args: str) -> Any:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def upgraded(db_url: str) -> str:
    _release_database(db_url)
    columns = _columns(db_url)  # schema 0002's
    before = _rows(db_url, columns)
    told = CliRunner().invoke(cli, ["status", "--db", db_url])  # upgrades to the head revision
    assert told.exit_code == 0, told.output
    assert _rows(db_url, columns) == before  # every record as it was
    assert f"from schema 0002 to {HEAD}." in told.stderr
    for form_id in ("csc", "prospective_adopter", "quality_practice", "supported_lodgings"):
        assert f"Kept the definition of {form_id} v1 for its audits, as formtool shipped it." in (
            told.stderr
        )
    assert "cannot be read" not in told.stderr
    return db_url


def test_an_upgraded_database_takes_back_its_outstanding_forms(upgraded, tmp_path):
    with clock.frozen(DAY):
        assert store.open_store(upgraded).unknown_versions() == {}
        outcomes = _run("import", str(FIXTURE / "outstanding"), "--db", upgraded)
        assert [o["status"] for o in outcomes] == ["imported"] * 3
        status = _run("status", "--month", "2026-12", "--db", upgraded)
        assert status["by_state"] == {"returned": DECEMBER - 1, "moderated": 1}


def test_every_pack_counts_every_audit_after_an_upgrade(upgraded, tmp_path):
    db = store.open_store(upgraded)
    with clock.frozen(DAY):
        _run("import", str(FIXTURE / "outstanding"), "--db", upgraded)
        month, quarter, year = (
            period_for("2026-12", None, None),
            period_for(None, "2026-Q3", None),
            period_for(None, None, "2026"),
        )
        assert len(load_figures(db, month).audits) == DECEMBER
        assert len(load_figures(db, quarter).audits) == DECEMBER + NOVEMBER
        _new_audits(tmp_path, upgraded, count=4)  # this release's forms, the same month
        assert len(load_figures(db, year).audits) == DECEMBER + NOVEMBER + 4
        figures = load_figures(db, month)
        assert sum(t["completed"] for t in figures.by_team.values()) == DECEMBER
        assert sum(figures.grades.get("grade", {}).values()) >= 5  # v1 grades are read
    if upgraded.startswith("sqlite"):  # rendering is backend-blind: once is enough
        with clock.frozen(DAY):
            files = _run("pack", "file", "--month", "2026-12", "--format", "docx", "--out",
                         str(tmp_path / "file"), "--db", upgraded)  # fmt: skip
            assert sum(f.endswith("-file.docx") for f in files["files"]) == DECEMBER
            year_pack = to_docx(pmu_document(load_figures(db, year)))
            assert f"{DECEMBER + NOVEMBER + 4} audits" in _text(year_pack)


def _text(docx: bytes) -> str:
    return " ".join(p.text for p in Document(io.BytesIO(docx)).paragraphs)


def _new_audits(tmp_path: Path, url: str, count: int) -> None:
    form = get_form("csc")
    rng = random.Random(3)
    rows = [synthetic_case(form, 90 + i, dt.date(2026, 12, 31), rng) for i in range(count)]
    write_case_list(tmp_path / "cases.csv", rows)
    _run("generate", "--form", "csc", "--cases", str(tmp_path / "cases.csv"), "--out",
         str(tmp_path / "forms"), "--db", url)  # fmt: skip


def test_a_version_nobody_holds_is_named_not_skipped(db):
    """A team tool whose definition is gone: the pack refuses and names the audits."""
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into audits (audit_id, form_id, form_version, case_number, auditor,"
                " month, due_date, checksum, facts, created_at, updated_at) values ('T-1',"
                " 'team_tool', 3, '1', 'x', '2026-12', '2026-12-31', 'c', '{}', '2026-12-01',"
                " '2026-12-01')"
            )
        )
    assert db.unknown_versions() == {("team_tool", 3): ["T-1"]}
    with pytest.raises(UnknownVersionsError, match=r"1 audit\(s\).*team_tool v3: T-1"):
        load_figures(db, period_for("2026-12", None, None))
    issues = db.version_issues([])
    assert [i.code.label for i in issues] == ["version-not-held"]
    assert "team_tool" in issues[0].message and "version 3" in issues[0].message


def test_the_upgrade_names_audits_whose_version_nobody_holds(db_url):
    _release_database(db_url)
    with store.engine_for(db_url).begin() as conn:  # a team tool the team folder lost
        conn.execute(
            sa.text(
                "insert into audits (audit_id, form_id, form_version, case_number, auditor, month,"
                " due_date, checksum, facts, created_at, updated_at) select 'T-1', 'team_tool', 3,"
                " case_number, auditor, month, due_date, checksum, facts, created_at, updated_at"
                " from audits where audit_id = (select min(audit_id) from audits)"
            )
        )
    store.engine_for(db_url).dispose()
    told = CliRunner().invoke(cli, ["status", "--db", db_url])
    assert told.exit_code == 0, told.output
    assert "1 audit(s) of team_tool v3 cannot be read, packed or counted" in told.stderr
    assert "(T-1)" in told.stderr


def test_every_earlier_shipped_version_is_in_the_frozen_history():
    kept = set(shipped_versions())
    for form in shipped_forms().values():
        assert {(form.id, v) for v in range(1, form.version)} <= kept
    csc = shipped_definition("csc", 1)
    assert csc is not None and csc.version == 1
    assert csc.judgements.grade == IMPLIED_JUDGEMENTS["grade"]
    assert csc.digest != get_form("csc").digest
