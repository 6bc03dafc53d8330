"""Benchmark: 40 simultaneous sign-ins against the real server, with real argon2 parameters.

Each argon2id check takes 64 MiB; before hashing was bounded, 40 sign-ins at once with unknown
names took the server from 55 MB to 2.3 GB and an officer's page from 0.4 s to 9.6 s. Starts
`python -m formtool serve` on a fresh SQLite store, signs an officer in, fires 40 sign-ins with
unknown names from 40 threads at once while the officer loads the dashboard, and reports the
server's peak memory (VmHWM) and the officer's page time, against the targets.

Targets: peak memory under 500 MB; the officer's page within 5 s during the storm.

    python bench/signin.py [--attempts 40]
    python bench/signin.py --tiny   # 4 sign-ins at once (the suite's smoke run)
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx

from formtool import store

from serve import add_bench_user, signed_in, start_server

PEAK_TARGET_MB, PAGE_TARGET_S = 500.0, 5.0


def peak_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc: Linux only")


def storm(url: str, attempts: int) -> dict[int, int]:
    """`attempts` sign-ins with unknown names, all at once: how many got each status."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(attempts)

    def attempt(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            csrf = client.get("/login").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            start.wait()
            response = client.post(
                "/login",
                data={"name": f"nobody{index}", "password": "not a password!", "csrf": csrf},
            )
        with lock:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=40)
    parser.add_argument("--tiny", action="store_true", help="a smoke run in seconds: --attempts 4")
    args = parser.parse_args()
    if args.tiny:
        args.attempts = 4
    with tempfile.TemporaryDirectory(prefix="formtool-bench-signin-") as tmp:
        folder = Path(tmp)
        db = f"sqlite:///{folder / 'formtool.db'}"
        add_bench_user(store.open_store(db))
        process, url = start_server(db, folder)
        try:
            officer = signed_in(url)
            before = peak_mb(process.pid)
            page_seconds: list[float] = []

            def load_page() -> None:
                time.sleep(0.2)  # the storm has started
                started = time.perf_counter()
                assert officer.get("/").status_code == 200
                page_seconds.append(time.perf_counter() - started)

            reader = threading.Thread(target=load_page)
            reader.start()
            statuses = storm(url, args.attempts)
            reader.join()
            after = peak_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"sign-ins: {args.attempts} at once -> {statuses}")
    print(f"server peak memory: {before:.0f} MB before, {after:.0f} MB after")
    print(
        f"peak / target: {after / PEAK_TARGET_MB:.2f} ({after:.0f} of {PEAK_TARGET_MB:.0f} MB) "
        f"{'ok' if after < PEAK_TARGET_MB else 'OVER'}"
    )
    print(
        f"officer's page during the storm / target: {page_seconds[0] / PAGE_TARGET_S:.2f} "
        f"({page_seconds[0]:.2f} of {PAGE_TARGET_S:.0f} s) "
        f"{'ok' if page_seconds[0] < PAGE_TARGET_S else 'OVER'}"
    )
    if not args.tiny:
        from results import record

        met = after < PEAK_TARGET_MB and page_seconds[0] < PAGE_TARGET_S
        record(
            "signin.py",
            f"{args.attempts} sign-ins at once against the web workspace",
            f"server peak {after:.0f} MB (before {before:.0f} MB); an officer's page during "
            f"the storm {page_seconds[0]:.2f} s",
            f"< {PEAK_TARGET_MB:.0f} MB and page < {PAGE_TARGET_S:.0f} s: "
            + ("met" if met else "MISSED"),
        )


if __name__ == "__main__":
    main()
