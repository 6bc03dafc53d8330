"""PostgreSQL's own tools for backup.py: pg_dump on a snapshot formtool exports (so the rows it
counts are exactly those dumped), pg_restore to read a dump back and to fill an empty database.

The programs come from PATH, else from the newest PostgreSQL installed in PG_BIN_DIRS, and must
be at least as new as the server. The password goes to them in PGPASSWORD, never on the
command line (where `ps` would show it).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formtool.store.copies import BackupError, not_formtool, schema_revision, table_rows
from formtool.store.engine import masked

#: Where PostgreSQL's programs are looked for when they are not on PATH (Debian, Ubuntu).
PG_BIN_DIRS = "/usr/lib/postgresql/*/bin"


def _major(program: str) -> int | None:
    try:
        done = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s*(\d+)", done.stdout)
    return int(found[1]) if found else None


def _installed(name: str) -> list[str]:
    """`name` on PATH first, then from PG_BIN_DIRS, newest version first."""
    found = sorted(
        glob.glob(f"{PG_BIN_DIRS}/{name}"),
        key=lambda p: [int(d) for d in re.findall(r"\d+", p)],
        reverse=True,
    )
    on_path = shutil.which(name)
    return [on_path, *found] if on_path else found


def program(name: str, engine: sa.Engine) -> tuple[str, int]:
    """pg_dump or pg_restore at least as new as the engine's server, and its major version."""
    with engine.connect() as conn:
        need = int((conn.dialect.server_version_info or (0,))[0])
    seen: list[int] = []
    for candidate in _installed(name):
        major = _major(candidate)
        if major is not None and major >= need:
            return candidate, major
        if major is not None:
            seen.append(major)
    if seen:
        raise BackupError(
            f"{name} {max(seen)} cannot work with a PostgreSQL {need} server: install the "
            f"PostgreSQL {need} client tools (e.g. apt install postgresql-client-{need}) or put "
            "them first on PATH."
        )
    url = libpq_url(engine.url)
    example = (
        f"pg_dump --format=custom --file=formtool.dump '{url}'"
        if name == "pg_dump"
        else f"pg_restore --no-owner --dbname='{url}' BACKUP"
    )
    raise BackupError(
        f"{name} is not installed here, so formtool cannot run it for PostgreSQL: install "
        f"the PostgreSQL client tools (e.g. apt install postgresql-client-{need}), or run "
        f"`{example}` where they are."
    )


def reader() -> str | None:
    """A pg_restore to read a dump with (no server to match): PATH's, else the newest."""
    found = _installed("pg_restore")
    return found[0] if found else None


def beside(program_path: str, name: str) -> str:
    """The other PostgreSQL program from the same installation."""
    sibling = Path(program_path).with_name(name)
    return str(sibling) if sibling.exists() else shutil.which(name) or name


def libpq_url(url: sa.URL, database: str | None = None) -> str:
    """The URL as psql and pg_dump take it, password masked (for messages)."""
    shown = url.set(drivername="postgresql")
    if database is not None:
        shown = shown.set(database=database)
    return shown.render_as_string(hide_password=True)


def _conninfo(url: sa.URL) -> tuple[str, dict[str, str]]:
    """The libpq connection string and the environment carrying the password."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {
        k: ",".join(v) if isinstance(v, tuple) else v for k, v in url.query.items()
    }
    params.update(
        {k: v for k, v in dict(host=url.host, port=url.port, user=url.username).items() if v}
    )
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return make_conninfo("", dbname=url.database, **params), env


def _run(command: list[str], env: dict[str, str], what: str, **kwargs: Any) -> None:
    with tempfile.TemporaryFile() as errors:
        done = subprocess.run(command, env=env, stderr=errors, check=False, **kwargs)
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0:
        reason = re.sub(r"\s+", " ", said[-1] if said else f"exit status {done.returncode}")
        raise BackupError(f"{what} failed: {reason.removeprefix(f'{Path(command[0]).name}: ')}")


def dump(engine: sa.Engine, pg_dump: str, into: Path, shown: Path) -> tuple[dict[str, int], str]:
    """pg_dump --format=custom into the (already created, private) file `into`, on a snapshot
    this transaction exports and counts the rows of: rows per table, schema revision. A
    database with no schema revision is refused before pg_dump runs."""
    conninfo, env = _conninfo(engine.url)
    with engine.connect() as plain:
        conn = plain.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            tables = table_rows(conn)
            revision = schema_revision(conn, tables)
            if not revision:
                raise not_formtool(masked(engine.url))
            with open(into, "wb") as out:
                _run(
                    [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--dbname={conninfo}"],
                    env,
                    f"pg_dump of {masked(engine.url)} to {shown}",
                    stdout=out,
                )
    return tables, revision


def contents(pg_restore: str, path: Path, shown: Path | None = None) -> tuple[dict[str, int], str]:
    """Read a custom-format dump back with pg_restore: rows per table of the public schema
    (counted in its data, so every block is read) and the schema revision."""
    where = shown or path
    _run(
        [pg_restore, "--list", str(path)],
        dict(os.environ),
        f"[{where}] pg_restore --list",
        stdout=subprocess.DEVNULL,
    )
    tables: dict[str, int] = {}
    revision = ""
    current: str | None = None  # the table whose rows follow ("" for another schema's)
    copy = re.compile(rb"^COPY (\S+) .*FROM stdin;$")
    with tempfile.TemporaryFile() as errors:
        command = [pg_restore, "--data-only", "--file=-", str(path)]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors) as reading:
            assert reading.stdout is not None
            for line in reading.stdout:
                if current is None:
                    found = copy.match(line.rstrip(b"\n"))
                    if found:
                        schema, _, name = found[1].decode().rpartition(".")
                        current = name.strip('"') if schema.strip('"') == "public" else ""
                        if current:
                            tables[current] = 0
                elif line == b"\\.\n":  # COPY text escapes a backslash, so this ends the block
                    current = None
                elif current:
                    tables[current] += 1
                    if current == "alembic_version":
                        revision = line.decode().strip()
        if reading.returncode != 0:
            errors.seek(0)
            said = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise BackupError(
                f"[{where}] is damaged: pg_restore cannot read it ({said[-1] if said else ''}). "
                "Use another backup."
            )
    return dict(sorted(tables.items())), revision


def restore_into(engine: sa.Engine, path: Path) -> None:
    """Fill the engine's (empty) database from the dump at `path` in one transaction: all of
    it, or nothing. Objects are owned by the connecting role (--no-owner)."""
    pg_restore, _ = program("pg_restore", engine)
    conninfo, env = _conninfo(engine.url)
    _run(
        [
            pg_restore,
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={conninfo}",
            str(path),
        ],
        env,
        f"pg_restore of {path} into {masked(engine.url)} (nothing was restored)",
    )
