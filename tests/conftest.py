"""Shared test helpers: both database backends, LibreOffice conversion, synthetic cases and
answers.

Store tests take the `db_url` fixture and run twice: on an SQLite file and on a fresh database
of a real PostgreSQL server. The server is $FORMTOOL_TEST_PG (a URL, as .ci/run sets), else a
throwaway cluster started here when PostgreSQL's initdb is installed; in CI a missing server
is a failure, elsewhere the PostgreSQL runs are skipped with the reason.
"""

from __future__ import annotations

import atexit
import datetime as dt
import fcntl
import hashlib
import os
import pickle
import random
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import settings

from formtool.definitions import FormCatalog, FormDefinition, get_form, load_forms, use_catalog
from formtool.definitions.scales import FieldKind
from formtool.demo.synthetic import synthetic_case
from formtool.read.cases import Case, load_cases, write_case_list

settings.register_profile("formtool", derandomize=True, database=None, deadline=None)
settings.load_profile("formtool")  # property tests draw the same examples on every run

#: Set to a date (YYYY-MM-DD) to run the whole suite with the machine's clock moved there
#: (time-machine, for this process): code that reads the machine's date instead of
#: formtool.clock is caught, because the suite must pass on any date.
MACHINE_DATE_VAR = "FORMTOOL_TEST_MACHINE_DATE"


def pytest_configure(config: pytest.Config) -> None:
    moved_to = os.environ.get(MACHINE_DATE_VAR)
    if moved_to:
        import time_machine

        traveller = time_machine.travel(
            dt.datetime.combine(dt.date.fromisoformat(moved_to), dt.time(9, 30)), tick=True
        )
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_report_header(config: pytest.Config) -> str:
    machine = dt.date.today()  # real time: where the machine's clock is for this run
    return f"machine date: {machine} ({MACHINE_DATE_VAR}={os.environ.get(MACHINE_DATE_VAR, '')})"


@pytest.fixture(autouse=True)
def real_clock() -> Iterator[None]:
    """Each test starts on the real business date; one that fixes it (--today) is undone."""
    from formtool import clock

    clock.set_today(None)
    yield
    clock.set_today(None)


#: This session's cache folder: the form catalog caches checked definitions here, and so does
#: every formtool the suite starts ($XDG_CACHE_HOME), never under the user's ~/.cache.
TEST_CACHE = Path(tempfile.mkdtemp(prefix="formtool-test-cache-"))
atexit.register(shutil.rmtree, TEST_CACHE, ignore_errors=True)  # also after --collect-only


def fresh_catalog() -> FormCatalog:
    """The shipped tools only, read anew, their disk cache in TEST_CACHE."""
    return FormCatalog(team_dir=None, cache_dir=TEST_CACHE / "formtool" / "definitions")


use_catalog(fresh_catalog())  # before anything reads a form, FORM_IDS below included


@pytest.fixture(scope="session", autouse=True)
def isolated_cache() -> Iterator[Path]:
    """formtool run as a subprocess (or a server the suite starts) caches in TEST_CACHE too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(TEST_CACHE))
        yield TEST_CACHE


@pytest.fixture(autouse=True)
def catalog(monkeypatch) -> Iterator[FormCatalog]:
    """Each test starts with a fresh form catalog (the shipped tools only: FORMTOOL_FORMS is
    unset), so a team folder or an edited definition never outlives its test."""
    monkeypatch.delenv("FORMTOOL_FORMS", raising=False)
    fresh = fresh_catalog()
    use_catalog(fresh)
    yield fresh
    use_catalog(fresh_catalog())


FORM_IDS = sorted(load_forms())
#: The six case-file audit tools transcribed from the seeds (the others are QA activities').
SEED_TOOLS = (
    "csc",
    "early_help",
    "foster_carer",
    "prospective_adopter",
    "quality_practice",
    "supported_lodgings",
)
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
DUE = dt.date(2026, 11, 30)


def missing(reason: str) -> NoReturn:
    """Something a test needs is not here: in CI that is a failure (CI installs every program
    and checks the shared files out beside the repo), elsewhere a skip with the reason."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (in CI every test runs)")
    pytest.skip(reason)


def soffice() -> str:
    """The soffice binary; in CI a missing LibreOffice is a failure, not a skip."""
    return shutil.which("soffice") or missing(
        "LibreOffice (soffice) is not installed; .ci/run installs libreoffice-*-nogui"
    )


def convert(files: list[Path], target: str, out_dir: Path) -> list[Path]:
    """Open and save files through LibreOffice headless; return the converted files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    profile = out_dir / ".lo-profile"
    subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            target,
            "--outdir",
            str(out_dir),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    extension = target.split(":")[0]
    return [out_dir / f"{f.stem}.{extension}" for f in files]


#: One complete case-list row for the CSC tool, for tests that vary one column of it.
CASE_ROW = {
    "case_number": "P1",
    "family_name": "Example",
    "given_names": "Alex",
    "worker": "Worker A1",
    "manager": "Manager A1",
    "team": "Team A",
    "auditor": "Auditor B1",
    "due_date": "2026-11-30",
}


def record_grade(db, case_number: str, auditor: str, moderated: str = "") -> None:
    """A current final return with these grades for the case's audit, as an import would
    record it (imported 20/10/2026), without a file to read."""
    import sqlalchemy as sa

    from formtool import store

    a = store.audits.c
    with store.transaction(db.engine) as conn:
        audit_id = conn.execute(sa.select(a.audit_id).where(a.case_number == case_number)).scalar()
        inserted = conn.execute(
            store.returns.insert().values(
                audit_id=audit_id,
                file_name="r.docx",
                content_hash="h" * 64,
                content=b"",
                imported_at=dt.datetime(2026, 10, 20, 9),
                is_current=True,
                method="bookmarks",
                final=True,
            )
        ).inserted_primary_key
        assert inserted is not None
        conn.execute(
            store.grades.insert().values(
                audit_id=audit_id,
                auditor_grade=auditor,
                moderated_grade=moderated,
                return_id=inserted[0],
            )
        )


def write_cases(path: Path, rows: list[dict[str, str]]) -> Path:
    write_case_list(path, rows)
    return path


def make_cases(tmp_path: Path, form: FormDefinition, count: int = 2, seed: int = 7) -> list[Case]:
    rng = random.Random(seed)
    rows = [synthetic_case(form, i, DUE, rng) for i in range(1, count + 1)]
    return load_cases(write_cases(tmp_path / f"{form.id}-cases.csv", rows), form)


def answers_for(form: FormDefinition, seed: int = 1) -> dict[str, str]:
    """A value for every answerable field, with awkward text (markup, newlines, formulas)."""
    rng = random.Random(seed)
    answers = {}
    for field in form.fields():
        if field.kind is FieldKind.choice:
            assert field.scale is not None  # a choice field always has one
            answers[field.key] = rng.choice(field.scale.choices)
        elif field.kind is FieldKind.date:
            answers[field.key] = f"{rng.randrange(1, 28):02d}/12/2026"
        else:
            answers[field.key] = f"Seen {field.key} on 03/11 & <noted>\n=SUM(A1) second line"
    if form.judgements.concern:  # a Yes raises an urgent concern: only tests meaning one say so
        answers[form.judgements.concern] = "No"
    return answers


def date_keys(form: FormDefinition) -> frozenset[str]:
    return frozenset(f.key for f in form.fields() if f.kind is FieldKind.date)


def _pg_binaries() -> Path | None:
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return versions[-1] if versions else None


def _start_cluster(root: Path) -> str:
    """initdb + pg_ctl start on a unix socket in `root`; as the postgres user when root
    (initdb refuses root). Returns a server URL."""
    binaries = _pg_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data = root / "data"

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120, cwd=root)

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "log"),
        "-w",
        "start",
        "-o",
        f"-k {root} -c listen_addresses='' -c max_connections=200 -c fsync=off "
        # a throwaway cluster: nothing to recover, so no WAL beyond the minimum (a test
        # database is copied from its template in a fifth of the time)
        "-c full_page_writes=off -c wal_level=minimal "
        "-c max_wal_senders=0",
    )
    return f"postgresql+psycopg://postgres@/postgres?host={root}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server URL for the session (see the module docstring)."""
    url = os.environ.get("FORMTOOL_TEST_PG")
    if url:
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="formtool-pg-"))
    try:
        url = _start_cluster(root)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        missing(f"no PostgreSQL server (set FORMTOOL_TEST_PG or install postgresql): {exc}")
    try:
        yield url
    finally:
        binaries = _pg_binaries()
        assert binaries is not None  # the cluster started with them
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                *as_user,
                str(binaries / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def database_at(url: str, revision: str) -> Iterator[Any]:
    """An empty database built by the migrations up to `revision` (an earlier release's
    schema), in one write transaction the caller may add rows to; its pooled connections
    are closed after, so the next open sees it as a new process would."""
    from alembic import command
    from alembic.config import Config

    from formtool import store

    config = Config()
    config.set_main_option("script_location", store.migrations_dir())
    engine = store.engine_for(url)
    with store.transaction(engine) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        yield conn
    engine.dispose()


def fresh_pg_database(server: str) -> str:
    """A new, empty database on the server; its URL."""
    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = sa.make_url(server).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_pg_database(server: str, url: str) -> None:
    import sqlalchemy as sa

    from formtool import store

    store.engine_for(url).dispose()  # close this process's pooled connections first
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')
    admin.dispose()


def _migrations_digest() -> str:
    """What the migrations say, in 12 hex digits: a template built by other migrations (a
    server kept between runs with FORMTOOL_TEST_PG) is never reused."""
    from formtool import store

    digest = hashlib.sha256()
    for path in sorted(Path(store.migrations_dir()).rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def migrated_pg_database(server: str) -> str:
    """A new database on the server already at the store's current schema, copied from a
    template made once per server and migrations (CREATE DATABASE ... TEMPLATE): the same
    database `open_store` would make, at a third of the cost of migrating each one."""
    import sqlalchemy as sa

    from formtool import store

    template = f"tmpl_{_migrations_digest()}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(727201)")  # one builder across workers
        try:
            found = conn.exec_driver_sql(
                f"SELECT 1 FROM pg_database WHERE datname = '{template}'"
            ).first()
            if found is None:
                url = fresh_pg_database(server)
                store.open_store(url)
                store.engine_for(url).dispose()
                conn.exec_driver_sql(
                    f'ALTER DATABASE "{sa.make_url(url).database}" RENAME TO "{template}"'
                )
            name = f"t_{uuid.uuid4().hex[:12]}"
            conn.exec_driver_sql(
                f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY'
            )
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(727201)")
    admin.dispose()
    return sa.make_url(server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """A database: an SQLite file (empty), then a fresh PostgreSQL database at the current
    schema (dropped after); `empty_pg` marks a test that needs it empty, as never opened."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = request.getfixturevalue("pg_server")
    empty = request.node.get_closest_marker("empty_pg") is not None
    url = fresh_pg_database(server) if empty else migrated_pg_database(server)
    yield url
    drop_pg_database(server, url)


@pytest.fixture
def db(db_url):
    from formtool import store

    return store.open_store(db_url)


@pytest.fixture(autouse=True)
def isolated_database(tmp_path_factory, monkeypatch):
    """Commands that default to ./formtool.db use a throwaway file instead."""
    monkeypatch.setenv("FORMTOOL_DB", str(tmp_path_factory.mktemp("db") / "default.db"))


@pytest.fixture(params=FORM_IDS)
def form(request) -> FormDefinition:
    return get_form(request.param)


#: The demo every test that needs one shares: the README's run (seed 2026, 23 November 2026).
DEMO_DAY = dt.date(2026, 11, 23)
DEMO_SEED = 2026


@dataclass(frozen=True)
class Demo:
    """A finished demo run. `folder` holds outputs/demo; the report's paths are relative to it
    (as `formtool demo` prints them from the folder it runs in)."""

    folder: Path
    report: Any

    @property
    def out(self) -> Path:
        return self.folder / "outputs" / "demo"

    def copy(self, to: Path) -> Path:
        """A private copy of outputs/demo for a test that changes it; the copy's folder."""
        shutil.copytree(self.out, to)
        return to


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file across processes (the xdist workers)."""
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, worker_id) -> Demo:
    """`formtool demo` once per test run, exactly as the README runs it: the first worker that
    needs it builds it under a lock, the others wait and share it (it takes ~13 s of one of
    the machine's two cores). Tests read it; tests that change its database or files take a
    `Demo.copy`."""
    from formtool import clock, store
    from formtool.demo.run import run_demo

    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # this run's, shared by workers
    folder = root / "demo-session"
    built = folder / "report.pickle"
    with _exclusive(root / "demo-session.lock"):
        if not built.exists():
            folder.mkdir(exist_ok=True)
            here = os.getcwd()
            with clock.frozen(DEMO_DAY):
                os.chdir(folder)
                try:
                    report = run_demo(Path("outputs/demo"), seed=DEMO_SEED)
                    # Close its connections: SQLite folds the WAL into formtool.db, so a
                    # test may copy the file alone and get everything the demo stored.
                    store.engine_for("sqlite:///outputs/demo/formtool.db").dispose()
                finally:
                    os.chdir(here)
            built.write_bytes(pickle.dumps(report))
    return Demo(folder, pickle.loads(built.read_bytes()))


#: A concern contact that is not a placeholder (the shipped policies' are example.invalid).
DUTY_MANAGER = "duty.manager@council.test"


def use_real_contacts(db: Any) -> None:
    """Make the database run hull with a real-looking concern contact, as a council would
    after putting its own addresses in its policy."""
    from dataclasses import replace as with_

    from formtool.programme.policy import Concerns, load_policy, policy_snapshot

    contacts = Concerns((DUTY_MANAGER,), source="the council's own duty manager")
    policy = with_(load_policy("hull"), name="ourcouncil", concerns=contacts)
    db.use_policy(policy.name, policy_snapshot(policy), "test")


def schema_keys(path: Path) -> set[str]:
    """Every property name a JSON Schema file declares, at any depth (the keys a README
    documenting the format must name)."""
    import json

    keys: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(path.read_text(encoding="utf-8")))
    return keys
