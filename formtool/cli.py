"""The formtool command line. With the other cli_*.py modules (cli_common, cli_programme,
cli_activity, cli_retention, cli_subjects, cli_signin), the only modules that import click: each
command calls one library function and prints its result (or, with --json, the same as JSON)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from formtool import __version__, clock
from formtool.cli_common import (
    _OPENED,
    DEFAULT_OUT,
    MONTH,
    FormtoolGroup,
    InputError,
    _echo_json,
    _notice,
    _policy,
    _progress,
    _record_cli,
    _refuse_unlogged,
    _settings,
    _store,
    _user,
    db_option,
    json_option,
)
from formtool.errors import printable
from formtool.periods import show_date, show_time

if TYPE_CHECKING:  # the store is imported when a command opens it (`formtool --help` is fast)
    from formtool.programme.rejections import RejectionEntry
    from formtool.store import Store


@click.group(cls=FormtoolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="formtool")
@click.option(
    "--forms-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="FORMTOOL_FORMS",
    help="The QA team's own audit tools (YAML), beside the shipped ones [env FORMTOOL_FORMS].",
)
@click.option(
    "--today",
    metavar="YYYY-MM-DD",
    help="Act as if today were this date: which month it is, what is due and overdue "
    "[env FORMTOOL_TODAY; default: today in England].",
)
def cli(forms_dir: Path | None, today: str | None) -> None:
    """Case-file audit tools for children's services QA teams.

    Audit tools are defined as data (YAML); formtool generates fillable, pre-filled Word and
    Excel forms, reads the returns (and the emails carrying them) into a database, and makes
    the packs for the child's file and for the Performance Management Unit.
    """
    if forms_dir is not None:
        if not forms_dir.is_dir():
            raise InputError(
                f"[{forms_dir}] is not a folder. Point --forms-dir (or "
                "FORMTOOL_FORMS) at the folder holding your team's YAML tools."
            )
        from formtool.definitions import use_forms_dir

        use_forms_dir(forms_dir)  # for this process; nothing written to the environment
    from formtool import clock

    if today is not None:
        clock.set_today(clock.parse_day(today, "--today"))
    else:
        clock.fixed_today()  # a bad FORMTOOL_TODAY is a one-line error before any work


# --- forms ---------------------------------------------------------------------------


@cli.group()
def forms() -> None:
    """List, show and check audit tool definitions."""


@forms.command("list")
@json_option
def forms_list(as_json: bool) -> None:
    """Every audit tool: the shipped ones and the team's own (--forms-dir)."""
    from formtool.definitions import list_forms

    rows = list_forms()
    if as_json:
        _echo_json([r.as_dict() for r in rows])
        return
    click.echo(f"{'id':<22} {'ver':>3}  {'questions':>9}  {'source':<8} title")
    for r in rows:
        click.echo(f"{r.id:<22} {r.version:>3}  {r.questions:>9}  {r.source:<8} {r.title}")


@forms.command("show")
@click.argument("form_id")
@json_option
def forms_show(form_id: str, as_json: bool) -> None:
    """A tool's case-list columns (key and printed label), sections and every question with
    its stable answer key."""
    from formtool.definitions import describe_form

    described = describe_form(form_id)
    if as_json:
        _echo_json(described.as_dict())
        return
    click.echo(
        f"{described.title}  ({described.id} v{described.version}, subject: {described.subject})"
    )
    click.echo(f"Source: {described.source}\n")
    click.echo("Case-list columns (either the key or the label works as a heading):")
    click.echo(f"  {'key':<22} {'required':<9} label")
    for h in described.header:
        click.echo(
            f"  {h.column:<22} {'yes' if h.required else '':<9} {h.label}"
            + (f"   [added by formtool: {h.addition}]" if h.addition else "")
        )
    for section in described.sections:
        click.echo(f"\n{section.title}")
        for item in section.items:
            click.echo(f"  {item.key}  [{item.scale or item.kind}]")
            for line in textwrap.wrap(item.label, 92):
                click.echo(f"      {line}")
    if described.additions:  # "nothing invented, every addition marked"
        click.echo("\nWhat formtool adds to the paper tool, and why:")
        for what, why in described.additions:
            click.echo(f"  {what}")
            for line in textwrap.wrap(why, 90):
                click.echo(f"      {line}")


@forms.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Also refuse a definition that changed since it generated forms in this "
    "database without a new version.",
)
@json_option
def forms_check(files: tuple[Path, ...], db_url: str | None, as_json: bool) -> None:
    """Check definition files (default: every shipped and team tool): every problem with
    file, line and key. Exit 1 if any has a problem."""
    from formtool.definitions import check_form, form_files, load_form

    paths = list(files) or form_files()
    issues = [i for p in paths for i in check_form(p)]
    if db_url is not None and not issues:
        issues = _store(db_url, "read").version_issues([load_form(p) for p in paths])
    if as_json:
        _echo_json({"checked": [str(p) for p in paths], "issues": [i.as_dict() for i in issues]})
    else:
        for issue in issues:
            click.echo(issue.message)
        click.echo(f"{len(paths)} file(s) checked, {len(issues)} problem(s).")
    if issues:
        sys.exit(1)


# --- generate ------------------------------------------------------------------------


@cli.command()
@click.option(
    "--form",
    "form_id",
    help="Audit tool id (see `formtool forms list`); omit for a case list with a form column.",
)
@click.option(
    "--cases",
    "cases_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Case list, .csv (UTF-8) or .xlsx, one row per audit.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["docx", "xlsx", "both"]),
    default="docx",
    show_default=True,
    help="Which fillable files to make.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "forms",
    show_default=True,
    help="Folder for the forms.",
)
@db_option
@json_option
def generate(
    form_id: str | None,
    cases_path: Path,
    fmt: str,
    out_dir: Path,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Make one pre-filled, fillable audit form per case, plus manifest.csv, and record
    each audit in the database (state: allocated).

    The case list is checked whole first: if any row is unusable nothing is written.
    """
    from formtool.generate import generate as run

    produced = run(
        form_id,
        cases_path,
        out_dir,
        fmt,
        progress=_progress("Generating forms", as_json),
        db=lambda: _store(db_url),  # opened once the case list is checked
        settings=_settings(db_url),
        user=_user(),
    )
    rows = [p.manifest_row(out_dir) for p in produced]
    if as_json:
        _echo_json({"out": str(out_dir), "manifest": str(out_dir / "manifest.csv"), "forms": rows})
        return
    click.echo(f"{len(rows)} form(s) written to {out_dir} (manifest: {out_dir / 'manifest.csv'})")


# --- programme ---------------------------------------------------------------------------


@cli.command()
@click.option(
    "--population",
    "population_path",
    required=True,
    type=click.Path(path_type=Path),
    help="All cases that may be sampled (.csv/.xlsx).",
)
@click.option(
    "--auditors",
    "auditors_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Auditors: name, email, team[, break_months, audits_this_year].",
)
@click.option("--month", required=True, type=MONTH)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(path_type=Path),
    help="What to sample (YAML); default: seed 001's control sample.",
)
@click.option("--seed", default=0, show_default=True, help="Same seed, same allocation.")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "allocation.csv",
    show_default=True,
)
@click.option(
    "--replace",
    "mode",
    flag_value="replace",
    help="Draw again the month's audits not yet sent (sent ones stay).",
)
@click.option("--add", "mode", flag_value="add", help="Allocate more audits for the month.")
@click.option(
    "--chosen",
    "chosen_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV/XLSX naming the cases auditors chose for the programme's chosen slots "
    "(columns auditor, case_number[, sample]). On a month already allocated, names its "
    "open chosen slots and nothing else.",
)
@click.option(
    "--theme",
    "themes",
    multiple=True,
    metavar="ACTIVITY=TEXT",
    help="The theme of an activity drawn this month (a deep dive, a dip sample), printed on "
    "its forms; repeat for more.",
)
@click.option(
    "--staff",
    "staff_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Staff the programme's supervision audits and observations look at (.csv/.xlsx: "
    "staff_id, name, team, role).",
)
@click.option(
    "--programme",
    "programme_name",
    metavar="NAME",
    help="Stop unless the database runs this programme (it never switches for one run).",
)
@db_option
@json_option
def allocate(
    population_path: Path,
    auditors_path: Path,
    month: str,
    plan_path: Path | None,
    seed: int,
    out: Path,
    mode: str | None,
    chosen_path: Path | None,
    themes: tuple[str, ...],
    staff_path: Path | None,
    programme_name: str | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Sample the month's cases and share them among auditors under the programme this
    database runs (`formtool programme use`). Writes a case list for `formtool generate` and
    records the audits as allocated, with the programme and version. A month is allocated
    once: again only with --replace or --add, or with --chosen to name the cases chosen for
    the slots it left open. The programme's activities that run in the month (dip samples,
    observations, supervision audits, ...) are drawn with it (`formtool activity` starts the
    others)."""
    from formtool.programme.allocation import run_allocation

    db = _store(db_url)
    policy = _policy(db, db_url, programme_name)
    allocation = run_allocation(
        db,
        population_path,
        auditors_path,
        month,
        plan_path,
        seed,
        out,
        mode or "first",
        _user(),
        policy=policy,
        chosen_path=chosen_path,
        staff_path=staff_path,
        themes=_themes(themes),
    )
    if as_json:
        _echo_json(allocation.as_dict() | {"out": str(out)})
        return
    if allocation.replaced:
        click.echo(f"{allocation.replaced} audit(s) not yet sent were drawn again.")
    if allocation.mode == "name":  # --chosen on a month already allocated
        click.echo(
            f"{len(allocation.rows)} chosen case(s) named for {month}, due "
            f"{show_date(allocation.due)}" + (f": {out}" if allocation.rows else ".")
        )
        for row in allocation.rows:
            click.echo(
                f"  named: {printable(row['auditor'])} audits {printable(row['case_number'])} "
                f"for '{row['audit_type']}' ({row['audit_id']})"
            )
        for note in allocation.unallocated:
            click.echo(f"  already named: {note}")
        for choice in allocation.choices:
            click.echo(
                f"  still to choose: {printable(choice['auditor'])} names a case for "
                f"'{choice['sample']}' ({choice['form']})"
            )
        if not allocation.choices:
            click.echo(f"Every chosen slot of {month} is named.")
        return
    click.echo(
        f"{len(allocation.rows)} audit(s) allocated for {month}, due "
        f"{show_date(allocation.due)}: {out}"
    )
    for name, count in sorted(allocation.by_auditor().items()):
        click.echo(f"  {name:<36} {count:>3}")
    for run in allocation.runs:
        click.echo(
            f"  {run['name']}: {run['audits']} audit(s) due "
            f"{show_date(dt.date.fromisoformat(run['due']))} (activity run {run['run']})"
        )
    if allocation.on_break:
        click.echo(f"On break: {', '.join(allocation.on_break)}")
    for note in allocation.unallocated:
        click.echo(f"  not allocated: {note}")
    for warning in allocation.warnings:
        click.echo(f"  warning: {warning}")
    for choice in allocation.choices:
        click.echo(
            f"  to choose: {printable(choice['auditor'])} names a case for "
            f"'{choice['sample']}' ({choice['form']})"
        )


def _themes(given: tuple[str, ...]) -> dict[str, str]:
    """`--theme ACTIVITY=TEXT` options as a mapping, or the one-line reason they are not."""
    themes = {}
    for text in given:
        activity, sep, theme = text.partition("=")
        if not sep or not activity.strip() or not theme.strip():
            raise InputError(
                f"[--theme '{printable(text, 60)}'] is not ACTIVITY=TEXT, e.g. "
                "--theme deep_dive_social_care='Neglect'."
            )
        themes[activity.strip()] = theme.strip()
    return themes


Option = Callable[[Callable[..., Any]], Callable[..., Any]]


def _sending() -> list[Option]:
    """How an email goes (`send`, `chase`, `check --amend`): .eml drafts, or over SMTP."""
    return [
        click.option(
            "--out",
            "out_dir",
            type=click.Path(path_type=Path),
            default=DEFAULT_OUT / "mail",
            show_default=True,
            help="Folder for .eml files (open in Outlook as drafts).",
        ),
        click.option("--smtp", "smtp", metavar="HOST:PORT", help="Send over SMTP instead."),
        click.option(
            "--from",
            "sender",
            default="qa-team@example.invalid",
            show_default=True,
            help="Sender address.",
        ),
        click.option(
            "--starttls",
            is_flag=True,
            help="Refuse to send unless the connection is encrypted (STARTTLS is used "
            "whenever the server offers it; --user always requires it).",
        ),
        click.option("--user", help="SMTP user; password from $FORMTOOL_SMTP_PASSWORD."),
    ]


def _apply(options: list[Option]) -> Option:
    """One decorator applying these options in order."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _mail_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Option] = [
        click.option("--month", type=MONTH, help="Only audits due in this month."),
        *_sending(),
        click.option("--dry-run", is_flag=True, help="Say what would be sent; change nothing."),
        click.option(
            "--resend-unknown",
            is_flag=True,
            help="Also send (or write) again the messages whose fate is unknown (formtool "
            "stopped while sending them) and .eml drafts not marked sent. Check the Sent "
            "Items first: they may have gone; name the ones that have not with --audit.",
        ),
        click.option(
            "--audit",
            "audit_ids",
            metavar="ID",
            multiple=True,
            help="Only the emails carrying this audit (repeat for more; one audit names its "
            "whole email). Each run lists the unknown emails with their audits.",
        ),
        db_option,
        json_option,
    ]
    return _apply(options)(func)


def _mail(
    chase: bool,
    *,
    month: str | None,
    out_dir: Path,
    smtp: str | None,
    sender: str,
    starttls: bool,
    user: str | None,
    dry_run: bool,
    resend_unknown: bool,
    audit_ids: tuple[str, ...],
    db_url: str | None,
    as_json: bool,
    forms_dir: Path | None = None,
    form_format: str | None = None,
) -> None:
    """`send` or `chase`, with the options `_mail_options` gives both (by name)."""
    from formtool.programme.mail import RESEND, deliver

    db = _store(db_url)
    _policy(db, db_url)
    result = deliver(
        db,
        sender,
        forms_dir or DEFAULT_OUT / "forms",
        month,
        out_dir,
        chase,
        smtp,
        starttls,
        user,
        dry_run,
        settings=_settings(db_url),
        user=_user(),
        again=RESEND if resend_unknown else (),
        audit_ids=audit_ids or None,
        form_format=form_format,
    )
    if result.notice:  # mail went out unencrypted: said on every send, JSON or not
        click.echo(result.notice, err=True)
    if as_json:
        _echo_json(result.as_dict())
    else:
        _print_mail(result, smtp, out_dir)
    if result.needs_attention:
        sys.exit(1)


def _print_mail(result, smtp, out_dir) -> None:
    """The messages sent now, then what the outbox already held (only what there is)."""
    from formtool.programme.outbox import describe_message, describe_superseded, unknown_hint

    verb = "would go" if result.dry_run else ("sent via " + smtp if smtp else "written")
    for m in result.messages:
        click.echo(
            f"  {m.address:<40} {len(m.audit_ids):>3} audit(s), "
            f"{len(m.attachments)} attachment(s)"
            + (" [to prepare]" if m.stage == "prepare" else "")
        )
    click.echo(
        f"{len(result.messages)} message(s) {verb}"
        + (f" to {out_dir}" if result.written else "")
        + "."
    )
    months = {m.month for m in result.drafted + result.unknown}
    month = months.pop() if len(months) == 1 else "MONTH"
    if result.already_sent:
        click.echo(f"{len(result.already_sent)} already sent (skipped).")
    if result.in_progress:
        click.echo(f"{len(result.in_progress)} being sent by another formtool now (skipped).")
    if result.drafted:
        click.echo(
            f"{len(result.drafted)} written as .eml drafts before, not yet marked sent "
            f"(skipped): once they have gone, run `formtool send --mark-sent {month}`."
        )
    if result.failed:
        click.echo(f"{len(result.failed)} failed; the next send tries them again:")
        for m in result.failed:
            click.echo(f"  {describe_message(m)}")
    if result.unknown:
        click.echo(f"{len(result.unknown)} unknown: check the Sent Items:")
        for m in result.unknown:
            click.echo(f"  {describe_message(m)}")
        click.echo(f"  {unknown_hint(month)}")
    if result.superseded:
        click.echo(
            f"{len(result.superseded)} of this run's message(s) took so long that another "
            "formtool sent them again meanwhile:"
        )
        for m in result.superseded:
            click.echo(f"  {describe_superseded(m)}")
    if result.not_sent:
        click.echo(
            f"{len(result.not_sent)} overdue audit(s) were never sent, so not chased "
            f"(send them first: `formtool send`): {', '.join(result.not_sent)}."
        )


@cli.command()
@_mail_options
@click.option(
    "--forms",
    "forms_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "forms",
    show_default=True,
    help="Where `formtool generate` wrote the forms (searched for manifest.csv).",
)
@click.option(
    "--format",
    "form_format",
    type=click.Choice(["auditors", "docx", "xlsx", "web"]),
    default="auditors",
    show_default=True,
    metavar="FORMAT",
    help="How the forms go: auditors (each auditor's format from the auditors list), or "
    "docx, xlsx or web (a private link to fill the form in a browser; needs web_address in "
    "formtool.toml) for every audit sent now.",
)
@click.option(
    "--mark-sent",
    "mark_month",
    type=MONTH,
    help="Sends nothing: record the month's .eml drafts as sent, once they have gone from "
    "Outlook; their audits become sent. With --audit, only the drafts and unknown emails "
    "carrying those audits: an email of unknown fate is marked sent only when named.",
)
def send(mark_month: str | None, **options: Any) -> None:
    """Email each auditor their allocated, pre-filled forms, once each. Over SMTP the audits
    become sent at once; written as .eml drafts, when you mark the drafts sent (--mark-sent).

    Every message is claimed in the database before it goes, so a second send (or two at
    once) sends nothing twice: the distribution and picked-for-audit emails go once per
    audit. A message the server refused is tried again by the next send; one cut off
    mid-send is "unknown": check the Sent Items, then for each one --mark-sent MONTH --audit ID
    or --resend-unknown --audit ID. Exit 1 if any message failed or is unknown."""
    if mark_month is not None:
        _mark_sent(mark_month, **options)
        return
    _mail(False, **options)


def _mark_sent(
    drafts_month: str,
    *,
    smtp: str | None,
    dry_run: bool,
    resend_unknown: bool,
    audit_ids: tuple[str, ...],
    db_url: str | None,
    as_json: bool,
    **_sending: Any,  # --month, --from, --out...: how and what to send; nothing is sent
) -> None:
    from formtool.programme.outbox import describe_message, mark_sent, unknown_hint

    if smtp or dry_run or resend_unknown:
        raise click.UsageError(
            "--mark-sent sends nothing: leave out --smtp, --dry-run and --resend-unknown."
        )
    marked = mark_sent(_store(db_url), drafts_month, user=_user(), audit_ids=audit_ids)
    if as_json:
        _echo_json(marked.as_dict())
        return
    for m in marked.messages:
        click.echo(f"  {m.recipient:<40} {len(m.audit_ids):>3} audit(s)")
    click.echo(
        f"{len(marked.messages)} message(s) for {drafts_month} marked sent "
        f"({marked.audits} audit(s))."
    )
    if marked.unknown:
        click.echo(f"{len(marked.unknown)} unknown, left as they are: check the Sent Items:")
        for m in marked.unknown:
            click.echo(f"  {describe_message(m)}")
        click.echo(f"  {unknown_hint(drafts_month, same_command=False)}")


@cli.command()
@_mail_options
def chase(**options: Any) -> None:
    """Email each auditor with overdue audits a firmer reminder; records who was chased.

    A chase round is the day: each overdue audit is chased at most once a day, however
    often this runs. Only audits that went out are chased (drafts not yet marked sent count
    from the day they were written); overdue audits never sent are listed instead. Exit 1 if
    any message failed or is unknown."""
    _mail(True, **options)


@cli.command()
@click.argument("audit_id")
@_apply([*_sending(), db_option, json_option])
def relink(
    audit_id: str,
    out_dir: Path,
    smtp: str | None,
    sender: str,
    starttls: bool,
    user: str | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Email a new private link to an audit's web form, when its auditor (or preparer) asks:
    the link expired, was locked after wrong codes, or its email was lost.

    The link is for the stage the audit still owes, to the person it is with. Over SMTP the
    earlier links stop once it has gone; as an .eml draft they stay usable beside it."""
    from formtool.programme.relink import email_new_link

    db = _store(db_url)
    done = email_new_link(
        db,
        audit_id,
        sender,
        _settings(db_url),
        smtp=smtp,
        starttls=starttls,
        smtp_user=user,
        out_dir=out_dir,
        user=_user(),
    )
    if done.notice:
        click.echo(done.notice, err=True)
    if as_json:
        _echo_json(done.as_dict())
        return
    how = f"sent via {smtp}" if smtp else f"written to {done.written}"
    stage = "preparer's" if done.stage == "prepare" else "auditor's"
    click.echo(
        f"{audit_id}: a new link to the {stage} form, working until "
        f"{show_date(done.until)}, for {done.to}: {how}."
    )


# --- returns ---------------------------------------------------------------------------


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@json_option
def import_(paths: tuple[Path, ...], db_url: str | None, as_json: bool) -> None:
    """Read returned forms into the database: .docx/.xlsx files, emails saved as .eml or
    Outlook .msg (each attached form is a return), or folders of them (searched recursively).
    Every other file found is listed with the reason it was not read. A return emailed by
    someone other than the auditor (or an `allowed_senders` address in formtool.toml) is
    held for an officer (`formtool held`); one for an audit already accepted is kept as
    history until the audit is reopened (`formtool reopen`). Exit 0 if every return was
    accepted, 1 if any was rejected, 2 if the database failed part-way (the returns stored
    before it are listed, and importing again is safe)."""
    from formtool.read.batch import ImportStopped, import_paths

    db, settings = _store(db_url), _settings(db_url)
    try:
        outcomes = import_paths(
            db,
            paths,
            progress=_progress("Importing returns", as_json),
            user=_user(),
            senders=settings.allowed_senders,
        )
    except ImportStopped as stopped:  # each return is its own transaction: say which went in
        if as_json:
            _echo_json([o.as_dict() for o in stopped.outcomes])
        else:
            _print_outcomes(stopped.outcomes)
        raise InputError(str(stopped)) from None
    if as_json:
        _echo_json([o.as_dict() for o in outcomes])
    else:
        _print_outcomes(outcomes)
    _email_concerns(db, settings, as_json)
    if any(o.status == "rejected" for o in outcomes):
        sys.exit(1)


def _email_concerns(db: Store, settings: Any, quiet: bool) -> None:
    """Immediate concerns go at once when an SMTP server is set; a failure is said (and the
    loud line repeats it on every command), never a reason to undo the import."""
    from formtool.programme.concerns import send_emails, unsent
    from formtool.programme.mail import MailError
    from formtool.programme.rules import active_policy

    if not settings.smtp or not unsent(db):
        return
    try:
        result = send_emails(db, settings, active_policy(db), _user())
    except MailError as exc:
        click.echo(f"Concern email not sent: {exc}", err=True)
        return
    if not quiet:
        for concern, to in result.sent:
            click.echo(f"Concern {concern.id} ({concern.audit_id}) emailed to {', '.join(to)}.")
    for concern, error in result.failed:
        click.echo(f"Concern {concern.id} ({concern.audit_id}) not emailed: {error}", err=True)


def _print_outcomes(outcomes) -> None:
    from formtool.read.batch import counts, shown_name

    names = [shown_name(o) for o in outcomes]
    width = min(60, max([len(n) for n in names] + [4]))
    click.echo(f"{'file':<{width}}  {'audit id':<28} {'status':<10} issues")
    for name, o in zip(names, outcomes, strict=True):
        errors = sum(not i.is_warning for i in o.issues)
        warnings = len(o.issues) - errors
        summary = ", ".join(
            p
            for p in (
                f"{errors} error(s)" if errors else "",
                f"{warnings} warning(s)" if warnings else "",
            )
            if p
        )
        shown = name if len(name) <= width else "…" + name[-(width - 1) :]
        click.echo(f"{shown:<{width}}  {o.audit_id or '-':<28} {o.status:<10} {summary or '-'}")
        for issue in o.issues:
            click.echo(f"    {'warning' if issue.is_warning else 'ERROR  '} {issue.message}")
    tally = counts(outcomes)
    click.echo(
        ", ".join(
            f"{n} {s}"
            for s, n in tally.items()
            if n or s in ("imported", "updated", "unchanged", "rejected")
        )
        + f" of {len(outcomes)} return(s)."
    )


@cli.command("check")
@click.argument("audit_id")
@click.option("--accept", is_flag=True, help="The return is complete and correct.")
@click.option(
    "--amend",
    "reason",
    metavar="REASON",
    help="Send it back for amendment (due in 3 working days) and email whoever made the "
    "return the reason, the date and their return to amend.",
)
@click.option("--no-email", is_flag=True, help="With --amend: record the request, email nobody.")
@click.option(
    "--email-again",
    is_flag=True,
    help="Email the audit's current amendment request (after its email failed); it goes "
    "once per request, so nothing is sent twice.",
)
@_apply(_sending())
@db_option
@json_option
def check(
    audit_id: str,
    accept: bool,
    reason: str | None,
    no_email: bool,
    email_again: bool,
    db_url: str | None,
    as_json: bool,
    **sending: Any,
) -> None:
    """Check a returned audit: --accept it, or --amend "what to fix". An amendment request
    emails whoever made the return (the auditor, or a prepared file's preparer) the reason,
    the date it is due back and their return to amend: as an .eml draft in --out, or over
    --smtp. If the email fails the request stays recorded: send it with --email-again."""
    from formtool.programme.workflow import check_audit

    if sum((accept, reason is not None, email_again)) != 1:
        raise click.UsageError("Give exactly one of --accept, --amend REASON or --email-again.")
    if no_email and reason is None:
        raise click.UsageError("--no-email goes with --amend REASON.")
    if accept and (sending["smtp"] or sending["starttls"] or sending["user"]):
        raise click.UsageError("--smtp, --starttls and --user go with --amend or --email-again.")
    db = _store(db_url)
    if email_again:
        _check_email(db, db_url, audit_id, as_json, None, **sending)
        return
    result = check_audit(db, audit_id, reason, user=_user())
    if reason is not None and not no_email:
        _check_email(db, db_url, audit_id, as_json, result.as_dict(), **sending)
        return
    if as_json:
        _echo_json(result.as_dict() | ({"email": None} if reason is not None else {}))
    elif result.amend_by:
        amend_by = dt.date.fromisoformat(result.amend_by)
        click.echo(f"{audit_id}: returned for amendment, due back by {show_date(amend_by)}.")
    elif result.state == "amendment requested":
        click.echo(f"{audit_id}: returned for amendment (the programme sets no deadline).")
    else:
        click.echo(f"{audit_id}: checked.")


def _check_email(
    db: Store,
    db_url: str | None,
    audit_id: str,
    as_json: bool,
    step: dict[str, Any] | None,
    *,
    out_dir: Path,
    smtp: str | None,
    sender: str,
    starttls: bool,
    user: str | None,
) -> None:
    """Email the audit's amendment request and say what became of it (after the step, when
    one was taken). A failure leaves the request recorded and says how to send it again."""
    from formtool.programme.amendment import email_amendment
    from formtool.programme.mail import MailError

    if step is not None and not as_json:
        by = step["amend_by"]
        click.echo(
            f"{audit_id}: returned for amendment, due back by "
            f"{show_date(dt.date.fromisoformat(by))}."
            if by
            else f"{audit_id}: returned for amendment (the programme sets no deadline)."
        )
    again = f"`formtool check {audit_id} --email-again` (with the same --smtp or --out)"
    recorded = "The request is recorded, but" if step is not None else "Nothing was sent:"
    try:
        mail = email_amendment(
            db, audit_id, sender, smtp, starttls, user, out_dir, _settings(db_url), _user()
        )
    except MailError as exc:
        if as_json:
            _echo_json((step or {}) | {"email": {"audit_id": audit_id, "error": str(exc)}})
        said = f"{recorded} no email went: {str(exc).rstrip('.')}. Send it with {again}."
        click.echo(said, err=True)
        return
    if mail.notice:
        click.echo(mail.notice, err=True)
    if as_json:
        _echo_json((step or {}) | {"email": mail.as_dict()})
    elif mail.outcome == "drafted":
        click.echo(
            f"Amendment email to {mail.to} written: {mail.written}. Send it from Outlook; once "
            f"it has gone, `formtool send --mark-sent {db.require_audit(audit_id).month} "
            f"--audit {audit_id}`."
        )
    elif mail.outcome == "sent":
        click.echo(f"Amendment email sent to {mail.to} via {mail.sent_via}.")
    else:
        click.echo(mail.said(), err=mail.outcome in ("failed", "unknown"))
    if mail.outcome == "failed":
        click.echo(f"Send it again with {again}.", err=True)


@cli.command("exempt")
@click.argument("audit_id")
@click.option("--reason", required=True, help="Why it cannot be done (kept with the audit).")
@click.option("--agreed-by", "agreed_by", required=True, help="Who agreed the exemption.")
@db_option
@json_option
def exempt(audit_id: str, reason: str, agreed_by: str, db_url: str | None, as_json: bool) -> None:
    """Exempt an allocated audit (exceptional circumstances, agreed by the person the
    programme names): it is not done, counts against nobody's quota, and is not chased."""
    from formtool.programme.rules import active_policy
    from formtool.programme.workflow import exempt_audit

    db = _store(db_url)
    who = active_policy(db).word("exemption")
    result = exempt_audit(db, audit_id, reason, agreed_by, _user(), who)
    if as_json:
        _echo_json(result.as_dict())
        return
    click.echo(f"{audit_id}: exempted (was {result.previous_state}), agreed by {agreed_by}.")


@cli.command("reassign")
@click.argument("audit_id")
@click.option("--to", "auditor", required=True, help="The new auditor's name.")
@click.option("--email", required=True, help="The new auditor's email address.")
@click.option(
    "--team",
    required=True,
    help="The new auditor's team (checked against the programme's team rule).",
)
@click.option("--reason", required=True, help="Why it is reassigned (kept with the audit).")
@click.option(
    "--format",
    "form_format",
    type=click.Choice(["docx", "xlsx", "web"]),
    help="The new copy's format: docx, xlsx or web (a link, made when it is sent; a Word "
    "copy is still written) [default: the audit's].",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_OUT / "forms",
    show_default=True,
    help="Where the new copy of the form goes (where `formtool send` looks).",
)
@db_option
@json_option
def reassign(
    audit_id: str,
    auditor: str,
    email: str,
    team: str,
    reason: str,
    form_format: str | None,
    out_dir: Path,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Give an allocated audit to another auditor: a new copy of its form (same version,
    same due date) for `formtool send`; the old copy, if it comes back, is held for an
    officer (`formtool held`); quotas follow the audit."""
    from formtool.programme.workflow import reassign_audit

    result = reassign_audit(
        _store(db_url),
        audit_id,
        auditor,
        email,
        reason,
        out_dir,
        _user(),
        _settings(db_url),
        form_format or "",
        team,
    )
    if as_json:
        _echo_json(result.as_dict())
        return
    click.echo(
        f"{audit_id}: reassigned to {result.auditor} (copy {result.copy}); send the new copy "
        f"with `formtool send`: {', '.join(result.files)}"
    )


@cli.command("challenge")
@click.argument("audit_id")
@click.option("--by", "by", help="Who challenges the grade (the practitioner or manager).")
@click.option("--reason", required=True, help="Why (the challenge, or the decision).")
@click.option("--to", "to", default="", help="The senior moderator, if the programme names none.")
@click.option("--decide", "grade", metavar="GRADE", help="The senior moderator's decision.")
@click.option("--decided-by", "decided_by", default="", help="The senior moderator deciding.")
@db_option
@json_option
def challenge(
    audit_id: str,
    by: str | None,
    reason: str,
    to: str,
    grade: str | None,
    decided_by: str,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Challenge an audit's grade (it goes to an independent senior moderator: the
    programme's, or --to USER), or, with --decide GRADE --decided-by USER, record the senior
    moderator's decision: the moderated grade from now on, and it stands."""
    from formtool.programme.challenge import challenge_grade, decide_challenge
    from formtool.programme.rules import active_policy

    db = _store(db_url)
    if grade is not None:
        step = decide_challenge(db, audit_id, grade, decided_by, reason, _user())
    else:
        step = challenge_grade(db, active_policy(db), audit_id, by or "", reason, to, _user())
    if as_json:
        _echo_json(step.as_dict())
    elif step.status == "decided":
        click.echo(f"{audit_id}: {step.senior_moderator} decided {step.grade}; it stands.")
    else:
        click.echo(f"{audit_id}: grade challenged; for {step.senior_moderator} to decide.")


@cli.command("reopen")
@click.argument("audit_id")
@click.option("--reason", required=True, help="Why the audit is reopened (kept with it).")
@db_option
@json_option
def reopen(audit_id: str, reason: str, db_url: str | None, as_json: bool) -> None:
    """Reopen an accepted, moderated, signed-off or closed audit: it goes back to
    `returned`; its moderation and sign-offs are kept, marked superseded; the newest return
    that arrived since it was accepted becomes current."""
    from formtool.programme.workflow import reopen_audit

    result = reopen_audit(_store(db_url), audit_id, reason, user=_user())
    if as_json:
        _echo_json(result.as_dict())
        return
    click.echo(f"{audit_id}: reopened (was {result.previous_state}); now {result.state}.")
    if result.promoted:
        click.echo(f"  The return {result.promoted} that arrived since is now current.")


@cli.command("held")
@click.option("--accept", "accept_id", type=int, metavar="RETURN", help="Accept this return.")
@click.option("--refuse", "refuse_id", type=int, metavar="RETURN", help="Refuse this return.")
@click.option("--reason", help="Why it is refused (with --refuse).")
@db_option
@json_option
def held(
    accept_id: int | None,
    refuse_id: int | None,
    reason: str | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Returns held for an officer because they came from someone other than the auditor:
    list them, --accept RETURN (it takes its place as if just imported) or --refuse RETURN
    --reason TEXT (kept as history, marked refused)."""
    from formtool.programme.workflow import accept_held, refuse_held

    if accept_id is not None and refuse_id is not None:
        raise click.UsageError("Give one of --accept or --refuse.")
    if (refuse_id is None) != (reason is None):
        raise click.UsageError("--refuse RETURN needs --reason TEXT (and --reason needs --refuse).")
    db = _store(db_url)
    if accept_id is not None:
        outcome = accept_held(db, accept_id, _user())
        _echo_json(outcome) if as_json else click.echo(
            f"Return {accept_id} of audit {outcome['audit_id']}: accepted ({outcome['status']})."
        )
        return
    if refuse_id is not None:
        audit_id = refuse_held(db, refuse_id, reason or "", _user())
        _echo_json({"return_id": refuse_id, "audit_id": audit_id, "status": "refused"}) if (
            as_json
        ) else click.echo(f"Return {refuse_id} of audit {audit_id}: refused.")
        return
    rows = db.held_returns()
    _record_cli(db, "viewed the held returns", f"{len(rows)} held")
    if as_json:
        _echo_json([_held_dict(r) for r in rows])
        return
    if not rows:
        click.echo("No returns are held.")
        return
    click.echo(f"{'return':>6}  {'audit id':<26} {'from':<34} {'auditor':<34} file")
    for r in rows:
        click.echo(
            f"{r.return_id:>6}  {r.audit_id:<26} {printable(r.sender, 34):<34} "
            f"{printable(r.auditor_email, 34):<34} {printable(r.file_name, 60)}"
            + _HELD_WHY.get(r.held, "")
        )
    click.echo(f"{len(rows)} held. Accept with --accept RETURN, refuse with --refuse RETURN.")


#: Why a held return waits, beside it in `formtool held` (a stranger's is the plain case).
_HELD_WHY = {
    "reassigned": "  (a copy from before the audit was reassigned)",
    "other channel": "  (a final return came first by the other channel: web form or file)",
}


def _held_dict(row: Any) -> dict[str, object]:
    return {
        "return_id": row.return_id,
        "audit_id": row.audit_id,
        "file": row.file_name,
        "sender": row.sender,
        "auditor_email": row.auditor_email,
        "imported_at": row.imported_at.isoformat(),
        "why": row.held,
    }


@cli.command("rejected")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Also the files a later return superseded and the unmatched files dealt with.",
)
@click.option(
    "--dismiss",
    "dismiss_id",
    type=int,
    metavar="ID",
    help="Mark the unmatched file ID dealt with (with --note).",
)
@click.option("--note", help="What was done with the file (with --dismiss).")
@db_option
@json_option
def rejected_(
    every: bool, dismiss_id: int | None, note: str | None, db_url: str | None, as_json: bool
) -> None:
    """Returned files an import rejected: those against an audit (open until a good return
    for it is imported) and unmatched files, which name no audit in the database (open until
    an officer marks them dealt with: --dismiss ID --note TEXT). The same file rejected again
    is counted, not listed twice."""
    from formtool.programme.rejections import deal_with, rejected

    if (dismiss_id is None) != (note is None):
        raise click.UsageError("--dismiss ID needs --note TEXT (and --note needs --dismiss).")
    if dismiss_id is not None:
        entry = deal_with(_store(db_url), dismiss_id, note or "", _user())
        if as_json:
            _echo_json(entry.as_dict())
        else:
            click.echo(
                f"Unmatched file {entry.id} ({printable(entry.file_name, 60)}): marked dealt with."
            )
        return
    db = _store(db_url, "read")
    _refuse_unlogged(db, "the rejected files (audit ids and who sent them)")
    found = rejected(db, every)
    _record_cli(
        db,
        "viewed the rejected files",
        f"{len(found.against_audits)} against audits, {len(found.unmatched)} unmatched"
        + (" (all)" if every else " (open)"),
    )
    if as_json:
        _echo_json(found.as_dict())
        return
    if not found.against_audits and not found.unmatched:
        click.echo("No file has been rejected." if every else "No rejected file is open.")
        return
    if found.against_audits:
        click.echo("Against an audit (open until a good return for it is imported):")
        for e in found.against_audits:
            later = "" if e.open else f"\n{'':7}a later return superseded it"
            click.echo(f"{e.id:>5}  {e.audit_id:<26} {_rejected_line(e)}{later}")
    if found.unmatched:
        click.echo("Unmatched files (name no audit here; mark dealt with: --dismiss ID --note):")
        for e in found.unmatched:
            claims = f"claims {printable(e.claimed_id, 26)}" if e.claimed_id else "no audit id"
            click.echo(f"{e.id:>5}  {claims:<26} {_rejected_line(e)}{_rejected_dealt(e)}")
    opened = sum(e.open for e in found.against_audits + found.unmatched)
    click.echo(
        f"{opened} open: {sum(e.open for e in found.against_audits)} against an audit, "
        f"{sum(e.open for e in found.unmatched)} unmatched."
    )


def _iso_day(iso: str) -> str:
    return show_date(dt.date.fromisoformat(iso[:10])) if iso else "-"


def _rejected_line(e: RejectionEntry) -> str:
    """When, which file, from whom (and how often); then, indented, why."""
    return (
        f"{_iso_day(e.received_on)}  {printable(e.file_name, 50)}"
        + (f"  from {printable(e.sender, 40)}" if e.sender else "")
        + (f"  ({e.times} times)" if e.times > 1 else "")
        + f"\n{'':7}{e.code}: {e.reason}"
    )


def _rejected_dealt(e: RejectionEntry) -> str:
    if e.dealt_at:
        return f"\n{'':7}dealt with {_iso_day(e.dealt_at)} by {e.dealt_by}: {e.dealt_note}"
    if e.stored_since:
        return f"\n{'':7}stored as a return since"
    return ""


@cli.command("select")
@click.option("--month", required=True, type=MONTH)
@click.option(
    "--per-team",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Prepared files to pick for audit in each team.",
)
@click.option("--seed", default=0, show_default=True, help="Same seed, same picks.")
@db_option
@json_option
def select(month: str, per_team: int, seed: int, db_url: str | None, as_json: bool) -> None:
    """Two-stage tools (seed 000): pick prepared files for the service manager to audit
    (at least one per team); the rest are filed as prepared, not audited. Then `formtool
    send` sends the picked ones on to their auditors."""
    from formtool.programme.workflow import select_prepared

    result = select_prepared(_store(db_url), month, per_team, seed, _user())
    if as_json:
        _echo_json(result.as_dict())
        return
    for audit_id in result.selected:
        click.echo(f"  picked for audit: {audit_id}")
    click.echo(
        f"{len(result.selected)} prepared file(s) picked for audit, "
        f"{len(result.filed)} filed as prepared, not audited."
    )


@cli.command("signoff")
@click.argument("audit_id")
@click.option(
    "--action",
    "action",
    metavar="KEY",
    help="Record the manager's sign-off of this one action row (TABLE.ROW, as the error "
    "listing the actions waiting names them) instead of signing off the audit's actions.",
)
@click.option("--by", "signed_by", default="", help="With --action: who signed it off.")
@click.option(
    "--on",
    "signed_on",
    type=click.DateTime(["%Y-%m-%d"]),
    help="With --action: the day it was signed off [default: today].",
)
@db_option
@json_option
def signoff(
    audit_id: str,
    action: str | None,
    signed_by: str,
    signed_on: dt.datetime | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Record that an audit's actions are signed off by the manager (every action the form
    asks a manager to sign off carries a sign-off in the current return), or, with --action
    and --by, one action's sign-off given outside the return."""
    from formtool.programme.workflow import sign_off_action, sign_off_actions

    db = _store(db_url)
    if action is None:
        if signed_by or signed_on:
            raise click.UsageError("--by and --on go with --action KEY.")
        with _naming_keys():
            result = sign_off_actions(db, audit_id, user=_user())
        _echo_json(result.as_dict()) if as_json else click.echo(f"{audit_id}: actions signed off.")
        return
    day = signed_on.date() if signed_on else clock.today()
    named = sign_off_action(db, audit_id, action, signed_by, day, user=_user())
    if as_json:
        _echo_json({"audit_id": audit_id, "action": action, "signed_by": signed_by.strip()})
    else:
        click.echo(f"{audit_id}: {named} signed off by {signed_by.strip()} on {show_date(day)}.")


@cli.command("close")
@click.argument("audit_id")
@db_option
@json_option
def close(audit_id: str, db_url: str | None, as_json: bool) -> None:
    """Close a checked or moderated audit whose actions are signed off."""
    from formtool.programme.workflow import close_audit

    with _naming_keys():
        result = close_audit(_store(db_url), audit_id, user=_user())
    _echo_json(result.as_dict()) if as_json else click.echo(f"{audit_id}: closed.")


@contextmanager
def _naming_keys() -> Iterator[None]:
    """Actions without a sign-off, named with the keys `signoff --action` takes."""
    from formtool.programme.workflow import UnsignedActions, WorkflowError

    try:
        yield
    except UnsignedActions as exc:
        keys = ", ".join(exc.rows[:5])
        raise WorkflowError(
            f"{exc} From here: `formtool signoff {exc.audit_id} --action KEY --by NAME`, "
            f"KEY one of {keys}."
        ) from None


@cli.command()
@click.option("--month", type=MONTH, help="Only audits due in this month.")
@db_option
@json_option
def status(month: str | None, db_url: str | None, as_json: bool) -> None:
    """Audits by state; returned, outstanding and overdue per team and auditor; and the
    audits still outstanding, most overdue first."""
    from formtool.programme.status import status as run

    db = _store(db_url, "read")
    _policy(db, db_url)
    report = run(db, month)
    if db.read_only:  # the access log cannot record who saw names: counts only (fail closed)
        report = replace(report, auditors={}, outstanding=[])
        _notice(
            "The database is read-only here, so the access log cannot record who saw case "
            "numbers and names: showing counts only. Run it where the database may be written "
            "for the auditors and the outstanding audits."
        )
    else:
        _record_cli(db, "viewed the status", month or "every month")
    if as_json:
        _echo_json(report.as_dict())
        return
    click.echo(f"{report.audits} audit(s) ({report.month}), as of {show_date(report.today)}")
    for state, count in report.by_state.items():
        click.echo(f"  {state:<22} {count:>4}")
    if report.held:
        click.echo(f"  {report.held} return(s) held for an officer: see `formtool held`.")
    if report.unkeyed:
        click.echo(
            f"  {report.unkeyed} open audit(s) carry the unkeyed checksum of forms made before "
            "this release; they are read as before until closed."
        )
    if report.concerns:
        click.secho(
            f"  {report.concerns} immediate concern(s) for a child's safety with no action "
            "recorded: see `formtool concerns --open`.",
            fg="red",
            bold=True,
        )
    for choice in report.choices:
        click.echo(
            f"  {printable(choice['auditor'])} has not named the case chosen for "
            f"'{choice['sample']}' ({choice['month']}): `formtool allocate --chosen FILE`."
        )
    for title, groups in (("Team", report.teams), ("Auditor", report.auditors)):
        if not groups:
            continue
        click.echo(
            f"\n{title:<36} {'audits':>6} {'returned':>9} {'outstanding':>12} {'overdue':>8}"
        )
        for name, t in groups.items():
            click.echo(
                f"{printable(name)[:36]:<36} {t['audits']:>6} {t['returned']:>9} "
                f"{t['outstanding']:>12} {t['overdue']:>8}"
            )
    if report.outstanding:
        click.echo(f"\nOutstanding ({len(report.outstanding)}, {len(report.overdue)} overdue)")
        click.echo(f"{'audit id':<26} {'case':<14} {'auditor':<30} {'due':<10} days overdue")
        for o in report.outstanding:
            click.echo(
                f"{o.audit_id:<26} {printable(o.case_number)[:14]:<14} "
                f"{printable(o.auditor)[:30]:<30} {show_date(o.due)} "
                f"{o.days_overdue or '-':>4}"
            )


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "json"]),
    default="csv",
    show_default=True,
    help="csv: one table; xlsx: both tables; json: per audit.",
)
@click.option(
    "--table",
    type=click.Choice(["answers", "actions"]),
    default="answers",
    show_default=True,
    help="Which table a CSV export holds.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    help="File to write (default: print CSV/JSON to the terminal).",
)
@db_option
def export(fmt: str, table: str, out: Path | None, db_url: str | None) -> None:
    """Every current return's answers (with the question text) and action rows."""
    from formtool.packs.export import export_data, write_export
    from formtool.store import EXPORT

    if out is None and fmt == "xlsx":
        raise click.UsageError("--format xlsx needs --out FILE.xlsx")
    db = _store(db_url, "read")
    _refuse_unlogged(db, "an export")
    data = export_data(db)
    payload = write_export(data, fmt, out, table)
    _record_cli(db, "exported answers and actions", f"{fmt} to {out or 'standard output'}")
    if out is not None:  # tracked, so retention finds it on disk
        db.record_files([out], EXPORT, user=_user())
    if out is None:
        click.echo(payload.decode("utf-8-sig"), nl=False)
    else:
        click.echo(
            f"{len(data.answers)} answer row(s) and {len(data.actions)} action row(s) "
            f"written to {out}",
            err=True,
        )


# --- packs and moderation ------------------------------------------------------------


@cli.group()
def pack() -> None:
    """Packs for the child's file and for the Performance Management Unit."""


@pack.command("file")
@click.argument("audit_ids", nargs=-1)
@click.option("--month", type=MONTH, help="Every complete audit due in this month.")
@click.option(
    "--format", "fmt", type=click.Choice(["docx", "pdf", "both"]), default="both", show_default=True
)
@click.option(
    "--include-drafts", is_flag=True, help="Also file draft returns (marked DRAFT on every page)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "packs" / "file",
    show_default=True,
)
@db_option
@json_option
def pack_file(
    audit_ids: tuple[str, ...],
    month: str | None,
    fmt: str,
    include_drafts: bool,
    out_dir: Path,
    db_url: str | None,
    as_json: bool,
) -> None:
    """One document per completed audit, ready for the child's record. With --month, also
    one bundled PDF with a bookmark per case."""
    from formtool.packs.file import file_pack, month_audits
    from formtool.store import FILE_PACK

    if bool(audit_ids) == bool(month):
        raise click.UsageError("Give audit ids or --month YYYY-MM (not both).")
    db = _store(db_url, "read")
    _refuse_unlogged(db, "a file pack")
    ids = list(audit_ids) or month_audits(db, month or "", include_drafts)
    if not ids:
        raise InputError(
            f"No complete audits due in {month}. Import the returns first (drafts "
            "are filed only with --include-drafts)."
        )
    formats = ("docx", "pdf") if fmt == "both" else (fmt,)
    result = file_pack(
        db,
        ids,
        out_dir,
        formats,
        bundle_name=f"file-pack-{month}.pdf" if month else None,
        include_drafts=include_drafts,
        settings=_settings(db_url),
        progress=_progress("Writing file packs", as_json),
    )
    for audit_id in ids:
        _record_cli(db, "made a file pack", f"to {out_dir}", audit_id)
    db.record_files(result.files, FILE_PACK, user=_user(), audit_ids=ids, month=month)
    if as_json:
        _echo_json(result.as_dict())
        return
    for warning in result.warnings:
        click.echo(f"warning {warning.message}", err=True)
    _report_files(result.files, False)


def _report_files(written: list[Path], as_json: bool) -> None:
    if as_json:
        _echo_json({"files": [str(p) for p in written]})
        return
    for path in written:
        click.echo(str(path))
    click.echo(f"{len(written)} file(s) written.")


@pack.command("pmu")
@click.option("--month", type=MONTH, help="A calendar month, YYYY-MM.")
@click.option(
    "--quarter",
    metavar="YYYY-Qn",
    help="A financial quarter: Q1 = April-June of YYYY, Q4 = January-March of YYYY+1.",
)
@click.option(
    "--year",
    metavar="YYYY",
    help="A financial year: April YYYY to March YYYY+1 (not a calendar year).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "packs" / "pmu",
    show_default=True,
)
@click.option(
    "--include-names",
    is_flag=True,
    help="Add child names, DOBs and free-text evidence (off by default).",
)
@db_option
@json_option
def pack_pmu(
    month: str | None,
    quarter: str | None,
    year: str | None,
    out_dir: Path,
    include_names: bool,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Report (.docx, .pdf) with charts and workbook (.xlsx) with native charts for a month,
    financial quarter or financial year. Case numbers only unless --include-names."""
    from formtool.packs.pmu import pmu_pack
    from formtool.store import PMU_PACK

    db = _store(db_url, "read")
    if include_names:
        _refuse_unlogged(db, "a pack with names")
    aggregate = db.read_only  # no access log to record case numbers in: figures alone
    if aggregate:
        click.echo(
            "The database is read-only here, so this pack holds figures only, without case "
            "numbers (those leave only when the access log records them).",
            err=True,
        )
    written = pmu_pack(
        db,
        out_dir,
        month,
        quarter,
        year,
        include_names,
        settings=_settings(db_url),
        aggregate_only=aggregate,
    )
    period = month or quarter or year or ""
    names = "with names" if include_names else "case numbers, no names"
    if not aggregate:
        _record_cli(db, "made a PMU pack", f"{period}, {names}, to {out_dir}")
        db.record_files(written, PMU_PACK, user=_user(), month=month)
    _report_files(written, as_json)


@cli.command()
@click.argument("audit_id")
@click.option("--grade", required=True, help="Grading after moderation (e.g. Good).")
@click.option("--by", "by", required=True, help="Who moderated.")
@click.option("--comment", default="", help="Why, in a sentence.")
@db_option
@json_option
def moderate(
    audit_id: str, grade: str, by: str, comment: str, db_url: str | None, as_json: bool
) -> None:
    """Record a moderated grade; it counts instead of the auditor's in every report."""
    from formtool.programme.moderation import moderate as run

    result = run(_store(db_url), audit_id, grade, by, comment, user=_user())
    if as_json:
        _echo_json(result.as_dict())
        return
    click.echo(result.summary())


@cli.command("moderation-sample")
@click.option("--month", required=True, type=MONTH)
@click.option(
    "--rate", default=None, help="Share to moderate [default: the programme's rate, e.g. 10%]."
)
@click.option("--seed", default=0, show_default=True, help="Same seed, same sample.")
@db_option
@json_option
def moderation_sample(
    month: str, rate: str | None, seed: int, db_url: str | None, as_json: bool
) -> None:
    """Pick the month's moderation sample: returned, not yet moderated audits."""
    from formtool.programme.moderation import moderation_sample as run
    from formtool.programme.moderation import parse_rate

    picked = run(_store(db_url), month, parse_rate(rate) if rate else None, seed, user=_user())
    if as_json:
        _echo_json([p.as_dict() for p in picked])
        return
    if not picked:
        click.echo(f"No complete, graded and unmoderated audits in {month}.")
        return
    for row in picked:
        click.echo(f"{row.audit_id:<28} {printable(row.team):<28} {row.auditor_grade or '-'}")
    click.echo(f"{len(picked)} audit(s) selected for moderation.")


# --- web workspace ---------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Accounts for the web workspace (formtool serve)."""


def _roles_help() -> str:
    from formtool.access.roles import ROLES

    return "; ".join(f"{r.name}: {r.description}" for r in ROLES.values())


def _new_password(name: str, from_stdin: bool) -> str:
    """A new password, never from the command line (it would show in `ps`): asked twice with
    the input hidden, or one line from standard input for scripts (--password-stdin)."""
    from formtool.access.accounts import password_problem

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"New password for {name}", hide_input=True, confirmation_prompt=True
        )
    problem = password_problem(name.strip(), password)
    if problem:
        raise InputError(problem)
    return password


def _password_stdin(func: Callable) -> Callable:
    return click.option(
        "--password-stdin",
        "from_stdin",
        is_flag=True,
        help="Read the password from the first line of standard input (for scripts) instead "
        "of asking for it twice.",
    )(func)


def _role_option(func: Callable) -> Callable:
    from formtool.access.roles import ROLES

    return click.option(
        "--role",
        "roles",
        type=click.Choice(list(ROLES)),
        multiple=True,
        required=True,
        help=f"Repeat for several. {_roles_help()}.",
    )(func)


@users.command("add")
@click.argument("name")
@_role_option
@_password_stdin
@click.option(
    "--must-change",
    is_flag=True,
    help="The user must choose a new password at first sign-in (you set it for them).",
)
@db_option
def users_add(
    name: str, roles: tuple[str, ...], from_stdin: bool, must_change: bool, db_url: str | None
) -> None:
    """Add a web workspace account (the password is asked for and stored only as an argon2
    hash). A deactivated account of the same name becomes active again, as the same person."""
    from formtool.access.accounts import add_user, check_new_name

    db = _store(db_url)
    check_new_name(db, name)  # before the password is asked for, not after
    account = add_user(db, name, roles, _new_password(name, from_stdin), must_change)
    _record_cli(db, "account added", f"{account.name} as {account.role}")
    click.echo(f"User {account.name} added as {account.role}.")


@users.command("password")
@click.argument("name")
@_password_stdin
@click.option("--must-change", is_flag=True, help="The user must choose a new one at next sign-in.")
@db_option
def users_password(name: str, from_stdin: bool, must_change: bool, db_url: str | None) -> None:
    """Set a new password for NAME; every session of NAME ends."""
    from formtool.access.accounts import active_account, set_password

    db = _store(db_url)
    active_account(db, name)  # before the password is asked for, not after
    set_password(db, name, _new_password(name, from_stdin), must_change)
    _record_cli(db, "account password", f"{name}'s password reset; sessions ended")
    click.echo(f"Password of {name} changed; their sessions have ended.")


@users.command("role")
@click.argument("name")
@_role_option
@db_option
def users_role(name: str, roles: tuple[str, ...], db_url: str | None) -> None:
    """Give NAME these roles (instead of the ones it has); every session of NAME ends."""
    from formtool.access.accounts import set_roles

    db = _store(db_url)
    account = set_roles(db, name, roles)
    _record_cli(db, "account roles", f"{account.name} is now {account.role}")
    click.echo(f"User {account.name} is now {account.role}; their sessions have ended.")


@users.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Deactivated accounts too.")
@db_option
@json_option
def users_list(include_inactive: bool, db_url: str | None, as_json: bool) -> None:
    """Every web workspace account and its roles."""
    from formtool.access.accounts import list_users

    db = _store(db_url, "read")
    accounts = list_users(db, include_inactive)
    if as_json:
        _echo_json([a.as_dict() for a in accounts])
        return
    for account in accounts:
        state = "" if account.active else "  (deactivated)"
        state += "  (must change password)" if account.must_change_password else ""
        click.echo(f"{account.name:<30} {account.role}{state}")
    click.echo(f"{len(accounts)} user(s).")
    _no_admin_note(db)


@users.command("remove")
@click.argument("name")
@db_option
def users_remove(name: str, db_url: str | None) -> None:
    """Deactivate a web workspace account and end its sessions (accounts are never deleted, so
    the history keeps naming the same person)."""
    from formtool.access.accounts import remove_user

    db = _store(db_url)
    remove_user(db, name)
    _record_cli(db, "account deactivate", name)
    click.echo(f"User {name} deactivated; their sessions have ended.")


@users.command("sessions")
@db_option
@json_option
def users_sessions(db_url: str | None, as_json: bool) -> None:
    """Everyone signed in to the web workspace now."""
    from formtool.access.accounts import SessionRules, list_sessions

    rules = SessionRules.of(_settings(db_url))  # a bad formtool.toml opens no database
    found = list_sessions(_store(db_url), rules)
    if as_json:
        _echo_json([s.as_dict() for s in found])
        return
    for s in found:
        click.echo(
            f"{s.user:<24} signed in {show_time(s.created)} UTC, last seen "
            f"{s.last_seen:%H:%M}, from {s.address}"
        )
    click.echo(f"{len(found)} session(s).")


@users.command("sign-out")
@click.argument("name", required=False)
@click.option("--all", "everybody", is_flag=True, help="End every session of every user.")
@db_option
def users_sign_out(name: str | None, everybody: bool, db_url: str | None) -> None:
    """End the web sessions of NAME (or of everybody with --all)."""
    from formtool.access.accounts import sign_out

    if bool(name) == everybody:
        raise click.UsageError("Give a user NAME or --all (not both).")
    db = _store(db_url)
    ended = sign_out(db, None if everybody else name)
    _record_cli(db, "sessions ended", f"{ended} of {name or 'everybody'}")
    click.echo(f"{ended} session(s) ended.")


def _no_admin_note(db: Store) -> None:
    from formtool.access.accounts import has_admin, list_users

    if list_users(db) and not has_admin(db):
        click.echo(
            "No admin account yet: make one with `formtool users add NAME --role admin` "
            "(or give a user the role with `formtool users role NAME --role officer --role "
            "admin`) to manage accounts and read the access log in the browser.",
            err=True,
        )


@cli.command("access-log")
@click.option("--user", "user_name", help="Only this user (web or command-line login name).")
@click.option("--audit", "audit_id", help="Only this audit.")
@click.option("--since", metavar="YYYY-MM-DD", help="Only entries from this day on (UTC).")
@click.option(
    "--purge",
    is_flag=True,
    help="Remove entries older than the retention period (access_log_days in formtool.toml; "
    "730 days by default) and record that. formtool serve does this when it starts.",
)
@db_option
@json_option
def access_log(
    user_name: str | None,
    audit_id: str | None,
    since: str | None,
    purge: bool,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Who signed in, and who saw or downloaded which personal data, when and from where."""
    from formtool.access.log import access_entries
    from formtool.access.log import purge as purge_log
    from formtool.clock import parse_day

    db = _store(db_url, "write" if purge else "read")
    if purge:
        removed = purge_log(db, _settings(db_url).access_log_days, _user())
        click.echo(f"{removed} access log entr{'y' if removed == 1 else 'ies'} removed.")
        return
    day = parse_day(since, "--since") if since else None
    found = access_entries(db, user_name, audit_id, day)
    if as_json:
        _echo_json([e.as_dict() for e in found])
        return
    for e in found:
        click.echo(
            f"{e.at:%Y-%m-%d %H:%M:%S}  {printable(e.user, 30):<24} {printable(e.address, 20):<16} "
            f"{e.action:<28} {e.audit_id or '-':<24} {printable(e.detail, 120)}"
        )
    click.echo(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'}.")


# --- backups -------------------------------------------------------------------------

#: What a restore means for the monthly cycle, said before and after it.
GOES_BACK = (
    "The database goes back to the time of the backup: the outbox and sent records too, so "
    "emails sent since then will look unsent (check the Sent Items before sending again), and "
    "returns imported since then must be imported again."
)


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


@cli.command()
@click.argument("path", type=click.Path())
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    metavar="N",
    help="With a folder: keep only the newest N backups formtool named there.",
)
@db_option
@json_option
def backup(path: str, keep: int | None, db_url: str | None, as_json: bool) -> None:
    """Back up the database to PATH (a file, or a folder for a file named by date and time;
    ending in / it is a folder, made if new), safely while formtool serve runs. The copy is
    checked before it is reported done."""
    from formtool.store import backup_database, database_url

    _OPENED["url"] = database_url(db_url)
    target = Path(path)
    if path.endswith(("/", os.sep)):  # a folder, as the trailing slash says (Path drops it)
        if target.exists() and not target.is_dir():
            raise InputError(
                f"[{printable(target)}] is a file, not a folder. Give a folder, or the name of "
                "a new file for the backup."
            )
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
    report = backup_database(db_url, target, _user(), keep)
    if as_json:
        _echo_json(report.as_dict())
        return
    checked = "integrity ok" if report.backend == "sqlite" else "pg_restore reads it back"
    click.echo(f"Backed up {report.source} with {report.method}.")
    click.echo(
        f"Checked: {checked}; {report.rows:,} rows in {len(report.tables)} tables, as in the "
        f"database; schema {report.revision}."
    )
    click.echo(
        f"Wrote {report.path} ({_size(report.size)}), readable by you only: it holds "
        "children's data, password hashes and keys, so keep it as safe as the database."
    )
    if report.removed:
        click.echo(f"Removed {len(report.removed)} older backup(s), keeping the newest {keep}.")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Restore without asking first.")
@db_option
@json_option
def restore(path: Path, yes: bool, db_url: str | None, as_json: bool) -> None:
    """Put the database back as it was in a backup made by `formtool backup`. Refused while
    formtool serve runs on it; the backup is checked first, and the SQLite file it replaces is
    kept beside it. A PostgreSQL backup is restored into an empty database only."""
    from formtool.store import RestorePlan, database_url, restore_backup

    _OPENED["url"] = database_url(db_url)

    def say(text: str) -> None:
        click.echo(text, err=as_json)  # with --json, stdout holds only the JSON

    def confirm(plan: RestorePlan) -> bool:
        b = plan.backup
        say(
            f"Backup {b.path}: schema {b.revision}, {b.rows:,} rows in {len(b.tables)} tables, "
            f"written {show_time(b.written)} UTC."
        )
        if plan.keep_as:
            say(f"It replaces {plan.target}; the database there now is kept as {plan.keep_as}.")
        else:
            say(f"It goes into {plan.target}.")
        for note in plan.notes:
            say(note)
        click.secho(f"Warning: {GOES_BACK}", fg="yellow", err=as_json)
        return yes or click.confirm("Restore it?", err=as_json)

    report = restore_backup(path, db_url, _user(), confirm)
    if report is None:
        click.echo("Nothing was changed.", err=True)
        raise click.exceptions.Exit(1)
    if as_json:
        _echo_json(report.as_dict())
        return
    was = report.plan.backup.revision
    upgraded = (
        f" (upgraded from schema {was} to {report.revision})" if was != report.revision else ""
    )
    click.echo(f"Restored {report.plan.target} from {path}{upgraded}.")
    if report.latest is not None:
        click.secho(
            f"It holds what was recorded up to {show_time(report.latest)} UTC: anything sent, "
            "imported or changed after that is not in it.",
            fg="yellow",
        )


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but this computer (127.0.0.1) needs at "
    "least one user (formtool users add).",
)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--https",
    "behind_https",
    is_flag=True,
    help="Served through an HTTPS reverse proxy: session cookies are Secure.",
)
@click.option(
    "--proxy",
    metavar="ADDR",
    help="The IP address of the reverse proxy in front: only its X-Forwarded-For, -Proto and "
    "-Host headers are believed (from anyone else they are ignored).",
)
@click.option(
    "--backup-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Take a backup into this folder every night at 02:00, and when the server starts "
    "unless there is one from the last day.",
)
@click.option(
    "--keep",
    default=14,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="With --backup-dir: keep the newest N backups there.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    metavar="N",
    help="Answer with N processes on the one port (sessions, previews and caches are shared "
    "through the database). Over 1 wants PostgreSQL; SQLite works on this computer only.",
)
@db_option
def serve(
    host: str,
    port: int,
    behind_https: bool,
    proxy: str | None,
    backup_dir: Path | None,
    keep: int,
    workers: int,
    db_url: str | None,
) -> None:
    """The web workspace: the monthly cycle in a browser, on the same database."""
    from formtool.clock import fixed_today
    from formtool.web import NightlyBackups
    from formtool.web import serve as run

    fixed = fixed_today()
    if fixed is not None:  # said first and loudly: every due date and overdue count follows it
        click.secho(
            f"WARNING: today is fixed to {show_date(fixed)} (--today or FORMTOOL_TODAY): months, "
            "due dates and overdue counts follow that date, not the calendar.",
            err=True,
            fg="yellow",
            bold=True,
        )
    db = _store(db_url)
    _no_admin_note(db)
    nightly = None
    if backup_dir is not None:
        backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(backup_dir, os.W_OK | os.X_OK):
            raise InputError(
                f"[{backup_dir}] you may not write there; choose another --backup-dir."
            )
        nightly = NightlyBackups(backup_dir, keep)

    def ready(url: str) -> None:
        many = f" with {workers} workers" if workers > 1 else ""
        click.echo(f"formtool web workspace on {url}{many} (Ctrl+C to stop)")
        if nightly is not None:
            click.echo(
                f"Backups to {nightly.folder} every night at {nightly.hour:02d}:00, keeping the "
                f"newest {nightly.keep}."
            )

    run(
        db,
        host,
        port,
        behind_https,
        _settings(db_url),
        on_ready=ready,
        proxy=proxy,
        backups=nightly,
        workers=workers,
    )


# --- demo ----------------------------------------------------------------------------


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "demo",
    show_default=True,
    help="Folder for everything the demo makes.",
)
@click.option("--seed", default=2026, show_default=True, help="Seed for the synthetic data.")
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Database for the demo [default: a fresh SQLite file in --out].",
)
@json_option
def demo(out_dir: Path, seed: int, db_url: str | None, as_json: bool) -> None:
    """Run formtool end to end on synthetic data and say where everything went."""
    from formtool.demo.run import Step, run_demo
    from formtool.store import database_url, start_work

    def show(step: Step) -> None:
        click.echo(step.text())

    if db_url is not None:  # opened here first, to say so if it is a new database
        _store(db_url)
    else:  # the demo makes its own: errors name it
        _OPENED["url"] = database_url(str(out_dir / "formtool.db"))
    if "work" not in _OPENED:  # _store started it: its count is the one errors read
        _OPENED["work"] = start_work(_user())
    report = run_demo(
        out_dir,
        seed=seed,
        db_url=db_url,
        on_step=None if as_json else show,
        settings=_settings(db_url),
    )
    if as_json:
        _echo_json(report.as_dict())


from formtool.cli_activity import activity  # noqa: E402
from formtool.cli_programme import calendar_, concerns_, followup_, programme  # noqa: E402
from formtool.cli_retention import retention_  # noqa: E402
from formtool.cli_signin import totp_reset  # noqa: E402
from formtool.cli_subjects import COMMANDS as SUBJECT_COMMANDS  # noqa: E402

cli.add_command(programme)
cli.add_command(activity)
cli.add_command(calendar_)
cli.add_command(concerns_)
cli.add_command(followup_)
cli.add_command(retention_)
users.add_command(totp_reset)
for command in SUBJECT_COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="formtool")
