"""Benchmark: a year of a whole region's audits, on SQLite and on PostgreSQL.

Builds the synthetic region (20 councils' populations, one financial year of audits of three
tools with their returns, answers, grades, moderation, actions and events; deterministic,
seeded) straight into one council-sized database through formtool's store tables (bulk
inserts; the answers are those of real filled forms read back through formtool's reader, so
no 100,000 .docx files are made), then runs each of issue 24's targets against it and prints
met/MISSED, each against a baseline or a target measured in the same run:

- the PMU figures for the year computed by the database: < 5 s on PostgreSQL;
- the annual PMU pack (report .docx + .pdf + workbook), a fresh process: < 60 s, < 1 GB
  on PostgreSQL;
- importing 1,000 returns into that store: <= 3x the unzip + XML parse floor of the same
  files, on both backends;
- the web workspace on PostgreSQL: dashboard, a filtered audit list page, an audit page and
  the reports page (cached), 50 requests each: p95 < 200 ms server time; and 50 officers at
  once against `serve --workers 2`: p95 < 200 ms as the officers wait for it.

    python bench/regional.py [--audits 100000] [--pg URL]   # URL: a server (a database is made)
    python bench/regional.py --tiny   # 200 audits, 10 imports, 3 officers, one backend

PostgreSQL comes from --pg or $FORMTOOL_TEST_PG (a throwaway database is created on that
server and dropped after); without either, only SQLite is measured and that is said.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bulk import after_bulk_load, throwaway_database
from lxml import etree

from formtool import store
from formtool.access.accounts import add_user
from formtool.definitions import FormDefinition, get_form
from formtool.demo.fill import fill_return
from formtool.demo.synthetic import synthetic_answers, synthetic_case
from formtool.generate import record_audits, render
from formtool.packs.figures import load_figures
from formtool.periods import period_for
from formtool.read import read_bytes
from formtool.read.batch import import_paths
from formtool.read.cases import Case
from formtool.read.validate import validate_return
from formtool.store.catalog import record_snapshots

import serve as web_bench  # bench/serve.py: its server, sign-in and page timing

#: The tools a region audits and their shares of the year's audits.
TOOLS = (("csc", 0.6), ("early_help", 0.25), ("foster_carer", 0.15))
YEAR = "2026"  # the financial year April 2026 - March 2027
MONTHS = [f"{2026 + (m > 12)}-{(m - 1) % 12 + 1:02d}" for m in range(4, 16)]
AS_OF = dt.date(2027, 4, 20)  # the year is over; a few audits are still owed
STAMP = dt.datetime(2027, 4, 1, 9, 0)
TEMPLATES = 12  # real filled forms per tool whose answers the stored returns share
CHUNK = 20_000
FIGURES_S, PACK_S, PACK_MB, IMPORT_RATIO, PAGE_MS = 5.0, 60.0, 1024.0, 3.0, 200.0
UPLOAD_RATIO = 1.5
COMPLETE_STATES = ("returned", "checked", "moderated", "closed")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# --- the region ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A real filled form as formtool read it: what a stored return of that tool holds."""

    answers: dict[str, tuple[str, str]]
    actions: list[dict[str, Any]]
    grade: str


def month_end(month: str) -> dt.date:
    year, mon = int(month[:4]), int(month[5:])
    return dt.date(year + (mon == 12), mon % 12 + 1, 1) - dt.timedelta(days=1)


def templates(form: FormDefinition, count: int, seed: int) -> list[Template]:
    """`count` forms of `form` filled as auditors fill them and read back by formtool."""
    rng = random.Random(seed)
    found = []
    for i in range(count):
        facts = synthetic_case(form, i, dt.date(2027, 3, 31), rng)
        case = Case(f"TPL-{form.id}-{i}", form.id, form.version, facts)
        data = fill_return(
            render(form, case, "docx"), "docx", form, synthetic_answers(form, case, rng, AS_OF)
        )
        result = validate_return(read_bytes(data, ".docx"), "template.docx", case.facts, AS_OF)
        assert result.record is not None, result.issues
        record = result.record
        found.append(
            Template(dict(record.answers), [a.as_store_row() for a in record.actions], record.grade)
        )
    return found


def build(
    url: str, audits: int, councils: int, seed: int = 2026, shared: int = TEMPLATES
) -> dict[str, int]:
    """The region's year in one database; how many rows of each kind it holds."""
    rng = random.Random(seed)
    forms = {tool: get_form(tool) for tool, _ in TOOLS}
    filled = {tool: templates(forms[tool], shared, seed + n) for n, (tool, _) in enumerate(TOOLS)}
    weights = [share for _, share in TOOLS]
    rows: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("audits", "returns", "answers", "grades", "actions", "events")
    }
    counts = dict.fromkeys(rows, 0)
    db = store.open_store(url)
    with store.transaction(db.engine) as conn:
        record_snapshots(conn, list(forms.values()))
    web_bench.add_bench_user(db)  # the account the page timings sign in as
    for i in range(audits):
        tool = rng.choices([t for t, _ in TOOLS], weights)[0]
        _audit_rows(rows, i, councils, forms[tool], rng.choice(filled[tool]), rng)
        if len(rows["answers"]) >= CHUNK * 5 or i == audits - 1:
            with store.transaction(db.engine) as conn:
                for table in ("audits", "returns", "answers", "grades", "actions", "events"):
                    for start in range(0, len(rows[table]), CHUNK):
                        conn.execute(
                            getattr(store, table).insert(), rows[table][start : start + CHUNK]
                        )
                    counts[table] += len(rows[table])
                    rows[table].clear()
    after_bulk_load(db.engine)
    db.engine.dispose()
    return counts


def _audit_rows(
    rows: dict[str, list[dict[str, Any]]],
    i: int,
    councils: int,
    form: FormDefinition,
    template: Template,
    rng: random.Random,
) -> None:
    council, month = i % councils, MONTHS[i % 12]
    audit_id = f"{form.id.upper()}-R{council:02d}{i:06d}-{month.replace('-', '')}"
    roll = rng.random()
    state = (
        "sent"
        if roll < 0.04
        else "exempted"
        if roll < 0.06
        else "in progress"
        if roll < 0.09
        else rng.choice(COMPLETE_STATES)
    )
    due = month_end(month)
    facts = {
        "case_number": f"R{council:02d}-{i:06d}",
        "family_name": "Synthetic",
        "given_names": f"Child {i}",
        "team": f"Council {council:02d} team {i % 6 + 1} (synthetic)",
        "auditor": f"Auditor {council:02d}-{i % 15:02d} (synthetic)",
        "due_date": due.isoformat(),
    }
    rows["audits"].append(
        {
            "audit_id": audit_id,
            "form_id": form.id,
            "form_version": form.version,
            "case_number": facts["case_number"],
            "auditor": facts["auditor"],
            "team": facts["team"],
            "month": month,
            "due_date": due,
            "state": state,
            "checksum": "0" * 32,
            "facts": json.dumps(facts),
            "created_at": STAMP,
            "updated_at": STAMP,
        }
    )
    rows["events"].append({"audit_id": audit_id, "at": STAMP, "event": "allocated"})
    if state in ("sent", "exempted"):
        return
    rid = i + 1  # one return per audit: its id follows the audit's number
    final = state != "in progress"
    rows["returns"].append(
        {
            "id": rid,
            "audit_id": audit_id,
            "file_name": f"{audit_id}.docx",
            "content_hash": f"{rid:064x}",
            "content": b"",  # the bytes are not the point here: the rows are
            "imported_at": STAMP,
            "is_current": True,
            "method": "bookmarks",
            "final": final,
            "received_on": due,
        }
    )
    rows["answers"].extend(
        {"return_id": rid, "key": k, "value": v, "comment": c}
        for k, (v, c) in template.answers.items()
    )
    rows["actions"].extend({**a, "return_id": rid} for a in template.actions)
    rows["events"].append({"audit_id": audit_id, "at": STAMP, "event": "returned"})
    if final and form.grade_scale is not None:
        moderated = rng.choice(form.grade_scale.choices) if state == "moderated" else ""
        rows["grades"].append(
            {
                "audit_id": audit_id,
                "auditor_grade": template.grade,
                "moderated_grade": moderated,
                "return_id": rid,
            }
        )


# --- the targets ---------------------------------------------------------------------------


def time_figures(url: str) -> float:
    """Seconds to compute the year's PMU figures (the second of two runs: warm caches)."""
    db = store.open_store(url)
    period = period_for(year=YEAR)
    load_figures(db, period, AS_OF)
    started = time.perf_counter()
    load_figures(db, period, AS_OF)
    seconds = time.perf_counter() - started
    db.engine.dispose()
    return seconds


PACK = """
import datetime as dt, json, sys, time
from pathlib import Path
from formtool import store
from formtool.packs.pmu import pmu_pack
db = store.open_store(sys.argv[1])
start = time.perf_counter()
paths = pmu_pack(db, Path(sys.argv[2]), year=sys.argv[3], as_of=dt.date(2027, 4, 20))
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()  # VmHWM: this process's own peak
peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "files": [p.name for p in paths]}))
"""


def time_pack(url: str, out: Path) -> dict[str, Any]:
    """The annual PMU pack in a fresh process: seconds, peak MB and the files made."""
    result = subprocess.run(
        [sys.executable, "-c", PACK, url, str(out), YEAR], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"the annual pack failed:\n{result.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def floor(paths: list[Path]) -> float:
    """Seconds to unzip each file and parse its document XML: no reader can beat it."""
    started = time.perf_counter()
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            etree.fromstring(archive.read("word/document.xml"))
    return time.perf_counter() - started


def time_import(url: str, count: int, folder: Path, prefix: str) -> tuple[float, float]:
    """Seconds to import `count` returns into the region's store, and the floor of the same
    files; the audits are allocated first (as a month's are) and each file is real."""
    db = store.open_store(url)
    form = get_form("csc")
    made = web_bench.cases(prefix, count, ["2027-03"], 11)
    record_audits(db, form, made, user="bench")
    rng = random.Random(12)
    folder.mkdir(parents=True)
    paths = []
    for case in made:
        path = folder / f"{case.audit_id}.docx"
        path.write_bytes(web_bench.filled(case, rng))
        paths.append(path)
    floor_seconds = min(floor(paths) for _ in range(3))
    started = time.perf_counter()
    outcomes = import_paths(db, [folder], today=AS_OF, user="bench")
    seconds = time.perf_counter() - started
    assert [o.status for o in outcomes] == ["imported"] * count, outcomes[:3]
    db.engine.dispose()
    return seconds, floor_seconds


def web_pages(
    url: str, folder: Path, requests: int, uploads: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Server time (ms) of each page, `requests` times after warm-ups, one server; then a
    month's upload of `uploads` returns through the Returns page against `formtool import`
    of as many (seconds)."""
    db = store.open_store(url)
    an_audit = db.audit_list(
        "audit", limit=1, offset=500 if requests > 10 else 0, states=("closed",)
    )
    audit_id = an_audit.rows[0].audit_id
    process, address = web_bench.start_server(url, folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = web_bench.signed_in(address)
        pages = {
            "month dashboard": "/?month=2027-03",
            "audit list, filtered, page 20": "/audits?from=2026-04&to=2027-03&state=closed"
            "&sort=due&dir=desc&page=20",
            "audit page": f"/audits/{audit_id}",
            "reports page (cached)": f"/reports?period={YEAR}",
        }
        times = {name: web_bench.time_page(client, p, requests)[1] for name, p in pages.items()}
        return times, web_bench.upload_vs_cli(db, url, client, folder, uploads)
    finally:
        process.terminate()
        process.wait(timeout=30)
        db.engine.dispose()


def officer_signed_in(url: str, name: str) -> httpx.Client:
    """A client signed in as an officer (no authenticator code: officers need none)."""
    client = httpx.Client(base_url=url, timeout=300)
    page = client.get("/login").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login",
        data={"name": name, "password": web_bench.PASSWORD, "csrf": csrf, "next": "/"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    return client


def officers(
    url: str, folder: Path, count: int, seconds: float, workers: int, think: float
) -> list[float]:
    """`count` officers at once, each signed in, opening pages with a pause between
    (exponential, mean `think` seconds, seeded: an officer reads what they open), how long each page
    took as they waited (ms), after
    each has opened each page once (the workers' caches warm)."""
    db = store.open_store(url)
    ids = [r.audit_id for r in db.audit_list("audit", limit=200, states=("closed",)).rows]
    names = [f"officer{n:02d}" for n in range(count)]
    for name in names:  # officers each with an account of their own (an admin needs a code)
        if db.user(name) is None:
            add_user(db, name, ["officer"], web_bench.PASSWORD)
    db.engine.dispose()
    process, address = web_bench.start_server(url, folder, workers)
    waits: list[float] = []
    try:
        clients = [officer_signed_in(address, name) for name in names]
        # An officer's month: the dashboard, a filtered list, the month's report, audits.
        paths = ["/?month=2027-03", "/audits?state=closed&page=3", "/reports?period=2027-03"]
        for client in clients:  # each worker's first pages and the report's figures made
            for path in paths:
                client.get(path)
        deadline = time.monotonic() + seconds
        lock = threading.Lock()

        def officer(n: int, client: httpx.Client) -> None:
            rng = random.Random(n)
            while time.monotonic() < deadline:
                time.sleep(rng.expovariate(1 / think))
                path = rng.choice([*paths, f"/audits/{rng.choice(ids)}"])
                started = time.perf_counter()
                response = client.get(path)
                took = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (path, response.status_code)
                with lock:
                    waits.append(took)

        threads = [threading.Thread(target=officer, args=(n, c)) for n, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return waits


# --- the run -------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    return web_bench.p95(values) if len(values) > 1 else values[0]


def run_backend(name: str, url: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    counts = build(url, args.audits, args.councils, shared=2 if args.tiny else TEMPLATES)
    built = time.perf_counter() - started
    print(
        f"\n{name}: {counts['audits']:,} audits, {counts['returns']:,} returns, "
        f"{counts['answers']:,} answers, {counts['actions']:,} actions, built in {built:.0f} s"
    )
    found: dict[str, Any] = {"counts": counts}
    found["figures"] = figures = time_figures(url)
    print(f"  PMU figures for {YEAR}-27 (database GROUP BY)   {figures:7.2f} s", end="")
    print(f"  [< {FIGURES_S:.0f} s] {verdict(figures < FIGURES_S)}")
    found["pack"] = pack = time_pack(url, folder / f"pack-{name}")
    print(
        f"  annual PMU pack, fresh process               {pack['seconds']:7.2f} s"
        f"  [< {PACK_S:.0f} s] {verdict(pack['seconds'] < PACK_S)}"
        f"   peak {pack['peak_mb']:6.0f} MB  [< 1 GB] {verdict(pack['peak_mb'] < PACK_MB)}"
    )
    print(f"    files: {', '.join(pack['files'])}")
    seconds, floor_s = time_import(url, args.imports, folder / f"import-{name}", "I")
    found["import"] = {"seconds": seconds, "floor": floor_s, "ratio": seconds / floor_s}
    print(
        f"  import {args.imports} returns: {seconds * 1000 / args.imports:6.1f} ms a return, "
        f"floor (unzip + parse) {floor_s * 1000 / args.imports:5.2f} ms: "
        f"{seconds / floor_s:5.2f}x  [<= {IMPORT_RATIO:.0f}x] "
        f"{verdict(seconds / floor_s <= IMPORT_RATIO)}"
    )
    if name == "PostgreSQL" or args.tiny:  # the targets are PostgreSQL's; tiny: a smoke run
        pages, upload = web_pages(url, folder, args.requests, args.uploads)
        found["pages"], found["upload"] = pages, upload
        for page, times in pages.items():
            print(
                f"  {page:<32} median {statistics.median(times):6.1f} ms  p95 "
                f"{p95(times):6.1f} ms  [< {PAGE_MS:.0f} ms] {verdict(p95(times) < PAGE_MS)}"
            )
        ratio = upload["web"] / upload["cli"]
        print(
            f"  upload of {args.uploads} returns on the Returns page {upload['web']:.2f} s, "
            f"`formtool import` {upload['cli']:.2f} s: {ratio:.2f}x  [<= {UPLOAD_RATIO}x] "
            f"{verdict(ratio <= UPLOAD_RATIO)}"
        )
        workers = 2 if name == "PostgreSQL" else 1  # several processes: PostgreSQL's
        waits = officers(url, folder, args.officers, args.seconds, workers, args.think)
        found["officers"] = waits
        print(
            f"  {args.officers} officers at once, `serve --workers {workers}`, {len(waits)} pages "
            f"({len(waits) / args.seconds:.1f} a second, a page each {args.think:.0f} s on "
            "average): "
            f"median {statistics.median(waits):6.1f} ms  p95 {p95(waits):6.1f} ms as they "
            f"waited  [< {PAGE_MS:.0f} ms] {verdict(p95(waits) < PAGE_MS)}"
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audits", type=int, default=100_000)
    parser.add_argument("--councils", type=int, default=20)
    parser.add_argument("--imports", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--uploads", type=int, default=40, help="returns in the month's upload")
    parser.add_argument("--officers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the officers work")
    parser.add_argument(
        "--think", type=float, default=10.0, help="an officer's pause between pages (mean, s)"
    )
    parser.add_argument("--pg", help="a PostgreSQL server URL (default: $FORMTOOL_TEST_PG)")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a smoke run: 200 audits of 4 councils, 10 imports, 3 requests, 3 officers for 2 s, "
        "on PostgreSQL when a server is given (else SQLite)",
    )
    args = parser.parse_args()
    server = args.pg or os.environ.get("FORMTOOL_TEST_PG")
    if args.tiny:  # the suite runs this: one backend (PostgreSQL when there is a server)
        args.audits, args.councils, args.imports = 200, 4, 10
        args.requests, args.officers, args.seconds, args.uploads = 3, 3, 2.0, 3
        args.think = 0.5
        args.no_sqlite = bool(server)
    folder = Path(tempfile.mkdtemp(prefix="formtool-bench-regional-"))
    results: dict[str, Any] = {}
    print(
        f"A region's year: {args.audits:,} audits of {args.councils} councils' populations "
        f"({', '.join(t for t, _ in TOOLS)}), same machine, same run."
    )
    try:
        if not args.no_sqlite:
            url = f"sqlite:///{folder / 'region.db'}"
            results["SQLite"] = run_backend("SQLite", url, args, folder)
        if server:
            with throwaway_database(server) as url:
                results["PostgreSQL"] = run_backend("PostgreSQL", url, args, folder)
        else:
            print("\nPostgreSQL: not measured (pass --pg URL or set $FORMTOOL_TEST_PG).")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not args.tiny and "PostgreSQL" in results:
        record(args, results)


def record(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from results import record as keep

    pg = results["PostgreSQL"]
    lite = results.get("SQLite")
    pages = ", ".join(f"{name} {p95(t):.0f} ms" for name, t in pg["pages"].items())
    keep(
        "regional.py",
        f"a region's year: {args.audits:,} audits ({pg['counts']['answers']:,} answers) of "
        f"{args.councils} councils' populations in one database",
        f"PostgreSQL: figures {pg['figures']:.1f} s; annual pack {pg['pack']['seconds']:.1f} s, "
        f"peak {pg['pack']['peak_mb']:.0f} MB; import {pg['import']['ratio']:.2f}x the floor"
        + (
            f" (SQLite {lite['import']['ratio']:.2f}x, figures {lite['figures']:.1f} s, "
            f"pack {lite['pack']['seconds']:.1f} s)"
            if lite
            else ""
        )
        + f"; p95 {pages}; upload {pg['upload']['web'] / pg['upload']['cli']:.2f}x the CLI; "
        f"{args.officers} officers (a page each {args.think:.0f} s) with 2 workers p95 "
        f"{p95(pg['officers']):.0f} ms",
        f"figures < 5 s: {verdict(pg['figures'] < FIGURES_S)}; pack < 60 s and < 1 GB: "
        f"{verdict(pg['pack']['seconds'] < PACK_S and pg['pack']['peak_mb'] < PACK_MB)}; "
        f"import <= 3x: {verdict(pg['import']['ratio'] <= IMPORT_RATIO)}"
        + (f" (SQLite {verdict(lite['import']['ratio'] <= IMPORT_RATIO)})" if lite else "")
        + "; pages < 200 ms: "
        f"{verdict(all(p95(t) < PAGE_MS for t in pg['pages'].values()))}; upload <= 1.5x: "
        f"{verdict(pg['upload']['web'] / pg['upload']['cli'] <= UPLOAD_RATIO)}; officers < 200 ms: "
        f"{verdict(p95(pg['officers']) < PAGE_MS)}",
    )


if __name__ == "__main__":
    main()
