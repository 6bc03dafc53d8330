"""The programme's commands: `formtool programme list|show|check|use`, `calendar`,
`concerns` and `followup`. cli.py adds them to the `formtool` group; they share its options,
its store and its error handling (cli_common.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from formtool.cli_common import (
    _echo_json,
    _record_cli,
    _refuse_unlogged,
    _settings,
    _store,
    _user,
    db_option,
    json_option,
)
from formtool.periods import show_date, show_day


def _team_dir() -> Path | None:
    from formtool.definitions.catalog import form_catalog

    return form_catalog().team_dir


# --- programme --------------------------------------------------------------------------


@click.group()
def programme() -> None:
    """The council's audit programme: who audits, what is sampled, the deadlines, who hears of
    an urgent concern. Policies are YAML files: shipped (hull, the default; rochdale;
    windsor-maidenhead; hampshire) or your team's own in programmes/ under --forms-dir."""


@programme.command("list")
@db_option
@json_option
def programme_list(db_url: str | None, as_json: bool) -> None:
    """The policies you can use, and the one this database runs."""
    from formtool.programme.policy import load_policy, policy_files

    active = _active_or_default(db_url)  # no database yet: the default, none created
    rows = []
    for name, path in policy_files(_team_dir()).items():
        policy = load_policy(path)
        rows.append({"name": name, "title": policy.title, "file": str(path)})
    if as_json:
        _echo_json({"active": {"name": active.name, "version": active.version}, "policies": rows})
        return
    for row in rows:
        mark = "*" if row["name"] == active.name else " "
        click.echo(f"{mark} {row['name']:<22} {row['title']}")
    click.echo(f"* in use here: {active.name}" + (f" v{active.version}" if active.version else ""))


@programme.command("show")
@click.argument("name", required=False)
@db_option
@json_option
def programme_show(name: str | None, db_url: str | None, as_json: bool) -> None:
    """A policy's rules in words, each with the seed paragraph it comes from (default: the
    one this database runs)."""
    from formtool.programme.policy import describe_timetable, load_policy, policy_snapshot

    policy = load_policy(name, _team_dir()) if name else _active_or_default(db_url)
    if as_json:
        _echo_json(policy_snapshot(policy))
        return
    for line in _rules_in_words(policy):
        click.echo(line)
    click.echo("Deadlines:")
    for label, rule, source in describe_timetable(policy):
        click.echo(f"  {label:<44} {rule}" + (f"  ({source})" if source else ""))


def _rules_in_words(policy: Any) -> list[str]:
    from formtool.programme.allocation import rules_in_words

    version = f" v{policy.version}" if policy.version else ""
    lines = [f"{policy.name}{version}: {policy.title}", f"  from {policy.source}", "Rules:"]
    lines += [f"  {rule}" for rule in rules_in_words(policy)]
    lines.append("Samples:")
    for sample in policy.samples:
        lines.append(f"  {sample.name}: {_sample_words(sample)}" + _cited(sample.source))
    lines += _activities_in_words(policy)
    moderation = policy.moderation
    senior = moderation.senior_moderator
    lines.append(
        f"Moderation: {moderation.rate:.0%} by {moderation.by}"
        + (f"; a challenged grade goes to {senior}" if senior else "")
        + _cited(moderation.source)
    )
    teams = "; ".join(f"{t}: {', '.join(a)}" for t, a in policy.concerns.teams.items())
    lines.append(
        "Urgent concerns to: "
        + (f"{teams}; any other team: " if teams else "")
        + ", ".join(policy.concerns.fallback)
        + _cited(policy.concerns.source)
    )
    return lines


def _activities_in_words(policy: Any) -> list[str]:
    """Each QA activity besides the samples (`formtool activity`), its rules in words."""
    from formtool.programme.activity import activity_words

    if not policy.activities:
        return []
    lines = ["Activities:"]
    for activity in policy.activities:
        lines.append(f"  {activity.id}: {activity.name}")
        lines += [f"    {line}" for line in activity_words(activity)]
    return lines


def _sample_words(sample: Any) -> str:
    import calendar

    size = (
        f"{sample.size} a month"
        if sample.size
        else f"{sample.per_auditor} per auditor"
        if sample.per_auditor
        else f"{sample.per_worker} per worker"
    )
    months = (
        " in " + ", ".join(calendar.month_name[m] for m in sorted(sample.months))
        if sample.months
        else ""
    )
    who = f", by {', '.join(sample.auditors)}" if sample.auditors else ""
    chosen = ", chosen by the auditor" if sample.chosen else ""
    return f"{sample.form}, {', '.join(sample.categories)}, {size}{months}{who}{chosen}"


def _cited(source: str) -> str:
    return f"  ({source})" if source else ""


@programme.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def programme_check(files: tuple[Path, ...], as_json: bool) -> None:
    """Check policy files: every problem with its file, line and key. Exit 1 if any."""
    from formtool.programme.policy import check_policy_file

    issues = [issue for path in files for issue in check_policy_file(path)]
    if as_json:
        _echo_json([i.as_dict() for i in issues])
    else:
        for issue in issues:
            click.echo(issue.message)
        if not issues:
            click.echo(f"{len(files)} policy file(s) checked: no problems.")
    if issues:
        raise SystemExit(1)


@programme.command("use")
@click.argument("name_or_file")
@db_option
@json_option
def programme_use(name_or_file: str, db_url: str | None, as_json: bool) -> None:
    """Run this policy from now on (recorded with a version; allocations say which they ran
    under). A name (see `programme list`) or a policy file."""
    from formtool.programme.rules import use_policy

    policy, new = use_policy(_store(db_url), name_or_file, _team_dir(), _user())
    if as_json:
        _echo_json({"name": policy.name, "version": policy.version, "new_version": new})
        return
    what = "a new version" if new else "unchanged since it was last used"
    click.echo(f"This database now runs programme '{policy.name}' v{policy.version} ({what}).")
    _warn_placeholders(policy)


def _warn_placeholders(policy: Any) -> None:
    from formtool.programme.concerns import placeholders

    names = placeholders(policy)
    if names:
        click.secho(
            f"Warning: its urgent-concern contacts include placeholders ({', '.join(names)}): "
            "no concern email goes to them. Put the council's addresses under concerns: in "
            "your own copy of the policy (programmes/ in --forms-dir) and use that.",
            err=True,
            fg="red",
        )


# --- calendar ---------------------------------------------------------------------------


@click.command("calendar")
@click.option(
    "--year",
    required=True,
    type=click.IntRange(1950, 2100),
    help="A calendar year (January-December), e.g. 2026.",
)
@click.option(
    "--programme",
    "name",
    help="Another policy's timetable [default: the one this database runs].",
)
@db_option
@json_option
def calendar_(year: int, name: str | None, db_url: str | None, as_json: bool) -> None:
    """The year's audit timetable under the programme, in working days (England and Wales
    bank holidays)."""
    from formtool.programme.deadlines import bank_holidays_in
    from formtool.programme.policy import load_policy, timetable

    policy = load_policy(name, _team_dir()) if name else _active_or_default(db_url)
    months: list[dict[str, Any]] = []
    for number in range(1, 13):
        dates = timetable(policy, year, number)
        months.append(
            {"month": f"{year}-{number:02d}"}
            | {k: v.isoformat() for k, v in dates.items()}
            | {"bank holidays": bank_holidays_in(year, number)}
        )
    if as_json:
        _echo_json({"programme": policy.name, "months": months})
        return
    click.echo(f"Programme {policy.name}: {policy.title}")
    for month in months:
        click.echo(month["month"])
        for key, value in month.items():
            if isinstance(value, str) and key != "month":
                click.echo(f"  {key:<42} {show_day(dt.date.fromisoformat(value))}")
        for holiday in month["bank holidays"]:
            click.echo(f"  bank holiday: {holiday}")


def _active_or_default(db_url: str | None) -> Any:
    """The database's policy; the default where there is no database yet (a calendar
    never creates one)."""
    from formtool.programme.policy import default_policy
    from formtool.programme.rules import active_policy
    from formtool.store import database_url, open_store

    url = database_url(db_url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return default_policy()
    return active_policy(open_store(db_url, "read"))


# --- concerns ---------------------------------------------------------------------------


@click.command("concerns")
@click.option("--open", "open_only", is_flag=True, help="Only concerns with no action recorded.")
@click.option("--send", is_flag=True, help="Email every concern not yet emailed, now.")
@click.option("--raise", "raise_id", metavar="AUDIT", help="Raise a concern on this audit.")
@click.option("--details", help="What the concern is (with --raise).")
@click.option("--action", "action_id", type=int, metavar="N", help="Record the action on N.")
@click.option("--taken", help="The action taken (with --action).")
@db_option
@json_option
def concerns_(
    open_only: bool,
    send: bool,
    raise_id: str | None,
    details: str | None,
    action_id: int | None,
    taken: str | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Immediate concerns for a child's safety or welfare: raised when a return answers Yes
    (or by an officer), emailed at once to the programme's contacts, open until an officer
    records the action taken."""
    from formtool.programme import concerns as c
    from formtool.programme.rules import active_policy

    if (details is not None) != (raise_id is not None) or (taken is not None) != (
        action_id is not None
    ):
        raise click.UsageError("Give --details with --raise AUDIT, and --taken with --action N.")
    db = _store(db_url, "write" if (send or raise_id or action_id) else "read")
    settings, policy = _settings(db_url), active_policy(db)
    if raise_id is not None:
        concern = c.raise_by_officer(db, policy, raise_id, details or "", _user())
        click.echo(f"Concern {concern.id} raised on {concern.audit_id}.")
        send = bool(settings.smtp)
    if action_id is not None:
        concern = c.record_action(db, action_id, taken or "", _user())
        click.echo(f"Concern {concern.id} on {concern.audit_id}: action recorded.")
    if send:
        result = c.send_emails(db, settings, policy, _user())
        click.echo(f"{len(result.sent)} concern email(s) sent.")
        for concern, error in result.failed:
            click.echo(f"  not sent: concern {concern.id} ({concern.audit_id}): {error}")
    if raise_id or action_id or send:
        return
    _refuse_unlogged(db, "the concerns (audit ids and what the auditor wrote)")
    listed = db.concerns(open_only)
    _record_cli(db, "viewed the concerns", "open" if open_only else "all")
    waiting = {x.id for x in c.unsent(db, listed)}
    if as_json:
        _echo_json([c.as_dict(x, x.id not in waiting, c.contacts(policy, x)) for x in listed])
        return
    if not listed:
        click.echo("No open concerns." if open_only else "No concerns recorded.")
    for x in listed:
        state = f"actioned {show_date(x.action_at.date())}" if x.action_at else "OPEN"
        mail = "not emailed yet" if x.id in waiting else "emailed"
        click.echo(
            f"{x.id:>4}  {x.audit_id:<28} {x.team:<20} raised {show_date(x.raised_at.date())}"
            f"  {state}; {mail}"
        )


# --- follow-up ----------------------------------------------------------------------------


@click.command("followup")
@click.argument("audit_id", metavar="AUDIT")
@click.option(
    "--review-held", metavar="YYYY-MM-DD", help="Record the review meeting held on this date."
)
@click.option(
    "--hos-meeting",
    metavar="YYYY-MM-DD",
    help="Record the Head of Service meeting (after a second such grade) held on this date.",
)
@click.option("--note", default="", help="A line for the audit's history (with a step).")
@db_option
@json_option
def followup_(
    audit_id: str,
    review_held: str | None,
    hos_meeting: str | None,
    note: str,
    db_url: str | None,
    as_json: bool,
) -> None:
    """The follow-up of an audit graded Inadequate: review meeting, re-audit and, after a
    second such grade, the Head of Service meeting, each with its date and whether it is late.

    --review-held or --hos-meeting records that the meeting was held on that date."""
    from formtool import clock
    from formtool.programme import followup as f

    steps = {
        "review_held": f.parse_day(review_held, "--review-held") if review_held else None,
        "hos_meeting": f.parse_day(hos_meeting, "--hos-meeting") if hos_meeting else None,
    }
    if note.strip() and not any(steps.values()):
        raise f.FollowUpError("--note goes with --review-held or --hos-meeting.")
    today = clock.today()
    if any(steps.values()):
        done = f.record_steps(_store(db_url), audit_id, **steps, note=note, user=_user())
        follow_up, lines = done.follow_up, done.lines(today)
    else:
        db = _store(db_url, "read")
        _refuse_unlogged(db, "an audit's follow-up")
        follow_up = f.audit_follow_up(db, audit_id)
        _record_cli(db, "viewed an audit's follow-up", audit_id=audit_id)
        lines = f.describe(follow_up, today)
    if as_json:
        _echo_json(follow_up.as_dict(today))
        return
    for line in lines:
        click.echo(line)
