"""Benchmark: building a PMU quarter pack from 10,000 stored audits (and from 100).

Seeds a throwaway SQLite database with synthetic audits, returns, answers, grades and
actions (bulk inserts, not the import path), then times `pmu_pack` in a fresh process and reports
that process's peak resident memory, in the same run.
Targets: 10,000 audits under 10 s and 500 MB; 100 audits under 2 s.

    python bench/pack.py [--audits 10000]
    python bench/pack.py --tiny   # one pack of 20 audits, against the small target (smoke run)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from formtool import store
from formtool.definitions import get_form
from formtool.store.catalog import record_snapshots

MONTHS = ("2026-10", "2026-11", "2026-12")
TEAMS = [f"Team {c} (synthetic)" for c in "ABCDEFGH"]


def seed(engine: sa.Engine, count: int) -> None:
    form = get_form("csc")
    grade_scale = form.grade_scale
    assert grade_scale is not None
    grades_allowed = grade_scale.choices
    rng = random.Random(1)
    questions = [q.key for q in form.questions()]
    mets = [f"{s.id}.met" for s in form.sections if s.id.startswith("kss")]
    stamp = dt.datetime(2026, 12, 1, 9, 0)
    audits: list[dict[str, object]] = []
    returns: list[dict[str, object]] = []
    answers: list[dict[str, object]] = []
    grades: list[dict[str, object]] = []
    actions: list[dict[str, object]] = []
    for i in range(count):
        audit_id, month = f"CSC-B{i:06d}-{i % 3}", MONTHS[i % 3]
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
        rid = len(returns) + 1
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
        record_snapshots(conn, [form])  # packs read each audit with its own version
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
start = time.perf_counter()
pmu_pack(db, Path(sys.argv[2]), quarter="2026-Q3", as_of=dt.date(2027, 1, 5))
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec (the parent's size would show)
status = open("/proc/self/status").read()
peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))
"""


def measure(count: int) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of a fresh process that builds the pack (imports included
    in memory, not in time)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = store.open_store(url)
        seed(db.engine, count)  # bulk inserts straight into the tables
        db.engine.dispose()
        result = subprocess.run(
            [sys.executable, "-c", PACK, url, str(Path(tmp) / "out")],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        sys.exit(f"building the pack of {count} audits failed:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    return report["seconds"], report["peak_mb"]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audits", type=int, default=10_000)
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: one pack of 20 audits, against the 100 audits' target",
    )
    args = parser.parse_args()
    sizes = ((20, 2.0),) if args.tiny else ((100, 2.0), (args.audits, 10.0))
    print("PMU quarter pack (report .docx + .pdf, workbook .xlsx), same machine, same run:")
    for count, limit_s in sizes:
        seconds, peak = measure(count)
        time_ok, memory_ok = verdict(seconds < limit_s), verdict(peak < 500)
        print(
            f"  {count:>6} audits: {seconds:6.2f} s  [< {limit_s:.0f} s] {time_ok}"
            f"   peak {peak:7.1f} MB  [< 500 MB] {memory_ok}"
        )


if __name__ == "__main__":
    main()
