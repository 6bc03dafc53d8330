"""The benchmarks' results file (bench/results.json, committed): each script's full run records
what it measured, its figures and its verdict, with the machine it ran on; the README's
Benchmarks table is rendered from this file by cog (`cog -r README.md`), so the table always
says what a script printed, not what someone typed.

    from results import record
    record("pack.py", "PMU quarter pack ...", "100 audits 1.6 s ...", "100 < 2 s: met ...")
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from formtool import clock

FILE = Path(__file__).with_name("results.json")
#: The order the README's table lists the scripts in.
ORDER = (
    "regional.py",
    "generate.py",
    "import.py",
    "concurrency.py",
    "pack.py",
    "demo.py",
    "email_bounds.py",
    "startup.py",
    "serve.py",
    "signin.py",
)


def machine() -> str:
    """ "2 cores, Intel(R) Xeon(R) ..., 24 GiB, Linux, Python 3.11.7" """
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    cores = os.cpu_count() or 1
    return (
        f"{cores} cores{', ' + model if model else ''}{memory}, {platform.system()}, "
        f"Python {platform.python_version()}"
    )


def load() -> dict[str, dict[str, str]]:
    if not FILE.exists():
        return {}
    found: dict[str, dict[str, str]] = json.loads(FILE.read_text(encoding="utf-8"))
    return found


def record(script: str, measures: str, figures: str, target: str) -> None:
    """Keep one full run's results for `script` (a tiny run records nothing)."""
    rows = load()
    rows[script] = {
        "measures": measures,
        "figures": figures,
        "target": target,
        "machine": machine(),
        "on": clock.today().isoformat(),
    }
    ordered = dict(sorted(rows.items(), key=lambda kv: _rank(kv[0])))
    FILE.write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"(recorded in {FILE.name}: run `cog -r README.md` to update the README's table)")


def _rank(script: str) -> tuple[int, str]:
    return (ORDER.index(script) if script in ORDER else len(ORDER), script)


def table() -> list[str]:
    """The README's table: one row per script, then where and when each was measured."""
    rows = load()
    lines = ["| script | measures | figures | target |", "| --- | --- | --- | --- |"]
    for script, row in rows.items():
        cells = (row[k].replace("|", "\\|") for k in ("measures", "figures", "target"))
        lines.append(f"| `bench/{script}` | {' | '.join(cells)} |")
    machines: dict[str, list[str]] = {}
    for script, row in rows.items():
        machines.setdefault(f"{row['machine']} ({row['on']})", []).append(script)
    lines.append("")
    for where, scripts in machines.items():
        names = ", ".join(f"`{s}`" for s in scripts)
        lines.append(f"Measured on {where}: {names}.")
    return lines
