"""Benchmark: 400 returns imported by 1, 2, 4 and 8 `formtool import` processes at once.

400 distinct filled CSC .docx returns of 400 audits are made once and reused for every run.
Each run gets a fresh database (SQLite file; PostgreSQL: a new database, dropped after) with
the audits recorded, then starts N `python -m formtool import ... --json` processes at once
and times from the first start to the last exit. Two variants:
  split  each process imports its share of the files (split evenly, disjoint);
  all    every process imports all of them, in the same order (maximum contention);
         run with 2 and 4 processes (8 x 400 takes minutes more: --contention 2,4,8).
After each run the database is checked: 400 returns, 400 current, 400 x the answers of one
return, each audit holding its own file's bytes, and the same answers, actions, grades and
events per audit as the one-process run; in `all`, each file was stored by one process and
reported unchanged by every other. Anything lost or doubled fails the script (exit 1).
Prints returns/s and the ratio to one process, all measured in this run.
Target: on PostgreSQL, 4 processes at least 1.6x the one-process rate (2-core machine).

    python bench/concurrency.py [--returns 400] [--pg URL] [--levels 1,2,4,8] [--contention 2,4]
    (the PostgreSQL server URL from --pg, else $FORMTOOL_TEST_PG; else PostgreSQL is skipped)
    python bench/concurrency.py --tiny   # 6 returns, 1 and 2 processes: the suite's smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from bulk import throwaway_database

from formtool import clock, store
from formtool.definitions import FormDefinition, get_form
from formtool.demo.fill import fill_docx, stamp_saved
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.generate import record_audits, write_forms
from formtool.read import read_bytes
from formtool.read.cases import Case, load_cases, write_case_list
from formtool.read.validate import validate_return

LEVELS = (1, 2, 4, 8)
CONTENTION = (2, 4)  # the all-files variant (8 x all 400 takes minutes: --contention 2,4,8)
TARGET_LEVEL, TARGET = 4, 1.6  # PostgreSQL: 4 processes >= 1.6x one process (issue 24)
FORMTOOL = [sys.executable, "-m", "formtool"]
Database = Callable[[Path], AbstractContextManager[str]]  # a fresh database's URL, dropped after


@dataclass
class Returns:
    """The returns every run imports, and what the database must hold afterwards."""

    form: FormDefinition
    cases: list[Case]
    files: list[Path]
    hashes: dict[str, str]  # audit id -> sha256 of its return
    answers_each: int  # answers stored per return of this form


@dataclass
class Run:
    backend: str
    processes: int
    variant: str  # "split" or "all"
    seconds: float
    cpu: float  # user + system seconds of the import processes
    problems: list[str] = field(default_factory=list)

    def rate(self, count: int) -> float:
        return count / self.seconds


def make_returns(folder: Path, count: int) -> Returns:
    """`count` audits and a distinct filled, Final, saved return for each."""
    form = get_form("csc")
    rng = random.Random(4)
    today = clock.today()
    rows = [synthetic_case(form, i, today + dt.timedelta(days=7), rng) for i in range(count)]
    write_case_list(folder / "cases.csv", rows)
    cases = load_cases(folder / "cases.csv", form)
    made = write_forms(form, cases, folder / "forms", ("docx",))
    saved = dt.datetime.combine(today, dt.time(9)) - dt.timedelta(days=2)
    (folder / "returns").mkdir()
    files, hashes = [], {}
    for i, item in enumerate(made):
        answers = synthetic_answers(form, item.case, rng, today)
        filled = fill_docx(item.path.read_bytes(), answers)
        data = stamp_saved(filled, saved + dt.timedelta(minutes=i))
        path = folder / "returns" / item.path.name
        path.write_bytes(data)
        files.append(path)
        hashes[item.case.audit_id] = hashlib.sha256(data).hexdigest()
    assert len(set(hashes.values())) == count  # every file distinct
    first = files[0].read_bytes()  # the answers one return holds, as formtool reads them
    record = validate_return(read_bytes(first, ".docx"), files[0].name).record
    assert record is not None, f"{files[0].name} does not read back"
    answers_each = len(record.answers)
    return Returns(form, cases, files, hashes, answers_each)


# --- databases --------------------------------------------------------------------------


@contextmanager
def sqlite_database(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder / f'run-{uuid.uuid4().hex[:8]}.db'}"


def postgresql_database(server: str) -> Database:
    return lambda _folder: throwaway_database(server)


# --- one run ----------------------------------------------------------------------------


def start_all(commands: list[list[str]], folder: Path) -> tuple[float, list[tuple[int, str]]]:
    """Start every command at once (output to files, so no pipe can stall a process); wait
    for all. Returns the seconds from the first start to the last exit, and each command's
    exit code and JSON output (its stderr instead, if it wrote any)."""
    outs = [folder / f"out-{n}.json" for n in range(len(commands))]
    errs = [folder / f"err-{n}.txt" for n in range(len(commands))]
    handles = [(o.open("w"), e.open("w")) for o, e in zip(outs, errs, strict=True)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(c, stdout=out, stderr=err)
        for c, (out, err) in zip(commands, handles, strict=True)
    ]
    codes = [p.wait(timeout=900) for p in procs]
    seconds = time.perf_counter() - start
    for out_file, err_file in handles:
        out_file.close()
        err_file.close()
    results = []
    for code, out, err in zip(codes, outs, errs, strict=True):
        text = err.read_text()
        results.append((code, out.read_text() if code == 0 and not text.strip() else text))
    return seconds, results


def shares(files: list[Path], processes: int, variant: str) -> list[list[Path]]:
    if variant == "all":
        return [files] * processes
    return [files[n::processes] for n in range(processes)]


def run_once(
    backend: str,
    database: Database,
    returns: Returns,
    processes: int,
    variant: str,
    folder: Path,
    reference: dict[str, tuple] | None,
) -> tuple[Run, dict[str, tuple]]:
    with database(folder) as url:
        db = store.open_store(url)
        record_audits(db, returns.form, returns.cases)
        batches = shares(returns.files, processes, variant)
        commands = [[*FORMTOOL, "import", *map(str, b), "--db", url, "--json"] for b in batches]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, results = start_all(commands, folder)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        run = Run(backend, processes, variant, seconds, cpu)
        run.problems += outcome_problems(results, returns, processes, variant)
        fingerprint = audit_fingerprint(db.engine)  # straight from the tables
        db.engine.dispose()
    run.problems += database_problems(fingerprint, returns, reference)
    return run, fingerprint


def outcome_problems(
    results: list[tuple[int, str]], returns: Returns, processes: int, variant: str
) -> list[str]:
    """What the processes said: every file stored by exactly one of them, and in `all`
    reported unchanged by every other."""
    problems = []
    outcomes = []
    for n, (code, text) in enumerate(results):
        if code != 0 or not text.startswith("["):  # a failure, or anything on stderr
            problems.append(f"process {n} exited {code}: {text.strip()[-800:]}")
        else:
            outcomes += json.loads(text)
    if problems:
        return problems
    by_file: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        by_file.setdefault(Path(outcome["file"]).name, Counter())[outcome["status"]] += 1
    expected = Counter({"imported": 1, "unchanged": processes - 1 if variant == "all" else 0})
    expected = +expected  # drop zero counts
    for path in returns.files:
        seen = by_file.get(path.name, Counter())
        if seen != expected:
            problems.append(f"{path.name}: outcomes {dict(seen)}, expected {dict(expected)}")
    return problems


def audit_fingerprint(engine: sa.Engine) -> dict[str, tuple]:
    """Per audit: (hashes of its returns, current flags, answers, actions, grade rows,
    return events), straight from the database."""
    r, a, ac, g, e = store.returns, store.answers, store.actions, store.grades, store.events
    found: dict[str, list] = {}
    with engine.connect() as conn:
        for row in conn.execute(
            sa.select(
                r.c.audit_id,
                r.c.content_hash,
                r.c.is_current,
                sa.select(sa.func.count()).where(a.c.return_id == r.c.id).scalar_subquery(),
                sa.select(sa.func.count()).where(ac.c.return_id == r.c.id).scalar_subquery(),
            )
        ):
            found.setdefault(row[0], []).append(tuple(row[1:]))
        grades = Counter(conn.execute(sa.select(g.c.audit_id)).scalars())
        events = Counter(
            conn.execute(sa.select(e.c.audit_id).where(e.c.event == "returned")).scalars()
        )
    return {
        audit: (tuple(sorted(rows)), grades[audit], events[audit]) for audit, rows in found.items()
    }


def database_problems(
    fingerprint: dict[str, tuple], returns: Returns, reference: dict[str, tuple] | None
) -> list[str]:
    problems = []
    rows = [row for stored, _, _ in fingerprint.values() for row in stored]
    total_answers = sum(row[2] for row in rows)
    want = len(returns.files)
    for label, got, expected in (
        ("returns", len(rows), want),
        ("current returns", sum(bool(row[1]) for row in rows), want),
        ("answers", total_answers, want * returns.answers_each),
        ("audits with a return", len(fingerprint), want),
    ):
        if got != expected:
            problems.append(f"{label}: {got} in the database, expected {expected}")
    for audit, content_hash in returns.hashes.items():
        stored = fingerprint.get(audit)
        if stored is None:
            problems.append(f"{audit}: no return stored")
        elif [row[0] for row in stored[0]] != [content_hash]:
            problems.append(f"{audit}: stored {len(stored[0])} return(s), not its one file")
    if reference is not None and fingerprint != reference:
        differ = sorted(
            k
            for k in reference.keys() | fingerprint.keys()
            if reference.get(k) != fingerprint.get(k)
        )
        problems.append(
            f"{len(differ)} audit(s) differ from the one-process run, e.g. "
            f"{differ[0]}: {fingerprint.get(differ[0])} != {reference.get(differ[0])}"
        )
    return problems[:10]


def startup_seconds(url: str, folder: Path) -> float:
    """One `formtool import` of an empty folder: the fixed cost every process pays."""
    empty = folder / "empty"
    empty.mkdir(exist_ok=True)
    start = time.perf_counter()
    subprocess.run(
        [*FORMTOOL, "import", str(empty), "--db", url, "--json"], check=True, capture_output=True
    )
    return time.perf_counter() - start


# --- report -----------------------------------------------------------------------------


def levels(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(",") if n.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=400)
    parser.add_argument(
        "--levels", type=levels, default=LEVELS, help="process counts for the split variant"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("FORMTOOL_TEST_PG"),
        help="PostgreSQL server URL [env FORMTOOL_TEST_PG]",
    )
    parser.add_argument(
        "--contention",
        type=levels,
        default=CONTENTION,
        help="process counts for the all-files variant [2,4; 8 adds about 4 minutes]",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: 6 returns, --levels 1,2 --contention 2",
    )
    args = parser.parse_args()
    if args.tiny:
        args.returns, args.levels, args.contention = 6, (1, 2), (2,)
    if 1 not in args.levels:
        parser.error("--levels must include 1: the rates are given as ratios to one process")
    count = args.returns
    started = time.perf_counter()
    load = os.getloadavg()[0]
    print(
        f"Load average at start {load:.2f} on {os.cpu_count()} cores"
        + (": the machine is busy, rates will be low and noisy." if load > 0.5 else ".")
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        returns = make_returns(folder, count)
        print(
            f"{count} distinct filled CSC returns (.docx) of {count} audits, "
            f"{returns.answers_each} answers each; made in "
            f"{time.perf_counter() - started:.1f} s, reused by every run."
        )
        backends: list[tuple[str, Database]] = [("SQLite", sqlite_database)]
        if args.pg:
            backends.append(("PostgreSQL", postgresql_database(args.pg)))
        else:
            print("PostgreSQL skipped: no server given (--pg URL or FORMTOOL_TEST_PG).")
        runs: list[Run] = []
        reference = None
        for backend, database in backends:
            with database(folder) as url:
                store.open_store(url)
                print(
                    f"{backend}: one `formtool import` of an empty folder (start-up cost of "
                    f"every process) {startup_seconds(url, folder):.2f} s"
                )
            plan = [(n, "split") for n in args.levels] + [(n, "all") for n in args.contention]
            for processes, variant in plan:
                run, fingerprint = run_once(
                    backend, database, returns, processes, variant, folder, reference
                )
                reference = reference or fingerprint
                runs.append(run)
                print(
                    f"  {backend} {processes} process(es), {variant:<5} {run.seconds:6.2f} s "
                    f"(importers' CPU {run.cpu:6.1f} s)  "
                    + ("ok" if not run.problems else "LOST OR DOUBLED"),
                    flush=True,
                )
                for problem in run.problems:
                    print(f"    {problem}")
    report(runs, count, [b for b, _ in backends])
    if not args.tiny and args.pg and TARGET_LEVEL in args.levels:
        keep(runs, count, args.levels)
    print(
        f"\nTotal {time.perf_counter() - started:.0f} s; load average at end "
        f"{os.getloadavg()[0]:.2f}."
    )
    if any(run.problems for run in runs):
        sys.exit(1)


def keep(runs: list[Run], count: int, levels: tuple[int, ...]) -> None:
    """Record a full run in bench/results.json (the README's table is rendered from it)."""
    from results import record

    def ratio(backend: str) -> float:
        mine = {(r.processes, r.variant): r for r in runs if r.backend == backend}
        return mine[(TARGET_LEVEL, "split")].rate(count) / mine[(1, "split")].rate(count)

    sound = not any(run.problems for run in runs)
    postgres, sqlite = ratio("PostgreSQL"), ratio("SQLite")
    record(
        "concurrency.py",
        f"{count} returns by {', '.join(map(str, levels))} `formtool import` processes",
        f"nothing lost or doubled: {'met' if sound else 'MISSED'}; {TARGET_LEVEL} processes "
        f"{postgres:.2f}x one process on PostgreSQL, {sqlite:.2f}x on SQLite",
        f"PostgreSQL {TARGET_LEVEL} processes >= {TARGET}x: "
        + ("met" if postgres >= TARGET else "MISSED"),
    )


def report(runs: list[Run], count: int, backends: list[str]) -> None:
    print(f"\n{count} returns, N processes started at once (same machine, same run):")
    print(f"  {'':<11} {'':>5}  {'split: each its share':^28}  {'all: each every file':^28}")
    print(
        f"  {'backend':<11} {'procs':>5}  {'returns/s':>10} {'x one':>7} {'check':>9}"
        f"  {'returns/s':>10} {'x one':>7} {'check':>9}"
    )
    verdicts = []
    for backend in backends:
        mine = {(r.processes, r.variant): r for r in runs if r.backend == backend}
        one = mine[(1, "split")].rate(count)
        for processes in sorted({n for n, _ in mine}):
            cells = []
            for variant in ("split", "all"):
                run = mine.get((processes, variant))
                if run is None:
                    cells.append(f"{'-':>10} {'-':>7} {'-':>9}")
                    continue
                check = "ok" if not run.problems else "FAILED"
                cells.append(f"{run.rate(count):10.1f} {run.rate(count) / one:6.2f}x {check:>9}")
            print(f"  {backend:<11} {processes:>5}  {cells[0]}  {cells[1]}")
        failed = [r for r in mine.values() if r.problems]
        tried = ", ".join(f"{n} {v}" for n, v in mine)
        verdicts.append(
            f"{backend}: nothing lost or doubled ({tried}): "
            + ("met" if not failed else f"MISSED in {len(failed)} run(s)")
        )
        if (TARGET_LEVEL, "split") not in mine:  # a smaller run (--levels, --tiny)
            most = max(n for n, v in mine if v == "split")
            ratio = mine[(most, "split")].rate(count) / one
            verdicts.append(
                f"{backend} {most} processes: {ratio:.2f}x one process (reported; the "
                f"target is for {TARGET_LEVEL} processes, not run)"
            )
            continue
        target = mine[(TARGET_LEVEL, "split")]
        ratio = target.rate(count) / one
        if backend == "PostgreSQL":
            cores = target.cpu / target.seconds  # the importers' CPU over the wall time
            verdicts.append(
                f"PostgreSQL {TARGET_LEVEL} processes: {ratio:.2f}x one process "
                f"(target >= {TARGET}x): {'met' if ratio >= TARGET else 'MISSED'}"
                + (
                    f" (its importers got {cores:.1f} cores' worth of CPU: was the machine busy?)"
                    if ratio < TARGET and cores < 1.5
                    else ""
                )
            )
        else:
            verdicts.append(
                f"{backend} {TARGET_LEVEL} processes: {ratio:.2f}x one process (reported)"
            )
    print("\nVerdicts:")
    for verdict in verdicts:
        print(f"  {verdict}")


if __name__ == "__main__":
    main()
