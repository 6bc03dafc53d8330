"""What every formtool command shares: the error boundary (one line, exit 2, never a
traceback), the --db and --json options, the store a command opens, the settings, the policy
in force, who acts, and printing. cli.py, cli_programme.py and cli_activity.py build their
commands on it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from formtool.errors import FormtoolError, printable

if TYPE_CHECKING:  # the store is imported when a command opens it (`formtool --help` is fast)
    from formtool.store import Store

DEFAULT_OUT = Path("outputs")


class MonthParam(click.ParamType):
    """A YYYY-MM month (formtool.periods.Month), checked before any work is done."""

    name = "YYYY-MM"

    def convert(self, value, param, ctx):
        from formtool.periods import Month, PeriodError

        try:
            return Month(value)
        except PeriodError as exc:
            self.fail(str(exc).removeprefix("month "), param, ctx)


MONTH = MonthParam()


class FormtoolGroup(click.Group):
    """Turns formtool's errors and file-system errors anywhere in a command into one-line
    messages with exit code 2, so commands need no error handling of their own."""

    def invoke(self, ctx: click.Context) -> Any:
        _OPENED.clear()  # a previous command in this process (tests) opened its own
        try:
            result = self._invoke(ctx)
        except SystemExit:  # a command that ran and reports a problem (import: exit 1)
            _concerns_waiting()
            raise
        _concerns_waiting()  # after every command that ran (one stopped by an error: the next)
        return result

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except FormtoolError as exc:
            raise InputError(str(exc)) from None
        except BrokenPipeError:
            _quiet_broken_pipe()
        except OSError as exc:
            where = exc.filename or "a file"
            raise InputError(
                f"[{printable(where)}] {exc.strerror or exc}. Check the path and "
                "that you may read and write there."
            ) from None
        except Exception as exc:
            from formtool.store import DatabaseError, database_url, describe  # loaded if it failed

            if isinstance(exc, DatabaseError):  # says what the command had saved, exactly
                url = _OPENED.get("url") or database_url(None)  # else the one it would open
                told = describe(exc, url, _OPENED.get("work"))
                raise InputError(told) from None
            if os.environ.get("FORMTOOL_DEBUG"):
                raise
            raise InternalError(
                f"formtool stopped on an unexpected problem "
                f"({type(exc).__name__}: {printable(exc, 200)}). This is a bug: "
                "please report it with the command you ran (set "
                "FORMTOOL_DEBUG=1 for the details)."
            ) from None


def _quiet_broken_pipe() -> None:
    """The reader went away (`formtool status | head`): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


class InputError(click.ClickException):
    """Unusable input file: exit code 2, like a usage error, with formtool's one-line reason."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


class InternalError(InputError):
    """A bug in formtool: exit code 3, one line, no traceback."""

    exit_code = 3


def json_option(func: Callable) -> Callable:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table."
    )(func)


def db_option(func: Callable) -> Callable:
    return click.option(
        "--db",
        "db_url",
        envvar="FORMTOOL_DB",
        default=None,
        help="Database: SQLAlchemy URL or SQLite file path "
        "[env FORMTOOL_DB; default ./formtool.db].",
    )(func)


_OPENED: dict[str, Any] = {}  # the database this command opened and its Work, for errors


def _concerns_waiting() -> None:
    """Every command that opened the database says, loudly, while an urgent concern's email
    has not gone."""
    db = _OPENED.get("store")
    if db is None:
        return
    from formtool.programme.concerns import loud_line
    from formtool.store import DatabaseError

    try:
        line = loud_line(db)
    except (DatabaseError, FormtoolError):  # down, or too old to hold concerns: none to tell
        return
    if line:
        click.secho(line, err=True, fg="red", bold=True)


def _store(db_url: str | None, mode: str = "write") -> Store:
    """The database for this command. mode="read" for a command that only reads: it never
    creates a database (a mistyped --db is refused) and works on a read-only file; a
    writing command says when it creates one. Either way a write that waits for another
    formtool's lock says so after a moment."""
    from formtool.store import database_url, open_store, start_work

    _OPENED["url"] = database_url(db_url)
    _OPENED["work"] = start_work(_user())  # counts what this command saves, for errors
    db = open_store(db_url, "read" if mode == "read" else "write", notify=_notice)
    _OPENED["store"] = db
    return db


def _notice(text: str) -> None:
    click.echo(text, err=True)


def _refuse_unlogged(db: Store, what: str) -> None:
    """Case-level data or names leave only when the access log records it: fail closed."""
    from formtool.store import shown

    if db.read_only:
        raise InputError(
            f"The database {shown(_OPENED['url'])} is read-only here, so {what} could not be "
            "recorded in the access log, and case-level data never leaves unrecorded. Copy "
            "the database to a folder you may write to and run the command there."
        )


def _settings(db_url: str | None):
    from formtool.settings import load_settings
    from formtool.store import database_url

    return load_settings(database_url(db_url))


def _policy(db: Store, db_url: str | None, named: str | None = None) -> Any:
    """The programme policy this database runs, after checking formtool.toml's `programme`
    (and the command's --programme) name the same: rules never switch for one run."""
    from formtool.programme.rules import agree
    from formtool.settings import settings_path

    if named:
        return agree(db, named, "--programme")
    return agree(db, _settings(db_url).programme, str(settings_path(db_url) or "formtool.toml"))


def _user() -> str:
    """Who is acting, as recorded with every event and in the access log: the
    operating-system login, `cli:LOGIN` (the store names it the same way)."""
    from formtool.store import os_user

    return os_user()


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _progress(label: str, quiet: bool = False) -> Callable[[Any], Any] | None:
    """A progress bar for a batch, on a terminal only: nothing extra when piped or --json."""
    if quiet or not sys.stderr.isatty():
        return None

    def wrap(items: Any) -> Any:
        items = list(items)
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar

    return wrap


def _record_cli(db: Store, action: str, detail: str = "", audit_id: str | None = None) -> None:
    """An entry in the access log for the operating-system user running this command."""
    from formtool.access.log import record_access

    record_access(db, _user(), action, audit_id, "command line", detail)
