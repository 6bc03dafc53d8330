"""`formtool activity`: the programme's QA activities besides the monthly case-file audit.

The monthly ones (dip samples, observations, supervision audits, feedback, audits an event
triggers) are drawn by `formtool allocate`; the ones an officer starts (a thematic or deep-dive
audit on a theme) begin here. Each run's audits then go through generate, send, import and
moderation like any other; `activity report` writes a run's group summary report, or a
period's supervision or observation report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from formtool.cli_common import (
    DEFAULT_OUT,
    MONTH,
    FormtoolGroup,
    InputError,
    _echo_json,
    _policy,
    _refuse_unlogged,
    _settings,
    _store,
    _user,
    db_option,
    json_option,
)
from formtool.errors import printable
from formtool.periods import show_date


@click.group(cls=FormtoolGroup)
def activity() -> None:
    """Thematic audits, dip samples, supervision audits, observations of practice and
    feedback from families: the programme's activities and their runs."""


@activity.command("list")
@click.option("--month", type=MONTH, help="Only runs of this month.")
@click.option("--activity", "activity_id", metavar="ID", help="Only runs of this activity.")
@db_option
@json_option
def activity_list(
    month: str | None, activity_id: str | None, db_url: str | None, as_json: bool
) -> None:
    """The programme's activities (when each runs) and their runs with their audits counted."""
    from formtool.programme.activity import activity_words

    db = _store(db_url, "read")
    policy = _policy(db, db_url)
    if activity_id is not None and policy.activity(activity_id) is None:
        known = ", ".join(a.id for a in policy.activities) or "none"
        raise InputError(
            f"[--activity '{printable(activity_id, 40)}'] programme '{policy.name}' has no such "
            f"activity. Its activities: {known}."
        )
    runs = db.activity_runs(activity_id, [month] if month else None)
    due = _reviews_due(policy, db.activity_runs())
    if as_json:
        _echo_json(
            {
                "programme": policy.name,
                "activities": [
                    {"id": a.id, "name": a.name, "kind": a.kind, "form": a.form}
                    for a in policy.activities
                ],
                "runs": [_run_dict(r) | {"review_due": due.get(r.id)} for r in runs],
            }
        )
        return
    if not policy.activities:
        click.echo(f"Programme '{policy.name}' has no activities besides its monthly samples.")
    for a in policy.activities:
        click.echo(f"{a.id}: {activity_words(a)[0]}")
    if not runs:
        click.echo("No runs yet." if not month else f"No runs in {month}.")
        return
    click.echo("")
    click.echo(f"{'Run':>4}  {'Month':<7}  {'Audits':>6}  {'Open':>4}  Name")
    for r in runs:
        review = f"  (review due {due[r.id]}: --review-of {r.id})" if r.id in due else ""
        click.echo(
            f"{r.id:>4}  {r.month:<7}  {r.audits:>6}  {r.outstanding:>4}  {printable(r.name)}"
            + review
        )


def _reviews_due(policy: Any, runs: list[Any]) -> dict[int, str]:
    """Run -> the month its review falls due (seed 001 4.13: "followed by a review after six
    months"), for runs of an activity that asks for one and not yet reviewed."""
    from formtool.periods import Month

    reviewed = {r.review_of for r in runs if r.review_of is not None}
    due = {}
    for r in runs:
        activity = policy.activity(r.activity)
        if activity and activity.review_months and r.id not in reviewed:
            due[r.id] = str(Month(r.month).shift(activity.review_months))
    return due


def _run_dict(row: Any) -> dict[str, Any]:
    return {
        "run": row.id,
        "activity": row.activity,
        "kind": row.kind,
        "name": row.name,
        "theme": row.theme,
        "month": row.month,
        "due": row.due_date.isoformat(),
        "owner": row.owner,
        "chosen": row.chosen,
        "review_of": row.review_of,
        "on_demand": bool(row.on_demand),
        "audits": int(row.audits),
        "outstanding": int(row.outstanding),
        "exempted": int(row.exempted),
        "findings": row.findings,
    }


@activity.command("start")
@click.argument("activity_id", metavar="ACTIVITY")
@click.option("--month", required=True, type=MONTH, help="The month the run's audits are in.")
@click.option(
    "--population",
    "population_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="All cases (.csv/.xlsx), as for `formtool allocate`.",
)
@click.option(
    "--auditors",
    "auditors_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Auditors (.csv/.xlsx), as for `formtool allocate`.",
)
@click.option("--theme", default="", help="What the run looks at, e.g. 'Neglect'.")
@click.option("--owner", default="", help="Who leads it (the report names them).")
@click.option(
    "--cases",
    "cases_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The cases to audit (.csv/.xlsx with a case_number column).",
)
@click.option(
    "--where",
    multiple=True,
    metavar="COND",
    help="Draw from the population rows where COLUMN=VALUE or COLUMN>=N (also !=, <=, <, "
    ">); repeat for more (all must hold).",
)
@click.option("--size", type=click.IntRange(min=1), help="How many cases to draw (--where).")
@click.option(
    "--review-of",
    "review_of",
    type=int,
    metavar="RUN",
    help="Review an earlier run: the same cases and theme (seed 001 4.13: six months on).",
)
@click.option("--seed", default=0, show_default=True, help="Same seed, same draw.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "activity.csv",
    show_default=True,
    help="The run's audits as a case list for `formtool generate`.",
)
@db_option
@json_option
def activity_start(
    activity_id: str,
    month: str,
    population_path: Path,
    auditors_path: Path,
    theme: str,
    owner: str,
    cases_path: Path | None,
    where: tuple[str, ...],
    size: int | None,
    review_of: int | None,
    seed: int,
    out: Path,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Start a run of an activity an officer begins (a thematic audit): its cases named
    (--cases), drawn (--where, --size) or those of the run it reviews (--review-of), each
    given to an auditor of the activity, recorded with the programme's version."""
    from formtool.programme.runs import RunRequest, start_run

    db = _store(db_url)
    request = RunRequest(
        activity_id, month, population_path, auditors_path, cases_path, where, size,
        review_of, theme, owner, seed=seed,
    )  # fmt: skip
    started = start_run(db, _policy(db, db_url), request, out, _user())
    if as_json:
        _echo_json(started.as_dict() | {"out": str(out)})
        return
    click.echo(
        f"Run {started.run.id}: {printable(started.run.name)}, {len(started.rows)} audit(s) "
        f"due {show_date(started.run.due_date)} ({started.run.chosen}): {out}"
    )
    for row in started.rows:
        click.echo(f"  {row['audit_id']}  {printable(row['auditor'])}")
    for note in started.notes:
        click.echo(f"  note: {note}")
    click.echo(f"Next: formtool generate --cases {out}")


@activity.command("set")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--theme", help="What the run looks at.")
@click.option("--owner", help="Who leads it.")
@click.option("--findings", help="The group's agreed overall findings and key messages.")
@click.option(
    "--findings-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The findings from a UTF-8 text file.",
)
@db_option
@json_option
def activity_set(
    run_id: int,
    theme: str | None,
    owner: str | None,
    findings: str | None,
    findings_file: Path | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Record a run's theme, owner or the group's agreed findings (seed 001 4.13: "the group
    will agree the overall findings with the key messages")."""
    if findings is not None and findings_file is not None:
        raise InputError("Give --findings or --findings-file, not both.")
    if findings_file is not None:
        findings = _text_file(findings_file)
    if theme is None and owner is None and findings is None:
        raise InputError("Nothing to change: give --theme, --owner or --findings.")
    db = _store(db_url)
    row = db.set_run(run_id, _user(), theme, owner, findings)
    if as_json:
        _echo_json(_run_dict(row))
        return
    click.echo(f"Run {row.id} ({printable(row.name)}) updated.")


def _text_file(path: Path) -> str:
    data = path.read_bytes()
    if len(data) > 200_000:
        raise InputError(f"[{path}] is too long for findings (at most 200 kB of text).")
    try:
        return data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise InputError(f"[{path}] is not UTF-8 text. Save it as UTF-8.") from None


@activity.command("report")
@click.argument("run_id", metavar="[RUN]", type=int, required=False)
@click.option(
    "--supervision",
    "supervision_period",
    metavar="PERIOD",
    help="The quarterly report on the quality of supervision (e.g. 2026-Q4).",
)
@click.option(
    "--observation",
    "observation_period",
    metavar="PERIOD",
    help="The observation summary for a period (e.g. 2026-Q4 or 2026).",
)
@click.option(
    "--staff",
    "staff_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --observation: the case-holding practitioners (staff_id, name, team, role), so "
    "those never observed are listed.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_OUT / "reports",
    show_default=True,
)
@db_option
@json_option
def activity_report(
    run_id: int | None,
    supervision_period: str | None,
    observation_period: str | None,
    staff_path: Path | None,
    out_dir: Path,
    db_url: str | None,
    as_json: bool,
) -> None:
    """A run's group summary report (thematic audits, dip samples), or a period's
    supervision or observation report (.docx and .pdf). They name cases or staff: for
    officers and moderators, and every one is in the access log."""
    from formtool.packs import activity as reports
    from formtool.store import REPORT

    chosen = [x for x in (run_id, supervision_period, observation_period) if x is not None]
    if len(chosen) != 1:
        raise InputError("Give one of: a RUN number, --supervision PERIOD, --observation PERIOD.")
    db = _store(db_url)
    _refuse_unlogged(db, "the report")
    settings = _settings(db_url)
    if run_id is not None:
        paths = reports.group_report(db, run_id, out_dir, _user(), settings)
    elif supervision_period is not None:
        period = _period("supervision", supervision_period)
        paths = reports.supervision_report(db, period, out_dir, _user(), settings)
    else:
        period, staff = _period("observation", str(observation_period)), _staff(staff_path)
        paths = reports.observation_report(db, period, out_dir, _user(), staff, settings)
    db.record_files(paths, REPORT, user=_user())  # tracked, so retention finds them on disk
    if as_json:
        _echo_json({"files": [str(p) for p in paths]})
        return
    for path in paths:
        click.echo(str(path))


def _period(option: str, text: str) -> Any:
    """The period an option names, or its one-line refusal naming the option."""
    from formtool.periods import PeriodError, parse_period

    try:
        return parse_period(text)
    except PeriodError:
        raise InputError(
            f"[--{option} '{printable(text, 40)}'] is not a period. Use a month (2026-11), a "
            "financial quarter (2026-Q3) or a financial year (2026)."
        ) from None


def _staff(path: Path | None) -> list[dict[str, str]] | None:
    from formtool.programme.allocation import load_staff

    return load_staff(path) if path else None
