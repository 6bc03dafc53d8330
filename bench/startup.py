"""How long `formtool --help` and `formtool forms list` take to start, against `python -c
pass` measured in the same run.

Target (issue 12): both under 0.2 s. Imports are lazy (formtool/__init__.py resolves its
exports on first use; commands import their modules inside the command), and checked
definitions are cached, so a command pays only for what it uses.

    python bench/startup.py [--runs N]
    python bench/startup.py --tiny   # one timed run of each (the suite's smoke run)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "formtool --help": [sys.executable, "-m", "formtool", "--help"],
    "formtool forms list": [sys.executable, "-m", "formtool", "forms", "list"],
    "formtool status --help": [sys.executable, "-m", "formtool", "status", "--help"],
}
TARGET = 0.2


def timed(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, check=True, capture_output=True)  # warm the disk and the cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--tiny", action="store_true", help="a smoke run in seconds: --runs 1 (figures are noise)"
    )
    args = parser.parse_args()
    runs = 1 if args.tiny else args.runs
    results = {name: timed(command, runs) for name, command in COMMANDS.items()}
    floor = statistics.median(results["python -c pass"])
    print(f"{'command':<26} {'median':>8} {'p90':>8} {'vs python':>10}  target")
    for name, times in results.items():
        median = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        verdict = (
            ""
            if name.startswith("python")
            else (f"< {TARGET} s: " + ("met" if median < TARGET else "MISSED"))
        )
        print(f"{name:<26} {median:>7.3f}s {p90:>7.3f}s {median / floor:>9.1f}x  {verdict}")
    if not args.tiny:
        from results import record

        medians = {name: statistics.median(times) for name, times in results.items()}
        timed_ones = [n for n in medians if not n.startswith("python")]
        record(
            "startup.py",
            ", ".join(f"`{n}`" for n in timed_ones),
            ", ".join(f"{medians[n]:.2f} s" for n in timed_ones)
            + f" (`python -c pass` {floor:.2f} s)",
            f"< {TARGET} s: "
            + ("met" if all(medians[n] < TARGET for n in timed_ones) else "MISSED"),
        )


if __name__ == "__main__":
    main()
