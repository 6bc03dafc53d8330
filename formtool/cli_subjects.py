"""`formtool subject-access`, `correct`, `erase` and `data-requests`: one child's (or one
member of staff's) records found, copied, corrected or erased, and the register of that work.
Each command calls one library function in formtool.protect and prints what it did; every
one is recorded in the access log and in the register (`data-requests`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from formtool.cli_common import (
    DEFAULT_OUT,
    InputError,
    _echo_json,
    _refuse_unlogged,
    _settings,
    _store,
    _user,
    db_option,
    json_option,
)
from formtool.errors import printable

ADDRESS = "command line"


def _who(func: Any) -> Any:
    """CASE_NUMBER, or --staff NAME with their addresses and accounts."""
    func = click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="LOGIN",
        help="Staff: their formtool account (repeatable); it is included (or renamed and "
        "deactivated by erase).",
    )(func)
    func = click.option(
        "--email",
        "emails",
        multiple=True,
        metavar="ADDRESS",
        help="Staff: an address of theirs besides those their audits record (repeatable).",
    )(func)
    func = click.option(
        "--staff",
        metavar="NAME",
        help="A member of staff instead of a child: their name as the audits give it.",
    )(func)
    return click.argument("case_number", required=False)(func)


def _subject(db: Any, case_number: str | None, staff: str | None, emails: Any, accounts: Any):
    from formtool.protect.subject_access import child
    from formtool.protect.subject_access import staff as staff_member

    if bool(case_number) == bool(staff):
        raise click.UsageError("Give a CASE_NUMBER or --staff NAME (one of them).")
    if staff:
        return staff_member(db, staff, emails, accounts)
    return child(case_number or "")


def _reference_option(func: Any) -> Any:
    return click.option(
        "--reference",
        default="",
        metavar="REF",
        help="The council's request number, kept in the register (never a name or a case number).",
    )(func)


@click.command("subject-access")
@_who
@_reference_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "subject-access",
    show_default=True,
    help="The zip to write, or a folder for subject-access-N.zip (N: the register's number).",
)
@db_option
@json_option
def subject_access_(
    case_number: str | None,
    staff: str | None,
    emails: tuple[str, ...],
    accounts: tuple[str, ...],
    reference: str,
    out: Path,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Everything held about one child (CASE_NUMBER) or member of staff (--staff) as one zip:
    audits, returned forms as received, answers, actions, moderation, events, concerns, packs
    and who viewed them, with a readable index.html and data.json."""
    from formtool.protect.subject_access import subject_access, write_access

    db = _store(db_url)
    _refuse_unlogged(db, "a subject access copy")
    subject = _subject(db, case_number, staff, emails, accounts)
    access = subject_access(db, subject, _user(), reference, ADDRESS)
    if out.suffix.lower() != ".zip":
        out.mkdir(parents=True, exist_ok=True)
    path = write_access(db, access, subject, out, _user())
    if as_json:
        _echo_json({**access.as_dict(), "path": str(path)})
        return
    held = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in access.counts.items())
    click.echo(f"Wrote {path} (request {access.request}): {access.files} file(s); rows: {held}.")
    click.echo(
        "It holds personal data: send it to the requester securely, then delete this copy "
        "(retention removes it otherwise)."
    )


@click.command("correct")
@click.argument("case_number")
@click.option(
    "--field",
    "field_name",
    required=True,
    metavar="COLUMN",
    help="The fact, e.g. family_name or dob.",
)
@click.option("--to", "to", required=True, metavar="VALUE", help="The corrected value.")
@click.option(
    "--reason",
    required=True,
    help="Why (who asked, what was wrong); never the old value, which must leave no trace.",
)
@_reference_option
@db_option
@json_option
def correct_(
    case_number: str,
    field_name: str,
    to: str,
    reason: str,
    reference: str,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Correct a pre-filled fact about a child (a misspelt name, a wrong date of birth) in
    every record and file formtool holds; the original returned forms are kept as received."""
    from formtool.protect.correction import correct

    db = _store(db_url)
    _refuse_unlogged(db, "a correction")
    done = correct(db, case_number, field_name, to, reason, _user(), reference, _settings(db_url))
    if as_json:
        _echo_json(done.as_dict())
        return
    rows = ", ".join(f"{k} {n}" for k, n in done.rows.items()) or "none"
    click.echo(
        f"Corrected {done.column} for case {printable(done.case_number)} in "
        f"{len(done.audit_ids)} audit(s) (request {done.request}). Rows changed: {rows}."
    )
    _files(done.files)
    click.echo(
        "Kept as received: the original returned forms (the evidence). Forms already with an "
        "auditor still show the old value: each is accepted when it comes back, and the "
        "corrected value stays."
    )
    _backups(done.backups)


def _files(files: list[Any]) -> None:
    for f in files:
        how = f": make it again with {f.how}" if f.how and f.done == "removed" else ""
        click.echo(f"{f.done.capitalize()}: {f.path} ({f.kind}){how}")


def _backups(count: int) -> None:
    if count:
        click.echo(
            f"{count} backup(s) are unchanged and still hold the old records until retention "
            "removes them; after a restore, do this again."
        )


@click.command("erase")
@_who
@click.option(
    "--reason", default="", help="Why it is lawful to erase (never their name). Needed with --yes."
)
@click.option(
    "--authorised-by",
    "authorised_by",
    default="",
    help="Who authorised it (the DPO). Needed with --yes.",
)
@_reference_option
@click.option("--yes", is_flag=True, help="Erase. Without it: a dry run listing what would go.")
@db_option
@json_option
def erase_(
    case_number: str | None,
    staff: str | None,
    emails: tuple[str, ...],
    accounts: tuple[str, ...],
    reason: str,
    authorised_by: str,
    reference: str,
    yes: bool,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Erase a child's records (CASE_NUMBER; the period summary keeps the figures) or a
    member of staff's personal data (--staff: a pseudonym, their account deactivated); a dry
    run unless --yes."""
    from formtool.protect.erasure import erase_child, erase_staff, plan_erasure

    db = _store(db_url)
    _refuse_unlogged(db, "an erasure")
    subject = _subject(db, case_number, staff, emails, accounts)
    plan = plan_erasure(db, subject)
    if not yes:
        listed: list[str | None] = [*plan.audit_ids]
        for audit_id in listed or [None]:
            db.log_access(_user(), "erasure dry run", audit_id, ADDRESS, "listed what would go")
        if as_json:
            _echo_json({"dry_run": True, **plan.as_dict()})
            return
        _dry_run(plan)
        return
    missing = [o for o, v in (("--reason", reason), ("--authorised-by", authorised_by)) if not v]
    if missing:
        raise click.UsageError(
            f"Erasing needs {' and '.join(missing)}: why it is lawful and who authorised it "
            "(the dry run, without --yes, needs neither). Nothing was erased."
        )
    if subject.kind == "child":
        done = erase_child(db, plan, reason, authorised_by, _user(), reference)
    else:
        settings = _settings(db_url)
        done = erase_staff(db, plan, reason, authorised_by, _user(), reference, settings)
    if as_json:
        _echo_json(done.as_dict())
        return
    _erased(done)


def _dry_run(plan: Any) -> None:
    child = plan.subject.kind == "child"
    verb = "remove" if child else "pseudonymise"
    click.echo(f"Dry run: erasing {plan.subject.label} would {verb}:")
    for a in plan.audits:
        click.echo(f"  audit {a['audit_id']} ({a['form_id']}, {a['month']}, {a['state']})")
    click.echo("  rows: " + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in plan.rows.items()))
    for row, _ in plan.files:
        click.echo(f"  file {row.path} ({row.kind})")
    if child:
        click.echo(
            "Kept: the period summary keeps the audits' anonymised counts, so the figures "
            "reported do not change; the access log keeps its entries, with the case, the "
            "names and the date of birth taken out."
        )
        if plan.open_audits:
            click.echo(
                f"Still with an auditor: {', '.join(plan.open_audits)}. A return that comes "
                "after the erasure is rejected as matching no audit."
            )
    else:
        click.echo(
            "Kept: the audits (the children's records) with a pseudonym for them; the "
            "original returned forms as received, which may still name them."
        )
        if plan.auditing:
            click.echo(f"Refused until reassigned: they still audit {', '.join(plan.auditing)}.")
    _backups(plan.backups)
    click.echo("Nothing was changed. Run again with --yes to erase.")


def _erased(done: Any) -> None:
    if done.subject == "child":
        rows = ", ".join(f"{k} {n}" for k, n in done.rows.items())
        click.echo(f"Erased {len(done.audits)} audit(s) (request {done.request}): {rows}.")
    else:
        click.echo(
            f"The member of staff is now {done.pseudonym} in {sum(done.rows.values())} row(s) "
            f"(request {done.request}); their account, if any, is deactivated. The original "
            "returned forms are kept as received (the children's evidence) and may still "
            "name them."
        )
    _files(done.files)
    if done.left or done.files_left:
        places = [*(f"table {k} ({n})" for k, n in done.left.items()), *done.files_left]
        raise InputError(
            f"Still found afterwards in {'; '.join(places)}. Check those records and remove "
            "them by hand, then run the erasure again."
        )
    click.echo("Checked afterwards: no table and no tracked file holds them.")
    _backups(done.backups)


@click.command("data-requests")
@db_option
@json_option
def data_requests_(db_url: str | None, as_json: bool) -> None:
    """The register of data-protection work: subject access, corrections, erasures and
    retention runs, with why, who authorised and who did each."""
    db = _store(db_url, "read")
    rows = db.data_requests()
    if as_json:
        _echo_json(
            [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "subject": r.subject,
                    "reference": r.reference,
                    "reason": r.reason,
                    "authorised_by": r.authorised_by,
                    "done_by": r.done_by,
                    "done_at": r.done_at.isoformat() + "Z",
                    "done_on": r.done_on.isoformat() if r.done_on else None,
                    "detail": json.loads(r.detail or "{}"),
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        day = r.done_on.isoformat() if r.done_on else f"{r.done_at:%Y-%m-%d}"
        ref = f" [{printable(r.reference, 40)}]" if r.reference else ""
        who = f"; authorised by {printable(r.authorised_by, 60)}" if r.authorised_by else ""
        why = f": {printable(r.reason, 100)}" if r.reason else ""
        click.echo(
            f"{r.id:>4}  {day}  {r.kind:<16} {r.subject or '-':<6}{ref} by "
            f"{printable(r.done_by, 40)}{who}{why}"
        )
    click.echo(f"{len(rows)} request(s).")


#: The commands cli.py registers (`cli.add_command` each).
COMMANDS = (subject_access_, correct_, erase_, data_requests_)
