"""`formtool users totp-reset NAME`: the break-glass way back for a lost authenticator app
(formtool.access.totp). The lead attaches it to the `users` group in cli.py."""

from __future__ import annotations

import click

from formtool.cli_common import _record_cli, _store, db_option


@click.command("totp-reset")
@click.argument("name")
@db_option
def totp_reset(name: str, db_url: str | None) -> None:
    """Remove NAME's authenticator app (lost or replaced phone) and end their sessions. They
    sign in next with their password alone; an admin is then asked to set up a new one before
    anything else. Recorded in the access log."""
    from formtool.access.totp import reset

    db = _store(db_url)
    ended = reset(db, name)
    _record_cli(db, "TOTP reset", f"{name}'s authenticator removed; {ended} session(s) ended")
    click.echo(
        f"The authenticator of {name} is removed and {ended} session(s) ended: they set up a "
        "new one from their account page (an admin is asked to at their next sign-in)."
    )
