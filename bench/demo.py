"""How long `formtool demo` takes, in a fresh process: wall and CPU time, how long each of its
steps took, and the machine's load in the same run (the machine is shared: wall / CPU says how
much of the wall time went waiting for a core).

Target (issue 24): under 30 s wall on the 2-core machine. The demo also builds the test suite's
shared demo fixture (tests/conftest.py `demo_run`), so it is paid on every test run too.

    python bench/demo.py [--runs N]   # records its figures in bench/results.json
    python bench/demo.py --tiny   # smoke run: three synthetic audits' file packs (Word, PDF
                                  # and the bundle) rendered in a fresh process; no demo
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TARGET = 30.0  # seconds, wall
STEP = re.compile(r"^ ?(\d+)\. (.*)$")  # how `formtool demo` prints a step, as it happens

#: The tiny run's child: three made-up audits' documents rendered as the file pack does.
TINY_CHILD = """
import time
start = time.process_time()
from formtool.packs.render import Document, Part, Table, to_docx, to_tagged_pdf
from formtool.packs.tagged_pdf import merge

rows = tuple((f"{n}. Question {n} (synthetic)", "Yes", "Evidence " * 30) for n in range(40))
documents = [
    Document(
        "Case File Audit Tool",
        f"Completed audit SYN-{i} for the case record",
        [Part("Summary", ["Synthetic."], [Table(("Detail", "Value"), (("Case", f"SYN-{i}"),))]),
         Part("Practice", tables=[Table(("Question", "Answer", "Evidence"), rows)])],
        f"Audit SYN-{i} (synthetic)",
        "Synthetic Council",
    )
    for i in range(3)
]
words = [to_docx(d) for d in documents]
pdfs = [(d.subtitle, to_tagged_pdf(d)) for d in documents]
bundle = merge(pdfs, "File packs (synthetic)")
print(f"documents {len(words)} {sum(map(len, words))} {len(bundle)}")
print(f"cpu {time.process_time() - start:.3f}")
"""


@dataclass
class Run:
    wall: float
    cpu: float
    steps: list[tuple[str, float]] = field(default_factory=list)  # (title, seconds)


def timed(command: list[str], cwd: Path) -> tuple[Run, str]:
    """Run `command` in a fresh process, noting when each step line is printed."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = last = time.perf_counter()
    steps, lines = [], []
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if found := STEP.match(line.rstrip("\n")):
                now = time.perf_counter()
                steps.append((found[2][:60], now - last))
                last = now
        errors = process.stderr.read() if process.stderr else ""
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{errors[-3000:]}")
    return Run(wall, cpu, steps), "".join(lines)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def demo(runs: int) -> None:
    results = []
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
            command = [sys.executable, "-m", "formtool", "demo", "--out", str(Path(folder) / "d")]
            run, _ = timed(command, Path(folder))
        results.append(run)
        print(f"run {n + 1}: {run.wall:6.1f} s wall  {run.cpu:6.1f} s CPU  ({load()})")
    wall = statistics.median(r.wall for r in results)
    cpu = statistics.median(r.cpu for r in results)
    slowest = max(results, key=lambda r: r.wall)
    print("steps of the slowest run (from the step before; the first includes start-up):")
    for title, seconds in sorted(slowest.steps, key=lambda s: -s[1])[:6]:
        print(f"  {seconds:6.1f} s  {title}")
    verdict = "met" if wall < TARGET else "MISSED"
    print(
        f"formtool demo, median of {runs}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
        f"wall / CPU {wall / cpu:.2f}x  [< {TARGET:.0f} s] {verdict}"
    )
    from results import record  # bench/results.py: the README's table is rendered from it

    record(
        "demo.py",
        "`formtool demo` in a fresh process (it also builds the test suite's demo fixture)",
        f"{wall:.1f} s wall, {cpu:.1f} s CPU (median of {runs}; {load()})",
        f"< {TARGET:.0f} s wall: {verdict}",
    )


def tiny() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        run, output = timed([sys.executable, "-c", TINY_CHILD], Path(folder))
    found = re.search(r"documents (\d+) (\d+) (\d+)", output)
    assert found, output
    print(
        f"tiny: {found[1]} synthetic file packs (Word, PDF) and their bundle in a fresh "
        f"process: {run.wall:.2f} s wall, {run.cpu:.2f} s CPU ({load()})"
    )
    print(f"formtool demo: not run (--tiny)  [< {TARGET:.0f} s] see a full run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="demo runs to time (median)")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run in seconds: three synthetic file packs, not the demo",
    )
    args = parser.parse_args()
    if args.tiny:
        tiny()
    else:
        demo(args.runs)


if __name__ == "__main__":
    main()
