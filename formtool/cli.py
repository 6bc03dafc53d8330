"""The formtool command line. The only module that imports click: each command calls one
library function and prints its result (or, with --json, the same as JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from formtool import __version__
from formtool.definitions import check_form, form_files, get_form, load_forms
from formtool.errors import CaseListError, FormtoolError

DEFAULT_OUT = Path("outputs")


class InputError(click.ClickException):
    """Unusable input file: exit code 2, like a usage error, with formtool's one-line reason."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def json_option(func: Callable) -> Callable:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table."
    )(func)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _progress(label: str):
    def wrap(items):
        items = list(items)
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar

    return wrap


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="formtool")
def cli() -> None:
    """Case-file audit tools for children's services QA teams.

    Forms are defined as data (templates/forms/*.yaml); formtool generates fillable,
    pre-filled Word and Excel audit tools from a case list.
    """


# --- forms ---------------------------------------------------------------------------


@cli.group()
def forms() -> None:
    """List, show and check audit tool definitions."""


@forms.command("list")
@json_option
def forms_list(as_json: bool) -> None:
    """Every audit tool formtool ships: id, version, title, number of questions."""
    rows = [
        {
            "id": f.id,
            "version": f.version,
            "title": f.title,
            "subject": f.subject,
            "questions": len(f.questions()),
            "fields": len(f.fields()),
        }
        for f in load_forms().values()
    ]
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'id':<20} {'ver':>3}  {'questions':>9}  title")
    for r in rows:
        click.echo(f"{r['id']:<20} {r['version']:>3}  {r['questions']:>9}  {r['title']}")


@forms.command("show")
@click.argument("form_id")
@json_option
def forms_show(form_id: str, as_json: bool) -> None:
    """The header columns, sections and stable answer keys of one audit tool."""
    try:
        form = get_form(form_id)
    except FormtoolError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo_json(
            {
                "id": form.id,
                "version": form.version,
                "title": form.title,
                "subject": form.subject,
                "source": form.source,
                "header": [
                    {
                        "column": h.column,
                        "label": h.label,
                        "required": h.required,
                        "type": h.kind.value,
                    }
                    for h in form.header
                ],
                "fields": [
                    {
                        "key": f.key,
                        "label": f.label,
                        "kind": f.kind.value,
                        "choices": list(f.scale.choices) if f.scale else None,
                        "required": f.required,
                    }
                    for f in form.fields()
                ],
            }
        )
        return
    click.echo(f"{form.title}  ({form.id} v{form.version}, subject: {form.subject})")
    click.echo(f"Source: {form.source}\n")
    click.echo("Case list columns (* = required):")
    for h in form.header:
        click.echo(f"  {h.column + ('*' if h.required else ''):<20} {h.label}")
    for section in form.sections:
        click.echo(f"\n{section.title}")
        for item in section.items:
            scale = f" [{item.scale.label}]" if item.scale else f" [{item.kind}]"
            click.echo(f"  {item.key:<45}{scale} {item.label[:70]}")


@forms.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@json_option
def forms_check(files: tuple[Path, ...], as_json: bool) -> None:
    """Check definition files (default: every shipped form). Exit 1 if any has a problem."""
    paths = list(files) or form_files()
    issues = [i for p in paths for i in check_form(p)]
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
@click.option("--form", "form_id", required=True, help="Audit tool id (see `formtool forms list`).")
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
@json_option
def generate(form_id: str, cases_path: Path, fmt: str, out_dir: Path, as_json: bool) -> None:
    """Make one pre-filled, fillable audit form per case, plus manifest.csv.

    The case list is checked whole first: if any row is unusable nothing is written.
    """
    from formtool.generate import generate as run

    try:
        produced = run(
            form_id,
            cases_path,
            out_dir,
            fmt,
            progress=None if as_json else _progress("Generating forms"),
        )
    except CaseListError as exc:
        raise InputError(str(exc)) from None
    except FormtoolError as exc:
        raise InputError(str(exc)) from None
    rows = [p.manifest_row(out_dir) for p in produced]
    if as_json:
        _echo_json({"out": str(out_dir), "manifest": str(out_dir / "manifest.csv"), "forms": rows})
        return
    click.echo(f"{len(rows)} form(s) written to {out_dir} (manifest: {out_dir / 'manifest.csv'})")


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
@json_option
def demo(out_dir: Path, seed: int, as_json: bool) -> None:
    """Run formtool end to end on synthetic data and say where everything went."""
    from formtool.demo import run_demo

    report = run_demo(out_dir, seed=seed)
    if as_json:
        _echo_json(report)
        return
    click.echo(f"Synthetic case lists: {report['cases_dir']}")
    for form in report["forms"]:
        click.echo(f"  {form['form_id']:<20} {form['count']:>3} audits -> {form['out']}")
    click.echo(f"Forms written: {report['files']} (.docx and .xlsx), manifest per form folder.")


def main() -> None:
    cli(prog_name="formtool")
