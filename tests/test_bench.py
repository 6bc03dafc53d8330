"""Benchmarks cannot rot: every script in bench/ runs at its tiny size (`--tiny`, seconds) and
must exit 0 and print its figures and ratios.

The tiny runs check that each benchmark still works, not its targets: at these sizes on a
shared machine the timings are noise, so only the verdicts that are about correctness (nothing
lost or doubled, every hostile file rejected) are asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
NUMBER = r"\d+(\.\d+)?"

#: Each bench script -> lines its tiny run must print (regular expressions, one per line).
TINY: dict[str, list[str]] = {
    "concurrency.py": [
        rf"SQLite: one `formtool import` of an empty folder .* {NUMBER} s$",
        r"SQLite 1 process\(es\), split .* ok$",
        r"SQLite 2 process\(es\), all .* ok$",
        rf"^  SQLite +2 +{NUMBER} +{NUMBER}x +ok +{NUMBER} +{NUMBER}x +ok$",
        r"SQLite: nothing lost or doubled \(1 split, 2 split, 2 all\): met$",
        rf"SQLite 2 processes: {NUMBER}x one process",
    ],
    "demo.py": [
        rf"^tiny: 3 synthetic file packs \(Word, PDF\) and their bundle in a fresh process: "
        rf"{NUMBER} s wall, {NUMBER} s CPU",
        r"^formtool demo: not run \(--tiny\)",
    ],
    "email_bounds.py": [
        *(
            rf"^  {re.escape(shape)} +{NUMBER} MB  before +{NUMBER} MB +{NUMBER} s  after +"
            rf"{NUMBER} MB +{NUMBER} s  refused before parsing: "
            for shape in (
                "2.3M header lines",
                "9M quoted-printable soft breaks",
                "a body of 18M empty lines",
                "1M MIME parts, CR line endings",
            )
        ),
        rf"^  real reply: 3 forms, base64, CRLF +{NUMBER} MB  after +{NUMBER} MB +{NUMBER} s"
        r"  read: ",
        rf"worst peak memory +{NUMBER} MB  \[< 300 MB\] (met|MISSED)",
        rf"worst CPU +{NUMBER} s +\[< 30 s\] (met|MISSED)",
        r"issue 19's emails refused before parsing, the others read  met$",
    ],
    "generate.py": [
        rf"formtool \.docx +{NUMBER} ms/form$",
        rf"formtool \.xlsx +{NUMBER} ms/form$",
        rf"raw zip rewrite \(floor\) +{NUMBER} ms/form$",
        rf"docxtpl / formtool \.docx +({NUMBER}x  \[>= 10x\]|skipped: docxtpl is not installed)",
        rf"formtool \.docx / raw rewrite +{NUMBER}x  \[<= 3x\]$",
        rf"formtool \.xlsx / raw rewrite +{NUMBER}x  \[reported\]$",
    ],
    "import.py": [
        rf"formtool read \(identity \+ all answers\) +{NUMBER} ms/form$",
        rf"formtool import \(read \+ validate \+ store\) +{NUMBER} ms/form$",
        rf"clean batch +20 imported +{NUMBER} s +peak +{NUMBER} MB",
        rf"hostile batch +20 rejected +{NUMBER} s +peak +{NUMBER} MB",
        rf"\.docx read / floor +{NUMBER}x  \[<= 3x\]",
        rf"python-docx open / formtool read +{NUMBER}x  \[>= 5x\]",
        rf"hostile batch / clean batch time +{NUMBER}x  \[<= 2x\]",
        rf"hostile batch peak memory +{NUMBER} MB  \[< 300 MB\]",
        r"every hostile file rejected with its code +met$",
    ],
    "pack.py": [
        rf"20 audits: +{NUMBER} s  \[< 2 s\] (met|MISSED) +peak +{NUMBER} MB  \[< 500 MB\]",
        rf"Answers sheet, \d+ rows: sheet_stream {NUMBER} s, raw XML {NUMBER} s: {NUMBER}x  "
        r"\[<= 1.5x\] (met|MISSED)",
    ],
    "serve.py": [
        r"store: 60 audits, \d+ returned, \d+ moderated",
        *(
            rf"^{page} +{NUMBER} ms +{NUMBER} ms +{NUMBER} ms  <200 ms"
            for page in (
                "month dashboard",
                "audit list, filtered",
                "audit page",
                "reports page",
                "reports, uncached",
            )
        ),
        rf"5 returns: web upload {NUMBER} s, `formtool import` {NUMBER} s",
        rf"upload / CLI = {NUMBER}x  target <=1.5x",
    ],
    "regional.py": [
        r"^A region's year: 200 audits of 4 councils' populations",
        r"^SQLite: 200 audits, [\d,]+ returns, [\d,]+ answers, [\d,]+ actions, built",
        rf"^  PMU figures for 2026-27 \(database GROUP BY\) +{NUMBER} s  \[< 5 s\] (met|MISSED)",
        rf"^  annual PMU pack, fresh process +{NUMBER} s  \[< 60 s\] (met|MISSED) +peak +\d+ MB",
        r"^    files: pmu-2026-27.docx, pmu-2026-27.pdf, pmu-2026-27.xlsx$",
        rf"^  import 10 returns: +{NUMBER} ms a return, floor \(unzip \+ parse\) +{NUMBER} ms: ",
        *(
            rf"^  {page} +median +{NUMBER} ms  p95 +{NUMBER} ms  \[< 200 ms\] (met|MISSED)"
            for page in (
                "month dashboard",
                r"audit list, filtered, page 20",
                "audit page",
                r"reports page \(cached\)",
            )
        ),
        rf"^  upload of 3 returns on the Returns page {NUMBER} s, `formtool import` {NUMBER} s: ",
        rf"^  3 officers at once, `serve --workers 1`, \d+ pages \({NUMBER} a second, a page each "
        rf"\d+ s on average\): median +{NUMBER} ms",
    ],
    "signin.py": [
        r"sign-ins: 4 at once -> \{((401|429): \d+(, )?)+\}$",  # refused, none failed
        rf"server peak memory: {NUMBER} MB before, {NUMBER} MB after$",
        rf"peak / target: {NUMBER} \({NUMBER} of 500 MB\)",
        rf"officer's page during the storm / target: {NUMBER} \({NUMBER} of 5 s\)",
    ],
    "startup.py": [
        rf"^{re.escape(command)} +{NUMBER}s +{NUMBER}s +{NUMBER}x"
        for command in (
            "python -c pass",
            "formtool --help",
            "formtool forms list",
            "formtool status --help",
        )
    ],
}


def test_every_bench_script_has_a_tiny_run() -> None:
    """A new bench script gets its tiny run here, or this fails."""
    modules = ("results.py", "bulk.py")  # what the scripts share, not benchmarks
    scripts = [p.name for p in BENCH.glob("*.py") if p.name not in modules]
    assert sorted(scripts) == sorted(TINY)


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    output: Path
    errors: Path
    expected: list[str]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every bench's tiny run, started at once: they wait on subprocesses, servers and the
    database as much as on the CPU, so together they take about half as long."""
    env = {k: v for k, v in os.environ.items() if k != "FORMTOOL_TEST_PG"}
    env["PYTHONPATH"] = os.pathsep.join(  # bench scripts import each other (signin: serve)
        [str(BENCH), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written into the repository
    folder = tmp_path_factory.mktemp("bench")
    runs = {}
    for script in sorted(TINY):
        command = [sys.executable, str(BENCH / script), "--tiny"]
        expected = list(TINY[script])
        # concurrency.py's tiny run is on SQLite only: many importers on PostgreSQL are
        # test_concurrency.py's, and a second server run here cost the suite ~6 s of CPU.
        output, errors = folder / f"{script}.out", folder / f"{script}.err"
        with output.open("wb") as out, errors.open("wb") as err:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
        runs[script] = Run(process, output, errors, expected)
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.mark.parametrize("script", sorted(TINY))
def test_bench_tiny_run(script: str, tiny_runs: dict[str, Run]) -> None:
    run = tiny_runs[script]
    returncode = run.process.wait(timeout=240)
    stdout = run.output.read_text(encoding="utf-8", errors="replace")
    stderr = run.errors.read_text(encoding="utf-8", errors="replace")
    shown = f"stdout:\n{stdout[-4000:]}\nstderr:\n{stderr[-4000:]}"
    assert returncode == 0, shown
    missing = [p for p in run.expected if not re.search(p, stdout, re.MULTILINE)]
    assert missing == [], shown
