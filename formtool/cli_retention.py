"""`formtool retention`: what the programme's retention schedule says is past its period (a dry
run by default), removing it (`--apply`), and the anonymised period summary kept for the audits
removed (`--summary`). The work is formtool/protect/retention.py's; this prints it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from formtool.cli_common import (
    MONTH,
    _echo_json,
    _policy,
    _progress,
    _record_cli,
    _settings,
    _store,
    _user,
    db_option,
    json_option,
)
from formtool.errors import printable
from formtool.periods import show_date


@click.command("retention")
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Remove what is due: each audit in one transaction, every removal in the access log, "
    "the run in the register (formtool data-requests).",
)
@click.option(
    "--summary",
    is_flag=True,
    help="Show the anonymised period summary kept for removed audits instead (counts by "
    "month, tool, team, measure and value).",
)
@click.option("--month", type=MONTH, help="With --summary: only this month (YYYY-MM).")
@click.option(
    "--backup-dir",
    "backup_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Also look here for backups `formtool backup` named by date (the folders it "
    "recorded writing to are searched already). Repeatable.",
)
@db_option
@json_option
def retention_(
    apply_: bool,
    summary: bool,
    month: str | None,
    backup_dirs: tuple[Path, ...],
    db_url: str | None,
    as_json: bool,
) -> None:
    """What the programme's retention schedule says is past its period, per kind of record:
    how many, the oldest, the period and what it counts from (a dry run: nothing changes).
    --apply removes it; audits still open past their period are kept and named."""
    if summary or month:
        if apply_ or not summary:
            raise click.UsageError("--month goes with --summary, and --summary not with --apply.")
        _summary(db_url, month, as_json)
        return
    from formtool import clock
    from formtool.protect.retention import apply, plan

    db = _store(db_url, "write" if apply_ else "read")
    policy = _policy(db, db_url)
    days = _settings(db_url).access_log_days
    planned = plan(db, policy, clock.today(), days, backup_dirs)
    named = not db.read_only  # who saw the audit ids of open audits is recorded
    if named:
        _record_cli(db, "viewed the retention plan", f"{planned.kept} record(s) kept past it")
    if not apply_:
        _show_plan(planned, named, as_json, dry_run=True)
        return
    done = apply(db, planned, _user(), _progress("Removing what is past its period", as_json))
    if as_json:
        _echo_json(_plan_data(planned, named) | done.as_dict() | {"dry_run": False})
        return
    _show_plan(planned, named, False, dry_run=False)
    click.echo(
        f"Removed {done.said()}; {done.files_deleted} file(s) deleted from disk. Recorded in "
        f"the register (formtool data-requests) as number {done.request}."
    )


def _plan_data(planned: Any, named: bool) -> dict[str, Any]:
    data: dict[str, Any] = planned.as_dict()
    if not named:
        for kind in data["kinds"]:
            kind["not_removable"] = len(kind["not_removable"])
    return data


def _show_plan(planned: Any, named: bool, as_json: bool, dry_run: bool) -> None:
    if as_json:
        _echo_json(_plan_data(planned, named) | {"dry_run": dry_run})
        return
    what = "a dry run: nothing is removed (--apply removes what is due)" if dry_run else "applied"
    click.echo(
        f"Retention under programme {planned.programme}, as of {show_date(planned.today)}: {what}."
    )
    for line in planned.lines:
        oldest = f", the oldest {show_date(line.oldest)}" if line.oldest else ""
        click.echo(f"  {line.what}: {line.number} due{oldest}")
        click.echo(f"      kept {line.period} from {line.counted} ({line.source})")
    if planned.kept:
        _show_kept(planned, named)


def _show_kept(planned: Any, named: bool) -> None:
    from formtool.protect.retention import SHOWN

    if not named:
        click.echo(
            f"{planned.kept} record(s) are past their period but kept (their audits are "
            "still open). The database is read-only here, so they are not named: run it where "
            "the access log can record who saw them."
        )
        return
    click.echo(f"Past their period but kept ({planned.kept}):")
    kept = [item for line in planned.lines for item in line.kept]
    for record, why in kept[:SHOWN]:
        click.echo(f"  {printable(record)}: {why}")
    if len(kept) > SHOWN:
        click.echo(f"  ... and {len(kept) - SHOWN} more (--json lists them all).")


def _summary(db_url: str | None, month: str | None, as_json: bool) -> None:
    """The anonymised counts kept for removed audits (no child, member of staff or audit)."""
    from formtool.protect.summary import as_rows, stored_cells

    db = _store(db_url, "read")
    rows = as_rows(stored_cells(db, [month] if month else None))
    if as_json:
        _echo_json({"month": month, "cells": rows})
        return
    if not rows:
        where = f" for {month}" if month else ""
        click.echo(f"No period summary{where}: retention and erasure have removed no audits.")
        return
    click.echo(f"{'month':<8} {'tool':<24} {'team':<24} {'measure':<11} {'value':<36} count")
    for r in rows:
        cells = (r["month"], r["form"][:24], r["team"][:24], r["measure"], r["value"][:36])
        click.echo(
            "{:<8} {:<24} {:<24} {:<11} {:<36} {:>5}".format(*map(printable, cells), r["count"])
        )
