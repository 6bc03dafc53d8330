"""Benchmark: building a PMU quarter pack from 10,000 stored audits (and from 100), and an
annual pack of 100,000 on PostgreSQL.

Seeds a throwaway database with synthetic audits, returns, answers, grades and actions (bulk
inserts, not the import path), then times `pmu_pack` in a fresh process and reports that
process's peak resident memory, in the same run. Then times the workbook's long Answers sheet
written by sheet_stream.py against a minimal raw-XML writer of the same rows (inline strings,
escaped, into the same sink), in the same process.
Targets: 10,000 audits under 10 s and 500 MB; 100 audits under 2 s; the Answers sheet within
1.5x the raw-XML writer; 100,000 audits' annual pack on PostgreSQL under 60 s and 1 GB.

    python bench/pack.py [--audits 10000]
    python bench/pack.py --tiny   # one pack of 20 audits, against the small target (smoke run)
    python bench/pack.py --db postgresql+psycopg://... [--audits 100000] [--seeded]
        # the annual pack; the database must be empty and throwaway: the run fills it
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import escape

import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.packs.sheet_stream import Row
from formtool.store.catalog import record_snapshots

MONTHS = ("2026-10", "2026-11", "2026-12")  # 2026-Q3
YEAR = tuple(
    f"{y}-{m:02d}" for y, m in [*((2026, m) for m in range(4, 13)), (2027, 1), (2027, 2), (2027, 3)]
)
BATCH = 2_000  # audits seeded at a time: a year's answers do not fit in memory
TEAMS = [f"Team {c} (synthetic)" for c in "ABCDEFGH"]


def seed(engine: sa.Engine, count: int, months: tuple[str, ...] = MONTHS) -> None:
    """`count` synthetic CSC audits over `months`, nine in ten returned (deterministic)."""
    form = get_form("csc")
    with store.transaction(engine) as conn:
        record_snapshots(conn, [form])  # packs read each audit with its own version
    for start in range(0, count, BATCH):
        _seed_batch(engine, range(start, min(count, start + BATCH)), months)


def _seed_batch(engine: sa.Engine, numbers: range, months: tuple[str, ...]) -> None:
    form = get_form("csc")
    grade_scale = form.grade_scale
    assert grade_scale is not None
    grades_allowed = grade_scale.choices
    rng = random.Random(numbers.start)
    questions = [q.key for q in form.questions()]
    mets = [f"{s.id}.met" for s in form.sections if s.id.startswith("kss")]
    stamp = dt.datetime(2026, 12, 1, 9, 0)
    audits: list[dict[str, object]] = []
    returns: list[dict[str, object]] = []
    answers: list[dict[str, object]] = []
    grades: list[dict[str, object]] = []
    actions: list[dict[str, object]] = []
    for i in numbers:
        audit_id, month = f"CSC-B{i:06d}-{i % 3}", months[i % len(months)]
        due = dt.date(int(month[:4]), int(month[5:]), 28)
        audits.append(
            {
                "audit_id": audit_id,
                "form_id": "csc",
                "form_version": form.version,
                "case_number": f"B{i:06d}",
                "auditor": f"Auditor {i % 40}",
                "team": TEAMS[i % 8],
                "worker": "",
                "manager": "",
                "month": month,
                "due_date": due,
                "state": "returned" if i % 10 else "allocated",
                "checksum": "x",
                "facts": json.dumps({"case_number": f"B{i:06d}"}),
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
        for key in questions:
            answers.append(
                {
                    "return_id": rid,
                    "key": key,
                    "comment": "Evidence text.",
                    "value": rng.choice(("Yes", "Yes", "Partially", "No", "N/A")),
                }
            )
        for key in mets:
            answers.append(
                {
                    "return_id": rid,
                    "key": key,
                    "comment": "",
                    "value": rng.choice(("Met", "Partially met", "Not met")),
                }
            )
        grade = rng.choice(grades_allowed)
        answers.append({"return_id": rid, "key": "overall.grade", "value": grade, "comment": ""})
        grades.append(
            {
                "audit_id": audit_id,
                "auditor_grade": grade,
                "return_id": rid,
                "moderated_grade": rng.choice(grades_allowed) if i % 10 == 1 else "",
            }
        )
        for row in (1, 2):
            actions.append(
                {
                    "return_id": rid,
                    "table_key": "next_steps.actions",
                    "row": row,
                    "action": "Update the plan",
                    "responsible_person": "Worker",
                    "due_date": due + dt.timedelta(days=30),
                }
            )
    with store.transaction(engine) as conn:
        for table, rows in (
            (store.audits, audits),
            (store.returns, returns),
            (store.answers, answers),
            (store.grades, grades),
            (store.actions, actions),
        ):
            for start in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[start : start + 20_000])


PACK = """
import datetime as dt, json, sys, time
from pathlib import Path
from formtool import store
from formtool.packs.pmu import pmu_pack
db = store.open_store(sys.argv[1])
period = json.loads(sys.argv[3])
start, cpu = time.perf_counter(), time.process_time()
pmu_pack(db, Path(sys.argv[2]), as_of=dt.date.fromisoformat(sys.argv[4]), **period)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec (the parent's size would show)
status = open("/proc/self/status").read()
peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb}))
"""
QUARTER = ({"quarter": "2026-Q3"}, dt.date(2027, 1, 5))
ANNUAL = ({"year": "2026"}, dt.date(2027, 4, 5))


class Packed(NamedTuple):
    seconds: float  # wall clock: the target's
    peak_mb: float
    cpu: float  # the process's CPU seconds: what the wall would be on a quiet machine, about


def pack_in_process(url: str, out: Path, annual: bool = False) -> Packed:
    """Seconds, peak RSS (MB) and CPU seconds of a fresh process that builds the quarter's
    pack (the year's when `annual`) from the store at `url` (imports in memory, not in time)."""
    period, as_of = ANNUAL if annual else QUARTER
    result = subprocess.run(
        [sys.executable, "-c", PACK, url, str(out), json.dumps(period), as_of.isoformat()],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"building the pack from {url.split('@')[-1]} failed:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    return Packed(report["seconds"], report["peak_mb"], report["cpu"])


def measure(count: int, url: str | None = None, annual: bool = False) -> tuple[float, float]:
    """Seed `count` audits (into `url`, an empty throwaway database, or a temporary SQLite
    one) and build the pack in a fresh process: its seconds and peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = store.open_store(url)
        seed(db.engine, count, YEAR if annual else MONTHS)  # bulk inserts into the tables
        db.engine.dispose()
        packed = pack_in_process(url, Path(tmp) / "out", annual)
        return packed.seconds, packed.peak_mb


def answer_rows(url: str) -> list[Row]:
    """The quarter's Answers sheet rows, as the workbook streams them."""
    from formtool.packs.figures import load_figures
    from formtool.packs.workbook import _answers
    from formtool.periods import period_for

    db = store.open_store(url)
    figures = load_figures(db, period_for(**QUARTER[0]), QUARTER[1])
    rows = list(_answers(figures, include_names=True).rows())
    db.engine.dispose()
    return rows


class Discard:
    """A text sink that keeps nothing: both writers pay for their text, not for storing it."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def raw_sheet(rows: list[Row], out: Discard) -> None:
    """The floor: the same rows as the simplest valid sheet XML (inline strings, escaped)."""
    for number, row in enumerate(rows, start=2):
        out.write(
            f'<row r="{number}">'
            + "".join(f'<c t="inlineStr"><is><t>{escape(str(v))}</t></is></c>' for v in row)
            + "</row>"
        )


def streamed_sheet(rows: list[Row], out: Discard) -> None:
    from formtool.packs.sheet_stream import SharedStrings, write_rows

    write_rows(rows, out, SharedStrings(), frozenset({9}), 0, [0] * 10)  # type: ignore[arg-type]


def writer_ratio(url: str) -> tuple[int, float, float]:
    """Rows, and the best of three seconds of sheet_stream's writer and the raw one."""
    rows = answer_rows(url)
    best = {}
    for writer in (raw_sheet, streamed_sheet):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            writer(rows, Discard())
            times.append(time.perf_counter() - start)
        best[writer] = min(times)
    return len(rows), best[streamed_sheet], best[raw_sheet]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=None, help="10,000 (100,000 with --db)")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: one pack of 20 audits, against the 100 audits' target",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="an empty, throwaway PostgreSQL database: the annual pack of 100,000 audits there",
    )
    parser.add_argument(
        "--seeded",
        action="store_true",
        help="with --db: the database holds this script's audits already (seeding 100,000"
        " takes minutes); build the pack only",
    )
    args = parser.parse_args()
    if args.db:
        annual(args.db, args.audits or 100_000, args.seeded)
        return
    count = args.audits or 10_000
    sizes = ((20, 2.0),) if args.tiny else ((100, 2.0), (count, 10.0))
    print("PMU quarter pack (report .docx + .pdf, workbook .xlsx), same machine, same run:")
    figures, verdicts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for count, limit_s in sizes:
            url = f"sqlite:///{Path(tmp) / f'bench-{count}.db'}"
            db = store.open_store(url)
            seed(db.engine, count)
            db.engine.dispose()
            seconds, peak, cpu = pack_in_process(url, Path(tmp) / f"out-{count}")
            time_ok, memory_ok = verdict(seconds < limit_s), verdict(peak < 500)
            print(
                f"  {count:>6} audits: {seconds:6.2f} s  [< {limit_s:.0f} s] {time_ok}"
                f"   peak {peak:7.1f} MB  [< 500 MB] {memory_ok}   (CPU {cpu:.2f} s)"
            )
            figures.append(
                f"{count:,} audits {seconds:.1f} s (CPU {cpu:.1f} s), peak {peak:.0f} MB"
            )
            verdicts.append(f"{count:,} < {limit_s:.0f} s: {time_ok}")
        rows, streamed, raw = writer_ratio(url)
    ratio = streamed / raw
    print(
        f"Answers sheet, {rows} rows: sheet_stream {streamed:.3f} s, raw XML {raw:.3f} s:"
        f" {ratio:.2f}x  [<= 1.5x] {verdict(ratio <= 1.5)}"
    )
    if not args.tiny:
        from results import record

        record(
            "pack.py",
            "PMU quarter pack from stored audits (report .docx + .pdf, workbook); the"
            " workbook's Answers sheet writer against a raw-XML writer of the same rows",
            "; ".join(figures) + f"; Answers sheet of {rows:,} rows {ratio:.2f}x the raw XML",
            "; ".join(verdicts) + f"; < 500 MB: {verdict(peak < 500)}"
            f"; <= 1.5x raw XML: {verdict(ratio <= 1.5)}",
        )


def annual(url: str, count: int, seeded: bool = False) -> None:
    """The year's pack of `count` audits from an empty PostgreSQL database at `url` (or one
    this script has `seeded` already)."""
    print(f"PMU annual pack, {count} audits on {url.split(':')[0]}:")
    if not seeded:
        db = store.open_store(url)
        seed(db.engine, count, YEAR)
        db.engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak, cpu = pack_in_process(url, Path(tmp), annual=True)
    print(
        f"  {count:>6} audits: {seconds:6.2f} s  [< 60 s] {verdict(seconds < 60)}"
        f"   peak {peak:7.1f} MB  [< 1000 MB] {verdict(peak < 1000)}   (CPU {cpu:.2f} s)"
    )


if __name__ == "__main__":
    main()
