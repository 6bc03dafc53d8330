"""Benchmark: importing 500 filled CSC returns, and 1,000 into a store holding 100,000 audits.

Prints ms per form, all measured in this run on the same files:
  .docx  formtool read (identity + every answer), formtool import (read + validate + store),
         python-docx merely opening the file, raw unzip + lxml parse of document.xml (floor);
  .xlsx  formtool read and import, openpyxl load, python-calamine reading every cell.
Then a hostile batch of 100 files (damaged and hostile zips, OLE/password files, XXE and
entity bombs, hidden macros, bad XML, amplification files, out-of-range dates, 1 GB zip bombs)
next to a clean batch of 100 returns, each imported by a fresh process under a 2 GB address
space limit: seconds of the import, peak RSS, and the hostile files counted by issue code.
Every hostile file must be rejected with its own code, or the script exits 1.
At scale: a store seeded with --seed audits (bulk inserts straight into the tables: audits,
nine in ten with a current return, its answers and grade), on SQLite and on PostgreSQL (a
throwaway database on the server named by --db or $FORMTOOL_TEST_PG; skipped without one);
then --returns filled returns of other audits imported by `import_paths`, against the raw
unzip + lxml parse of the same files (floor), measured in the same run. Every statement the
import sends for a few returns is then explained (SQLite EXPLAIN QUERY PLAN, PostgreSQL
EXPLAIN, after ANALYZE): a full scan of a table is named.
Targets: .docx read within 3x of the floor, and at least 5x faster than python-docx opening;
the hostile batch within 2x the clean batch's time and under 300 MB; at scale, import within
3x the floor on each backend, and no full scan.

    python bench/import.py [--forms 500] [--seed 100000] [--returns 1000] [--db URL]
    python bench/import.py --tiny   # the suite's smoke run: 20 .docx and 2 .xlsx returns, a
        hostile batch of 20 (each kind once, the zip bomb 3 times), 20 returns into a store of
        500 audits (SQLite only); python-calamine optional
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bulk import after_bulk_load, throwaway_database
from lxml import etree

from formtool import store
from formtool.definitions import get_form
from formtool.definitions.identity import defined_name
from formtool.definitions.scales import FieldKind
from formtool.demo.fill import fill_docx, fill_xlsx
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.generate import record_audits, render
from formtool.read import read_bytes
from formtool.read.batch import import_paths
from formtool.read.cases import Case

# The hostile-file makers the tests use (tests/hostile_files.py), so the batch benchmarked is
# the batch tested.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hostile_files import (
    LAUGHS,
    OLE,
    XXE,
    bookmark_bomb,
    corrupt_deflate,
    future_zip_version,
    hidden_macros,
    member,
    shared_string_bomb,
    utf16_xxe,
    with_member,
    wrong_directory_offset,
    zip_bomb,
)

TODAY = dt.date(2026, 11, 22)
BATCH = 100  # files in the hostile batch and in the clean batch it is compared with
DOC = "word/document.xml"


def make_returns(
    folder: Path, count: int, fmt: str, label: str = ""
) -> tuple[list[Path], list[Case]]:
    """Filled returns with synthetic answers (filling .xlsx goes through openpyxl: slow);
    `label` keeps the audit ids of one set apart from another's."""
    folder.mkdir(parents=True, exist_ok=True)
    form = get_form("csc")
    rng = random.Random(5)
    dates = frozenset(f.key for f in form.fields() if f.kind is FieldKind.date)
    paths, cases = [], []
    for i in range(count):
        row = synthetic_case(form, i, dt.date(2026, 11, 30), rng)
        case = Case(
            f"CSC-B{fmt}{label}{i:05d}-202611",
            "csc",
            form.version,
            {h.column: row[h.column] for h in form.header},
        )
        answers = synthetic_answers(form, case, rng, TODAY)
        blank = render(form, case, fmt)
        data = fill_docx(blank, answers) if fmt == "docx" else fill_xlsx(blank, answers, dates)
        path = folder / f"{case.audit_id}.{fmt}"
        path.write_bytes(data)
        paths.append(path)
        cases.append(case)
    return paths, cases


def per_form(label: str, func, paths: list[Path]) -> float:
    func(paths[0])
    start = time.perf_counter()
    for path in paths:
        func(path)
    ms = (time.perf_counter() - start) * 1000 / len(paths)
    print(f"  {label:<44} {ms:8.2f} ms/form")
    return ms


def floor_docx(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        etree.fromstring(archive.read("word/document.xml"))


# --- hostile batch: every way a returned file can be broken or built to attack ----------------

SERIALS = ("2958466", "nan", "inf", "-1e300", "1e309", "-5")  # outside Excel's dates
BOMBS = 3  # copies of the 1 GB zip bomb (slow to build: built once, copied)
MEASURE = """
import datetime, json, re, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a regression cannot take the box
from formtool.read.batch import import_paths
from formtool.store import open_store

def peak_mb():
    # Linux keeps ru_maxrss across exec, so a child started by a big parent reports the
    # parent's size: read this program's own high-water mark (VmHWM) where there is one.
    try:
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read())[1]) / 1024
    except (OSError, TypeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

db = open_store(sys.argv[1])
ready_mb = peak_mb()
start = time.perf_counter()
outcomes = import_paths(db, [sys.argv[2]], datetime.date(2026, 11, 22))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "ready_mb": ready_mb, "peak_mb": peak_mb(),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "outcomes": [[o.file, o.status, [i.code.label for i in o.issues
                                                   if not i.is_warning]] for o in outcomes]}))
"""


def bad_date(xlsx: bytes, serial: str) -> bytes:
    """A number outside Excel's date range typed into the completion date cell."""
    book = member(xlsx, "xl/workbook.xml").decode()
    name = defined_name("completion.completed_on")
    found = re.search(rf'<definedName name="{name}">[^<]*\$([A-Z]+)\$(\d+)<', book)
    assert found, "no defined name for the completion date"
    sheet = member(xlsx, "xl/worksheets/sheet1.xml").decode()
    sheet, hits = re.subn(
        rf'(<c r="{found[1]}{found[2]}"[^>]*>)<v>[^<]*</v>', rf"\g<1><v>{serial}</v>", sheet
    )
    assert hits == 1, "the completion date cell holds no number"
    return with_member(xlsx, "xl/worksheets/sheet1.xml", sheet.encode())


#: kind -> (the code it must be rejected with, suffix, builder from a .docx return, an .xlsx
#: return and the copy's number among the files of its kind)
HOSTILE: dict[str, tuple[str, str, Callable[[bytes, bytes, int], bytes]]] = {
    "corrupted deflate": ("damaged", ".docx", lambda d, x, i: corrupt_deflate(d)),
    "zip version 9.9": ("damaged", ".docx", lambda d, x, i: future_zip_version(d)),
    "wrong directory offset": ("damaged", ".docx", lambda d, x, i: wrong_directory_offset(d)),
    "not a zip": ("not-a-zip", ".docx", lambda d, x, i: b"Dear QA team, please find..."),
    "truncated": ("not-a-zip", ".docx", lambda d, x, i: d[: len(d) // 2]),
    "password / OLE": ("encrypted", ".docx", lambda d, x, i: OLE + b"\0" * 4096),
    "XXE": ("entities", ".docx", lambda d, x, i: with_member(d, DOC, XXE)),
    "XXE in UTF-16": (
        "entities",
        ".docx",
        lambda d, x, i: with_member(d, DOC, utf16_xxe()),
    ),
    "billion laughs": ("entities", ".docx", lambda d, x, i: with_member(d, DOC, LAUGHS)),
    "macros by content type": ("macros", ".docx", lambda d, x, i: hidden_macros(d, "content type")),
    "macros by relationship": ("macros", ".docx", lambda d, x, i: hidden_macros(d, "relationship")),
    "bad XML": ("bad-xml", ".docx", lambda d, x, i: with_member(d, DOC, b"<w:document>\n<w:b>")),
    "no document part": ("no-document", ".docx", lambda d, x, i: with_member(d, DOC, None)),
    "1 MB shared string everywhere": (
        "field-too-long",
        ".xlsx",
        lambda d, x, i: shared_string_bomb(x, keep_identity=True),
    ),
    "same, identity removed": (
        "no-identity",
        ".xlsx",
        lambda d, x, i: shared_string_bomb(x, keep_identity=False),
    ),
    "unclosed bookmarks + big text": (
        "too-much-text",
        ".docx",
        lambda d, x, i: bookmark_bomb(d, get_form("csc")),
    ),
    "number out of date range": (
        "bad-answer-date",
        ".xlsx",
        lambda d, x, i: bad_date(x, SERIALS[i % len(SERIALS)]),
    ),
}


def hostile_batch(
    folder: Path, docx: list[Path], xlsx: list[Path], batch: int = BATCH
) -> dict[str, tuple[str, str]]:
    """`batch` files: BOMBS zip bombs, then the other kinds in turn, each built from a different
    real return. File name -> (kind, the code it must be rejected with)."""
    folder.mkdir()
    expected = {}
    zip_bomb(folder.parent / "bomb.docx")
    for n in range(BOMBS):
        shutil.copyfile(folder.parent / "bomb.docx", folder / f"zip-bomb-{n}.docx")
        expected[f"zip-bomb-{n}.docx"] = ("zip bomb (1 GB member)", "zip-bomb")
    kinds = list(HOSTILE)
    for n in range(batch - BOMBS):
        kind = kinds[n % len(kinds)]
        code, suffix, build = HOSTILE[kind]
        data = build(
            docx[n % len(docx)].read_bytes(), xlsx[n % len(xlsx)].read_bytes(), n // len(kinds)
        )
        name = f"{n:03d}-{re.sub(r'[^a-z0-9]+', '-', kind.lower())}{suffix}"
        (folder / name).write_bytes(data)
        expected[name] = (kind, code)
    return expected


def measure_batch(url: str, cases: list[Case], folder: Path) -> dict:
    """Import a folder in a fresh process, on a fresh database with the audits recorded:
    seconds of import_paths, peak RSS (MB) of the process, and every outcome."""
    db = store.open_store(url)
    record_audits(db, get_form("csc"), cases)
    db.engine.dispose()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, url, str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        sys.exit(f"importing {folder.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def calamine_reader(optional: bool) -> Callable[[Path], object] | None:
    """Reads every cell with python-calamine; None if it is not installed and `optional` (the
    smoke run: the test extras do not include it)."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:
        if optional:
            return None
        raise
    return lambda path: CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()


# --- at scale: a store already holding a year of a region's audits -------------------------

SEED, AT_SCALE = 100_000, 1_000  # audits in the store; returns imported into it
EXPLAINED = 5  # returns imported first, their statements explained (not timed)
TURN = 20  # returns imported, then their floor taken, in turns
CHUNK = 5_000  # audits seeded per insert
#: Tables that grow with the audits: a full scan of one is a missing index.
GROWING = (
    "audits",
    "returns",
    "answers",
    "actions",
    "grades",
    "events",
    "rejections",
    "concerns",
    "audit_copies",
    "access_log",
    "stored_files",
)


Rows = list[dict[str, object]]


def _seed_rows(
    start: int, stop: int, rng: random.Random
) -> tuple[Rows, Rows, list[tuple[int, str, str, str]], Rows]:
    """Audits start..stop (not the imported ones: ids CSC-S...), nine in ten with a current
    return, its answers (as tuples: return id, key, value, comment) and grade."""
    form = get_form("csc")
    scale = form.grade_scale
    assert scale is not None
    keys = [q.key for q in form.questions()]
    keys += [f"{s.id}.met" for s in form.sections if s.id.startswith("kss")]
    stamp = dt.datetime(2026, 9, 1, 9, 0)
    audits: Rows = []
    returns: Rows = []
    answers: list[tuple[int, str, str, str]] = []
    grades: Rows = []
    for i in range(start, stop):
        audit_id, month = f"CSC-S{i:06d}-{i % 12}", f"2026-{1 + i % 12:02d}"
        audits.append(
            {
                "audit_id": audit_id,
                "form_id": "csc",
                "form_version": form.version,
                "case_number": f"S{i:06d}",
                "auditor": f"Auditor {i % 400}",
                "team": f"Team {i % 80} (synthetic)",
                "month": month,
                "due_date": dt.date(2026, 1 + i % 12, 28),
                "state": "returned" if i % 10 else "allocated",
                "checksum": "x",
                "facts": json.dumps({"case_number": f"S{i:06d}"}),
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        if i % 10 == 0:
            continue
        rid = i + 1
        returns.append(
            {
                "id": rid,
                "audit_id": audit_id,
                "file_name": f"{audit_id}.docx",
                "content_hash": f"{i:064d}",
                "content": b"",
                "imported_at": stamp,
                "is_current": True,
                "method": "bookmarks",
                "final": True,
            }
        )
        for key in keys:
            answers.append((rid, key, rng.choice(("Yes", "Partially", "No")), "Evidence."))
        grade = rng.choice(scale.choices)
        grades.append({"audit_id": audit_id, "auditor_grade": grade, "return_id": rid})
    return audits, returns, answers, grades


def _insert_answers(conn: sa.Connection, rows: list[tuple[int, str, str, str]]) -> None:
    """Answers by the fastest way each backend has: COPY on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            sql = "COPY answers (return_id, key, value, comment) FROM STDIN"
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
    else:
        conn.exec_driver_sql(
            "INSERT INTO answers (return_id, key, value, comment) VALUES (?, ?, ?, ?)", rows
        )


def seed_store(engine: sa.Engine, count: int) -> None:
    """`count` audits straight into the tables (as bench/pack.py seeds them, in chunks so
    memory stays flat), then the planner's statistics."""
    rng = random.Random(1)
    with store.transaction(engine) as conn:
        for start in range(0, count, CHUNK):
            audits, returns, answers, grades = _seed_rows(start, min(count, start + CHUNK), rng)
            conn.execute(store.audits.insert(), audits)
            if returns:
                conn.execute(store.returns.insert(), returns)
                _insert_answers(conn, answers)
                conn.execute(store.grades.insert(), grades)
    after_bulk_load(engine)


@contextmanager
def scale_database(backend: str, folder: Path, server: str) -> Iterator[str]:
    """A fresh database: a SQLite file, or a throwaway PostgreSQL database, dropped after."""
    if backend == "SQLite":
        yield f"sqlite:///{folder / f'scale-{uuid.uuid4().hex[:8]}.db'}"
        return
    with throwaway_database(server) as url:
        yield url


Statement = tuple[str, Any]  # SQL and its parameters, as the driver got them


def _captured(engine: sa.Engine) -> tuple[list[Statement], Callable[[], None]]:
    """Every statement the engine sends (one execution each, not executemany), and a
    function that stops the capture."""
    seen: list[Statement] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if not executemany:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", capture)


def full_scans(engine: sa.Engine, statements: list[Statement]) -> tuple[int, list[str]]:
    """Explain each distinct SELECT, UPDATE and DELETE: how many, and the full scans of a
    growing table among them (SQLite SCAN, PostgreSQL Seq Scan), with their statement."""
    sqlite = engine.dialect.name == "sqlite"
    done: set[str] = set()
    scans: list[str] = []
    with engine.connect() as conn:
        for sql, params in statements:
            if sql.lstrip().split(None, 1)[0].upper() not in ("SELECT", "UPDATE", "DELETE"):
                continue
            if sql in done:
                continue
            done.add(sql)
            plan = conn.exec_driver_sql(
                ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, params
            ).all()
            lines = [str(row[-1] if sqlite else row[0]) for row in plan]
            for line in lines:
                found = re.search(r"\bSCAN (\w+)" if sqlite else r"Seq Scan on (\w+)", line)
                if found and found[1] in GROWING:
                    scans.append(f"{line.strip()}  <-  {' '.join(sql.split())[:160]}")
        conn.rollback()
    return len(done), scans


def at_scale(url: str, seed: int, files: list[Path], cases: list[Case]) -> dict:
    """Seed, then import the files (the first EXPLAINED captured and explained, the rest
    timed, in turns with the floor of the same files, in the same process)."""
    db = store.open_store(url)
    start = time.perf_counter()
    seed_store(db.engine, seed)
    seeded = time.perf_counter() - start
    record_audits(db, get_form("csc"), cases)
    statements, stop = _captured(db.engine)
    outcomes = import_paths(db, files[:EXPLAINED], TODAY)
    stop()
    # Imports and floors taken in turns, a batch at a time: on a shared machine the load
    # drifts, and it then weighs on both alike.
    timed = files[EXPLAINED:]
    import_s = floor_s = 0.0
    for at in range(0, len(timed), TURN):
        batch = timed[at : at + TURN]
        start = time.perf_counter()
        outcomes += import_paths(db, batch, TODAY)
        middle = time.perf_counter()
        for path in batch:
            floor_docx(path)
        import_s += middle - start
        floor_s += time.perf_counter() - middle
    wrong = [o for o in outcomes if o.status != "imported"]
    assert not wrong, f"{wrong[0].file}: {wrong[0].status} {wrong[0].issues}"
    import_ms, floor_ms = import_s * 1000 / len(timed), floor_s * 1000 / len(timed)
    print(f"  {'raw unzip + lxml parse (floor)':<44} {floor_ms:8.2f} ms/form")
    explained, scans = full_scans(db.engine, statements)
    db.engine.dispose()
    return {
        "seeded_s": seeded,
        "import_ms": import_ms,
        "floor_ms": floor_ms,
        "explained": explained,
        "scans": scans,
    }


def scale_runs(folder: Path, seed: int, count: int, server: str) -> dict[str, dict]:
    """The import at scale on SQLite, and on PostgreSQL if a server is named."""
    files, cases = make_returns(folder / "scale", count + EXPLAINED, "docx", "S")
    backends = ["SQLite", "PostgreSQL"] if server else ["SQLite"]
    print(f"\nImporting {count} returns into a store already holding {seed:,} audits:")
    results = {}
    for backend in backends:
        with scale_database(backend, folder, server) as url:
            print(f"  {backend}:")
            found = at_scale(url, seed, files, cases)
        results[backend] = found
        print(
            f"  {'formtool import at scale':<44} {found['import_ms']:8.2f} ms/form"
            f"   (seeded in {found['seeded_s']:.0f} s)"
        )
    return results


def keep(figures: dict[str, Any], scale: dict[str, dict], seed: int) -> None:
    """Record a full run in bench/results.json (the README's table is rendered from it)."""
    from results import record

    read, floor = figures["read_ms"], figures["floor_ms"]
    hostile, clean = figures["hostile"], figures["clean"]
    at_scale = "; ".join(
        f"{backend} {found['import_ms']:.1f} ms ({found['import_ms'] / found['floor_ms']:.1f}x "
        f"the floor of {found['floor_ms']:.1f} ms, {len(found['scans'])} full scans)"
        for backend, found in scale.items()
    )
    scale_met = all(f["import_ms"] <= 3 * f["floor_ms"] and not f["scans"] for f in scale.values())
    calamine = figures["calamine_ms"]
    record(
        "import.py",
        f"reading {figures['forms']} returns; 100 hostile files against 100 clean; "
        f"{AT_SCALE:,} returns into a store of {seed:,} audits",
        f".docx read {read:.1f} ms ({read / floor:.1f}x the unzip-and-parse floor of "
        f"{floor:.1f} ms), import {figures['import_ms']:.1f} ms; python-docx open "
        f"{figures['open_ms']:.1f} ms; .xlsx read {figures['xread_ms']:.1f} ms"
        + (f" (calamine {calamine:.1f} ms)" if calamine else "")
        + f"; hostile batch {hostile['seconds']:.2f} s vs clean {clean['seconds']:.2f} s, "
        f"peak {hostile['peak_mb']:.0f} MB; at scale: {at_scale}",
        f"read <= 3x floor: {verdict(read <= 3 * floor)}; hostile <= 2x clean and < 300 MB: "
        f"{verdict(hostile['seconds'] <= 2 * clean['seconds'] and hostile['peak_mb'] < 300)}; "
        f">= 5x faster than python-docx: {verdict(figures['open_ms'] >= 5 * read)}; import at "
        f"scale <= 3x floor, no full scan, both backends: {verdict(scale_met)}",
    )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def empty_store(args: argparse.Namespace) -> tuple[bool, dict[str, Any]]:
    """The read and import on an empty store, and the hostile batch: False if a hostile file
    was not rejected with its code (or a clean one was not imported); the figures."""
    batch_size, xlsx_count = (BOMBS + len(HOSTILE), 2) if args.tiny else (BATCH, 20)
    if args.tiny:
        args.forms = batch_size
    import docx
    import openpyxl

    calamine = calamine_reader(optional=args.tiny)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = store.open_store(f"sqlite:///{folder / 'bench.db'}")
        docx_paths, docx_cases = make_returns(folder, max(args.forms, batch_size), "docx")
        xlsx_paths, xlsx_cases = make_returns(folder, xlsx_count, "xlsx")
        record_audits(db, get_form("csc"), docx_cases + xlsx_cases)
        print(f"Importing {len(docx_paths)} filled CSC returns (.docx), same machine, same run:")
        read_ms = per_form(
            "formtool read (identity + all answers)",
            lambda p: read_bytes(p.read_bytes(), ".docx"),
            docx_paths,
        )
        start = time.perf_counter()
        outcomes = import_paths(db, docx_paths, TODAY)
        import_ms = (time.perf_counter() - start) * 1000 / len(docx_paths)
        assert all(o.status == "imported" for o in outcomes), outcomes[0]
        print(f"  {'formtool import (read + validate + store)':<44} {import_ms:8.2f} ms/form")
        open_ms = per_form("python-docx Document() only", lambda p: docx.Document(p), docx_paths)
        floor_ms = per_form("raw unzip + lxml parse (floor)", floor_docx, docx_paths)
        print(f"\n{len(xlsx_paths)} filled CSC returns (.xlsx):")
        xread_ms = per_form(
            "formtool read", lambda p: read_bytes(p.read_bytes(), ".xlsx"), xlsx_paths
        )
        per_form("openpyxl load_workbook", lambda p: openpyxl.load_workbook(p), xlsx_paths)
        calamine_ms = (
            per_form("python-calamine read all cells", calamine, xlsx_paths) if calamine else None
        )

        (folder / "clean").mkdir()
        for path in docx_paths[:batch_size]:
            shutil.copyfile(path, folder / "clean" / path.name)
        expected = hostile_batch(folder / "hostile", docx_paths, xlsx_paths, batch_size)
        all_cases = docx_cases + xlsx_cases
        clean = measure_batch(f"sqlite:///{folder / 'clean.db'}", all_cases, folder / "clean")
        hostile = measure_batch(f"sqlite:///{folder / 'hostile.db'}", all_cases, folder / "hostile")

    print(
        f"\nA hostile batch ({batch_size} files of {len(HOSTILE) + 1} kinds, {BOMBS} of them "
        f"1 GB zip bombs) and {batch_size} clean returns (.docx),\neach imported by a fresh "
        "process under RLIMIT_AS 2 GB: seconds of import_paths, peak RSS (VmHWM; peak before "
        "the first file):"
    )
    for label, batch in (("clean batch", clean), ("hostile batch", hostile)):
        tally = Counter(status for _, status, _ in batch["outcomes"])
        shown = ", ".join(f"{n} {s}" for s, n in sorted(tally.items()))
        print(
            f"  {label:<14} {shown:<14} {batch['seconds']:7.2f} s   peak "
            f"{batch['peak_mb']:4.0f} MB ({batch['ready_mb']:.0f} MB)"
        )
    print(
        f"  (ru_maxrss of the same processes: {clean['maxrss_mb']:.0f} and "
        f"{hostile['maxrss_mb']:.0f} MB, inherited across exec from this bench's process)"
    )
    failures = [
        f"clean: {name} {status} {codes}"
        for name, status, codes in clean["outcomes"]
        if status != "imported"
    ]
    codes: Counter[str] = Counter()
    for name, status, errors in hostile["outcomes"]:
        kind, code = expected.pop(Path(name).name)
        codes.update(errors[:1])
        if status != "rejected" or code not in errors:
            failures.append(
                f"hostile: {Path(name).name} ({kind}) {status} {errors}, expected rejected {code}"
            )
    failures += [f"hostile: {name} ({kind}) has no outcome" for name, (kind, _) in expected.items()]
    print(
        "  hostile files rejected, by issue code: "
        + ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
    )

    ratio = hostile["seconds"] / clean["seconds"]
    calamine_ratio = xread_ms / calamine_ms if calamine_ms else None
    print("\nRatios (target in brackets):")
    for label, value, target, met in (
        (".docx read / floor", read_ms / floor_ms, "<= 3x", read_ms / floor_ms <= 3),
        ("python-docx open / formtool read", open_ms / read_ms, ">= 5x", open_ms / read_ms >= 5),
        (".docx import / floor", import_ms / floor_ms, "reported", None),
        (".xlsx read / calamine", calamine_ratio, "reported", None),
        ("hostile batch / clean batch time", ratio, "<= 2x", ratio <= 2),
    ):
        if value is None:
            print(f"  {label:<34} skipped: python-calamine is not installed (.[bench])")
            continue
        print(f"  {label:<34} {value:8.2f}x  [{target}]{'' if met is None else ' ' + verdict(met)}")
    for name, batch, limit in (("hostile", hostile, 300), ("clean", clean, None)):
        peak = batch["peak_mb"]
        print(
            f"  {name + ' batch peak memory':<34} {peak:6.0f} MB  "
            + (f"[< {limit} MB] {verdict(peak < limit)}" if limit else "[reported]")
        )
    print(f"  every hostile file rejected with its code          {verdict(not failures)}")
    if failures:
        print("\n".join(["", *failures]))
    figures = {
        "forms": len(docx_paths),
        "read_ms": read_ms,
        "import_ms": import_ms,
        "open_ms": open_ms,
        "floor_ms": floor_ms,
        "xread_ms": xread_ms,
        "calamine_ms": calamine_ms,
        "hostile": hostile,
        "clean": clean,
    }
    return not failures, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=500, help=f"at least {BATCH}")
    parser.add_argument(
        "--seed", type=int, default=SEED, help=f"audits in the store at scale ({SEED:,})"
    )
    parser.add_argument(
        "--returns", type=int, default=AT_SCALE, help=f"returns imported at scale ({AT_SCALE:,})"
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("FORMTOOL_TEST_PG", ""),
        help="a PostgreSQL server URL for the run at scale (default $FORMTOOL_TEST_PG; none: "
        "SQLite only)",
    )
    parser.add_argument(
        "--scale-only", action="store_true", help="only the import into a store at scale"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: 20 .docx and 2 .xlsx returns, a hostile batch of "
        f"{BOMBS + len(HOSTILE)} (each kind once), 20 returns into a store of 500 audits "
        "(SQLite only); without python-calamine its row is skipped",
    )
    args = parser.parse_args()
    if args.tiny:
        args.seed, args.returns, args.db = 500, 20, ""
    ok, figures = (True, {}) if args.scale_only else empty_store(args)
    with tempfile.TemporaryDirectory() as tmp:
        results = scale_runs(Path(tmp), args.seed, args.returns, args.db)
    print(f"\nAt scale ({args.seed:,} audits in the store; target in brackets):")
    for backend, found in results.items():
        ratio = found["import_ms"] / found["floor_ms"]
        label = f".docx import / floor, {backend}"
        print(f"  {label:<34} {ratio:8.2f}x  [<= 3x] {verdict(ratio <= 3)}")
    for backend, found in results.items():
        scans = found["scans"]
        label = f"{backend}: {found['explained']} statements"
        print(f"  {label:<34} {len(scans):5d} full scans  [0] {verdict(not scans)}")
        for scan in scans:
            print(f"    {scan}")
    if figures and not args.tiny and args.seed >= SEED and "PostgreSQL" in results:
        keep(figures, results, args.seed)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
